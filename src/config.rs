//! [`JwtAuthConfig`] and its builder. Every setting is checked once, in
//! [`JwtAuthConfigBuilder::build`]; a config that builds is one the layer can run with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::algorithm::Algorithm;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::jwks::{KeySet, KeyStore, StaticKeys};
use crate::response::{DefaultResponder, ErrorResponder};
use crate::time::{Clock, SystemClock};
use crate::token::TokenSource;

/// The default clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The default maximum token length in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// Which JWS `typ` header values are accepted (RFC 8725 section 3.11).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TypPolicy {
    /// `typ` absent, `JWT` or `at+jwt` (case-insensitive, optional `application/`
    /// prefix). Any other type, such as `dpop+jwt`, `logout+jwt` or `secevent+jwt`, is a
    /// token meant for something else and is refused.
    #[default]
    Lenient,
    /// RFC 9068 access tokens only: `typ` must be `at+jwt`.
    AccessToken,
}

/// The validated configuration of a [`JwtAuthLayer`](crate::JwtAuthLayer).
///
/// Cheap to clone. Built with [`JwtAuthConfig::builder`].
#[derive(Clone)]
pub struct JwtAuthConfig {
    pub(crate) settings: Arc<Settings>,
}

pub(crate) struct Settings {
    pub(crate) issuers: Vec<Box<str>>,
    /// Empty only when the audience check was turned off through `dangerous()`.
    pub(crate) audiences: Vec<Box<str>>,
    pub(crate) leeway: f64,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) typ: TypPolicy,
    pub(crate) required_claims: Vec<Box<str>>,
    pub(crate) max_token_len: usize,
    pub(crate) token_source: TokenSource,
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: Arc<dyn KeyStore>,
    pub(crate) responder: Arc<dyn ErrorResponder>,
}

impl fmt::Debug for JwtAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("JwtAuthConfig")
            .field("issuers", &s.issuers)
            .field("audiences", &s.audiences)
            .field("leeway", &s.leeway)
            .field("algorithms", &s.algorithms)
            .field("typ", &s.typ)
            .field("required_claims", &s.required_claims)
            .field("max_token_len", &s.max_token_len)
            .field("token_source", &s.token_source)
            .field("realm", &s.realm)
            .field("clock", &s.clock)
            .field("keys", &s.keys)
            .finish_non_exhaustive()
    }
}

impl JwtAuthConfig {
    /// A builder with the defaults: bearer header, 60 s leeway, 8 KiB tokens, lenient
    /// `typ`, system clock, empty-body RFC 6750 responses.
    pub fn builder() -> JwtAuthConfigBuilder {
        JwtAuthConfigBuilder::default()
    }

    /// The trusted issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.settings.issuers.iter().map(AsRef::as_ref)
    }

    /// The accepted audiences (empty if the check was turned off).
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.settings.audiences.iter().map(AsRef::as_ref)
    }

    /// The algorithms a token may use.
    #[must_use]
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.settings.algorithms
    }
}

enum KeyInput {
    Pem(String),
    Jwk(String),
    Jwks(String),
    JwksValue(serde_json::Value),
    Hmac(Vec<u8>),
    Set(KeySet),
}

impl fmt::Debug for KeyInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pem(_) => "Pem",
            Self::Jwk(_) => "Jwk",
            Self::Jwks(_) | Self::JwksValue(_) => "Jwks",
            Self::Hmac(_) => "Hmac(<redacted>)",
            Self::Set(_) => "KeySet",
        })
    }
}

/// Builds a [`JwtAuthConfig`].
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::JwtAuthConfig;
///
/// let cfg = JwtAuthConfig::builder()
///     .issuer("https://idp.example.com/")
///     .audience("https://api.example.com")
///     .leeway(Duration::from_secs(30))
///     .hmac_secret(b"an example secret of at least 32 bytes".to_vec())
///     .build()?;
/// # let _ = cfg;
/// # Ok::<(), tower_jwt_auth::ConfigError>(())
/// ```
#[must_use]
pub struct JwtAuthConfigBuilder {
    issuers: Vec<String>,
    audiences: Vec<String>,
    any_audience: bool,
    leeway: Duration,
    algorithms: Option<Vec<Algorithm>>,
    typ: TypPolicy,
    required_claims: Vec<String>,
    max_token_len: usize,
    token_source: TokenSource,
    realm: Option<String>,
    clock: Arc<dyn Clock>,
    key_inputs: Vec<KeyInput>,
    key_store: Option<Arc<dyn KeyStore>>,
    responder: Arc<dyn ErrorResponder>,
}

impl Default for JwtAuthConfigBuilder {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            any_audience: false,
            leeway: DEFAULT_LEEWAY,
            algorithms: None,
            typ: TypPolicy::default(),
            required_claims: Vec::new(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            token_source: TokenSource::default(),
            realm: None,
            clock: Arc::new(SystemClock),
            key_inputs: Vec::new(),
            key_store: None,
            responder: Arc::new(DefaultResponder),
        }
    }
}

impl fmt::Debug for JwtAuthConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthConfigBuilder")
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("key_inputs", &self.key_inputs)
            .finish_non_exhaustive()
    }
}

/// The settings that weaken validation, reached through
/// [`JwtAuthConfigBuilder::dangerous`].
#[must_use]
#[derive(Debug)]
pub struct DangerousConfigBuilder {
    builder: JwtAuthConfigBuilder,
}

impl DangerousConfigBuilder {
    /// Accepts tokens whatever their `aud`. RFC 9068 section 4 requires resource servers
    /// to check the audience: without it, a token minted for any other API of the same
    /// issuer is accepted here.
    pub fn accept_any_audience(mut self) -> JwtAuthConfigBuilder {
        self.builder.any_audience = true;
        self.builder
    }
}

impl JwtAuthConfigBuilder {
    /// Adds a trusted issuer. `iss` must equal it byte for byte (no trailing-slash
    /// normalisation). Call again to trust several issuers.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Adds an accepted audience; a token passes when its `aud` (string or array) names
    /// at least one of them. Required unless turned off through [`dangerous`](Self::dangerous).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The clock skew tolerated on `exp`, `nbf` and `iat`; 60 s by default.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Restricts the algorithms a token may use. By default every algorithm the
    /// configured keys can verify is allowed (for remote keys: every asymmetric one).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Which `typ` header values pass; see [`TypPolicy`].
    pub fn typ_policy(mut self, policy: TypPolicy) -> Self {
        self.typ = policy;
        self
    }

    /// Claims every token must carry, such as `sub` or `jti`.
    pub fn require_claims<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_claims
            .extend(claims.into_iter().map(Into::into));
        self
    }

    /// The longest token accepted, in bytes; 8 KiB by default. Longer tokens are refused
    /// before any decoding.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Where the token is read from; the `Authorization: Bearer` header by default.
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.token_source = source;
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// The clock claim checks read; the system clock by default. Tests use
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies with PEM public keys (RSA, EC P-256/P-384, Ed25519).
    pub fn pem(mut self, pem: impl Into<String>) -> Self {
        self.key_inputs.push(KeyInput::Pem(pem.into()));
        self
    }

    /// Verifies with one JWK (JSON text).
    pub fn jwk(mut self, jwk: impl Into<String>) -> Self {
        self.key_inputs.push(KeyInput::Jwk(jwk.into()));
        self
    }

    /// Verifies with the keys of a JWKS document (JSON text).
    pub fn jwks(mut self, jwks: impl Into<String>) -> Self {
        self.key_inputs.push(KeyInput::Jwks(jwks.into()));
        self
    }

    /// Verifies with the keys of a JWKS document held as JSON.
    pub fn jwks_value(mut self, jwks: serde_json::Value) -> Self {
        self.key_inputs.push(KeyInput::JwksValue(jwks));
        self
    }

    /// Verifies HS256/HS384/HS512 tokens with a shared secret. It must be at least as
    /// long as the hash output (32 bytes for HS256) and cannot be mixed with public keys.
    pub fn hmac_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.key_inputs.push(KeyInput::Hmac(secret.into()));
        self
    }

    /// Verifies with an already built [`KeySet`].
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.key_inputs.push(KeyInput::Set(keys));
        self
    }

    /// Verifies with keys from a custom [`KeyStore`]. Cannot be combined with the static
    /// key sources above.
    pub fn key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.key_store = Some(store);
        self
    }

    /// How rejections are rendered; see [`ErrorResponder`].
    pub fn error_responder(mut self, responder: impl ErrorResponder) -> Self {
        self.responder = Arc::new(responder);
        self
    }

    /// Settings that weaken validation; each one says what it gives up.
    pub fn dangerous(self) -> DangerousConfigBuilder {
        DangerousConfigBuilder { builder: self }
    }

    /// Checks the settings and parses the keys.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose [`kind`](ConfigError::kind) says what is wrong: no issuer,
    /// no audience (unless turned off), an empty issuer or audience, no key source, a key
    /// that does not parse, an HMAC secret shorter than the hash output, HMAC mixed with
    /// public keys, an allowed algorithm no key can verify, an invalid realm, header or
    /// cookie name, or a zero maximum token length.
    pub fn build(self) -> Result<JwtAuthConfig, ConfigError> {
        use ConfigErrorKind as K;
        if self.issuers.is_empty() {
            return Err(ConfigError::new(K::NoIssuer, "no issuer configured"));
        }
        if self.issuers.iter().any(String::is_empty) {
            return Err(ConfigError::new(K::EmptyValue, "empty issuer"));
        }
        if self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::new(K::EmptyValue, "empty audience"));
        }
        if self.audiences.is_empty() && !self.any_audience {
            return Err(ConfigError::new(
                K::NoAudience,
                "no audience configured (RFC 9068 section 4); use dangerous().accept_any_audience() to skip the check",
            ));
        }
        if self.max_token_len == 0 {
            return Err(ConfigError::new(
                K::InvalidValue,
                "max_token_len must be positive",
            ));
        }
        if let Some(realm) = &self.realm
            && (HeaderValue::from_str(realm).is_err() || realm.chars().any(char::is_control))
        {
            return Err(ConfigError::new(
                K::InvalidHeader,
                "realm is not valid in a header",
            ));
        }
        self.token_source
            .validate()
            .map_err(|msg| ConfigError::new(K::InvalidHeader, msg))?;

        let (keys, static_set) = self.key_source()?;
        let algorithms = resolve_algorithms(self.algorithms, static_set.as_deref())?;

        Ok(JwtAuthConfig {
            settings: Arc::new(Settings {
                issuers: self.issuers.into_iter().map(Into::into).collect(),
                audiences: self.audiences.into_iter().map(Into::into).collect(),
                leeway: self.leeway.as_secs_f64(),
                algorithms,
                typ: self.typ,
                required_claims: self.required_claims.into_iter().map(Into::into).collect(),
                max_token_len: self.max_token_len,
                token_source: self.token_source,
                realm: self.realm.map(Into::into),
                clock: self.clock,
                keys,
                responder: self.responder,
            }),
        })
    }

    /// The store to verify with, and the static key set when the keys are static.
    #[allow(clippy::type_complexity)]
    fn key_source(&self) -> Result<(Arc<dyn KeyStore>, Option<Arc<KeySet>>), ConfigError> {
        use ConfigErrorKind as K;
        match (&self.key_store, self.key_inputs.is_empty()) {
            (Some(_), false) => Err(ConfigError::new(
                K::InvalidKey,
                "a key store cannot be combined with static keys",
            )),
            (Some(store), true) => Ok((Arc::clone(store), None)),
            (None, true) => Err(ConfigError::new(K::NoKeySource, "no key source configured")),
            (None, false) => {
                let set = Arc::new(self.static_key_set()?);
                let store = StaticKeys::from_arc(Arc::clone(&set));
                Ok((Arc::new(store), Some(set)))
            }
        }
    }

    fn static_key_set(&self) -> Result<KeySet, ConfigError> {
        use ConfigErrorKind as K;
        let mut set = KeySet::new();
        for input in &self.key_inputs {
            let more = match input {
                KeyInput::Pem(pem) => KeySet::from_pem(pem)?,
                KeyInput::Jwk(jwk) => KeySet::from_jwk_json(jwk)?,
                KeyInput::Jwks(jwks) => KeySet::from_jwks_json(jwks)?,
                KeyInput::JwksValue(jwks) => KeySet::from_jwks_value(jwks)?,
                KeyInput::Hmac(secret) => KeySet::from_hmac_secret(secret)?,
                KeyInput::Set(keys) => keys.clone(),
            };
            set = set.merge(more);
        }
        if set.is_empty() {
            return Err(ConfigError::new(
                K::InvalidKey,
                "no usable key in the configured keys",
            ));
        }
        if set.has_hmac() && set.has_asymmetric() {
            return Err(ConfigError::new(
                K::MixedKeyTypes,
                "an HMAC secret cannot be combined with public keys",
            ));
        }
        Ok(set)
    }
}

fn resolve_algorithms(
    requested: Option<Vec<Algorithm>>,
    keys: Option<&KeySet>,
) -> Result<Vec<Algorithm>, ConfigError> {
    use ConfigErrorKind as K;
    let Some(requested) = requested else {
        return Ok(match keys {
            Some(keys) => Algorithm::ALL
                .into_iter()
                .filter(|alg| keys.iter().any(|k| k.supports(*alg)))
                .collect(),
            None => Algorithm::ASYMMETRIC.to_vec(),
        });
    };
    if requested.is_empty() {
        return Err(ConfigError::new(K::InvalidValue, "no algorithm allowed"));
    }
    if requested.iter().any(|a| a.is_hmac()) && requested.iter().any(|a| !a.is_hmac()) {
        return Err(ConfigError::new(
            K::MixedKeyTypes,
            "HMAC algorithms cannot be allowed together with asymmetric ones",
        ));
    }
    if let Some(keys) = keys {
        for alg in &requested {
            if keys.iter().any(|k| k.supports(*alg)) {
                continue;
            }
            let kind = if alg.is_hmac() && keys.has_hmac() {
                K::HmacSecretTooShort
            } else {
                K::AlgorithmNotSupported
            };
            return Err(ConfigError::new(
                kind,
                format!("no configured key can verify {alg}"),
            ));
        }
    }
    Ok(requested)
}
