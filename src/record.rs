//! [`TokenRecord`]: what verification learns about one token, built once when the token
//! is verified (a JWT's payload, or an introspection answer), shared whole by the
//! verified-token caches and the request's [`Authentication`](crate::Authentication);
//! [`Accepted`], the record as the core passes it on, typed by the layer's claims type;
//! and [`Verified`], what [`Verifier`](crate::Verifier) hands out.
//!
//! A per-token fact is a field here, computed where the record is built
//! (`accept.rs`); the caches store the record as it is and every reader reads it from
//! there, so nothing copies the facts one by one.
//!
//! Two facts are made when first read, at most once per record (so at most once in a
//! cached token's life): the permission set, from the permission claims the payload
//! pass located, and the claims of a type whose deserialization cannot refuse what the
//! payload pass accepted ([`StandardClaims`](crate::StandardClaims)); every other claims
//! type is deserialized by the payload pass itself.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::api_key::CredentialKind;
use crate::binding::Binding;
use crate::permission::{PermissionSources, Permissions};
use crate::rules::Forwarded;
use crate::telemetry::Identity;
use crate::tracking::Tracked;

/// `exp`, `nbf` and `iat` of a verified token.
pub(crate) type Times = (f64, Option<f64>, Option<f64>);

/// Claims of any type, shared.
pub(crate) type AnyClaims = Arc<dyn Any + Send + Sync>;

/// Makes claims of one type from a payload, through the payload pass with the names it
/// captured.
type MakeClaims = fn(&[u8], &[Box<str>]) -> Option<AnyClaims>;

/// Everything one verification learned about a token, held in an `Arc`.
pub(crate) struct TokenRecord {
    /// Which source vouched for the credential: JWT verification, introspection, or the
    /// configured API keys.
    pub(crate) kind: CredentialKind,
    /// The claims, in the claims type of the layer that verified the token.
    pub(crate) claims: ClaimsSlot,
    /// The permissions from the configured permission claims, made when first read.
    pub(crate) permissions: LazyPermissions,
    /// `exp` (infinite for an introspection answer without one), `nbf`, `iat`: checked
    /// again on every cache hit.
    pub(crate) times: Times,
    /// Who the token names, when a span or the audit hook will read it.
    pub(crate) identity: Option<Identity>,
    /// The keys of the state step, when the layer checks revocation or single use.
    pub(crate) tracked: Option<Arc<Tracked>>,
    /// The headers of forwarded claims, when claims are forwarded.
    pub(crate) forwarded: Option<Forwarded>,
    /// The token's `cnf`, when it is sender-constrained.
    pub(crate) binding: Option<Binding>,
    /// The verified payload (a JWT's, decoded, or the introspection answer), for the
    /// facts made when first read and for claims beyond the claims type (step-up, route
    /// single use, payload forwarding).
    pub(crate) payload: Box<[u8]>,
}

impl TokenRecord {
    /// The bytes the record weighs beyond the token itself, for the cache's byte bound:
    /// the payload, held as it came and (once read) parsed.
    pub(crate) fn weight(&self) -> usize {
        2 * self.payload.len()
    }

    /// The permissions, made from the payload when first read.
    pub(crate) fn permissions(&self) -> &Permissions {
        self.permissions.get(&self.payload)
    }

    /// The claims, when they are of type `C`: deserialized from the payload when first
    /// read if the payload pass left them.
    pub(crate) fn claims<C: Send + Sync + 'static>(&self) -> Option<&C> {
        self.made_claims()?.downcast_ref::<C>()
    }

    /// The claims as a shared pointer, when they are of type `C`.
    pub(crate) fn shared_claims<C: Send + Sync + 'static>(&self) -> Option<Arc<C>> {
        Arc::clone(self.made_claims()?).downcast::<C>().ok()
    }

    fn made_claims(&self) -> Option<&AnyClaims> {
        let sources = self.permissions.sources.as_deref();
        let capture = sources.map_or(&[][..], |sources| &sources.capture[..]);
        self.claims.get(&self.payload, capture)
    }

    /// A record with nothing in it but its dates, for the cache's own tests.
    #[cfg(test)]
    pub(crate) fn dated(times: Times) -> Self {
        Self {
            kind: CredentialKind::Jwt,
            claims: ClaimsSlot::ready(()),
            permissions: LazyPermissions::none(),
            times,
            identity: None,
            tracked: None,
            forwarded: None,
            binding: None,
            payload: Box::default(),
        }
    }
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The claims and who the token names may be personal data: shown elsewhere or
        // not at all.
        f.debug_struct("TokenRecord")
            .field("permissions", self.permissions())
            .field("times", &self.times)
            .field("bound", &self.binding.is_some())
            .finish_non_exhaustive()
    }
}

/// The claims of a record: deserialized by the payload pass, or made from the payload
/// when first read.
pub(crate) struct ClaimsSlot {
    /// The claims type, so a cache shared by layers of different claims types tells
    /// them apart before anything is made.
    type_id: TypeId,
    value: OnceLock<Option<AnyClaims>>,
    /// Makes the claims from the payload; only for types whose deserialization cannot
    /// refuse a payload the pass accepted (`None` from it is a broken promise, read as
    /// no claims, never as claims).
    make: Option<MakeClaims>,
}

impl ClaimsSlot {
    /// Claims the payload pass deserialized.
    pub(crate) fn ready<C: Send + Sync + 'static>(claims: C) -> Self {
        Self {
            type_id: TypeId::of::<C>(),
            value: OnceLock::from(Some(Arc::new(claims) as AnyClaims)),
            make: None,
        }
    }

    /// Claims of type `C` made from the payload when first read.
    pub(crate) fn deferred<C>() -> Self
    where
        C: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        // Straight from the payload when that works (the same JSON gives the same
        // claims either way), else through the very pass the payload was checked in,
        // with the same names captured: what the check accepted, that accepts (the
        // nesting a captured value may have depends on it, for one).
        fn make<C>(payload: &[u8], capture: &[Box<str>]) -> Option<AnyClaims>
        where
            C: serde::de::DeserializeOwned + Send + Sync + 'static,
        {
            // A plain payload makes `StandardClaims` without serde.
            if TypeId::of::<C>() == TypeId::of::<crate::StandardClaims>()
                && let Some(claims) = crate::plain::standard_claims(payload)
            {
                return Some(Arc::new(claims));
            }
            let claims = serde_json::from_slice::<C>(payload).ok().or_else(|| {
                let (claims, _) = crate::payload::parse::<C>(payload, false, capture).ok()?;
                Some(claims)
            })?;
            Some(Arc::new(claims))
        }
        // Sound for a type the payload pass checked without building (`StandardClaims`,
        // through `StandardShape`), and for an API key's payload, which the
        // configuration wrote: claims it cannot fill are a wiring mistake (500), not a
        // refusal.
        Self {
            type_id: TypeId::of::<C>(),
            value: OnceLock::new(),
            make: Some(make::<C>),
        }
    }

    /// Whether the claims are of type `C`.
    pub(crate) fn is<C: 'static>(&self) -> bool {
        self.type_id == TypeId::of::<C>()
    }

    fn get(&self, payload: &[u8], capture: &[Box<str>]) -> Option<&AnyClaims> {
        self.value
            .get_or_init(|| {
                let made = self.make.and_then(|make| make(payload, capture));
                if made.is_none() && self.make.is_some() {
                    tracing::error!(
                        "the claims of a verified token could not be made from its payload"
                    );
                }
                made
            })
            .as_ref()
    }
}

/// The permission set of a record, made when first read from where the payload pass
/// found the permission claims.
pub(crate) struct LazyPermissions {
    set: OnceLock<Permissions>,
    /// The configured permission claims.
    sources: Option<Arc<PermissionSources>>,
    /// Where each permission claim's value is in the payload, with its index among the
    /// sources' top-level names.
    found: Vec<(usize, Range<usize>)>,
}

impl LazyPermissions {
    /// Permissions to make from `found` when first read.
    pub(crate) fn new(sources: &Arc<PermissionSources>, found: Vec<(usize, Range<usize>)>) -> Self {
        Self {
            set: OnceLock::new(),
            sources: Some(Arc::clone(sources)),
            found,
        }
    }

    /// Permissions known without a payload: an API key's, as configured.
    pub(crate) fn ready(permissions: Permissions) -> Self {
        Self {
            set: OnceLock::from(permissions),
            sources: None,
            found: Vec::new(),
        }
    }

    /// No permissions.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self {
            set: OnceLock::new(),
            sources: None,
            found: Vec::new(),
        }
    }

    fn get(&self, payload: &[u8]) -> &Permissions {
        self.set.get_or_init(|| match &self.sources {
            Some(sources) => sources.collect(payload, &self.found),
            None => Permissions::default(),
        })
    }
}

/// A token the core accepted: its record, typed by the claims type of the layer.
pub(crate) struct Accepted<C> {
    pub(crate) record: Arc<TokenRecord>,
    _claims: PhantomData<fn() -> C>,
}

impl<C> Clone for Accepted<C> {
    fn clone(&self) -> Self {
        Self {
            record: Arc::clone(&self.record),
            _claims: PhantomData,
        }
    }
}

impl<C: Send + Sync + 'static> Accepted<C> {
    /// A record built for claims of type `C`; none when it holds another type (a cache
    /// shared by layers with different claims types).
    pub(crate) fn from_record(record: Arc<TokenRecord>) -> Option<Self> {
        record.claims.is::<C>().then_some(Self {
            record,
            _claims: PhantomData,
        })
    }

    /// The claims, made when first read.
    pub(crate) fn claims(&self) -> Option<&C> {
        self.record.claims::<C>()
    }
}

/// A verified token: its claims, typed, and what verification learned about it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified<C> {
    /// The claims, deserialized into the claims type. Shared: the verified-token cache
    /// and the request extension hold the same value, never a copy.
    pub claims: Arc<C>,
    /// The token's record; its claims are these claims.
    pub(crate) record: Arc<TokenRecord>,
}

impl<C> Verified<C> {
    /// The permissions from the configured permission claims.
    #[must_use]
    pub fn permissions(&self) -> &Permissions {
        self.record.permissions()
    }
}

impl<C: Send + Sync + 'static> Verified<C> {
    /// The accepted token with its claims made; none if they cannot be.
    pub(crate) fn from_accepted(accepted: Accepted<C>) -> Option<Self> {
        let claims = accepted.record.shared_claims::<C>()?;
        Some(Self {
            claims,
            record: accepted.record,
        })
    }
}
