//! Errors: [`AuthError`] at request time, [`ConfigError`] at build time.
//!
//! Both are opaque structs with a `kind()` accessor returning a `#[non_exhaustive]`
//! enum, so new cases can be added without breaking code that matches on them.

use std::fmt;

use http::StatusCode;

/// Why a request was refused.
///
/// Every rejection the layer produces carries one of these. The kind decides the HTTP
/// status, the RFC 6750 error code and a short fixed description; none of them ever
/// contains token content or key material.
///
/// ```
/// use tower_jwt_auth::{AuthError, ErrorKind};
///
/// let err = AuthError::new(ErrorKind::Expired);
/// assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
/// assert_eq!(err.error_code(), Some("invalid_token"));
/// assert_eq!(err.to_string(), "token expired");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AuthError {
    kind: ErrorKind,
}

/// The precise reason behind an [`AuthError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request carries no token for the configured token source (401, no error code).
    MissingToken,
    /// The credentials are malformed: several `Authorization` headers, `Bearer` with
    /// nothing or with junk after the token, a token in two places (400 `invalid_request`).
    MalformedCredentials,
    /// The token is longer than the configured maximum.
    TokenTooLong,
    /// The token is not a compact JWS: wrong number of segments, bad base64url, a header
    /// or payload that is not a JSON object.
    Malformed,
    /// The `alg` header names no algorithm this crate verifies (`none` included).
    UnsupportedAlgorithm,
    /// The `alg` is known but not in the configured allow-list.
    AlgorithmNotAllowed,
    /// The header carries a `crit` member; no JWS extension is understood here.
    CriticalHeader,
    /// The `typ` header names a type the policy refuses (for example `dpop+jwt`).
    InvalidType,
    /// No key with the token's `kid` is known.
    UnknownKey,
    /// The token has no `kid` and there is not exactly one key that could verify it.
    NoMatchingKey,
    /// The key named by `kid` cannot be used with the token's `alg` (wrong key type, or
    /// the key is pinned to another algorithm).
    KeyAlgorithmMismatch,
    /// The signature does not verify.
    InvalidSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// The token lives longer than the configured maximum lifetime: `exp - iat` (or
    /// `exp - now` without `iat`) exceeds
    /// [`max_lifetime`](crate::JwtAuthConfigBuilder::max_lifetime).
    LifetimeTooLong,
    /// A required claim is absent (`exp`, `iss`, `aud` or a configured claim).
    MissingClaim,
    /// A claim has the wrong type or an impossible value (for example `exp` as a string),
    /// or the payload does not deserialize into the claims type.
    InvalidClaim,
    /// `iss` is not one of the trusted issuers.
    InvalidIssuer,
    /// `aud` names none of the accepted audiences.
    InvalidAudience,
    /// The issuer's keys have never loaded, so no token can be checked yet (503).
    KeysUnavailable,
    /// The token is valid but lacks a required permission (403 `insufficient_scope`).
    InsufficientPermission,
    /// A single-use token was presented again (its issuer and `jti` are already in the
    /// replay store).
    TokenReplayed,
    /// The token, or every token of its subject, was revoked.
    TokenRevoked,
    /// The replay store or revocation list does not answer, and the layer fails closed
    /// (503 with `Retry-After`).
    StoreUnavailable,
    /// The token's `client_id` (or `azp`) is not an allowed client, or it names none
    /// while an allow-list is set.
    ClientNotAllowed,
    /// A claim rule refused the token: a required value differs, or a validator said no.
    ClaimNotAccepted,
    /// The token is valid but its authentication is too weak or too old for the route
    /// (RFC 9470: 401 `insufficient_user_authentication`, with `acr_values` and/or
    /// `max_age` in the challenge).
    InsufficientUserAuthentication,
    /// The token is bound (`cnf`) to something this request does not prove: a DPoP key
    /// without a DPoP proof, a certificate other than the client's, a binding the layer
    /// is not set up to check; or an unbound token where binding is required.
    BindingMismatch,
    /// The DPoP proof fails a check of RFC 9449 section 4.3 (401 `invalid_dpop_proof`).
    InvalidDpopProof,
    /// The DPoP proof lacks a current server nonce (401 `use_dpop_nonce`, with a fresh
    /// `DPoP-Nonce` header).
    UseDpopNonce,
    /// The introspection endpoint says the token is not active (RFC 7662).
    TokenInactive,
    /// The introspection endpoint failed, was too slow, refused our credentials, or the
    /// call rate limit was reached (503 with `Retry-After`).
    IntrospectionUnavailable,
}

impl ErrorKind {
    /// The HTTP status this kind maps to.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MalformedCredentials => StatusCode::BAD_REQUEST,
            Self::KeysUnavailable | Self::StoreUnavailable | Self::IntrospectionUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::InsufficientPermission => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 `error` code, or `None` where the RFC wants none (no token) or the
    /// answer is not an authentication challenge (503).
    #[must_use]
    pub const fn error_code(self) -> Option<&'static str> {
        match self {
            Self::MissingToken
            | Self::KeysUnavailable
            | Self::StoreUnavailable
            | Self::IntrospectionUnavailable => None,
            Self::MalformedCredentials => Some("invalid_request"),
            Self::InsufficientPermission => Some("insufficient_scope"),
            Self::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
            Self::InvalidDpopProof => Some("invalid_dpop_proof"),
            Self::UseDpopNonce => Some("use_dpop_nonce"),
            _ => Some("invalid_token"),
        }
    }

    /// A short fixed description, safe to send to clients and to log.
    #[must_use]
    pub const fn description(self) -> &'static str {
        match self {
            Self::MissingToken => "no bearer token",
            Self::MalformedCredentials => "malformed credentials",
            Self::TokenTooLong => "token too long",
            Self::Malformed => "malformed token",
            Self::UnsupportedAlgorithm => "unsupported algorithm",
            Self::AlgorithmNotAllowed => "algorithm not allowed",
            Self::CriticalHeader => "unsupported critical header",
            Self::InvalidType => "unexpected token type",
            Self::UnknownKey => "unknown signing key",
            Self::NoMatchingKey => "no matching signing key",
            Self::KeyAlgorithmMismatch => "key does not match algorithm",
            Self::InvalidSignature => "invalid signature",
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::IssuedInFuture => "token issued in the future",
            Self::LifetimeTooLong => "token lifetime exceeds the maximum",
            Self::MissingClaim => "required claim missing",
            Self::InvalidClaim => "invalid claim",
            Self::InvalidIssuer => "issuer not trusted",
            Self::InvalidAudience => "audience not accepted",
            Self::KeysUnavailable => "signing keys unavailable",
            Self::InsufficientPermission => "insufficient permission",
            Self::TokenReplayed => "token already used",
            Self::TokenRevoked => "token revoked",
            Self::StoreUnavailable => "token state store unavailable",
            Self::ClientNotAllowed => "client not allowed",
            Self::ClaimNotAccepted => "claim not accepted",
            Self::InsufficientUserAuthentication => {
                "stronger or more recent authentication required"
            }
            Self::BindingMismatch => "token binding not satisfied",
            Self::InvalidDpopProof => "invalid DPoP proof",
            Self::UseDpopNonce => "DPoP nonce required",
            Self::TokenInactive => "token not active",
            Self::IntrospectionUnavailable => "token introspection unavailable",
        }
    }
}

impl AuthError {
    /// An error of the given kind.
    #[must_use]
    pub const fn new(kind: ErrorKind) -> Self {
        Self { kind }
    }

    /// What went wrong.
    #[must_use]
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status of the rejection.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The RFC 6750 `error` code, if the rejection has one.
    #[must_use]
    pub const fn error_code(&self) -> Option<&'static str> {
        self.kind.error_code()
    }

    /// The fixed, client-safe description.
    #[must_use]
    pub const fn description(&self) -> &'static str {
        self.kind.description()
    }
}

impl From<ErrorKind> for AuthError {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.kind)
            .finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.description())
    }
}

impl std::error::Error for AuthError {}

/// A configuration that cannot work, reported by
/// [`JwtAuthConfigBuilder::build`](crate::JwtAuthConfigBuilder::build).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    kind: ConfigErrorKind,
    message: String,
    /// The path of the bad field in a configuration file (`issuers[1].audiences[0]`).
    path: Option<String>,
    /// The line of the bad field, when the file format gives one.
    line: Option<usize>,
}

/// The reason behind a [`ConfigError`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// No issuer was configured.
    NoIssuer,
    /// No audience was configured and the check was not explicitly turned off.
    NoAudience,
    /// An audience or issuer is the empty string.
    EmptyValue,
    /// The HMAC secret is shorter than the output of the hash it is used with
    /// (RFC 7518 section 3.2).
    HmacSecretTooShort,
    /// An HMAC secret was configured together with asymmetric keys.
    MixedKeyTypes,
    /// An allowed algorithm cannot be verified by any configured key.
    AlgorithmNotSupported,
    /// A configured key could not be parsed, or no usable key was found in it.
    InvalidKey,
    /// A header or cookie name, or the realm, is not valid in an HTTP header.
    InvalidHeader,
    /// A numeric setting is out of its range (for example a zero token length).
    InvalidValue,
    /// An issuer or JWKS URL does not parse, or is not https (plain http is accepted
    /// for loopback addresses only, unless explicitly allowed).
    InvalidUrl,
    /// An issuer template has no tenant allow-list.
    NoTenantAllowList,
    /// Several issuers would share one key source that does not bind keys to an issuer
    /// (static keys, a JWKS URL, a custom key store).
    SharedKeySource,
    /// More than one key source (static keys, a key store, a JWKS URL, discovery) was
    /// given for the same issuer.
    ConflictingKeySources,
    /// No key source was given and discovery is not available (the `remote` feature is
    /// off).
    NoKeySource,
    /// A resource-metadata setting (`resource_name`, `resource_documentation`,
    /// `scopes_supported`) was given without `.resource(..)`.
    ResourceRequired,
    /// A configuration file or environment variable does not parse: a syntax error, an
    /// unknown field, a wrong type, a bad duration; or a file it names cannot be read.
    InvalidSettings,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            path: None,
            line: None,
        }
    }

    /// An error about the field at `path` of a configuration file (and `line`, when
    /// known); the message starts with them.
    #[cfg(feature = "settings")]
    pub(crate) fn at(
        kind: ConfigErrorKind,
        path: impl Into<String>,
        line: Option<usize>,
        message: impl fmt::Display,
    ) -> Self {
        let path = path.into();
        let place = match (path.is_empty(), line) {
            (false, Some(line)) => format!("{path} (line {line}): "),
            (false, None) => format!("{path}: "),
            (true, Some(line)) => format!("line {line}: "),
            (true, None) => String::new(),
        };
        Self {
            kind,
            message: format!("{place}{message}"),
            path: (!path.is_empty()).then_some(path),
            line,
        }
    }

    /// The path of the bad field, for errors about a configuration file or the
    /// environment (`issuers[1].audiences[0]`, `JWT_LEEWAY`).
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The line of the bad field, when the file format gives one.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong with the configuration.
    #[must_use]
    pub fn kind(&self) -> ConfigErrorKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_rfc_6750() {
        assert_eq!(ErrorKind::MissingToken.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(ErrorKind::MissingToken.error_code(), None);
        assert_eq!(
            ErrorKind::MalformedCredentials.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ErrorKind::MalformedCredentials.error_code(),
            Some("invalid_request")
        );
        assert_eq!(ErrorKind::Expired.error_code(), Some("invalid_token"));
        assert_eq!(
            ErrorKind::KeysUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
