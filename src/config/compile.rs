//! Validation and compilation: a [`JwtAuthConfigBuilder`] checked once and turned into
//! the [`Policy`] requests read. Nothing is fetched here; remote key stores start their
//! own first fetch.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::model::JwtAuthConfigBuilder;
use super::model::{MEMORY_STORE, PermissionClaim, StateDecl, TokenDecl};
use crate::algorithm::Algorithm;
use crate::api_key::keys::ApiKeys;
use crate::binding::BindingRules;
use crate::cache::TokenCache;
use crate::context::AuthContext;
#[cfg(feature = "dpop")]
use crate::dpop::nonce::NonceKey;
#[cfg(feature = "dpop")]
use crate::dpop::proof::{KeyCache, ProofRules};
#[cfg(feature = "dpop")]
use crate::dpop::{self, DpopMode, UrlSource};
use crate::error::{ConfigError, ConfigErrorKind};
#[cfg(feature = "introspection")]
use crate::introspection::introspector::Introspector;
use crate::issuer::{Issuer, IssuerMatch, KeyInput, KeySpec, TrustedIssuer};
use crate::jwks::KeySet;
use crate::permission::{ClaimPath, Requirement};
use crate::policy::{ClaimRules, PermissionRules, Policy, TelemetryRules, TokenRules};
use crate::resource::ProtectedResourceMetadata;
use crate::response::ChallengeParams;
use crate::rules::PathPattern;
use crate::rules::{Check, ClaimChecks, ClaimRule, Exemptions, Forwarding};
#[cfg(feature = "dpop")]
use crate::state::{MemoryProofStore, ProofStore};
use crate::state::{
    MemoryReplayStore, MemoryRevocationList, ReplayStore, RevocationList, Revocations,
};
use crate::token::TokenSource;
use crate::tracking::StateRules;

/// Checks every setting and compiles the policy requests read. With `previous` (a
/// reload), remote key stores whose source did not change are carried over. An error
/// names the path of the option (`issuers[1].audiences[0]`), and its line when the
/// options came from a settings file.
pub(super) fn compile(
    b: JwtAuthConfigBuilder,
    previous: Option<&Policy>,
) -> Result<Policy, ConfigError> {
    let lines = b.lines.clone();
    compile_checked(b, previous).map_err(|error| match (&lines, error.path()) {
        (Some(find), Some(path)) => {
            let line = find(path);
            error.with_line(line)
        }
        _ => error,
    })
}

/// An error about the option at `path`.
fn at(
    kind: ConfigErrorKind,
    path: impl Into<String>,
    message: impl std::fmt::Display,
) -> ConfigError {
    ConfigError::at(kind, path, None, message)
}

/// The index of the first empty string, for the path of an empty value.
fn first_empty(values: &[String]) -> Option<usize> {
    values.iter().position(String::is_empty)
}

fn compile_checked(
    b: JwtAuthConfigBuilder,
    previous: Option<&Policy>,
) -> Result<Policy, ConfigError> {
    use ConfigErrorKind as K;
    let d = &b.declared;
    super::lock::check(d, &b.code)?;
    super::lock::check_reload(d, previous.and_then(|p| p.profile))?;
    if d.issuers.is_empty() && d.api_keys.is_empty() && !d.api_keys_settings.is_set() {
        return Err(at(
            K::NoIssuer,
            "issuers",
            "no issuer configured: at least one is needed (or API keys alone)",
        ));
    }
    for (i, issuer) in d.issuers.iter().enumerate() {
        if issuer.issuer.is_empty() {
            return Err(at(
                K::EmptyValue,
                format!("issuers[{i}].issuer"),
                "empty issuer",
            ));
        }
        if let Some(j) = first_empty(&issuer.audiences) {
            return Err(at(
                K::EmptyValue,
                format!("issuers[{i}].audiences[{j}]"),
                "empty audience",
            ));
        }
    }
    if let Some(j) = first_empty(&d.audiences) {
        return Err(at(
            K::EmptyValue,
            format!("audiences[{j}]"),
            "empty audience",
        ));
    }
    if let Some(j) = first_empty(&d.required_claims) {
        return Err(at(
            K::EmptyValue,
            format!("required_claims[{j}]"),
            "empty claim name",
        ));
    }
    if d.max_token_len == 0 {
        return Err(at(
            K::InvalidValue,
            "max_token_len",
            "max_token_len must be positive",
        ));
    }
    if let Some(realm) = &d.realm
        && (HeaderValue::from_str(realm).is_err() || realm.chars().any(char::is_control))
    {
        return Err(at(
            K::InvalidHeader,
            "realm",
            "realm is not valid in a header",
        ));
    }
    let token_source = match &b.code.token_source {
        Some(source) => source.clone(),
        None => declared_token_source(&d.token)?,
    };
    let token_source = match &d.api_keys_settings.header {
        Some(header) => {
            let keys = TokenSource::api_key_header(header);
            keys.validate()
                .map_err(|msg| at(K::InvalidHeader, "api_keys_settings.header", msg))?;
            check_api_key_header(header, &token_source)?;
            token_source.or(keys)
        }
        None => token_source,
    };
    let api_keys = compile_api_keys(&b)?;
    token_source
        .validate()
        .map_err(|msg| at(K::InvalidHeader, "token", msg))?;
    let token_source = with_query_paths(token_source, &d.token)?;

    let issuers = build_issuers(&b, previous)?;
    let mut permission_paths = ClaimPath::defaults();
    for (k, claim) in d.permission_claims.iter().enumerate() {
        let path = match claim {
            PermissionClaim::Dotted(dotted) => ClaimPath::dotted(dotted),
            PermissionClaim::Segments(segments) => {
                ClaimPath::new(segments.iter().map(|s| s.as_str()))
            }
        };
        let path = path.ok_or_else(|| {
            at(
                K::InvalidValue,
                format!("permission_claims[{k}]"),
                "a permission claim path has an empty segment",
            )
        })?;
        if !permission_paths.contains(&path) {
            permission_paths.push(path);
        }
    }
    let mut names = crate::permission::PermissionSources::tops_of(&permission_paths);
    let tops = names.len();
    let (checks, exemptions, forwarding) = compile_rules(&b, &mut names)?;
    let permission_sources = Arc::new(crate::permission::PermissionSources {
        paths: permission_paths,
        tops,
        capture: names,
    });
    let binding = compile_binding(&b)?;
    if let Some(k) = first_empty(&d.required_permissions) {
        return Err(at(
            K::EmptyValue,
            format!("required_permissions[{k}]"),
            "empty required permission",
        ));
    }
    let required_permissions = (!d.required_permissions.is_empty()).then(|| {
        Requirement::All(
            d.required_permissions
                .iter()
                .map(|p| p.as_str().into())
                .collect(),
        )
    });
    let metadata = match &d.resource {
        None => None,
        Some(resource) if resource.resource.is_empty() => {
            return Err(at(
                K::ResourceRequired,
                "resource.resource",
                "resource_name, resource_documentation and scopes_supported need .resource(..)",
            ));
        }
        Some(resource) => {
            let (url, paths) = resource
                .locate()
                .map_err(|e| at(e.kind(), "resource.resource", e))?;
            Some(ProtectedResourceMetadata::new(
                resource,
                issuers.iter().map(|i| i.matcher.as_str()).collect(),
                token_source.reads_bearer_header(),
                url.into(),
                paths,
                binding.metadata(),
            ))
        }
    };
    #[cfg(feature = "dpop")]
    let (dpop_algs, dpop_only) = (
        binding.dpop.as_ref().map(|d| Arc::clone(&d.algs)),
        binding
            .dpop
            .as_ref()
            .is_some_and(|d| d.mode == DpopMode::Required),
    );
    #[cfg(not(feature = "dpop"))]
    let (dpop_algs, dpop_only) = (None, false);
    let challenge = ChallengeParams {
        realm: d.realm.clone().map(Into::into),
        resource_metadata: metadata.as_ref().map(|m| m.url().into()),
        dpop_algs,
        dpop_only,
    };
    let max_lifetime = compile_max_lifetime(&b)?;
    let state = Arc::new(compile_state(
        &b,
        previous,
        #[cfg(feature = "dpop")]
        binding.dpop.is_some(),
    )?);
    let revocation = state.revocation.clone();
    let context = AuthContext::build(
        challenge,
        Arc::clone(&b.code.responder),
        required_permissions.clone(),
        Arc::clone(&state),
        #[cfg(feature = "dpop")]
        binding.dpop.clone(),
    );
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for alg in issuers.iter().flat_map(|i| &i.algorithms) {
        if !algorithms.contains(alg) {
            algorithms.push(*alg);
        }
    }

    #[cfg(feature = "introspection")]
    let introspection = compile_introspection(&b, &issuers)?;
    Ok(Policy {
        profile: d.profile,
        issuers,
        token: TokenRules {
            source: token_source,
            max_len: d.max_token_len,
        },
        claims: ClaimRules {
            leeway: d.leeway.as_secs_f64(),
            max_lifetime: max_lifetime.map(|max| max.as_secs_f64()),
            typ: d.typ,
            required: d
                .required_claims
                .iter()
                .map(|c| c.as_str().into())
                .collect(),
            clock: Arc::clone(&b.code.clock),
            checks,
        },
        permissions: PermissionRules {
            sources: permission_sources,
            required: required_permissions,
        },
        cache: d.cache.map(TokenCache::sampled),
        context,
        algorithms,
        metadata,
        telemetry: TelemetryRules {
            subject: d.telemetry.subject,
            audit: b.code.audit.clone(),
        },
        state,
        revocations: revocation.map(|list| {
            // A token of the longest lifetime the retention allows is accepted until `exp`
            // plus the leeway, and a subject revocation reaches one leeway further: the
            // record outlives both.
            let kept = d
                .state
                .revocation_retention
                .saturating_add(d.leeway.saturating_mul(2));
            Revocations::new(list, Arc::clone(&b.code.clock), kept)
        }),
        exemptions,
        forwarding,
        binding,
        #[cfg(feature = "introspection")]
        introspection,
        api_keys,
    })
}

/// The API keys of the model and of the keys file, compiled; none when none are
/// configured. A key needs a prefix that tells it from a token (`api_key::check_prefix`),
/// and cannot be single use (it is meant to be presented again, and has no `jti`).
fn compile_api_keys(b: &JwtAuthConfigBuilder) -> Result<Option<Arc<ApiKeys>>, ConfigError> {
    use ConfigErrorKind as K;
    let d = &b.declared;
    let settings = &d.api_keys_settings;
    if d.api_keys.is_empty() && !settings.is_set() {
        return Ok(None);
    }
    let file = match &settings.file {
        Some(path) => Some(
            crate::api_key::file::read(path)
                .map_err(|e| at(K::InvalidValue, "api_keys_settings.file", e))?,
        ),
        None => None,
    };
    let file_prefix = file.as_ref().and_then(|file| file.prefix.as_deref());
    let prefix = match (settings.prefix.as_deref(), file_prefix) {
        (Some(ours), Some(theirs)) if ours != theirs => {
            return Err(at(
                K::InvalidValue,
                "api_keys_settings.file",
                format!(
                    "the keys file's prefix {theirs:?} is not api_keys_settings.prefix {ours:?}"
                ),
            ));
        }
        (ours, theirs) => ours.or(theirs),
    };
    // The prefix is what keeps a key sent as a bearer token away from JWT verification
    // and introspection (which would send it to the identity provider), header or not.
    let Some(prefix) = prefix else {
        return Err(at(
            K::InvalidValue,
            "api_keys_settings.prefix",
            "API keys need a prefix (api_key_prefix, or the keys file's prefix) that tells them from tokens",
        ));
    };
    let prefix_path = if settings.prefix.is_some() {
        "api_keys_settings.prefix"
    } else {
        "api_keys_settings.file"
    };
    crate::api_key::check_prefix(prefix).map_err(|e| at(K::InvalidValue, prefix_path, e))?;
    // A key is bound to nothing: with every credential required to be bound, no key
    // could pass.
    #[cfg(feature = "dpop")]
    if d.dpop
        .as_ref()
        .is_some_and(|dpop| dpop.mode == crate::dpop::DpopMode::Required)
    {
        return Err(at(
            K::InvalidValue,
            "dpop.mode",
            "DPoP required refuses every API key (a key is bound to no client key): use mode allowed beside API keys",
        ));
    }
    if d.mtls == crate::mtls::MtlsMode::Required {
        return Err(at(
            K::InvalidValue,
            "mtls",
            "mTLS required refuses every API key (a key is bound to no certificate): use mtls allowed beside API keys",
        ));
    }
    // Beside tokens, layer-wide single use spends tokens and refuses every key (no
    // `jti`, 401 "required claim missing"); with keys alone, no request could pass.
    #[cfg(feature = "introspection")]
    let introspects = d.introspection.is_some();
    #[cfg(not(feature = "introspection"))]
    let introspects = false;
    if d.state.single_use && d.issuers.is_empty() && !introspects {
        return Err(at(
            K::InvalidValue,
            "state.single_use",
            "every credential single use with API keys alone refuses every request (keys are presented again and again, and have no jti)",
        ));
    }
    let ours = d
        .api_keys
        .iter()
        .enumerate()
        .map(|(i, key)| (format!("api_keys[{i}]"), key));
    let theirs = file.iter().flat_map(|file| {
        file.api_keys
            .iter()
            .enumerate()
            .map(|(i, key)| (format!("api_keys_settings.file/api_keys[{i}]"), key))
    });
    let keys = ApiKeys::compile(prefix, ours.chain(theirs)).map_err(|(path, invalid)| {
        match path.split_once('/') {
            // A key of the file: the option is the file, the key is in the message.
            Some((option, key)) => at(
                K::InvalidValue,
                option,
                format!("{key}.{}: {}", invalid.field, invalid.message),
            ),
            None => at(
                K::InvalidValue,
                format!("{path}.{}", invalid.field),
                invalid.message,
            ),
        }
    })?;
    Ok(Some(Arc::new(keys)))
}

/// The API key header is a header of its own: not `Authorization`, `Cookie` or `DPoP`
/// (whose values are read as something else), nor a header the token source reads.
fn check_api_key_header(name: &str, tokens: &TokenSource) -> Result<(), ConfigError> {
    let taken = ["authorization", "cookie", "dpop", "sec-websocket-protocol"]
        .iter()
        .any(|reserved| name.eq_ignore_ascii_case(reserved))
        || tokens
            .header_names()
            .any(|header| name.eq_ignore_ascii_case(header.as_str()));
    if taken {
        return Err(at(
            ConfigErrorKind::InvalidHeader,
            "api_keys_settings.header",
            format!(
                "{name:?} cannot be the API key header: Authorization, Cookie, DPoP, Sec-WebSocket-Protocol and the token source's header carry other credentials"
            ),
        ));
    }
    Ok(())
}

/// The token sources a `[token]` table names, combined.
fn declared_token_source(token: &TokenDecl) -> Result<TokenSource, ConfigError> {
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
    if let Some(prefix) = &token.websocket_protocol {
        sources.push(TokenSource::websocket_protocol(prefix));
    }
    if let Some(name) = &token.query {
        sources.push(TokenSource::query(name));
    }
    let mut sources = sources.into_iter();
    let first = sources.next().ok_or_else(|| {
        at(
            ConfigErrorKind::InvalidValue,
            "token",
            "no token source: bearer is false and no cookie, header, websocket_protocol or query is named",
        )
    })?;
    Ok(sources.fold(first, TokenSource::or))
}

/// A query source reads on the paths `token.query_paths` names, and only there: one
/// without the other is a configuration that cannot mean what it says.
fn with_query_paths(source: TokenSource, token: &TokenDecl) -> Result<TokenSource, ConfigError> {
    let patterns = token
        .query_paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            path.parse::<PathPattern>().map_err(|e| {
                at(
                    ConfigErrorKind::InvalidValue,
                    format!("token.query_paths[{i}]"),
                    e.to_string(),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    match (source.reads_query(), patterns.is_empty()) {
        // Named where the source is: the file's `query`, or the missing paths.
        (true, true) => Err(at(
            ConfigErrorKind::InvalidValue,
            if token.query.is_some() {
                "token.query"
            } else {
                "token.query_paths"
            },
            "a query token source reads only on the paths token.query_paths names; name at least one",
        )),
        (false, false) => Err(at(
            ConfigErrorKind::InvalidValue,
            "token.query_paths",
            "query paths are named but no token source reads the query (a token source set in code replaces the [token] table's sources)",
        )),
        _ => Ok(source.with_query_paths(patterns)),
    }
}

/// Reads a secret file, without trailing line breaks.
fn read_secret(path: &str, file: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    let mut bytes = std::fs::read(file).map_err(|e| {
        at(
            ConfigErrorKind::InvalidValue,
            path,
            format!("{}: {e}", file.display()),
        )
    })?;
    while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        bytes.pop();
    }
    Ok(bytes)
}

/// [`read_secret`] for a secret that is text.
fn read_text(path: &str, file: &std::path::Path) -> Result<String, ConfigError> {
    String::from_utf8(read_secret(path, file)?)
        .map_err(|_| at(ConfigErrorKind::InvalidValue, path, "not UTF-8"))
}

/// The maximum token lifetime: as configured, else the revocation retention when a
/// revocation list is checked (a longer-lived token would outlive its revocation).
fn compile_max_lifetime(b: &JwtAuthConfigBuilder) -> Result<Option<Duration>, ConfigError> {
    use ConfigErrorKind as K;
    let d = &b.declared;
    let retention = d.state.revocation_retention;
    if retention.is_zero() {
        return Err(at(
            K::InvalidValue,
            "state.revocation_retention",
            "revocation_retention must be positive",
        ));
    }
    if d.max_lifetime.is_some_and(|max| max.is_zero()) {
        return Err(at(
            K::InvalidValue,
            "max_lifetime",
            "max_lifetime must be positive",
        ));
    }
    if b.code.revocation.is_none() && !d.state.revocation {
        return Ok(d.max_lifetime);
    }
    match d.max_lifetime {
        Some(max) if max > retention => Err(at(
            K::InvalidValue,
            "state.revocation_retention",
            format!(
                "revocation_retention ({}s) is shorter than max_lifetime ({}s): a revoked token would work again once its revocation lapses",
                retention.as_secs(),
                max.as_secs()
            ),
        )),
        Some(max) => Ok(Some(max)),
        None => Ok(Some(retention)),
    }
}

/// The store a `[state]` table names.
enum StoreChoice {
    Memory,
    #[cfg(feature = "redis")]
    Redis(crate::state::RedisConnection),
}

fn store_choice(state: &StateDecl) -> Result<StoreChoice, ConfigError> {
    use ConfigErrorKind as K;
    let (path, url) = match &state.store_file {
        None => ("state.store", state.store.clone()),
        Some(_) if state.store != MEMORY_STORE => {
            return Err(at(
                K::InvalidValue,
                "state.store",
                "give store or store_file, not both",
            ));
        }
        Some(file) => ("state.store_file", read_text("state.store_file", file)?),
    };
    if url == MEMORY_STORE {
        return Ok(StoreChoice::Memory);
    }
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(at(
            K::InvalidValue,
            path,
            "must be \"memory\" or a redis:// URL",
        ));
    }
    #[cfg(feature = "redis")]
    {
        // The URL may hold a password: errors never repeat it.
        let redis = crate::state::RedisConnection::open(&url)
            .map_err(|e| at(K::InvalidValue, path, e))?
            .prefix(&state.redis_prefix)
            .timeout(state.redis_timeout);
        Ok(StoreChoice::Redis(redis))
    }
    #[cfg(not(feature = "redis"))]
    Err(at(
        K::InvalidValue,
        path,
        "a redis:// store needs the feature `redis`",
    ))
}

/// The state rules with their stores: those given in code, else those the `[state]`
/// table names. The in-memory stores the configuration did not name by a store object
/// survive a reload: a token used or revoked before it must not work again after it.
fn compile_state(
    b: &JwtAuthConfigBuilder,
    previous: Option<&Policy>,
    #[cfg(feature = "dpop")] dpop: bool,
) -> Result<StateRules, ConfigError> {
    let state = &b.declared.state;
    let choice = store_choice(state)?;
    let previous = previous.map(|p| &p.state);
    let (replay, default_replay) = match (&b.code.replay, &choice, previous) {
        (Some(store), _, _) => (Arc::clone(store), false),
        #[cfg(feature = "redis")]
        (None, StoreChoice::Redis(redis), _) => (
            Arc::new(crate::state::RedisReplayStore::new(redis.clone())) as Arc<dyn ReplayStore>,
            false,
        ),
        (None, StoreChoice::Memory, Some(previous)) if previous.default_replay => {
            (Arc::clone(&previous.replay), true)
        }
        (None, StoreChoice::Memory, _) => (
            Arc::new(MemoryReplayStore::default()) as Arc<dyn ReplayStore>,
            true,
        ),
    };
    let (revocation, default_revocation) = match (&b.code.revocation, &choice, previous) {
        (Some(list), _, _) => (Some(Arc::clone(list)), false),
        (None, _, _) if !state.revocation => (None, false),
        #[cfg(feature = "redis")]
        (None, StoreChoice::Redis(redis), _) => (
            Some(
                Arc::new(crate::state::RedisRevocationList::new(redis.clone()))
                    as Arc<dyn RevocationList>,
            ),
            false,
        ),
        (None, StoreChoice::Memory, Some(previous)) if previous.default_revocation => {
            (previous.revocation.clone(), true)
        }
        (None, StoreChoice::Memory, _) => (
            Some(Arc::new(MemoryRevocationList::default()) as Arc<dyn RevocationList>),
            true,
        ),
    };
    #[cfg(feature = "dpop")]
    let (proofs, default_proofs) = compile_proofs(b, &replay, previous, dpop);
    let d = &b.declared;
    let mut rules = StateRules::new(
        replay,
        #[cfg(feature = "dpop")]
        proofs,
        revocation,
        state.single_use,
        state.failure,
        d.leeway.as_secs_f64(),
        Arc::clone(&b.code.clock),
    );
    rules.default_replay = default_replay;
    #[cfg(feature = "dpop")]
    {
        rules.default_proofs = default_proofs;
    }
    rules.default_revocation = default_revocation;
    rules.retention = state.revocation_retention;
    Ok(rules)
}

/// The introspection client of the one issuer, when introspection is configured.
#[cfg(feature = "introspection")]
fn compile_introspection(
    b: &JwtAuthConfigBuilder,
    issuers: &[Arc<Issuer>],
) -> Result<Option<Arc<Introspector>>, ConfigError> {
    use ConfigErrorKind as K;
    let d = &b.declared;
    let Some(settings) = &d.introspection else {
        return Ok(None);
    };
    let ([issuer], [trusted]) = (issuers, d.issuers.as_slice()) else {
        return Err(at(
            K::InvalidValue,
            "introspection",
            "introspection needs exactly one trusted issuer: an opaque token names no issuer, and it is never sent to several authorization servers",
        ));
    };
    if settings.client_id.is_empty() {
        return Err(at(
            K::EmptyValue,
            "introspection.client_id",
            "introspection client id is empty",
        ));
    }
    if let Some((kind, field, why)) = settings.shape_problem() {
        return Err(at(kind, format!("introspection.{field}"), why));
    }
    let secret = match (&settings.client_secret, &settings.client_secret_file) {
        (Some(_), Some(_)) => {
            return Err(at(
                K::InvalidValue,
                "introspection.client_secret",
                "give client_secret or client_secret_file, not both",
            ));
        }
        (Some(secret), None) => Some(secret.clone()),
        (None, Some(file)) => Some(read_text("introspection.client_secret_file", file)?),
        (None, None) => None,
    };
    let auth = settings.client_auth(secret).ok_or_else(|| {
        at(
            K::InvalidValue,
            "introspection.client_secret",
            "give client_secret or client_secret_file",
        )
    })?;
    // Checked here, not at the first call: the discovery document decides where the
    // client credentials and every opaque token go.
    let (what, path, text) = match &settings.endpoint {
        Some(endpoint) => (
            "introspection endpoint",
            "introspection.endpoint",
            endpoint.clone(),
        ),
        None => (
            "introspection discovery URL",
            "issuers[0].issuer",
            crate::introspection::introspector::discovery_url(&trusted.issuer),
        ),
    };
    let url = url::Url::parse(&text).map_err(|_| {
        at(
            K::InvalidUrl,
            path,
            format!("{what} `{text}` does not parse"),
        )
    })?;
    let allow_http = d.remote.allow_http;
    crate::https::check_fetchable(&url, allow_http).map_err(|why| {
        at(
            K::InvalidUrl,
            path,
            format!("{what}: {why}; allow plain http with JwtAuthConfigBuilder::dangerous().allow_plain_http(), on closed test networks only"),
        )
    })?;
    let source = match settings.endpoint {
        Some(_) => crate::introspection::introspector::Source::Endpoint(url),
        None => crate::introspection::introspector::Source::Discovery(url),
    };
    let mut settings = settings.clone();
    settings.auth = auth;
    settings.audience_optional |= b.code.introspection_audience_optional;
    let introspector = Introspector::new(
        Arc::clone(issuer),
        trusted.issuer.clone(),
        settings,
        source,
        allow_http,
        Arc::clone(&b.code.clock),
    )
    .map_err(|e| {
        at(
            K::InvalidValue,
            "introspection",
            format!("the introspection HTTP client could not be built: {e}"),
        )
    })?;
    Ok(Some(Arc::new(introspector)))
}

/// The proof store: never the single-use store, but a store of its own, the one the
/// replay store offers on its backend, or the default in-memory one (carried over by a
/// reload). `true` with the default one.
#[cfg(feature = "dpop")]
fn compile_proofs(
    b: &JwtAuthConfigBuilder,
    replay: &Arc<dyn ReplayStore>,
    previous: Option<&Arc<StateRules>>,
    dpop: bool,
) -> (Arc<dyn ProofStore>, bool) {
    let (proofs, default_proofs) = match (
        b.code.proofs.clone().or_else(|| replay.proof_store()),
        previous,
    ) {
        (Some(store), _) => (store, false),
        (None, Some(previous)) if previous.default_proofs => (Arc::clone(&previous.proofs), true),
        (None, _) => (
            Arc::new(MemoryProofStore::default()) as Arc<dyn ProofStore>,
            true,
        ),
    };
    if default_proofs && b.code.replay.is_some() && dpop {
        tracing::warn!(
            "DPoP proofs are recorded in this replica's memory: the configured replay store offers no proof store; set JwtAuthConfigBuilder::proof_store to share them between replicas"
        );
    }
    (proofs, default_proofs)
}

/// The DPoP and mTLS settings, checked.
fn compile_binding(b: &JwtAuthConfigBuilder) -> Result<BindingRules, ConfigError> {
    let d = &b.declared;
    let rules = BindingRules {
        #[cfg(feature = "dpop")]
        dpop: compile_dpop(d)?,
        mtls: d.mtls,
        forwarded: compile_client_cert(d)?,
        sender_constrained: d.sender_constrained,
    };
    if rules.sender_constrained && !rules.is_active() {
        return Err(at(
            ConfigErrorKind::InvalidValue,
            "sender_constrained",
            "sender-constrained tokens need DPoP or mTLS on: no token could be accepted",
        ));
    }
    Ok(rules)
}

/// Who may forward a client certificate in `Client-Cert` (RFC 9440), checked; `None`
/// when nobody may.
fn compile_client_cert(
    d: &super::model::Declared,
) -> Result<Option<crate::mtls::ForwardedCertificates>, ConfigError> {
    use ConfigErrorKind as K;
    let Some(options) = &d.client_cert else {
        return Ok(None);
    };
    if d.mtls == crate::mtls::MtlsMode::Off {
        return Err(at(
            K::InvalidValue,
            "client_cert",
            "a forwarded client certificate is read only for certificate-bound tokens: set mtls to allowed or required",
        ));
    }
    let secret = match (
        &options.secret_header,
        &options.secret,
        &options.secret_file,
    ) {
        (None, None, None) => None,
        (Some(_), Some(_), Some(_)) => {
            return Err(at(
                K::InvalidValue,
                "client_cert.secret_file",
                "the shared secret is given twice: in code and in a file",
            ));
        }
        (Some(name), secret, file) => {
            let header = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                at(
                    K::InvalidHeader,
                    "client_cert.secret_header",
                    format!("{name:?} is not a header name"),
                )
            })?;
            let secret = match (secret, file) {
                (Some(secret), None) => secret.clone(),
                (None, Some(file)) => {
                    crate::mtls::ProxySecret(read_secret("client_cert.secret_file", file)?)
                }
                _ => {
                    return Err(at(
                        K::InvalidValue,
                        "client_cert.secret_file",
                        "a secret header needs its secret (secret_file, or trust_secret_header in code)",
                    ));
                }
            };
            if secret.0.len() < 16 {
                let field = if file.is_some() {
                    "client_cert.secret_file"
                } else {
                    "client_cert"
                };
                return Err(at(
                    K::InvalidValue,
                    field,
                    "the shared secret is shorter than 16 bytes",
                ));
            }
            Some((header, secret))
        }
        (None, _, _) => {
            return Err(at(
                K::InvalidValue,
                "client_cert.secret_header",
                "a shared secret needs the header that carries it",
            ));
        }
    };
    if secret.is_none() && options.trusted_peers.is_empty() {
        return Err(at(
            K::InvalidValue,
            "client_cert",
            "no trusted proxy: give a secret header or trusted peers",
        ));
    }
    Ok(Some(crate::mtls::ForwardedCertificates {
        secret,
        peers: options.trusted_peers.clone(),
    }))
}

/// The DPoP settings, checked; `None` when DPoP is off.
#[cfg(feature = "dpop")]
fn compile_dpop(d: &super::model::Declared) -> Result<Option<Arc<ProofRules>>, ConfigError> {
    use ConfigErrorKind as K;
    let dpop = match &d.dpop {
        None => None,
        Some(options) if options.mode == DpopMode::Off => None,
        Some(options) => {
            let url = match (&options.public_base_url, options.trusted_url_extension) {
                (Some(_), true) => {
                    return Err(at(
                        K::InvalidValue,
                        "dpop",
                        "give public_base_url or trusted_url_extension, not both",
                    ));
                }
                (Some(base), false) => {
                    if dpop::htu::normalise(base).is_none() {
                        return Err(at(
                            K::InvalidUrl,
                            "dpop.public_base_url",
                            format!("DPoP public base URL `{base}` is not an absolute http(s) URL"),
                        ));
                    }
                    UrlSource::Base(base.clone())
                }
                (None, true) => UrlSource::Extension,
                (None, false) => {
                    return Err(at(
                        K::InvalidValue,
                        "dpop.public_base_url",
                        "DPoP needs the requests' public URL: DpopOptions::public_base_url(..) or trusted_url_extension(); it is never rebuilt from Host or X-Forwarded-* headers",
                    ));
                }
            };
            if options.algorithms.is_empty()
                || options
                    .algorithms
                    .iter()
                    .any(|a| a.family() == crate::algorithm::KeyFamily::Hmac)
            {
                return Err(at(
                    K::AlgorithmNotSupported,
                    "dpop.algorithms",
                    "DPoP proofs need at least one algorithm, all asymmetric",
                ));
            }
            let secret = match (&options.nonce_secret, &options.nonce_secret_file) {
                (Some(secret), _) => Some(secret.0.clone()),
                (None, Some(file)) => Some(read_secret("dpop.nonce_secret_file", file)?),
                (None, None) => None,
            };
            let nonce = match secret {
                None => None,
                Some(secret) => Some(NonceKey::new(&secret, options.nonce_lifetime).ok_or_else(
                    || {
                        at(
                            K::InvalidValue,
                            "dpop.nonce_secret_file",
                            "the DPoP nonce secret must be at least 32 bytes",
                        )
                    },
                )?),
            };
            if options.per_key_limit == 0 {
                return Err(at(
                    K::InvalidValue,
                    "dpop.max_live_proofs_per_key",
                    "DpopOptions::max_live_proofs_per_key must be at least 1",
                ));
            }
            let algs: Vec<&str> = options.algorithms.iter().map(|a| a.as_str()).collect();
            Some(Arc::new(ProofRules {
                mode: options.mode,
                algorithms: options.algorithms.clone(),
                algs: algs.join(" ").into(),
                window: options.window.as_secs_f64(),
                leeway: d.leeway.as_secs_f64(),
                url,
                nonce,
                per_key_limit: options.per_key_limit,
                keys: KeyCache::default(),
            }))
        }
    };
    Ok(dpop)
}

/// The index of `name` in the capture list, added when missing.
fn capture_index(capture: &mut Vec<Box<str>>, name: &str) -> usize {
    match capture.iter().position(|c| **c == *name) {
        Some(index) => index,
        None => {
            capture.push(name.into());
            capture.len() - 1
        }
    }
}

/// Claim rules, exemptions and forwarding, checked; the claims they read are added to
/// the capture list.
fn compile_rules(
    b: &JwtAuthConfigBuilder,
    capture: &mut Vec<Box<str>>,
) -> Result<(ClaimChecks, Exemptions, Forwarding), ConfigError> {
    use ConfigErrorKind as K;
    let d = &b.declared;
    let declared = [
        ("require", &d.claims.require, true),
        ("if_present", &d.claims.if_present, false),
    ];
    let mut rules = Vec::with_capacity(b.code.claim_validators.len());
    for (table, values, mandatory) in declared {
        for (name, expected) in values {
            if name.is_empty() {
                return Err(at(
                    K::EmptyValue,
                    format!("claims.{table}"),
                    "a claim rule names no claim",
                ));
            }
            if expected.is_empty() {
                return Err(at(
                    K::InvalidValue,
                    format!("claims.{table}.{name}"),
                    format!("the rule for claim `{name}` accepts no value"),
                ));
            }
            let rule = ClaimRule {
                name: name.as_str().into(),
                mandatory,
                check: Check::Equals(expected.clone()),
            };
            rules.push((rule, capture_index(capture, name)));
        }
    }
    for rule in &b.code.claim_validators {
        if rule.name.is_empty() {
            return Err(ConfigError::new(
                K::EmptyValue,
                "a claim rule names no claim",
            ));
        }
        rules.push((rule.clone(), capture_index(capture, &rule.name)));
    }
    let clients = match &d.allowed_clients {
        None => None,
        Some(clients) if clients.is_empty() || clients.iter().any(String::is_empty) => {
            return Err(at(
                K::EmptyValue,
                "allowed_clients",
                "allowed_clients is empty or holds an empty client id: no token could pass",
            ));
        }
        Some(clients) => Some(clients.iter().map(|c| c.as_str().into()).collect()),
    };
    let checks = ClaimChecks {
        rules,
        payload: b.code.payload_checks.clone(),
        clients,
    };
    for (k, exemption) in d.exempt.iter().enumerate() {
        if !exemption.text().starts_with('/') {
            return Err(at(
                K::InvalidValue,
                format!("exempt[{k}]"),
                format!(
                    "exemption `{}` does not start with `/`: paths are matched as the layer sees them",
                    exemption.text()
                ),
            ));
        }
    }
    let exemptions = Exemptions {
        rules: d.exempt.clone(),
        predicates: b.code.exempt_predicates.clone(),
    };
    let header = |path: &str, name: &str| -> Result<HeaderName, ConfigError> {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            at(
                K::InvalidHeader,
                path,
                format!("`{name}` is not a header name"),
            )
        })?;
        if header == http::header::AUTHORIZATION {
            return Err(at(
                K::InvalidHeader,
                path,
                "claims cannot be forwarded in the Authorization header",
            ));
        }
        Ok(header)
    };
    let mut forwarding = Forwarding {
        claims: Vec::with_capacity(d.forward.claims.len()),
        payload: d
            .forward
            .payload
            .as_deref()
            .map(|name| header("forward.payload", name))
            .transpose()?,
        remove_authorization: d.forward.remove_authorization,
        // Checked with the token sources.
        api_key_header: d
            .api_keys_settings
            .header
            .as_deref()
            .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok()),
        api_keys: !d.api_keys.is_empty()
            || d.api_keys_settings.prefix.is_some()
            || d.api_keys_settings.file.is_some(),
    };
    for (claim, name) in &d.forward.claims {
        let path = format!("forward.claims.{claim}");
        if claim.is_empty() {
            return Err(at(
                K::EmptyValue,
                "forward.claims",
                "a forwarded claim has no name",
            ));
        }
        let name = header(&path, name)?;
        let taken = forwarding.payload.as_ref() == Some(&name)
            || forwarding.claims.iter().any(|(h, _)| *h == name);
        if taken {
            return Err(at(
                K::InvalidHeader,
                path,
                format!("two forwarded values share the header `{name}`"),
            ));
        }
        forwarding
            .claims
            .push((name, capture_index(capture, claim)));
    }
    Ok((checks, exemptions, forwarding))
}

/// One issuer's key source (the keys given in code, and those its table names), and
/// the first file key that named one.
fn issuer_keys(
    i: usize,
    trusted: &TrustedIssuer,
) -> Result<(KeySpec, Option<&'static str>), ConfigError> {
    use ConfigErrorKind as K;
    let mut spec = trusted.keys.clone();
    let mut named: Vec<&'static str> = Vec::new();
    if let Some(url) = &trusted.jwks_url {
        spec.jwks_url = Some(url.clone());
        named.push("jwks_url");
    }
    if let Some(jwks) = &trusted.jwks {
        spec.inputs.push(KeyInput::Jwks(jwks.0.clone()));
        named.push("jwks");
    }
    if let Some(file) = &trusted.pem_file {
        let pem = std::fs::read_to_string(file).map_err(|e| {
            at(
                K::InvalidKey,
                format!("issuers[{i}].pem_file"),
                format!("{}: {e}", file.display()),
            )
        })?;
        spec.inputs.push(KeyInput::Pem(pem));
        named.push("pem_file");
    }
    if let Some(file) = &trusted.hmac_secret_file {
        let secret = read_secret(&format!("issuers[{i}].hmac_secret_file"), file)?;
        spec.inputs.push(KeyInput::Hmac(secret));
        named.push("hmac_secret_file");
    }
    if named.len() > 1 || (!named.is_empty() && trusted.keys.is_set()) {
        return Err(at(
            K::ConflictingKeySources,
            format!("issuers[{i}].{}", named[named.len() - 1]),
            "give one key source: jwks_url, jwks, pem_file or hmac_secret_file (none: discovery)",
        ));
    }
    Ok((spec, named.first().copied()))
}

/// Each issuer with its matcher, audiences, algorithms and keys.
fn build_issuers(
    b: &JwtAuthConfigBuilder,
    previous: Option<&Policy>,
) -> Result<Vec<Arc<Issuer>>, ConfigError> {
    #[cfg(not(feature = "remote"))]
    let _ = previous;
    use ConfigErrorKind as K;
    let d = &b.declared;
    let mut specs = Vec::with_capacity(d.issuers.len());
    for (i, trusted) in d.issuers.iter().enumerate() {
        specs.push(issuer_keys(i, trusted)?);
    }
    let sharing = specs.iter().filter(|(spec, _)| !spec.is_set()).count();
    if sharing > 1 && b.code.keys.is_anonymous() {
        return Err(at(
            K::SharedKeySource,
            "issuers",
            "several issuers share one key source, so a key of one could sign tokens claiming another; \
             give each issuer its own keys with .issuer(TrustedIssuer::new(issuer).jwks_url(..)) \
             (or .key_set(..), .pem(..), .key_store(..)), or let each use OIDC discovery",
        ));
    }
    let mut issuers = Vec::with_capacity(d.issuers.len());
    for (i, (trusted, (own, named))) in d.issuers.iter().zip(specs).enumerate() {
        let here = |field: &str| match field {
            "" => format!("issuers[{i}]"),
            field => format!("issuers[{i}].{field}"),
        };
        let tenants = if trusted.tenants.is_empty() {
            &d.tenants
        } else {
            &trusted.tenants
        };
        let matcher = IssuerMatch::new(&trusted.issuer, tenants, b.code.any_tenant)
            .map_err(|e| at(e.kind(), here("issuer"), e))?;
        let audiences = if trusted.audiences.is_empty() {
            &d.audiences
        } else {
            &trusted.audiences
        };
        if audiences.is_empty() && !b.code.any_audience {
            return Err(at(
                K::NoAudience,
                here("audiences"),
                format!(
                    "no audience configured for issuer {:?} (RFC 9068 section 4); use dangerous().accept_any_audience() to skip the check",
                    trusted.issuer
                ),
            ));
        }
        let (spec, named) = if own.is_set() {
            (&own, named)
        } else {
            (&b.code.keys, None)
        };
        // A key error names the file key that gave the keys; keys given in code have
        // none, and discovery is the issuer's own URL.
        let field = match named {
            Some(field) => field,
            None if spec.is_set() => "",
            None => "issuer",
        };
        #[cfg(feature = "remote")]
        let remote_id = spec.remote_id(matcher.as_str(), &d.remote);
        #[cfg(feature = "remote")]
        let kept = previous.and_then(|policy| {
            policy.issuers.iter().find(|old| {
                old.matcher.as_str() == matcher.as_str()
                    && old.remote_id.is_some()
                    && old.remote_id == remote_id
            })
        });
        #[cfg(feature = "remote")]
        let built = match kept {
            Some(old) => Ok(crate::issuer::BuiltKeys {
                store: Arc::clone(&old.store),
                static_set: None,
                remote: old.remote.clone(),
            }),
            None => spec.build(matcher.as_str(), &d.remote),
        };
        #[cfg(not(feature = "remote"))]
        let built = spec.build(matcher.as_str());
        let built = built.map_err(|e| at(e.kind(), here(field), e))?;
        let (requested, field) = match &trusted.algorithms {
            Some(own) => (Some(own.as_slice()), here("algorithms")),
            None => (d.algorithms.as_deref(), "algorithms".to_owned()),
        };
        let algorithms = resolve_algorithms(requested, &field, built.static_set.as_deref())?;
        issuers.push(Arc::new(Issuer {
            matcher,
            audiences: audiences.iter().map(|a| a.as_str().into()).collect(),
            algorithms,
            store: built.store,
            #[cfg(feature = "remote")]
            remote: built.remote,
            #[cfg(feature = "remote")]
            remote_id,
        }));
    }
    Ok(issuers)
}

/// The algorithms one issuer accepts: those requested (its own, else the builder's, at
/// `field`), or by default every one its static keys can verify (for remote keys and
/// custom stores: every asymmetric one).
fn resolve_algorithms(
    requested: Option<&[Algorithm]>,
    field: &str,
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
        return Err(at(K::InvalidValue, field, "no algorithm allowed"));
    }
    if requested.iter().any(|a| a.is_hmac()) && requested.iter().any(|a| !a.is_hmac()) {
        return Err(at(
            K::MixedKeyTypes,
            field,
            "HMAC algorithms cannot be allowed together with asymmetric ones",
        ));
    }
    if let Some(keys) = keys {
        for (k, alg) in requested.iter().enumerate() {
            if keys.iter().any(|key| key.supports(*alg)) {
                continue;
            }
            let kind = if alg.is_hmac() && keys.has_hmac() {
                K::HmacSecretTooShort
            } else {
                K::AlgorithmNotSupported
            };
            return Err(at(
                kind,
                format!("{field}[{k}]"),
                format!("no configured key can verify {alg}"),
            ));
        }
    }
    Ok(requested.to_vec())
}
