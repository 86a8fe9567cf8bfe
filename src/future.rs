//! The named response future of [`JwtAuth`](crate::JwtAuth).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::body::ResponseBody;

/// The slow path of authentication: waiting for keys. Resolves to the request, ready for
/// the inner service, or to the rejection.
pub(crate) type Authenticating<ReqBody> =
    Pin<Box<dyn Future<Output = Result<Request<ReqBody>, Response<Bytes>>> + Send>>;

pin_project! {
    /// The response future of [`JwtAuth`](crate::JwtAuth): the inner service's future, a
    /// rejection that is ready at once, or, while keys are being fetched, the wait for
    /// them followed by the inner call.
    pub struct ResponseFuture<F, S, ReqBody> {
        #[pin]
        kind: Kind<F, S, ReqBody>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, S, ReqBody> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<Bytes>> },
        Authenticating { auth: Authenticating<ReqBody>, service: Option<S> },
    }
}

impl<F, S, ReqBody> ResponseFuture<F, S, ReqBody> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
        }
    }

    /// `service` must be the instance `poll_ready` was called on.
    pub(crate) fn authenticating(auth: Authenticating<ReqBody>, service: S) -> Self {
        Self {
            kind: Kind::Authenticating {
                auth,
                service: Some(service),
            },
        }
    }
}

impl<F, S, ReqBody, B, E> Future for ResponseFuture<F, S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<B>, Error = E, Future = F>,
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.kind.as_mut().project() {
                KindProj::Inner { future } => {
                    return future
                        .poll(cx)
                        .map(|result| result.map(|response| response.map(ResponseBody::inner)));
                }
                KindProj::Rejected { response } => {
                    return Poll::Ready(Ok(take_rejection(response).map(ResponseBody::rejection)));
                }
                KindProj::Authenticating { auth, service } => {
                    let outcome = ready!(auth.as_mut().poll(cx));
                    let next = match (outcome, service.take()) {
                        (Ok(request), Some(mut service)) => Kind::Inner {
                            future: service.call(request),
                        },
                        (Err(response), _) => Kind::Rejected {
                            response: Some(response),
                        },
                        (Ok(_), None) => Kind::Rejected { response: None },
                    };
                    this.kind.set(next);
                }
            }
        }
    }
}

/// The rejection, once. Polling again after completion is a caller bug; it gets an empty
/// 500 rather than a panic.
fn take_rejection(response: &mut Option<Response<Bytes>>) -> Response<Bytes> {
    response.take().unwrap_or_else(|| {
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

impl<F, S, ReqBody> std::fmt::Debug for ResponseFuture<F, S, ReqBody> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
