//! [`Profile`]: named presets of rules that regulated APIs must meet, locked against
//! weakening.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A preset that sets every option it governs and then locks them: a later setter (or a
/// file's key) that would weaken one makes [`build`](crate::JwtAuthConfigBuilder::build)
/// fail with a message naming the rule and where it comes from.
///
/// The rules come in two kinds, kept apart in names and messages: those of the standard
/// the profile is named after, and the profile's own stricter choices.
///
/// ```
/// use tower_jwt_auth::{JwtAuthConfig, Profile};
/// use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
/// use tower_jwt_auth::state::MemoryRevocationList;
/// use tower_jwt_auth::Algorithm::{ES256, EdDSA, PS256};
///
/// let config = JwtAuthConfig::builder()
///     .profile(Profile::Fapi2)
///     .issuer("https://idp.example.com/")
///     .audience("https://api.example.com")
///     .jwks_url("https://idp.example.com/jwks.json")
///     .dpop(
///         DpopOptions::new(DpopMode::Required)
///             .public_base_url("https://api.example.com")
///             .algorithms([PS256, ES256, EdDSA]),
///     )
///     .revocation_list(MemoryRevocationList::default());
/// # let _ = config;
/// ```
///
/// In a settings file: `profile = "fapi2"` or `profile = "rfc9068_strict"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Profile {
    /// The FAPI 2.0 Security Profile for resource servers.
    ///
    /// FAPI 2.0's own rules (section 5.3.4, and section 5.4 on cryptography): tokens
    /// only from the `Authorization` header (no cookie, query, WebSocket-protocol,
    /// custom or API-key source); the algorithms PS256, ES256 and EdDSA only, for
    /// tokens and DPoP proofs (RSA keys under 2048 bits are never used, with or without
    /// a profile); every token sender-constrained, by DPoP or a client certificate (an
    /// unbound token is refused); the token's validity, integrity, expiry and
    /// revocation status checked, which needs a revocation list, or introspection of
    /// every token.
    ///
    /// The profile's own stricter choices: [`Rfc9068Strict`](Self::Rfc9068Strict); a
    /// maximum token lifetime (one hour unless set); https for every fetch (loopback
    /// excepted, for tests and local development).
    #[serde(rename = "fapi2")]
    Fapi2,
    /// RFC 9068 JWT access tokens, strictly: `typ` must be `at+jwt`, the audience is
    /// checked, and `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti` are
    /// required.
    #[serde(rename = "rfc9068_strict")]
    Rfc9068Strict,
}

impl Profile {
    /// Whether this profile holds every rule of `other`: [`Fapi2`](Self::Fapi2) holds
    /// [`Rfc9068Strict`](Self::Rfc9068Strict)'s.
    #[must_use]
    pub fn includes(self, other: Self) -> bool {
        self == other || (self == Self::Fapi2 && other == Self::Rfc9068Strict)
    }

    /// The name a settings file gives it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fapi2 => "fapi2",
            Self::Rfc9068Strict => "rfc9068_strict",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
