//! One pass over a verified payload: the user's claims type is deserialized while the
//! registered claims the verifier checks (`iss`, `aud`, `exp`, `nbf`, `iat`, and Entra's
//! `tid`) are observed
//! on the way, so the payload is parsed once whatever the claims type.
//!
//! The top-level object is handed to the claims type's visitor through [`ObservingMap`],
//! which reads every key itself, captures the values of registered claims as raw JSON,
//! checks them, and passes both on: the key as it is, the value as a [`Replay`], which
//! hands the claims type what the pass already read (a plain string, a whole number,
//! an array of plain strings) without parsing it again. Entries the visitor leaves
//! unread are drained afterwards, so a claims type that stops early cannot hide an
//! `exp`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::ErrorKind;
use crate::replay::{Replay, Simple, Strings};
use crate::text::{Json, Text};

/// The registered claims seen in a payload.
#[derive(Default)]
pub(crate) struct Registered<'de> {
    pub(crate) iss: Option<Text<'de>>,
    pub(crate) aud: Option<Aud<'de>>,
    pub(crate) exp: Option<f64>,
    pub(crate) nbf: Option<f64>,
    pub(crate) iat: Option<f64>,
    /// Entra's tenant id, for keys whose `issuer` member is a tenant template.
    pub(crate) tid: Option<Text<'de>>,
    /// Who the token names, for spans and the audit hook: `sub`, `client_id`, `azp`.
    /// Read leniently (a value of another type is left to the claims type to judge).
    pub(crate) sub: Option<Text<'de>>,
    pub(crate) client_id: Option<Text<'de>>,
    pub(crate) azp: Option<Text<'de>>,
    /// The token's id, for single use and revocation; read leniently like `sub`.
    pub(crate) jti: Option<Text<'de>>,
    /// The confirmation claim of a sender-constrained token, judged by `binding.rs`.
    pub(crate) cnf: Option<Json<'de>>,
    /// Every top-level claim name, collected only when asked for.
    pub(crate) names: Option<Vec<Cow<'de, str>>>,
    /// The raw values of the claims asked for by name (permission sources), with the
    /// index of the name in the list given to [`parse`].
    pub(crate) captured: Vec<(usize, Json<'de>)>,
    capture: &'de [Box<str>],
    /// The first problem with a registered claim; it outranks the claims type's error.
    problem: Option<ErrorKind>,
}

impl<'de> Registered<'de> {
    /// Nothing seen yet; every name kept when `collect_names`, and the values of the
    /// names in `capture`.
    pub(crate) fn new(collect_names: bool, capture: &'de [Box<str>]) -> Self {
        Self {
            names: collect_names.then(Vec::new),
            capture,
            ..Self::default()
        }
    }
}

/// Deserializes `payload` (a JSON object) into `C` and observes the registered claims.
pub(crate) fn parse<'de, C: Deserialize<'de>>(
    payload: &'de [u8],
    collect_names: bool,
    capture: &'de [Box<str>],
) -> Result<(C, Registered<'de>), ErrorKind> {
    if payload.trim_ascii_start().first() != Some(&b'{') {
        // serde would accept a JSON array for a struct.
        return Err(ErrorKind::Malformed);
    }
    let mut registered = Registered::new(collect_names, capture);
    let mut de = serde_json::Deserializer::from_slice(payload);
    let result = C::deserialize(Observing {
        de: &mut de,
        registered: &mut registered,
    })
    .and_then(|claims| de.end().map(|()| claims));
    match (result, registered.problem) {
        (_, Some(kind)) => Err(kind),
        (Ok(claims), None) => Ok((claims, registered)),
        (Err(e), None) => Err(json_error(&e)),
    }
}

/// JSON that does not parse is malformed; JSON of the wrong shape is an invalid claim.
pub(crate) fn json_error(e: &serde_json::Error) -> ErrorKind {
    if e.is_data() {
        ErrorKind::InvalidClaim
    } else {
        ErrorKind::Malformed
    }
}

/// `aud`: one string or an array of strings, kept without allocating: a string as its
/// text, an array as its raw JSON (checked to hold only strings when seen, read again
/// when compared).
pub(crate) enum Aud<'de> {
    One(Text<'de>),
    Many(Json<'de>),
}

impl<'de> Aud<'de> {
    fn parse(raw: Json<'de>, simple: Simple<'de>) -> Option<Self> {
        match simple {
            Simple::Str(text) => Some(Self::One(Text(Cow::Borrowed(text)))),
            Simple::Strs(_) => Some(Self::Many(raw)),
            Simple::Whole(_) => None,
            Simple::Other if raw.get().starts_with('[') => {
                // Every element must be a string: `each` refuses any other.
                Self::each(raw, |_| {}).ok()?;
                Some(Self::Many(raw))
            }
            Simple::Other => Text::from_json(raw).map(Self::One),
        }
    }

    /// Whether `accept` holds for at least one audience.
    pub(crate) fn any(&self, mut accept: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::One(one) => accept(&one.0),
            Self::Many(raw) => {
                let mut found = false;
                Self::each(*raw, |aud| found = found || accept(aud)).is_ok() && found
            }
        }
    }

    /// Calls `f` on each string of a JSON array; an element of another type is an error.
    fn each(raw: Json<'de>, mut f: impl FnMut(&str)) -> Result<(), serde_json::Error> {
        if Strings::new(raw.get()).all(|element| element.is_some()) {
            for quoted in Strings::new(raw.get()).flatten() {
                f(&quoted[1..quoted.len() - 1]);
            }
            return Ok(());
        }
        struct Each<F>(F);
        impl<'de, F: FnMut(&str)> Visitor<'de> for Each<F> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
                while let Some(one) = seq.next_element::<Text<'de>>()? {
                    (self.0)(&one.0);
                }
                Ok(())
            }
        }
        raw.reader().deserialize_seq(Each(f))
    }
}

/// The claims the verifier reads itself.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    Iss,
    Aud,
    Exp,
    Nbf,
    Iat,
    Tid,
    Sub,
    ClientId,
    Azp,
    Jti,
    Cnf,
}

impl Claim {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "iss" => Self::Iss,
            "aud" => Self::Aud,
            "exp" => Self::Exp,
            "nbf" => Self::Nbf,
            "iat" => Self::Iat,
            "tid" => Self::Tid,
            "sub" => Self::Sub,
            "client_id" => Self::ClientId,
            "azp" => Self::Azp,
            "jti" => Self::Jti,
            "cnf" => Self::Cnf,
            _ => return None,
        })
    }
}

impl<'de> Registered<'de> {
    /// Records a registered claim from its raw JSON and its simple form; `false` if it
    /// is a duplicate or of the wrong type.
    pub(crate) fn observe(&mut self, claim: Claim, raw: Json<'de>, simple: Simple<'de>) -> bool {
        // A string without escapes or a whole number below 10^15 (every date) as the
        // pass read it; any other form parsed.
        let number = || match simple {
            #[allow(clippy::cast_precision_loss)] // below 2^53: exact
            Simple::Whole(n) => Some(n as f64),
            Simple::Str(_) | Simple::Strs(_) => None,
            Simple::Other => crate::claims::numeric(&mut raw.reader()).ok(),
        };
        let text = || match simple {
            Simple::Str(text) => Some(Text(Cow::Borrowed(text))),
            Simple::Whole(_) | Simple::Strs(_) => None,
            Simple::Other => Text::from_json(raw),
        };
        if let Claim::Cnf = claim {
            // Twice is ambiguous: refuse rather than pick one binding.
            let fresh = self.cnf.is_none();
            self.cnf = Some(raw);
            if !fresh && self.problem.is_none() {
                self.problem = Some(ErrorKind::InvalidClaim);
            }
            return fresh;
        }
        let identity = match claim {
            Claim::Sub => Some(&mut self.sub),
            Claim::ClientId => Some(&mut self.client_id),
            Claim::Azp => Some(&mut self.azp),
            Claim::Jti => Some(&mut self.jti),
            _ => None,
        };
        if let Some(slot) = identity {
            if slot.is_none() {
                *slot = text();
            }
            return true;
        }
        let fresh = match claim {
            Claim::Iss => self.iss.is_none(),
            Claim::Aud => self.aud.is_none(),
            Claim::Exp => self.exp.is_none(),
            Claim::Nbf => self.nbf.is_none(),
            Claim::Iat => self.iat.is_none(),
            Claim::Tid => self.tid.is_none(),
            Claim::Sub | Claim::ClientId | Claim::Azp | Claim::Jti | Claim::Cnf => true,
        };
        let parsed = fresh
            && match claim {
                Claim::Iss => text().map(|t| self.iss = Some(t)).is_some(),
                Claim::Aud => Aud::parse(raw, simple)
                    .map(|a| self.aud = Some(a))
                    .is_some(),
                Claim::Exp => number().map(|n| self.exp = Some(n)).is_some(),
                Claim::Nbf => number().map(|n| self.nbf = Some(n)).is_some(),
                Claim::Iat => number().map(|n| self.iat = Some(n)).is_some(),
                Claim::Tid => text().map(|t| self.tid = Some(t)).is_some(),
                Claim::Sub | Claim::ClientId | Claim::Azp | Claim::Jti | Claim::Cnf => true,
            };
        if !parsed && self.problem.is_none() {
            self.problem = Some(ErrorKind::InvalidClaim);
        }
        parsed
    }
}

/// The payload deserializer handed to the claims type: always an object.
struct Observing<'a, 'de> {
    de: &'a mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
    registered: &'a mut Registered<'de>,
}

impl<'de> Deserializer<'de> for Observing<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.de.deserialize_map(ObservingVisitor {
            visitor,
            registered: self.registered,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        struct enum identifier ignored_any
    }
}

struct ObservingVisitor<'a, 'de, V> {
    visitor: V,
    registered: &'a mut Registered<'de>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for ObservingVisitor<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let mut access = ObservingMap {
            map,
            registered: self.registered,
            current: Current::Other,
        };
        let value = self.visitor.visit_map(&mut access)?;
        // Read what the visitor left, so every registered claim is seen.
        while access.next_key::<IgnoredAny>()?.is_some() {
            access.next_value::<IgnoredAny>()?;
        }
        Ok(value)
    }
}

struct ObservingMap<'a, 'de, A> {
    map: A,
    registered: &'a mut Registered<'de>,
    current: Current,
}

/// What the value under the key just read is for.
#[derive(Clone, Copy)]
enum Current {
    Other,
    /// A registered claim, also captured by name when it is at this index of the list.
    Registered(Claim, Option<usize>),
    Captured(usize),
}

impl<'de, A: MapAccess<'de>> ObservingMap<'_, 'de, A> {
    /// Keeps the raw value of a claim asked for by name (a permission source, a claim
    /// rule, a forwarded claim).
    fn capture(&mut self, index: usize, raw: &'de RawValue) -> Result<(), A::Error> {
        if self.registered.captured.iter().any(|(i, _)| *i == index) {
            // A captured claim given twice: refuse rather than guess.
            self.registered
                .problem
                .get_or_insert(ErrorKind::InvalidClaim);
            return Err(de::Error::custom("duplicate captured claim"));
        }
        self.registered.captured.push((index, Json::from(raw)));
        Ok(())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for ObservingMap<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(Text(name)) = self.map.next_key::<Text<'de>>()? else {
            return Ok(None);
        };
        let captured = self.registered.capture.iter().position(|c| **c == *name);
        self.current = match (Claim::from_name(&name), captured) {
            (Some(claim), captured) => Current::Registered(claim, captured),
            (None, Some(index)) => Current::Captured(index),
            (None, None) => Current::Other,
        };
        if let Some(names) = &mut self.registered.names {
            names.push(name.clone());
        }
        match name {
            Cow::Borrowed(name) => seed.deserialize(BorrowedStrDeserializer::new(name)),
            Cow::Owned(name) => seed.deserialize(StringDeserializer::new(name)),
        }
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        let current = std::mem::replace(&mut self.current, Current::Other);
        let (raw, simple) = match current {
            Current::Other => return self.map.next_value_seed(seed),
            Current::Registered(claim, captured) => {
                let raw = self.map.next_value()?;
                let simple = Simple::of(raw);
                if !self.registered.observe(claim, Json::from(raw), simple) {
                    return Err(de::Error::custom("invalid registered claim"));
                }
                if let Some(index) = captured {
                    self.capture(index, raw)?;
                }
                (raw, simple)
            }
            Current::Captured(index) => {
                let raw = self.map.next_value()?;
                self.capture(index, raw)?;
                (raw, Simple::of(raw))
            }
        };
        // What the pass read is handed on without parsing the value again.
        seed.deserialize(Replay::new(raw, simple))
            .map_err(de::Error::custom)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::StandardClaims;

    #[test]
    fn registered_claims_are_seen_whatever_the_claims_type() {
        let payload = br#"{"sub":"a","iss":"i","aud":["x","y"],"exp":10,"nbf":1.5,"iat":2}"#;
        let (_, r) = parse::<IgnoredAny>(payload, true, &[]).expect("parse");
        assert_eq!(r.iss, Some(Text(Cow::Borrowed("i"))));
        let aud = r.aud.expect("aud");
        let mut seen = Vec::new();
        assert!(!aud.any(|a| {
            seen.push(a.to_owned());
            false
        }));
        assert_eq!(seen, ["x", "y"]);
        assert!(aud.any(|a| a == "y"));
        assert_eq!((r.exp, r.nbf, r.iat), (Some(10.0), Some(1.5), Some(2.0)));
        assert_eq!(r.names.map(|n| n.len()), Some(6));

        let (claims, r) = parse::<StandardClaims>(payload, false, &[]).expect("parse");
        assert_eq!(
            claims.exp.map(crate::claims::NumericDate::as_secs),
            Some(10)
        );
        assert_eq!(claims.iss.as_deref(), Some("i"));
        assert_eq!(r.exp, Some(10.0));
        assert!(r.names.is_none());
    }

    #[test]
    fn a_claims_type_that_ignores_exp_still_has_it_checked() {
        #[derive(Deserialize)]
        struct OnlySub {
            #[allow(dead_code)]
            sub: String,
        }
        let bad = parse::<OnlySub>(br#"{"sub":"a","exp":"soon"}"#, false, &[]);
        assert_eq!(bad.err(), Some(ErrorKind::InvalidClaim));
        let (_, r) = parse::<OnlySub>(br#"{"sub":"a","exp":5}"#, false, &[]).expect("parse");
        assert_eq!(r.exp, Some(5.0));
    }

    #[test]
    fn duplicates_arrays_and_bad_types_are_refused() {
        assert_eq!(
            parse::<IgnoredAny>(br#"{"exp":1,"exp":2}"#, false, &[]).err(),
            Some(ErrorKind::InvalidClaim)
        );
        assert_eq!(
            parse::<IgnoredAny>(b"[1,2]", false, &[]).err(),
            Some(ErrorKind::Malformed)
        );
        assert_eq!(
            parse::<IgnoredAny>(br#"{"exp":null}"#, false, &[]).err(),
            Some(ErrorKind::InvalidClaim)
        );
        assert_eq!(
            parse::<IgnoredAny>(br#"{"aud":5}"#, false, &[]).err(),
            Some(ErrorKind::InvalidClaim)
        );
        assert_eq!(
            parse::<IgnoredAny>(br#"{"a":1"#, false, &[]).err(),
            Some(ErrorKind::Malformed)
        );
        assert_eq!(
            parse::<IgnoredAny>(br#"{"a":1} trailing"#, false, &[]).err(),
            Some(ErrorKind::Malformed)
        );
    }

    #[test]
    fn strings_and_dates_read_as_they_lie_equal_their_parsed_values() {
        for json in [
            r#""plain""#,
            r#""""#,
            r#""caf\u00e9""#,
            r#""a\"b""#,
            r#""é""#,
            "5",
            "null",
        ] {
            let raw: &RawValue = serde_json::from_str(json).expect("raw");
            let parsed = Text::deserialize(raw).ok();
            assert_eq!(Text::from_json(Json::from(raw)), parsed, "{json}");
        }
        for json in [
            "0",
            "1700000000",
            "999999999999999",
            "1700000000.5",
            "1e3",
            "-1",
        ] {
            let payload = format!(r#"{{"exp":{json}}}"#);
            let (_, r) = parse::<IgnoredAny>(payload.as_bytes(), false, &[]).expect("parses");
            let expected: f64 = json.parse().expect("number");
            assert_eq!(r.exp, Some(expected), "{json}");
        }
    }

    #[test]
    fn escaped_claim_names_are_recognised() {
        let (_, r) = parse::<IgnoredAny>(br#"{"\u0065xp":7}"#, false, &[]).expect("parse");
        assert_eq!(r.exp, Some(7.0));
    }
}
