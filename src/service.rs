//! [`JwtAuth`]: the tower service behind [`JwtAuthLayer`](crate::JwtAuthLayer), a thin
//! adapter between a request and the authentication core.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use serde::de::DeserializeOwned;
use tower_service::Service;
use tracing::Instrument as _;
use tracing::field::{self, Empty};

use crate::authentication::Authentication;
use crate::binding::Miswired;
use crate::context::AuthContext;
use crate::core::{self, Outcome, Step, Validator};
use crate::error::ErrorKind;
use crate::log::LogKid;
use crate::policy::Policy;
use crate::reload::PolicySource;
use crate::response::ResponseBody;
use crate::response::grpc::Protocol;
use crate::telemetry::{self, AuditEvent};
use crate::token::BearerToken;

crate::future::response_future! {
    /// The response future of [`JwtAuth`]: the inner service's future, a refusal ready at
    /// once, or, while keys or a store answer are awaited, the wait followed by the
    /// inner call.
    ResponseFuture
}

/// The service that authenticates requests; built by
/// [`JwtAuthLayer`](crate::JwtAuthLayer).
pub struct JwtAuth<S, C> {
    inner: S,
    /// The policy, fixed or live (reloadable).
    source: PolicySource,
    optional: bool,
    /// The check over the typed claims, from [`JwtAuthLayer::validate`](crate::JwtAuthLayer::validate).
    validator: Option<Validator<C>>,
    _claims: PhantomData<fn() -> C>,
}

impl<S, C: 'static> JwtAuth<S, C> {
    pub(crate) fn new(
        inner: S,
        source: PolicySource,
        optional: bool,
        validator: Option<Validator<C>>,
    ) -> Self {
        Self {
            inner,
            source,
            optional,
            validator,
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
            source: self.source.clone(),
            optional: self.optional,
            validator: self.validator.clone(),
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

/// Tells the span, the metrics and the audit hook what the core decided. Nothing here
/// comes from the token but its verified claims; the issuer is the configured one.
fn report<C>(
    policy: &Policy,
    span: &tracing::Span,
    outcome: &Outcome<C, BearerToken>,
    request: &http::request::Request<impl Sized>,
) {
    let label = outcome.label();
    telemetry::count_request(label);
    let (issuer, identity, credential) = outcome.identity();
    let issuer = issuer.map(|issuer| issuer.matcher.as_str());
    let kid = identity.and_then(|i| i.kid.as_deref());
    let subject = identity.and_then(|i| i.subject.as_deref());
    let client_id = identity.and_then(|i| i.client_id.as_deref());
    if !span.is_disabled() {
        span.record("outcome", label);
        if let Some(issuer) = issuer {
            span.record("issuer", issuer);
        }
        if let Some(kid) = kid {
            span.record("kid", field::debug(LogKid(kid)));
        }
        if let Some(client_id) = client_id {
            span.record("client_id", client_id);
        }
        if let Some(subject) = subject.and_then(|s| policy.telemetry.subject.render(s)) {
            span.record("subject", subject.as_str());
        }
    }
    if let Some(hook) = &policy.telemetry.audit {
        hook(&AuditEvent {
            outcome: label,
            error: outcome.error(),
            method: request.method(),
            path: request.uri().path(),
            issuer,
            subject,
            client_id,
            kid,
            credential,
        });
    }
}

/// The span of one request's authentication; its fields are filled once decided.
fn span() -> tracing::Span {
    tracing::debug_span!(
        target: telemetry::SPAN_TARGET,
        "jwt_auth",
        outcome = Empty,
        issuer = Empty,
        kid = Empty,
        client_id = Empty,
        subject = Empty
    )
}

/// The answer to a request the application did not prepare as configured: a 500 naming
/// what is missing (a wiring mistake, not a client error).
fn miswired(message: &'static str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from_static(message.as_bytes()));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// What the core decided, as the request to pass on or the response to send.
#[allow(clippy::result_large_err)] // the error is the response to send; it is moved once
fn settle<C, B>(
    outcome: Outcome<C, BearerToken>,
    policy: &Policy,
    context: &AuthContext,
    span: &tracing::Span,
    request: &mut Request<B>,
) -> Result<(), Response<Bytes>>
where
    C: Send + Sync + 'static,
{
    report(policy, span, &outcome, request);
    // Read from the request's headers only when it is refused.
    let protocol = |request: &Request<B>| Protocol::of(request.version(), request.headers());
    match outcome {
        Outcome::Authenticated(verified, issuer, token) => {
            if !policy.forwarding.is_empty() {
                let api_key = verified.record.kind == crate::api_key::CredentialKind::ApiKey;
                let forwarded = verified.record.forwarded.as_ref();
                let payload = Some(&*verified.record.payload);
                let headers = request.headers_mut();
                policy
                    .forwarding
                    .apply(headers, forwarded, token.as_str(), payload, api_key);
            }
            let authentication = Authentication::verified(context.clone(), verified, token, issuer);
            request.extensions_mut().insert(authentication);
            Ok(())
        }
        Outcome::Anonymous => {
            let authentication = Authentication::anonymous(context.clone());
            request.extensions_mut().insert(authentication);
            Ok(())
        }
        Outcome::Forbidden(requirement, ..) => {
            Err(context.reject_permission(&requirement, protocol(request)))
        }
        Outcome::Unavailable(kind, after) => {
            Err(context.reject_unavailable(kind, after, protocol(request)))
        }
        Outcome::Rejected(kind) => {
            tracing::debug!(error = kind.description(), "request rejected");
            Err(context.reject(kind, protocol(request)))
        }
    }
}

/// An outcome known without waiting: the request passed on to `inner`, or the response.
/// The span is left before the inner service is called.
fn answer_now<S, C, ReqBody, ResBody>(
    inner: &mut S,
    outcome: Outcome<C, BearerToken>,
    policy: &Policy,
    span: &tracing::Span,
    entered: tracing::span::Entered<'_>,
    mut request: Request<ReqBody>,
) -> ResponseFuture<S::Future, S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Send + Sync + 'static,
{
    let context = policy.context.for_claims::<C>();
    let settled = settle(outcome, policy, &context, span, &mut request);
    drop(entered);
    match settled {
        Ok(()) => ResponseFuture::inner(inner.call(request)),
        Err(response) => ResponseFuture::rejected(response),
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for JwtAuth<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    C: DeserializeOwned + Send + Sync + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let span = span();
        let entered = span.enter();
        let policy = self.source.load();
        if !policy.forwarding.is_empty() {
            policy.forwarding.scrub(request.headers_mut());
        }
        let exempt = policy
            .exemptions
            .matches(request.method(), request.uri(), request.headers());
        let optional = match exempt {
            // A profile's layer needs a token on every request, optional() or not.
            Ok(exempt) => (self.optional && policy.profile.is_none()) || exempt,
            Err(why) => {
                tracing::debug!(
                    why,
                    "a path of ambiguous form refused where an exemption matched it"
                );
                let outcome: Outcome<C, _> = Outcome::Rejected(ErrorKind::AmbiguousPath);
                return answer_now(&mut self.inner, outcome, &policy, &span, entered, request);
            }
        };
        let presented = if policy.binding.is_active() {
            let presented = policy.binding.presented(
                request.method(),
                request.uri().path(),
                request.headers(),
                request.extensions(),
            );
            match presented {
                Ok(presented) => Some(presented),
                Err(Miswired(message)) => {
                    drop(entered);
                    tracing::error!("{message}");
                    return ResponseFuture::rejected(miswired(message));
                }
            }
        } else {
            None
        };
        if let Some(forwarded) = &policy.binding.forwarded {
            // Read above; the application never sees the proxy's secret.
            forwarded.scrub(request.headers_mut());
        }
        let step = core::authenticate::<C>(
            &policy,
            request.method(),
            request.headers(),
            request.uri(),
            optional,
            presented,
            self.validator.as_ref(),
        );
        let mut in_uri = false;
        if policy.token.source.scrubs() {
            // Read above; the token never reaches the inner service in the URI or
            // as a subprotocol it could select.
            let (mut parts, body) = request.into_parts();
            let source = &policy.token.source;
            in_uri = source.scrub(&parts.method, &mut parts.uri, &mut parts.headers);
            request = Request::from_parts(parts, body);
        }
        let future = match step {
            Step::Done(outcome) => {
                answer_now(&mut self.inner, outcome, &policy, &span, entered, request)
            }
            Step::Wait(pending) => {
                // The readied service goes with the future; this one takes a fresh clone.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let policy = Arc::clone(&policy);
                let context = policy.context.for_claims::<C>();
                drop(entered);
                let waiting = span.clone();
                let auth = Box::pin(
                    async move {
                        let outcome = pending.finish(&policy).await;
                        settle(outcome, &policy, &context, &waiting, &mut request).map(|()| request)
                    }
                    .instrument(span),
                );
                ResponseFuture::authenticating(auth, ready)
            }
        };
        if in_uri { future.private() } else { future }
    }
}
