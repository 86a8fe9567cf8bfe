//! The three sources of verified credentials behind one interface the core calls: JWT
//! verification with a trusted issuer's keys (`verify.rs`, [`Source`] for
//! [`Issuer`]), token introspection (`introspection/source.rs`, [`Source`] for the
//! introspector) and the configured API keys (`api_key/source.rs`). Given a token (a
//! [`Credential`]: its bytes, and its text when the source needs it), a source answers with a [`Lookup`]: a verified
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
use crate::token::is_b64token;
use crate::trace::Trace;

/// A credential as a source gets it: its bytes, and its text on demand. An
/// `Authorization` header's token, when it
/// is the only source, comes with RFC 6750's character check still to run
/// ([`BearerToken::characters_unchecked`]): each source runs it before anything that is
/// not pure (a state or network step, a wait, a count in the metrics), and in place of
/// a pure step's refusal. The JWT source skips it for a token its cache or verification
/// accepts, since every byte of such a token was decoded as base64url or split at as a
/// dot, all of them `b64token` characters; the check was a quarter of a cache hit's
/// instructions. One step runs before it: reading the key store's current keys, which
/// for a remote store that was built outside a runtime may start its refresher (as any
/// token would).
///
/// [`BearerToken::characters_unchecked`]: crate::token::BearerToken::characters_unchecked
#[derive(Clone, Copy)]
pub(crate) struct Credential<'a> {
    bytes: &'a [u8],
    unchecked: bool,
}

impl<'a> Credential<'a> {
    /// `bytes`, with the character check still to run when `unchecked` (a credential
    /// that is checked is UTF-8).
    pub(crate) fn new(bytes: &'a [u8], unchecked: bool) -> Self {
        Self { bytes, unchecked }
    }

    /// A credential whose characters need no check (checked at extraction, or a
    /// caller's own text that never had this check).
    pub(crate) fn checked(text: &'a str) -> Self {
        Self::new(text.as_bytes(), false)
    }

    /// The credential's bytes: what the caches hash and compare and what verification
    /// decodes, so that neither needs a UTF-8 check of the token.
    pub(crate) fn bytes(self) -> &'a [u8] {
        self.bytes
    }

    /// The credential as text. Bytes that are not UTF-8 are never a `b64token`, and a
    /// checked credential is UTF-8: they are refused as the character check refuses.
    ///
    /// # Errors
    ///
    /// `MalformedCredentials` for bytes that are not UTF-8.
    pub(crate) fn text(self) -> Result<&'a str, ErrorKind> {
        std::str::from_utf8(self.bytes).map_err(|_| ErrorKind::MalformedCredentials)
    }

    /// 400 for a credential outside RFC 6750's `b64token`, when the check is still to run.
    pub(crate) fn check(self) -> Result<(), ErrorKind> {
        if self.unchecked && !is_b64token(self.bytes) {
            Err(ErrorKind::MalformedCredentials)
        } else {
            Ok(())
        }
    }

    /// A pure step's refusal, unless the characters refuse the credential first.
    pub(crate) fn refusal(self, kind: ErrorKind) -> ErrorKind {
        self.check().err().unwrap_or(kind)
    }
}

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
    /// runs are recorded in `trace`. The token's characters ([`Credential::check`]) are
    /// checked before anything that is not pure, and refuse it in place of a pure
    /// step's refusal.
    fn lookup<C>(
        self: &Arc<Self>,
        policy: &Policy,
        token: Credential<'_>,
        trace: &mut Trace,
    ) -> Lookup<C, Self::Wait>
    where
        C: DeserializeOwned + Send + Sync + 'static;

    /// Waits (bounded by the source) and answers once: a wait is never followed by
    /// another. The lookup that waited checked `token`'s characters.
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
