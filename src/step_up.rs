//! [`StepUp`]: the guard for routes that need a stronger or more recent login than the
//! token shows (RFC 9470). It reads the verified token's `acr` and `auth_time` (from an
//! opaque token's introspection answer, which carries them too); when
//! they fall short it answers 401 `insufficient_user_authentication` with the
//! `acr_values` and `max_age` the client should ask the authorization server for.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use serde::Deserialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::authentication::Authentication;
use crate::error::ErrorKind;
use crate::response::grpc::Protocol;
use crate::response::{ResponseBody, missing_layer};
use crate::telemetry;
use crate::text::Text;
use crate::time::unix_seconds;

/// A guard requiring an authentication context class (`acr`) and/or a recent login
/// (`auth_time` at most `max_age` ago). Without a verified token it answers 401 like the
/// layer; with a token that falls short, 401 with
/// `error="insufficient_user_authentication"` and `acr_values` / `max_age` in the
/// challenge (RFC 9470 section 3), gRPC `UNAUTHENTICATED` with the same challenge.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower_jwt_auth::StepUp;
///
/// async fn security_settings() {}
///
/// let app: Router = Router::new().route(
///     "/account/security",
///     get(security_settings).route_layer(StepUp::new().acr(["mfa"]).max_age(Duration::from_secs(300))),
/// );
/// # let _ = app;
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct StepUp {
    rule: Arc<Rule>,
}

#[derive(Default)]
struct Rule {
    acr: Vec<Box<str>>,
    /// `acr` joined by spaces, for the challenge.
    acr_values: Option<String>,
    max_age: Option<Duration>,
}

impl StepUp {
    /// A guard that asks nothing yet; add [`acr`](Self::acr) and/or
    /// [`max_age`](Self::max_age).
    pub fn new() -> Self {
        Self::default()
    }

    /// The token's `acr` must be one of `values` (compared exactly).
    pub fn acr<I, S>(self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        let mut rule = self.take();
        rule.acr.extend(values.into_iter().map(Into::into));
        rule.acr_values = (!rule.acr.is_empty()).then(|| rule.acr.join(" "));
        Self {
            rule: Arc::new(rule),
        }
    }

    /// The token's `auth_time` must be at most `max_age` before now (the layer's clock);
    /// a token without `auth_time` falls short.
    pub fn max_age(self, max_age: Duration) -> Self {
        let mut rule = self.take();
        rule.max_age = Some(max_age);
        Self {
            rule: Arc::new(rule),
        }
    }

    fn take(self) -> Rule {
        Arc::try_unwrap(self.rule).unwrap_or_else(|shared| Rule {
            acr: shared.acr.clone(),
            acr_values: shared.acr_values.clone(),
            max_age: shared.max_age,
        })
    }
}

impl fmt::Debug for StepUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUp")
            .field("acr", &self.rule.acr)
            .field("max_age", &self.rule.max_age)
            .finish()
    }
}

/// The claims the guard reads.
#[derive(Deserialize)]
struct Authenticated<'a> {
    #[serde(default, borrow, deserialize_with = "lenient_text")]
    acr: Option<Text<'a>>,
    #[serde(default, deserialize_with = "lenient_number")]
    auth_time: Option<f64>,
}

fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Text<'de>>, D::Error> {
    let raw = <&serde_json::value::RawValue>::deserialize(d)?;
    Ok(Text::deserialize(raw).ok())
}

fn lenient_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let raw = <&serde_json::value::RawValue>::deserialize(d)?;
    Ok(crate::claims::numeric(raw).ok())
}

impl Rule {
    /// Whether the verified token's payload meets the rule at `now` (Unix seconds).
    fn is_met(&self, payload: &[u8], now: f64) -> bool {
        let Ok(claims) = serde_json::from_slice::<Authenticated<'_>>(payload) else {
            return false;
        };
        if !self.acr.is_empty() {
            let acr = claims.acr.as_ref().map(|a| a.0.as_ref());
            if !acr.is_some_and(|acr| self.acr.iter().any(|v| **v == *acr)) {
                return false;
            }
        }
        if let Some(max_age) = self.max_age {
            let Some(auth_time) = claims.auth_time else {
                return false;
            };
            if now - auth_time > max_age.as_secs_f64() {
                return false;
            }
        }
        true
    }
}

impl<S> Layer<S> for StepUp {
    type Service = StepUpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StepUpService {
            inner,
            rule: Arc::clone(&self.rule),
        }
    }
}

crate::future::response_future! {
    /// The response future of [`StepUpService`]: the inner service's, or the refusal.
    StepUpFuture
}

/// The service of a [`StepUp`] guard.
#[derive(Clone)]
pub struct StepUpService<S> {
    inner: S,
    rule: Arc<Rule>,
}

impl<S: fmt::Debug> fmt::Debug for StepUpService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StepUpService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = StepUpFuture<S::Future, S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(auth) = request.extensions().get::<Authentication>() else {
            return StepUpFuture::rejected(missing_layer());
        };
        // Read from the request's headers only when it is refused.
        let protocol = || Protocol::of(request.version(), request.headers());
        if !auth.is_authenticated() {
            telemetry::count_guard_refusal(&[Box::from("step_up")]);
            return StepUpFuture::rejected(
                auth.context.reject(ErrorKind::MissingToken, protocol()),
            );
        };
        let now = unix_seconds(auth.context.state().clock.now());
        let payload = auth.payload();
        if payload.is_some_and(|payload| self.rule.is_met(payload, now)) {
            return StepUpFuture::inner(self.inner.call(request));
        }
        telemetry::count_guard_refusal(&[Box::from("step_up")]);
        let max_age = self.rule.max_age.map(|age| age.as_secs());
        let refusal =
            auth.context
                .reject_step_up(self.rule.acr_values.as_deref(), max_age, protocol());
        StepUpFuture::rejected(refusal)
    }
}
