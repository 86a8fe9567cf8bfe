//! Settings applied to a builder. Every check that can name a field does so here, with
//! its path; the builder's own validation (`build()`) covers the rest.

use std::fmt;

use super::invalid;
use super::model::{
    FailureSetting, IssuerSettings, ModeSetting, Settings, SubjectSetting, TypSetting,
};
use crate::algorithm::Algorithm;
use crate::cache::CacheOptions;
use crate::config::JwtAuthConfigBuilder;
use crate::dpop::{DpopMode, DpopOptions};
use crate::error::ConfigError;
use crate::issuer::TrustedIssuer;
use crate::mtls::MtlsMode;
use crate::policy::TypPolicy;
use crate::rules::{Exemption, Expected};
use crate::state::StoreFailure;
use crate::telemetry::SubjectLogging;
use crate::token::TokenSource;

fn read_secret(path: &str, file: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    let mut bytes =
        std::fs::read(file).map_err(|e| invalid(path, None, format!("{}: {e}", file.display())))?;
    while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        bytes.pop();
    }
    Ok(bytes)
}

fn algorithms(path: &str, names: &[String]) -> Result<Vec<Algorithm>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            name.parse::<Algorithm>().map_err(|_| {
                invalid(
                    format!("{path}[{i}]"),
                    None,
                    format!("unknown algorithm {name:?}"),
                )
            })
        })
        .collect()
}

fn non_empty(path: impl fmt::Display, values: &[String]) -> Result<(), ConfigError> {
    match values.iter().position(String::is_empty) {
        Some(i) => Err(invalid(format!("{path}[{i}]"), None, "empty value")),
        None => Ok(()),
    }
}

fn expected(path: &str, value: &serde_json::Value) -> Result<Expected, ConfigError> {
    match value {
        serde_json::Value::Array(values) if values.is_empty() => {
            Err(invalid(path, None, "an empty list accepts no value"))
        }
        serde_json::Value::Array(values) => Ok(Expected::any_of(values.iter().cloned())),
        other => Ok(Expected::from(other.clone())),
    }
}

fn mode(setting: ModeSetting) -> (DpopMode, MtlsMode) {
    match setting {
        ModeSetting::Off => (DpopMode::Off, MtlsMode::Off),
        ModeSetting::Allowed => (DpopMode::Allowed, MtlsMode::Allowed),
        ModeSetting::Required => (DpopMode::Required, MtlsMode::Required),
    }
}

/// One issuer, its URL checked (https, or http on loopback) and its key source read.
fn issuer(
    index: usize,
    settings: &IssuerSettings,
    allow_http: bool,
) -> Result<TrustedIssuer, ConfigError> {
    let at = |field: &str| format!("issuers[{index}].{field}");
    if settings.issuer.is_empty() {
        return Err(invalid(at("issuer"), None, "empty issuer"));
    }
    // The issuer is fetched from only with discovery (no other key source).
    let discovery = settings.jwks_url.is_none()
        && settings.jwks.is_none()
        && settings.pem_file.is_none()
        && settings.hmac_secret_file.is_none();
    #[cfg(feature = "remote")]
    if discovery {
        let url = url::Url::parse(&settings.issuer).map_err(|e| {
            invalid(
                at("issuer"),
                None,
                format!("{:?} is not a URL: {e}", settings.issuer),
            )
        })?;
        crate::https::check_fetchable(&url, allow_http)
            .map_err(|why| invalid(at("issuer"), None, why))?;
    }
    #[cfg(not(feature = "remote"))]
    let _ = (allow_http, discovery);
    non_empty(at("audiences"), &settings.audiences)?;
    let mut trusted = TrustedIssuer::new(settings.issuer.clone());
    for audience in &settings.audiences {
        trusted = trusted.audience(audience.clone());
    }
    if !settings.tenants.is_empty() {
        trusted = trusted.tenants(settings.tenants.iter().cloned());
    }
    let sources = [
        settings.jwks_url.is_some(),
        settings.jwks.is_some(),
        settings.pem_file.is_some(),
        settings.hmac_secret_file.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() > 1 {
        return Err(invalid(
            at("jwks_url"),
            None,
            "give one key source: jwks_url, jwks, pem_file or hmac_secret_file (none: discovery)",
        ));
    }
    if let Some(url) = &settings.jwks_url {
        #[cfg(feature = "remote")]
        {
            trusted = trusted.jwks_url(url.clone());
        }
        #[cfg(not(feature = "remote"))]
        return Err(invalid(
            at("jwks_url"),
            None,
            format!("{url}: a JWKS URL needs the feature `remote`"),
        ));
    }
    if let Some(jwks) = &settings.jwks {
        trusted = trusted.jwks(jwks.clone());
    }
    if let Some(file) = &settings.pem_file {
        let pem = std::fs::read_to_string(file)
            .map_err(|e| invalid(at("pem_file"), None, format!("{}: {e}", file.display())))?;
        trusted = trusted.pem(pem);
    }
    if let Some(file) = &settings.hmac_secret_file {
        trusted = trusted.hmac_secret(read_secret(&at("hmac_secret_file"), file)?);
    }
    Ok(trusted)
}

impl Settings {
    /// A builder with these settings.
    ///
    /// # Errors
    ///
    /// A setting that cannot work, named by its path.
    pub fn builder(self) -> Result<JwtAuthConfigBuilder, ConfigError> {
        self.apply(JwtAuthConfigBuilder::default())
    }

    /// Applies these settings to `builder`, which may already hold code-only options
    /// (closures, key stores, a clock, a responder).
    ///
    /// # Errors
    ///
    /// A setting that cannot work, named by its path.
    pub fn apply(self, mut b: JwtAuthConfigBuilder) -> Result<JwtAuthConfigBuilder, ConfigError> {
        #[cfg(feature = "remote")]
        let code_allows_http = b.current_remote_options().allow_http;
        #[cfg(not(feature = "remote"))]
        let code_allows_http = false;
        let allow_http =
            code_allows_http || self.remote.as_ref().is_some_and(|r| r.dangerous_allow_http);
        if self.issuers.is_empty() {
            return Err(invalid("issuers", None, "at least one issuer is needed"));
        }
        for (i, settings) in self.issuers.iter().enumerate() {
            b = b.issuer(issuer(i, settings, allow_http)?);
        }
        non_empty("audiences", &self.audiences)?;
        for audience in self.audiences {
            b = b.audience(audience);
        }
        if let Some(max) = self.max_lifetime {
            b = b.max_lifetime(max);
        }
        if let Some(leeway) = self.leeway {
            b = b.leeway(leeway);
        }
        if let Some(names) = &self.algorithms {
            b = b.algorithms(algorithms("algorithms", names)?);
        }
        if let Some(typ) = self.typ {
            b = b.typ_policy(match typ {
                TypSetting::Lenient => TypPolicy::Lenient,
                TypSetting::AccessToken => TypPolicy::AccessToken,
            });
        }
        non_empty("required_claims", &self.required_claims)?;
        if !self.required_claims.is_empty() {
            b = b.require_claims_present(self.required_claims);
        }
        if let Some(len) = self.max_token_len {
            b = b.max_token_len(len);
        }
        if let Some(realm) = self.realm {
            b = b.realm(realm);
        }
        for path in &self.permission_claims {
            b = b.permission_claim(path);
        }
        non_empty("required_permissions", &self.required_permissions)?;
        if !self.required_permissions.is_empty() {
            b = b.require_permissions(self.required_permissions);
        }
        if let Some(token) = self.token {
            let mut sources: Vec<TokenSource> = Vec::new();
            if token.bearer {
                sources.push(TokenSource::bearer());
            }
            if let Some(cookie) = &token.cookie {
                sources.push(TokenSource::cookie(cookie));
            }
            if let Some(header) = &token.header {
                sources.push(TokenSource::header(header));
            }
            let mut sources = sources.into_iter();
            let first = sources.next().ok_or_else(|| {
                invalid(
                    "token",
                    None,
                    "no token source: bearer is false and no cookie or header is named",
                )
            })?;
            b = b.token_source(sources.fold(first, TokenSource::or));
        }
        if let Some(cache) = self.cache {
            let mut options = CacheOptions::new();
            if let Some(entries) = cache.max_entries {
                options = options.max_entries(entries);
            }
            if let Some(bytes) = cache.max_bytes {
                options = options.max_bytes(bytes);
            }
            if let Some(ttl) = cache.ttl {
                options = options.ttl(ttl);
            }
            b = b.cache(options);
        }
        if let Some(resource) = self.resource {
            b = b.resource(resource.resource);
            if let Some(name) = resource.name {
                b = b.resource_name(name);
            }
            if let Some(documentation) = resource.documentation {
                b = b.resource_documentation(documentation);
            }
            if !resource.scopes.is_empty() {
                b = b.scopes_supported(resource.scopes);
            }
        }
        #[cfg(feature = "remote")]
        if let Some(remote) = self.remote {
            // On top of what code set (a custom HTTP client, backoff, limits).
            let mut options = b.current_remote_options();
            if let Some(interval) = remote.refresh_interval {
                options = options.refresh_interval(interval);
            }
            if let Some(timeout) = remote.fetch_timeout {
                options = options.fetch_timeout(timeout);
            }
            if let Some(cooldown) = remote.unknown_kid_cooldown {
                options = options.unknown_kid_cooldown(cooldown);
            }
            if let Some(staleness) = remote.max_staleness {
                options = options.max_staleness(staleness);
            }
            // The file's `dangerous_allow_http`: the builder's dangerous switch.
            options.allow_http |= remote.dangerous_allow_http;
            b = b.remote_options(options);
        }
        if let Some(claims) = self.claims {
            for (name, value) in &claims.require {
                b = b.require_claim(
                    name.clone(),
                    expected(&format!("claims.require.{name}"), value)?,
                );
            }
            for (name, value) in &claims.if_present {
                b = b.claim_if_present(
                    name.clone(),
                    expected(&format!("claims.if_present.{name}"), value)?,
                );
            }
        }
        if let Some(clients) = self.allowed_clients {
            b = b.allowed_clients(clients);
        }
        for (i, rule) in self.exempt.iter().enumerate() {
            let at = format!("exempt[{i}]");
            let mut exemption = match (&rule.path, &rule.prefix, &rule.glob) {
                (Some(path), None, None) => Exemption::path(path.as_str()),
                (None, Some(prefix), None) => Exemption::prefix(prefix.as_str()),
                (None, None, Some(glob)) => Exemption::glob(glob.as_str()),
                _ => {
                    return Err(invalid(
                        at,
                        None,
                        "give exactly one of path, prefix and glob",
                    ));
                }
            };
            if let Some(method) = &rule.method {
                let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                    .map_err(|_| {
                        invalid(
                            format!("{at}.method"),
                            None,
                            format!("{method:?} is not a method"),
                        )
                    })?;
                exemption = exemption.method(method);
            }
            b = b.exempt(exemption);
        }
        if let Some(forward) = self.forward {
            for (claim, header) in forward.claims {
                b = b.forward_claim(claim, header);
            }
            if let Some(header) = forward.payload {
                b = b.forward_payload(header);
            }
            if let Some(remove) = forward.remove_authorization {
                b = b.remove_authorization(remove);
            }
        }
        if let Some(subject) = self.telemetry.and_then(|t| t.subject) {
            b = b.subject_logging(match subject {
                SubjectSetting::Off => SubjectLogging::Off,
                SubjectSetting::Raw => SubjectLogging::Raw,
                SubjectSetting::Hashed => SubjectLogging::Hashed,
            });
        }
        if let Some(state) = self.state {
            b = apply_state(b, state)?;
        }
        if let Some(dpop) = self.dpop {
            let (mode, _) = mode(dpop.mode);
            let mut options = DpopOptions::new(mode);
            if let Some(names) = &dpop.algorithms {
                options = options.algorithms(algorithms("dpop.algorithms", names)?);
            }
            if let Some(limit) = dpop.max_live_proofs_per_key {
                options = options.max_live_proofs_per_key(limit);
            }
            if let Some(window) = dpop.iat_window {
                options = options.iat_window(window);
            }
            match (&dpop.public_base_url, dpop.trusted_url_extension) {
                (Some(base), false) => options = options.public_base_url(base.clone()),
                (None, true) => options = options.trusted_url_extension(),
                (Some(_), true) => {
                    return Err(invalid(
                        "dpop",
                        None,
                        "give public_base_url or trusted_url_extension, not both",
                    ));
                }
                (None, false) => {}
            }
            if let Some(file) = &dpop.nonce_secret_file {
                let secret = read_secret("dpop.nonce_secret_file", file)?;
                let lifetime = dpop
                    .nonce_lifetime
                    .unwrap_or(std::time::Duration::from_secs(300));
                options = options.nonces(secret, lifetime);
            }
            b = b.dpop(options);
        }
        if let Some(setting) = self.mtls {
            b = b.mtls(mode(setting).1);
        }
        #[cfg(feature = "remote")]
        if let Some(settings) = self.introspection {
            b = b.introspection(introspection(settings)?);
        }
        #[cfg(not(feature = "remote"))]
        if self.introspection.is_some() {
            return Err(invalid(
                "introspection",
                None,
                "introspection needs the feature `remote`",
            ));
        }
        Ok(b)
    }
}

fn apply_state(
    mut b: JwtAuthConfigBuilder,
    state: super::model::StateSettings,
) -> Result<JwtAuthConfigBuilder, ConfigError> {
    if let Some(single_use) = state.single_use {
        b = b.single_use_tokens(single_use);
    }
    if let Some(retention) = state.revocation_retention {
        b = b.revocation_retention(retention);
    }
    if let Some(failure) = state.failure {
        b = b.store_failure(match failure {
            FailureSetting::Closed => StoreFailure::Closed,
            FailureSetting::Open => StoreFailure::Open,
        });
    }
    let store = match (&state.store, &state.store_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "state.store",
                None,
                "give store or store_file, not both",
            ));
        }
        (Some(store), None) => Some(store.clone()),
        (None, Some(file)) => {
            let bytes = read_secret("state.store_file", file)?;
            Some(
                String::from_utf8(bytes)
                    .map_err(|_| invalid("state.store_file", None, "not UTF-8"))?,
            )
        }
        (None, None) => None,
    };
    match store.as_deref() {
        None | Some("memory") => {
            if state.revocation {
                b = b.memory_revocation_list();
            }
        }
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            #[cfg(feature = "redis")]
            {
                use crate::state::{RedisConnection, RedisReplayStore, RedisRevocationList};
                // The URL may hold a password: errors never repeat it.
                let mut redis = RedisConnection::open(url)
                    .map_err(|e| invalid("state.store", None, format!("{e}")))?;
                if let Some(prefix) = &state.redis_prefix {
                    redis = redis.prefix(prefix);
                }
                if let Some(timeout) = state.redis_timeout {
                    redis = redis.timeout(timeout);
                }
                b = b.replay_store(RedisReplayStore::new(redis.clone()));
                if state.revocation {
                    b = b.revocation_list(RedisRevocationList::new(redis));
                }
            }
            #[cfg(not(feature = "redis"))]
            return Err(invalid(
                "state.store",
                None,
                "a redis:// store needs the feature `redis`",
            ));
        }
        Some(_) => {
            return Err(invalid(
                "state.store",
                None,
                "must be \"memory\" or a redis:// URL",
            ));
        }
    }
    Ok(b)
}

#[cfg(feature = "remote")]
fn introspection(
    settings: super::model::IntrospectionSettings,
) -> Result<crate::introspection::Introspection, ConfigError> {
    use crate::introspection::{ClientAuth, Introspection};
    let secret = match (&settings.client_secret, &settings.client_secret_file) {
        (Some(secret), None) => secret.clone(),
        (None, Some(file)) => {
            String::from_utf8(read_secret("introspection.client_secret_file", file)?)
                .map_err(|_| invalid("introspection.client_secret_file", None, "not UTF-8"))?
        }
        _ => {
            return Err(invalid(
                "introspection.client_secret",
                None,
                "give client_secret or client_secret_file",
            ));
        }
    };
    let auth = match settings.auth.as_deref() {
        None | Some("client_secret_basic") => ClientAuth::client_secret_basic(secret),
        Some("client_secret_post") => ClientAuth::client_secret_post(secret),
        Some(other) => {
            return Err(invalid(
                "introspection.auth",
                None,
                format!(
                    "{other:?} is not client_secret_basic or client_secret_post (private_key_jwt is set in code)"
                ),
            ));
        }
    };
    let mut introspection = Introspection::new(settings.client_id, auth)
        .always_introspect(settings.always)
        .signed_answers(settings.signed_answers);
    // The file's `audience_optional`: the builder's dangerous switch.
    introspection.audience_optional = settings.audience_optional;
    if let Some(endpoint) = settings.endpoint {
        introspection = introspection.endpoint(endpoint);
    }
    if let Some(ttl) = settings.cache_ttl {
        introspection = introspection.cache_ttl(ttl);
    }
    if let Some(ttl) = settings.negative_ttl {
        introspection = introspection.negative_ttl(ttl);
    }
    if let Some(entries) = settings.max_entries {
        introspection = introspection.max_entries(entries);
    }
    if let Some(rate) = settings.rate_limit {
        introspection = introspection.rate_limit(rate);
    }
    if let Some(timeout) = settings.timeout {
        introspection = introspection.timeout(timeout);
    }
    for prefix in settings.opaque_token_prefixes {
        if prefix.is_empty() {
            return Err(invalid(
                "introspection.opaque_token_prefixes",
                None,
                "a prefix is empty",
            ));
        }
        introspection = introspection.opaque_token_prefix(prefix);
    }
    let (min, max) = (
        settings.opaque_token_min_length,
        settings.opaque_token_max_length,
    );
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(invalid(
            "introspection.opaque_token_min_length",
            None,
            "is greater than opaque_token_max_length",
        ));
    }
    if min.is_some() || max.is_some() {
        use std::ops::Bound;
        introspection = introspection.opaque_token_length((
            min.map_or(Bound::Unbounded, Bound::Included),
            max.map_or(Bound::Unbounded, Bound::Included),
        ));
    }
    Ok(introspection)
}
