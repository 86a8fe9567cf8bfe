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
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", kind.description())]
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
    /// An exemption would let the request through, but its path has a form that routers
    /// and upstreams may read as another path (an encoded slash, backslash or `%`, a
    /// backslash, a `.` or `..` segment, a `;` parameter, an encoded NUL, an empty
    /// segment): 400 `invalid_request`.
    AmbiguousPath,
    /// A credential with the configured API key prefix, or in the API key header, is no
    /// configured key (401 `invalid_token`); it is never tried as a token.
    UnknownApiKey,
}

/// Everything the crate says about one kind of refusal: the one table every other module
/// asks (responses, gRPC statuses, metric labels, the steps of an explanation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) status: StatusCode,
    /// The RFC 6750 (or RFC 9449, RFC 9470) `error` code.
    pub(crate) code: Option<&'static str>,
    pub(crate) description: &'static str,
    /// The gRPC status code: 16 `UNAUTHENTICATED`, 7 `PERMISSION_DENIED`, 14
    /// `UNAVAILABLE`.
    pub(crate) grpc: u8,
    /// The `outcome` label of metrics, spans and the audit hook (one of `OUTCOMES`).
    pub(crate) label: &'static str,
    /// The check of the layer's sequence at which such a refusal stops: one of
    /// `explain::CHECKS`, or `token` for the refusals of a request without one token.
    pub(crate) step: &'static str,
}

/// gRPC status codes of refusals.
pub(crate) mod grpc {
    pub(crate) const PERMISSION_DENIED: u8 = 7;
    pub(crate) const UNAVAILABLE: u8 = 14;
    pub(crate) const UNAUTHENTICATED: u8 = 16;
}

const fn row(
    status: StatusCode,
    code: Option<&'static str>,
    description: &'static str,
    grpc: u8,
    label: &'static str,
    step: &'static str,
) -> Row {
    Row {
        status,
        code,
        description,
        grpc,
        label,
        step,
    }
}

impl ErrorKind {
    /// The table. One row per kind and no catch-all arm: a new kind does not compile
    /// until it has its row.
    pub(crate) const fn row(self) -> Row {
        use grpc::{PERMISSION_DENIED, UNAUTHENTICATED, UNAVAILABLE};
        const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
        const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
        const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
        const SERVICE_UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
        const TOKEN: Option<&str> = Some("invalid_token");
        const DPOP: Option<&str> = Some("invalid_dpop_proof");
        #[rustfmt::skip]
        let row = match self {
            Self::MissingToken => row(UNAUTHORIZED, None, "no bearer token", UNAUTHENTICATED, "missing", "token"),
            Self::MalformedCredentials => row(BAD_REQUEST, Some("invalid_request"), "malformed credentials", UNAUTHENTICATED, "malformed", "token"),
            Self::TokenTooLong => row(UNAUTHORIZED, TOKEN, "token too long", UNAUTHENTICATED, "malformed", "length"),
            Self::Malformed => row(UNAUTHORIZED, TOKEN, "malformed token", UNAUTHENTICATED, "malformed", "structure"),
            Self::UnsupportedAlgorithm => row(UNAUTHORIZED, TOKEN, "unsupported algorithm", UNAUTHENTICATED, "invalid_signature", "algorithm"),
            Self::AlgorithmNotAllowed => row(UNAUTHORIZED, TOKEN, "algorithm not allowed", UNAUTHENTICATED, "invalid_signature", "algorithm"),
            Self::CriticalHeader => row(UNAUTHORIZED, TOKEN, "unsupported critical header", UNAUTHENTICATED, "invalid_claims", "header"),
            Self::InvalidType => row(UNAUTHORIZED, TOKEN, "unexpected token type", UNAUTHENTICATED, "invalid_claims", "header"),
            Self::UnknownKey => row(UNAUTHORIZED, TOKEN, "unknown signing key", UNAUTHENTICATED, "invalid_signature", "key"),
            Self::NoMatchingKey => row(UNAUTHORIZED, TOKEN, "no matching signing key", UNAUTHENTICATED, "invalid_signature", "key"),
            Self::KeyAlgorithmMismatch => row(UNAUTHORIZED, TOKEN, "key does not match algorithm", UNAUTHENTICATED, "invalid_signature", "key"),
            Self::InvalidSignature => row(UNAUTHORIZED, TOKEN, "invalid signature", UNAUTHENTICATED, "invalid_signature", "signature"),
            Self::Expired => row(UNAUTHORIZED, TOKEN, "token expired", UNAUTHENTICATED, "expired", "expiry"),
            Self::LifetimeTooLong => row(UNAUTHORIZED, TOKEN, "token lifetime exceeds the maximum", UNAUTHENTICATED, "invalid_claims", "expiry"),
            Self::NotYetValid => row(UNAUTHORIZED, TOKEN, "token not yet valid", UNAUTHENTICATED, "invalid_claims", "not-before"),
            Self::IssuedInFuture => row(UNAUTHORIZED, TOKEN, "token issued in the future", UNAUTHENTICATED, "invalid_claims", "issued-at"),
            Self::MissingClaim => row(UNAUTHORIZED, TOKEN, "required claim missing", UNAUTHENTICATED, "invalid_claims", "claims"),
            Self::InvalidClaim => row(UNAUTHORIZED, TOKEN, "invalid claim", UNAUTHENTICATED, "invalid_claims", "claims"),
            Self::InvalidIssuer => row(UNAUTHORIZED, TOKEN, "issuer not trusted", UNAUTHENTICATED, "invalid_claims", "issuer"),
            Self::InvalidAudience => row(UNAUTHORIZED, TOKEN, "audience not accepted", UNAUTHENTICATED, "invalid_claims", "audience"),
            Self::KeysUnavailable => row(SERVICE_UNAVAILABLE, None, "signing keys unavailable", UNAVAILABLE, "unavailable", "key"),
            Self::InsufficientPermission => row(FORBIDDEN, Some("insufficient_scope"), "insufficient permission", PERMISSION_DENIED, "forbidden", "permissions"),
            Self::TokenReplayed => row(UNAUTHORIZED, TOKEN, "token already used", UNAUTHENTICATED, "replayed", "state"),
            Self::TokenRevoked => row(UNAUTHORIZED, TOKEN, "token revoked", UNAUTHENTICATED, "revoked", "state"),
            Self::StoreUnavailable => row(SERVICE_UNAVAILABLE, None, "token state store unavailable", UNAVAILABLE, "unavailable", "state"),
            Self::ClientNotAllowed => row(UNAUTHORIZED, TOKEN, "client not allowed", UNAUTHENTICATED, "client_not_allowed", "claims"),
            Self::ClaimNotAccepted => row(UNAUTHORIZED, TOKEN, "claim not accepted", UNAUTHENTICATED, "invalid_claims", "claims"),
            Self::InsufficientUserAuthentication => row(UNAUTHORIZED, Some("insufficient_user_authentication"), "stronger or more recent authentication required", UNAUTHENTICATED, "step_up", "permissions"),
            Self::BindingMismatch => row(UNAUTHORIZED, TOKEN, "token binding not satisfied", UNAUTHENTICATED, "binding", "binding"),
            Self::InvalidDpopProof => row(UNAUTHORIZED, DPOP, "invalid DPoP proof", UNAUTHENTICATED, "dpop", "binding"),
            Self::UseDpopNonce => row(UNAUTHORIZED, Some("use_dpop_nonce"), "DPoP nonce required", UNAUTHENTICATED, "dpop", "binding"),
            Self::TokenInactive => row(UNAUTHORIZED, TOKEN, "token not active", UNAUTHENTICATED, "inactive", "introspection"),
            Self::IntrospectionUnavailable => row(SERVICE_UNAVAILABLE, None, "token introspection unavailable", UNAVAILABLE, "unavailable", "introspection"),
            Self::AmbiguousPath => row(BAD_REQUEST, Some("invalid_request"), "ambiguous request path", UNAUTHENTICATED, "malformed", "token"),
            Self::UnknownApiKey => row(UNAUTHORIZED, TOKEN, "unknown API key", UNAUTHENTICATED, "unknown_api_key", "api-key"),
        };
        row
    }

    /// The HTTP status this kind maps to.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        self.row().status
    }

    /// The RFC 6750 `error` code, or `None` where the RFC wants none (no token) or the
    /// answer is not an authentication challenge (503).
    #[must_use]
    pub const fn error_code(self) -> Option<&'static str> {
        self.row().code
    }

    /// A short fixed description, safe to send to clients and to log.
    #[must_use]
    pub const fn description(self) -> &'static str {
        self.row().description
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

/// The message, as `Display` gives it: an error returned from `main` is printed with
/// `Debug`, and a struct dump would bury what to fix.
impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A configuration that cannot work, reported by
/// [`JwtAuthConfigBuilder::build`](crate::JwtAuthConfigBuilder::build).
#[derive(thiserror::Error)]
#[error("{}{detail}", place(.path, .line))]
pub struct ConfigError {
    kind: ConfigErrorKind,
    /// What is wrong, without where.
    detail: String,
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
    /// An option breaks a rule of the configured [`Profile`](crate::Profile); the message
    /// names the rule and its source.
    ProfileViolation,
}

impl ConfigError {
    pub(crate) fn new(kind: ConfigErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            detail: message.into(),
            path: None,
            line: None,
        }
    }

    /// An error about the field at `path` of the configuration (and `line`, when a file
    /// gave it); the message starts with them.
    pub(crate) fn at(
        kind: ConfigErrorKind,
        path: impl Into<String>,
        line: Option<usize>,
        message: impl fmt::Display,
    ) -> Self {
        let path = path.into();
        Self {
            kind,
            detail: message.to_string(),
            path: (!path.is_empty()).then_some(path),
            line,
        }
    }

    /// The same error, with the line its field has in the file the options came from.
    pub(crate) fn with_line(mut self, line: Option<usize>) -> Self {
        self.line = self.line.or(line);
        self
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

/// Where a configuration error is: `path (line n): `, `path: `, `line n: ` or nothing.
fn place(path: &Option<String>, line: &Option<usize>) -> String {
    match (path, line) {
        (Some(path), Some(line)) => format!("{path} (line {line}): "),
        (Some(path), None) => format!("{path}: "),
        (None, Some(line)) => format!("line {line}: "),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_error_debugs_as_its_message() {
        let error = ConfigError::new(ConfigErrorKind::InvalidValue, "leeway must be finite");
        assert_eq!(format!("{error:?}"), "leeway must be finite");
        assert_eq!(format!("{error:?}"), error.to_string());
    }

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
