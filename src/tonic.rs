//! gRPC with tonic (feature `tonic`).
//!
//! The same [`JwtAuthLayer`](crate::JwtAuthLayer) protects a tonic server:
//!
//! ```no_run
//! # use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};
//! # async fn run(cfg: JwtAuthConfig) -> Result<(), Box<dyn std::error::Error>> {
//! tonic::transport::Server::builder()
//!     .layer(JwtAuthLayer::new(cfg))
//!     // .add_service(DocumentsServer::new(service))
//!     # .add_routes(tonic::service::Routes::default())
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! **How gRPC is detected.** The layer itself looks at each rejected request: when it
//! arrives over HTTP/2 with a `content-type` starting with `application/grpc`, the
//! rejection is a gRPC trailers-only response (HTTP 200, `grpc-status`, `grpc-message`
//! with the same short description as HTTP, `Cache-Control: no-store`); otherwise, an
//! HTTP/1.1 request with a gRPC content type included, it stays an HTTP answer from the
//! configured responder. No responder needs to be chosen, and one
//! layer serves a server that speaks both (gRPC and, say, a health endpoint over plain
//! HTTP). The mapping: no token, a malformed or an invalid token → `UNAUTHENTICATED`
//! (16); a missing permission → `PERMISSION_DENIED` (7); keys never loaded, a token
//! state store or the introspection endpoint not answering → `UNAVAILABLE` (14). The
//! crate's one table of refusal kinds decides each code. Authentication runs before routing, so an unknown method gets
//! `UNIMPLEMENTED` with a valid token and `UNAUTHENTICATED` without one.
//!
//! Handlers read the caller with [`RequestExt`]; per-method permissions come from
//! [`MethodPermissions`](crate::guard::MethodPermissions), or
//! [`RequirePermission`](struct@crate::RequirePermission) around one generated server
//! (both forward tonic's `NamedService`, so `add_service` accepts them).
//!
//! For code that cannot add a tower layer, [`JwtInterceptor`] checks tokens in a tonic
//! interceptor, with the limits its documentation gives.

use std::fmt;
use std::marker::PhantomData;

use http::Uri;
use serde::de::DeserializeOwned;
use tonic::server::NamedService;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::authentication::Authentication;
use crate::claims::StandardClaims;
use crate::config::JwtAuthConfig;
use crate::context::AuthContext;
use crate::core::{self, Outcome, Step};
use crate::error::{AuthError, ErrorKind};
use crate::guard::RequirePermissionService;
use crate::permission::Permissions;
use crate::service::JwtAuth;
use crate::token::BearerToken;

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        let row = error.kind().row();
        Status::new(tonic::Code::from(i32::from(row.grpc)), row.description)
    }
}

impl<S: NamedService, C> NamedService for JwtAuth<S, C> {
    const NAME: &'static str = S::NAME;
}

impl<S: NamedService> NamedService for RequirePermissionService<S> {
    const NAME: &'static str = S::NAME;
}

fn no_layer() -> Status {
    tracing::error!("claims read in a gRPC service that no JwtAuthLayer covers");
    Status::internal("tower-jwt-auth: no JwtAuthLayer or JwtInterceptor in front of this service")
}

/// The layer's [`Authentication`], or `INTERNAL` when no layer or interceptor ran.
fn authentication<T>(request: &Request<T>) -> Result<&Authentication, Status> {
    request
        .extensions()
        .get::<Authentication>()
        .ok_or_else(no_layer)
}

/// `UNAUTHENTICATED` for a request an optional layer let through without a token.
fn unauthenticated() -> Status {
    AuthError::new(ErrorKind::MissingToken).into()
}

/// Reads the verified caller from a `tonic::Request`.
///
/// ```
/// use tonic::{Request, Response, Status};
/// use tower_jwt_auth::StandardClaims;
/// use tower_jwt_auth::tonic::RequestExt;
///
/// fn get(request: Request<()>) -> Result<Response<String>, Status> {
///     request.require_permission("read")?;
///     let claims = request.claims::<StandardClaims>()?;
///     Ok(Response::new(claims.sub.clone().unwrap_or_default()))
/// }
/// ```
pub trait RequestExt {
    /// The verified claims.
    ///
    /// # Errors
    ///
    /// `UNAUTHENTICATED` for a request an optional layer let through without a token;
    /// `INTERNAL` when no layer or interceptor ran, or when they were built for another
    /// claims type (wiring mistakes; the message names both types).
    fn claims<C: Send + Sync + 'static>(&self) -> Result<&C, Status>;

    /// The verified token's permissions.
    ///
    /// # Errors
    ///
    /// As [`claims`](Self::claims).
    fn permissions(&self) -> Result<&Permissions, Status>;

    /// Checks one permission.
    ///
    /// # Errors
    ///
    /// `PERMISSION_DENIED` without it; otherwise as [`claims`](Self::claims).
    fn require_permission(&self, permission: &str) -> Result<(), Status>;

    /// The raw token, for calling further services on the caller's behalf; none for an
    /// API key, which is never relayed.
    fn bearer_token(&self) -> Option<&BearerToken>;
}

impl<T> RequestExt for Request<T> {
    fn claims<C: Send + Sync + 'static>(&self) -> Result<&C, Status> {
        let auth = authentication(self)?;
        if let Some(wrong) = auth.context.claims_type_mismatch::<C>() {
            tracing::error!("{}", wrong.message());
            return Err(Status::internal(wrong.message()));
        }
        match auth.claims::<C>() {
            Some(claims) => Ok(claims),
            // Never read as "no token": the token was verified, its claims were not made.
            None if auth.is_authenticated() => Err(Status::internal(
                "the verified token's claims could not be made",
            )),
            None => Err(unauthenticated()),
        }
    }

    fn permissions(&self) -> Result<&Permissions, Status> {
        let auth = authentication(self)?;
        if auth.is_authenticated() {
            Ok(auth.permissions())
        } else {
            Err(unauthenticated())
        }
    }

    fn require_permission(&self, permission: &str) -> Result<(), Status> {
        if self.permissions()?.contains(permission) {
            Ok(())
        } else {
            Err(AuthError::new(ErrorKind::InsufficientPermission).into())
        }
    }

    fn bearer_token(&self) -> Option<&BearerToken> {
        self.extensions().get::<Authentication>()?.token()
    }
}

/// A tonic interceptor that verifies the bearer token, for servers that cannot add a
/// tower layer (`DocumentsServer::with_interceptor(service, interceptor)`).
///
/// Prefer [`JwtAuthLayer`](crate::JwtAuthLayer): interceptors are synchronous, so this one
/// cannot wait for the network. It verifies with the keys loaded so far:
///
/// - with static keys it behaves as the layer does;
/// - with remote keys, requests before the first load get `UNAVAILABLE` instead of
///   waiting for it, and a token whose `kid` is not yet known gets `UNAUTHENTICATED`
///   instead of waiting for the refetch (which it starts in the background, so the next
///   request with that `kid` passes);
/// - claim rules, the client allow-list and claim forwarding apply (client-sent
///   metadata of a forwarded name is removed from every request, and the verified
///   values set, as the layer does); exemptions do not (an interceptor sees no request
///   path), nor a network replay store or revocation list, which it cannot wait for
///   (`UNAVAILABLE`): those need the layer.
///
/// On success the claims, [`Permissions`] and [`BearerToken`] go into the request
/// extensions, where [`RequestExt`] reads them. Each call counts in
/// `jwt_auth_requests_total` (feature `metrics`); the span and the audit hook, which
/// name the method and path, belong to the layer.
///
/// ```
/// # use tower_jwt_auth::JwtAuthConfig;
/// use tower_jwt_auth::tonic::JwtInterceptor;
/// # let cfg = JwtAuthConfig::builder().issuer("i").audience("a").hmac_secret(vec![1u8; 32]).build()?;
/// let interceptor = JwtInterceptor::new(cfg);
/// // DocumentsServer::with_interceptor(service, interceptor)
/// # let _ = interceptor;
/// # Ok::<(), tower_jwt_auth::ConfigError>(())
/// ```
pub struct JwtInterceptor<C = StandardClaims> {
    config: JwtAuthConfig,
    /// The context admitted requests carry, naming the claims type `C`.
    context: AuthContext,
    _claims: PhantomData<fn() -> C>,
}

impl JwtInterceptor<StandardClaims> {
    /// An interceptor that puts [`StandardClaims`] into request extensions.
    #[must_use]
    pub fn new(config: JwtAuthConfig) -> Self {
        Self::with_claims(config)
    }

    /// An interceptor for a claims type of your own.
    #[must_use]
    pub fn with_claims<C: 'static>(config: JwtAuthConfig) -> JwtInterceptor<C> {
        let context = config.policy.context.for_claims::<C>();
        JwtInterceptor {
            config,
            context,
            _claims: PhantomData,
        }
    }
}

impl<C> Clone for JwtInterceptor<C> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            context: self.context.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> fmt::Debug for JwtInterceptor<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtInterceptor")
            .field("config", &self.config)
            .finish()
    }
}

impl<C> Interceptor for JwtInterceptor<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let policy = &self.config.policy;
        let mut headers = std::mem::take(request.metadata_mut()).into_headers();
        // As in the layer: a client never sets a forwarded header, whatever the outcome.
        if !policy.forwarding.is_empty() {
            policy.forwarding.scrub(&mut headers);
        }
        // The synchronous part of the core only: a wait for keys is given up at once
        // (the key store was signalled, so the next request can pass).
        let outcome = match core::authenticate::<C>(
            policy,
            &http::Method::POST,
            &headers,
            &Uri::default(),
            false,
            None,
            None,
        ) {
            Step::Done(outcome) => outcome,
            Step::Wait(pending) => pending.give_up(policy),
        };
        if policy.token.source.scrubs() {
            // As in the layer: the handler never sees a token's subprotocol entry.
            let source = &policy.token.source;
            source.scrub(&http::Method::POST, &mut Uri::default(), &mut headers);
        }
        crate::telemetry::count_request(outcome.label());
        match outcome {
            Outcome::Authenticated(verified, issuer, token) => {
                if !policy.forwarding.is_empty() {
                    let api_key = verified.record.kind == crate::api_key::CredentialKind::ApiKey;
                    let forwarded = verified.record.forwarded.as_ref();
                    let payload = Some(&*verified.record.payload);
                    policy.forwarding.apply(
                        &mut headers,
                        forwarded,
                        token.as_str(),
                        payload,
                        api_key,
                    );
                }
                *request.metadata_mut() = tonic::metadata::MetadataMap::from_headers(headers);
                let context = self.context.clone();
                let authentication = Authentication::verified(context, verified, token, issuer);
                request.extensions_mut().insert(authentication);
                Ok(request)
            }
            // Not optional, so `Anonymous` never comes back; every other outcome refuses.
            refused => {
                let kind = refused.error().unwrap_or(ErrorKind::MissingToken);
                Err(AuthError::new(kind).into())
            }
        }
    }
}
