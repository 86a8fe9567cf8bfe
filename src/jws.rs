//! The compact JWS form (RFC 7515 section 7.1): strict base64url, the protected header,
//! and the two peeks taken before a signature is checked (the `kid` for a refetch, the
//! `iss` that picks the issuer). Nothing read here is trusted until the signature is.

use std::cell::RefCell;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};

use crate::error::ErrorKind;
use crate::payload;
use crate::text::Text;

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

pub(crate) fn b64(segment: &str) -> Result<Vec<u8>, ErrorKind> {
    // Strict base64url: no padding, no standard-alphabet characters, canonical trailing
    // bits (RFC 7515 section 2).
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| ErrorKind::Malformed)
}

/// Decodes `segment` as strict base64url (see [`b64`]) into `buf` when it fits, else
/// into `spill`: with a stack buffer the size of a header, a signature or a common
/// payload, the request path does not allocate for them.
pub(crate) fn b64_into<'b>(
    segment: &str,
    buf: &'b mut [u8],
    spill: &'b mut Vec<u8>,
) -> Result<&'b [u8], ErrorKind> {
    // The exact decoded size of unpadded base64 (a remainder of 1 is refused).
    if segment.len() / 4 * 3 + segment.len() % 4 * 3 / 4 <= buf.len() {
        let len = URL_SAFE_NO_PAD
            .decode_slice(segment, buf)
            .map_err(|_| ErrorKind::Malformed)?;
        Ok(&buf[..len])
    } else {
        *spill = b64(segment)?;
        Ok(spill)
    }
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
    fn header_must_be_an_object_without_duplicates() {
        assert!(json_object::<Header<'_>>(br#"["RS256"]"#).is_err());
        assert!(json_object::<Header<'_>>(br#"{"alg":"RS256","alg":"none"}"#).is_err());
        let h: Header<'_> = json_object(br#"{"alg":"RS256","crit":null}"#).expect("header");
        assert!(h.crit);
        let h: Header<'_> = json_object(br#"{"alg":"RS256","kid":"a\/b"}"#).expect("escaped kid");
        assert_eq!(h.kid.expect("kid").0, "a/b");
    }
}
