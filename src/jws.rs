//! The compact JWS form (RFC 7515 section 7.1): strict base64url, the protected header,
//! and the two peeks taken before a signature is checked (the `kid` for a refetch, the
//! `iss` that picks the issuer). Nothing read here is trusted until the signature is.

use std::cell::RefCell;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use crate::error::ErrorKind;
use crate::payload;
use crate::text::Text;

/// A compact JWS's header, payload and signature, still base64url ([`segments`]).
pub(crate) type Segments<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The three segments of a compact JWS, `header.payload.signature`, without decoding
/// them; anything but exactly two dots is malformed (five segments is a JWE, and
/// encrypted tokens are not accepted). The dots are found with `memchr`'s vector
/// search: about 400 instructions for a 622-byte token against 1 150 for `split_once`
/// twice and `contains` (callgrind).
pub(crate) fn segments(bytes: &[u8]) -> Result<Segments<'_>, ErrorKind> {
    let first = memchr::memchr(b'.', bytes).ok_or(ErrorKind::Malformed)?;
    let second = memchr::memchr(b'.', &bytes[first + 1..]).ok_or(ErrorKind::Malformed)? + first + 1;
    if memchr::memchr(b'.', &bytes[second + 1..]).is_some() {
        return Err(ErrorKind::Malformed);
    }
    Ok((
        &bytes[..first],
        &bytes[first + 1..second],
        &bytes[second + 1..],
    ))
}

/// The unverified `iss` of a token, to pick the key store of a multi-issuer
/// configuration. It is verified like every other claim once the signature is.
pub(crate) fn peek_issuer(token: &str) -> Result<String, ErrorKind> {
    #[derive(Deserialize)]
    struct Peek<'a> {
        #[serde(borrow, default)]
        iss: Option<Text<'a>>,
    }
    let payload_b64 = token.split('.').nth(1).ok_or(ErrorKind::Malformed)?;
    let payload = b64(payload_b64)?;
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return Err(ErrorKind::Malformed);
    }
    let peek: Peek<'_> = serde_json::from_slice(&payload).map_err(|e| payload::json_error(&e))?;
    peek.iss
        .map(|iss| iss.0.into_owned())
        .ok_or(ErrorKind::MissingClaim)
}

/// The `kid` of a token's header, for an unknown-key refetch.
pub(crate) fn header_kid(token: &str) -> Option<String> {
    let header = b64(token.split('.').next()?).ok()?;
    let header: Header<'_> = json_object(&header).ok()?;
    header.kid.map(|kid| kid.0.into_owned())
}

/// Decodes `segment` as strict base64url (see [`decode`]).
pub(crate) fn b64(segment: impl AsRef<[u8]>) -> Result<Vec<u8>, ErrorKind> {
    let segment = segment.as_ref();
    let mut out = vec![0; decoded_len(segment)];
    let len = decode(segment, &mut out)?;
    out.truncate(len);
    Ok(out)
}

/// Decodes `segment` as strict base64url (see [`b64`]) into `buf` when it fits, else
/// into `spill`: with a stack buffer the size of a header, a signature or a common
/// payload, the request path does not allocate for them.
pub(crate) fn b64_into<'b>(
    segment: &[u8],
    buf: &'b mut [u8],
    spill: &'b mut Vec<u8>,
) -> Result<&'b [u8], ErrorKind> {
    if decoded_len(segment) <= buf.len() {
        let len = decode(segment, buf)?;
        Ok(&buf[..len])
    } else {
        *spill = b64(segment)?;
        Ok(spill)
    }
}

/// The exact decoded size of unpadded base64 (a remainder of 1, refused by [`decode`],
/// counts for nothing).
fn decoded_len(segment: &[u8]) -> usize {
    segment.len() / 4 * 3 + segment.len() % 4 * 3 / 4
}

/// For each position in a group of four characters, each byte's value shifted into its
/// place in the group's 24 bits, or `INVALID` for a byte outside the base64url alphabet.
/// One lookup and one `or` per character; the four tables fill 4 KiB.
const PLACED: [[u32; 256]; 4] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut tables = [[INVALID; 256]; 4];
    let mut place = 0;
    while place < 4 {
        let mut value = 0;
        while value < alphabet.len() {
            tables[place][alphabet[value] as usize] = (value as u32) << (18 - 6 * place);
            value += 1;
        }
        place += 1;
    }
    tables
};

/// Set in a group's bits by any byte outside the alphabet.
const INVALID: u32 = 1 << 31;

/// Strict base64url (RFC 7515 section 2): no padding, no standard-alphabet characters,
/// no remainder of one character, canonical trailing bits. Writes `input`'s bytes at
/// the start of `out` (at least [`decoded_len`] long) and returns how many there are.
/// Written by hand: see ARCHITECTURE.md, decisions.
fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, ErrorKind> {
    let len = input.len() / 4 * 3 + input.len() % 4 * 3 / 4;
    let out = out.get_mut(..len).ok_or(ErrorKind::Malformed)?;
    let [t0, t1, t2, t3] = &PLACED;
    let group = |c: &[u8; 4]| {
        t0[usize::from(c[0])]
            | t1[usize::from(c[1])]
            | t2[usize::from(c[2])]
            | t3[usize::from(c[3])]
    };
    // Every group is or-ed in here: a byte outside the alphabet sets `INVALID`.
    let mut seen = 0u32;
    let (eights, rest) = input.as_chunks::<8>();
    let (sixes, out_rest) = out.split_at_mut(eights.len() * 6);
    for (chars, bytes) in eights.iter().zip(sixes.as_chunks_mut::<6>().0) {
        let &[a, b, c, d, e, f, g, h] = chars;
        let (high, low) = (group(&[a, b, c, d]), group(&[e, f, g, h]));
        seen |= high | low;
        let bits = u64::from(high) << 24 | u64::from(low);
        bytes.copy_from_slice(&bits.to_be_bytes()[2..]);
    }
    let (fours, tail) = rest.as_chunks::<4>();
    let (threes, out_tail) = out_rest.split_at_mut(fours.len() * 3);
    for (chars, bytes) in fours.iter().zip(threes.as_chunks_mut::<3>().0) {
        let bits = group(chars);
        seen |= bits;
        bytes.copy_from_slice(&bits.to_be_bytes()[1..]);
    }
    // Two characters give one byte and three give two; the bits left over must be zero.
    let mut last = [b'A'; 4];
    for (slot, &c) in last.iter_mut().zip(tail) {
        *slot = c;
    }
    let bits = group(&last);
    seen |= bits;
    let [_, a, b, _] = bits.to_be_bytes();
    let canonical = match (tail.len(), &mut *out_tail) {
        (0, []) => true,
        (2, [first]) => {
            *first = a;
            bits & 0xF000 == 0
        }
        (3, [first, second]) => {
            [*first, *second] = [a, b];
            bits & 0xC0 == 0
        }
        _ => false,
    };
    if seen & INVALID != 0 || !canonical {
        return Err(ErrorKind::Malformed);
    }
    Ok(len)
}

/// The size of the per-thread scratch buffer: a header (512), a signature (512, RSA-4096)
/// and a payload of up to 3 KiB decoded, which covers the access tokens of common
/// identity providers.
const SCRATCH_LEN: usize = 4096;

thread_local! {
    static SCRATCH: RefCell<[u8; SCRATCH_LEN]> = const { RefCell::new([0; SCRATCH_LEN]) };
}

/// Runs `f` with this thread's scratch buffer for decoded segments: no allocation and
/// no zeroing per request. A nested call (a claims type that verifies a token while
/// being deserialized) gets a fresh heap buffer instead. The buffer keeps the last
/// token's decoded segments until the next verification on the thread: a bearer token
/// can be rebuilt from them, like from the request that carried it (SECURITY.md).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf[..]),
        Err(_) => f(&mut vec![0; SCRATCH_LEN]),
    })
}

/// Parses a JWS header, which must be a JSON object: serde would otherwise accept a JSON
/// array for a struct.
pub(crate) fn json_object<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ErrorKind> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ErrorKind::Malformed);
    }
    serde_json::from_slice(bytes).map_err(|e| payload::json_error(&e))
}

/// The JOSE header members this crate reads. `jku`, `x5u`, `jwk` and `x5c` are never
/// read: keys come only from the configured key store.
#[derive(Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub(crate) alg: Text<'a>,
    #[serde(borrow, default)]
    pub(crate) kid: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(crate) typ: Option<Text<'a>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) crit: bool,
}

/// `true` whenever the member exists, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_exactly_three() {
        let split = |token: &'static str| segments(token.as_bytes());
        assert_eq!(split("h.p.s"), Ok((&b"h"[..], &b"p"[..], &b"s"[..])));
        assert_eq!(split(".."), Ok((&b""[..], &b""[..], &b""[..])));
        assert_eq!(
            split("header.payload."),
            Ok((&b"header"[..], &b"payload"[..], &b""[..]))
        );
        for bad in ["", "h", "h.p", "h.p.s.", "h.p.s.t.u", "...."] {
            assert_eq!(split(bad), Err(ErrorKind::Malformed), "{bad}");
        }
        let long = format!(
            "{}.{}.{}",
            "a".repeat(100),
            "b".repeat(700),
            "c".repeat(342)
        );
        assert_eq!(
            segments(long.as_bytes()).map(|(h, p, s)| (h.len(), p.len(), s.len())),
            Ok((100, 700, 342))
        );
    }

    #[test]
    fn header_must_be_an_object_without_duplicates() {
        assert!(json_object::<Header<'_>>(br#"["RS256"]"#).is_err());
        assert!(json_object::<Header<'_>>(br#"{"alg":"RS256","alg":"none"}"#).is_err());
        let h: Header<'_> = json_object(br#"{"alg":"RS256","crit":null}"#).expect("header");
        assert!(h.crit);
        let h: Header<'_> = json_object(br#"{"alg":"RS256","kid":"a\/b"}"#).expect("escaped kid");
        assert_eq!(h.kid.expect("kid").0, "a/b");
    }

    #[test]
    fn strict_base64url() {
        assert_eq!(b64(""), Ok(Vec::new()));
        assert_eq!(b64("Zm9vYmFy"), Ok(b"foobar".to_vec()));
        assert_eq!(b64("Zm9vYmE"), Ok(b"fooba".to_vec()));
        assert_eq!(b64("Zm9vYg"), Ok(b"foob".to_vec()));
        assert_eq!(b64("-_-_"), Ok(vec![0xFB, 0xFF, 0xBF]));
        for bad in [
            "Zm9vYg==", "Zm9vY", "Zm9vYh", "Zm9vYmF", "+/+/", "Zm9v\n", "Zm 9v", "é123",
        ] {
            assert_eq!(b64(bad), Err(ErrorKind::Malformed), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]

        /// The hand-written decoder accepts and yields exactly what the `base64` crate's
        /// strict engine does.
        #[test]
        fn decodes_as_the_base64_crate_does(
            text in "[A-Za-z0-9_=+/ .-]{0,40}",
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            use base64::Engine as _;
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let encoded = URL_SAFE_NO_PAD.encode(&bytes);
            for input in [text.as_str(), encoded.as_str()] {
                let theirs = URL_SAFE_NO_PAD.decode(input).map_err(|_| ErrorKind::Malformed);
                proptest::prop_assert_eq!(b64(input), theirs.clone(), "{}", input);
                let mut buf = [0u8; 32];
                let mut spill = Vec::new();
                let ours = b64_into(input.as_bytes(), &mut buf, &mut spill).map(<[u8]>::to_vec);
                proptest::prop_assert_eq!(ours, theirs, "{}", input);
            }
        }
    }
}
