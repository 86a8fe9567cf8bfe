//! [`TokenRecord`]: what verification learns about one token, built once when the token
//! is verified (a JWT's payload, or an introspection answer), shared whole by the
//! verified-token caches and the request's [`Authentication`](crate::Authentication);
//! and [`Verified`], the typed claims beside it.
//!
//! A per-token fact is a field here, computed where the record is built
//! (`accept.rs`); the caches store the record as it is and every reader reads it from
//! there, so nothing copies the facts one by one.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::binding::Binding;
use crate::permission::Permissions;
use crate::rules::Forwarded;
use crate::telemetry::Identity;
use crate::tracking::Tracked;

/// `exp`, `nbf` and `iat` of a verified token.
pub(crate) type Times = (f64, Option<f64>, Option<f64>);

/// Everything one verification learned about a token, held in an `Arc`.
pub(crate) struct TokenRecord {
    /// The claims, deserialized into the claims type of the layer that verified the
    /// token; readers downcast them.
    pub(crate) claims: Arc<dyn Any + Send + Sync>,
    /// The permissions from the configured permission claims.
    pub(crate) permissions: Permissions,
    /// `exp` (infinite for an introspection answer without one), `nbf`, `iat`: checked
    /// again on every cache hit.
    pub(crate) times: Times,
    /// The payload's size, for the cache's byte bound.
    pub(crate) payload_len: usize,
    /// Who the token names, when a span or the audit hook will read it.
    pub(crate) identity: Option<Identity>,
    /// The keys of the state step, when the layer checks revocation or single use.
    pub(crate) tracked: Option<Arc<Tracked>>,
    /// The headers of forwarded claims, when claims are forwarded.
    pub(crate) forwarded: Option<Forwarded>,
    /// The token's `cnf`, when it is sender-constrained.
    pub(crate) binding: Option<Binding>,
    /// The verified payload of an introspected token (the introspection answer), for
    /// readers of claims beyond the claims type (step-up, route single use, payload
    /// forwarding); a JWT carries its own.
    pub(crate) payload: Option<Box<[u8]>>,
}

impl TokenRecord {
    /// The bytes the record weighs beyond the token itself, for the cache's byte bound:
    /// the parsed payload, and a kept introspection answer (held twice: parsed, and as
    /// it came).
    pub(crate) fn weight(&self) -> usize {
        self.payload_len + self.payload.as_ref().map_or(0, |payload| payload.len())
    }

    /// A record with nothing in it but its dates, for the cache's own tests.
    #[cfg(test)]
    pub(crate) fn dated(times: Times) -> Self {
        Self {
            claims: Arc::new(()),
            permissions: Permissions::default(),
            times,
            payload_len: 0,
            identity: None,
            tracked: None,
            forwarded: None,
            binding: None,
            payload: None,
        }
    }
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The claims and who the token names may be personal data: shown elsewhere or
        // not at all.
        f.debug_struct("TokenRecord")
            .field("permissions", &self.permissions)
            .field("times", &self.times)
            .field("bound", &self.binding.is_some())
            .finish_non_exhaustive()
    }
}

/// A verified token: its claims, typed, and what verification learned about it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified<C> {
    /// The claims, deserialized into the claims type. Shared: the verified-token cache
    /// and the request extension hold the same value, never a copy.
    pub claims: Arc<C>,
    /// The token's record; its `claims` are these claims, untyped.
    pub(crate) record: Arc<TokenRecord>,
}

impl<C> Verified<C> {
    /// The permissions from the configured permission claims.
    #[must_use]
    pub fn permissions(&self) -> &Permissions {
        &self.record.permissions
    }
}

impl<C: Send + Sync + 'static> Verified<C> {
    /// A record's claims typed as `C`: none when they were deserialized into another
    /// type (a cache shared by layers with different claims types).
    pub(crate) fn from_record(record: Arc<TokenRecord>) -> Option<Self> {
        let claims = Arc::clone(&record.claims).downcast::<C>().ok()?;
        Some(Self { claims, record })
    }
}
