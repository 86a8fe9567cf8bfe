//! Reconfiguration without restart: a reloadable layer reads its compiled policy from
//! an `ArcSwap`, and a [`ReloadHandle`] swaps in a new one. Requests in flight finish
//! under the policy they started with; the next request sees the new one.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use crate::config::{JwtAuthConfig, JwtAuthConfigBuilder};
use crate::error::ConfigError;
use crate::policy::Policy;

/// Where a layer's services read the policy: fixed at construction, or live.
#[derive(Clone)]
pub(crate) enum PolicySource {
    Fixed(Arc<Policy>),
    Live(Arc<ArcSwap<Policy>>),
}

/// The policy for one request: borrowed (fixed) or held by an arc-swap guard (live);
/// neither touches a reference count on the fast path.
pub(crate) enum Loaded<'a> {
    Fixed(&'a Arc<Policy>),
    Live(Guard<Arc<Policy>>),
}

impl Deref for Loaded<'_> {
    type Target = Arc<Policy>;

    fn deref(&self) -> &Arc<Policy> {
        match self {
            Self::Fixed(policy) => policy,
            Self::Live(guard) => guard,
        }
    }
}

impl PolicySource {
    pub(crate) fn load(&self) -> Loaded<'_> {
        match self {
            Self::Fixed(policy) => Loaded::Fixed(policy),
            Self::Live(live) => Loaded::Live(live.load()),
        }
    }

    /// The policy in force, owned (for accessors, not the request path).
    pub(crate) fn current(&self) -> Arc<Policy> {
        match self {
            Self::Fixed(policy) => Arc::clone(policy),
            Self::Live(live) => live.load_full(),
        }
    }
}

/// Swaps the policy of a reloadable [`JwtAuthLayer`](crate::JwtAuthLayer) (from
/// [`JwtAuthLayer::reloadable`](crate::JwtAuthLayer::reloadable)); clones share it.
///
/// A reload validates the new configuration first: a refused one leaves the old policy
/// serving. Remote key stores of issuers present in both, with the same key source, are
/// carried over (no refetch, no 503 window); stores of new issuers start loading before
/// the swap, which waits for them up to a bound (5 s by default; after it they answer 503
/// until loaded); stores of removed issuers stop once the last request using them ends.
/// A kept store keeps its HTTP client: a new `http_client` takes effect for issuers whose
/// key source or remote options also changed, or after a restart.
/// The verified-token cache belongs to the policy, so a swap starts an empty one: a
/// removed audience or issuer stops working at the next request.
#[derive(Clone)]
pub struct ReloadHandle {
    live: Arc<ArcSwap<Policy>>,
    wait: Duration,
    /// One reload at a time, so that a slow one cannot overwrite a later one.
    #[cfg(feature = "remote")]
    lock: Arc<tokio::sync::Mutex<()>>,
    #[cfg(not(feature = "remote"))]
    lock: Arc<std::sync::Mutex<()>>,
}

impl ReloadHandle {
    pub(crate) fn new(live: Arc<ArcSwap<Policy>>) -> Self {
        Self {
            live,
            wait: Duration::from_secs(5),
            lock: Arc::default(),
        }
    }

    /// How long a reload waits for the keys of new issuers before it swaps anyway.
    #[must_use]
    pub fn wait_for_new_keys(mut self, bound: Duration) -> Self {
        self.wait = bound;
        self
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> JwtAuthConfig {
        JwtAuthConfig {
            policy: self.live.load_full(),
        }
    }

    /// Builds `builder` and, if it is valid, swaps it in.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of a configuration that cannot work; the old one stays.
    pub async fn reload(&self, builder: JwtAuthConfigBuilder) -> Result<Reloaded, ConfigError> {
        // Reloads run one after the other, in the order they asked.
        #[cfg(feature = "remote")]
        let _serial = self.lock.lock().await;
        #[cfg(not(feature = "remote"))]
        let _serial = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = self.live.load_full();
        let new = builder.build_replacing(&old)?;
        #[cfg(feature = "remote")]
        if !new.wait_until_ready(self.wait).await {
            tracing::warn!(
                "reloaded before every new issuer's keys loaded; their tokens get 503 until they do"
            );
        }
        let report = Reloaded::between(&old, &new.policy);
        self.live.store(Arc::clone(&new.policy));
        Ok(report)
    }
}

impl fmt::Debug for ReloadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadHandle")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// What a reload changed: issuers and (issuer, audience) pairs added and removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// Issuers trusted now and not before.
    pub issuers_added: Vec<String>,
    /// Issuers trusted before and not now.
    pub issuers_removed: Vec<String>,
    /// (issuer, audience) pairs accepted now and not before.
    pub audiences_added: Vec<(String, String)>,
    /// (issuer, audience) pairs accepted before and not now.
    pub audiences_removed: Vec<(String, String)>,
}

impl Reloaded {
    fn between(old: &Policy, new: &Policy) -> Self {
        let issuers = |p: &Policy| -> Vec<String> {
            p.issuers
                .iter()
                .map(|i| i.matcher.as_str().to_owned())
                .collect()
        };
        let pairs = |p: &Policy| -> Vec<(String, String)> {
            p.issuers
                .iter()
                .flat_map(|i| {
                    i.audiences
                        .iter()
                        .map(|a| (i.matcher.as_str().to_owned(), a.to_string()))
                })
                .collect()
        };
        let (old_issuers, new_issuers) = (issuers(old), issuers(new));
        let (old_pairs, new_pairs) = (pairs(old), pairs(new));
        Self {
            issuers_added: new_issuers
                .iter()
                .filter(|i| !old_issuers.contains(i))
                .cloned()
                .collect(),
            issuers_removed: old_issuers
                .iter()
                .filter(|i| !new_issuers.contains(i))
                .cloned()
                .collect(),
            audiences_added: new_pairs
                .iter()
                .filter(|p| !old_pairs.contains(p))
                .cloned()
                .collect(),
            audiences_removed: old_pairs
                .iter()
                .filter(|p| !new_pairs.contains(p))
                .cloned()
                .collect(),
        }
    }

    /// Whether nothing a log reader would care about changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for Reloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no issuer or audience changed");
        }
        let mut parts = Vec::new();
        for issuer in &self.issuers_added {
            parts.push(format!("+issuer {issuer}"));
        }
        for issuer in &self.issuers_removed {
            parts.push(format!("-issuer {issuer}"));
        }
        for (issuer, audience) in &self.audiences_added {
            parts.push(format!("+audience {audience} ({issuer})"));
        }
        for (issuer, audience) in &self.audiences_removed {
            parts.push(format!("-audience {audience} ({issuer})"));
        }
        f.write_str(&parts.join(", "))
    }
}
