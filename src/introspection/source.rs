//! Introspection as a [`Source`] of verified tokens, with its own books: the shape
//! filter, the cache of active answers (typed by the layer that read them, in a
//! [`TokenCache`](crate::cache::TokenCache) of its own), the refusals remembered by the
//! token's digest, one call per token at a time (`introspector.rs`), and the claim
//! checks of an answer (RFC 7662) before the checks every source shares.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::introspector::{self, Answer, Digest, Introspector};
use crate::accept::{self, Provenance};
use crate::error::ErrorKind;
use crate::issuer::Issuer;
use crate::payload::Registered;
use crate::policy::{ClaimRules, Policy};
use crate::record::Accepted;
use crate::source::{Credential, Lookup, Refusal, Source};
use crate::telemetry;
use crate::time::unix_seconds;
use crate::trace::Trace;

/// The key-set generation that cached answers carry: no key set has it.
const GENERATION: u64 = u64::MAX;

/// A call asked for one token: its answer to come, and the token's digest, for
/// remembering a refusal.
pub(crate) struct Asked {
    answer: introspector::Pending,
    digest: Digest,
}

impl Source for Introspector {
    type Wait = Asked;

    fn issuer(self: &Arc<Self>) -> Arc<Issuer> {
        Arc::clone(&self.issuer)
    }

    /// The characters, the shape filter, the cache of active answers, the refusals remembered, then a
    /// call shared with every request for the same token.
    fn lookup<C>(
        self: &Arc<Self>,
        policy: &Policy,
        token: Credential<'_>,
        trace: &mut Trace,
    ) -> Lookup<C, Asked>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let token = match token.check().and_then(|()| token.text()) {
            Ok(text) => text,
            Err(kind) => return Lookup::Refused(kind),
        };
        let bytes = token.as_bytes();
        if !self.fits_shape(token) {
            return Lookup::Refused(ErrorKind::Malformed);
        }
        let now = unix_seconds(policy.claims.clock.now());
        let cache = &self.cache;
        if let Some(hit) =
            accept::cached::<C>(policy, cache, bytes, cache.key(bytes), GENERATION, now)
        {
            telemetry::count_cache(true);
            trace.record(Trace::INTROSPECTED);
            return match hit {
                Ok(verified) => Lookup::Verified(verified),
                Err(kind) => Lookup::Refused(kind),
            };
        }
        // Refusals and calls in flight are keyed by the SHA-256 of the token, computed
        // only once the cache of active answers has missed.
        let digest = introspector::digest(token);
        if let Some(kind) = self.refused(&digest) {
            return Lookup::Refused(kind);
        }
        telemetry::count_cache(false);
        let answer = self.answer(token, digest);
        Lookup::Wait(Asked { answer, digest })
    }

    /// The answer: an active one goes through its own checks and the shared ones, and
    /// is cached; one refused for its claims is remembered as a refusal.
    async fn finish<C>(
        &self,
        policy: &Policy,
        wait: Asked,
        token: &str,
        trace: &mut Trace,
    ) -> Result<Accepted<C>, Refusal>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let body = match wait.answer.await {
            Answer::Active(body) => body,
            Answer::Refused(kind) => return Err(Refusal::Rejected(kind)),
            Answer::Failed => return Err(unavailable()),
        };
        trace.record(Trace::INTROSPECTED);
        let rules = &policy.claims;
        let issuer = &self.issuer;
        let audience_optional = self.audience_optional();
        let own =
            |claims: &Registered<'_>| check_introspected(rules, issuer, claims, audience_optional);
        let provenance = Provenance {
            kid: None,
            kind: crate::api_key::CredentialKind::Introspected,
        };
        match accept::accept::<C>(policy, issuer, &body, own, provenance) {
            Ok(verified) => {
                let now = unix_seconds(rules.clock.now());
                let cache = &self.cache;
                let bytes = token.as_bytes();
                cache.insert(bytes, cache.key(bytes), GENERATION, &verified.record, now);
                Ok(verified)
            }
            Err(kind) => {
                self.refuse(wait.digest, kind);
                Err(Refusal::Rejected(kind))
            }
        }
    }

    fn give_up(&self, _wait: Asked) -> Refusal {
        unavailable()
    }
}

/// No answer (the endpoint failed or was slow, the budget was spent, or the caller
/// cannot wait): 503, never a pass.
fn unavailable() -> Refusal {
    Refusal::Unavailable(
        ErrorKind::IntrospectionUnavailable,
        introspector::RETRY_AFTER,
    )
}

/// The claim checks of an introspection answer: `iss` is the issuer's when present, `aud`
/// names an accepted audience (required unless `audience_optional`); the dates follow,
/// with `exp` optional.
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
    accept::check_dates(rules, claims.exp, claims.nbf, claims.iat)
}
