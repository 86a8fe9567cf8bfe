//! The rejection context: what a guard or extractor behind the layer needs to refuse a
//! request the way the layer would (challenge parameters, responder, layer-wide
//! permissions), and which claims type the layer deserializes.

use std::any::TypeId;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;

#[cfg(feature = "dpop")]
use crate::dpop::proof::ProofRules;
use crate::error::ErrorKind;
use crate::permission::Requirement;
use crate::response::grpc::{Protocol, render};
use crate::response::{ChallengeParams, ErrorResponder, Rejection};
#[cfg(feature = "dpop")]
use crate::time::unix_seconds;
use crate::tracking::StateRules;

/// Carried by every request the layer lets through (inside its
/// [`Authentication`](crate::Authentication)), so that extractors and guards further in
/// can tell "no layer" (a wiring mistake) from "no token" and render refusals the same
/// way the layer does.
#[derive(Clone)]
pub(crate) struct AuthContext {
    inner: Arc<ContextData>,
    /// The claims type the layer deserializes into, so that an extractor asking for
    /// another can say so instead of answering as if there were no token.
    #[cfg_attr(not(any(feature = "axum", feature = "tonic")), allow(dead_code))]
    claims: Option<ClaimsType>,
}

/// A claims type, compared by `TypeId` and named in messages.
#[cfg_attr(not(any(feature = "axum", feature = "tonic")), allow(dead_code))]
#[derive(Clone, Copy)]
struct ClaimsType {
    id: TypeId,
    name: &'static str,
}

impl ClaimsType {
    fn of<C: 'static>() -> Self {
        Self {
            id: TypeId::of::<C>(),
            name: std::any::type_name::<C>(),
        }
    }
}

struct ContextData {
    challenge: ChallengeParams,
    responder: Arc<dyn ErrorResponder>,
    /// The layer-wide permissions, named in every 403 next to a guard's own.
    layer_required: Option<Requirement>,
    /// The stores, for route guards that ask for single use.
    state: Arc<StateRules>,
    /// DPoP settings, for the fresh nonce of a `use_dpop_nonce` refusal.
    #[cfg(feature = "dpop")]
    dpop: Option<Arc<ProofRules>>,
}

impl AuthContext {
    /// Built once per configuration; cloning it per request is one reference count.
    pub(crate) fn build(
        challenge: ChallengeParams,
        responder: Arc<dyn ErrorResponder>,
        layer_required: Option<Requirement>,
        state: Arc<StateRules>,
        #[cfg(feature = "dpop")] dpop: Option<Arc<ProofRules>>,
    ) -> Self {
        Self {
            inner: Arc::new(ContextData {
                challenge,
                responder,
                layer_required,
                state,
                #[cfg(feature = "dpop")]
                dpop,
            }),
            claims: None,
        }
    }

    /// The 401 of a step-up guard (RFC 9470).
    pub(crate) fn reject_step_up(
        &self,
        acr_values: Option<&str>,
        max_age: Option<u64>,
        protocol: Protocol,
    ) -> Response<Bytes> {
        let rejection = Rejection::step_up(self.inner.challenge.clone(), acr_values, max_age);
        render(&*self.inner.responder, rejection, protocol)
    }

    /// The state step's rules, for a route guard's single-use check.
    pub(crate) fn state(&self) -> &Arc<StateRules> {
        &self.inner.state
    }

    /// The context of a layer or interceptor that deserializes claims into `C`.
    pub(crate) fn for_claims<C: 'static>(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            claims: Some(ClaimsType::of::<C>()),
        }
    }

    /// The wiring mistake of asking for claims of type `C` behind a layer built for
    /// another type: a 500 naming both, rather than a 401 as if there were no token.
    #[cfg_attr(not(any(feature = "axum", feature = "tonic")), allow(dead_code))]
    pub(crate) fn claims_type_mismatch<C: 'static>(&self) -> Option<WrongClaimsType> {
        let inserted = self.claims?;
        (inserted.id != TypeId::of::<C>()).then(|| WrongClaimsType {
            requested: std::any::type_name::<C>(),
            inserted: inserted.name,
        })
    }

    pub(crate) fn reject(&self, kind: ErrorKind, protocol: Protocol) -> Response<Bytes> {
        #[cfg_attr(not(feature = "dpop"), expect(unused_mut))]
        let mut rejection = Rejection::new(kind, self.inner.challenge.clone());
        #[cfg(feature = "dpop")]
        if kind == ErrorKind::UseDpopNonce
            && let Some(nonces) = self.inner.dpop.as_ref().and_then(|d| d.nonce.as_ref())
        {
            let now = unix_seconds(self.inner.state.clock.now());
            if let Some(nonce) = nonces.issue((now * 1000.0).max(0.0) as u64) {
                rejection = rejection.with_dpop_nonce(nonce);
            }
        }
        render(&*self.inner.responder, rejection, protocol)
    }

    /// The 503 while an issuer's keys have never loaded or a token state store does not
    /// answer, with `Retry-After`.
    pub(crate) fn reject_unavailable(
        &self,
        kind: ErrorKind,
        after: Duration,
        protocol: Protocol,
    ) -> Response<Bytes> {
        let rejection = Rejection::new(kind, self.inner.challenge.clone()).with_retry_after(after);
        render(&*self.inner.responder, rejection, protocol)
    }

    /// The 403 for a guard whose requirement is not met. The `scope` it names is what the
    /// request needs in full: the layer-wide permissions and the guard's, so that a client
    /// can ask for exactly that set (step-up, RFC 6750 section 3.1).
    pub(crate) fn reject_permission(
        &self,
        requirement: &Requirement,
        protocol: Protocol,
    ) -> Response<Bytes> {
        let layer = self
            .inner
            .layer_required
            .as_ref()
            .filter(|layer| *layer != requirement)
            .map(Requirement::names)
            .unwrap_or_default();
        let mut names: Vec<&str> = layer.iter().map(AsRef::as_ref).collect();
        for name in requirement.names() {
            if !names.contains(&&**name) {
                names.push(name);
            }
        }
        let rejection =
            Rejection::insufficient(self.inner.challenge.clone(), names, requirement.is_any_of());
        render(&*self.inner.responder, rejection, protocol)
    }
}

/// A claims extractor for one type behind a layer built for another (the extractors of
/// the `axum` and `tonic` features).
#[cfg_attr(not(any(feature = "axum", feature = "tonic")), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrongClaimsType {
    pub(crate) requested: &'static str,
    pub(crate) inserted: &'static str,
}

#[cfg_attr(not(any(feature = "axum", feature = "tonic")), allow(dead_code))]
impl WrongClaimsType {
    /// The message of the 500 (or gRPC `INTERNAL`) answer; type names only.
    pub(crate) fn message(self) -> String {
        format!(
            "tower-jwt-auth: claims of type {} were requested, but the JwtAuthLayer in front of this route deserializes {} (build it with JwtAuthLayer::with_claims::<{}>)",
            self.requested, self.inserted, self.requested
        )
    }
}
