//! The authentication core: one place, one order, for the tower layer, the tonic
//! interceptor and the public [`Verifier`](crate::Verifier).
//!
//! 1. the token from its source (none: anonymous or 401; ambiguous: 400);
//! 2. the length limit, before anything is decoded;
//! 3. the issuer, by the token's `iss` when several are trusted;
//! 4. that issuer's current keys (none yet: wait for the first load);
//! 5. the verified-token cache, then verification (an unknown `kid`: wait for a refetch);
//! 6. the layer-wide permissions.
//!
//! Steps 1 to 6 run synchronously. Only the two waits of step 4 and 5 are asynchronous;
//! they come back as a [`Pending`] the caller may await (the layer, `verify_async`) or
//! drop (the interceptor, `verify`): the key store was signalled when the wait was
//! created, so dropping it cancels nothing.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Uri};
use serde::de::DeserializeOwned;

use crate::error::ErrorKind;
use crate::issuer::{Issuer, issuer_for};
use crate::jwks::{KeySet, KeysFuture};
use crate::jws::header_kid;
use crate::permission::Requirement;
use crate::policy::Policy;
use crate::telemetry::{self, Identity};
use crate::token::BearerToken;
use crate::verify::{self, Verified};

/// What authentication decided. `T` holds the token: a [`BearerToken`] for the layer,
/// a `&str` for the `Verifier`.
pub(crate) enum Outcome<C, T> {
    /// A verified token with every layer-wide permission, and the issuer that verified it.
    Authenticated(Verified<C>, Arc<Issuer>, T),
    /// No token, and the layer lets such requests through.
    Anonymous,
    /// Refused: 400 or 401 by kind.
    Rejected(ErrorKind),
    /// The issuer's keys have never loaded: 503, retry after this long.
    Unavailable(Duration),
    /// Verified, but without the layer-wide permissions: 403. Who the token names, and
    /// its issuer, for spans and the audit hook.
    Forbidden(Requirement, Option<Arc<Identity>>, Arc<Issuer>),
}

impl<C, T> Outcome<C, T> {
    /// The outcome label of metrics, spans and the audit hook (one of `OUTCOMES`).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Authenticated(..) => "ok",
            Self::Anonymous => "anonymous",
            Self::Rejected(kind) => telemetry::refusal_label(*kind),
            Self::Unavailable(_) => "unavailable",
            Self::Forbidden(..) => "forbidden",
        }
    }

    /// The error of a refusal.
    pub(crate) fn error(&self) -> Option<ErrorKind> {
        match self {
            Self::Authenticated(..) | Self::Anonymous => None,
            Self::Rejected(kind) => Some(*kind),
            Self::Unavailable(_) => Some(ErrorKind::KeysUnavailable),
            Self::Forbidden(..) => Some(ErrorKind::InsufficientPermission),
        }
    }

    /// The issuer and who the token names, for a verified token.
    pub(crate) fn identity(&self) -> (Option<&Issuer>, Option<&Identity>) {
        match self {
            Self::Authenticated(verified, issuer, _) => {
                (Some(&**issuer), verified.identity.as_deref())
            }
            Self::Forbidden(_, identity, issuer) => (Some(&**issuer), identity.as_deref()),
            _ => (None, None),
        }
    }
}

/// The synchronous part's result: an outcome, or a wait for keys.
pub(crate) enum Step<C, T> {
    Done(Outcome<C, T>),
    Wait(Pending<T>),
}

/// A wait for keys (the first load, or a refetch for an unknown `kid`), and what to
/// finish with once they are there.
pub(crate) struct Pending<T> {
    issuer: Arc<Issuer>,
    keys: KeysFuture,
    /// The refusal when the wait brings no keys.
    missing: ErrorKind,
    token: T,
}

/// Steps 1 to 6 for a request's head.
pub(crate) fn authenticate<C>(
    policy: &Policy,
    headers: &HeaderMap,
    uri: &Uri,
    optional: bool,
) -> Step<C, BearerToken>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    match policy.token.source.extract(headers, uri) {
        Ok(Some(token)) => authenticate_token(policy, token),
        Ok(None) if optional => Step::Done(Outcome::Anonymous),
        Ok(None) => Step::Done(Outcome::Rejected(ErrorKind::MissingToken)),
        Err(kind) => Step::Done(Outcome::Rejected(kind)),
    }
}

/// Steps 2 to 6 for a token already found.
pub(crate) fn authenticate_token<C, T>(policy: &Policy, token: T) -> Step<C, T>
where
    C: DeserializeOwned + Send + Sync + 'static,
    T: AsRef<str>,
{
    let text = token.as_ref();
    if text.len() > policy.token.max_len {
        return Step::Done(Outcome::Rejected(ErrorKind::TokenTooLong));
    }
    let issuer = match issuer_for(&policy.issuers, text) {
        Ok(issuer) => Arc::clone(issuer),
        Err(kind) => return Step::Done(Outcome::Rejected(kind)),
    };
    let Some(keys) = issuer.store.current() else {
        let keys = issuer.store.wait_for_keys();
        return Step::Wait(Pending {
            issuer,
            keys,
            missing: ErrorKind::KeysUnavailable,
            token,
        });
    };
    match timed_verify::<C>(policy, &issuer, &keys, text) {
        Ok(verified) => Step::Done(admit(policy, verified, issuer, token)),
        Err(ErrorKind::UnknownKey) => match header_kid(text) {
            Some(kid) => {
                // The store is signalled here, before anything awaits.
                let keys = issuer.store.refetch_for_kid(&kid);
                Step::Wait(Pending {
                    issuer,
                    keys,
                    missing: ErrorKind::UnknownKey,
                    token,
                })
            }
            None => Step::Done(Outcome::Rejected(ErrorKind::UnknownKey)),
        },
        Err(kind) => Step::Done(Outcome::Rejected(kind)),
    }
}

impl<T: AsRef<str>> Pending<T> {
    /// Waits for the keys (bounded by the store) and finishes steps 5 and 6.
    pub(crate) async fn finish<C>(self, policy: &Policy) -> Outcome<C, T>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let Self {
            issuer,
            keys,
            missing,
            token,
        } = self;
        match keys.await {
            Some(keys) => match timed_verify::<C>(policy, &issuer, &keys, token.as_ref()) {
                Ok(verified) => admit(policy, verified, issuer, token),
                Err(kind) => Outcome::Rejected(kind),
            },
            None => missing_keys(missing, &issuer),
        }
    }

    /// The outcome without waiting, for callers that cannot wait (the interceptor, the
    /// synchronous `Verifier::verify`). The store was already signalled.
    pub(crate) fn give_up<C>(self) -> Outcome<C, T> {
        missing_keys(self.missing, &self.issuer)
    }
}

/// Step 5, timed for `jwt_auth_verify_seconds`; who the token names is kept only when a
/// span or the audit hook will read it.
fn timed_verify<C>(
    policy: &Policy,
    issuer: &Issuer,
    keys: &KeySet,
    token: &str,
) -> Result<Verified<C>, ErrorKind>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    let identity = policy.telemetry.audit.is_some()
        || tracing::enabled!(target: telemetry::SPAN_TARGET, tracing::Level::DEBUG);
    #[cfg(feature = "metrics")]
    let started = std::time::Instant::now();
    let result = verify::verify::<C>(policy, issuer, keys, token, identity);
    #[cfg(feature = "metrics")]
    telemetry::record_verify(started.elapsed());
    result
}

fn missing_keys<C, T>(missing: ErrorKind, issuer: &Issuer) -> Outcome<C, T> {
    match missing {
        ErrorKind::KeysUnavailable => Outcome::Unavailable(issuer.store.retry_after()),
        kind => Outcome::Rejected(kind),
    }
}

/// Step 6: the layer-wide permissions.
fn admit<C, T>(
    policy: &Policy,
    verified: Verified<C>,
    issuer: Arc<Issuer>,
    token: T,
) -> Outcome<C, T> {
    match &policy.permissions.required {
        Some(required) if !required.is_met(&verified.permissions) => {
            Outcome::Forbidden(required.clone(), verified.identity, issuer)
        }
        _ => Outcome::Authenticated(verified, issuer, token),
    }
}
