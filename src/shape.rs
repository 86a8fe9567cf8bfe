//! `StandardShape`: a payload checked against everything [`StandardClaims`] refuses,
//! without building it. The layer runs it in the payload pass for a `StandardClaims`
//! layer and makes the claims from the payload when a handler first reads them
//! (straight from it, or through the same pass where that alone accepts it): the same
//! keys, the same types, the same duplicates refused, so a payload that passes here
//! always deserializes into `StandardClaims` (a property test holds the two together). It refuses one thing more: a nested object keyed by one of
//! serde_json's private markers, which `serde_json::Value` reads specially.
//!
//! [`StandardClaims`]: crate::StandardClaims

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::claims::NumericDate;
use crate::text::Text;

/// What `StandardClaims` accepts, checked; nothing kept.
pub(crate) struct StandardShape;

impl<'de> Deserialize<'de> for StandardShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ShapeVisitor)
    }
}

/// What a field of `StandardClaims` asks of its value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wants {
    /// A string.
    Text,
    /// A number.
    Date,
    /// A string or an array of strings.
    TextOrTexts,
    /// An array of strings.
    Texts,
}

/// The field of `StandardClaims` a claim name is (its index, in the struct's order) and
/// what it asks of the value; none for a claim that lands in `extra`. The one list of
/// those fields for the shape and for the recogniser of plain payloads.
pub(crate) fn field(name: &str) -> Option<(usize, Wants)> {
    Some(match name {
        "iss" => (0, Wants::Text),
        "sub" => (1, Wants::Text),
        "aud" => (2, Wants::TextOrTexts),
        "exp" => (3, Wants::Date),
        "nbf" => (4, Wants::Date),
        "iat" => (5, Wants::Date),
        "jti" => (6, Wants::Text),
        "client_id" => (7, Wants::Text),
        "azp" => (8, Wants::Text),
        "tid" => (9, Wants::Text),
        "scope" => (10, Wants::Text),
        "scp" => (11, Wants::TextOrTexts),
        "permissions" => (12, Wants::Texts),
        "roles" => (13, Wants::Texts),
        _ => return None,
    })
}

/// How many fields [`field`] knows.
pub(crate) const FIELDS: usize = 14;

struct ShapeVisitor;

/// Reads a field once, as `StandardClaims` does: a second occurrence is refused.
fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    seen: &mut bool,
    map: &mut A,
) -> Result<(), A::Error> {
    if std::mem::replace(seen, true) {
        return Err(de::Error::custom("duplicate claim"));
    }
    map.next_value::<T>().map(drop)
}

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = StandardShape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StandardShape, A::Error> {
        // One flag per field of `StandardClaims`.
        let mut seen = [false; FIELDS];
        let mut extra: Vec<Text<'de>> = Vec::new();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let Some((slot, wants)) = field(&key.0) else {
                if extra.iter().any(|seen| seen.0 == key.0) {
                    return Err(de::Error::custom("duplicate claim"));
                }
                map.next_value::<AnyValue>()?;
                extra.push(key);
                continue;
            };
            let seen = &mut seen[slot];
            match wants {
                Wants::Date => once::<A, NumericDate>(seen, &mut map)?,
                Wants::TextOrTexts => once::<A, OneOrMany>(seen, &mut map)?,
                Wants::Texts => once::<A, Strings>(seen, &mut map)?,
                Wants::Text => once::<A, Text<'de>>(seen, &mut map)?,
            }
        }
        Ok(StandardShape)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<StandardShape, A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
    }
}

/// A string or an array of strings (`aud`, `scp`).
struct OneOrMany;

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OneOrMany, A::Error> {
                strings(seq).map(|()| OneOrMany)
            }
        }
        d.deserialize_any(V)
    }
}

/// An array of strings (`permissions`, `roles`).
struct Strings;

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Strings, A::Error> {
                strings(seq).map(|()| Strings)
            }
        }
        d.deserialize_seq(V)
    }
}

fn strings<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Text<'de>>()?.is_some() {}
    Ok(())
}

/// The prefix of the keys `serde_json::Value` reads as markers of its own.
pub(crate) const SERDE_JSON_PRIVATE: &str = "$serde_json::private::";

/// Any JSON value `serde_json::Value` accepts (numbers in range, valid strings), less
/// objects with its private marker keys, nothing kept.
struct AnyValue;

impl<'de> Deserialize<'de> for AnyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<AnyValue, E> {
                Ok(AnyValue)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<AnyValue, E> {
                Ok(AnyValue)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<AnyValue, E> {
                Ok(AnyValue)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<AnyValue, E> {
                Ok(AnyValue)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyValue, E> {
                Ok(AnyValue)
            }
            fn visit_unit<E: de::Error>(self) -> Result<AnyValue, E> {
                Ok(AnyValue)
            }
            fn visit_none<E: de::Error>(self) -> Result<AnyValue, E> {
                Ok(AnyValue)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<AnyValue, D::Error> {
                AnyValue::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyValue, A::Error> {
                while seq.next_element::<AnyValue>()?.is_some() {}
                Ok(AnyValue)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    // serde_json reads an object whose key is one of its private markers
                    // (a raw value, an arbitrary-precision number) as that thing, and
                    // refuses it unless it is well formed: refused here whatever it
                    // holds, so nothing this accepts fails to become claims.
                    if key.0.starts_with(SERDE_JSON_PRIVATE) {
                        return Err(de::Error::custom("reserved key in a claim"));
                    }
                    map.next_value::<AnyValue>()?;
                }
                Ok(AnyValue)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::StandardShape;
    use crate::claims::StandardClaims;
    use crate::payload;

    /// JSON values of every kind, some of them what `StandardClaims` refuses for a field
    /// and some of them what no JSON value holds (a number out of range).
    pub(crate) fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("1e400".to_owned()),
            Just("-0.5".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just(r#""esc\u0061ped""#.to_owned()),
            Just(r#""bad \ud800 surrogate""#.to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            "[a-z ]{0,6}".prop_map(|s| format!("\"{s}\"")),
        ];
        let deep = (120usize..130)
            .prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth)));
        let leaf = prop_oneof![9 => leaf, 1 => deep];
        nested(leaf, "[a-c]{1,2}")
    }

    /// Arrays and objects of `leaf` values, a few levels deep, with names matching `key`.
    pub(crate) fn nested(
        leaf: impl Strategy<Value = String> + 'static,
        key: &'static str,
    ) -> impl Strategy<Value = String> {
        leaf.prop_recursive(3, 16, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key, inner), 0..3).prop_map(|entries| {
                    let body: Vec<String> = entries
                        .iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }

    /// Claim names: the fields of `StandardClaims`, `cnf`, and others, two of them
    /// captured in the tests.
    pub(crate) fn plain_name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "nbf",
            "iat",
            "jti",
            "client_id",
            "azp",
            "tid",
            "scope",
            "scp",
            "permissions",
            "roles",
            "cnf",
            "x",
            "y",
            "realm_access",
        ])
        .prop_map(str::to_owned)
    }

    /// Those names, and one written with an escape.
    pub(crate) fn name() -> impl Strategy<Value = String> {
        prop_oneof![plain_name(), Just(r"\u0073ub".to_owned())]
    }

    #[test]
    fn serde_json_markers_are_refused_where_value_would_read_them() {
        for json in [
            r#"{"x":{"$serde_json::private::RawValue":0}}"#,
            r#"{"x":[{"$serde_json::private::RawValue":"1"}]}"#,
            r#"{"x":{"$serde_json::private::Number":"12"}}"#,
        ] {
            assert!(
                payload::parse::<StandardShape>(json.as_bytes(), false, &[]).is_err(),
                "{json}"
            );
        }
        // The same names as claims of their own are ordinary claims.
        let json = r#"{"$serde_json::private::RawValue":0}"#;
        assert!(payload::parse::<StandardShape>(json.as_bytes(), false, &[]).is_ok());
        assert!(payload::parse::<StandardClaims>(json.as_bytes(), false, &[]).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn the_shape_accepts_exactly_what_standard_claims_accepts(
            entries in prop::collection::vec((name(), value()), 0..6)
        ) {
            let body: Vec<String> = entries.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(","));
            let bytes = text.as_bytes();
            // Both refuse or both accept (a payload with two faults may be refused for
            // either: the shape stops at the first, an untagged enum reads on).
            // Captured names change how their values are read (twice, the second time
            // from their raw text), so the two are compared with and without.
            let names: [&[Box<str>]; 2] = [&[], &["x".into(), "realm_access".into(), "scope".into()]];
            for capture in names {
                let shape = payload::parse::<StandardShape>(bytes, false, capture).is_ok();
                let claims = payload::parse::<StandardClaims>(bytes, false, capture);
                prop_assert_eq!(shape, claims.is_ok(), "{}", text);
                // The claims a record makes straight from the payload are the ones the
                // pass would make.
                if let (Ok(direct), Ok((passed, _))) =
                    (serde_json::from_slice::<StandardClaims>(bytes), claims)
                {
                    prop_assert_eq!(direct, passed, "{}", text);
                }
            }
        }
    }
}
