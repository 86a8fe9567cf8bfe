//! Verification of one token with one issuer's key set: header checks, key selection,
//! signature, claim checks, and the verified-token cache in front of them.
//!
//! Order matters for safety: the header is judged (algorithm allow-list, `crit`, `typ`)
//! and the key chosen before the signature is checked, and the payload is parsed only
//! once the signature covers it, so attacker-controlled JSON beyond the small header is
//! never read from an unauthenticated token (the one exception, the `iss` peek that
//! picks the issuer among several, reads that single member and trusts nothing).

use std::any::Any;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::algorithm::Algorithm;
use crate::binding::Binding;
use crate::cache::{Key, TokenCache};
use crate::error::ErrorKind;
use crate::issuer::Issuer;
use crate::jwks::KeySet;
use crate::jws::{Header, b64_into, json_object, with_scratch};
use crate::payload::{self, Registered};
use crate::permission;
use crate::policy::{ClaimRules, Policy, TypPolicy};
use crate::record::{Times, TokenRecord, Verified};
use crate::telemetry::{self, Identity};
use crate::time::unix_seconds;
use crate::tracking::Tracked;

/// Verifies `token` with a key set of `issuer`, through the verified-token cache when one
/// is configured. The caller has checked the length limit and chosen the issuer;
/// `identity` says whether to keep who the token names.
pub(crate) fn verify<C>(
    policy: &Policy,
    issuer: &Issuer,
    keys: &KeySet,
    token: &str,
    identity: bool,
) -> Result<Verified<C>, ErrorKind>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    let Some(cache) = &policy.cache else {
        return verify_uncached(policy, issuer, keys, token, identity);
    };
    let key = cache.key(token);
    let now = unix_seconds(policy.claims.clock.now());
    if let Some(hit) = cached(policy, cache, token, key, keys.generation(), now) {
        telemetry::count_cache(true);
        return hit;
    }
    telemetry::count_cache(false);
    let verified = verify_uncached::<C>(policy, issuer, keys, token, identity)?;
    remember(cache, token, key, keys.generation(), &verified, now);
    Ok(verified)
}

/// A cache entry of this generation for `C`, its dates checked again at `now`.
pub(crate) fn cached<C>(
    policy: &Policy,
    cache: &TokenCache,
    token: &str,
    key: Key,
    generation: u64,
    now: f64,
) -> Option<Result<Verified<C>, ErrorKind>>
where
    C: Send + Sync + 'static,
{
    let verified = Verified::from_record(cache.get(token, key, generation, now)?)?;
    Some(check_times(&policy.claims, verified.record.times, now).map(|()| verified))
}

/// Keeps a verified token's record.
pub(crate) fn remember<C>(
    cache: &TokenCache,
    token: &str,
    key: Key,
    generation: u64,
    verified: &Verified<C>,
    now: f64,
) {
    cache.insert(token, key, generation, &verified.record, now);
}

fn verify_uncached<C: DeserializeOwned + Send + Sync + 'static>(
    policy: &Policy,
    issuer: &Issuer,
    keys: &KeySet,
    token: &str,
    identity: bool,
) -> Result<Verified<C>, ErrorKind> {
    let rules = &policy.claims;
    let (header_b64, rest) = token.split_once('.').ok_or(ErrorKind::Malformed)?;
    let (payload_b64, signature_b64) = rest.split_once('.').ok_or(ErrorKind::Malformed)?;
    if signature_b64.contains('.') {
        // Five segments is a JWE; encrypted tokens are not accepted.
        return Err(ErrorKind::Malformed);
    }

    // Decoded into the thread's scratch buffer: a header, a signature (512 bytes for
    // RSA-4096) and the payload of a common access token fit, so these allocate nothing.
    with_scratch(|buf| {
        let (header_buf, rest) = buf.split_at_mut(512);
        let (signature_buf, payload_buf) = rest.split_at_mut(512);
        let (mut header_spill, mut signature_spill, mut payload_spill) =
            (Vec::new(), Vec::new(), Vec::new());
        let header_json = b64_into(header_b64, header_buf, &mut header_spill)?;
        // Any header the parser refuses, a duplicate member included, is malformed.
        let header: Header<'_> = json_object(header_json).map_err(|_| ErrorKind::Malformed)?;
        let alg = Algorithm::from_header(&header.alg.0).ok_or(ErrorKind::UnsupportedAlgorithm)?;
        if !issuer.algorithms.contains(&alg) {
            return Err(ErrorKind::AlgorithmNotAllowed);
        }
        if header.crit {
            return Err(ErrorKind::CriticalHeader);
        }
        check_typ(rules.typ, header.typ.as_ref().map(|t| t.0.as_ref()))?;

        let key = keys.select(header.kid.as_ref().map(|k| k.0.as_ref()), alg)?;
        let signature = b64_into(signature_b64, signature_buf, &mut signature_spill)?;
        let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(alg, signing_input, signature) {
            return Err(ErrorKind::InvalidSignature);
        }

        let payload = b64_into(payload_b64, payload_buf, &mut payload_spill)?;
        let origin = Origin::Jwt {
            key_issuer: key.issuer(),
            kid: header.kid.as_ref().map(|k| k.0.as_ref()),
        };
        accept_payload(policy, issuer, payload, origin, identity)
    })
}

/// Where a payload comes from, for the checks that differ.
#[derive(Clone, Copy)]
pub(crate) enum Origin<'a> {
    /// A signed token: `iss` and `exp` required; the key's `issuer` template, if any.
    Jwt {
        key_issuer: Option<&'a str>,
        kid: Option<&'a str>,
    },
    /// An introspection answer (RFC 7662): `iss` checked when present, `exp` optional,
    /// `aud` required unless `audience_optional`.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    Introspection { audience_optional: bool },
}

/// The checks on a payload whose origin is established (a verified signature, or the
/// issuer's introspection endpoint), and the [`Verified`] they give.
pub(crate) fn accept_payload<C: DeserializeOwned + Send + Sync + 'static>(
    policy: &Policy,
    issuer: &Issuer,
    payload: &[u8],
    origin: Origin<'_>,
    identity: bool,
) -> Result<Verified<C>, ErrorKind> {
    let rules = &policy.claims;
    let capture = &policy.permissions.capture;
    let (claims, registered) = payload::parse::<C>(payload, !rules.required.is_empty(), capture)?;
    let (key_issuer, kid, kept) = match origin {
        Origin::Jwt { key_issuer, kid } => {
            check_claims(rules, issuer, &registered)?;
            (key_issuer, kid, None)
        }
        Origin::Introspection { audience_optional } => {
            check_introspected(rules, issuer, &registered, audience_optional)?;
            (None, None, Some(Box::from(payload)))
        }
    };
    if let Some(template) = key_issuer {
        // Entra publishes, per key, the issuer its tokens must carry; for the common
        // endpoint it is a template completed with the token's tenant id.
        let tid = registered.tid.as_ref().map_or("", |t| t.0.as_ref());
        let expected = template.replace("{tenantid}", tid);
        if registered
            .iss
            .as_ref()
            .is_none_or(|iss| *iss.0 != *expected)
        {
            return Err(ErrorKind::InvalidIssuer);
        }
    }
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
    let forwarded = policy.forwarding.values(&registered.captured);
    let permissions = permission::collect(&policy.permissions.paths, capture, &registered.captured);
    // An introspected token without `exp` lives as long as the cache keeps it.
    let times = (
        registered.exp.unwrap_or(f64::INFINITY),
        registered.nbf,
        registered.iat,
    );
    let text = |t: &Option<crate::payload::Text<'_>>| t.as_ref().map(|t| t.0.as_ref().into());
    let identity = identity.then(|| Identity {
        kid: kid.map(Into::into),
        subject: text(&registered.sub),
        client_id: text(&registered.client_id).or_else(|| text(&registered.azp)),
    });
    let tracked = policy.state.tracks().then(|| {
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
    let claims = Arc::new(claims);
    let record = TokenRecord {
        claims: Arc::clone(&claims) as Arc<dyn Any + Send + Sync>,
        permissions,
        times,
        payload_len: payload.len(),
        identity,
        tracked,
        forwarded,
        binding: registered.cnf.map(Binding::parse),
        payload: kept,
    };
    Ok(Verified {
        claims,
        record: Arc::new(record),
    })
}

/// `iss` must be the issuer whose keys verified the signature, and `aud` one of that
/// issuer's audiences.
fn check_claims(
    rules: &ClaimRules,
    issuer: &Issuer,
    claims: &Registered<'_>,
) -> Result<(), ErrorKind> {
    let iss = claims.iss.as_ref().ok_or(ErrorKind::MissingClaim)?;
    if !issuer.matcher.matches(&iss.0) {
        return Err(ErrorKind::InvalidIssuer);
    }
    if !issuer.audiences.is_empty() {
        let aud = claims.aud.as_ref().ok_or(ErrorKind::MissingClaim)?;
        if !issuer.accepts_audience(aud) {
            return Err(ErrorKind::InvalidAudience);
        }
    }
    let exp = claims.exp.ok_or(ErrorKind::MissingClaim)?;
    for date in [Some(exp), claims.nbf, claims.iat].into_iter().flatten() {
        if date < 0.0 {
            return Err(ErrorKind::InvalidClaim);
        }
    }
    let now = unix_seconds(rules.clock.now());
    check_lifetime(rules, exp, claims.iat, now)?;
    check_times(rules, (exp, claims.nbf, claims.iat), now)
}

/// The claim checks of an introspection answer: `iss` is the issuer's when present, `aud`
/// names an accepted audience (required unless `audience_optional`), the dates hold.
fn check_introspected(
    rules: &ClaimRules,
    issuer: &Issuer,
    claims: &Registered<'_>,
    audience_optional: bool,
) -> Result<(), ErrorKind> {
    if let Some(iss) = &claims.iss
        && !issuer.matcher.matches(&iss.0)
    {
        return Err(ErrorKind::InvalidIssuer);
    }
    if !issuer.audiences.is_empty() {
        match &claims.aud {
            Some(aud) if !issuer.accepts_audience(aud) => {
                return Err(ErrorKind::InvalidAudience);
            }
            None if !audience_optional => return Err(ErrorKind::MissingClaim),
            _ => {}
        }
    }
    for date in [claims.exp, claims.nbf, claims.iat].into_iter().flatten() {
        if date < 0.0 {
            return Err(ErrorKind::InvalidClaim);
        }
    }
    let now = unix_seconds(rules.clock.now());
    if let Some(exp) = claims.exp {
        check_lifetime(rules, exp, claims.iat, now)?;
    }
    check_times(
        rules,
        (claims.exp.unwrap_or(f64::INFINITY), claims.nbf, claims.iat),
        now,
    )
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

fn check_typ(policy: TypPolicy, typ: Option<&str>) -> Result<(), ErrorKind> {
    let Some(typ) = typ else {
        return match policy {
            TypPolicy::Lenient => Ok(()),
            TypPolicy::AccessToken => Err(ErrorKind::InvalidType),
        };
    };
    // RFC 7515 section 4.1.9: the `application/` prefix may be omitted, and media types
    // compare case-insensitively.
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    let ok = bare.eq_ignore_ascii_case("at+jwt")
        || (policy == TypPolicy::Lenient && bare.eq_ignore_ascii_case("jwt"));
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::InvalidType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_policy() {
        let lenient = TypPolicy::Lenient;
        assert!(check_typ(lenient, None).is_ok());
        assert!(check_typ(lenient, Some("JWT")).is_ok());
        assert!(check_typ(lenient, Some("jwt")).is_ok());
        assert!(check_typ(lenient, Some("application/at+JWT")).is_ok());
        assert!(check_typ(lenient, Some("dpop+jwt")).is_err());
        assert!(check_typ(lenient, Some("secevent+jwt")).is_err());
        let strict = TypPolicy::AccessToken;
        assert!(check_typ(strict, None).is_err());
        assert!(check_typ(strict, Some("JWT")).is_err());
        assert!(check_typ(strict, Some("at+jwt")).is_ok());
    }
}
