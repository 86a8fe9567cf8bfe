//! JWT verification as a [`Source`] of verified tokens: a trusted issuer's current keys
//! (or a wait for them: the first load, a refetch for an unknown `kid`), the
//! verified-token cache in front, then header checks, key selection, signature, and the
//! JWT's own claim checks before the checks every source shares (`accept.rs`).
//!
//! Order matters for safety: the header is judged (algorithm allow-list, `crit`, `typ`)
//! and the key chosen before the signature is checked, and the payload is parsed only
//! once the signature covers it, so attacker-controlled JSON beyond the small header is
//! never read from an unauthenticated token (the one exception, the `iss` peek that
//! picks the issuer among several, reads that single member and trusts nothing).

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::accept::{self, Provenance};
use crate::algorithm::Algorithm;
use crate::error::ErrorKind;
use crate::issuer::Issuer;
use crate::jwks::{KeySet, KeysFuture};
use crate::jws::{Header, b64_into, header_kid, json_object, segments, with_scratch};
use crate::payload::Registered;
use crate::policy::{ClaimRules, Policy, TypPolicy};
use crate::record::Accepted;
use crate::source::{Credential, Lookup, Refusal, Source};
use crate::telemetry;
use crate::time::unix_seconds;
use crate::trace::Trace;

/// A wait for the issuer's keys; `missing` is the refusal when it brings none.
pub(crate) struct KeyWait {
    keys: KeysFuture,
    missing: ErrorKind,
}

impl Source for Issuer {
    type Wait = KeyWait;

    #[cfg(feature = "introspection")]
    fn issuer(self: &Arc<Self>) -> Arc<Issuer> {
        Arc::clone(self)
    }

    /// The current keys (none yet: the characters, then wait for the first load), the
    /// cache, verification; an unknown `kid` waits for one refetch. The characters are
    /// checked only when the cache and verification do not accept the token.
    fn lookup<C>(
        self: &Arc<Self>,
        policy: &Policy,
        token: Credential<'_>,
        trace: &mut Trace,
    ) -> Lookup<C, KeyWait>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let Some(keys) = self.store.current() else {
            if let Err(kind) = token.check() {
                return Lookup::Refused(kind);
            }
            return Lookup::Wait(KeyWait {
                keys: self.store.wait_for_keys(),
                missing: ErrorKind::KeysUnavailable,
            });
        };
        match timed(|| verify::<C>(policy, self, &keys, token)) {
            Ok(verified) => {
                trace.record(Trace::VERIFIED);
                Lookup::Verified(verified)
            }
            Err(ErrorKind::UnknownKey) => match token.text().ok().and_then(header_kid) {
                // The store is signalled here, before anything awaits.
                Some(kid) => Lookup::Wait(KeyWait {
                    keys: self.store.refetch_for_kid(&kid),
                    missing: ErrorKind::UnknownKey,
                }),
                None => Lookup::Refused(ErrorKind::UnknownKey),
            },
            Err(kind) => Lookup::Refused(kind),
        }
    }

    /// Verification with the keys the wait brought; a `kid` still unknown is refused.
    async fn finish<C>(
        &self,
        policy: &Policy,
        wait: KeyWait,
        token: &str,
        trace: &mut Trace,
    ) -> Result<Accepted<C>, Refusal>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let KeyWait { keys, missing } = wait;
        let Some(keys) = keys.await else {
            return Err(self.missing_keys(missing));
        };
        let token = Credential::checked(token);
        let verified =
            timed(|| verify::<C>(policy, self, &keys, token)).map_err(Refusal::Rejected)?;
        trace.record(Trace::VERIFIED);
        Ok(verified)
    }

    fn give_up(&self, wait: KeyWait) -> Refusal {
        self.missing_keys(wait.missing)
    }
}

impl Issuer {
    /// The refusal when a wait for keys brings none: 503 while the keys have never
    /// loaded, else the refusal the wait was for.
    fn missing_keys(&self, missing: ErrorKind) -> Refusal {
        match missing {
            ErrorKind::KeysUnavailable => {
                Refusal::Unavailable(ErrorKind::KeysUnavailable, self.store.retry_after())
            }
            kind => Refusal::Rejected(kind),
        }
    }
}

/// Runs a verification, timed for `jwt_auth_verify_seconds` unless the credential's
/// characters refused it: that refusal is the character check's, as if it had come
/// before verification, and is not timed as one.
fn timed<R>(verification: impl FnOnce() -> Result<R, ErrorKind>) -> Result<R, ErrorKind> {
    #[cfg(feature = "metrics")]
    let started = std::time::Instant::now();
    let result = verification();
    #[cfg(feature = "metrics")]
    if reached(&result) {
        telemetry::record_verify(started.elapsed());
    }
    result
}

/// Whether a credential reached the cache and verification: every one but those its
/// characters refused ([`Credential::check`], the one source of `MalformedCredentials`
/// here).
fn reached<R>(result: &Result<R, ErrorKind>) -> bool {
    !matches!(result, Err(ErrorKind::MalformedCredentials))
}

/// Verifies `token` with a key set of `issuer`, through the verified-token cache when one
/// is configured. The caller has checked the length limit and chosen the issuer.
fn verify<C>(
    policy: &Policy,
    issuer: &Issuer,
    keys: &KeySet,
    credential: Credential<'_>,
) -> Result<Accepted<C>, ErrorKind>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    // Verification is pure: the characters are checked after it, and only when it
    // refuses (see `Credential`). Both the cache and verification read bytes, so
    // neither needs the token's UTF-8 check: a token they accept is ASCII, every byte
    // strict base64url or one of its two dots.
    let fresh = || {
        verify_uncached::<C>(policy, issuer, keys, credential.bytes())
            .map_err(|kind| credential.refusal(kind))
    };
    let Some(cache) = &policy.cache else {
        return fresh();
    };
    let token = credential.bytes();
    let key = cache.key(token);
    let now = unix_seconds(policy.claims.clock.now());
    if let Some(hit) = accept::cached(policy, cache, token, key, keys.generation(), now) {
        telemetry::count_cache(true);
        return hit;
    }
    let verified = fresh();
    if reached(&verified) {
        telemetry::count_cache(false);
    }
    let verified = verified?;
    cache.insert(token, key, keys.generation(), &verified.record, now);
    Ok(verified)
}

fn verify_uncached<C: DeserializeOwned + Send + Sync + 'static>(
    policy: &Policy,
    issuer: &Issuer,
    keys: &KeySet,
    token: &[u8],
) -> Result<Accepted<C>, ErrorKind> {
    let rules = &policy.claims;
    let (header_b64, payload_b64, signature_b64) = segments(token)?;

    // Decoded into the thread's scratch buffer: a header, a signature (512 bytes for
    // RSA-4096) and the payload of a common access token fit, so these allocate nothing.
    with_scratch(|buf| {
        let (header_buf, rest) = buf.split_at_mut(512);
        let (signature_buf, payload_buf) = rest.split_at_mut(512);
        let (mut header_spill, mut signature_spill, mut payload_spill) =
            (Vec::new(), Vec::new(), Vec::new());
        let header_json = b64_into(header_b64, header_buf, &mut header_spill)?;
        // Any header the parser refuses, a duplicate member included, is malformed.
        let header: Header<'_> = match crate::plain::header(header_json) {
            Some(header) => header,
            None => json_object(header_json).map_err(|_| ErrorKind::Malformed)?,
        };
        let alg = Algorithm::from_header(&header.alg.0).ok_or(ErrorKind::UnsupportedAlgorithm)?;
        if !issuer.algorithms.contains(&alg) {
            return Err(ErrorKind::AlgorithmNotAllowed);
        }
        if header.crit {
            return Err(ErrorKind::CriticalHeader);
        }
        check_typ(rules.typ, header.typ.as_ref().map(|t| t.0.as_ref()))?;

        let kid = header.kid.as_ref().map(|k| k.0.as_ref());
        let key = keys.select(kid, alg)?;
        let signature = b64_into(signature_b64, signature_buf, &mut signature_spill)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(alg, signing_input, signature) {
            return Err(ErrorKind::InvalidSignature);
        }

        let payload = b64_into(payload_b64, payload_buf, &mut payload_spill)?;
        let own = |claims: &Registered<'_>| {
            check_claims(rules, issuer, claims)?;
            check_key_issuer(key.issuer(), claims)
        };
        let provenance = Provenance {
            kid,
            kind: crate::api_key::CredentialKind::Jwt,
        };
        accept::accept(policy, issuer, payload, own, provenance)
    })
}

/// `iss` must be the issuer whose keys verified the signature, `aud` one of that
/// issuer's audiences, and `exp` present; the dates follow.
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
    accept::check_dates(rules, Some(exp), claims.nbf, claims.iat)
}

/// The issuer the verifying key names, if any: Entra publishes, per key, the issuer its
/// tokens must carry; for the common endpoint it is a template completed with the
/// token's tenant id.
fn check_key_issuer(template: Option<&str>, claims: &Registered<'_>) -> Result<(), ErrorKind> {
    let Some(template) = template else {
        return Ok(());
    };
    let tid = claims.tid.as_ref().map_or("", |t| t.0.as_ref());
    let expected = template.replace("{tenantid}", tid);
    if claims.iss.as_ref().is_none_or(|iss| *iss.0 != *expected) {
        return Err(ErrorKind::InvalidIssuer);
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
