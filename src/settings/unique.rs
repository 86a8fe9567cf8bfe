//! A JSON text read as a tree that refuses a key given twice in one object: a tree of
//! `serde_json::Value` keeps the last one silently, while the model's own types refuse
//! duplicates, so a table read beside them must too.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Nothing kept: reading it is the check.
pub(super) struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Walk)
    }
}

struct Walk;

macro_rules! scalars {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<UniqueKeys, E> {
            Ok(UniqueKeys)
        })*
    };
}

impl<'de> Visitor<'de> for Walk {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);

    fn visit_unit<E: de::Error>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate field `{key}`")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

#[cfg(test)]
mod tests {
    use super::UniqueKeys;

    #[test]
    fn a_key_twice_in_any_object_is_refused() {
        let read = |text: &str| serde_json::from_str::<UniqueKeys>(text).map(|_| ());
        assert!(read(r#"{"a": 1, "b": [1, {"c": null}], "d": {"a": true}}"#).is_ok());
        assert!(read(r#"{"a": 1, "a": 2}"#).is_err());
        let nested = read(r#"{"gate": {"routes": [{"path": "/a", "path": "/b"}]}}"#).unwrap_err();
        assert!(
            nested.to_string().contains("duplicate field `path`"),
            "{nested}"
        );
    }
}
