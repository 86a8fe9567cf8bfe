//! The shared stores on Redis (or Valkey): one round trip per check.
//!
//! - single use: `SET <prefix>replay:<key> 1 NX PX <ttl>`; a reply of `OK` means first
//!   use, nil means the key was there;
//! - DPoP proofs: a script over `<prefix>dpop:{<client key>}:proof:<key>` and a sorted
//!   set of the client key's live proofs, so the per-key limit holds across replicas;
//! - revocation: `SET <prefix>revoked:token:<key> 1 PX <lifetime>`, and for a subject a
//!   short script that sets `<prefix>revoked:subject:<key>` to the revocation instant
//!   unless it holds a later one; checked with one `MGET` of both keys per request.
//!
//! The connection manager reconnects by itself; each command is bounded by the
//! connection's timeout, so a slow or absent server costs a request at most that long.
//!
//! The proof script reads the server's clock (`TIME`) before writing, which needs Redis
//! 5 or later (Valkey any version). Run the stores on a server or database with the
//! `noeviction` policy: a Redis that evicts keys under memory pressure could drop a
//! single-use or revocation record, and the token would work again.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, ExistenceCheck, SetExpiry, SetOptions};

use super::{
    LONGEST_RECORD, ReplayStore, Revocation, RevocationList, RevocationStatus, StateKey,
    StoreError, StoreFuture,
};
#[cfg(feature = "dpop")]
use super::{ProofRecord, ProofStore};

/// One DPoP proof: refused when seen, or when its client key holds `limit` live proofs;
/// else recorded, and counted in the key's sorted set (scored by expiry) until it
/// expires. Expiry is read from the server's clock (`TIME`), the one clock every
/// replica shares. KEYS: the proof, the client key's set; ARGV: ttl in ms, limit, the
/// set member. Returns 1 fresh, 0 replayed, 2 over the limit.
#[cfg(feature = "dpop")]
const RECORD_PROOF: &str = "local t = redis.call('TIME') \
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) \
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) \
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[2]) then return 2 end \
local ttl = tonumber(ARGV[1]) \
redis.call('SET', KEYS[1], '1', 'PX', ttl) \
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3]) \
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end \
return 1";

/// `SET key at PX ttl` unless the key holds a later instant.
const KEEP_LATEST: &str = "local v = redis.call('GET', KEYS[1]) \
if (not v) or tonumber(v) < tonumber(ARGV[1]) then \
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end \
return nil";

/// The default bound on one command.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(50);

/// One reconnecting connection to a Redis or Valkey server, shared by a
/// [`RedisReplayStore`] and a [`RedisRevocationList`] (clones share the connection).
///
/// `redis://host:port/db`, with `redis://user:password@…` for ACLs; `rediss://` needs the
/// feature `redis-tls`. The URL is never logged.
///
/// ```no_run
/// use std::time::Duration;
/// use tower_jwt_auth::JwtAuthConfig;
/// use tower_jwt_auth::state::{RedisConnection, RedisReplayStore, RedisRevocationList};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::open("redis://127.0.0.1:6379")?
///     .prefix("orders-api:")
///     .timeout(Duration::from_millis(50));
/// let config = JwtAuthConfig::builder()
///     .issuer("https://issuer.example")
///     .audience("orders")
///     .replay_store(RedisReplayStore::new(redis.clone()))
///     .revocation_list(RedisRevocationList::new(redis))
///     .build()?;
/// # let _ = config;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    prefix: Arc<str>,
    timeout: Duration,
}

impl RedisConnection {
    /// A connection to the server at `url`, opened in the background on the running
    /// Tokio runtime, which it needs. Until the server answers, checks
    /// fail as the layer's [`StoreFailure`](super::StoreFailure) mode says; a server that
    /// is down at startup is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the URL does not parse or names a scheme this build
    /// does not support, or when no Tokio runtime is running (the connection's task
    /// needs one).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Backend(format!("invalid Redis URL: {:?}", e.kind())))?;
        // The connection manager spawns its task at once, and would panic without a runtime.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(StoreError::Backend(
                "a Redis store needs a running Tokio runtime: open it (or build the configuration) inside one".into(),
            ));
        };
        // The connection's own response timeout (500 ms by default) is off: each command
        // is bounded by `timeout` alone, which the application sets and the docs name.
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(250));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        // Connect now rather than on the first request's time budget.
        let mut warm = manager.clone();
        runtime.spawn(async move {
            let _: redis::RedisResult<()> = redis::cmd("PING").query_async(&mut warm).await;
        });
        Ok(Self {
            manager,
            prefix: Arc::from("tower-jwt-auth:"),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The prefix of every key (default `tower-jwt-auth:`), to share one server between
    /// applications.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Arc::from(prefix);
        self
    }

    /// The longest one command may take, connection waits included (default 50 ms). A
    /// request never waits longer than this for the store.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn key(&self, kind: &str, key: &StateKey) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }

    /// Runs one command within the timeout.
    fn run<T, F, Fut>(&self, command: F) -> StoreFuture<T>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>> + Send + 'static,
    {
        let timeout = self.timeout;
        let future = command(self.manager.clone());
        StoreFuture::new(async move {
            match tokio::time::timeout(timeout, future).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(e)) => Err(StoreError::Backend(e.to_string())),
                Err(_) => Err(StoreError::Timeout(timeout)),
            }
        })
    }
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: it is not kept, and not shown.
        f.debug_struct("RedisConnection")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Milliseconds for `PX`: at least one, since Redis refuses zero, and at most
/// [`LONGEST_RECORD`], since Redis refuses an expiry its clock cannot add.
fn millis(ttl: Duration) -> u64 {
    let longest = u64::try_from(LONGEST_RECORD.as_millis()).unwrap_or(u64::MAX);
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, longest)
}

/// The [`ReplayStore`] every replica shares: `SET key 1 NX PX ttl`, atomic on the server.
#[derive(Debug, Clone)]
pub struct RedisReplayStore {
    connection: RedisConnection,
}

impl RedisReplayStore {
    /// A replay store on this connection.
    #[must_use]
    pub fn new(connection: RedisConnection) -> Self {
        Self { connection }
    }
}

impl ReplayStore for RedisReplayStore {
    fn insert_once(&self, key: StateKey, ttl: Duration) -> StoreFuture<bool> {
        let key = self.connection.key("replay", &key);
        let options = SetOptions::default()
            .conditional_set(ExistenceCheck::NX)
            .with_expiration(SetExpiry::PX(millis(ttl)));
        self.connection.run(|mut redis| async move {
            let reply: Option<String> = redis.set_options(key, 1, options).await?;
            Ok(reply.is_some())
        })
    }

    /// A [`RedisProofStore`] on the same connection, so replicas that share this store
    /// share DPoP proofs too.
    #[cfg(feature = "dpop")]
    fn proof_store(&self) -> Option<Arc<dyn ProofStore>> {
        Some(Arc::new(RedisProofStore::new(self.connection.clone())))
    }
}

/// The [`ProofStore`] every replica shares: one script per proof, atomic on the server,
/// under keys of their own (`<prefix>dpop:{<client key>}:…`; the braces keep a client's
/// keys in one Redis Cluster slot). The per-key limit is counted across replicas.
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(all(feature = "redis", feature = "dpop"))))]
#[derive(Debug, Clone)]
pub struct RedisProofStore {
    connection: RedisConnection,
}

#[cfg(feature = "dpop")]
impl RedisProofStore {
    /// A proof store on this connection.
    #[must_use]
    pub fn new(connection: RedisConnection) -> Self {
        Self { connection }
    }
}

#[cfg(feature = "dpop")]
impl ProofStore for RedisProofStore {
    fn record(
        &self,
        client: StateKey,
        proof: StateKey,
        ttl: Duration,
        limit: usize,
    ) -> StoreFuture<ProofRecord> {
        let prefix = &self.connection.prefix;
        let proof_key = format!("{prefix}dpop:{{{client}}}:proof:{proof}");
        let live_key = format!("{prefix}dpop:{{{client}}}:live");
        let mut script = redis::cmd("EVAL");
        script
            .arg(RECORD_PROOF)
            .arg(2)
            .arg(proof_key)
            .arg(live_key)
            .arg(millis(ttl))
            .arg(limit)
            .arg(proof.to_string());
        self.connection.run(|mut redis| async move {
            let answer: i64 = script.query_async(&mut redis).await?;
            Ok(match answer {
                1 => ProofRecord::Fresh,
                2 => ProofRecord::KeyOverLimit,
                _ => ProofRecord::Replayed,
            })
        })
    }
}

/// The [`RevocationList`] every replica shares.
#[derive(Debug, Clone)]
pub struct RedisRevocationList {
    connection: RedisConnection,
}

impl RedisRevocationList {
    /// A revocation list on this connection.
    #[must_use]
    pub fn new(connection: RedisConnection) -> Self {
        Self { connection }
    }
}

impl RevocationList for RedisRevocationList {
    fn revoke(&self, revocation: Revocation, ttl: Duration) -> StoreFuture<()> {
        match revocation {
            Revocation::Token(key) => {
                let key = self.connection.key("revoked:token", &key);
                let expiry = SetOptions::default().with_expiration(SetExpiry::PX(millis(ttl)));
                self.connection.run(|mut redis| async move {
                    let _: Option<String> = redis.set_options(key, 1, expiry).await?;
                    Ok(())
                })
            }
            Revocation::Subject(key, at) => {
                // The latest instant wins, atomically, whatever order replicas (with
                // their clocks) record it in: set only when absent or earlier.
                let key = self.connection.key("revoked:subject", &key);
                let mut script = redis::cmd("EVAL");
                script
                    .arg(KEEP_LATEST)
                    .arg(1)
                    .arg(key)
                    .arg(at)
                    .arg(millis(ttl));
                self.connection.run(|mut redis| async move {
                    let _: () = script.query_async(&mut redis).await?;
                    Ok(())
                })
            }
        }
    }

    fn status(
        &self,
        token: Option<StateKey>,
        subject: Option<StateKey>,
    ) -> StoreFuture<RevocationStatus> {
        let token = token.map(|k| self.connection.key("revoked:token", &k));
        let subject = subject.map(|k| self.connection.key("revoked:subject", &k));
        match (token, subject) {
            (None, None) => StoreFuture::ready(Ok(RevocationStatus::default())),
            // Both keys in one round trip.
            (Some(token), Some(subject)) => self.connection.run(|mut redis| async move {
                let (token, since): (Option<u64>, Option<u64>) =
                    redis.mget(&[token, subject]).await?;
                Ok(RevocationStatus::new(token.is_some(), since))
            }),
            (Some(token), None) => self.connection.run(|mut redis| async move {
                let token: Option<u64> = redis.get(token).await?;
                Ok(RevocationStatus::new(token.is_some(), None))
            }),
            (None, Some(subject)) => self.connection.run(|mut redis| async move {
                let since: Option<u64> = redis.get(subject).await?;
                Ok(RevocationStatus::new(false, since))
            }),
        }
    }
}
