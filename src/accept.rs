//! A payload whose origin is established (a verified signature, or the issuer's
//! introspection endpoint) accepted, whichever source it came from: one pass (a scan of
//! a plain payload, else serde), the source's own claim checks, then the checks every
//! source shares (dates with the leeway, the maximum lifetime, required claims, claim
//! rules), and the token's [`TokenRecord`] built, once. A cache hit of either source comes back here too, for
//! its dates checked again.

use std::any::TypeId;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::api_key::CredentialKind;
use crate::binding::Binding;
use crate::cache::{Key, TokenCache};
use crate::claims::StandardClaims;
use crate::error::ErrorKind;
use crate::issuer::Issuer;
use crate::payload::{self, Registered};
use crate::permission::Permissions;
use crate::plain;
use crate::policy::{ClaimRules, Policy};
use crate::record::{Accepted, ClaimsSlot, LazyPermissions, Times, TokenRecord};
use crate::telemetry::{self, Identity};
use crate::text::Text;
use crate::time::unix_seconds;
use crate::tracking::Tracked;

/// What the record keeps of where a payload came from.
#[derive(Clone, Copy)]
pub(crate) struct Provenance<'a> {
    /// The `kid` of the key that verified the signature, for spans and the audit hook.
    pub(crate) kid: Option<&'a str>,
    /// Which source vouched for the payload.
    pub(crate) kind: CredentialKind,
}

/// Parses `payload` into `C` (or, for `StandardClaims`, checks that it would parse, and
/// leaves the claims to be made when first read), runs the source's `own` checks and
/// the shared ones, and builds the token's record: the one place that computes what
/// verification learns about a token.
pub(crate) fn accept<C>(
    policy: &Policy,
    issuer: &Issuer,
    payload: &[u8],
    own: impl FnOnce(&Registered<'_>) -> Result<(), ErrorKind>,
    provenance: Provenance<'_>,
) -> Result<Accepted<C>, ErrorKind>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    let rules = &policy.claims;
    let sources = &policy.permissions.sources;
    let capture = &sources.capture;
    let names = !rules.required.is_empty();
    let (claims, registered) = if TypeId::of::<C>() == TypeId::of::<StandardClaims>() {
        let registered = plain::standard(payload, names, capture)?;
        (ClaimsSlot::deferred::<C>(), registered)
    } else {
        let (claims, registered) = payload::parse::<C>(payload, names, capture)?;
        (ClaimsSlot::ready(claims), registered)
    };
    own(&registered)?;
    if let Some(names) = &registered.names {
        for required in &rules.required {
            if !names.iter().any(|name| **name == **required) {
                return Err(ErrorKind::MissingClaim);
            }
        }
    }
    if !rules.checks.is_empty() {
        let client = registered.client_id.as_ref().or(registered.azp.as_ref());
        rules
            .checks
            .check(client.map(|c| c.0.as_ref()), &registered.captured, payload)?;
    }
    let found = sources.locate(payload, &registered.captured);
    let made = Made {
        claims,
        permissions: LazyPermissions::new(sources, found),
        identity: wants_identity(policy),
    };
    accepted(policy, issuer, payload, &registered, made, provenance)
}

/// The record of a configured API key: its payload (`sub`, `scope`, `exp`, written at
/// `build()`) through the payload pass for what forwarding and the state step read, its
/// permissions as configured, and claims of type `C` made from the payload when first
/// read. No issuer-facing check applies (required claims, claim rules, the client
/// allow-list describe what issuers put in tokens); the key's source checks its dates.
/// Who it names is always kept: the record is built once per key and configuration.
pub(crate) fn accept_key<C>(
    policy: &Policy,
    issuer: &Issuer,
    payload: &[u8],
    permissions: Permissions,
) -> Result<Accepted<C>, ErrorKind>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    let capture = &policy.permissions.sources.capture;
    let registered = plain::standard(payload, false, capture)?;
    let made = Made {
        claims: ClaimsSlot::deferred::<C>(),
        permissions: LazyPermissions::ready(permissions),
        identity: true,
    };
    let provenance = Provenance {
        kid: None,
        kind: CredentialKind::ApiKey,
    };
    accepted(policy, issuer, payload, &registered, made, provenance)
}

/// What the caller of [`accepted`] made of the payload: the claims, the permissions, and
/// whether to keep who it names.
struct Made {
    claims: ClaimsSlot,
    permissions: LazyPermissions,
    identity: bool,
}

/// The record of an accepted payload, typed: what every reader reads, computed once.
fn accepted<C: Send + Sync + 'static>(
    policy: &Policy,
    issuer: &Issuer,
    payload: &[u8],
    registered: &Registered<'_>,
    made: Made,
    provenance: Provenance<'_>,
) -> Result<Accepted<C>, ErrorKind> {
    let Made {
        claims,
        permissions,
        identity,
    } = made;
    // An introspected token without `exp` lives as long as the cache keeps it.
    let times = (
        registered.exp.unwrap_or(f64::INFINITY),
        registered.nbf,
        registered.iat,
    );
    let text = |t: &Option<Text<'_>>| t.as_ref().map(|t| t.0.as_ref().into());
    let identity = identity.then(|| Identity {
        kid: provenance.kid.map(Into::into),
        subject: text(&registered.sub),
        client_id: text(&registered.client_id).or_else(|| text(&registered.azp)),
    });
    let tracked = policy.state.tracks().then(|| {
        if provenance.kind == CredentialKind::ApiKey {
            let id = registered.sub.as_ref().map(|t| t.0.as_ref());
            return Arc::new(Tracked::api_key(id, times.0));
        }
        Arc::new(Tracked::new(
            // An introspection answer may leave `iss` out: it is the issuer's.
            registered
                .iss
                .as_ref()
                .map_or(issuer.matcher.as_str(), |t| t.0.as_ref()),
            registered.jti.as_ref().map(|t| t.0.as_ref()),
            registered.sub.as_ref().map(|t| t.0.as_ref()),
            registered.iat,
            times.0,
        ))
    });
    let record = TokenRecord {
        kind: provenance.kind,
        claims,
        permissions,
        times,
        identity,
        tracked,
        forwarded: policy.forwarding.values(&registered.captured),
        binding: registered.cnf.map(Binding::parse),
        payload: Box::from(payload),
    };
    Accepted::from_record(Arc::new(record)).ok_or(ErrorKind::InvalidClaim)
}

/// Whether to keep who a token names: a span or the audit hook will read it.
fn wants_identity(policy: &Policy) -> bool {
    policy.telemetry.audit.is_some()
        || tracing::enabled!(target: telemetry::SPAN_TARGET, tracing::Level::DEBUG)
}

/// A source's cache entry of this generation, typed as `C`, its dates checked again at
/// `now`; none when the cache has no such entry.
pub(crate) fn cached<C>(
    policy: &Policy,
    cache: &TokenCache,
    token: &[u8],
    key: Key,
    generation: u64,
    now: f64,
) -> Option<Result<Accepted<C>, ErrorKind>>
where
    C: Send + Sync + 'static,
{
    let verified = Accepted::from_record(cache.get(token, key, generation, now)?)?;
    Some(check_times(&policy.claims, verified.record.times, now).map(|()| verified))
}

/// The date checks every payload goes through: no negative date, the maximum lifetime
/// (when there is an `exp`), then `exp`, `nbf` and `iat` against the clock with the
/// leeway. A source that requires `exp` checks that it is there first.
pub(crate) fn check_dates(
    rules: &ClaimRules,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
) -> Result<(), ErrorKind> {
    for date in [exp, nbf, iat].into_iter().flatten() {
        if date < 0.0 {
            return Err(ErrorKind::InvalidClaim);
        }
    }
    let now = unix_seconds(rules.clock.now());
    if let Some(exp) = exp {
        check_lifetime(rules, exp, iat, now)?;
    }
    check_times(rules, (exp.unwrap_or(f64::INFINITY), nbf, iat), now)
}

/// The maximum lifetime: `exp - iat`, or without `iat` what is left of the token from
/// now, which only shrinks (so a cached token that passed once passes again). The
/// leeway applies to the second form only, since it compares the issuer's clock with
/// ours; `exp - iat` is one clock's arithmetic.
fn check_lifetime(
    rules: &ClaimRules,
    exp: f64,
    iat: Option<f64>,
    now: f64,
) -> Result<(), ErrorKind> {
    let Some(max) = rules.max_lifetime else {
        return Ok(());
    };
    let too_long = match iat {
        Some(iat) => exp - iat > max,
        None => exp - now > max + rules.leeway,
    };
    if too_long {
        Err(ErrorKind::LifetimeTooLong)
    } else {
        Ok(())
    }
}

/// The time-dependent checks, done at verification and again on every cache hit.
fn check_times(rules: &ClaimRules, times: Times, now: f64) -> Result<(), ErrorKind> {
    let leeway = rules.leeway;
    let (exp, nbf, iat) = times;
    if now >= exp + leeway {
        return Err(ErrorKind::Expired);
    }
    if nbf.is_some_and(|nbf| now + leeway < nbf) {
        return Err(ErrorKind::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now + leeway) {
        return Err(ErrorKind::IssuedInFuture);
    }
    Ok(())
}
