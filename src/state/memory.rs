//! The in-process stores: sharded hash maps with an entry bound, for one replica and
//! for tests.
//!
//! Each shard has its own lock, held for one map operation. The shard is picked by a
//! hash seeded per store: keys are digests of what clients choose (a DPoP proof's
//! `jti`), and an unkeyed pick would let a client aim every key at one shard and fill
//! it sixteen times sooner. Expired entries are swept from
//! a shard when its earliest expiry has passed, so the sweep runs only when it frees
//! something. A shard full of live entries refuses new ones ([`StoreError::Full`]): the
//! layer then answers as for an unavailable store, never by forgetting a live entry.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{
    ProofRecord, ProofStore, ReplayStore, Revocation, RevocationList, RevocationStatus, StateKey,
    StoreError, StoreFuture,
};
use crate::time::{Clock, SystemClock, unix_seconds};

const SHARDS: usize = 16;

/// The entries of one shard, and the earliest time one of them expires.
struct Shard<V> {
    entries: HashMap<StateKey, (f64, V)>,
    earliest: f64,
}

/// Entries with an expiry (Unix seconds), bounded in number.
struct Shards<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    per_shard: usize,
    clock: Arc<dyn Clock>,
    /// Picks a key's shard; seeded per store.
    picker: foldhash::quality::SeedableRandomState,
}

impl<V: Copy> Shards<V> {
    fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        entries: HashMap::new(),
                        earliest: f64::INFINITY,
                    })
                })
                .collect(),
            per_shard: max_entries.div_ceil(SHARDS).max(1),
            clock: Arc::new(SystemClock),
            picker: crate::seeded::random_state(),
        }
    }

    fn shard(&self, key: &StateKey) -> std::sync::MutexGuard<'_, Shard<V>> {
        // A poisoned shard only means a panic elsewhere; the map itself is intact.
        let hash = self.picker.hash_one(key.as_bytes());
        self.shards[usize::try_from(hash >> 32).unwrap_or_default() % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> f64 {
        unix_seconds(self.clock.now())
    }

    /// Inserts or updates `key` with `update(previous live value)`; `Ok(previous)`.
    fn upsert(
        &self,
        key: StateKey,
        ttl: Duration,
        update: impl FnOnce(Option<V>) -> Option<V>,
    ) -> Result<Option<V>, StoreError> {
        let now = self.now();
        let expires = now + ttl.as_secs_f64();
        let mut shard = self.shard(&key);
        if now >= shard.earliest {
            sweep(&mut shard, now);
        }
        let previous = shard
            .entries
            .get(&key)
            .filter(|(until, _)| now < *until)
            .map(|(_, value)| *value);
        let Some(value) = update(previous) else {
            return Ok(previous);
        };
        if previous.is_none()
            && !shard.entries.contains_key(&key)
            && shard.entries.len() >= self.per_shard
        {
            return Err(StoreError::Full);
        }
        let until = match shard.entries.get(&key) {
            Some((until, _)) if previous.is_some() => until.max(expires),
            _ => expires,
        };
        shard.entries.insert(key, (until, value));
        shard.earliest = shard.earliest.min(until);
        Ok(previous)
    }

    fn get(&self, key: &StateKey) -> Option<V> {
        let now = self.now();
        let shard = self.shard(key);
        shard
            .entries
            .get(key)
            .filter(|(until, _)| now < *until)
            .map(|(_, value)| *value)
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entries
                    .len()
            })
            .sum()
    }
}

fn sweep<V>(shard: &mut Shard<V>, now: f64) {
    let mut earliest = f64::INFINITY;
    shard.entries.retain(|_, (until, _)| {
        let keep = now < *until;
        if keep {
            earliest = earliest.min(*until);
        }
        keep
    });
    shard.earliest = earliest;
}

/// The in-process [`ReplayStore`]: right for one replica and for tests. With several
/// replicas, a token used on one would still work on the others: share a
/// `RedisReplayStore` (feature `redis`) instead.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::state::{MemoryReplayStore, ReplayStore, StateKey};
///
/// # tokio_test_block_on(async {
/// let store = MemoryReplayStore::new(100_000);
/// let key = StateKey::token("https://issuer.example", "jti-1");
/// assert!(store.insert_once(key, Duration::from_secs(60)).await.unwrap());
/// assert!(!store.insert_once(key, Duration::from_secs(60)).await.unwrap());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct MemoryReplayStore {
    entries: Shards<()>,
}

impl MemoryReplayStore {
    /// A store that keeps at most about `max_entries` live keys (the bound is split
    /// evenly over 16 shards); when a shard is full of live keys, new keys are refused.
    #[must_use]
    pub fn new(max_entries: usize) -> Self {
        Self {
            entries: Shards::new(max_entries),
        }
    }

    /// Reads expiry times from `clock` instead of the system clock (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.entries.clock = clock;
        self
    }

    /// How many keys are held, expired ones not yet swept included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryReplayStore {
    /// 100 000 keys.
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("max_entries", &(self.entries.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert_once(&self, key: StateKey, ttl: Duration) -> StoreFuture<bool> {
        let result = self
            .entries
            .upsert(key, ttl, |previous| match previous {
                Some(()) => None,
                None => Some(()),
            })
            .map(|previous| previous.is_none());
        StoreFuture::ready(result)
    }
}

/// The live proofs of one client key: each proof's key and when it expires.
#[derive(Default)]
struct ClientProofs {
    proofs: HashMap<StateKey, f64>,
}

impl ClientProofs {
    fn forget_expired(&mut self, now: f64) -> usize {
        let before = self.proofs.len();
        self.proofs.retain(|_, until| now < *until);
        before - self.proofs.len()
    }
}

/// One shard of a [`MemoryProofStore`]: client keys and their live proofs.
struct ProofShard {
    clients: HashMap<StateKey, ClientProofs>,
    /// Proofs held, expired ones not yet swept included.
    held: usize,
    /// The earliest expiry among them, and when the shard was last swept.
    earliest: f64,
    swept: f64,
}

impl ProofShard {
    fn sweep(&mut self, now: f64) {
        let mut earliest = f64::INFINITY;
        let mut held = 0;
        self.clients.retain(|_, client| {
            client.forget_expired(now);
            held += client.proofs.len();
            for until in client.proofs.values() {
                earliest = earliest.min(*until);
            }
            !client.proofs.is_empty()
        });
        self.held = held;
        self.earliest = earliest;
        self.swept = now;
    }
}

/// The in-process [`ProofStore`]: DPoP proofs of one replica, bounded in all and per
/// client key. With several replicas, a proof replayed to another replica would pass:
/// share a `RedisProofStore` (feature `redis`) instead.
///
/// Shards are picked by the client key, so one client's proofs live in one shard under
/// one lock. A sweep of expired proofs runs at most once a second per shard (and
/// whenever the shard is full), so its cost does not land on every request.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::state::{MemoryProofStore, ProofRecord, ProofStore, StateKey};
///
/// # tokio_test_block_on(async {
/// let store = MemoryProofStore::new(100_000);
/// let client = StateKey::proof_key("thumbprint");
/// let ttl = Duration::from_secs(180);
/// let first = StateKey::proof("thumbprint", "jti-1");
/// assert_eq!(store.record(client, first, ttl, 1).await.unwrap(), ProofRecord::Fresh);
/// assert_eq!(store.record(client, first, ttl, 1).await.unwrap(), ProofRecord::Replayed);
/// let second = StateKey::proof("thumbprint", "jti-2");
/// assert_eq!(store.record(client, second, ttl, 1).await.unwrap(), ProofRecord::KeyOverLimit);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct MemoryProofStore {
    shards: Box<[Mutex<ProofShard>]>,
    per_shard: usize,
    clock: Arc<dyn Clock>,
    picker: foldhash::quality::SeedableRandomState,
}

impl MemoryProofStore {
    /// A store that keeps at most about `max_entries` live proofs (the bound is split
    /// evenly over 16 shards); when a shard is full of live proofs, new ones are refused
    /// with [`StoreError::Full`].
    #[must_use]
    pub fn new(max_entries: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(ProofShard {
                        clients: HashMap::new(),
                        held: 0,
                        earliest: f64::INFINITY,
                        swept: f64::NEG_INFINITY,
                    })
                })
                .collect(),
            per_shard: max_entries.div_ceil(SHARDS).max(1),
            clock: Arc::new(SystemClock),
            picker: crate::seeded::random_state(),
        }
    }

    /// Reads expiry times from `clock` instead of the system clock (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many proofs are held, expired ones not yet swept included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).held)
            .sum()
    }

    /// Whether no proof is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn record_now(
        &self,
        client: StateKey,
        proof: StateKey,
        ttl: Duration,
        limit: usize,
    ) -> Result<ProofRecord, StoreError> {
        let now = unix_seconds(self.clock.now());
        let hash = self.picker.hash_one(client.as_bytes());
        // A poisoned shard only means a panic elsewhere; the map itself is intact.
        let mut shard = self.shards[usize::try_from(hash >> 32).unwrap_or_default() % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now >= shard.earliest && now >= shard.swept + 1.0 {
            shard.sweep(now);
        }
        if let Some(live) = shard.clients.get_mut(&client) {
            if live.proofs.get(&proof).is_some_and(|until| now < *until) {
                return Ok(ProofRecord::Replayed);
            }
            if live.proofs.len() >= limit {
                // Only a client at its limit pays for forgetting its expired proofs.
                let forgotten = live.forget_expired(now);
                shard.held -= forgotten;
            }
        }
        let count = shard.clients.get(&client).map_or(0, |c| c.proofs.len());
        if count >= limit {
            return Ok(ProofRecord::KeyOverLimit);
        }
        if shard.held >= self.per_shard {
            // Only a sweep that can free something is worth its cost under the lock.
            if now >= shard.earliest {
                shard.sweep(now);
            }
            if shard.held >= self.per_shard {
                return Err(StoreError::Full);
            }
        }
        let until = now + ttl.as_secs_f64();
        let previous = shard
            .clients
            .entry(client)
            .or_default()
            .proofs
            .insert(proof, until);
        if previous.is_none() {
            shard.held += 1;
        }
        shard.earliest = shard.earliest.min(until);
        Ok(ProofRecord::Fresh)
    }
}

impl Default for MemoryProofStore {
    /// 100 000 proofs.
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl fmt::Debug for MemoryProofStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryProofStore")
            .field("max_entries", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl ProofStore for MemoryProofStore {
    fn record(
        &self,
        client: StateKey,
        proof: StateKey,
        ttl: Duration,
        limit: usize,
    ) -> StoreFuture<ProofRecord> {
        StoreFuture::ready(self.record_now(client, proof, ttl, limit))
    }
}

/// The in-process [`RevocationList`]: right for one replica and for tests.
pub struct MemoryRevocationList {
    tokens: Shards<()>,
    subjects: Shards<u64>,
}

impl Default for MemoryRevocationList {
    /// 100 000 tokens and as many subjects.
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl MemoryRevocationList {
    /// A list holding at most about `max_entries` tokens and as many subjects; a full
    /// list refuses new revocations with [`StoreError::Full`].
    #[must_use]
    pub fn new(max_entries: usize) -> Self {
        Self {
            tokens: Shards::new(max_entries),
            subjects: Shards::new(max_entries),
        }
    }

    /// Reads expiry times from `clock` instead of the system clock (for tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.tokens.clock = Arc::clone(&clock);
        self.subjects.clock = clock;
        self
    }
}

impl fmt::Debug for MemoryRevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRevocationList")
            .field("max_entries", &(self.tokens.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl RevocationList for MemoryRevocationList {
    fn revoke(&self, revocation: Revocation, ttl: Duration) -> StoreFuture<()> {
        let result = match revocation {
            Revocation::Token(key) => self.tokens.upsert(key, ttl, |_| Some(())),
            Revocation::Subject(key, at) => self
                .subjects
                .upsert(key, ttl, |previous| {
                    Some(previous.map_or(at, |p| p.max(at)))
                })
                .map(|_| None),
        };
        StoreFuture::ready(result.map(|_| ()))
    }

    fn status(
        &self,
        token: Option<StateKey>,
        subject: Option<StateKey>,
    ) -> StoreFuture<RevocationStatus> {
        let revoked = token.is_some_and(|key| self.tokens.get(&key).is_some());
        let since = subject.and_then(|key| self.subjects.get(&key));
        StoreFuture::ready(Ok(RevocationStatus::new(revoked, since)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualClock;

    fn now_or_never<T>(future: StoreFuture<T>) -> Result<T, StoreError> {
        match future.into_ready() {
            Ok(result) => result,
            Err(_) => panic!("the memory store answers at once"),
        }
    }

    #[test]
    fn a_key_is_new_once_until_it_expires() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let store = MemoryReplayStore::new(64).with_clock(clock.clone());
        let key = StateKey::token("iss", "a");
        let ttl = Duration::from_secs(10);
        assert!(now_or_never(store.insert_once(key, ttl)).unwrap());
        assert!(!now_or_never(store.insert_once(key, ttl)).unwrap());
        clock.advance(Duration::from_secs(11));
        assert!(now_or_never(store.insert_once(key, ttl)).unwrap());
    }

    #[test]
    fn keys_chosen_to_share_a_first_byte_still_spread_over_the_shards() {
        // What a client choosing proof `jti`s could aim at one shard if the digest's
        // first byte picked it: 400 keys whose digests all start alike.
        let aimed: Vec<StateKey> = (0..)
            .map(|i| StateKey::token("iss", &format!("jti-{i}")))
            .filter(|key| key.as_bytes()[0] % 16 == 0)
            .take(400)
            .collect();
        // 100 per shard: aimed at one shard, the 101st key would be refused; spread at
        // random, 400 keys put more than 100 in a shard with odds below 1e-30.
        let store = MemoryReplayStore::new(100 * SHARDS);
        let ttl = Duration::from_secs(60);
        for key in aimed {
            assert!(now_or_never(store.insert_once(key, ttl)).unwrap());
        }
    }

    #[test]
    fn a_full_store_refuses_instead_of_forgetting_and_sweeps_once_entries_expire() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let store = MemoryReplayStore::new(SHARDS).with_clock(clock.clone());
        let ttl = Duration::from_secs(10);
        let mut refused = 0;
        for i in 0..1_000 {
            let key = StateKey::token("iss", &i.to_string());
            match now_or_never(store.insert_once(key, ttl)) {
                Ok(true) => {}
                Ok(false) => panic!("a distinct key is new"),
                Err(StoreError::Full) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(store.len() <= SHARDS, "{} entries", store.len());
        assert!(refused >= 1_000 - SHARDS);
        clock.advance(Duration::from_secs(11));
        let key = StateKey::token("iss", "later");
        assert!(now_or_never(store.insert_once(key, ttl)).unwrap());
    }

    #[test]
    fn one_client_key_cannot_fill_the_proof_store() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let store = MemoryProofStore::new(SHARDS * 100).with_clock(clock.clone());
        let ttl = Duration::from_secs(180);
        let flooder = StateKey::proof_key("flooder");
        let mut over = 0;
        for i in 0..10_000 {
            let proof = StateKey::proof("flooder", &i.to_string());
            match now_or_never(store.record(flooder, proof, ttl, 50)) {
                Ok(ProofRecord::Fresh) => {}
                Ok(ProofRecord::KeyOverLimit) => over += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(over, 10_000 - 50);
        assert_eq!(store.len(), 50);
        // Another key records and detects its replay as if the flood had not happened.
        let other = StateKey::proof_key("other");
        let proof = StateKey::proof("other", "a");
        assert_eq!(
            now_or_never(store.record(other, proof, ttl, 50)).unwrap(),
            ProofRecord::Fresh
        );
        assert_eq!(
            now_or_never(store.record(other, proof, ttl, 50)).unwrap(),
            ProofRecord::Replayed
        );
        // Once the flooder's proofs expire it may send proofs again.
        clock.advance(Duration::from_secs(181));
        let later = StateKey::proof("flooder", "later");
        assert_eq!(
            now_or_never(store.record(flooder, later, ttl, 50)).unwrap(),
            ProofRecord::Fresh
        );
    }

    #[test]
    fn a_full_proof_store_refuses_and_frees_room_as_proofs_expire() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let store = MemoryProofStore::new(SHARDS).with_clock(clock.clone());
        let ttl = Duration::from_secs(10);
        let mut full = 0;
        for i in 0..200 {
            let client = StateKey::proof_key(&i.to_string());
            let proof = StateKey::proof(&i.to_string(), "p");
            match now_or_never(store.record(client, proof, ttl, 10)) {
                Ok(ProofRecord::Fresh) => {}
                Err(StoreError::Full) => full += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(full >= 200 - SHARDS, "{full}");
        assert!(store.len() <= SHARDS);
        clock.advance(Duration::from_secs(11));
        let client = StateKey::proof_key("later");
        let proof = StateKey::proof("later", "p");
        assert_eq!(
            now_or_never(store.record(client, proof, ttl, 10)).unwrap(),
            ProofRecord::Fresh
        );
    }

    #[test]
    fn revocations_keep_the_latest_subject_instant_and_expire() {
        let clock = Arc::new(ManualClock::at_unix(1_000));
        let list = MemoryRevocationList::new(64).with_clock(clock.clone());
        let token = StateKey::token("iss", "t");
        let subject = StateKey::subject("iss", "alice");
        let ttl = Duration::from_secs(100);
        now_or_never(list.revoke(Revocation::Token(token), ttl)).unwrap();
        now_or_never(list.revoke(Revocation::Subject(subject, 2_000), ttl)).unwrap();
        now_or_never(list.revoke(Revocation::Subject(subject, 1_000), ttl)).unwrap();
        let status = now_or_never(list.status(Some(token), Some(subject))).unwrap();
        assert_eq!(status, RevocationStatus::new(true, Some(2_000)));
        let other = now_or_never(list.status(Some(StateKey::token("iss", "u")), None)).unwrap();
        assert_eq!(other, RevocationStatus::default());
        clock.advance(Duration::from_secs(101));
        let status = now_or_never(list.status(Some(token), Some(subject))).unwrap();
        assert_eq!(status, RevocationStatus::default());
    }
}
