//! [`Text`]: a JSON string, borrowed from the input when it has no escapes, for the
//! claims and header members read without an owned copy; and [`Json`], the text of one
//! JSON value borrowed from a checked payload, for the claims kept as they lie.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::de::StrRead;
use serde_json::value::RawValue;

/// The text of one JSON value, borrowed from a payload whose syntax was checked (by
/// serde_json, or by the recogniser of plain payloads), so readers may take its text as
/// it is and parse it again only for more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Json<'a>(&'a str);

impl<'a> Json<'a> {
    /// `text`, taken as exactly one JSON value that serde_json accepts, unchecked: the
    /// caller (the plain scan) has delimited it while checking the payload's syntax.
    /// Readers rely on it (`Text::from_json` borrows the text between the quotes), so
    /// debug builds check it.
    pub(crate) fn delimited(text: &'a str) -> Self {
        debug_assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
            "not one JSON value: {text:?}"
        );
        Self(text)
    }

    /// The value's JSON text.
    pub(crate) fn get(self) -> &'a str {
        self.0
    }

    /// A serde_json reader of the value, as a `RawValue` reads itself.
    pub(crate) fn reader(self) -> serde_json::Deserializer<StrRead<'a>> {
        serde_json::Deserializer::from_str(self.0)
    }
}

impl<'a> From<&'a RawValue> for Json<'a> {
    fn from(raw: &'a RawValue) -> Self {
        Self(raw.get())
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de> Text<'de> {
    /// The string a JSON value holds; none for another type. A string without a
    /// backslash is its own text (the scan that delimited the value refused control
    /// characters and invalid UTF-8), so it is borrowed without a second parse.
    pub(crate) fn from_json(json: Json<'de>) -> Option<Self> {
        let text = json.get();
        if let Some(inner) = text.strip_prefix('"').and_then(|s| s.strip_suffix('"'))
            && !inner.contains('\\')
        {
            return Some(Text(Cow::Borrowed(inner)));
        }
        Text::deserialize(&mut json.reader()).ok()
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
