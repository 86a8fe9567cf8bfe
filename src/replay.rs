//! [`Replay`]: a value the payload pass has already read as raw JSON, handed on to the
//! claims type without a second parse when it has one of the simple forms access
//! tokens are made of (a string without escapes, a whole number, an array of such
//! strings), and through serde_json from its raw text otherwise.
//!
//! The raw text was delimited by serde_json, so it is valid JSON: inside a string
//! without a backslash the next `"` ends it, and it holds no control character.

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// What a raw value is, when it is simple enough to be read without a parser.
#[derive(Clone, Copy)]
pub(crate) enum Simple<'de> {
    /// A string without escapes: its text, between the quotes.
    Str(&'de str),
    /// A whole number of 1 to 15 digits (every date), exact as an `f64`.
    Whole(u64),
    /// An array whose elements are all strings without escapes: its raw text.
    Strs(&'de str),
    /// Anything else, read through serde_json.
    Other,
}

impl<'de> Simple<'de> {
    /// The simple form of `raw`, if it has one.
    pub(crate) fn of(raw: &'de RawValue) -> Self {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => {
                // Both quotes are ASCII: character boundaries.
                let inner = &text[1..text.len() - 1];
                if inner.contains('\\') {
                    Self::Other
                } else {
                    Self::Str(inner)
                }
            }
            Some(b'0'..=b'9') if text.len() <= 15 && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().map_or(Self::Other, Self::Whole)
            }
            Some(b'[') if Strings::new(text).all(|s| s.is_some()) => Self::Strs(text),
            _ => Self::Other,
        }
    }
}

/// The elements of a raw JSON array, each `Some` while it is a string without escapes
/// (its raw text, quotes included), `None` at the first that is not (and nothing after
/// it).
pub(crate) struct Strings<'de> {
    /// What follows the `[` or the last element.
    rest: &'de str,
    first: bool,
}

impl<'de> Strings<'de> {
    /// `array` must be the raw text of a JSON array.
    pub(crate) fn new(array: &'de str) -> Self {
        Self {
            rest: array.get(1..).unwrap_or_default(),
            first: true,
        }
    }
}

impl<'de> Iterator for Strings<'de> {
    type Item = Option<&'de str>;

    fn next(&mut self) -> Option<Option<&'de str>> {
        let rest = self.rest;
        let bytes = rest.as_bytes();
        let mut at = skip_space(bytes, 0);
        if matches!(bytes.get(at), None | Some(b']')) {
            return None;
        }
        if !std::mem::replace(&mut self.first, false) {
            // Valid JSON: a `,` separates this element from the last.
            at = skip_space(bytes, at + 1);
        }
        self.rest = "";
        if bytes.get(at) != Some(&b'"') {
            return Some(None);
        }
        let start = at;
        loop {
            at += 1;
            match bytes.get(at) {
                Some(b'"') => break,
                Some(b'\\') | None => return Some(None),
                Some(_) => {}
            }
        }
        // Both ends are ASCII quotes: character boundaries.
        self.rest = &rest[at + 1..];
        Some(Some(&rest[start..=at]))
    }
}

/// The index of the first byte at or after `at` that is not JSON whitespace.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// A raw value handed to a claims type: what serde_json would give it, without parsing
/// again when the value is [`Simple`] and the type asks for what the value is (any
/// other request goes to serde_json, for its own answer).
pub(crate) struct Replay<'de> {
    raw: Raw<'de>,
    simple: Simple<'de>,
}

/// The raw value, or the raw text of an array's element, parsed only when asked for.
#[derive(Clone, Copy)]
enum Raw<'de> {
    Value(&'de RawValue),
    Element(&'de str),
}

impl<'de> Replay<'de> {
    pub(crate) fn new(raw: &'de RawValue, simple: Simple<'de>) -> Self {
        Self {
            raw: Raw::Value(raw),
            simple,
        }
    }

    /// The value for serde_json to read.
    fn raw(&self) -> Result<&'de RawValue, serde_json::Error> {
        match self.raw {
            Raw::Value(raw) => Ok(raw),
            Raw::Element(text) => serde_json::from_str(text),
        }
    }
}

/// Requests answered from the simple form when `$form` matches it, as serde_json
/// answers them for a value of that type; by serde_json otherwise.
macro_rules! replayed {
    ($form:pat => $($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            match self.simple {
                $form => self.deserialize_any(visitor),
                _ => self.raw()?.$method(visitor),
            }
        }
    )*};
}

/// Requests serde_json answers in a way of its own (bytes from a string, `null`, the
/// raw value itself) or for types a simple value never has: left to it.
macro_rules! parsed {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.raw()?.$method(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for Replay<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.simple {
            Simple::Str(text) => visitor.visit_borrowed_str(text),
            Simple::Whole(n) => visitor.visit_u64(n),
            Simple::Strs(array) => {
                let mut elements = Elements(Strings::new(array));
                let value = visitor.visit_seq(&mut elements)?;
                // serde_json refuses an array the type left elements of.
                match elements.0.next() {
                    None => Ok(value),
                    Some(_) => Err(de::Error::custom("trailing elements")),
                }
            }
            Simple::Other => self.raw()?.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.simple {
            // A simple value is never `null`.
            Simple::Str(_) | Simple::Whole(_) | Simple::Strs(_) => visitor.visit_some(self),
            Simple::Other => self.raw()?.deserialize_option(visitor),
        }
    }

    replayed! { Simple::Str(_) => deserialize_str deserialize_string deserialize_identifier deserialize_char }
    replayed! { Simple::Whole(_) =>
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }
    replayed! { Simple::Strs(_) => deserialize_seq }
    parsed! {
        deserialize_bool deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_map deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.raw()?.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.raw()?.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.simple {
            Simple::Strs(_) => self.deserialize_any(visitor),
            _ => self.raw()?.deserialize_tuple(len, visitor),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.raw()?.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.raw()?.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.raw()?.deserialize_enum(name, variants, visitor)
    }
}

/// The elements of a [`Simple::Strs`] array, each a [`Simple::Str`].
struct Elements<'de>(Strings<'de>);

impl<'de> SeqAccess<'de> for Elements<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.0.next() {
            None => Ok(None),
            Some(Some(quoted)) => seed
                .deserialize(Replay {
                    raw: Raw::Element(quoted),
                    simple: Simple::Str(&quoted[1..quoted.len() - 1]),
                })
                .map(Some),
            // `Simple::of` saw every element a string without escapes.
            Some(None) => Err(de::Error::custom("not a simple array")),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::value::RawValue;

    use super::{Replay, Simple, Strings};

    fn simple(json: &str) -> String {
        let raw: &RawValue = serde_json::from_str(json).expect("json");
        match Simple::of(raw) {
            Simple::Str(s) => format!("str {s}"),
            Simple::Whole(n) => format!("whole {n}"),
            Simple::Strs(s) => format!("strs {s}"),
            Simple::Other => "other".to_owned(),
        }
    }

    #[test]
    fn simple_forms() {
        assert_eq!(simple(r#""abc""#), "str abc");
        assert_eq!(simple(r#""""#), "str ");
        assert_eq!(simple(r#""a\"b""#), "other");
        assert_eq!(simple("1700000000"), "whole 1700000000");
        assert_eq!(simple("0"), "whole 0");
        assert_eq!(simple("999999999999999"), "whole 999999999999999");
        for other in [
            "1000000000000000",
            "1.5",
            "1e3",
            "-1",
            "null",
            "true",
            "{}",
            "[1]",
        ] {
            assert_eq!(simple(other), "other", "{other}");
        }
        assert_eq!(simple("[]"), "strs []");
        assert_eq!(simple(r#"[ "a" , "b"]"#), r#"strs [ "a" , "b"]"#);
        assert_eq!(simple(r#"["a","b\n"]"#), "other");
        assert_eq!(simple(r#"["a",null]"#), "other");
        let elements: Vec<_> = Strings::new("[ \"a\" ,\n\"\" ] ").collect();
        assert_eq!(elements, [Some("\"a\""), Some("\"\"")]);
    }

    /// The payload pass's test values, and the simple forms near their limits.
    fn value() -> impl Strategy<Value = String> {
        let near = prop_oneof![
            Just("1.0".to_owned()),
            Just(r#""Variant""#.to_owned()),
            Just(r#"[ "a" , "b" ]"#.to_owned()),
            Just(r#"["Variant"]"#.to_owned()),
            any::<u64>().prop_map(|n| (n % 10_000_000_000_000_000).to_string()),
            "[a-z é]{0,6}".prop_map(|s| format!("\"{s}\"")),
        ];
        prop_oneof![crate::shape::tests::value(), near]
    }

    #[derive(Debug, PartialEq, Deserialize)]
    enum Unit {
        Variant,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Newtype(String);

    #[derive(Debug, PartialEq, Deserialize)]
    struct Fields {
        a: Option<u64>,
    }

    /// Whatever the type asks for, it gets what serde_json would give it.
    fn same<'de, T: Deserialize<'de> + PartialEq + std::fmt::Debug>(
        raw: &'de RawValue,
    ) -> Result<(), TestCaseError> {
        let replayed = T::deserialize(Replay::new(raw, Simple::of(raw))).ok();
        let parsed = T::deserialize(raw).ok();
        prop_assert_eq!(replayed, parsed, "{}", raw.get());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_replayed_value_reads_as_the_parsed_one(json in value()) {
            // Nested past serde_json's depth limit: no raw value to compare.
            let Ok(raw) = serde_json::from_str::<&RawValue>(&json) else {
                return Ok(());
            };
            same::<String>(raw)?;
            same::<&str>(raw)?;
            same::<char>(raw)?;
            same::<Option<String>>(raw)?;
            same::<u64>(raw)?;
            same::<i32>(raw)?;
            same::<u8>(raw)?;
            same::<f64>(raw)?;
            same::<bool>(raw)?;
            same::<()>(raw)?;
            same::<Vec<String>>(raw)?;
            same::<Vec<Option<String>>>(raw)?;
            same::<Option<Vec<Newtype>>>(raw)?;
            same::<(String, String)>(raw)?;
            same::<Vec<Unit>>(raw)?;
            same::<Unit>(raw)?;
            same::<Newtype>(raw)?;
            same::<Fields>(raw)?;
            same::<serde_json::Value>(raw)?;
            same::<crate::text::Text<'_>>(raw)?;
            same::<crate::claims::StandardClaims>(raw)?;
            let boxed = Box::<RawValue>::deserialize(Replay::new(raw, Simple::of(raw)));
            prop_assert_eq!(boxed.map(|b| b.get().to_owned()).ok(), Some(json.clone()));
            let bytes = serde_bytes_like(raw);
            prop_assert_eq!(bytes.0, bytes.1);
        }
    }

    /// `Vec<u8>` asks for a sequence; bytes through a visitor ask for bytes.
    fn serde_bytes_like(raw: &RawValue) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        struct Bytes;
        impl<'de> serde::de::Visitor<'de> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
        }
        use serde::Deserializer as _;
        (
            Replay::new(raw, Simple::of(raw))
                .deserialize_bytes(Bytes)
                .ok(),
            raw.deserialize_bytes(Bytes).ok(),
        )
    }
}
