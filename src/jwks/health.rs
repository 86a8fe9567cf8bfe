//! What a [`RemoteJwks`](crate::jwks::RemoteJwks) reports: [`KeysStatus`] and the
//! [`JwksHealth`] handle. The refresher task writes the record; handles only read it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What a [`RemoteJwks`](crate::jwks::RemoteJwks) has, for readiness probes and diagnostics.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysStatus {
    /// The last fetch succeeded; `age` is the time since.
    Loaded {
        /// Time since the key set was last confirmed.
        age: Duration,
    },
    /// Keys are in use, but the last fetch failed.
    Stale {
        /// Time since the key set was last confirmed.
        since: Duration,
        /// Why the last fetch failed.
        last_error: String,
    },
    /// No key set has loaded yet.
    NeverLoaded {
        /// Why the last fetch failed, if one did.
        last_error: Option<String>,
    },
}

impl KeysStatus {
    /// Whether tokens can be verified (keys are loaded, fresh or stale).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        !matches!(self, Self::NeverLoaded { .. })
    }
}

/// The record behind [`JwksHealth`]: when the keys were last confirmed, why the last
/// fetch failed, and whether the refresher runs.
#[derive(Debug, Default)]
pub(crate) struct Health {
    state: Mutex<Record>,
    running: AtomicBool,
}

#[derive(Debug, Default)]
struct Record {
    confirmed_at: Option<Instant>,
    last_error: Option<String>,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, Record> {
        // Plain data; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fetch succeeded (new keys, or the same ones confirmed).
    pub(crate) fn confirmed(&self, at: Instant) {
        let mut record = self.lock();
        record.confirmed_at = Some(at);
        record.last_error = None;
    }

    /// A fetch failed; the last good keys, if any, stay in use.
    pub(crate) fn failed(&self, error: String) {
        self.lock().last_error = Some(error);
    }

    /// When the keys in use were last confirmed by the issuer.
    pub(crate) fn confirmed_at(&self) -> Option<Instant> {
        self.lock().confirmed_at
    }

    pub(crate) fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::Release);
    }

    fn status(&self) -> KeysStatus {
        let record = self.lock();
        match (record.confirmed_at, &record.last_error) {
            (None, error) => KeysStatus::NeverLoaded {
                last_error: error.clone(),
            },
            (Some(at), None) => KeysStatus::Loaded { age: at.elapsed() },
            (Some(at), Some(error)) => KeysStatus::Stale {
                since: at.elapsed(),
                last_error: error.clone(),
            },
        }
    }
}

/// A health handle for a [`RemoteJwks`](crate::jwks::RemoteJwks). It does not keep the store or
/// its refresher alive.
///
/// ```no_run
/// # async fn probe(health: tower_jwt_auth::jwks::JwksHealth) -> http::StatusCode {
/// // A readiness probe: ready once keys have loaded.
/// if health.status().is_ready() { http::StatusCode::OK } else { http::StatusCode::SERVICE_UNAVAILABLE }
/// # }
/// ```
#[derive(Clone)]
pub struct JwksHealth {
    health: Arc<Health>,
}

impl JwksHealth {
    pub(crate) fn new(health: Arc<Health>) -> Self {
        Self { health }
    }

    /// The current status.
    #[must_use]
    pub fn status(&self) -> KeysStatus {
        self.health.status()
    }

    /// Whether the background refresher is running. It starts with the first use inside
    /// a tokio runtime and stops when the last handle to the store is dropped.
    #[must_use]
    pub fn is_refreshing(&self) -> bool {
        self.health.running.load(Ordering::Acquire)
    }
}

impl fmt::Debug for JwksHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksHealth")
            .field("status", &self.status())
            .finish()
    }
}
