//! axum extractors (feature `axum`): [`Claims`] and `Option<Claims<C>>`.

use std::ops::Deref;

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::error::ErrorKind;
use crate::permission::{Permission, Permissions, RequirePermission, check_typed};
use crate::response::Protocol;
use crate::service::{AuthContext, WrongClaimsType};

/// The verified claims of the request, put there by
/// [`JwtAuthLayer`](crate::JwtAuthLayer).
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

/// Why [`Claims`] could not be extracted.
#[derive(Debug)]
pub struct ClaimsRejection {
    response: Response,
}

impl IntoResponse for ClaimsRejection {
    fn into_response(self) -> Response {
        self.response
    }
}

fn missing_layer() -> ClaimsRejection {
    tracing::error!("Claims extractor used on a route that no JwtAuthLayer covers");
    let response = (
        StatusCode::INTERNAL_SERVER_ERROR,
        "tower-jwt-auth: no JwtAuthLayer in front of this route (the Claims extractor needs one)",
    )
        .into_response();
    ClaimsRejection { response }
}

fn wrong_type(wrong: WrongClaimsType) -> ClaimsRejection {
    ClaimsRejection {
        response: wrong.response().map(Body::from),
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Clone + Send + Sync + 'static,
{
    type Rejection = ClaimsRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<C>() {
            return Ok(Self(claims.clone()));
        }
        match parts.extensions.get::<AuthContext>() {
            Some(context) if let Some(wrong) = context.claims_type_mismatch::<C>() => {
                Err(wrong_type(wrong))
            }
            Some(context) => {
                let protocol = Protocol::of(parts.version, &parts.headers);
                let response = context
                    .reject(ErrorKind::MissingToken, protocol)
                    .map(Body::from);
                Err(ClaimsRejection { response })
            }
            None => Err(missing_layer()),
        }
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
        if let Some(claims) = parts.extensions.get::<C>() {
            return Ok(Some(Self(claims.clone())));
        }
        match parts.extensions.get::<AuthContext>() {
            Some(context) => match context.claims_type_mismatch::<C>() {
                Some(wrong) => Err(wrong_type(wrong)),
                None => Ok(None),
            },
            None => Err(missing_layer()),
        }
    }
}

/// The rejection of the permission extractors: 401, 403 or, without a layer, 500.
#[derive(Debug)]
pub struct PermissionRejection {
    response: Response,
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
        if let Some(permissions) = parts.extensions.get::<Permissions>() {
            return Ok(permissions.clone());
        }
        if parts.extensions.get::<AuthContext>().is_some() {
            Ok(Self::default())
        } else {
            Err(missing_layer())
        }
    }
}
