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
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::algorithm::Algorithm;
use crate::cache::CacheOptions;
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dpop: Option<DpopOptions>,
    /// Certificate-bound tokens (RFC 8705).
    pub(crate) mtls: MtlsMode,
    /// Opaque tokens through introspection (RFC 7662); absent is off.
    #[cfg(feature = "remote")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) introspection: Option<crate::introspection::Introspection>,
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
            dpop: None,
            mtls: MtlsMode::default(),
            #[cfg(feature = "remote")]
            introspection: None,
        }
    }
}

impl Declared {
    /// Takes over what `code` holds beside the model (keys given as bytes, HTTP clients,
    /// secrets given in code) after `self` was rebuilt from `code` and a file: the
    /// sections the file did not replace keep them.
    pub(crate) fn keep_code_parts(&mut self, code: &mut Self) {
        for (merged, old) in self.issuers.iter_mut().zip(code.issuers.iter_mut()) {
            merged.keys = std::mem::take(&mut old.keys);
        }
        if let (Some(merged), Some(old)) = (&mut self.dpop, &mut code.dpop) {
            merged.nonce_secret = old.nonce_secret.take();
        }
        #[cfg(feature = "remote")]
        {
            self.remote.client = code.remote.client.take();
            if let (Some(merged), Some(old)) = (&mut self.introspection, &mut code.introspection) {
                merged.keep_code_parts(old);
            }
        }
    }
}

#[cfg(feature = "settings")]
impl Declared {
    /// Lays `named` (options a file or the environment names, as a tree) over these:
    /// named values replace, lists are appended, tables merge key by key. `Err` has the
    /// path of a value that does not fit.
    pub(crate) fn overlay(&mut self, named: &serde_json::Value) -> Result<(), (String, String)> {
        let mut tree = serde_json::to_value(&*self).map_err(|e| (String::new(), e.to_string()))?;
        let mut named = named.clone();
        canonical(&mut named);
        merge(&mut tree, &named, "");
        let mut merged: Self = serde_path_to_error::deserialize(tree)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        merged.keep_code_parts(self);
        *self = merged;
        Ok(())
    }
}

/// The keys the model also reads under another name (the `alias` attributes above), and
/// the tables they are in.
#[cfg(feature = "settings")]
const ALIASES: [(&str, &str, &str); 3] = [
    ("", "audience", "audiences"),
    ("/issuers/*", "audience", "audiences"),
    ("/state", "max_token_lifetime", "revocation_retention"),
];

/// Renames aliased keys to their names, and one audience to a list of one, so that a
/// named tree merges with a serialized one key for key.
#[cfg(feature = "settings")]
fn canonical(named: &mut serde_json::Value) {
    use serde_json::Value;
    let rename = |table: &mut Value, alias: &str, name: &str| {
        if let Some(map) = table.as_object_mut()
            && let Some(value) = map.remove(alias)
        {
            let value = match value {
                Value::String(one) if name == "audiences" => Value::Array(vec![one.into()]),
                other => other,
            };
            map.insert(name.to_owned(), value);
        }
    };
    for (table, alias, name) in ALIASES {
        match table.strip_suffix("/*") {
            Some(list) => {
                if let Some(Value::Array(items)) = named.pointer_mut(list) {
                    for item in items {
                        rename(item, alias, name);
                    }
                }
            }
            None => {
                if let Some(found) = named.pointer_mut(table) {
                    rename(found, alias, name);
                }
            }
        }
    }
}

/// The lists a file adds to (more issuers, audiences, exemptions, requirements); every
/// other list, such as `algorithms` or `allowed_clients`, is replaced, so that a file
/// can never widen what code restricted by adding to it.
#[cfg(feature = "settings")]
const APPENDED: [&str; 8] = [
    "/issuers",
    "/audiences",
    "/tenants",
    "/required_claims",
    "/required_permissions",
    "/permission_claims",
    "/exempt",
    "/resource/scopes",
];

#[cfg(feature = "settings")]
fn merge(base: &mut serde_json::Value, named: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (base, named) {
        // A null names nothing: it never removes what code set.
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(named)) => {
            for (key, value) in named {
                match base.get_mut(key) {
                    Some(slot) => merge(slot, value, &format!("{at}/{key}")),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(named)) if APPENDED.contains(&at) => {
            base.extend(named.iter().cloned());
        }
        (slot, value) => *slot = value.clone(),
    }
}

#[cfg(feature = "settings")]
/// Replaces the secrets of a configuration tree: the introspection client secret and
/// any password in the state store URL.
pub(crate) fn redact(tree: &mut serde_json::Value) {
    use serde_json::Value;
    if let Some(secret) = tree.pointer_mut("/introspection/client_secret")
        && secret.is_string()
    {
        *secret = Value::from("<redacted>");
    }
    // An inline JWKS may hold symmetric keys.
    if let Some(Value::Array(issuers)) = tree.pointer_mut("/issuers") {
        for issuer in issuers {
            if let Some(jwks) = issuer.get_mut("jwks")
                && jwks.is_string()
            {
                *jwks = Value::from("<redacted>");
            }
        }
    }
    if let Some(store) = tree.pointer_mut("/state/store")
        && let Some(url) = store.as_str()
    {
        *store = Value::from(without_password(url));
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
}

impl Default for TokenDecl {
    fn default() -> Self {
        Self {
            bearer: true,
            cookie: None,
            header: None,
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
