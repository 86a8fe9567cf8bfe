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
//! (16); a missing permission → `PERMISSION_DENIED` (7); keys never loaded →
//! `UNAVAILABLE` (14). Authentication runs before routing, so an unknown method gets
//! `UNIMPLEMENTED` with a valid token and `UNAUTHENTICATED` without one.
//!
//! Handlers read the caller with [`RequestExt`]; per-method permissions come from
//! [`MethodPermissions`](crate::MethodPermissions), or
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

use crate::claims::StandardClaims;
use crate::config::JwtAuthConfig;
use crate::error::{AuthError, ErrorKind};
use crate::permission::{Permissions, RequirePermissionService};
use crate::service::{AuthContext, JwtAuth, insert};
use crate::token::BearerToken;
use crate::verify::Verifier;

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        let message = error.description();
        match error.kind() {
            ErrorKind::InsufficientPermission => Status::permission_denied(message),
            ErrorKind::KeysUnavailable => Status::unavailable(message),
            _ => Status::unauthenticated(message),
        }
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

/// What the layer put into the request: `UNAUTHENTICATED` when an optional layer let it
/// through without a token, `INTERNAL` when no layer ran.
fn verified<V: Send + Sync + 'static, T>(request: &Request<T>) -> Result<&V, Status> {
    match request.extensions().get::<V>() {
        Some(value) => Ok(value),
        None if request.extensions().get::<AuthContext>().is_some() => {
            Err(AuthError::new(ErrorKind::MissingToken).into())
        }
        None => Err(no_layer()),
    }
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

    /// The raw token, for calling further services on the caller's behalf.
    fn bearer_token(&self) -> Option<&BearerToken>;
}

impl<T> RequestExt for Request<T> {
    fn claims<C: Send + Sync + 'static>(&self) -> Result<&C, Status> {
        if let Some(context) = self.extensions().get::<AuthContext>()
            && let Some(wrong) = context.claims_type_mismatch::<C>()
        {
            return Err(Status::internal(wrong.message()));
        }
        verified::<C, T>(self)
    }

    fn permissions(&self) -> Result<&Permissions, Status> {
        verified::<Permissions, T>(self)
    }

    fn require_permission(&self, permission: &str) -> Result<(), Status> {
        if self.permissions()?.contains(permission) {
            Ok(())
        } else {
            Err(AuthError::new(ErrorKind::InsufficientPermission).into())
        }
    }

    fn bearer_token(&self) -> Option<&BearerToken> {
        self.extensions().get::<BearerToken>()
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
///   request with that `kid` passes).
///
/// On success the claims, [`Permissions`] and [`BearerToken`] go into the request
/// extensions, where [`RequestExt`] reads them.
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
    verifier: Verifier,
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
    pub fn with_claims<C>(config: JwtAuthConfig) -> JwtInterceptor<C> {
        JwtInterceptor {
            verifier: Verifier::new(config),
            _claims: PhantomData,
        }
    }
}

impl<C> Clone for JwtInterceptor<C> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> fmt::Debug for JwtInterceptor<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtInterceptor")
            .field("verifier", &self.verifier)
            .finish()
    }
}

impl<C> Interceptor for JwtInterceptor<C>
where
    C: DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let settings = self.verifier.settings();
        let headers = request.metadata().clone().into_headers();
        let token = settings
            .token_source
            .extract(&headers, &Uri::default())
            .map_err(|kind| Status::from(AuthError::new(kind)))?
            .ok_or_else(|| Status::from(AuthError::new(ErrorKind::MissingToken)))?;
        let verified = match self.verifier.verify_token::<C>(token.as_str()) {
            Ok(verified) => verified,
            Err(error) => {
                if error.kind() == ErrorKind::UnknownKey {
                    self.refetch_in_background(token.as_str());
                }
                return Err(error.into());
            }
        };
        if let Some(required) = &settings.required_permissions
            && !required.is_met(&verified.permissions)
        {
            return Err(AuthError::new(ErrorKind::InsufficientPermission).into());
        }
        insert(
            request.extensions_mut(),
            verified,
            token,
            settings.context.for_claims::<C>(),
        );
        Ok(request)
    }
}

impl<C> JwtInterceptor<C> {
    /// Lets the key store fetch an unknown `kid` for the next request, without waiting.
    fn refetch_in_background(&self, token: &str) {
        let (Ok(issuer), Some(kid)) = (
            self.verifier.issuer_for(token),
            crate::jws::header_kid(token),
        ) else {
            return;
        };
        // Stores signal their refresher when asked; the future is run for custom stores
        // that only start work when polled.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(issuer.store.refetch_for_kid(&kid));
        }
    }
}
