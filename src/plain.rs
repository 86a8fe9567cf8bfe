//! A payload checked against [`StandardClaims`] without serde when it is plain, as
//! issuers write access tokens: an object of distinct top-level names (at most 32 beside
//! `StandardClaims`' fields) whose keys and strings have no escapes, whose numbers are
//! whole (dates of at most 15 digits and not negative, other numbers of at most 18),
//! and whose arrays and objects nest 16 levels at most. One scan reads such a payload and
//! fills the [`Registered`] claims directly. Inside a claim's value a name may repeat, as
//! the serde pass allows too (a nested permission claim is read last-one-wins by both).
//!
//! Anything else (an escape, a fraction or an exponent, a top-level name given twice, a
//! value of the wrong type for its claim, deep nesting, bytes that are not UTF-8, a
//! syntax error) goes to the serde pass (`payload.rs` with `StandardShape`), which decides it as it
//! always has. So nothing is refused here: the scan only recognises payloads the serde
//! pass accepts, and finds in them what that pass finds (a property test holds the two
//! equal). It costs half of that pass on a common access token.
//!
//! A JOSE header of strings without escapes is read the same way ([`header`]).
//!
//! When a handler first reads the claims, the same walk makes `StandardClaims` from a
//! plain payload whose other claims are strings, whole numbers, literals or arrays of
//! strings, as serde_json makes them (a property test holds the two equal); any other
//! payload is made by serde_json, as before.
//!
//! [`StandardClaims`]: crate::StandardClaims

use std::borrow::Cow;

use serde_json::Value;

use crate::claims::{Audience, NumericDate, OneOrMany, StandardClaims};
use crate::error::ErrorKind;
use crate::jws::Header;
use crate::payload::{self, Claim, Registered};
use crate::replay::{Simple, Strings};
use crate::shape::{self, SERDE_JSON_PRIVATE, StandardShape, Wants};
use crate::text::{Json, Text};

/// How deep arrays and objects may nest inside a claim's value (serde_json's own limit
/// is 128): deeper ones go to the serde pass.
const MAX_DEPTH: usize = 16;

/// How many claims outside `StandardClaims`' fields a recognised payload may have: their
/// names are compared with each other for duplicates.
const MAX_OTHERS: usize = 32;

/// The registered claims of a payload that must hold what `StandardClaims` accepts:
/// read by the scan when the payload is plain, by the serde pass otherwise.
pub(crate) fn standard<'de>(
    payload: &'de [u8],
    collect_names: bool,
    capture: &'de [Box<str>],
) -> Result<Registered<'de>, ErrorKind> {
    if let Some(registered) = recognise(payload, collect_names, capture) {
        return Ok(registered);
    }
    let (StandardShape, registered) = payload::parse(payload, collect_names, capture)?;
    Ok(registered)
}

/// The registered claims of a plain payload, as the serde pass would find them; none for
/// a payload that is not plain, or that the serde pass might refuse.
fn recognise<'de>(
    payload: &'de [u8],
    collect_names: bool,
    capture: &'de [Box<str>],
) -> Option<Registered<'de>> {
    let mut registered = Registered::new(collect_names, capture);
    // `None` is all zeros, cheaper to lay out than empty strings.
    let mut others: [Option<&str>; MAX_OTHERS] = [None; MAX_OTHERS];
    let mut other_count = 0;
    claims(payload, |scan, name, wants| {
        if wants.is_none() {
            // Names given twice are refused by `StandardClaims`; its fields' are
            // found by `claims`.
            if others[..other_count].contains(&Some(name)) {
                return None;
            }
            *others.get_mut(other_count)? = Some(name);
            other_count += 1;
        }
        let start = scan.at;
        let simple = scan.value(wants)?;
        let raw = Json::delimited(scan.text.get(start..scan.at)?);
        if let Some(claim) = Claim::from_name(name)
            && !registered.observe(claim, raw, simple)
        {
            return None;
        }
        if let Some(index) = capture.iter().position(|c| **c == *name) {
            registered.captured.push((index, raw));
        }
        if let Some(names) = &mut registered.names {
            names.push(Cow::Borrowed(name));
        }
        Some(())
    })?;
    Some(registered)
}

/// A JOSE header read without serde when it is plain, as issuers write it: an object
/// whose members are all strings without escapes, with `alg`, at most one `kid` and one
/// `typ`, and no `crit`. Anything else (a member of another type, an escape, a name the
/// header reads given twice, `crit`, bytes that are not UTF-8, a syntax error) is none,
/// and the caller asks serde, which decides it as it always has: a property test holds
/// the two equal. About 1 000 instructions on a common header against serde's 1 400.
pub(crate) fn header(bytes: &[u8]) -> Option<Header<'_>> {
    let (mut alg, mut kid, mut typ) = (None, None, None);
    object(bytes, |scan, name| {
        let value = scan.string()?;
        let slot = match name {
            "alg" => &mut alg,
            "kid" => &mut kid,
            "typ" => &mut typ,
            "crit" => return None,
            // Other members are not read, and may repeat as serde lets them.
            _ => return Some(()),
        };
        slot.replace(value).is_none().then_some(())
    })?;
    let text = |value| Text(Cow::Borrowed(value));
    Some(Header {
        alg: text(alg?),
        kid: kid.map(text),
        typ: typ.map(text),
        crit: false,
    })
}

/// `StandardClaims` made from a plain payload whose claims outside its fields are
/// strings, whole numbers, literals or arrays of strings, as serde_json makes them;
/// none for any other payload (the caller then asks serde_json).
pub(crate) fn standard_claims(payload: &[u8]) -> Option<StandardClaims> {
    let mut made = StandardClaims::default();
    claims(payload, |scan, name, wants| {
        let Some(wants) = wants else {
            let value = scan.leaf()?;
            // A name given twice is refused, as `StandardClaims` refuses it.
            return made
                .extra
                .insert(name.to_owned(), value)
                .is_none()
                .then_some(());
        };
        fill(&mut made, name, scan.value(Some(wants))?)
    })?;
    Some(made)
}

/// Walks a plain payload's top-level object: `claim` reads each claim's value, given
/// its name and, for a field of `StandardClaims`, what the field asks of it. A field
/// given twice ends the walk, as does anything that is not plain.
fn claims<'de>(
    payload: &'de [u8],
    mut claim: impl FnMut(&mut Scan<'de>, &'de str, Option<Wants>) -> Option<()>,
) -> Option<()> {
    let mut fields = [false; shape::FIELDS];
    object(payload, |scan, name| {
        let field = shape::field(name);
        if let Some((slot, _)) = field
            && std::mem::replace(&mut fields[slot], true)
        {
            return None;
        }
        claim(scan, name, field.map(|(_, wants)| wants))
    })
}

/// Walks a plain JSON object that is all of `bytes`: `member` reads each member's
/// value, given its name (a string without escapes). Anything that is not plain ends
/// the walk.
fn object<'de>(
    bytes: &'de [u8],
    mut member: impl FnMut(&mut Scan<'de>, &'de str) -> Option<()>,
) -> Option<()> {
    // Checked once for the whole object, so every slice of it below is text.
    let text = std::str::from_utf8(bytes).ok()?;
    let mut scan = Scan { text, at: 0 };
    scan.space();
    scan.expect(b'{')?;
    scan.items(b'}', |scan| {
        let name = scan.string()?;
        scan.space();
        scan.expect(b':')?;
        scan.space();
        member(scan, name)
    })?;
    scan.space();
    (scan.at == text.len()).then_some(())
}

/// Sets the field `name` of `made` from its value's simple form, which has the form the
/// field asks for.
fn fill(made: &mut StandardClaims, name: &str, value: Simple<'_>) -> Option<()> {
    let text = || match value {
        Simple::Str(text) => Some(text.to_owned()),
        _ => None,
    };
    let texts = || match value {
        Simple::Strs(array) => Strings::new(array)
            .map(|quoted| quoted.map(|q| q[1..q.len() - 1].to_owned()))
            .collect::<Option<Vec<_>>>(),
        _ => None,
    };
    let date = || match value {
        // At most 15 digits: exact, as serde_json's `u64` read as an `f64` is.
        #[allow(clippy::cast_possible_wrap)]
        Simple::Whole(n) => Some(NumericDate::from_secs(n as i64)),
        _ => None,
    };
    match name {
        "iss" => made.iss = Some(text()?),
        "sub" => made.sub = Some(text()?),
        "jti" => made.jti = Some(text()?),
        "client_id" => made.client_id = Some(text()?),
        "azp" => made.azp = Some(text()?),
        "tid" => made.tid = Some(text()?),
        "scope" => made.scope = Some(text()?),
        "exp" => made.exp = Some(date()?),
        "nbf" => made.nbf = Some(date()?),
        "iat" => made.iat = Some(date()?),
        "aud" => {
            made.aud = Some(text().map_or_else(
                || texts().map(Audience::Many),
                |t| Some(Audience::Single(t)),
            )?)
        }
        "scp" => {
            made.scp = Some(
                text().map_or_else(|| texts().map(OneOrMany::Many), |t| Some(OneOrMany::One(t)))?,
            )
        }
        "permissions" => made.permissions = texts()?,
        "roles" => made.roles = texts()?,
        _ => return None,
    }
    Some(())
}

/// A position in the payload's text. Every method answers `None` where the text is not
/// what a plain payload has there, which ends the scan.
struct Scan<'de> {
    text: &'de str,
    at: usize,
}

impl<'de> Scan<'de> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Past JSON whitespace.
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// Past `byte` when it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.at += usize::from(next);
        next
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A value of the form `wants` asks for (any value for `None`), in its simple form
    /// for the registered claims.
    fn value(&mut self, wants: Option<Wants>) -> Option<Simple<'de>> {
        let next = self.peek()?;
        match (wants, next) {
            (Some(Wants::Text | Wants::TextOrTexts), b'"') => self.string().map(Simple::Str),
            (Some(Wants::Texts | Wants::TextOrTexts), b'[') => {
                let start = self.at;
                self.strings()?;
                Some(Simple::Strs(&self.text[start..self.at]))
            }
            (Some(Wants::Date), _) => self.date().map(Simple::Whole),
            // Of the registered claims only `cnf` takes any value, and it is kept raw.
            (None, _) => self.any(0).map(|()| Simple::Other),
            _ => None,
        }
    }

    /// A string without escapes: its text, between the quotes.
    fn string(&mut self) -> Option<&'de str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.at + 1;
        let end = start + plain_len(self.text.as_bytes().get(start..)?)?;
        self.at = end + 1;
        // Both ends are next to ASCII quotes: character boundaries.
        self.text.get(start..end)
    }

    /// The items of an array or an object, from past its opening bracket to past its
    /// `close`, each read by `item`.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.space();
        if self.eat(close) {
            return Some(());
        }
        loop {
            item(self)?;
            self.space();
            if self.eat(close) {
                return Some(());
            }
            self.expect(b',')?;
            self.space();
        }
    }

    /// An array of strings without escapes.
    fn strings(&mut self) -> Option<()> {
        self.expect(b'[')?;
        self.items(b']', |scan| scan.string().map(drop))
    }

    /// Digits as JSON writes them (no leading zero): how many.
    fn digits(&mut self) -> Option<usize> {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        let count = self.at - start;
        let leading_zero = count > 1 && self.text.as_bytes()[start] == b'0';
        (count > 0 && !leading_zero).then_some(count)
    }

    /// A whole number of 1 to 15 digits (every date): exact as an `f64`, the form the
    /// serde pass reads without a parser too.
    fn date(&mut self) -> Option<u64> {
        let start = self.at;
        if self.digits()? > 15 {
            return None;
        }
        self.text.get(start..self.at)?.parse().ok()
    }

    /// Any value of a plain payload: a string without escapes, a whole number of up to
    /// 18 digits (serde_json reads every one), `true`, `false`, `null`, and arrays and
    /// objects of those up to [`MAX_DEPTH`], with no key `serde_json::Value` reads as a
    /// marker of its own (`StandardShape` refuses them).
    fn any(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => {
                self.eat(b'-');
                (self.digits()? <= 18).then_some(())
            }
            b't' => self.word("true"),
            b'f' => self.word("false"),
            b'n' => self.word("null"),
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                self.items(b']', |scan| scan.any(depth + 1))
            }
            b'{' if depth < MAX_DEPTH => {
                self.at += 1;
                self.items(b'}', |scan| {
                    // Names given twice in a nested object are no refusal: the last one
                    // counts, as in `serde_json::Value`.
                    if scan.string()?.starts_with(SERDE_JSON_PRIVATE) {
                        return None;
                    }
                    scan.space();
                    scan.expect(b':')?;
                    scan.space();
                    scan.any(depth + 1)
                })
            }
            _ => None,
        }
    }

    /// A value of a claim outside `StandardClaims`' fields that `standard_claims` makes:
    /// a string, a whole number, a literal or an array of strings.
    fn leaf(&mut self) -> Option<Value> {
        let start = self.at;
        match self.peek()? {
            b'"' => self.string().map(|text| Value::String(text.to_owned())),
            b'0'..=b'9' => {
                if self.digits()? > 18 {
                    return None;
                }
                let n: u64 = self.text.get(start..self.at)?.parse().ok()?;
                Some(Value::from(n))
            }
            b't' => self.word("true").map(|()| Value::Bool(true)),
            b'f' => self.word("false").map(|()| Value::Bool(false)),
            b'n' => self.word("null").map(|()| Value::Null),
            b'[' => {
                self.strings()?;
                Strings::new(self.text.get(start..self.at)?)
                    .map(|quoted| quoted.map(|q| Value::String(q[1..q.len() - 1].to_owned())))
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            }
            _ => None,
        }
    }

    fn word(&mut self, word: &str) -> Option<()> {
        self.text.get(self.at..)?.starts_with(word).then_some(())?;
        self.at += word.len();
        Some(())
    }
}

/// The length of a string's text up to its closing quote; none at a backslash or a
/// control character (or without a closing quote).
fn plain_len(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let mut at = 0;
    // Eight bytes at a time, since most of a payload is string text. In each of the
    // three tests `(x - k) & !x & HIGH`, the lowest flagged byte is the first that
    // matches (a borrow only runs upwards from a match), so the lowest flag of all is
    // the first quote, backslash or control character.
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let flags = flags & HIGH;
        if flags != 0 {
            let first = at + (flags.trailing_zeros() / 8) as usize;
            return (bytes[first] == b'"').then_some(first);
        }
        at += 8;
    }
    for (offset, byte) in bytes.get(at..)?.iter().enumerate() {
        match byte {
            b'"' => return Some(at + offset),
            b'\\' | 0..0x20 => return None,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::payload::Aud;
    use crate::shape::tests::{name, plain_name};

    /// Everything a pass found in `payload`, as text; values kept raw are named by their
    /// place in the payload too, since the permission set is read from there.
    fn found(payload: &[u8], r: &Registered<'_>) -> String {
        let at = |json: &Json<'_>| {
            let offset = json.get().as_ptr() as usize - payload.as_ptr() as usize;
            format!("{}@{offset}", json.get())
        };
        let aud = match &r.aud {
            None => "-".to_owned(),
            Some(Aud::One(text)) => format!("one {:?}", text.0),
            Some(Aud::Many(json)) => format!("many {}", at(json)),
        };
        let captured: Vec<_> = r.captured.iter().map(|(i, j)| (i, at(j))).collect();
        format!(
            "iss {:?} aud {aud} dates {:?} {:?} {:?} tid {:?} sub {:?} client {:?} azp {:?} \
             jti {:?} cnf {:?} names {:?} captured {captured:?}",
            r.iss,
            r.exp,
            r.nbf,
            r.iat,
            r.tid,
            r.sub,
            r.client_id,
            r.azp,
            r.jti,
            r.cnf.as_ref().map(at),
            r.names,
        )
    }

    fn by_serde(payload: &[u8], names: bool, capture: &[Box<str>]) -> Option<String> {
        let (StandardShape, r) = payload::parse(payload, names, capture).ok()?;
        Some(found(payload, &r))
    }

    fn by_scan(payload: &[u8], names: bool, capture: &[Box<str>]) -> Option<String> {
        recognise(payload, names, capture).map(|r| found(payload, &r))
    }

    /// The capture lists the pass may be given: none, the default permission claims,
    /// and names of rules and forwarded claims.
    fn captures() -> [Vec<Box<str>>; 3] {
        [
            Vec::new(),
            vec!["permissions".into(), "scope".into(), "scp".into()],
            vec![
                "x".into(),
                "realm_access".into(),
                "cnf".into(),
                "aud".into(),
            ],
        ]
    }

    /// Whenever claims are made from `payload` here, serde_json makes the same claims;
    /// with `plain`, they are made here whenever serde_json makes them.
    fn same_claims(payload: &[u8], plain: bool) -> Result<(), TestCaseError> {
        let made = standard_claims(payload);
        let serde = serde_json::from_slice::<StandardClaims>(payload).ok();
        if made.is_some() || plain {
            prop_assert_eq!(made, serde, "{}", String::from_utf8_lossy(payload));
        }
        Ok(())
    }

    /// Whenever the scan recognises `payload`, the serde pass accepts it and finds the
    /// same; with `plain`, the scan also recognises everything the serde pass accepts.
    fn agree(payload: &[u8], plain: bool) -> Result<(), TestCaseError> {
        same_claims(payload, false)?;
        let shown = String::from_utf8_lossy(payload);
        for capture in captures() {
            for names in [false, true] {
                let scanned = by_scan(payload, names, &capture);
                let serde = by_serde(payload, names, &capture);
                if scanned.is_some() || plain {
                    prop_assert_eq!(&scanned, &serde, "{}", shown);
                }
                let kind = standard(payload, names, &capture).map(|r| found(payload, &r));
                let serde_kind = payload::parse::<StandardShape>(payload, names, &capture)
                    .map(|(_, r)| found(payload, &r));
                prop_assert_eq!(kind, serde_kind, "{}", shown);
            }
        }
        Ok(())
    }

    #[test]
    fn plain_payloads_are_recognised_and_others_left_to_serde() {
        let deep = |depth: usize| format!(r#"{{"x":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        let recognised = [
            "{}".to_owned(),
            " {\n\t\"exp\" : 1 ,\r\n\"aud\":[ \"a\" , \"b\" ] } ".to_owned(),
            r#"{"sub":"é ü","exp":0,"iat":999999999999999,"aud":"x","scope":"a b"}"#.to_owned(),
            r#"{"x":{"a":1,"a":2}}"#.to_owned(),
            r#"{"x":true,"y":null,"z":[false,-3,{"k":[]},"",-0]}"#.to_owned(),
            r#"{"cnf":{"jkt":"abc"},"permissions":[],"roles":["r"],"scp":[]}"#.to_owned(),
            r#"{"$serde_json::private::RawValue":0}"#.to_owned(),
            r#"{"x":-123456789012345678}"#.to_owned(),
            deep(MAX_DEPTH),
        ];
        for payload in &recognised {
            assert!(
                by_scan(payload.as_bytes(), true, &[]).is_some(),
                "{payload}"
            );
            agree(payload.as_bytes(), true).expect("the same");
        }
        let left = [
            r#"{"exp":1.5}"#.to_owned(),
            r#"{"exp":1e3}"#.to_owned(),
            r#"{"exp":-1}"#.to_owned(),
            r#"{"exp":01}"#.to_owned(),
            r#"{"exp":1234567890123456}"#.to_owned(),
            r#"{"x":1234567890123456789}"#.to_owned(),
            r#"{"sub":"a\"b"}"#.to_owned(),
            r#"{"s\u0075b":"a"}"#.to_owned(),
            r#"{"x":1,"x":2}"#.to_owned(),
            r#"{"sub":"a","sub":"a"}"#.to_owned(),
            r#"{"cnf":{},"cnf":{}}"#.to_owned(),
            r#"{"x":{"$serde_json::private::RawValue":1}}"#.to_owned(),
            r#"{"x":[{"$serde_json::private::Number":"1"}]}"#.to_owned(),
            "{\"x\":\"\u{1}\"}".to_owned(),
            r#"{"a":1} x"#.to_owned(),
            "[1]".to_owned(),
            r#"{"a":1,}"#.to_owned(),
            r#"{"a" 1}"#.to_owned(),
            r#"{"a":tru}"#.to_owned(),
            r#"{"a":"#.to_owned(),
            r#"{"exp":"1"}"#.to_owned(),
            r#"{"aud":5}"#.to_owned(),
            r#"{"permissions":"a"}"#.to_owned(),
            r#"{"aud":["a",1]}"#.to_owned(),
            deep(MAX_DEPTH + 1),
        ];
        for payload in &left {
            assert!(
                by_scan(payload.as_bytes(), true, &[]).is_none(),
                "{payload}"
            );
            agree(payload.as_bytes(), false).expect("the same");
        }
        // Bytes that are not UTF-8, in a string or outside one.
        for payload in [
            &b"{\"x\":\"\xff\"}"[..],
            b"{\"x\":1}\xff",
            b"\xef\xbb\xbf{}",
        ] {
            assert!(by_scan(payload, true, &[]).is_none());
            agree(payload, false).expect("the same");
        }
        // More names outside the fields than the scan compares: left to serde.
        let many: Vec<String> = (0..=MAX_OTHERS).map(|i| format!("\"c{i}\":{i}")).collect();
        let payload = format!("{{{}}}", many.join(","));
        assert!(by_scan(payload.as_bytes(), false, &[]).is_none());
        assert!(by_serde(payload.as_bytes(), false, &[]).is_some());
    }

    #[test]
    fn common_headers_are_read_by_hand_and_the_rest_left_to_serde() {
        let h = header(br#" {"alg":"RS256", "kid" : "k-1","typ":"at+jwt","x":"y","x":"z"} "#)
            .expect("plain");
        assert_eq!(h.alg.0, "RS256");
        assert_eq!(h.kid.map(|k| k.0), Some("k-1".into()));
        assert_eq!(h.typ.map(|t| t.0), Some("at+jwt".into()));
        assert!(!h.crit);
        for left in [
            &br#"{"alg":"RS256","crit":["exp"]}"#[..],
            br#"{"alg":"RS256","alg":"none"}"#,
            br#"{"alg":"RS\u0032"}"#,
            br#"{"alg":"RS256","jwk":{}}"#,
            br#"{"alg":"RS256"}x"#,
            br#"{"kid":"k"}"#,
            br#"["RS256"]"#,
            b"{\"alg\":\"\xff\"}",
        ] {
            assert!(header(left).is_none(), "{}", String::from_utf8_lossy(left));
        }
    }

    /// The byte-at-a-time reading of a string's end.
    fn naive_len(bytes: &[u8]) -> Option<usize> {
        for (at, byte) in bytes.iter().enumerate() {
            match byte {
                b'"' => return Some(at),
                b'\\' | 0..0x20 => return None,
                _ => {}
            }
        }
        None
    }

    /// Values claims are made from without serde: strings without escapes, whole
    /// numbers a date may be, literals, arrays of strings.
    fn leaf_value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z é:/|$]{0,12}".prop_map(|s| format!("\"{s}\"")),
            (0u32..16, any::<u64>()).prop_map(|(digits, n)| (n % 10u64.pow(digits)).to_string()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("null".to_owned()),
            Just(r#"[ "a" , "b" ]"#.to_owned()),
            Just("[]".to_owned()),
            prop::collection::vec("[a-z é]{0,4}", 0..3)
                .prop_map(|v| format!("[\"{}\"]", v.join("\",\""))),
        ]
    }

    /// Values the scan recognises: those, and arrays and objects of them.
    fn plain_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![leaf_value(), Just("{ }".to_owned())];
        crate::shape::tests::nested(leaf, "[a-c$]{1,2}")
    }

    /// What the scan must leave to serde, or what no JSON is.
    fn odd_value() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => crate::shape::tests::value(),
            // Whole numbers past a date's 15 digits, negative ones, and past u64.
            1 => (0u32..20, any::<u64>(), any::<bool>()).prop_map(|(digits, n, negative)| {
                let n = n % 10u64.checked_pow(digits).unwrap_or(u64::MAX);
                if negative { format!("-{n}") } else { n.to_string() }
            }),
            2 => prop::sample::select(vec![
                "-0",
                "18446744073709551616",
                "01",
                "1.",
                "-",
                "-1",
                "1.5",
                "1e3",
                "1234567890123456",
                "12345678901234567890",
                "[1,]",
                r#"{"a"}"#,
                "tru",
                "nul",
                "\"a\u{1}\"",
                r#"{"$serde_json::private::RawValue":"1"}"#,
                r#"["a","b\n"]"#,
            ])
            .prop_map(str::to_owned),
        ]
    }

    /// An object of `entries`, with `space` around every name and value.
    fn object(entries: &[(String, String)], space: &str) -> String {
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{space}\"{k}\"{space}:{space}{v}{space}"))
            .collect();
        format!("{space}{{{}}}{space}", body.join(","))
    }

    fn space() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", " ", "\r\n\t "])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn a_plain_payload_is_read_as_the_serde_pass_reads_it(
            entries in prop::collection::vec((plain_name(), plain_value()), 0..8),
            space in space(),
        ) {
            agree(object(&entries, space).as_bytes(), true)?;
        }

        #[test]
        fn claims_of_plain_values_are_made_as_serde_json_makes_them(
            entries in prop::collection::vec((plain_name(), leaf_value()), 0..8),
            space in space(),
        ) {
            same_claims(object(&entries, space).as_bytes(), true)?;
        }

        #[test]
        fn what_the_scan_recognises_the_serde_pass_accepts_alike(
            entries in prop::collection::vec(
                (name(), prop_oneof![plain_value(), odd_value()]),
                0..8,
            ),
            space in space(),
            cut in any::<prop::sample::Index>(),
            changed in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(
                vec![
                    0xff_u8, b'\\', b'"', 0x01, b'}', b']', b',', b' ', b'0', b'.', 0x00, 0x0b,
                    0x0c, 0x7f, b'-', b'e', b'E', 0xc3,
                ],
            ))),
            truncate in any::<bool>(),
        ) {
            let mut payload = object(&entries, space).into_bytes();
            if let Some((at, byte)) = changed {
                let at = at.index(payload.len());
                payload[at] = byte;
            }
            if truncate {
                payload.truncate(cut.index(payload.len() + 1));
            }
            agree(&payload, false)?;
        }

        #[test]
        fn a_plain_header_is_read_as_serde_reads_it(
            entries in prop::collection::vec(
                (
                    prop::sample::select(vec!["alg", "kid", "typ", "crit", "x5c", "jku", "a"]),
                    prop_oneof![
                        4 => "[A-Za-z0-9+ é-]{0,8}".prop_map(|s| format!("\"{s}\"")),
                        1 => odd_value(),
                        1 => plain_value(),
                    ],
                ),
                0..5,
            ),
            space in space(),
            changed in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(
                vec![0xff_u8, b'\\', b'"', 0x01, b'}', b',', b' ', b':', 0xc3],
            ))),
        ) {
            let entries: Vec<(String, String)> =
                entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let mut header = object(&entries, space).into_bytes();
            if let Some((at, byte)) = changed {
                let at = at.index(header.len());
                header[at] = byte;
            }
            let by_serde = crate::jws::json_object::<Header<'_>>(&header).ok();
            let seen = |h: &Header<'_>| (h.alg.0.to_string(), h.kid.as_ref().map(|k| k.0.to_string()),
                h.typ.as_ref().map(|t| t.0.to_string()), h.crit);
            if let Some(ours) = super::header(&header) {
                prop_assert_eq!(Some(seen(&ours)), by_serde.as_ref().map(seen));
            }
        }

        #[test]
        fn a_string_ends_where_a_byte_at_a_time_reading_ends_it(
            bytes in prop::collection::vec(
                prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>()],
                0..40,
            )
        ) {
            prop_assert_eq!(plain_len(&bytes), naive_len(&bytes));
        }
    }
}
