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
    ReplayStore, Revocation, RevocationList, RevocationStatus, StateKey, StoreError, StoreFuture,
};
use crate::time::{Clock, SystemClock, unix_seconds};

pub(super) const SHARDS: usize = 16;

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
    use crate::state::now_or_never;
    use crate::time::ManualClock;

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
