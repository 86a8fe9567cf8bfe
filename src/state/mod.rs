//! State that every replica must see: which single-use tokens were already used (a
//! [`ReplayStore`]), which DPoP proofs were already presented (a [`ProofStore`]), and
//! which tokens or subjects were revoked (a [`RevocationList`]).
//!
//! A JWT stays valid until its `exp`, so "use once" and "revoked now" cannot be read
//! from the token: they need a shared record. Two implementations of each trait ship:
//!
//! - [`MemoryReplayStore`], [`MemoryProofStore`] and [`MemoryRevocationList`]: in the
//!   process, sharded, bounded; right for one replica and for tests;
//! - `RedisReplayStore`, `RedisProofStore` and `RedisRevocationList` (feature `redis`):
//!   on a Redis or Valkey server every replica talks to, through one reconnecting
//!   [`RedisConnection`], each under a key prefix of its own.
//!
//! Proofs and single-use tokens never share a store: proofs are bounded per client key
//! (by default 2 000 live proofs each, see
//! [`DpopOptions::max_live_proofs_per_key`](crate::dpop::DpopOptions::max_live_proofs_per_key)),
//! and a full proof store refuses DPoP requests only (503), so no client's proofs can
//! push single-use tokens into a store failure. The bounds hold per store: per replica in
//! memory, across replicas on Redis. Records allow for clock skew between replicas: each
//! lives one leeway longer than the token or proof it records.
//!
//! Keys never hold a token's text or claim values: a [`StateKey`] is a SHA-256 over the
//! issuer and the `jti` (or `sub`), with a domain tag per use.
//!
//! The layer enables them with
//! [`single_use_tokens`](crate::JwtAuthConfigBuilder::single_use_tokens),
//! [`replay_store`](crate::JwtAuthConfigBuilder::replay_store) and
//! [`revocation_list`](crate::JwtAuthConfigBuilder::revocation_list); a single route asks
//! for single use with [`RequirePermission::single_use`](crate::RequirePermission::single_use)
//! or the `guard::SingleUse` layer. Revocations are recorded through
//! [`Revocations`], from [`JwtAuthConfig::revocations`](crate::JwtAuthConfig::revocations).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::time::{Clock, unix_seconds};

mod memory;
#[cfg(feature = "dpop")]
mod proofs;
#[cfg(feature = "redis")]
mod redis;

pub use memory::{MemoryReplayStore, MemoryRevocationList};
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub use proofs::MemoryProofStore;
#[cfg(all(feature = "redis", feature = "dpop"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "redis", feature = "dpop"))))]
pub use redis::RedisProofStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{RedisConnection, RedisReplayStore, RedisRevocationList};

/// The key of one record: a SHA-256 digest of a domain tag and the values it stands for,
/// so that neither the issuer nor the `jti` or `sub` can be read back from a store.
///
/// Its [`Display`](fmt::Display) form is the digest in base64url (43 characters), the
/// form the Redis stores use after their prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateKey([u8; 32]);

impl StateKey {
    /// The key of one token: its issuer and `jti`.
    #[must_use]
    pub fn token(issuer: &str, jti: &str) -> Self {
        Self::derive(b"tower-jwt-auth/token", &[issuer, jti])
    }

    /// The key of a subject: its issuer and `sub`.
    #[must_use]
    pub fn subject(issuer: &str, sub: &str) -> Self {
        Self::derive(b"tower-jwt-auth/subject", &[issuer, sub])
    }

    /// The key of an API key id (what [`Revocations::revoke_api_key`] revokes): a tag of
    /// its own, so no issuer's subject, whatever the issuer's name, shares it.
    #[must_use]
    pub fn api_key(id: &str) -> Self {
        Self::derive(b"tower-jwt-auth/api-key", &[id])
    }

    /// The key of one DPoP proof: its key's thumbprint and its `jti`.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    #[must_use]
    pub fn proof(jkt: &str, jti: &str) -> Self {
        Self::derive(b"tower-jwt-auth/dpop-proof", &[jkt, jti])
    }

    /// The key of a DPoP client key, by its RFC 7638 thumbprint: what a
    /// [`ProofStore`] counts live proofs under.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    #[must_use]
    pub fn proof_key(jkt: &str) -> Self {
        Self::derive(b"tower-jwt-auth/dpop-key", &[jkt])
    }

    /// A digest over `tag` and each part, each prefixed by its length, so that no two
    /// different lists of parts give the same input.
    fn derive(tag: &[u8], parts: &[&str]) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(tag);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Self(out)
    }

    /// The digest.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 43];
        // 32 bytes are always 43 base64url characters without padding.
        let written = URL_SAFE_NO_PAD
            .encode_slice(self.0, &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..written]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateKey({self})")
    }
}

/// The longest a record is kept: an absurd `exp`, window or leeway is kept this long,
/// which every store accepts (Redis refuses an expiry its clock cannot add).
pub(crate) const LONGEST_RECORD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How long to keep a record whose token or proof is accepted for `seconds` more: at
/// least one second, at most [`LONGEST_RECORD`], and never less than `seconds` within
/// those bounds (a shorter life would let it be accepted again).
pub(crate) fn record_life(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds)
        .unwrap_or(if seconds > 0.0 {
            LONGEST_RECORD
        } else {
            Duration::ZERO
        })
        .clamp(Duration::from_secs(1), LONGEST_RECORD)
}

/// Why a store could not answer. The layer never shows it to clients: a request it
/// stops gets 503 with `Retry-After` (or passes, in [`StoreFailure::Open`] mode).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The command did not complete within the store's timeout.
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    /// A bounded in-memory store is full of entries that have not expired yet. It never
    /// drops a live entry to make room, since that would let a used token work again.
    #[error("the store is full of live entries")]
    Full,
    /// The store refused the command or the connection failed.
    #[error("store error: {0}")]
    Backend(String),
}

type Boxed<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// The answer of a store: ready at once (the in-memory stores, no allocation) or a future
/// for a network round trip.
#[must_use = "a store future does nothing unless awaited"]
pub struct StoreFuture<T>(Inner<T>);

enum Inner<T> {
    Ready(Option<Result<T, StoreError>>),
    Boxed(Boxed<T>),
}

impl<T> StoreFuture<T> {
    /// An answer known without waiting.
    pub fn ready(result: Result<T, StoreError>) -> Self {
        Self(Inner::Ready(Some(result)))
    }

    /// An answer that needs waiting for.
    pub fn new<F>(future: F) -> Self
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        Self(Inner::Boxed(Box::pin(future)))
    }

    /// The answer when it is already known, or the future back.
    pub(crate) fn into_ready(self) -> Result<Result<T, StoreError>, Self> {
        match self.0 {
            Inner::Ready(Some(result)) => Ok(result),
            inner => Err(Self(inner)),
        }
    }
}

/// The answer of a store that answers at once (the in-memory ones), for their tests.
#[cfg(test)]
pub(crate) fn now_or_never<T>(future: StoreFuture<T>) -> Result<T, StoreError> {
    match future.into_ready() {
        Ok(result) => result,
        Err(_) => panic!("the memory store answers at once"),
    }
}

// Nothing inside is pinned structurally: the boxed future is pinned on the heap and the
// ready value is moved out, never borrowed in place.
impl<T> Unpin for StoreFuture<T> {}

impl<T> Future for StoreFuture<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Inner::Ready(result) => Poll::Ready(
                result
                    .take()
                    .unwrap_or(Err(StoreError::Backend("polled after completion".into()))),
            ),
            Inner::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.0 {
            Inner::Ready(_) => "ready",
            Inner::Boxed(_) => "pending",
        };
        f.debug_tuple("StoreFuture").field(&state).finish()
    }
}

/// A shared record of single-use tokens: keys that may be used once.
///
/// `insert_once` must be atomic across every replica that shares the store: of many
/// concurrent calls with one key, exactly one sees `Ok(true)`.
pub trait ReplayStore: Send + Sync + fmt::Debug + 'static {
    /// Records `key` for `ttl` from now. `Ok(true)` when the key was not there (first
    /// use), `Ok(false)` when it was (a replay).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer; the caller decides whether that
    /// refuses the request.
    fn insert_once(&self, key: StateKey, ttl: Duration) -> StoreFuture<bool>;

    /// A [`ProofStore`] on the same backend, for DPoP proofs when none is configured
    /// (so replicas that share this store share proofs too); `None` (the default) leaves
    /// proofs to an in-memory store of each replica.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    fn proof_store(&self) -> Option<Arc<dyn ProofStore>> {
        None
    }
}

impl<T: ReplayStore + ?Sized> ReplayStore for Arc<T> {
    fn insert_once(&self, key: StateKey, ttl: Duration) -> StoreFuture<bool> {
        (**self).insert_once(key, ttl)
    }

    #[cfg(feature = "dpop")]
    fn proof_store(&self) -> Option<Arc<dyn ProofStore>> {
        (**self).proof_store()
    }
}

/// What a [`ProofStore`] says of one DPoP proof.
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofRecord {
    /// Not seen before: recorded now.
    Fresh,
    /// Seen before: a replayed proof.
    Replayed,
    /// The proof's client key already has as many live proofs as it may have; the proof
    /// is not recorded. Only that key's proofs are refused, so one client cannot fill
    /// the store for others.
    KeyOverLimit,
}

/// A shared record of DPoP proofs (RFC 9449 section 11.1), apart from single-use
/// tokens and bounded per client key.
///
/// Proofs are many and client-made: a client holding one DPoP-bound token can send a
/// fresh proof with every request. Kept in a store of their own, they can never push
/// single-use tokens out or into a store failure; counted per client key (the RFC 7638
/// thumbprint of the proof's `jwk`), one client can hold at most `limit` live proofs.
///
/// `record` must be atomic across every replica that shares the store, for the replay
/// check and for the count.
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub trait ProofStore: Send + Sync + fmt::Debug + 'static {
    /// Records the proof `proof` of the client key `client` for `ttl` from now, unless it
    /// was seen ([`ProofRecord::Replayed`]) or `client` already has `limit` live proofs
    /// ([`ProofRecord::KeyOverLimit`]).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer, or is full of live proofs.
    fn record(
        &self,
        client: StateKey,
        proof: StateKey,
        ttl: Duration,
        limit: usize,
    ) -> StoreFuture<ProofRecord>;
}

#[cfg(feature = "dpop")]
impl<T: ProofStore + ?Sized> ProofStore for Arc<T> {
    fn record(
        &self,
        client: StateKey,
        proof: StateKey,
        ttl: Duration,
        limit: usize,
    ) -> StoreFuture<ProofRecord> {
        (**self).record(client, proof, ttl, limit)
    }
}

/// One revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revocation {
    /// One token, by [`StateKey::token`].
    Token(StateKey),
    /// Every token of a subject ([`StateKey::subject`]) issued at or before this Unix
    /// time in milliseconds, and every token of it that has no `iat`.
    Subject(StateKey, u64),
}

/// What a [`RevocationList`] knows about one token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationStatus {
    /// The token itself was revoked.
    pub token: bool,
    /// Its subject was revoked at this Unix time in milliseconds.
    pub subject_since: Option<u64>,
}

impl RevocationStatus {
    /// A status: the token revoked or not, and the instant of its subject's revocation.
    #[must_use]
    pub fn new(token: bool, subject_since: Option<u64>) -> Self {
        Self {
            token,
            subject_since,
        }
    }

    /// Whether a token with this `iat` (Unix seconds) is revoked.
    #[must_use]
    pub fn revokes(&self, iat: Option<f64>) -> bool {
        self.token
            || self
                .subject_since
                .is_some_and(|since| iat.is_none_or(|iat| iat * 1000.0 <= since as f64))
    }
}

/// A shared record of revoked tokens and subjects.
pub trait RevocationList: Send + Sync + fmt::Debug + 'static {
    /// Records a revocation for `ttl` (the revocation retention, which with a revocation
    /// list bounds how long a token may live: the revoking call does not know the
    /// token's `exp`). A later revocation of the same subject replaces
    /// an earlier one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot record it.
    fn revoke(&self, revocation: Revocation, ttl: Duration) -> StoreFuture<()>;

    /// What is recorded for a token (`None` when it has no `jti`) and its subject (`None`
    /// when it has no `sub`).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot answer.
    fn status(
        &self,
        token: Option<StateKey>,
        subject: Option<StateKey>,
    ) -> StoreFuture<RevocationStatus>;
}

impl<T: RevocationList + ?Sized> RevocationList for Arc<T> {
    fn revoke(&self, revocation: Revocation, ttl: Duration) -> StoreFuture<()> {
        (**self).revoke(revocation, ttl)
    }

    fn status(
        &self,
        token: Option<StateKey>,
        subject: Option<StateKey>,
    ) -> StoreFuture<RevocationStatus> {
        (**self).status(token, subject)
    }
}

/// What the layer does when a store cannot answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoreFailure {
    /// Refuse the request with 503 and `Retry-After` (gRPC `UNAVAILABLE`): a used or
    /// revoked token must not pass because a store is down. The default.
    #[default]
    Closed,
    /// Let the request through without the check; each outage is logged once at WARN and
    /// every pass is counted (`jwt_auth_store_fail_open_total`). The checks skipped are
    /// all those the store answers: revocation, single use, and DPoP proof replay (a
    /// proof captured with its token could then be replayed within the proof window).
    /// A full in-memory store counts as one that does not answer.
    Open,
}

/// The admin entry point for revocations, from
/// [`JwtAuthConfig::revocations`](crate::JwtAuthConfig::revocations). Who may call it is
/// the application's decision (an admin route behind its own permission, a CLI, a queue
/// consumer).
///
/// A revocation is visible to the next request on every replica that shares the list,
/// cached tokens included.
#[derive(Clone)]
pub struct Revocations {
    list: Arc<dyn RevocationList>,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
}

impl Revocations {
    pub(crate) fn new(
        list: Arc<dyn RevocationList>,
        clock: Arc<dyn Clock>,
        lifetime: Duration,
    ) -> Self {
        Self {
            list,
            clock,
            lifetime,
        }
    }

    /// Revokes the token with this `jti` from this issuer (the token's `iss` value).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the list cannot record it.
    pub async fn revoke_token(&self, issuer: &str, jti: &str) -> Result<(), StoreError> {
        let key = StateKey::token(issuer, jti);
        self.list
            .revoke(Revocation::Token(key), self.lifetime)
            .await
    }

    /// Revokes every token of this subject from this issuer issued until now, and every
    /// token of it without `iat`. Now is this replica's clock and `iat` the issuer's, so
    /// the check allows for skew between them: tokens dated up to one leeway after the
    /// revocation are refused too.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the list cannot record it.
    pub async fn revoke_subject(&self, issuer: &str, sub: &str) -> Result<(), StoreError> {
        let key = StateKey::subject(issuer, sub);
        let now = unix_seconds(self.clock.now());
        // Whole milliseconds, rounded up: a token issued in the revoking second is caught.
        let at = (now * 1000.0).ceil().max(0.0) as u64;
        self.list
            .revoke(Revocation::Subject(key, at), self.lifetime)
            .await
    }
}

impl Revocations {
    /// Revokes the API key id `id`, on every replica that shares the list: every key of
    /// that id is refused (401 `invalid_token`) from the next request on. Unlike a
    /// token's, a key's revocation is kept as long as a store keeps anything (keys do
    /// not expire by themselves); to bring a principal back, give it a key under a new
    /// id.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the list cannot record it.
    pub async fn revoke_api_key(&self, id: &str) -> Result<(), StoreError> {
        let key = StateKey::api_key(id);
        let now = unix_seconds(self.clock.now());
        let at = (now * 1000.0).ceil().max(0.0) as u64;
        self.list
            .revoke(Revocation::Subject(key, at), LONGEST_RECORD)
            .await
    }
}

impl fmt::Debug for Revocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocations")
            .field("list", &self.list)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_uses_and_parts() {
        assert_ne!(StateKey::token("a", "b"), StateKey::subject("a", "b"));
        assert_ne!(StateKey::api_key("b"), StateKey::subject("", "b"));
        assert_ne!(StateKey::token("ab", "c"), StateKey::token("a", "bc"));
        assert_eq!(StateKey::token("a", "b"), StateKey::token("a", "b"));
        assert_eq!(StateKey::token("a", "b").to_string().len(), 43);
    }

    #[test]
    fn a_record_lives_as_long_as_its_token_within_a_second_and_a_century() {
        assert_eq!(record_life(90.5), Duration::from_secs_f64(90.5));
        assert_eq!(record_life(0.2), Duration::from_secs(1));
        assert_eq!(record_life(-5.0), Duration::from_secs(1));
        assert_eq!(record_life(f64::NAN), Duration::from_secs(1));
        assert_eq!(record_life(1e300), LONGEST_RECORD);
        assert_eq!(record_life(f64::INFINITY), LONGEST_RECORD);
    }

    #[test]
    fn subject_revocation_covers_earlier_and_undated_tokens() {
        let status = RevocationStatus::new(false, Some(10_000));
        assert!(status.revokes(Some(9.0)));
        assert!(status.revokes(Some(10.0)));
        assert!(!status.revokes(Some(10.5)));
        assert!(status.revokes(None));
        assert!(!RevocationStatus::default().revokes(None));
        assert!(RevocationStatus::new(true, None).revokes(Some(1e12)));
    }
}
