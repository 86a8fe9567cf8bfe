//! [`Text`]: a JSON string, borrowed from the input when it has no escapes, for the
//! claims and header members read without an owned copy.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::value::RawValue;

/// A JSON string, borrowed from the input when it has no escapes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de> Text<'de> {
    /// The string a raw JSON value holds; none for another type. A string without a
    /// backslash is its own text (the scan that delimited the raw value refused control
    /// characters and invalid UTF-8), so it is borrowed without a second parse.
    pub(crate) fn from_raw(raw: &'de RawValue) -> Option<Self> {
        let json = raw.get();
        if let Some(inner) = json.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
            && !inner.contains('\\')
        {
            return Some(Text(Cow::Borrowed(inner)));
        }
        Text::deserialize(raw).ok()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}
