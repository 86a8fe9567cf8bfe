//! The serde model of every declarative option. Each field is optional and documented
//! with its default; unknown fields are refused, so a typo is an error, not a silently
//! ignored setting.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration::optional_duration;

/// A whole configuration, as read from a file or the environment.
///
/// ```toml
/// [[issuers]]
/// issuer = "https://idp.example.com/"
/// audiences = ["https://api.example.com"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Settings {
    /// The trusted issuers; at least one.
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
    /// Audiences for every issuer that lists none of its own (`audience = "..."` for
    /// one is read too).
    #[serde(default, alias = "audience", deserialize_with = "one_or_many")]
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`. Default `"60s"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub leeway: Option<Duration>,
    /// The longest lifetime (`exp - iat`) a token may have. Default: none, or the
    /// revocation retention when a revocation list is checked.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_lifetime: Option<Duration>,
    /// Algorithms a token may use (`["RS256", "ES256"]`). Default: every one the keys
    /// can verify.
    pub algorithms: Option<Vec<String>>,
    /// `typ` policy: `"lenient"` (default: absent, `JWT` or `at+jwt`) or
    /// `"access_token"` (`at+jwt` only).
    pub typ: Option<TypSetting>,
    /// Claims every token must have. Default none.
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// The longest token accepted, in bytes. Default 8192.
    pub max_token_len: Option<usize>,
    /// The `realm` of challenges. Default none.
    pub realm: Option<String>,
    /// Extra permission claim paths, dotted (`"realm_access.roles"`). `permissions` and
    /// `scope` are always read.
    #[serde(default)]
    pub permission_claims: Vec<String>,
    /// Permissions every request needs. Default none.
    #[serde(default)]
    pub required_permissions: Vec<String>,
    /// Where the token is. Default: the `Authorization: Bearer` header.
    pub token: Option<TokenSettings>,
    /// The verified-token cache; present turns it on. Default off.
    pub cache: Option<CacheSettings>,
    /// RFC 9728 protected-resource metadata. Default none.
    pub resource: Option<ResourceFileSettings>,
    /// How remote keys are fetched.
    pub remote: Option<RemoteSettings>,
    /// Required claim values.
    pub claims: Option<ClaimSettings>,
    /// Only these clients (`client_id`, else `azp`). Default: any.
    pub allowed_clients: Option<Vec<String>>,
    /// Requests that pass without a token. Default none.
    #[serde(default)]
    pub exempt: Vec<ExemptSettings>,
    /// Claims forwarded as request headers. Default none.
    pub forward: Option<ForwardSettings>,
    /// What spans are told.
    pub telemetry: Option<TelemetrySettings>,
    /// Single use and revocation.
    pub state: Option<StateSettings>,
    /// DPoP (RFC 9449). Default off.
    pub dpop: Option<DpopSettings>,
    /// Certificate-bound tokens (RFC 8705): `"off"` (default), `"allowed"`, `"required"`.
    pub mtls: Option<ModeSetting>,
    /// Opaque tokens through introspection (RFC 7662). Default off.
    pub introspection: Option<IntrospectionSettings>,
}

/// A list of strings, or one string for a list of one.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// One trusted issuer and its key source (OIDC discovery when none is given).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IssuerSettings {
    /// The exact `iss`, or a template with `{tenant}` / `{tenantid}`.
    pub issuer: String,
    /// Accepted audiences; default: the top-level `audiences`. `audience = "..."`, one
    /// audience as the builder's method and `JWT_AUDIENCE` name it, is read too.
    #[serde(default, alias = "audience", deserialize_with = "one_or_many")]
    pub audiences: Vec<String>,
    /// Keys from this JWKS URL instead of discovery.
    pub jwks_url: Option<String>,
    /// Keys from this inline JWKS document (JSON text).
    pub jwks: Option<String>,
    /// Keys from this PEM file.
    pub pem_file: Option<PathBuf>,
    /// An HMAC secret read from this file (trailing line breaks ignored).
    pub hmac_secret_file: Option<PathBuf>,
    /// The tenants a template issuer accepts.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// The `typ` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TypSetting {
    /// Absent, `JWT` or `at+jwt`.
    Lenient,
    /// `at+jwt` only.
    AccessToken,
}

/// A mode of DPoP or mTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModeSetting {
    /// Refused.
    Off,
    /// Accepted.
    Allowed,
    /// Required.
    Required,
}

/// Where the token is; sources combine (a token in two is refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TokenSettings {
    /// `Authorization: Bearer`. Default true.
    #[serde(default = "yes")]
    pub bearer: bool,
    /// A cookie of this name.
    pub cookie: Option<String>,
    /// A header of this name.
    pub header: Option<String>,
}

fn yes() -> bool {
    true
}

/// The verified-token cache.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheSettings {
    /// Default 10000.
    pub max_entries: Option<usize>,
    /// Default 16 MiB.
    pub max_bytes: Option<usize>,
    /// Default `"10m"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub ttl: Option<Duration>,
}

/// RFC 9728 metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ResourceFileSettings {
    /// The resource identifier (an https URL).
    pub resource: String,
    /// `resource_name`.
    pub name: Option<String>,
    /// `resource_documentation`.
    pub documentation: Option<String>,
    /// `scopes_supported`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Remote key fetching.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RemoteSettings {
    /// Default `"5m"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub refresh_interval: Option<Duration>,
    /// Default `"5s"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub fetch_timeout: Option<Duration>,
    /// Default `"10s"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub unknown_kid_cooldown: Option<Duration>,
    /// Default: keys are used however old.
    #[serde(default, deserialize_with = "optional_duration")]
    pub max_staleness: Option<Duration>,
    /// Plain http beyond loopback (never in production). Default false.
    #[serde(default)]
    pub dangerous_allow_http: bool,
}

/// Required claim values: a value, or a list of accepted values.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClaimSettings {
    /// Claims that must be present with one of these values.
    #[serde(default)]
    pub require: BTreeMap<String, serde_json::Value>,
    /// Claims checked only when present.
    #[serde(default)]
    pub if_present: BTreeMap<String, serde_json::Value>,
}

/// One exemption: exactly one of `path`, `prefix`, `glob`, and optionally a method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExemptSettings {
    /// Exactly this path.
    pub path: Option<String>,
    /// Paths with this prefix.
    pub prefix: Option<String>,
    /// Paths matching this glob.
    pub glob: Option<String>,
    /// Only this method.
    pub method: Option<String>,
}

/// Claim forwarding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ForwardSettings {
    /// Claim name to header name (`sub = "x-jwt-sub"`).
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// The header carrying the whole payload.
    pub payload: Option<String>,
    /// Remove `Authorization` before the inner service. Default: as the builder has it
    /// (false).
    pub remove_authorization: Option<bool>,
}

/// Telemetry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TelemetrySettings {
    /// `sub` in spans: `"off"` (default), `"raw"` or `"hashed"`.
    pub subject: Option<SubjectSetting>,
}

/// `sub` in spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SubjectSetting {
    /// Not logged.
    Off,
    /// As sent.
    Raw,
    /// Hashed.
    Hashed,
}

/// Single use and revocation. `Debug` hides a password in the store URL.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StateSettings {
    /// Every token single use. Default: as the builder has it (false).
    pub single_use: Option<bool>,
    /// Check a revocation list. Default false.
    #[serde(default)]
    pub revocation: bool,
    /// `"memory"` (default) or a `redis://` URL.
    pub store: Option<String>,
    /// The store URL read from this file (for a password in the URL).
    pub store_file: Option<PathBuf>,
    /// The Redis key prefix. Default `"tower-jwt-auth:"`.
    pub redis_prefix: Option<String>,
    /// The Redis command timeout. Default `"50ms"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub redis_timeout: Option<Duration>,
    /// How long a revocation is kept. Default `"24h"`. `max_token_lifetime`, its former
    /// name, is read too.
    #[serde(
        default,
        alias = "max_token_lifetime",
        deserialize_with = "optional_duration"
    )]
    pub revocation_retention: Option<Duration>,
    /// `"closed"` (default: 503) or `"open"` when a store does not answer.
    pub failure: Option<FailureSetting>,
}

/// What happens when a store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureSetting {
    /// 503.
    Closed,
    /// Pass.
    Open,
}

/// DPoP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DpopSettings {
    /// `"off"`, `"allowed"` or `"required"`.
    pub mode: ModeSetting,
    /// Proof algorithms. Default ES256, ES384, EdDSA, RS256, PS256.
    pub algorithms: Option<Vec<String>>,
    /// Default `"60s"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub iat_window: Option<Duration>,
    /// The public base URL proofs name.
    pub public_base_url: Option<String>,
    /// Read the public URL from the `PublicUrl` extension instead. Default false.
    #[serde(default)]
    pub trusted_url_extension: bool,
    /// Server nonces: the secret read from this file (at least 32 bytes).
    pub nonce_secret_file: Option<PathBuf>,
    /// Nonce lifetime. Default `"5m"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub nonce_lifetime: Option<Duration>,
    /// The most live proofs one client key may have in the proof store. Default 2000.
    pub max_live_proofs_per_key: Option<usize>,
}

/// Introspection. `Debug` hides the client secret.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct IntrospectionSettings {
    /// Our client id at the authorization server.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Option<String>,
    /// The client secret read from this file.
    pub client_secret_file: Option<PathBuf>,
    /// `"client_secret_basic"` (default) or `"client_secret_post"`.
    pub auth: Option<String>,
    /// The endpoint; default: from discovery.
    pub endpoint: Option<String>,
    /// Default `"60s"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub cache_ttl: Option<Duration>,
    /// Default `"5s"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub negative_ttl: Option<Duration>,
    /// Default 10000.
    pub max_entries: Option<usize>,
    /// Calls per second. Default unlimited.
    pub rate_limit: Option<u32>,
    /// Default `"2s"`.
    #[serde(default, deserialize_with = "optional_duration")]
    pub timeout: Option<Duration>,
    /// Introspect JWTs too. Default false.
    #[serde(default)]
    pub always: bool,
    /// Accept answers without `aud`. Default false.
    #[serde(default)]
    pub audience_optional: bool,
    /// Ask for RFC 9701 signed answers. Default false.
    #[serde(default)]
    pub signed_answers: bool,
    /// Opaque tokens must start with one of these (such as `["ory_at_"]`), or are
    /// refused before any call. Default: any start.
    #[serde(default)]
    pub opaque_token_prefixes: Vec<String>,
    /// Shorter opaque tokens are refused before any call. Default: no bound.
    pub opaque_token_min_length: Option<usize>,
    /// Longer opaque tokens are refused before any call. Default: no bound.
    pub opaque_token_max_length: Option<usize>,
}

/// A URL with any password replaced, for `Debug`.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparsed>".to_owned(),
    }
}

impl std::fmt::Debug for StateSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSettings")
            .field("single_use", &self.single_use)
            .field("revocation", &self.revocation)
            .field("store", &self.store.as_deref().map(without_password))
            .field("store_file", &self.store_file)
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_timeout", &self.redis_timeout)
            .field("revocation_retention", &self.revocation_retention)
            .field("failure", &self.failure)
            .finish()
    }
}

impl std::fmt::Debug for IntrospectionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionSettings")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("auth", &self.auth)
            .field("endpoint", &self.endpoint)
            .field("cache_ttl", &self.cache_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("max_entries", &self.max_entries)
            .field("rate_limit", &self.rate_limit)
            .field("timeout", &self.timeout)
            .field("always", &self.always)
            .field("audience_optional", &self.audience_optional)
            .field("signed_answers", &self.signed_answers)
            .field("opaque_token_prefixes", &self.opaque_token_prefixes)
            .field("opaque_token_min_length", &self.opaque_token_min_length)
            .field("opaque_token_max_length", &self.opaque_token_max_length)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let state = StateSettings {
            store: Some("redis://:hunter2@127.0.0.1:6379".into()),
            ..StateSettings::default()
        };
        assert!(!format!("{state:?}").contains("hunter2"));
        let introspection = IntrospectionSettings {
            client_secret: Some("hunter2".into()),
            ..IntrospectionSettings::default()
        };
        assert!(!format!("{introspection:?}").contains("hunter2"));
    }
}
