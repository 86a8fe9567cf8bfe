//! The in-process proof store: the DPoP proofs of one replica, bounded in all and per
//! client key, in shards picked by a hash seeded per store (as the other memory stores).

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::memory::SHARDS;
use super::{ProofRecord, ProofStore, StateKey, StoreError, StoreFuture};
use crate::time::{Clock, SystemClock, unix_seconds};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::now_or_never;
    use crate::time::ManualClock;

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
}
