//! [`JwtAuth`]: the tower service behind [`JwtAuthLayer`](crate::JwtAuthLayer).

use std::fmt;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::error::ErrorKind;
use crate::future::ResponseFuture;
use crate::response::Rejection;
use crate::token::BearerToken;
use crate::verify::Verifier;

/// The service that authenticates requests; built by
/// [`JwtAuthLayer`](crate::JwtAuthLayer).
pub struct JwtAuth<S, C> {
    inner: S,
    verifier: Verifier,
    optional: bool,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C> JwtAuth<S, C> {
    pub(crate) fn new(inner: S, verifier: Verifier, optional: bool) -> Self {
        Self {
            inner,
            verifier,
            optional,
            _claims: PhantomData,
        }
    }

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
    realm: Option<std::sync::Arc<str>>,
    responder: std::sync::Arc<dyn crate::response::ErrorResponder>,
}

impl AuthContext {
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn reject(&self, kind: ErrorKind) -> Response<bytes::Bytes> {
        self.responder
            .respond(&Rejection::new(kind, self.realm.clone()))
    }
}

/// What authentication decided for one request.
enum Outcome<C> {
    Verified(C, BearerToken),
    Anonymous,
    Rejected(ErrorKind),
}

impl<S, C> JwtAuth<S, C>
where
    C: DeserializeOwned,
{
    fn context(&self) -> AuthContext {
        let settings = self.verifier.settings();
        AuthContext {
            realm: settings.realm.clone(),
            responder: std::sync::Arc::clone(&settings.responder),
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
        let Some(keys) = settings.keys.current() else {
            return Outcome::Rejected(ErrorKind::KeysUnavailable);
        };
        match self.verifier.verify_with::<C>(&keys, token.as_str()) {
            Ok(claims) => Outcome::Verified(claims, token),
            Err(kind) => Outcome::Rejected(kind),
        }
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        match self.authenticate(&request) {
            Outcome::Verified(claims, token) => {
                let extensions = request.extensions_mut();
                extensions.insert(claims);
                extensions.insert(token);
                extensions.insert(self.context());
                ResponseFuture::inner(self.inner.call(request))
            }
            Outcome::Anonymous => {
                request.extensions_mut().insert(self.context());
                ResponseFuture::inner(self.inner.call(request))
            }
            Outcome::Rejected(kind) => {
                let settings = self.verifier.settings();
                tracing::debug!(
                    error = kind.description(),
                    method = %request.method(),
                    path = request.uri().path(),
                    "request rejected"
                );
                let mut rejection = Rejection::new(kind, settings.realm.clone());
                if kind == ErrorKind::KeysUnavailable {
                    rejection = rejection.with_retry_after(std::time::Duration::from_secs(1));
                }
                ResponseFuture::rejected(settings.responder.respond(&rejection))
            }
        }
    }
}
