//! API keys beside OAuth: static keys for machine clients and partners, accepted by the
//! same layer, guards, metrics and audit hook as access tokens.
//!
//! A key is configured by its digest, never by its secret: an [`ApiKey`] names the
//! principal handlers see (its `id`, their `sub`), the SHA-256 of the whole key as
//! presented (`digest = "sha256:<hex>"`), its permissions and an optional expiry.
//! [`NewApiKey::generate`] makes a key and its digest (the `jwt-auth apikey new` command
//! prints both).
//!
//! ```
//! use tower_jwt_auth::JwtAuthConfig;
//! use tower_jwt_auth::api_key::{ApiKey, NewApiKey};
//!
//! let new = NewApiKey::generate("sk_live_");
//! let cfg = JwtAuthConfig::builder()
//!     .issuer("https://idp.example.com/")
//!     .audience("https://api.example.com")
//!     .hmac_secret(b"an example secret of at least 32 bytes".to_vec())
//!     .api_key_prefix("sk_live_")
//!     .api_key_header("X-API-Key")
//!     .api_key(ApiKey::new("billing-export", new.digest()).permissions(["read"]))
//!     .build()?;
//! # let _ = cfg;
//! # Ok::<(), tower_jwt_auth::ConfigError>(())
//! ```
//!
//! A credential that starts with the configured prefix, or that comes in the configured
//! header, is an API key and nothing else: it is looked up by its digest in a hash map
//! (no secret is ever compared, so the time a lookup takes says nothing about any
//! configured key) and never reaches
//! JWT verification or introspection. An unknown key is 401 `invalid_token`, an expired
//! one too. A known key becomes a verified credential like a token: its permissions meet
//! guards, `Claims<StandardClaims>` holds `sub` (the id) and `scope` (the permissions),
//! forwarded claims forward the id as `sub`, and the revocation list refuses a revoked
//! key id (`Revocations::revoke_api_key` in the `state` module).
//! [`Authentication::kind`](crate::Authentication::kind) tells keys from tokens.
//!
//! **Claim rules, required claims and `allowed_clients` do not apply to keys**: they
//! describe what issuers put in tokens. The guide's chapter on permissions says what
//! else differs (single use, step-up, DPoP and mTLS, custom claims types).

use std::fmt;
use std::time::SystemTime;

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) mod file;
pub(crate) mod keys;
mod source;

/// What kind of credential a verified request carried.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A JWT access token, verified with its issuer's keys.
    Jwt,
    /// An access token the issuer's introspection endpoint vouched for (RFC 7662): an
    /// opaque token, or any token with `always_introspect`.
    Introspected,
    /// A configured API key.
    ApiKey,
}

impl CredentialKind {
    /// `jwt`, `introspected` or `api_key`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Introspected => "introspected",
            Self::ApiKey => "api_key",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured API key: who it is, the digest of its secret, what it may do, and
/// until when.
///
/// It is also an `[[api_keys]]` table of a settings file or of the API keys file:
/// `id`, `digest`, `permissions` and an optional `expires_at` (RFC 3339). `build()`
/// refuses an id that is not printable ASCII without spaces, a permission that is not an
/// OAuth scope token (RFC 6749 section 3.3), and a date outside years 1 to 9999.
///
/// ```toml
/// [[api_keys]]
/// id = "billing-export"
/// digest = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// permissions = ["read"]
/// expires_at = "2027-01-01T00:00:00Z"
/// ```
#[must_use]
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKey {
    /// The principal: what handlers see as `sub`, what revocation names.
    pub(crate) id: String,
    /// `sha256:` and the lowercase hex of the SHA-256 of the whole key, prefix included.
    pub(crate) digest: String,
    /// The permissions the key grants.
    pub(crate) permissions: Vec<String>,
    /// When the key stops working (RFC 3339); never when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
}

impl ApiKey {
    /// A key of the principal `id` whose secret has this `digest` (`sha256:<hex>`, as
    /// [`NewApiKey::digest`] or [`digest()`] gives it), with no permissions yet.
    pub fn new(id: impl Into<String>, digest: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            digest: digest.into(),
            ..Self::default()
        }
    }

    /// Adds permissions the key grants.
    pub fn permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// The instant the key stops working. An instant RFC 3339 cannot write (past the
    /// year 9999, or before year 1) is kept as such and refused by `build()`, naming the
    /// key: never a key that silently never expires.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        let seconds = match at.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).ok(),
            Err(before) => i64::try_from(before.duration().as_secs()).ok().map(|s| -s),
        };
        let written = seconds
            .and_then(|s| ::time::OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|at| {
                at.format(&::time::format_description::well_known::Rfc3339)
                    .ok()
            });
        self.expires_at = Some(written.unwrap_or_else(|| OUT_OF_RANGE.to_owned()));
        self
    }

    /// The principal's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// What [`ApiKey::expires_at`] keeps for an instant RFC 3339 cannot write: no date, so
/// `build()` refuses it.
pub(crate) const OUT_OF_RANGE: &str = "out of range";

/// The id, permissions and expiry; the digest is not a secret, but it is left out too.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("permissions", &self.permissions)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The digest of a key as configured: `sha256:` and the lowercase hex of the SHA-256 of
/// the whole key, prefix included.
///
/// ```
/// let digest = tower_jwt_auth::api_key::digest("sk_live_abc");
/// assert!(digest.starts_with("sha256:"));
/// assert_eq!(digest.len(), 7 + 64);
/// ```
#[must_use]
pub fn digest(key: &str) -> String {
    let hash = digest::digest(&digest::SHA256, key.as_bytes());
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in hash.as_ref() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Why a prefix cannot tell API keys from tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPrefix(&'static str);

impl fmt::Display for InvalidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidPrefix {}

/// The shortest prefix accepted.
pub const MIN_PREFIX_LEN: usize = 3;

/// Whether `prefix` can tell API keys from tokens: at least [`MIN_PREFIX_LEN`]
/// characters of RFC 6750's `b64token` set (letters, digits, `-._~+/`), so a key is a
/// valid bearer token, and no prefix a JWT could start with (anything starting `ey` or
/// `ew`: a JSON object's `{` and what may follow it, in base64url). `build()` runs the same check, and
/// `jwt-auth apikey new --prefix` too.
///
/// ```
/// use tower_jwt_auth::api_key::check_prefix;
///
/// assert!(check_prefix("sk_live_").is_ok());
/// assert!(check_prefix("eyJ").is_err());
/// assert!(check_prefix("ewo_").is_err());
/// assert!(check_prefix("sk").is_err());
/// assert!(check_prefix("sk live").is_err());
/// ```
///
/// # Errors
///
/// [`InvalidPrefix`], saying which rule the prefix breaks.
pub fn check_prefix(prefix: &str) -> Result<(), InvalidPrefix> {
    if !prefix.bytes().all(crate::token::is_b64token_byte) {
        return Err(InvalidPrefix(
            "an API key prefix holds only letters, digits and -._~+/ (RFC 6750 b64token), so keys are valid bearer tokens",
        ));
    }
    if prefix.len() < MIN_PREFIX_LEN {
        return Err(InvalidPrefix(
            "an API key prefix has at least 3 characters, so it tells keys from other tokens",
        ));
    }
    // `{` in base64url is `ey` then `J` (`{"`), or `ew` (`{` then a newline, a tab or a
    // carriage return) or `eyA` (`{ `): every compact JWT starts with one of them.
    if prefix.starts_with("ey") || prefix.starts_with("ew") {
        return Err(InvalidPrefix(
            "every JWT starts with ey or ew (a JSON object in base64url): an API key prefix that a JWT could start with would take tokens for keys",
        ));
    }
    Ok(())
}

/// The SHA-256 of a presented key, the lookup key of the configured ones.
pub(crate) fn hash(key: impl AsRef<[u8]>) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, key.as_ref()).as_ref());
    out
}

/// A freshly generated API key: the secret, shown once, and its digest, for the
/// configuration.
pub struct NewApiKey {
    key: String,
    digest: String,
}

impl NewApiKey {
    /// How many random bytes follow the prefix.
    pub const RANDOM_BYTES: usize = 32;

    /// A key of `prefix` followed by 32 bytes from aws-lc's random generator in
    /// base64url (43 characters).
    ///
    /// # Panics
    ///
    /// When the operating system's random generator fails, as every key generation of
    /// aws-lc-rs does: no key is better than a predictable one.
    #[must_use]
    pub fn generate(prefix: &str) -> Self {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system random generator failed");
        let key = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
        let digest = digest(&key);
        Self { key, digest }
    }

    /// The key: hand it to the client once, and keep only the digest.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key's digest, for [`ApiKey::new`] or a `digest =` line.
    #[must_use]
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// The digest only: the key is a secret.
impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_of_the_whole_key_in_lowercase_hex() {
        assert_eq!(
            digest("test"),
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn generated_keys_carry_the_prefix_and_32_random_bytes() {
        let a = NewApiKey::generate("sk_test_");
        let b = NewApiKey::generate("sk_test_");
        assert!(a.key().starts_with("sk_test_"));
        assert_eq!(a.key().len(), 8 + 43);
        assert_ne!(a.key(), b.key());
        assert_eq!(a.digest(), digest(a.key()));
        assert!(!format!("{a:?}").contains(a.key()));
    }
}
