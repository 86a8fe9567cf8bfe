//! [`JwtAuthConfig`] and its builder. Every setting is checked once, in
//! [`JwtAuthConfigBuilder::build`]; a config that builds is one the layer can run with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use crate::algorithm::Algorithm;
use crate::cache::{CacheOptions, TokenCache};
use crate::context::AuthContext;
use crate::error::{ConfigError, ConfigErrorKind};
use crate::issuer::{Issuer, IssuerMatch, KeyInput, KeySpec, TrustedIssuer};
#[cfg(feature = "remote")]
use crate::jwks::health::JwksHealth;
#[cfg(feature = "remote")]
use crate::jwks::options::RemoteOptions;
#[cfg(feature = "remote")]
use crate::jwks::remote::RemoteJwks;
use crate::jwks::{KeySet, KeyStore};
use crate::permission::{ClaimPath, Requirement};
use crate::policy::{ClaimRules, PermissionRules, Policy, TokenRules, TypPolicy};
use crate::resource::{ProtectedResourceMetadata, ResourceSettings};
use crate::response::{ChallengeParams, DefaultResponder, ErrorResponder};
use crate::time::{Clock, SystemClock};
use crate::token::TokenSource;

/// The default clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The default maximum token length in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// The validated configuration of a [`JwtAuthLayer`](crate::JwtAuthLayer).
///
/// Cheap to clone. Built with [`JwtAuthConfig::builder`].
#[derive(Clone)]
pub struct JwtAuthConfig {
    /// The compiled policy the layer reads.
    pub(crate) policy: Arc<Policy>,
}

impl fmt::Debug for JwtAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JwtAuthConfig").field(&self.policy).finish()
    }
}

impl JwtAuthConfig {
    /// A builder with the defaults: bearer header, 60 s leeway, 8 KiB tokens, lenient
    /// `typ`, system clock, empty-body RFC 6750 responses.
    pub fn builder() -> JwtAuthConfigBuilder {
        JwtAuthConfigBuilder::default()
    }

    /// The trusted issuers (templates as configured).
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.policy.issuers.iter().map(|i| i.matcher.as_str())
    }

    /// The RFC 9728 metadata document and a service that serves it, when a
    /// [`resource`](JwtAuthConfigBuilder::resource) is configured.
    #[must_use]
    pub fn protected_resource_metadata(&self) -> Option<ProtectedResourceMetadata> {
        self.policy.metadata.clone()
    }

    /// Health handles of the remote key stores, one per issuer or JWKS URL; empty when
    /// the keys are static.
    #[cfg(feature = "remote")]
    #[must_use]
    pub fn key_health(&self) -> Vec<JwksHealth> {
        self.policy
            .issuers
            .iter()
            .filter_map(|i| i.remote.as_ref())
            .map(RemoteJwks::health)
            .collect()
    }

    /// Waits until every remote key store has loaded, for at most `timeout`. Returns
    /// whether all have. The layer does not need this; it is for applications that want
    /// to hold back startup until the identity provider answered.
    #[cfg(feature = "remote")]
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        for remote in self.policy.issuers.iter().filter_map(|i| i.remote.as_ref()) {
            let left = timeout.saturating_sub(start.elapsed());
            if !remote.wait_until_ready(left).await {
                return false;
            }
        }
        true
    }

    /// The audiences a token of `issuer` may carry (as configured, templates included);
    /// empty if the check was turned off or the issuer is not trusted.
    pub fn audiences<'a>(&'a self, issuer: &str) -> impl Iterator<Item = &'a str> {
        self.policy
            .issuers
            .iter()
            .filter(move |i| i.matcher.as_str() == issuer)
            .flat_map(|i| i.audiences.iter().map(AsRef::as_ref))
    }

    /// The algorithms a token may use, over every trusted issuer.
    #[must_use]
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.policy.algorithms
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
    issuers: Vec<TrustedIssuer>,
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
    keys: KeySpec,
    #[cfg(feature = "remote")]
    remote_options: RemoteOptions,
    tenants: Vec<String>,
    any_tenant: bool,
    permission_paths: Vec<Option<ClaimPath>>,
    required_permissions: Vec<String>,
    resource: Option<ResourceSettings>,
    cache: Option<CacheOptions>,
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
            keys: KeySpec::default(),
            #[cfg(feature = "remote")]
            remote_options: RemoteOptions::default(),
            tenants: Vec::new(),
            any_tenant: false,
            permission_paths: Vec::new(),
            required_permissions: Vec::new(),
            resource: None,
            cache: None,
            responder: Arc::new(DefaultResponder),
        }
    }
}

impl fmt::Debug for JwtAuthConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthConfigBuilder")
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("keys", &self.keys)
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

    /// Accepts every tenant of an issuer template such as
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`. Any organisation with a tenant
    /// at that provider can then mint tokens this API accepts (as long as the audience
    /// matches, which for multi-tenant applications it can).
    pub fn accept_any_tenant(mut self) -> JwtAuthConfigBuilder {
        self.builder.any_tenant = true;
        self.builder
    }
}

impl JwtAuthConfigBuilder {
    /// Adds a trusted issuer. `iss` must equal it byte for byte (no trailing-slash
    /// normalisation). Call again to trust several issuers: each gets its own key store
    /// by OIDC discovery and the token's `iss` picks it. Several issuers cannot share
    /// one of the other key sources (static keys, a JWKS URL, a custom store), since a
    /// key of one could then sign tokens claiming another: give each its own with
    /// [`trusted_issuer`](Self::trusted_issuer).
    ///
    /// An issuer containing `{tenantid}` (or `{tenant}`) is a template for multi-tenant
    /// providers such as Microsoft Entra ID
    /// (`https://login.microsoftonline.com/{tenantid}/v2.0`): it matches the tenants given
    /// to [`tenants`](Self::tenants), and its keys come from the `common` discovery
    /// document.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(TrustedIssuer::new(issuer));
        self
    }

    /// Adds a trusted issuer with its own key source, audiences or tenants; what it
    /// leaves unset comes from this builder. A token is verified only with the keys of
    /// the issuer its `iss` names, then checked against that issuer's audiences.
    pub fn trusted_issuer(mut self, issuer: TrustedIssuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// The tenants an issuer template accepts.
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tenants.extend(tenants.into_iter().map(Into::into));
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
    /// [`ManualClock`](crate::time::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Verifies with PEM public keys (RSA, EC P-256/P-384, Ed25519).
    pub fn pem(mut self, pem: impl Into<String>) -> Self {
        self.keys.inputs.push(KeyInput::Pem(pem.into()));
        self
    }

    /// Verifies with one JWK (JSON text).
    pub fn jwk(mut self, jwk: impl Into<String>) -> Self {
        self.keys.inputs.push(KeyInput::Jwk(jwk.into()));
        self
    }

    /// Verifies with the keys of a JWKS document (JSON text).
    pub fn jwks(mut self, jwks: impl Into<String>) -> Self {
        self.keys.inputs.push(KeyInput::Jwks(jwks.into()));
        self
    }

    /// Verifies with the keys of a JWKS document held as JSON.
    pub fn jwks_value(mut self, jwks: serde_json::Value) -> Self {
        self.keys.inputs.push(KeyInput::JwksValue(jwks));
        self
    }

    /// Verifies HS256/HS384/HS512 tokens with a shared secret. It must be at least as
    /// long as the hash output (32 bytes for HS256) and cannot be mixed with public keys.
    pub fn hmac_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.keys.inputs.push(KeyInput::Hmac(secret.into()));
        self
    }

    /// Verifies with an already built [`KeySet`].
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.keys.inputs.push(KeyInput::Set(keys));
        self
    }

    /// Fetches the keys from OIDC discovery of each issuer
    /// (`{issuer}/.well-known/openid-configuration`), refreshed in the background by a
    /// [`RemoteJwks`] per issuer. This is the default when no other key source is given.
    #[cfg(feature = "remote")]
    pub fn discovery(mut self) -> Self {
        self.keys.discovery = true;
        self
    }

    /// Fetches the keys from a JWKS URL, refreshed in the background by a [`RemoteJwks`].
    /// With several issuers, give each its own through
    /// [`trusted_issuer`](Self::trusted_issuer).
    #[cfg(feature = "remote")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys.jwks_url = Some(url.into());
        self
    }

    /// How remote keys are fetched and refreshed: HTTP client, intervals, timeouts. See
    /// [`RemoteOptions`] for each default and its reason.
    #[cfg(feature = "remote")]
    pub fn remote_options(mut self, options: RemoteOptions) -> Self {
        self.remote_options = options;
        self
    }

    /// The HTTP client for remote keys; shorthand for
    /// [`RemoteOptions::http_client`].
    #[cfg(feature = "remote")]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.remote_options = self.remote_options.http_client(client);
        self
    }

    /// Verifies with keys from a custom [`KeyStore`]. Cannot be combined with the other
    /// key sources.
    pub fn key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.keys.store = Some(store);
        self
    }

    /// Reads permissions from another claim as well, by dotted path: `roles` (Entra app
    /// roles), `realm_access.roles` (Keycloak realm roles),
    /// `resource_access.my-api.roles` (Keycloak client roles). The value may be an array
    /// of strings or a space-delimited string. `permissions`, `scope` and `scp` are
    /// always read. Use [`permission_claim_path`](Self::permission_claim_path) when a
    /// segment contains a dot.
    pub fn permission_claim(mut self, dotted_path: &str) -> Self {
        self.permission_paths.push(ClaimPath::dotted(dotted_path));
        self
    }

    /// Reads permissions from a claim path given segment by segment
    /// (`["resource_access", "my.api", "roles"]`).
    pub fn permission_claim_path<I, S>(mut self, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let segments = segments.into_iter().map(|s| s.into().into_boxed_str());
        self.permission_paths.push(ClaimPath::new(segments));
        self
    }

    /// Permissions every request needs, on every route of the layer: a token without all
    /// of them gets 403 `insufficient_scope`.
    pub fn require_permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// This API's resource identifier (RFC 9728): an https URL, usually the audience its
    /// tokens carry. With it, every 401 and 403 challenge names the metadata document in
    /// `resource_metadata="…"`, and [`JwtAuthConfig::protected_resource_metadata`] serves
    /// that document (RFC 9728 section 3), listing the configured issuers as
    /// `authorization_servers`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource_mut().resource = resource.into();
        self
    }

    /// The `resource_name` of the metadata document.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_mut().name = Some(name.into());
        self
    }

    /// The `resource_documentation` URL of the metadata document.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_mut().documentation = Some(url.into());
        self
    }

    /// The `scopes_supported` of the metadata document: the permissions clients may ask
    /// for.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes = scopes.into_iter().map(Into::into);
        self.resource_mut().scopes.extend(scopes);
        self
    }

    fn resource_mut(&mut self) -> &mut ResourceSettings {
        self.resource.get_or_insert_with(|| ResourceSettings {
            resource: String::new(),
            name: None,
            documentation: None,
            scopes: Vec::new(),
        })
    }

    /// Turns on the verified-token cache of the layer: a repeat request with the same
    /// token skips the signature check and the payload parse, while `exp`, `nbf` and `iat`
    /// are checked again on every hit and a key-set change drops every entry. Off by
    /// default; see [`CacheOptions`] for the bounds and the reasoning.
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.cache = Some(options);
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
    /// no audience (unless turned off), an empty issuer or audience, two key sources for
    /// one issuer, several issuers sharing one static key set, JWKS URL or key store, a
    /// key that does not parse, an HMAC secret shorter than the hash output, HMAC mixed
    /// with public keys, an allowed algorithm no key can verify, an issuer or JWKS URL
    /// that is not https, an invalid realm, header or cookie name, resource-metadata
    /// settings without a resource, or a zero maximum token length. Nothing is fetched.
    pub fn build(self) -> Result<JwtAuthConfig, ConfigError> {
        use ConfigErrorKind as K;
        if self.issuers.is_empty() {
            return Err(ConfigError::new(K::NoIssuer, "no issuer configured"));
        }
        if self.issuers.iter().any(|i| i.issuer.is_empty()) {
            return Err(ConfigError::new(K::EmptyValue, "empty issuer"));
        }
        let all_audiences = self
            .audiences
            .iter()
            .chain(self.issuers.iter().flat_map(|i| &i.audiences));
        if all_audiences.into_iter().any(String::is_empty) {
            return Err(ConfigError::new(K::EmptyValue, "empty audience"));
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

        let issuers = self.build_issuers()?;
        let mut permission_paths = ClaimPath::defaults();
        for path in &self.permission_paths {
            let path = path.clone().ok_or_else(|| {
                ConfigError::new(
                    K::InvalidValue,
                    "a permission claim path has an empty segment",
                )
            })?;
            if !permission_paths.contains(&path) {
                permission_paths.push(path);
            }
        }
        let permission_capture = crate::permission::capture_names(&permission_paths);
        if self.required_permissions.iter().any(String::is_empty) {
            return Err(ConfigError::new(K::EmptyValue, "empty required permission"));
        }
        let required_permissions = (!self.required_permissions.is_empty()).then(|| {
            Requirement::All(
                self.required_permissions
                    .iter()
                    .map(|p| p.as_str().into())
                    .collect(),
            )
        });
        let metadata = match &self.resource {
            None => None,
            Some(resource) if resource.resource.is_empty() => {
                return Err(ConfigError::new(
                    K::ResourceRequired,
                    "resource_name, resource_documentation and scopes_supported need .resource(..)",
                ));
            }
            Some(resource) => {
                let (url, paths) = resource.locate()?;
                Some(ProtectedResourceMetadata::new(
                    resource,
                    issuers.iter().map(|i| i.matcher.as_str()).collect(),
                    self.token_source.reads_bearer_header(),
                    url.into(),
                    paths,
                ))
            }
        };
        let challenge = ChallengeParams {
            realm: self.realm.clone().map(Into::into),
            resource_metadata: metadata.as_ref().map(|m| m.url().into()),
        };
        let context = AuthContext::build(
            challenge,
            Arc::clone(&self.responder),
            required_permissions.clone(),
        );
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for alg in issuers.iter().flat_map(|i| &i.algorithms) {
            if !algorithms.contains(alg) {
                algorithms.push(*alg);
            }
        }

        Ok(JwtAuthConfig {
            policy: Arc::new(Policy {
                issuers,
                token: TokenRules {
                    source: self.token_source,
                    max_len: self.max_token_len,
                },
                claims: ClaimRules {
                    leeway: self.leeway.as_secs_f64(),
                    typ: self.typ,
                    required: self.required_claims.into_iter().map(Into::into).collect(),
                    clock: self.clock,
                },
                permissions: PermissionRules {
                    paths: permission_paths,
                    capture: permission_capture,
                    required: required_permissions,
                },
                cache: self.cache.map(TokenCache::new),
                context,
                algorithms,
                metadata,
            }),
        })
    }

    /// Each issuer with its matcher, audiences, algorithms and keys.
    fn build_issuers(&self) -> Result<Vec<Arc<Issuer>>, ConfigError> {
        use ConfigErrorKind as K;
        let sharing = self.issuers.iter().filter(|i| !i.keys.is_set()).count();
        if sharing > 1 && self.keys.is_anonymous() {
            return Err(ConfigError::new(
                K::SharedKeySource,
                "several issuers share one key source, so a key of one could sign tokens claiming another; \
                 give each issuer its own keys with .trusted_issuer(TrustedIssuer::new(issuer).jwks_url(..)) \
                 (or .key_set(..), .pem(..), .key_store(..)), or let each use OIDC discovery",
            ));
        }
        let mut issuers = Vec::with_capacity(self.issuers.len());
        for trusted in &self.issuers {
            let tenants = if trusted.tenants.is_empty() {
                &self.tenants
            } else {
                &trusted.tenants
            };
            let matcher = IssuerMatch::new(&trusted.issuer, tenants, self.any_tenant)?;
            let audiences = if trusted.audiences.is_empty() {
                &self.audiences
            } else {
                &trusted.audiences
            };
            if audiences.is_empty() && !self.any_audience {
                return Err(ConfigError::new(
                    K::NoAudience,
                    format!(
                        "no audience configured for issuer {:?} (RFC 9068 section 4); use dangerous().accept_any_audience() to skip the check",
                        trusted.issuer
                    ),
                ));
            }
            let spec = if trusted.keys.is_set() {
                &trusted.keys
            } else {
                &self.keys
            };
            let built = spec.build(
                matcher.as_str(),
                #[cfg(feature = "remote")]
                &self.remote_options,
            )?;
            let algorithms =
                resolve_algorithms(self.algorithms.as_deref(), built.static_set.as_deref())?;
            issuers.push(Arc::new(Issuer {
                matcher,
                audiences: audiences.iter().map(|a| a.as_str().into()).collect(),
                algorithms,
                store: built.store,
                #[cfg(feature = "remote")]
                remote: built.remote,
            }));
        }
        Ok(issuers)
    }
}

/// The algorithms one issuer accepts: those requested, or by default every one its
/// static keys can verify (for remote keys and custom stores: every asymmetric one).
fn resolve_algorithms(
    requested: Option<&[Algorithm]>,
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
        for alg in requested {
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
    Ok(requested.to_vec())
}
