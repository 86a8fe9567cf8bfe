//! The response futures of the crate's middleware: one machinery (the inner service's
//! future, a rejection ready at once, or a wait followed by the inner call), and a named
//! type for each service, declared by [`response_future!`], in the module of its service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::response::ResponseBody;

/// The slow path of authentication: waiting for keys. Resolves to the request, ready for
/// the inner service, or to the rejection.
pub(crate) type Authenticating<ReqBody> =
    Pin<Box<dyn Future<Output = Result<Request<ReqBody>, Response<Bytes>>> + Send>>;

pin_project! {
    /// What every response future of the crate runs: the inner service's future, a
    /// rejection that is ready at once, or a wait (for keys, a store) followed by the
    /// inner call.
    pub(crate) struct Responding<F, S, ReqBody> {
        #[pin]
        kind: Kind<F, S, ReqBody>,
        // The token came in the URI: a success gets `Cache-Control: private` (RFC 6750
        // section 2.3) unless it says who may store it, so a shared cache never keeps it.
        private: bool,
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

impl<F, S, ReqBody> Responding<F, S, ReqBody> {
    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
            private: false,
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            kind: Kind::Rejected {
                response: Some(response),
            },
            private: false,
        }
    }

    /// `service` must be the instance `poll_ready` was called on.
    pub(crate) fn authenticating(auth: Authenticating<ReqBody>, service: S) -> Self {
        Self {
            kind: Kind::Authenticating {
                auth,
                service: Some(service),
            },
            private: false,
        }
    }

    /// Marks the response of a request whose token came in the URI.
    pub(crate) fn private(mut self) -> Self {
        self.private = true;
        self
    }
}

impl<F, S, ReqBody, B, E> Future for Responding<F, S, ReqBody>
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
                    let private = *this.private;
                    return future.poll(cx).map(|result| {
                        result.map(|mut response| {
                            if private && response.status().is_success() {
                                keep_private(response.headers_mut());
                            }
                            response.map(ResponseBody::inner)
                        })
                    });
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

/// Adds `Cache-Control: private` unless the response already says who may store it
/// (`private`, `no-store` or `public`): `no-cache` alone, as axum's `Sse` sends, still
/// lets a shared cache store the response.
fn keep_private(headers: &mut http::HeaderMap) {
    let decided = headers.get_all(CACHE_CONTROL).iter().any(|value| {
        value.as_bytes().split(|&b| b == b',').any(|directive| {
            let name = directive.split(|&b| b == b'=').next().unwrap_or_default();
            let name = name.trim_ascii();
            [&b"private"[..], b"no-store", b"public"]
                .iter()
                .any(|d| name.eq_ignore_ascii_case(d))
        })
    });
    if !decided {
        headers.append(CACHE_CONTROL, HeaderValue::from_static("private"));
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

/// Declares the named response future of one service over [`Responding`].
macro_rules! response_future {
    ($(#[$doc:meta])* $name:ident) => {
        pin_project_lite::pin_project! {
            $(#[$doc])*
            pub struct $name<F, S, ReqBody> {
                #[pin]
                inner: crate::future::Responding<F, S, ReqBody>,
            }
        }

        impl<F, S, ReqBody> $name<F, S, ReqBody> {
            pub(crate) fn inner(future: F) -> Self {
                Self { inner: crate::future::Responding::inner(future) }
            }

            pub(crate) fn rejected(response: http::Response<bytes::Bytes>) -> Self {
                Self { inner: crate::future::Responding::rejected(response) }
            }

            /// Marks the response of a request whose token came in the URI.
            #[allow(dead_code)]
            pub(crate) fn private(self) -> Self {
                Self { inner: self.inner.private() }
            }

            /// `service` must be the instance `poll_ready` was called on.
            #[allow(dead_code)]
            pub(crate) fn authenticating(
                auth: crate::future::Authenticating<ReqBody>,
                service: S,
            ) -> Self {
                Self { inner: crate::future::Responding::authenticating(auth, service) }
            }
        }

        impl<F, S, ReqBody, B, E> std::future::Future for $name<F, S, ReqBody>
        where
            S: tower_service::Service<
                    http::Request<ReqBody>,
                    Response = http::Response<B>,
                    Error = E,
                    Future = F,
                >,
            F: std::future::Future<Output = Result<http::Response<B>, E>>,
        {
            type Output = Result<http::Response<crate::response::ResponseBody<B>>, E>;

            fn poll(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Self::Output> {
                self.project().inner.poll(cx)
            }
        }

        impl<F, S, ReqBody> std::fmt::Debug for $name<F, S, ReqBody> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

pub(crate) use response_future;
