//! The optional verified-token cache: repeat requests with the same token skip the
//! signature check and the payload parse.
//!
//! Off by default. Verification costs tens of microseconds (most of it the signature),
//! which is little next to what most handlers do, and a cache is state: decoded claims
//! of live tokens kept in memory. Turn it on for high-rate APIs where clients reuse a
//! token for many requests ([`CacheOptions`]).
//!
//! Safety of a hit:
//! - an entry keeps the exact token bytes, and a hit compares them in full: the map is
//!   found by a keyed fast hash (foldhash, seeded per cache) of the token's length and
//!   its two ends, which picks where to look but never decides a hit;
//! - an entry belongs to the key-set generation that verified it
//!   ([`KeySet::generation`](crate::jwks::KeySet::generation), never reused within a process):
//!   after a swap to a set with other content it never hits again, so a removed key stops
//!   working at the same moment as without a cache, while a refresh that confirms the
//!   same keys keeps every entry;
//! - `exp`, `nbf` and `iat` are checked again on every hit with the current clock;
//! - an entry lives until the earlier of the token's `exp` and the configured TTL;
//! - the cache is bounded in entries and in bytes, per shard, so memory cannot grow
//!   with attacker input (only verified tokens are cached).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::record::TokenRecord;

const SHARDS: usize = 16;

/// How many bytes at each end of a longer token the key of a sampled cache reads
/// ([`TokenCache::key`]).
const SAMPLE: usize = 56;

/// Settings of the verified-token cache; see
/// [`JwtAuthConfigBuilder::cache`](crate::JwtAuthConfigBuilder::cache).
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::cache::CacheOptions;
///
/// let cache = CacheOptions::new().max_entries(50_000).ttl(Duration::from_secs(300));
/// # let _ = cache;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[must_use]
pub struct CacheOptions {
    max_entries: usize,
    max_bytes: usize,
    #[serde(with = "crate::written::text")]
    ttl: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 16 * 1024 * 1024,
            ttl: Duration::from_secs(600),
        }
    }
}

impl CacheOptions {
    /// 10 000 entries, 16 MiB, 10 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most tokens kept.
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// The most bytes kept, counted as token and payload sizes plus a fixed overhead.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The longest an entry lives, whatever the token's `exp`.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

/// Where a token's entry lives: a keyed hash of the token (of its length and two ends in
/// a [`TokenCache::sampled`] cache), so that no one can predict keys; a hit still
/// compares every byte.
pub(crate) type Key = u64;

/// A verified token's record, kept as verification built it.
struct Entry {
    record: Arc<TokenRecord>,
    /// The generation of the key set that verified the token.
    generation: u64,
    /// The token itself: a hit needs the same bytes, not only the same hash.
    token: Arc<[u8]>,
    /// Unix seconds after which the entry is dropped (the earlier of `exp` and the TTL).
    expires: f64,
    bytes: usize,
}

#[derive(Default)]
struct Shard {
    /// Keyed by [`Key`], which is already a hash: the map uses it as is.
    entries: HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
    bytes: usize,
}

/// The map's hasher for keys that are hashes already.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in rather than lose it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Sharded so that concurrent requests rarely contend on the same lock, and each lock is
/// held for a hash-map operation only.
pub(crate) struct TokenCache {
    options: CacheOptions,
    /// Seeded for each cache from the system's random generator.
    hasher: foldhash::quality::SeedableRandomState,
    /// Whether keys read a long token's two ends only ([`TokenCache::key`]).
    sampled: bool,
    shards: Box<[Mutex<Shard>]>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache whose keys hash every byte of a token: for tokens of any format, such as
    /// introspection's opaque ones.
    pub(crate) fn new(options: CacheOptions) -> Self {
        Self {
            options,
            // So that the hashes of tokens cannot be predicted from outside.
            hasher: crate::seeded::random_state(),
            sampled: false,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// A cache of verified JWTs, whose keys read a long token's length and two ends
    /// only ([`key`](Self::key)).
    pub(crate) fn sampled(options: CacheOptions) -> Self {
        Self {
            sampled: true,
            ..Self::new(options)
        }
    }

    /// The key of `token`: a keyed hash of it, or in a [`sampled`](Self::sampled) cache
    /// of a token longer than `2 * SAMPLE` bytes, of its length and its first and last
    /// [`SAMPLE`] bytes. A JWS ends in its signature (at least 43 characters, and the
    /// sample holds them all), and only verified tokens enter the cache, so two live
    /// tokens share a key only if their signatures end alike; even then they only take
    /// turns in one slot, since a hit compares every byte. The sample costs 170
    /// instructions where the whole of a 620-byte token cost 410 (callgrind); a SHA-256
    /// costs about 3 000. Opaque tokens are hashed whole: their ends may be constant (a
    /// format prefix and a footer), and each of their misses costs a network call.
    pub(crate) fn key(&self, token: &[u8]) -> Key {
        if !self.sampled || token.len() <= 2 * SAMPLE {
            return self.hasher.hash_one(token);
        }
        // One input of 120 bytes: foldhash's path for inputs up to 128 bytes.
        let mut sample = [0; 2 * SAMPLE + 8];
        let (ends, len) = sample.split_at_mut(2 * SAMPLE);
        ends[..SAMPLE].copy_from_slice(&token[..SAMPLE]);
        ends[SAMPLE..].copy_from_slice(&token[token.len() - SAMPLE..]);
        len.copy_from_slice(&(token.len() as u64).to_le_bytes());
        self.hasher.hash_one(sample)
    }

    fn shard(&self, key: Key) -> std::sync::MutexGuard<'_, Shard> {
        // The map uses the key's low bits and its top seven; the shard takes others. A
        // poisoned shard only means a panic elsewhere; the map itself is intact.
        let index = usize::try_from(key >> 32).unwrap_or_default() % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The record of `token` (whose key is `key`) verified by this key-set generation
    /// and still alive at `now`.
    pub(crate) fn get(
        &self,
        token: &[u8],
        key: Key,
        generation: u64,
        now: f64,
    ) -> Option<Arc<TokenRecord>> {
        let mut shard = self.shard(key);
        let entry = shard.entries.get(&key)?;
        if *entry.token != *token {
            // Another token with the same hash: a miss, never its results.
            return None;
        }
        if entry.generation == generation && now < entry.expires {
            return Some(Arc::clone(&entry.record));
        }
        let bytes = entry.bytes;
        shard.entries.remove(&key);
        shard.bytes -= bytes;
        None
    }

    /// Keeps `token`'s record, verified by this key-set generation; the token counts
    /// toward the byte bound with the record's weight.
    pub(crate) fn insert(
        &self,
        token: &[u8],
        key: Key,
        generation: u64,
        record: &Arc<TokenRecord>,
        now: f64,
    ) {
        let expires = record.times.0.min(now + self.options.ttl.as_secs_f64());
        // The token, the payload twice (kept, and once read, parsed), and the entry,
        // record, claims and map slot: 1 948 bytes measured for a 673-byte token with
        // `StandardClaims` and its permissions made, which this estimates at 2 100
        // (tests/it/allocations.rs).
        let bytes = token.len() + record.weight() + 512;
        let max_entries = (self.options.max_entries / SHARDS).max(1);
        let max_bytes = self.options.max_bytes / SHARDS;
        if bytes > max_bytes {
            return;
        }
        let mut shard = self.shard(key);
        if shard.entries.len() >= max_entries || shard.bytes + bytes > max_bytes {
            // Drop what has expired; if that is not enough, drop arbitrary entries: a miss
            // only costs one verification.
            let mut freed = 0;
            shard.entries.retain(|_, e| {
                let keep = now < e.expires;
                if !keep {
                    freed += e.bytes;
                }
                keep
            });
            shard.bytes -= freed;
            while shard.entries.len() >= max_entries || shard.bytes + bytes > max_bytes {
                let Some(victim) = shard.entries.keys().next().copied() else {
                    break;
                };
                if let Some(removed) = shard.entries.remove(&victim) {
                    shard.bytes -= removed.bytes;
                }
            }
        }
        let entry = Entry {
            record: Arc::clone(record),
            generation,
            token: token.into(),
            expires,
            bytes,
        };
        if let Some(old) = shard.entries.insert(key, entry) {
            shard.bytes -= old.bytes;
        }
        shard.bytes += bytes;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.entries.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::jwks::KeySet;

    fn put(cache: &TokenCache, token: &str, keys: &KeySet, exp: f64, now: f64) {
        let record = Arc::new(TokenRecord::dated((exp, None, None)));
        let token = token.as_bytes();
        cache.insert(token, cache.key(token), keys.generation(), &record, now);
    }

    #[test]
    fn entries_expire_and_belong_to_their_key_set() {
        let cache = TokenCache::new(CacheOptions::new().ttl(Duration::from_secs(100)));
        let keys = KeySet::new();
        put(&cache, "a", &keys, 1_000.0, 0.0);
        let key = cache.key(b"a");
        assert!(cache.get(b"a", key, keys.generation(), 50.0).is_some());
        assert!(
            cache.get(b"a", key, keys.generation(), 150.0).is_none(),
            "the TTL bounds it"
        );
        put(&cache, "a", &keys, 1_000.0, 0.0);
        let other = KeySet::new();
        assert!(
            cache.get(b"a", key, other.generation(), 1.0).is_none(),
            "another key set never hits"
        );
        assert_eq!(cache.len(), 0, "and the stale entry is gone");
    }

    #[test]
    fn a_key_set_at_a_freed_address_never_revives_an_entry() {
        let cache = TokenCache::new(CacheOptions::new());
        let key = cache.key(b"a");
        let first = Arc::new(KeySet::new());
        put(&cache, "a", &first, 1e9, 0.0);
        let address = Arc::as_ptr(&first) as usize;
        drop(first);
        // Allocate until a set lands at the freed address (the allocator usually hands it
        // back at once); whatever the address, a new set is another generation.
        let mut reused = false;
        for _ in 0..64 {
            let next = Arc::new(KeySet::new());
            reused |= Arc::as_ptr(&next) as usize == address;
            assert!(cache.get(b"a", key, next.generation(), 1.0).is_none());
        }
        println!("a later set reused the freed address: {reused}");
    }

    #[test]
    fn a_hash_never_decides_a_hit() {
        let cache = TokenCache::new(CacheOptions::new());
        let keys = KeySet::new();
        put(&cache, "a", &keys, 1e9, 0.0);
        // Ask with another token under the first one's key, as a collision would.
        let key = cache.key(b"a");
        assert!(cache.get(b"b", key, keys.generation(), 1.0).is_none());
        assert!(cache.get(b"a", key, keys.generation(), 1.0).is_some());
        assert_ne!(
            cache.key(b"a"),
            TokenCache::new(CacheOptions::new()).key(b"a")
        );
    }

    #[test]
    fn tokens_alike_at_both_ends_take_turns_in_one_slot() {
        let cache = TokenCache::sampled(CacheOptions::new());
        let keys = KeySet::new();
        let token = |middle: &str| format!("{}{middle}{}", "h".repeat(SAMPLE), "s".repeat(SAMPLE));
        let (first, second) = (token("payload-1"), token("payload-2"));
        let key = cache.key(first.as_bytes());
        assert_eq!(key, cache.key(second.as_bytes()), "the middle is not read");
        let hits = |token: &str| {
            cache
                .get(token.as_bytes(), key, keys.generation(), 1.0)
                .is_some()
        };
        put(&cache, &first, &keys, 1e9, 0.0);
        assert_eq!((hits(&first), hits(&second)), (true, false));
        put(&cache, &second, &keys, 1e9, 0.0);
        assert_eq!((hits(&first), hits(&second)), (false, true));
        assert_eq!(cache.len(), 1);
        // Every byte of either end is read, and the length; the middle is not.
        let mut bytes = first.clone().into_bytes();
        for at in 0..bytes.len() {
            let before = bytes[at];
            bytes[at] = b'x';
            let read = at < SAMPLE || at >= bytes.len() - SAMPLE;
            assert_eq!(cache.key(&bytes) != key, read, "byte {at}");
            bytes[at] = before;
        }
        assert_ne!(cache.key(token("payload-10").as_bytes()), key, "the length");
    }

    #[test]
    fn short_tokens_and_an_unsampled_cache_hash_every_byte() {
        let sampled = TokenCache::sampled(CacheOptions::new());
        let whole = TokenCache::new(CacheOptions::new());
        // At 2 * SAMPLE bytes every byte counts; one more and the middle stops counting.
        for (len, middle_read) in [(2 * SAMPLE, true), (2 * SAMPLE + 1, false)] {
            let token = vec![b'a'; len];
            let mut other = token.clone();
            other[SAMPLE] = b'b';
            assert_eq!(
                sampled.key(&token) != sampled.key(&other),
                middle_read,
                "{len} bytes"
            );
            assert_ne!(whole.key(&token), whole.key(&other), "{len} bytes");
        }
        let long = [b'a'; 1000];
        let mut other = long;
        other[500] = b'b';
        assert_ne!(whole.key(&long), whole.key(&other));
    }

    #[test]
    fn bounded_in_entries() {
        let cache = TokenCache::new(CacheOptions::new().max_entries(SHARDS * 4));
        let keys = KeySet::new();
        for i in 0..10_000 {
            put(&cache, &format!("token-{i}"), &keys, 1e9, 0.0);
        }
        assert!(cache.len() <= SHARDS * 4, "{}", cache.len());
    }

    #[test]
    fn bounded_in_bytes() {
        let cache = TokenCache::new(CacheOptions::new().max_bytes(SHARDS * 4096));
        let keys = KeySet::new();
        for i in 0..1_000 {
            put(&cache, &format!("{i}{}", "x".repeat(1000)), &keys, 1e9, 0.0);
        }
        let total: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.bytes))
            .sum();
        assert!(total <= SHARDS * 4096, "{total}");
    }
}
