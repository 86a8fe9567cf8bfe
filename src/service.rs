//! [`JwtAuth`]: the tower service behind [`JwtAuthLayer`](crate::JwtAuthLayer).

use std::any::TypeId;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::error::ErrorKind;
use crate::future::ResponseFuture;
use crate::issuer::Issuer;
use crate::jwks::KeyStore;
use crate::jws::header_kid;
use crate::permission::Requirement;
use crate::response::{ChallengeParams, ErrorResponder, Protocol, Rejection, render};
use crate::token::BearerToken;
use crate::verify::{Verified, Verifier};

/// The service that authenticates requests; built by
/// [`JwtAuthLayer`](crate::JwtAuthLayer).
pub struct JwtAuth<S, C> {
    inner: S,
    verifier: Verifier,
    optional: bool,
    /// The context every admitted request carries, naming the claims type `C`.
    context: AuthContext,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C: 'static> JwtAuth<S, C> {
    pub(crate) fn new(inner: S, verifier: Verifier, optional: bool) -> Self {
        let context = verifier.settings().context.for_claims::<C>();
        Self {
            inner,
            verifier,
            optional,
            context,
            _claims: PhantomData,
        }
    }
}

impl<S, C> JwtAuth<S, C> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, C> Clone for JwtAuth<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            verifier: self.verifier.clone(),
            optional: self.optional,
            context: self.context.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for JwtAuth<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("inner", &self.inner)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

/// Put into the extensions of every request the layer lets through, so that extractors
/// and guards further in can tell "no layer" (a wiring mistake) from "no token" and
/// render refusals the same way the layer does.
#[derive(Clone)]
pub(crate) struct AuthContext {
    inner: Arc<ContextData>,
    /// The claims type the layer deserializes into, so that an extractor asking for
    /// another can say so instead of answering as if there were no token.
    claims: Option<ClaimsType>,
}

/// A claims type, compared by `TypeId` and named in messages.
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
}

impl AuthContext {
    /// Built once per configuration; cloning it per request is one reference count.
    pub(crate) fn build(
        challenge: ChallengeParams,
        responder: Arc<dyn ErrorResponder>,
        layer_required: Option<Requirement>,
    ) -> Self {
        Self {
            inner: Arc::new(ContextData {
                challenge,
                responder,
                layer_required,
            }),
            claims: None,
        }
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
    pub(crate) fn claims_type_mismatch<C: 'static>(&self) -> Option<WrongClaimsType> {
        let inserted = self.claims?;
        (inserted.id != TypeId::of::<C>()).then(|| WrongClaimsType {
            requested: std::any::type_name::<C>(),
            inserted: inserted.name,
        })
    }

    pub(crate) fn reject(&self, kind: ErrorKind, protocol: Protocol) -> Response<Bytes> {
        let rejection = Rejection::new(kind, self.inner.challenge.clone());
        render(&*self.inner.responder, &rejection, protocol)
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
        render(&*self.inner.responder, &rejection, protocol)
    }
}

/// A claims extractor for one type behind a layer built for another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrongClaimsType {
    pub(crate) requested: &'static str,
    pub(crate) inserted: &'static str,
}

impl WrongClaimsType {
    /// The message of the 500 (or gRPC `INTERNAL`) answer; type names only.
    pub(crate) fn message(self) -> String {
        tracing::error!(
            requested = self.requested,
            inserted = self.inserted,
            "claims requested with another type than the JwtAuthLayer deserializes"
        );
        format!(
            "tower-jwt-auth: claims of type {} were requested, but the JwtAuthLayer in front of this route deserializes {} (build it with JwtAuthLayer::with_claims::<{}>)",
            self.requested, self.inserted, self.requested
        )
    }

    /// The 500 answer for HTTP.
    pub(crate) fn response(self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::from(self.message()));
        *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        response
    }
}

/// What authentication decided for one request.
enum Outcome<C> {
    Verified(Verified<C>, BearerToken),
    Anonymous,
    Rejected(ErrorKind),
    /// Verified, but without the layer-wide permissions.
    Forbidden(Requirement),
    /// The keys must be waited for: the first load, or a refetch for an unknown `kid`.
    Wait(Arc<Issuer>, Wait, BearerToken),
}

enum Wait {
    FirstLoad,
    UnknownKid(String),
}

impl<S, C> JwtAuth<S, C>
where
    C: DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn context(&self) -> AuthContext {
        self.context.clone()
    }

    /// Applies the layer-wide permission requirement to a verified token.
    fn admit(&self, verified: Verified<C>, token: BearerToken) -> Outcome<C> {
        match &self.verifier.settings().required_permissions {
            Some(required) if !required.is_met(&verified.permissions) => {
                Outcome::Forbidden(required.clone())
            }
            _ => Outcome::Verified(verified, token),
        }
    }

    fn authenticate<B>(&self, request: &Request<B>) -> Outcome<C> {
        let settings = self.verifier.settings();
        let token = match settings
            .token_source
            .extract(request.headers(), request.uri())
        {
            Ok(Some(token)) => token,
            Ok(None) if self.optional => return Outcome::Anonymous,
            Ok(None) => return Outcome::Rejected(ErrorKind::MissingToken),
            Err(kind) => return Outcome::Rejected(kind),
        };
        // The length limit comes first: an oversized token is never decoded.
        let issuer = match self.verifier.issuer_for(token.as_str()) {
            Ok(issuer) => issuer,
            Err(kind) => return Outcome::Rejected(kind),
        };
        let Some(keys) = issuer.store.current() else {
            return Outcome::Wait(Arc::clone(issuer), Wait::FirstLoad, token);
        };
        match self
            .verifier
            .verify_cached::<C>(issuer, &keys, token.as_str())
        {
            Ok(verified) => self.admit(verified, token),
            Err(ErrorKind::UnknownKey) => match header_kid(token.as_str()) {
                Some(kid) => Outcome::Wait(Arc::clone(issuer), Wait::UnknownKid(kid), token),
                None => Outcome::Rejected(ErrorKind::UnknownKey),
            },
            Err(kind) => Outcome::Rejected(kind),
        }
    }
}

/// What a verified request carries to the inner service.
pub(crate) fn insert<C>(
    extensions: &mut http::Extensions,
    verified: Verified<C>,
    token: BearerToken,
    context: AuthContext,
) where
    C: Clone + Send + Sync + 'static,
{
    extensions.insert(verified.claims);
    extensions.insert(verified.permissions);
    extensions.insert(token);
    extensions.insert(context);
}

fn reject(
    verifier: &Verifier,
    kind: ErrorKind,
    store: Option<&dyn KeyStore>,
    protocol: Protocol,
) -> Response<Bytes> {
    let settings = verifier.settings();
    tracing::debug!(error = kind.description(), "request rejected");
    let mut rejection = Rejection::new(kind, settings.challenge.clone());
    if kind == ErrorKind::KeysUnavailable {
        let after = store.map_or(Duration::from_secs(1), KeyStore::retry_after);
        rejection = rejection.with_retry_after(after);
    }
    render(&*settings.responder, &rejection, protocol)
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.authenticate(&request) {
            Outcome::Verified(verified, token) => {
                insert(request.extensions_mut(), verified, token, self.context());
                ResponseFuture::inner(self.inner.call(request))
            }
            Outcome::Forbidden(requirement) => {
                let protocol = Protocol::of(request.version(), request.headers());
                ResponseFuture::rejected(self.context().reject_permission(&requirement, protocol))
            }
            Outcome::Anonymous => {
                request.extensions_mut().insert(self.context());
                ResponseFuture::inner(self.inner.call(request))
            }
            Outcome::Rejected(kind) => {
                let protocol = Protocol::of(request.version(), request.headers());
                ResponseFuture::rejected(reject(&self.verifier, kind, None, protocol))
            }
            Outcome::Wait(issuer, wait, token) => {
                // The readied service goes with the future; this one takes a fresh clone.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let verifier = self.verifier.clone();
                let context = self.context();
                let protocol = Protocol::of(request.version(), request.headers());
                // The store is signalled now, before the future is first polled: a
                // request dropped before then still gets its refetch started.
                let (keys, missing) = match wait {
                    Wait::FirstLoad => (issuer.store.wait_for_keys(), ErrorKind::KeysUnavailable),
                    Wait::UnknownKid(kid) => {
                        (issuer.store.refetch_for_kid(&kid), ErrorKind::UnknownKey)
                    }
                };
                let auth = Box::pin(async move {
                    let result = match keys.await {
                        Some(keys) => verifier.verify_cached::<C>(&issuer, &keys, token.as_str()),
                        None => Err(missing),
                    };
                    match result {
                        Ok(verified) => {
                            if let Some(required) = &verifier.settings().required_permissions
                                && !required.is_met(&verified.permissions)
                            {
                                return Err(context.reject_permission(required, protocol));
                            }
                            insert(request.extensions_mut(), verified, token, context);
                            Ok(request)
                        }
                        Err(kind) => Err(reject(&verifier, kind, Some(&*issuer.store), protocol)),
                    }
                });
                ResponseFuture::authenticating(auth, ready)
            }
        }
    }
}
