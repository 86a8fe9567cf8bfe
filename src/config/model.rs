//! The configuration model: every declarative option as plain data, one field each,
//! with its file key and its default. The builder's setters fill it, a settings file
//! or the environment fill it through serde, `compile.rs` checks and compiles it, and
//! `--check-config` prints it: one type, so an option is declared once.
//!
//! Sections with setters of their own are their public types ([`TrustedIssuer`],
//! [`CacheOptions`], [`DpopOptions`], `RemoteOptions`, `Introspection`), serde on them.
//! What cannot be written in a file (closures, key stores, clocks, HTTP clients, keys
//! given as bytes) stays beside the model in the builder.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::code::CodeParts;
use crate::algorithm::Algorithm;
use crate::api_key::ApiKey;
use crate::cache::CacheOptions;
#[cfg(feature = "dpop")]
use crate::dpop::DpopOptions;
use crate::issuer::TrustedIssuer;
#[cfg(feature = "remote")]
use crate::jwks::options::RemoteOptions;
use crate::mtls::MtlsMode;
use crate::policy::TypPolicy;
use crate::resource::ResourceSettings;
use crate::rules::{Exemption, Expected};
use crate::state::StoreFailure;
use crate::telemetry::SubjectLogging;
use crate::written::{self as duration, one_or_many};

/// The default clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The default maximum token length in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// How long a revocation is kept by default: the longest an access token is expected to
/// live.
pub(crate) const DEFAULT_REVOCATION_RETENTION: Duration = Duration::from_secs(24 * 3600);

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
#[derive(Default)]
pub struct JwtAuthConfigBuilder {
    /// Every declarative option: what a settings file can also say.
    pub(crate) declared: Declared,
    /// What only code can give: closures, stores, clocks, keys as bytes.
    pub(crate) code: CodeParts,
    /// Finds the line of a field path in the settings file the options came from.
    pub(crate) lines: Option<LineFinder>,
}

/// Finds the line of a field path (`issuers[0].audiences[1]`) in a settings file.
pub(crate) type LineFinder = Arc<dyn Fn(&str) -> Option<usize> + Send + Sync>;

impl fmt::Debug for JwtAuthConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthConfigBuilder")
            .field("declared", &self.declared)
            .field("keys", &self.code.keys)
            .finish_non_exhaustive()
    }
}

/// The setters of the declarative options, one per option (the code-only ones are in
/// `builder.rs`). Each fills a field of `Declared` and checks nothing: `build()` does.
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
    /// not accepted"). One requirement per claim: a later call for the same name
    /// replaces the earlier one, as a settings file's `[claims.require]` table does.
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
    /// A later call for the same name replaces the earlier one.
    pub fn claim_if_present(
        mut self,
        name: impl Into<String>,
        expected: impl Into<Expected>,
    ) -> Self {
        let rules = &mut self.declared.claims.if_present;
        rules.insert(name.into(), expected.into());
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
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
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

    /// Refuses every token that is not sender-constrained: only tokens bound to a DPoP
    /// key (`cnf.jkt`, with its proof) or to the request's client certificate
    /// (`cnf["x5t#S256"]`) pass, whatever [`dpop`](Self::dpop) and [`mtls`](Self::mtls)
    /// accept on their own; an unbound token gets 401 `invalid_token`. Needs DPoP or
    /// mTLS on. Off by default; [`Profile::Fapi2`](crate::Profile::Fapi2) turns it on.
    pub fn sender_constrained(mut self, required: bool) -> Self {
        self.declared.sender_constrained = required;
        self
    }

    /// Reads the client certificate from the RFC 9440 `Client-Cert` header that a
    /// trusted TLS-terminating proxy sets, for certificate-bound tokens behind it; see
    /// [`ClientCertHeader`](crate::mtls::ClientCertHeader). Needs [`mtls`](Self::mtls)
    /// on.
    pub fn client_cert_header(mut self, header: crate::mtls::ClientCertHeader) -> Self {
        self.declared.client_cert = Some(header);
        self
    }

    /// Opaque access tokens through RFC 7662 introspection at the issuer; see
    /// [`Introspection`](crate::introspection::Introspection). With several trusted
    /// issuers `build()` refuses it: an opaque token names no issuer, and it is never
    /// sent to several authorization servers.
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub fn introspection(mut self, introspection: crate::introspection::Introspection) -> Self {
        self.declared.introspection = Some(introspection);
        self
    }

    /// The longest token accepted, in bytes; 8 KiB by default. Longer tokens are refused
    /// before any decoding.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.declared.max_token_len = len;
        self
    }

    /// The `realm` of `WWW-Authenticate` challenges.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.declared.realm = Some(realm.into());
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

    /// How the verified subject (`sub`) appears in the layer's tracing span: not at all
    /// (the default), raw, or hashed. The span (`jwt_auth`, DEBUG level) carries the
    /// configured issuer, the `kid`, the client id and the outcome; never the token.
    pub fn subject_logging(mut self, mode: SubjectLogging) -> Self {
        self.declared.telemetry.subject = mode;
        self
    }

    /// Makes every token single use: a token needs a `jti`, and the second request with
    /// the same issuer and `jti` gets 401 `invalid_token` ("token already used"), on every
    /// replica that shares the [`replay_store`](Self::replay_store). A token without
    /// `jti` gets 401 ("required claim missing"). Layer-wide permissions are checked
    /// first, so a 403 does not use a token up.
    ///
    /// An [API key](crate::api_key) has no `jti`: beside tokens, every key is refused
    /// (401 "required claim missing"); with keys alone (no issuer, no introspection),
    /// `build()` refuses the option, since no request could pass.
    ///
    /// For single use on some routes only, use
    /// [`RequirePermission::single_use`](crate::RequirePermission::single_use) or the
    /// [`SingleUse`](crate::guard::SingleUse) layer instead.
    pub fn single_use_tokens(mut self, on: bool) -> Self {
        self.declared.state.single_use = on;
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

    /// Accepts an API key beside tokens; see [`api_key`](crate::api_key). Call again
    /// for more keys. Keys need a [prefix](Self::api_key_prefix) (here or in the keys
    /// file) that tells them from tokens.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.declared.api_keys.push(key);
        self
    }

    /// The prefix of API keys (`sk_live_`): a credential that starts with it is an API
    /// key and nothing else, never sent to JWT verification or introspection. Required
    /// whenever keys are configured, and checked by
    /// [`check_prefix`](crate::api_key::check_prefix) at `build()`.
    pub fn api_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.declared.api_keys_settings.prefix = Some(prefix.into());
        self
    }

    /// A header API keys may come in (`X-API-Key`), beside `Authorization: Bearer`
    /// (with the prefix): what it holds is an API key, whatever its form. A request with
    /// a credential in both is refused as ambiguous (400). Not `Authorization`, `Cookie`,
    /// `DPoP` or a header the token source reads (refused at `build()`).
    pub fn api_key_header(mut self, header: impl Into<String>) -> Self {
        self.declared.api_keys_settings.header = Some(header.into());
        self
    }

    /// Reads API keys from this file too, at every `build()` and reload: a `prefix` and
    /// `[[api_keys]]` tables, as in a settings file, read by the settings files' readers
    /// (feature `settings`; JSON, TOML or YAML by its extension; without the feature,
    /// `build()` refuses the file).
    pub fn api_keys_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.declared.api_keys_settings.file = Some(path.into());
        self
    }

    /// What happens when the replay store or revocation list does not answer:
    /// [`StoreFailure::Closed`] (503 with `Retry-After`, the default) or
    /// [`StoreFailure::Open`] (pass, logged once per outage at WARN and counted).
    pub fn store_failure(mut self, mode: StoreFailure) -> Self {
        self.declared.state.failure = mode;
        self
    }
}

/// Every declarative option. Field names are the file keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Declared {
    /// The trusted issuers; at least one.
    pub(crate) issuers: Vec<TrustedIssuer>,
    /// Audiences for every issuer that lists none of its own.
    #[serde(alias = "audience", deserialize_with = "one_or_many")]
    pub(crate) audiences: Vec<String>,
    /// Tenants for every template issuer that lists none of its own.
    pub(crate) tenants: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(with = "duration::text")]
    pub(crate) leeway: Duration,
    /// The longest lifetime a token may have; default none, or the revocation retention
    /// with a revocation list.
    #[serde(with = "duration::optional", skip_serializing_if = "Option::is_none")]
    pub(crate) max_lifetime: Option<Duration>,
    /// Algorithms a token may use; default every one the keys can verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    /// A preset of locked rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) profile: Option<crate::profile::Profile>,
    /// Which `typ` header values pass.
    pub(crate) typ: TypPolicy,
    /// Claims every token must carry.
    pub(crate) required_claims: Vec<String>,
    /// The longest token accepted, in bytes.
    pub(crate) max_token_len: usize,
    /// The `realm` of challenges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) realm: Option<String>,
    /// Claims read for permissions beside `permissions`, `scope` and `scp`.
    pub(crate) permission_claims: Vec<PermissionClaim>,
    /// Permissions every request needs.
    pub(crate) required_permissions: Vec<String>,
    /// Where the token is.
    pub(crate) token: TokenDecl,
    /// The verified-token cache; present turns it on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache: Option<CacheOptions>,
    /// RFC 9728 protected-resource metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource: Option<ResourceSettings>,
    /// How remote keys are fetched.
    #[cfg(feature = "remote")]
    pub(crate) remote: RemoteOptions,
    /// Required claim values.
    pub(crate) claims: ClaimsDecl,
    /// Only tokens of these clients (`client_id`, else `azp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allowed_clients: Option<Vec<String>>,
    /// Requests that pass without a token.
    pub(crate) exempt: Vec<Exemption>,
    /// Claims forwarded as request headers.
    pub(crate) forward: ForwardDecl,
    /// What spans are told.
    pub(crate) telemetry: TelemetryDecl,
    /// Single use and revocation.
    pub(crate) state: StateDecl,
    /// DPoP (RFC 9449); absent is off.
    #[cfg(feature = "dpop")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dpop: Option<DpopOptions>,
    /// Certificate-bound tokens (RFC 8705).
    pub(crate) mtls: MtlsMode,
    /// Client certificates forwarded by a trusted proxy (RFC 9440); absent is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_cert: Option<crate::mtls::ClientCertHeader>,
    /// Every token must be sender-constrained (DPoP or a client certificate).
    pub(crate) sender_constrained: bool,
    /// Opaque tokens through introspection (RFC 7662); absent is off.
    #[cfg(feature = "introspection")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) introspection: Option<crate::introspection::Introspection>,
    /// API keys, by digest.
    pub(crate) api_keys: Vec<ApiKey>,
    /// How API keys are told from tokens, and a file of more.
    pub(crate) api_keys_settings: ApiKeysDecl,
}

impl Default for Declared {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            tenants: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: None,
            algorithms: None,
            profile: None,
            typ: TypPolicy::default(),
            required_claims: Vec::new(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            realm: None,
            permission_claims: Vec::new(),
            required_permissions: Vec::new(),
            token: TokenDecl::default(),
            cache: None,
            resource: None,
            #[cfg(feature = "remote")]
            remote: RemoteOptions::default(),
            claims: ClaimsDecl::default(),
            allowed_clients: None,
            exempt: Vec::new(),
            forward: ForwardDecl::default(),
            telemetry: TelemetryDecl::default(),
            state: StateDecl::default(),
            #[cfg(feature = "dpop")]
            dpop: None,
            mtls: MtlsMode::default(),
            client_cert: None,
            sender_constrained: false,
            #[cfg(feature = "introspection")]
            introspection: None,
            api_keys: Vec::new(),
            api_keys_settings: ApiKeysDecl::default(),
        }
    }
}

/// Where the token is read from; the sources combine (a token in two is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TokenDecl {
    /// `Authorization: Bearer`.
    pub(crate) bearer: bool,
    /// A cookie of this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cookie: Option<String>,
    /// A header of this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) header: Option<String>,
    /// The `Sec-WebSocket-Protocol` entry with this prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) websocket_protocol: Option<String>,
    /// The query parameter of this name, on GET requests to `query_paths`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<String>,
    /// The paths (exact, or prefixes ending in `*`) where a query source reads, from the
    /// file's `[token]` table or `query_token_paths` (a file's list replaces the
    /// builder's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) query_paths: Vec<String>,
}

impl Default for TokenDecl {
    fn default() -> Self {
        Self {
            bearer: true,
            cookie: None,
            header: None,
            websocket_protocol: None,
            query: None,
            query_paths: Vec::new(),
        }
    }
}

/// A claim read for permissions: a dotted path (`realm_access.roles`), or its segments
/// when one contains a dot (`["resource_access", "my.api", "roles"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum PermissionClaim {
    /// Segments joined by dots.
    Dotted(String),
    /// Segments as they are.
    Segments(Vec<String>),
}

/// Required claim values: a value, or a list of accepted values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ClaimsDecl {
    /// Claims that must be present with one of these values.
    pub(crate) require: BTreeMap<String, Expected>,
    /// Claims checked only when present.
    pub(crate) if_present: BTreeMap<String, Expected>,
}

/// How API keys are told from tokens, and where more are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ApiKeysDecl {
    /// A credential with this prefix is an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prefix: Option<String>,
    /// A header whose value is an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) header: Option<String>,
    /// A file of a `prefix` and `[[api_keys]]` tables, read at every build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<PathBuf>,
}

impl ApiKeysDecl {
    /// Whether API keys are configured at all.
    pub(crate) fn is_set(&self) -> bool {
        *self != Self::default()
    }
}

/// Claim forwarding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ForwardDecl {
    /// Claim to header, in order (`sub = "x-jwt-sub"`).
    #[serde(serialize_with = "pairs_as_map", deserialize_with = "map_as_pairs")]
    pub(crate) claims: Vec<(String, String)>,
    /// The header carrying the whole payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) payload: Option<String>,
    /// Remove `Authorization` before the inner service.
    pub(crate) remove_authorization: bool,
}

/// What spans are told.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TelemetryDecl {
    /// `sub` in spans.
    pub(crate) subject: SubjectLogging,
}

/// The `[state]` store that keeps everything in this replica's memory: the default.
pub(crate) const MEMORY_STORE: &str = "memory";

/// Single use and revocation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StateDecl {
    /// Every token single use.
    pub(crate) single_use: bool,
    /// Check a revocation list (in the store below unless one is given in code).
    pub(crate) revocation: bool,
    /// `"memory"` or a `redis://` URL.
    pub(crate) store: String,
    /// The store URL read from this file (for a password in the URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) store_file: Option<PathBuf>,
    /// The Redis key prefix.
    pub(crate) redis_prefix: String,
    /// The Redis command timeout.
    #[serde(with = "duration::text")]
    pub(crate) redis_timeout: Duration,
    /// How long a revocation is kept. `max_token_lifetime`, its former name, is read too.
    #[serde(alias = "max_token_lifetime", with = "duration::text")]
    pub(crate) revocation_retention: Duration,
    /// What happens when a store does not answer.
    pub(crate) failure: StoreFailure,
}

impl Default for StateDecl {
    fn default() -> Self {
        Self {
            single_use: false,
            revocation: false,
            store: MEMORY_STORE.to_owned(),
            store_file: None,
            redis_prefix: "tower-jwt-auth:".to_owned(),
            redis_timeout: Duration::from_millis(50),
            revocation_retention: DEFAULT_REVOCATION_RETENTION,
            failure: StoreFailure::default(),
        }
    }
}

impl std::fmt::Debug for StateDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDecl")
            .field("single_use", &self.single_use)
            .field("revocation", &self.revocation)
            .field("store", &without_password(&self.store))
            .field("store_file", &self.store_file)
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_timeout", &self.redis_timeout)
            .field("revocation_retention", &self.revocation_retention)
            .field("failure", &self.failure)
            .finish()
    }
}

/// A URL with any password replaced, for `Debug` and printed configurations.
pub(crate) fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparsed>".to_owned(),
    }
}

fn pairs_as_map<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

fn map_as_pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    Ok(BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .collect())
}
