//! axum extractors (feature `axum`): [`Claims`], [`SharedClaims`], their `Option` forms,
//! [`Permissions`], [`Authentication`] and the typed guard `RequirePermission<P>`. All read
//! the one [`Authentication`] extension the layer inserts.

use std::ops::Deref;
use std::sync::Arc;

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::authentication::Authentication;
use crate::error::ErrorKind;
use crate::guard::{Permission, RequirePermission, check_typed};
use crate::permission::Permissions;
use crate::response::grpc::Protocol;

/// The verified claims of the request, put there by
/// [`JwtAuthLayer`](crate::JwtAuthLayer); the extractor clones them out of the shared
/// value (use [`SharedClaims`] to skip the clone).
///
/// `Option<Claims<C>>` is `None` for requests an [`optional`](crate::JwtAuthLayer::optional)
/// layer let through without a token.
///
/// A handler that asks for `Claims` on a route no `JwtAuthLayer` covers is a wiring
/// mistake, not a client error: it answers 500 with a message naming the missing layer.
/// So is asking for `Claims<C>` behind a layer built for another claims type: 500
/// naming both types.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_jwt_auth::{Claims, StandardClaims};
///
/// async fn me(Claims(claims): Claims<StandardClaims>) -> String {
///     claims.sub.unwrap_or_default()
/// }
///
/// let app: Router = Router::new().route("/me", get(me));
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct Claims<C>(pub C);

impl<C> Deref for Claims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

/// The verified claims as the layer holds them, shared: no copy, whatever their size.
/// Otherwise like [`Claims`].
///
/// ```
/// use tower_jwt_auth::{SharedClaims, StandardClaims};
///
/// async fn me(SharedClaims(claims): SharedClaims<StandardClaims>) -> String {
///     claims.sub.clone().unwrap_or_default()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SharedClaims<C>(pub Arc<C>);

impl<C> Deref for SharedClaims<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

/// Why an extractor refused: 401 (or 403 for a guard) as the layer would have answered,
/// or 500 for a wiring mistake (no layer in front, another claims type).
#[derive(Debug)]
pub struct ClaimsRejection {
    /// Boxed: rejections are rare, and the `Result` of every extraction stays small.
    response: Box<Response>,
    kind: Option<ErrorKind>,
    message: &'static str,
}

impl ClaimsRejection {
    /// A refusal rendered by the layer's responder.
    fn refused(auth: &Authentication, kind: ErrorKind, parts: &Parts) -> Self {
        let protocol = Protocol::of(parts.version, &parts.headers);
        let response = auth.context.reject(kind, protocol).map(Body::from);
        Self {
            response: Box::new(response),
            kind: Some(kind),
            message: kind.description(),
        }
    }

    /// A wiring mistake: 500 with the message.
    fn wiring(message: String) -> Self {
        tracing::error!(%message, "tower-jwt-auth wiring mistake");
        Self {
            response: Box::new((StatusCode::INTERNAL_SERVER_ERROR, message).into_response()),
            kind: None,
            message: "tower-jwt-auth is not wired in front of this route as the handler expects",
        }
    }

    fn missing_layer() -> Self {
        Self::wiring(
            "tower-jwt-auth: no JwtAuthLayer in front of this route (the Claims extractor needs one)"
                .to_owned(),
        )
    }

    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The authentication error, or `None` for a wiring mistake (a 500).
    #[must_use]
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.kind
    }

    /// A short text for logs: the fixed description, or what is mis-wired.
    #[must_use]
    pub fn body_text(&self) -> &'static str {
        self.message
    }
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        *self.response
    }
}

/// The claims of the request: `Ok(None)` for an anonymous request, an error for a wiring
/// mistake.
fn shared_claims<C: Send + Sync + 'static>(
    parts: &Parts,
) -> Result<(Option<Arc<C>>, &Authentication), ClaimsRejection> {
    let auth = parts
        .extensions
        .get::<Authentication>()
        .ok_or_else(ClaimsRejection::missing_layer)?;
    if let Some(wrong) = auth.context.claims_type_mismatch::<C>() {
        return Err(ClaimsRejection::wiring(wrong.message()));
    }
    let claims = auth.shared_claims::<C>();
    if claims.is_none() && auth.kind() == Some(crate::api_key::CredentialKind::ApiKey) {
        // An API key has `sub` and `scope` only: a claims type that needs more is a
        // wiring mistake of the route, not the caller's.
        return Err(ClaimsRejection::wiring(format!(
            "tower-jwt-auth: {} {} asks for claims of type {}, which an API key cannot fill (it has `sub`, its id, and `scope`, its permissions): read Authentication, or use StandardClaims on routes that take API keys",
            parts.method,
            parts.uri.path(),
            std::any::type_name::<C>()
        )));
    }
    if claims.is_none() && auth.is_authenticated() {
        // Never read as "no token": the token was verified, its claims were not made.
        return Err(ClaimsRejection::wiring(
            "tower-jwt-auth: the verified token's claims could not be made".to_owned(),
        ));
    }
    Ok((claims, auth))
}

/// The claims of the request; 401 for an anonymous one.
fn required_claims<C: Send + Sync + 'static>(parts: &Parts) -> Result<Arc<C>, ClaimsRejection> {
    match shared_claims::<C>(parts)? {
        (Some(claims), _) => Ok(claims),
        (None, auth) => Err(ClaimsRejection::refused(
            auth,
            ErrorKind::MissingToken,
            parts,
        )),
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        required_claims::<C>(parts).map(|claims| Self(C::clone(&claims)))
    }
}

impl<S, C> OptionalFromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let (claims, _) = shared_claims::<C>(parts)?;
        Ok(claims.map(|claims| Self(C::clone(&claims))))
    }
}

impl<S, C> FromRequestParts<S> for SharedClaims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        required_claims::<C>(parts).map(Self)
    }
}

impl<S, C> OptionalFromRequestParts<S> for SharedClaims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(shared_claims::<C>(parts)?.0.map(Self))
    }
}

/// The whole [`Authentication`] of the request (the token, the issuer, the claims of any
/// type); 500 without a layer.
impl<S> FromRequestParts<S> for Authentication
where
    S: Send + Sync,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or_else(ClaimsRejection::missing_layer)
    }
}

/// The rejection of the permission extractors: 401, 403 or, without a layer, 500.
#[derive(Debug)]
pub struct PermissionRejection {
    response: Response,
}

impl PermissionRejection {
    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }
}

impl IntoResponse for PermissionRejection {
    fn into_response(self) -> Response {
        self.response
    }
}

impl<S, P> FromRequestParts<S> for RequirePermission<P>
where
    S: Send + Sync,
    P: Permission,
{
    type Rejection = PermissionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        check_typed::<P>(parts).map_err(|response| PermissionRejection {
            response: response.map(Body::from),
        })
    }
}

/// The request's permissions (empty for anonymous requests of an optional layer).
impl<S> FromRequestParts<S> for Permissions
where
    S: Send + Sync,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Authentication>()
            .map(|auth| auth.permissions().clone())
            .ok_or_else(ClaimsRejection::missing_layer)
    }
}
