//! Claim rules beyond the registered claims: required values, validators that run when a
//! claim is present or always, a validator over the whole payload, and the client
//! allow-list. They run once per verification, after the signature and the registered
//! claims; a cached token has passed them already.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::ErrorKind;
use crate::text::{Json, Text};

/// The value a claim must have: one value, or one of a set.
///
/// ```
/// use tower_jwt_auth::rules::Expected;
///
/// let verified: Expected = true.into();
/// let tenant: Expected = "acme".into();
/// let tier = Expected::any_of(["gold", "platinum"]);
/// # let _ = (verified, tenant, tier);
/// ```
///
/// Strings, booleans and `null` compare exactly; numbers compare by value (`1` equals
/// `1.0`); arrays and objects compare as JSON values.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected(Vec<Value>);

impl Expected {
    /// Any one of `values`.
    pub fn any_of<I, V>(values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        Self(values.into_iter().map(Into::into).collect())
    }

    /// Whether `value` is one of the expected values.
    #[must_use]
    pub fn matches(&self, value: &Value) -> bool {
        self.0.iter().any(|expected| same(expected, value))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Written as the one value, or as the list of accepted values (a list of one when that
/// value is itself a list), as in configuration files.
impl serde::Serialize for Expected {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] if !one.is_array() => one.serialize(s),
            all => all.serialize(s),
        }
    }
}

/// Read from one value, or from a list of accepted values.
impl<'de> serde::Deserialize<'de> for Expected {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Array(values) => Self(values),
            one => Self(vec![one]),
        })
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

macro_rules! expected_from {
    ($($t:ty),+) => {$(
        impl From<$t> for Expected {
            fn from(value: $t) -> Self {
                Self(vec![Value::from(value)])
            }
        }
    )+};
}

expected_from!(bool, &str, String, i32, i64, u32, u64, f64);

impl From<Value> for Expected {
    fn from(value: Value) -> Self {
        Self(vec![value])
    }
}

/// A read-only view of a verified payload's top-level claims, for
/// [`validate_claims`](crate::JwtAuthConfigBuilder::validate_claims).
///
/// ```
/// use tower_jwt_auth::JwtAuthConfig;
///
/// // Only tokens of the `acme` tenant, or of support staff.
/// let builder = JwtAuthConfig::builder().validate_claims(|claims| {
///     claims.get_str("tenant").as_deref() == Some("acme")
///         || claims.get_as::<Vec<String>>("roles").is_some_and(|r| r.iter().any(|r| r == "support"))
/// });
/// # let _ = builder;
/// ```
pub struct ClaimsView<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> ClaimsView<'a> {
    /// The view of a JSON object; `None` when it is not one.
    pub(crate) fn parse(payload: &'a [u8]) -> Option<Self> {
        let mut de = serde_json::Deserializer::from_slice(payload);
        let entries = de.deserialize_map(EntriesVisitor).ok()?;
        de.end().ok()?;
        Some(Self { entries })
    }

    /// The raw JSON of a claim.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.entries
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, raw)| *raw)
    }

    /// Whether the claim is present (with any value, `null` included).
    #[must_use]
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A string claim; `None` when absent or not a string.
    #[must_use]
    pub fn get_str(&self, name: &str) -> Option<Cow<'a, str>> {
        Text::deserialize(self.get(name)?).ok().map(|t| t.0)
    }

    /// A claim deserialized into `T`; `None` when absent or of another shape.
    #[must_use]
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        serde_json::from_str(self.get(name)?.get()).ok()
    }

    /// The claim names, in payload order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(key, _)| key.as_ref())
    }
}

impl fmt::Debug for ClaimsView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Claim values may be personal data: names only.
        f.debug_struct("ClaimsView")
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut entries = Vec::new();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            entries.push((key, raw));
        }
        Ok(entries)
    }
}

/// A validator of one claim's value.
pub(crate) type ValueCheck = Arc<dyn Fn(&Value) -> bool + Send + Sync>;
/// A validator of the whole payload.
pub(crate) type PayloadCheck = Arc<dyn Fn(&ClaimsView<'_>) -> bool + Send + Sync>;

/// What a rule asks of its claim.
#[derive(Clone)]
pub(crate) enum Check {
    Equals(Expected),
    Validate(ValueCheck),
}

/// One claim rule, as configured.
#[derive(Clone)]
pub(crate) struct ClaimRule {
    pub(crate) name: Box<str>,
    /// Mandatory rules refuse a token without the claim; optional ones (MuleSoft's
    /// "non-mandatory" validations) run only when it is present.
    pub(crate) mandatory: bool,
    pub(crate) check: Check,
}

impl fmt::Debug for ClaimRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let check = match &self.check {
            Check::Equals(expected) => format!("{expected:?}"),
            Check::Validate(_) => "validator".into(),
        };
        f.debug_struct("ClaimRule")
            .field("name", &self.name)
            .field("mandatory", &self.mandatory)
            .field("check", &check)
            .finish()
    }
}

/// The compiled claim rules: each rule with the index of its claim in the capture list,
/// the payload validators, and the allowed clients.
#[derive(Default)]
pub(crate) struct ClaimChecks {
    pub(crate) rules: Vec<(ClaimRule, usize)>,
    pub(crate) payload: Vec<PayloadCheck>,
    pub(crate) clients: Option<Vec<Box<str>>>,
}

impl fmt::Debug for ClaimChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimChecks")
            .field("rules", &self.rules)
            .field("payload_validators", &self.payload.len())
            .field("clients", &self.clients)
            .finish()
    }
}

impl ClaimChecks {
    /// Whether there is nothing to check.
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.payload.is_empty() && self.clients.is_none()
    }

    /// Checks a verified payload: its client, the captured values of rule claims, and
    /// the payload validators.
    pub(crate) fn check(
        &self,
        client: Option<&str>,
        captured: &[(usize, Json<'_>)],
        payload: &[u8],
    ) -> Result<(), ErrorKind> {
        if let Some(allowed) = &self.clients {
            let client = client.ok_or(ErrorKind::ClientNotAllowed)?;
            if !allowed.iter().any(|c| **c == *client) {
                return Err(ErrorKind::ClientNotAllowed);
            }
        }
        for (rule, index) in &self.rules {
            let raw = captured.iter().find(|(i, _)| i == index).map(|(_, r)| *r);
            let Some(raw) = raw else {
                if rule.mandatory {
                    return Err(ErrorKind::MissingClaim);
                }
                continue;
            };
            let value: Value =
                serde_json::from_str(raw.get()).map_err(|_| ErrorKind::InvalidClaim)?;
            let ok = match &rule.check {
                Check::Equals(expected) => expected.matches(&value),
                Check::Validate(validate) => validate(&value),
            };
            if !ok {
                return Err(ErrorKind::ClaimNotAccepted);
            }
        }
        if !self.payload.is_empty() {
            let view = ClaimsView::parse(payload).ok_or(ErrorKind::Malformed)?;
            if !self.payload.iter().all(|validate| validate(&view)) {
                return Err(ErrorKind::ClaimNotAccepted);
            }
        }
        Ok(())
    }
}

/// Reads a claim's raw value into a `Value` (for tests and validators).
#[cfg(test)]
fn value(raw: &str) -> Value {
    serde_json::from_str(raw).expect("json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values_compare_numbers_by_value() {
        assert!(Expected::from(1).matches(&value("1.0")));
        assert!(Expected::from(true).matches(&value("true")));
        assert!(!Expected::from(true).matches(&value("\"true\"")));
        assert!(Expected::any_of(["a", "b"]).matches(&value("\"b\"")));
        assert!(!Expected::any_of(["a", "b"]).matches(&value("\"c\"")));
    }

    #[test]
    fn the_view_reads_escaped_names_and_refuses_non_objects() {
        let view = ClaimsView::parse(br#"{"te\u006eant":"acme","n":2}"#).expect("object");
        assert_eq!(view.get_str("tenant").as_deref(), Some("acme"));
        assert_eq!(view.get_as::<u8>("n"), Some(2));
        assert!(!view.contains("other"));
        assert!(ClaimsView::parse(b"[1]").is_none());
    }
}
