//! The three sources of verified credentials behind one interface the core calls: JWT
//! verification with a trusted issuer's keys (`verify.rs`, [`Source`] for
//! [`Issuer`]), token introspection (`introspection/source.rs`, [`Source`] for the
//! introspector) and the configured API keys (`api_key/source.rs`). Given a token's text, a source answers with a [`Lookup`]: a verified
//! token (from its cache, or fresh), a wait for the network, or a refusal. Each source
//! keeps its own cache and books and runs its own claim checks before the shared ones
//! (`accept.rs`); the core chooses the source and sequences the steps around it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::ErrorKind;
#[cfg(feature = "introspection")]
use crate::issuer::Issuer;
use crate::policy::Policy;
use crate::record::Accepted;
use crate::trace::Trace;

/// A source's answer without waiting.
pub(crate) enum Lookup<C, W> {
    /// Verified: found in the source's cache (its dates checked again), or fresh.
    Verified(Accepted<C>),
    /// The answer needs the network (the issuer's keys, the authorization server); the
    /// source was signalled already, so dropping the wait cancels nothing.
    Wait(W),
    /// Refused: 400 or 401 by kind.
    Refused(ErrorKind),
}

impl<C, W> Lookup<C, W> {
    /// The same answer, with the wait turned into what the caller keeps.
    pub(crate) fn map_wait<V>(self, wrap: impl FnOnce(W) -> V) -> Lookup<C, V> {
        match self {
            Self::Verified(verified) => Lookup::Verified(verified),
            Self::Wait(wait) => Lookup::Wait(wrap(wait)),
            Self::Refused(kind) => Lookup::Refused(kind),
        }
    }
}

/// Why a wait brought no verified token.
pub(crate) enum Refusal {
    /// Refused: 400 or 401 by kind.
    Rejected(ErrorKind),
    /// Undecided for now: 503, retry after this long.
    Unavailable(ErrorKind, Duration),
}

/// A source of verified tokens.
pub(crate) trait Source {
    /// What a wait for the network holds until it is over.
    type Wait: Send + 'static;

    /// The trusted issuer whose tokens this source verifies.
    #[cfg(feature = "introspection")]
    fn issuer(self: &Arc<Self>) -> Arc<Issuer>;

    /// The answer for `token` as far as it goes without waiting; the steps the source
    /// runs are recorded in `trace`.
    fn lookup<C>(
        self: &Arc<Self>,
        policy: &Policy,
        token: &str,
        trace: &mut Trace,
    ) -> Lookup<C, Self::Wait>
    where
        C: DeserializeOwned + Send + Sync + 'static;

    /// Waits (bounded by the source) and answers once: a wait is never followed by
    /// another.
    fn finish<C>(
        &self,
        policy: &Policy,
        wait: Self::Wait,
        token: &str,
        trace: &mut Trace,
    ) -> impl Future<Output = Result<Accepted<C>, Refusal>> + Send
    where
        C: DeserializeOwned + Send + Sync + 'static;

    /// The answer without waiting, for callers that cannot wait (the interceptor, the
    /// synchronous `Verifier::verify`).
    fn give_up(&self, wait: Self::Wait) -> Refusal;
}
