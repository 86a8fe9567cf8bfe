//! [`JwtAuthConfigBuilder`]: the configuration as plain data, one setter per option.
//! Nothing here validates or compiles; `compile.rs` does, once, in `build()`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::model::{Declared, PermissionClaim};
use crate::algorithm::Algorithm;
use crate::cache::CacheOptions;
use crate::dpop::DpopOptions;
use crate::issuer::{KeyInput, KeySpec, TrustedIssuer};
#[cfg(feature = "remote")]
use crate::jwks::options::RemoteOptions;
use crate::jwks::{KeySet, KeyStore};
use crate::mtls::MtlsMode;
use crate::policy::TypPolicy;
use crate::response::{DefaultResponder, ErrorResponder};
use crate::rules::{
    Check, ClaimRule, ClaimsView, Exemption, Expected, PayloadCheck, Predicate, RequestHead,
};
use crate::state::{ProofStore, ReplayStore, RevocationList, StoreFailure};
use crate::telemetry::{AuditEvent, AuditHook, SubjectLogging};
use crate::time::{Clock, SystemClock};
use crate::token::TokenSource;

/// Builds a [`JwtAuthConfig`](crate::JwtAuthConfig).
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
    /// Every declarative option: what a settings file can also say.
    pub(crate) declared: Declared,
    /// What only code can give: closures, stores, clocks, keys as bytes.
    pub(super) any_audience: bool,
    pub(super) any_tenant: bool,
    /// A token source built in code; it wins over the declared `[token]` sources.
    pub(super) token_source: Option<TokenSource>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) keys: KeySpec,
    /// Claim validators written as closures.
    pub(super) claim_validators: Vec<ClaimRule>,
    pub(super) payload_checks: Vec<PayloadCheck>,
    pub(super) exempt_predicates: Vec<Predicate>,
    pub(super) responder: Arc<dyn ErrorResponder>,
    pub(super) audit: Option<AuditHook>,
    pub(super) replay: Option<Arc<dyn ReplayStore>>,
    pub(super) proofs: Option<Arc<dyn ProofStore>>,
    pub(super) revocation: Option<Arc<dyn RevocationList>>,
    /// Introspection answers without `aud` are accepted (a dangerous setting).
    #[cfg(feature = "remote")]
    pub(super) introspection_audience_optional: bool,
    /// Finds the line of a field path in the settings file the options came from.
    pub(crate) lines: Option<LineFinder>,
}

/// Finds the line of a field path (`issuers[0].audiences[1]`) in a settings file.
pub(crate) type LineFinder = Arc<dyn Fn(&str) -> Option<usize> + Send + Sync>;

impl Default for JwtAuthConfigBuilder {
    fn default() -> Self {
        Self {
            declared: Declared::default(),
            any_audience: false,
            any_tenant: false,
            token_source: None,
            clock: Arc::new(SystemClock),
            keys: KeySpec::default(),
            claim_validators: Vec::new(),
            payload_checks: Vec::new(),
            exempt_predicates: Vec::new(),
            responder: Arc::new(DefaultResponder),
            audit: None,
            replay: None,
            proofs: None,
            revocation: None,
            #[cfg(feature = "remote")]
            introspection_audience_optional: false,
            lines: None,
        }
    }
}

impl fmt::Debug for JwtAuthConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthConfigBuilder")
            .field("declared", &self.declared)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// The settings that weaken validation, reached through
/// [`JwtAuthConfigBuilder::dangerous`].
#[must_use]
#[derive(Debug)]
pub struct DangerousConfigBuilder {
    pub(super) builder: JwtAuthConfigBuilder,
}

impl DangerousConfigBuilder {
    /// Accepts tokens whatever their `aud`. RFC 9068 section 4 requires resource servers
    /// to check the audience: without it, a token minted for any other API of the same
    /// issuer is accepted here.
    pub fn accept_any_audience(mut self) -> JwtAuthConfigBuilder {
        self.builder.any_audience = true;
        self.builder
    }

    /// Fetches keys and discovery documents over plain http from any host, not only
    /// loopback: whoever can answer those requests (anyone on the path) chooses the keys
    /// this API trusts. For closed test networks only.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn allow_plain_http(mut self) -> JwtAuthConfigBuilder {
        self.builder.declared.remote.allow_http = true;
        self.builder
    }

    /// Accepts introspection answers that name no audience. RFC 7662 makes `aud`
    /// optional, but without it a token issued for any other resource server of the same
    /// authorization server is accepted here.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn introspection_without_audience(mut self) -> JwtAuthConfigBuilder {
        self.builder.introspection_audience_optional = true;
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
    /// Adds a trusted issuer: its URL (`iss` must equal it byte for byte, no
    /// trailing-slash normalisation), or a [`TrustedIssuer`] with settings of its own.
    /// Call again to trust several issuers: each gets its own key store and the token's
    /// `iss` picks it.
    ///
    /// One rule decides what an issuer uses: its own key source, audiences and tenants
    /// when it names any, else this builder's. Several issuers cannot share one of the
    /// key sources that name no issuer (static keys, a JWKS URL, a custom store), since a
    /// key of one could then sign tokens claiming another: give each its own.
    ///
    /// An issuer containing `{tenantid}` (or `{tenant}`) is a template for multi-tenant
    /// providers such as Microsoft Entra ID
    /// (`https://login.microsoftonline.com/{tenantid}/v2.0`): it matches the tenants given
    /// to [`tenants`](Self::tenants), and its keys come from the `common` discovery
    /// document.
    pub fn issuer(mut self, issuer: impl Into<TrustedIssuer>) -> Self {
        self.declared.issuers.push(issuer.into());
        self
    }

    /// The former way to add a [`TrustedIssuer`]; [`issuer`](Self::issuer) takes one.
    #[deprecated(since = "0.2.0", note = "`issuer` takes a `TrustedIssuer` too")]
    pub fn trusted_issuer(self, issuer: TrustedIssuer) -> Self {
        self.issuer(issuer)
    }

    /// The tenants an issuer template accepts.
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declared
            .tenants
            .extend(tenants.into_iter().map(Into::into));
        self
    }

    /// Adds an accepted audience; a token passes when its `aud` (string or array) names
    /// at least one of them. Required unless turned off through [`dangerous`](Self::dangerous).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.declared.audiences.push(audience.into());
        self
    }

    /// The clock skew tolerated on `exp`, `nbf` and `iat`; 60 s by default. It is also
    /// the skew allowed between this replica, the identity provider and other replicas
    /// where their clocks decide together: replay records live one leeway longer than
    /// the token or proof they record, and a subject revocation also refuses tokens
    /// issued up to one leeway after it.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.declared.leeway = leeway;
        self
    }

    /// The longest lifetime a token may have: a token whose `exp - iat` (or, without
    /// `iat`, `exp - now`, with the leeway) exceeds it gets 401 `invalid_token` ("token
    /// lifetime exceeds the maximum").
    ///
    /// Off by default, except with a [revocation list](Self::revocation_list): then it
    /// defaults to the [revocation retention](Self::revocation_retention), so no revoked
    /// token outlives the record of its revocation, and `build()` refuses a retention
    /// shorter than an explicit maximum.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.declared.max_lifetime = Some(lifetime);
        self
    }

    /// Restricts the algorithms a token may use. By default every algorithm the
    /// configured keys can verify is allowed (for remote keys: every asymmetric one).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.declared.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Which `typ` header values pass; see [`TypPolicy`].
    pub fn typ_policy(mut self, policy: TypPolicy) -> Self {
        self.declared.typ = policy;
        self
    }

    /// Claims every token must carry, whatever their value, such as `sub` or `jti`
    /// ([`require_claim`](Self::require_claim) checks a value).
    pub fn require_claims_present<I, S>(mut self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declared
            .required_claims
            .extend(claims.into_iter().map(Into::into));
        self
    }

    /// The former name of [`require_claims_present`](Self::require_claims_present).
    #[deprecated(since = "0.2.0", note = "renamed `require_claims_present`")]
    pub fn require_claims<I, S>(self, claims: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.require_claims_present(claims)
    }

    /// Requires a claim with one of the expected values: a string, number or boolean, or
    /// one of a set ([`Expected::any_of`]). A token without the claim gets 401
    /// `invalid_token` ("required claim missing"), one with another value 401 ("claim
    /// not accepted").
    ///
    /// ```
    /// use tower_jwt_auth::JwtAuthConfig;
    /// use tower_jwt_auth::rules::Expected;
    ///
    /// let builder = JwtAuthConfig::builder()
    ///     .require_claim("email_verified", true)
    ///     .require_claim("tenant", Expected::any_of(["acme", "globex"]));
    /// # let _ = builder;
    /// ```
    pub fn require_claim(mut self, name: impl Into<String>, expected: impl Into<Expected>) -> Self {
        let rules = &mut self.declared.claims.require;
        rules.insert(name.into(), expected.into());
        self
    }

    /// Checks a claim's value only when the token has it: absent passes, another value
    /// is 401 ("claim not accepted").
    pub fn claim_if_present(
        mut self,
        name: impl Into<String>,
        expected: impl Into<Expected>,
    ) -> Self {
        let rules = &mut self.declared.claims.if_present;
        rules.insert(name.into(), expected.into());
        self
    }

    /// A mandatory validator of one claim: the token must have it, and `validate` must
    /// accept its value (401 "required claim missing" or "claim not accepted").
    ///
    /// ```
    /// use tower_jwt_auth::JwtAuthConfig;
    ///
    /// let builder = JwtAuthConfig::builder()
    ///     .validate_claim("amr", |amr| amr.as_array().is_some_and(|m| m.iter().any(|m| m == "mfa")));
    /// # let _ = builder;
    /// ```
    pub fn validate_claim<F>(self, name: impl Into<String>, validate: F) -> Self
    where
        F: Fn(&serde_json::Value) -> bool + Send + Sync + 'static,
    {
        self.claim_rule(name, true, Check::Validate(std::sync::Arc::new(validate)))
    }

    /// An optional validator of one claim: it runs only when the token has the claim.
    pub fn validate_claim_if_present<F>(self, name: impl Into<String>, validate: F) -> Self
    where
        F: Fn(&serde_json::Value) -> bool + Send + Sync + 'static,
    {
        self.claim_rule(name, false, Check::Validate(std::sync::Arc::new(validate)))
    }

    /// A validator over every top-level claim of the verified payload; `false` is 401
    /// ("claim not accepted"). For a check over your own claims type, use
    /// [`JwtAuthLayer::validate`](crate::JwtAuthLayer::validate).
    pub fn validate_claims<F>(mut self, validate: F) -> Self
    where
        F: Fn(&ClaimsView<'_>) -> bool + Send + Sync + 'static,
    {
        self.payload_checks.push(std::sync::Arc::new(validate));
        self
    }

    /// Only tokens of these client applications: the token's `client_id` (RFC 9068),
    /// or its `azp` when it has no `client_id`, must be listed. Other tokens, and tokens
    /// with neither claim, get 401 `invalid_token` ("client not allowed").
    pub fn allowed_clients<I, S>(mut self, clients: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declared
            .allowed_clients
            .get_or_insert_with(Vec::new)
            .extend(clients.into_iter().map(Into::into));
        self
    }

    /// Lets requests that match `exemption` through without a token; a token they carry
    /// is still verified, and its claims reach the handler. See [`Exemption`].
    pub fn exempt(mut self, exemption: Exemption) -> Self {
        self.declared.exempt.push(exemption);
        self
    }

    /// Lets requests for which `predicate` is true through without a token (as
    /// [`exempt`](Self::exempt), decided by code).
    pub fn exempt_when<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    {
        self.exempt_predicates.push(std::sync::Arc::new(predicate));
        self
    }

    /// Copies a claim into a request header for the inner service (a proxy or sidecar
    /// upstream): strings as they are, other values as JSON text. A header of that name
    /// sent by the client is always removed first, so it cannot be forged.
    ///
    /// ```
    /// use tower_jwt_auth::JwtAuthConfig;
    ///
    /// let builder = JwtAuthConfig::builder()
    ///     .forward_claim("sub", "x-jwt-sub")
    ///     .forward_claim("tenant", "x-jwt-tenant");
    /// # let _ = builder;
    /// ```
    pub fn forward_claim(mut self, claim: impl Into<String>, header: impl Into<String>) -> Self {
        self.declared
            .forward
            .claims
            .push((claim.into(), header.into()));
        self
    }

    /// Forwards the whole verified payload, base64url-encoded, in this header (a client's
    /// own header of that name is removed first).
    pub fn forward_payload(mut self, header: impl Into<String>) -> Self {
        self.declared.forward.payload = Some(header.into());
        self
    }

    /// Removes `Authorization` from admitted requests before the inner service sees
    /// them (the token stays readable through [`Authentication`](crate::Authentication)).
    pub fn remove_authorization(mut self, remove: bool) -> Self {
        self.declared.forward.remove_authorization = remove;
        self
    }

    /// DPoP (RFC 9449): see [`DpopOptions`]. Off by default, and then a DPoP-bound token
    /// (`cnf.jkt`) is refused.
    pub fn dpop(mut self, options: DpopOptions) -> Self {
        self.declared.dpop = Some(options);
        self
    }

    /// Certificate-bound tokens (RFC 8705): a token with `cnf["x5t#S256"]` passes only
    /// with the matching [`ClientCertificate`](crate::mtls::ClientCertificate) in the
    /// request extensions. Off by default, and then such a token is refused.
    pub fn mtls(mut self, mode: MtlsMode) -> Self {
        self.declared.mtls = mode;
        self
    }

    /// Opaque access tokens through RFC 7662 introspection at the issuer; see
    /// [`Introspection`](crate::introspection::Introspection). With several trusted
    /// issuers `build()` refuses it: an opaque token names no issuer, and it is never
    /// sent to several authorization servers.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn introspection(mut self, introspection: crate::introspection::Introspection) -> Self {
        self.declared.introspection = Some(introspection);
        self
    }

    fn claim_rule(mut self, name: impl Into<String>, mandatory: bool, check: Check) -> Self {
        self.claim_validators.push(ClaimRule {
            name: name.into().into(),
            mandatory,
            check,
        });
        self
    }

    /// The longest token accepted, in bytes; 8 KiB by default. Longer tokens are refused
    /// before any decoding.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.declared.max_token_len = len;
        self
    }

    /// Where the token is read from; the `Authorization: Bearer` header by default.
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.token_source = Some(source);
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.declared.realm = Some(realm.into());
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
    /// [`RemoteJwks`](crate::jwks::RemoteJwks) per issuer. This is the default when no other key source is given.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn discovery(mut self) -> Self {
        self.keys.discovery = true;
        self
    }

    /// Fetches the keys from a JWKS URL, refreshed in the background by a [`RemoteJwks`](crate::jwks::RemoteJwks).
    /// With several issuers, give each its own through a
    /// [`TrustedIssuer`] passed to [`issuer`](Self::issuer).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.keys.jwks_url = Some(url.into());
        self
    }

    /// How remote keys are fetched and refreshed: HTTP client, intervals, timeouts. See
    /// [`RemoteOptions`] for each default and its reason.
    ///
    /// An HTTP client set before (with [`http_client`](Self::http_client)) is kept
    /// unless `options` carries one of its own, and plain http allowed through
    /// [`dangerous`](Self::dangerous) stays allowed: the order of the calls does not
    /// matter.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn remote_options(mut self, options: RemoteOptions) -> Self {
        let remote = &mut self.declared.remote;
        let client = options.client.clone().or(remote.client.take());
        // A switch set through `dangerous()` stays set, whatever the order of calls.
        let allow_http = options.allow_http || remote.allow_http;
        *remote = options;
        remote.client = client;
        remote.allow_http = allow_http;
        self
    }

    /// The HTTP client for remote keys; shorthand for
    /// [`RemoteOptions::http_client`].
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        let remote = std::mem::take(&mut self.declared.remote);
        self.declared.remote = remote.http_client(client);
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
        self.declared
            .permission_claims
            .push(PermissionClaim::Dotted(dotted_path.to_owned()));
        self
    }

    /// Reads permissions from a claim path given segment by segment
    /// (`["resource_access", "my.api", "roles"]`).
    pub fn permission_claim_path<I, S>(mut self, segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let segments = segments.into_iter().map(Into::into).collect();
        self.declared
            .permission_claims
            .push(PermissionClaim::Segments(segments));
        self
    }

    /// Permissions every request needs, on every route of the layer: a token without all
    /// of them gets 403 `insufficient_scope`.
    pub fn require_permissions<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.declared
            .required_permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// This API's resource identifier (RFC 9728): an https URL, usually the audience its
    /// tokens carry. With it, every 401 and 403 challenge names the metadata document in
    /// `resource_metadata="…"`, and [`JwtAuthConfig::protected_resource_metadata`](crate::JwtAuthConfig::protected_resource_metadata) serves
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

    fn resource_mut(&mut self) -> &mut crate::resource::ResourceSettings {
        self.declared.resource.get_or_insert_with(Default::default)
    }

    /// Turns on the verified-token cache of the layer: a repeat request with the same
    /// token skips the signature check and the payload parse, while `exp`, `nbf` and `iat`
    /// are checked again on every hit and a key-set change drops every entry. Off by
    /// default; see [`CacheOptions`] for the bounds and the reasoning.
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.declared.cache = Some(options);
        self
    }

    /// How rejections are rendered; see [`ErrorResponder`].
    pub fn error_responder(mut self, responder: impl ErrorResponder) -> Self {
        self.responder = Arc::new(responder);
        self
    }

    /// How the verified subject (`sub`) appears in the layer's tracing span: not at all
    /// (the default), raw, or hashed. The span (`jwt_auth`, DEBUG level) carries the
    /// configured issuer, the `kid`, the client id and the outcome; never the token.
    pub fn subject_logging(mut self, mode: SubjectLogging) -> Self {
        self.declared.telemetry.subject = mode;
        self
    }

    /// Calls `hook` once per request the layer decides, with a token-free summary: the
    /// outcome label, the error kind of a refusal, the method and path, and for a verified
    /// token its issuer, subject, client id and `kid`. For audit logs.
    ///
    /// ```
    /// use tower_jwt_auth::JwtAuthConfig;
    ///
    /// let builder = JwtAuthConfig::builder().on_outcome(|event| {
    ///     if event.error.is_some() {
    ///         eprintln!("refused: {event}");
    ///     }
    /// });
    /// # let _ = builder;
    /// ```
    pub fn on_outcome<F>(mut self, hook: F) -> Self
    where
        F: Fn(&AuditEvent<'_>) + Send + Sync + 'static,
    {
        self.audit = Some(Arc::new(hook));
        self
    }

    /// Makes every token single use: a token needs a `jti`, and the second request with
    /// the same issuer and `jti` gets 401 `invalid_token` ("token already used"), on every
    /// replica that shares the [`replay_store`](Self::replay_store). A token without
    /// `jti` gets 401 ("required claim missing"). Layer-wide permissions are checked
    /// first, so a 403 does not use a token up.
    ///
    /// For single use on some routes only, use
    /// [`RequirePermission::single_use`](crate::RequirePermission::single_use) or the
    /// [`SingleUse`](crate::guard::SingleUse) layer instead.
    pub fn single_use_tokens(mut self, on: bool) -> Self {
        self.declared.state.single_use = on;
        self
    }

    /// Where used tokens are recorded, for single use (layer-wide or per route). The
    /// default is a [`MemoryReplayStore`](crate::state::MemoryReplayStore) of 100 000
    /// keys, which is right for one replica only: replicas share a `RedisReplayStore`
    /// (feature `redis`).
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Some(Arc::new(store));
        self
    }

    /// Where DPoP proofs are recorded (RFC 9449 section 11.1), apart from single-use
    /// tokens. The default is the proof store the [`replay_store`](Self::replay_store)
    /// offers on its backend (a `RedisReplayStore` offers a `RedisProofStore` on the
    /// same connection), else a [`MemoryProofStore`](crate::state::MemoryProofStore) of
    /// 100 000 proofs, right for one replica only. Each client key may hold at most
    /// [`max_live_proofs_per_key`](crate::dpop::DpopOptions::max_live_proofs_per_key)
    /// live proofs in it.
    pub fn proof_store(mut self, store: impl ProofStore) -> Self {
        self.proofs = Some(Arc::new(store));
        self
    }

    /// Checks every request against this revocation list, after the signature and for
    /// cached tokens too: a revoked token, or a token of a revoked subject issued at or
    /// before the revocation (or without `iat`), gets 401 `invalid_token` ("token
    /// revoked"). Record revocations through
    /// [`JwtAuthConfig::revocations`](crate::JwtAuthConfig::revocations).
    pub fn revocation_list(mut self, list: impl RevocationList) -> Self {
        self.revocation = Some(Arc::new(list));
        self
    }

    /// How long a revocation is kept (24 h by default), since the revoking call does not
    /// know a token's `exp`. With a revocation list, tokens that live longer are refused
    /// (see [`max_lifetime`](Self::max_lifetime)), so a revoked token never works again
    /// once its revocation lapses. It is also how long a single-use token without `exp`
    /// (an introspected one) is remembered; a token with `exp` is remembered until then.
    pub fn revocation_retention(mut self, retention: Duration) -> Self {
        self.declared.state.revocation_retention = retention;
        self
    }

    /// The former name of [`revocation_retention`](Self::revocation_retention).
    #[deprecated(since = "0.2.0", note = "renamed `revocation_retention`")]
    pub fn max_token_lifetime(self, lifetime: Duration) -> Self {
        self.revocation_retention(lifetime)
    }

    /// What happens when the replay store or revocation list does not answer:
    /// [`StoreFailure::Closed`] (503 with `Retry-After`, the default) or
    /// [`StoreFailure::Open`] (pass, logged once per outage at WARN and counted).
    pub fn store_failure(mut self, mode: StoreFailure) -> Self {
        self.declared.state.failure = mode;
        self
    }

    /// Settings that weaken validation; each one says what it gives up.
    pub fn dangerous(self) -> DangerousConfigBuilder {
        DangerousConfigBuilder { builder: self }
    }
}

#[cfg(all(test, feature = "remote"))]
mod tests {
    use super::*;

    #[test]
    fn a_client_survives_remote_options_set_after_it_and_before_it() {
        let client = reqwest::Client::new();
        let after = JwtAuthConfigBuilder::default()
            .http_client(client.clone())
            .remote_options(RemoteOptions::new().fetch_timeout(Duration::from_secs(1)));
        assert!(after.declared.remote.client.is_some());
        assert_eq!(after.declared.remote.fetch_timeout, Duration::from_secs(1));
        let before = JwtAuthConfigBuilder::default()
            .remote_options(RemoteOptions::new())
            .http_client(client);
        assert!(before.declared.remote.client.is_some());
    }

    #[test]
    fn weakening_switches_are_reached_through_dangerous_only() {
        let b = JwtAuthConfigBuilder::default()
            .dangerous()
            .allow_plain_http()
            .dangerous()
            .introspection_without_audience();
        assert!(b.declared.remote.allow_http);
        assert!(b.introspection_audience_optional);
        let later = b.remote_options(RemoteOptions::new());
        assert!(later.declared.remote.allow_http, "kept by remote_options");
    }
}
