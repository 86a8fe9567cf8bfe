//! The default claims type, [`StandardClaims`], and its building blocks.
//!
//! Any `DeserializeOwned + Clone + Send + Sync + 'static` type can be used instead; the
//! layer checks the registered claims itself, whatever the type.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::text::Text;

/// The claims of an access token from any common identity provider: RFC 7519 registered
/// claims, RFC 9068 access-token claims, and the permission claims of Auth0 (`permissions`),
/// Entra ID (`scp`, `roles`, `tid`), Okta (`scp`), Cognito (`client_id`, `scope`) and
/// others. Every other claim lands in [`extra`](Self::extra).
///
/// ```
/// use tower_jwt_auth::StandardClaims;
///
/// let claims: StandardClaims = serde_json::from_str(
///     r#"{"sub":"alice","aud":["api","other"],"exp":1700000000,"scope":"read write","org":"acme"}"#,
/// )?;
/// assert_eq!(claims.sub.as_deref(), Some("alice"));
/// assert!(claims.aud.as_ref().is_some_and(|a| a.contains("api")));
/// assert_eq!(claims.extra["org"], "acme");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StandardClaims {
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject: who the token is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience: one string or an array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<NumericDate>,
    /// Not before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<NumericDate>,
    /// Issued at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<NumericDate>,
    /// Token id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The OAuth client the token was issued to (RFC 9068, Cognito).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Authorized party (OIDC; Entra v2, Keycloak).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Tenant id (Entra ID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// Space-delimited scopes (RFC 8693, RFC 9068).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Scopes as Entra ID and Okta send them: a space-delimited string or an array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scp: Option<OneOrMany>,
    /// Permissions (Auth0 RBAC).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// Roles (Entra ID app roles and others).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The `aud` claim: a single string or an array of strings (RFC 7519 section 4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    Single(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names this audience.
    #[must_use]
    pub fn contains(&self, aud: &str) -> bool {
        self.iter().any(|a| a == aud)
    }

    /// The audiences.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Self::Single(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }
}

/// A claim that is either one string or an array of strings, such as `scp`.
///
/// A single string is space-delimited when it lists scopes; [`OneOrMany::iter`] splits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single string.
    One(String),
    /// An array of strings.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values: the words of a single string, or the array's elements.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            Self::One(one) => Box::new(one.split_ascii_whitespace()),
            Self::Many(many) => Box::new(many.iter().map(String::as_str)),
        }
    }
}

/// A JWT NumericDate: seconds since the Unix epoch, possibly fractional (RFC 7519
/// section 2). Serialized as an integer when it is whole, as JWTs carry it.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct NumericDate(f64);

impl Serialize for NumericDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Whole dates within the range a double holds exactly print as integers.
        const EXACT: f64 = 9_007_199_254_740_992.0;
        if self.0.fract() == 0.0 && self.0.abs() < EXACT {
            #[allow(clippy::cast_possible_truncation)] // whole and within 2^53: exact
            let whole = self.0 as i64;
            serializer.serialize_i64(whole)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

impl NumericDate {
    /// A date from seconds since the epoch.
    #[must_use]
    pub const fn from_secs(secs: i64) -> Self {
        #[allow(clippy::cast_precision_loss)] // exact for every date within 2^53 seconds
        Self(secs as f64)
    }

    /// The seconds since the epoch, fractional part included.
    #[must_use]
    pub const fn as_secs_f64(self) -> f64 {
        self.0
    }

    /// The whole seconds since the epoch, rounded down.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // saturating float-to-int cast is wanted
    pub fn as_secs(self) -> i64 {
        self.0.floor() as i64
    }

    /// The date as a `SystemTime`; `None` if it is before the epoch or out of range.
    #[must_use]
    pub fn to_system_time(self) -> Option<SystemTime> {
        let d = Duration::try_from_secs_f64(self.0).ok()?;
        UNIX_EPOCH.checked_add(d)
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        numeric(d).map(Self)
    }
}

/// Deserializes a JSON number, refusing strings, booleans and null.
pub(crate) fn numeric<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct NumberVisitor;
    impl Visitor<'_> for NumberVisitor {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(E::custom("number out of range"))
            }
        }
    }
    d.deserialize_any(NumberVisitor)
}

impl<'de> Deserialize<'de> for StandardClaims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

/// Stores a field, refusing a second occurrence of the same claim.
fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = StandardClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StandardClaims, A::Error> {
        let mut c = StandardClaims::default();
        let mut permissions = None;
        let mut roles = None;
        // Names borrowed from the payload: an owned copy of each would cost an
        // allocation per claim.
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "iss" => once(&mut c.iss, &mut map, "iss")?,
                "sub" => once(&mut c.sub, &mut map, "sub")?,
                "aud" => once(&mut c.aud, &mut map, "aud")?,
                "exp" => once(&mut c.exp, &mut map, "exp")?,
                "nbf" => once(&mut c.nbf, &mut map, "nbf")?,
                "iat" => once(&mut c.iat, &mut map, "iat")?,
                "jti" => once(&mut c.jti, &mut map, "jti")?,
                "client_id" => once(&mut c.client_id, &mut map, "client_id")?,
                "azp" => once(&mut c.azp, &mut map, "azp")?,
                "tid" => once(&mut c.tid, &mut map, "tid")?,
                "scope" => once(&mut c.scope, &mut map, "scope")?,
                "scp" => once(&mut c.scp, &mut map, "scp")?,
                "permissions" => once(&mut permissions, &mut map, "permissions")?,
                "roles" => once(&mut roles, &mut map, "roles")?,
                other => {
                    let value = map.next_value()?;
                    if c.extra.insert(other.to_owned(), value).is_some() {
                        return Err(de::Error::custom("duplicate claim"));
                    }
                }
            }
        }
        c.permissions = permissions.unwrap_or_default();
        c.roles = roles.unwrap_or_default();
        Ok(c)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<StandardClaims, A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_claims_are_refused() {
        assert!(serde_json::from_str::<StandardClaims>(r#"{"sub":"a","sub":"b"}"#).is_err());
        assert!(serde_json::from_str::<StandardClaims>(r#"{"x":1,"x":2}"#).is_err());
    }

    #[test]
    fn numeric_dates_refuse_strings_and_accept_fractions() {
        assert!(serde_json::from_str::<StandardClaims>(r#"{"exp":"1700000000"}"#).is_err());
        let c: StandardClaims = serde_json::from_str(r#"{"exp":1700000000.5}"#).expect("fraction");
        assert_eq!(c.exp.map(NumericDate::as_secs), Some(1_700_000_000));
    }

    #[test]
    fn scp_accepts_string_and_array() {
        let c: StandardClaims = serde_json::from_str(r#"{"scp":"a b"}"#).expect("string");
        assert_eq!(c.scp.expect("scp").iter().collect::<Vec<_>>(), ["a", "b"]);
        let c: StandardClaims = serde_json::from_str(r#"{"scp":["a","b c"]}"#).expect("array");
        assert_eq!(c.scp.expect("scp").iter().collect::<Vec<_>>(), ["a", "b c"]);
    }

    #[test]
    fn serializes_back_with_extra_claims_flattened() {
        let c: StandardClaims = serde_json::from_str(r#"{"sub":"a","org":"x"}"#).expect("claims");
        let v = serde_json::to_value(&c).expect("serialize");
        assert_eq!(v, serde_json::json!({"sub":"a","org":"x"}));
    }

    #[test]
    fn whole_dates_serialize_as_integers() {
        let c: StandardClaims =
            serde_json::from_str(r#"{"exp":1700000000,"nbf":1700000000.5}"#).expect("claims");
        let text = serde_json::to_string(&c).expect("serialize");
        assert!(text.contains(r#""exp":1700000000"#), "{text}");
        assert!(text.contains(r#""nbf":1700000000.5"#), "{text}");
    }
}
