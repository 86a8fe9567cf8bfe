//! Validation and compilation: a [`JwtAuthConfigBuilder`] checked once and turned into
//! the [`Policy`] requests read. Nothing is fetched here; remote key stores start their
//! own first fetch.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::builder::JwtAuthConfigBuilder;
use crate::algorithm::Algorithm;
use crate::binding::BindingRules;
use crate::cache::TokenCache;
use crate::context::AuthContext;
use crate::dpop::nonce::NonceKey;
use crate::dpop::proof::{KeyCache, ProofRules};
use crate::dpop::{self, DpopMode, UrlSource};
use crate::error::{ConfigError, ConfigErrorKind};
#[cfg(feature = "remote")]
use crate::introspection::introspector::Introspector;
use crate::issuer::{Issuer, IssuerMatch};
use crate::jwks::KeySet;
use crate::permission::{ClaimPath, Requirement};
use crate::policy::{ClaimRules, PermissionRules, Policy, TelemetryRules, TokenRules};
use crate::resource::ProtectedResourceMetadata;
use crate::response::ChallengeParams;
use crate::rules::{Check, ClaimChecks, Exemptions, Forwarding};
use crate::state::{MemoryProofStore, MemoryReplayStore, Revocations};
use crate::tracking::StateRules;

/// Checks every setting and compiles the policy requests read. With `previous` (a
/// reload), remote key stores whose source did not change are carried over.
pub(super) fn compile(
    b: JwtAuthConfigBuilder,
    previous: Option<&Policy>,
) -> Result<Policy, ConfigError> {
    use ConfigErrorKind as K;
    if b.issuers.is_empty() {
        return Err(ConfigError::new(K::NoIssuer, "no issuer configured"));
    }
    if b.issuers.iter().any(|i| i.issuer.is_empty()) {
        return Err(ConfigError::new(K::EmptyValue, "empty issuer"));
    }
    let all_audiences = b
        .audiences
        .iter()
        .chain(b.issuers.iter().flat_map(|i| &i.audiences));
    if all_audiences.into_iter().any(String::is_empty) {
        return Err(ConfigError::new(K::EmptyValue, "empty audience"));
    }
    if b.max_token_len == 0 {
        return Err(ConfigError::new(
            K::InvalidValue,
            "max_token_len must be positive",
        ));
    }
    if let Some(realm) = &b.realm
        && (HeaderValue::from_str(realm).is_err() || realm.chars().any(char::is_control))
    {
        return Err(ConfigError::new(
            K::InvalidHeader,
            "realm is not valid in a header",
        ));
    }
    b.token_source
        .validate()
        .map_err(|msg| ConfigError::new(K::InvalidHeader, msg))?;

    let issuers = build_issuers(&b, previous)?;
    let mut permission_paths = ClaimPath::defaults();
    for path in &b.permission_paths {
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
    let mut permission_capture = crate::permission::capture_names(&permission_paths);
    let (checks, exemptions, forwarding) = compile_rules(&b, &mut permission_capture)?;
    let binding = compile_binding(&b)?;
    if b.required_permissions.iter().any(String::is_empty) {
        return Err(ConfigError::new(K::EmptyValue, "empty required permission"));
    }
    let required_permissions = (!b.required_permissions.is_empty()).then(|| {
        Requirement::All(
            b.required_permissions
                .iter()
                .map(|p| p.as_str().into())
                .collect(),
        )
    });
    let metadata = match &b.resource {
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
                b.token_source.reads_bearer_header(),
                url.into(),
                paths,
                binding.metadata(),
            ))
        }
    };
    let challenge = ChallengeParams {
        realm: b.realm.clone().map(Into::into),
        resource_metadata: metadata.as_ref().map(|m| m.url().into()),
        dpop_algs: binding.dpop.as_ref().map(|d| Arc::clone(&d.algs)),
        dpop_only: binding
            .dpop
            .as_ref()
            .is_some_and(|d| d.mode == crate::dpop::DpopMode::Required),
    };
    let max_lifetime = compile_max_lifetime(&b)?;
    // The default in-memory replay store survives a reload: a token used before it must
    // not work again after it.
    let replay = match (&b.replay, previous) {
        (Some(store), _) => Arc::clone(store),
        (None, Some(previous)) if previous.state.default_replay => {
            Arc::clone(&previous.state.replay)
        }
        (None, _) => Arc::new(MemoryReplayStore::default()) as Arc<dyn crate::state::ReplayStore>,
    };
    // An in-memory revocation list a settings file asked for survives a reload the same
    // way: revocations recorded before it still count after it.
    let revocation = match (&b.revocation, previous) {
        (Some(_), Some(previous)) if b.default_revocation && previous.state.default_revocation => {
            previous.state.revocation.clone()
        }
        (list, _) => list.clone(),
    };
    // Proofs never share the single-use store: a store of their own, the one the
    // configured replay store offers on its backend, or the default in-memory one (which
    // a reload carries over like the default replay store).
    let configured_proofs = b.proofs.clone().or_else(|| replay.proof_store());
    let default_proofs = configured_proofs.is_none();
    let proofs = match (configured_proofs, previous) {
        (Some(store), _) => store,
        (None, Some(previous)) if previous.state.default_proofs => {
            Arc::clone(&previous.state.proofs)
        }
        (None, _) => Arc::new(MemoryProofStore::default()) as Arc<dyn crate::state::ProofStore>,
    };
    if default_proofs && b.replay.is_some() && binding.dpop.is_some() {
        tracing::warn!(
            "DPoP proofs are recorded in this replica's memory: the configured replay store offers no proof store; set JwtAuthConfigBuilder::proof_store to share them between replicas"
        );
    }
    let mut state = StateRules::new(
        replay,
        proofs,
        revocation.clone(),
        b.single_use,
        b.store_failure,
        b.leeway.as_secs_f64(),
        Arc::clone(&b.clock),
    );
    state.default_replay = b.replay.is_none();
    state.default_proofs = default_proofs;
    state.default_revocation = b.default_revocation;
    state.retention = b.revocation_retention;
    let state = Arc::new(state);
    let context = AuthContext::build(
        challenge,
        Arc::clone(&b.responder),
        required_permissions.clone(),
        Arc::clone(&state),
        binding.dpop.clone(),
    );
    let mut algorithms: Vec<Algorithm> = Vec::new();
    for alg in issuers.iter().flat_map(|i| &i.algorithms) {
        if !algorithms.contains(alg) {
            algorithms.push(*alg);
        }
    }

    #[cfg(feature = "remote")]
    let introspection = compile_introspection(&b, &issuers)?;
    Ok(Policy {
        issuers,
        token: TokenRules {
            source: b.token_source,
            max_len: b.max_token_len,
        },
        claims: ClaimRules {
            leeway: b.leeway.as_secs_f64(),
            max_lifetime: max_lifetime.map(|max| max.as_secs_f64()),
            typ: b.typ,
            required: b.required_claims.into_iter().map(Into::into).collect(),
            clock: Arc::clone(&b.clock),
            checks,
        },
        permissions: PermissionRules {
            paths: permission_paths,
            capture: permission_capture,
            required: required_permissions,
        },
        cache: b.cache.map(TokenCache::new),
        context,
        algorithms,
        metadata,
        telemetry: TelemetryRules {
            subject: b.subject_logging,
            audit: b.audit,
        },
        state,
        revocations: revocation.map(|list| {
            // A token of the longest lifetime the retention allows is accepted until `exp`
            // plus the leeway, and a subject revocation reaches one leeway further: the
            // record outlives both.
            let kept = b
                .revocation_retention
                .saturating_add(b.leeway.saturating_mul(2));
            Revocations::new(list, b.clock, kept)
        }),
        exemptions,
        forwarding,
        binding,
        #[cfg(feature = "remote")]
        introspection,
    })
}

/// The maximum token lifetime: as configured, else the revocation retention when a
/// revocation list is checked (a longer-lived token would outlive its revocation).
fn compile_max_lifetime(b: &JwtAuthConfigBuilder) -> Result<Option<Duration>, ConfigError> {
    use ConfigErrorKind as K;
    if b.revocation_retention.is_zero() {
        return Err(ConfigError::new(
            K::InvalidValue,
            "revocation_retention must be positive",
        ));
    }
    if b.max_lifetime.is_some_and(|max| max.is_zero()) {
        return Err(ConfigError::new(
            K::InvalidValue,
            "max_lifetime must be positive",
        ));
    }
    if b.revocation.is_none() {
        return Ok(b.max_lifetime);
    }
    match b.max_lifetime {
        Some(max) if max > b.revocation_retention => Err(ConfigError::new(
            K::InvalidValue,
            format!(
                "revocation_retention ({}s) is shorter than max_lifetime ({}s): a revoked token would work again once its revocation lapses",
                b.revocation_retention.as_secs(),
                max.as_secs()
            ),
        )),
        Some(max) => Ok(Some(max)),
        None => Ok(Some(b.revocation_retention)),
    }
}

/// The introspection client of the one issuer, when introspection is configured.
#[cfg(feature = "remote")]
fn compile_introspection(
    b: &JwtAuthConfigBuilder,
    issuers: &[Arc<Issuer>],
) -> Result<Option<Arc<Introspector>>, ConfigError> {
    use ConfigErrorKind as K;
    let Some(settings) = &b.introspection else {
        return Ok(None);
    };
    let ([issuer], [trusted]) = (issuers, b.issuers.as_slice()) else {
        return Err(ConfigError::new(
            K::InvalidValue,
            "introspection needs exactly one trusted issuer: an opaque token names no issuer, and it is never sent to several authorization servers",
        ));
    };
    if settings.client_id.is_empty() {
        return Err(ConfigError::new(
            K::EmptyValue,
            "introspection client id is empty",
        ));
    }
    if let Some((kind, why)) = settings.shape_problem() {
        return Err(ConfigError::new(kind, why));
    }
    // Checked here, not at the first call: the discovery document decides where the
    // client credentials and every opaque token go.
    let (what, text) = match &settings.endpoint {
        Some(endpoint) => ("introspection endpoint", endpoint.clone()),
        None => (
            "introspection discovery URL",
            crate::introspection::introspector::discovery_url(&trusted.issuer),
        ),
    };
    let url = url::Url::parse(&text)
        .map_err(|_| ConfigError::new(K::InvalidUrl, format!("{what} `{text}` does not parse")))?;
    crate::https::check_fetchable(&url, b.remote_options.allow_http).map_err(|why| {
        ConfigError::new(
            K::InvalidUrl,
            format!("{what}: {why}; allow plain http with JwtAuthConfigBuilder::dangerous().allow_plain_http(), on closed test networks only"),
        )
    })?;
    let source = match settings.endpoint {
        Some(_) => crate::introspection::introspector::Source::Endpoint(url),
        None => crate::introspection::introspector::Source::Discovery(url),
    };
    let mut settings = settings.clone();
    settings.audience_optional |= b.introspection_audience_optional;
    let introspector = Introspector::new(
        Arc::clone(issuer),
        trusted.issuer.clone(),
        settings,
        source,
        b.remote_options.allow_http,
        Arc::clone(&b.clock),
    )
    .map_err(|e| {
        ConfigError::new(
            K::InvalidValue,
            format!("the introspection HTTP client could not be built: {e}"),
        )
    })?;
    Ok(Some(Arc::new(introspector)))
}

/// The DPoP and mTLS settings, checked.
fn compile_binding(b: &JwtAuthConfigBuilder) -> Result<BindingRules, ConfigError> {
    use ConfigErrorKind as K;
    let dpop = match &b.dpop {
        None => None,
        Some(options) if options.mode == DpopMode::Off => None,
        Some(options) => {
            if options.url == UrlSource::Unset {
                return Err(ConfigError::new(
                    K::InvalidValue,
                    "DPoP needs the requests' public URL: DpopOptions::public_base_url(..) or trusted_url_extension(); it is never rebuilt from Host or X-Forwarded-* headers",
                ));
            }
            if let UrlSource::Base(base) = &options.url
                && dpop::htu::normalise(base).is_none()
            {
                return Err(ConfigError::new(
                    K::InvalidUrl,
                    format!("DPoP public base URL `{base}` is not an absolute http(s) URL"),
                ));
            }
            if options.algorithms.is_empty()
                || options
                    .algorithms
                    .iter()
                    .any(|a| a.family() == crate::algorithm::KeyFamily::Hmac)
            {
                return Err(ConfigError::new(
                    K::AlgorithmNotSupported,
                    "DPoP proofs need at least one algorithm, all asymmetric",
                ));
            }
            let nonce = match &options.nonce {
                None => None,
                Some((secret, lifetime)) => {
                    Some(NonceKey::new(secret, *lifetime).ok_or_else(|| {
                        ConfigError::new(
                            K::InvalidValue,
                            "the DPoP nonce secret must be at least 32 bytes",
                        )
                    })?)
                }
            };
            if options.per_key_limit == 0 {
                return Err(ConfigError::new(
                    K::InvalidValue,
                    "DpopOptions::max_live_proofs_per_key must be at least 1",
                ));
            }
            let algs: Vec<&str> = options.algorithms.iter().map(|a| a.as_str()).collect();
            Some(Arc::new(ProofRules {
                mode: options.mode,
                algorithms: options.algorithms.clone(),
                algs: algs.join(" ").into(),
                window: options.window.as_secs_f64(),
                leeway: b.leeway.as_secs_f64(),
                url: options.url.clone(),
                nonce,
                per_key_limit: options.per_key_limit,
                keys: KeyCache::default(),
            }))
        }
    };
    Ok(BindingRules { dpop, mtls: b.mtls })
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
    let mut rules = Vec::with_capacity(b.claim_rules.len());
    for rule in &b.claim_rules {
        if rule.name.is_empty() {
            return Err(ConfigError::new(
                K::EmptyValue,
                "a claim rule names no claim",
            ));
        }
        if matches!(&rule.check, Check::Equals(expected) if expected.is_empty()) {
            return Err(ConfigError::new(
                K::InvalidValue,
                format!("the rule for claim `{}` accepts no value", rule.name),
            ));
        }
        rules.push((rule.clone(), capture_index(capture, &rule.name)));
    }
    let clients = match &b.allowed_clients {
        None => None,
        Some(clients) if clients.is_empty() || clients.iter().any(String::is_empty) => {
            return Err(ConfigError::new(
                K::EmptyValue,
                "allowed_clients is empty or holds an empty client id: no token could pass",
            ));
        }
        Some(clients) => Some(clients.iter().map(|c| c.as_str().into()).collect()),
    };
    let checks = ClaimChecks {
        rules,
        payload: b.payload_checks.clone(),
        clients,
    };
    for exemption in &b.exemptions {
        if !exemption.text().starts_with('/') {
            return Err(ConfigError::new(
                K::InvalidValue,
                format!(
                    "exemption `{}` does not start with `/`: paths are matched as the layer sees them",
                    exemption.text()
                ),
            ));
        }
    }
    let exemptions = Exemptions {
        rules: b.exemptions.clone(),
        predicates: b.exempt_predicates.clone(),
    };
    let header = |name: &str| -> Result<HeaderName, ConfigError> {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConfigError::new(K::InvalidHeader, format!("`{name}` is not a header name"))
        })?;
        if header == http::header::AUTHORIZATION {
            return Err(ConfigError::new(
                K::InvalidHeader,
                "claims cannot be forwarded in the Authorization header",
            ));
        }
        Ok(header)
    };
    let mut forwarding = Forwarding {
        claims: Vec::with_capacity(b.forwarded_claims.len()),
        payload: b.forwarded_payload.as_deref().map(header).transpose()?,
        remove_authorization: b.remove_authorization,
    };
    for (claim, name) in &b.forwarded_claims {
        if claim.is_empty() {
            return Err(ConfigError::new(
                K::EmptyValue,
                "a forwarded claim has no name",
            ));
        }
        let name = header(name)?;
        let taken = forwarding.payload.as_ref() == Some(&name)
            || forwarding.claims.iter().any(|(h, _)| *h == name);
        if taken {
            return Err(ConfigError::new(
                K::InvalidHeader,
                format!("two forwarded values share the header `{name}`"),
            ));
        }
        forwarding
            .claims
            .push((name, capture_index(capture, claim)));
    }
    Ok((checks, exemptions, forwarding))
}

/// Each issuer with its matcher, audiences, algorithms and keys.
fn build_issuers(
    b: &JwtAuthConfigBuilder,
    previous: Option<&Policy>,
) -> Result<Vec<Arc<Issuer>>, ConfigError> {
    #[cfg(not(feature = "remote"))]
    let _ = previous;
    use ConfigErrorKind as K;
    let sharing = b.issuers.iter().filter(|i| !i.keys.is_set()).count();
    if sharing > 1 && b.keys.is_anonymous() {
        return Err(ConfigError::new(
            K::SharedKeySource,
            "several issuers share one key source, so a key of one could sign tokens claiming another; \
             give each issuer its own keys with .issuer(TrustedIssuer::new(issuer).jwks_url(..)) \
             (or .key_set(..), .pem(..), .key_store(..)), or let each use OIDC discovery",
        ));
    }
    let mut issuers = Vec::with_capacity(b.issuers.len());
    for trusted in &b.issuers {
        let tenants = if trusted.tenants.is_empty() {
            &b.tenants
        } else {
            &trusted.tenants
        };
        let matcher = IssuerMatch::new(&trusted.issuer, tenants, b.any_tenant)?;
        let audiences = if trusted.audiences.is_empty() {
            &b.audiences
        } else {
            &trusted.audiences
        };
        if audiences.is_empty() && !b.any_audience {
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
            &b.keys
        };
        #[cfg(feature = "remote")]
        let remote_id = spec.remote_id(matcher.as_str(), &b.remote_options);
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
            Some(old) => crate::issuer::BuiltKeys {
                store: Arc::clone(&old.store),
                static_set: None,
                remote: old.remote.clone(),
            },
            None => spec.build(matcher.as_str(), &b.remote_options)?,
        };
        #[cfg(not(feature = "remote"))]
        let built = spec.build(matcher.as_str())?;
        let algorithms = resolve_algorithms(b.algorithms.as_deref(), built.static_set.as_deref())?;
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
