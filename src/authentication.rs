//! [`Authentication`]: the one request extension the layer inserts. Extractors, guards and
//! plain tower services read the caller from it.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use crate::api_key::CredentialKind;
use crate::context::AuthContext;
use crate::error::ErrorKind;
use crate::issuer::Issuer;
use crate::permission::Permissions;
use crate::record::{Accepted, TokenRecord};
use crate::response::grpc::Protocol;
use crate::token::BearerToken;
use crate::tracking::Tracked;

/// What [`JwtAuthLayer`](crate::JwtAuthLayer) puts into every request it lets through:
/// one extension, four reference counts to clone. For a verified token it holds the claims
/// (shared, never copied by the layer), the [`Permissions`], the raw [`BearerToken`] and
/// the trusted issuer that verified it; for a request an
/// [`optional`](crate::JwtAuthLayer::optional) layer let through without a token, none of
/// these.
///
/// axum handlers use the extractors ([`Claims`](crate::Claims),
/// [`SharedClaims`](crate::SharedClaims), [`Permissions`]) or take `Authentication`
/// itself; any tower service reads it from the request extensions:
///
/// ```
/// use tower_jwt_auth::{Authentication, StandardClaims};
///
/// fn caller(request: &http::Request<()>) -> Option<String> {
///     let auth = request.extensions().get::<Authentication>()?;
///     auth.claims::<StandardClaims>()?.sub.clone()
/// }
/// ```
#[derive(Clone)]
pub struct Authentication {
    pub(crate) context: AuthContext,
    principal: Option<Principal>,
}

/// The verified caller: the token's record as verification built it (shared with the
/// cache), the token, and its issuer. Held in place rather than behind one more `Arc`:
/// a clone counts three references instead of one, and a request saves an allocation
/// and its free (150 instructions of a cache hit, callgrind).
#[derive(Clone)]
struct Principal {
    record: Arc<TokenRecord>,
    token: BearerToken,
    issuer: Arc<Issuer>,
}

impl Authentication {
    /// A request let through without a token.
    pub(crate) fn anonymous(context: AuthContext) -> Self {
        Self {
            context,
            principal: None,
        }
    }

    /// A request with a verified token.
    pub(crate) fn verified<C>(
        context: AuthContext,
        verified: Accepted<C>,
        token: BearerToken,
        issuer: Arc<Issuer>,
    ) -> Self {
        Self {
            context,
            principal: Some(Principal {
                record: verified.record,
                token,
                issuer,
            }),
        }
    }

    /// Whether the request carries a verified token.
    #[must_use]
    pub fn is_authenticated(&self) -> bool {
        self.principal.is_some()
    }

    /// What kind of credential was verified: a JWT, an introspected token or an API key;
    /// none for an anonymous request.
    ///
    /// ```
    /// use tower_jwt_auth::Authentication;
    /// use tower_jwt_auth::api_key::CredentialKind;
    ///
    /// fn is_machine(auth: &Authentication) -> bool {
    ///     auth.kind() == Some(CredentialKind::ApiKey)
    /// }
    /// # let _ = is_machine;
    /// ```
    #[must_use]
    pub fn kind(&self) -> Option<CredentialKind> {
        self.principal.as_ref().map(|p| p.record.kind)
    }

    /// The verified claims, if the request has a token and the layer deserializes into
    /// `C`.
    #[must_use]
    pub fn claims<C: Send + Sync + 'static>(&self) -> Option<&C> {
        self.principal.as_ref()?.record.claims::<C>()
    }

    /// The verified claims as a shared pointer, without copying them.
    #[must_use]
    pub fn shared_claims<C: Send + Sync + 'static>(&self) -> Option<Arc<C>> {
        self.principal.as_ref()?.record.shared_claims::<C>()
    }

    /// The permissions of the verified token; empty without one.
    #[must_use]
    pub fn permissions(&self) -> &Permissions {
        static NONE: OnceLock<Permissions> = OnceLock::new();
        match &self.principal {
            Some(principal) => principal.record.permissions(),
            None => NONE.get_or_init(Permissions::default),
        }
    }

    /// The raw token, for relaying it to services called on the caller's behalf; none
    /// for an anonymous request and none for an API key, which is a secret between its
    /// holder and this service and is never relayed (tell the next service who called
    /// with [`kind`](Self::kind) and the claims' `sub`, the key's id).
    #[must_use]
    pub fn token(&self) -> Option<&BearerToken> {
        let principal = self.principal.as_ref()?;
        (principal.record.kind != CredentialKind::ApiKey).then_some(&principal.token)
    }

    /// The state step's keys of the verified token: those the layer kept, or read again
    /// from its payload.
    pub(crate) fn tracked(&self) -> Option<Arc<Tracked>> {
        let principal = self.principal.as_ref()?;
        if let Some(tracked) = &principal.record.tracked {
            return Some(Arc::clone(tracked));
        }
        let payload = self.payload()?;
        // An introspection answer may leave `iss` out: it is the issuer's.
        let issuer = principal.issuer.matcher.as_str();
        let api_key = principal.record.kind == CredentialKind::ApiKey;
        Tracked::from_payload(payload, issuer, api_key).map(Arc::new)
    }

    /// The verified payload, for claims beyond the claims type: a JWT's payload or an
    /// introspected token's answer.
    pub(crate) fn payload(&self) -> Option<&[u8]> {
        Some(&self.principal.as_ref()?.record.payload)
    }

    /// The layer's own refusal of `request` for `kind`, as a guard of your own behind the
    /// layer gives it: the status, `WWW-Authenticate` challenge (realm, resource
    /// metadata, DPoP), `Cache-Control: no-store` and body of the configured responder, or
    /// the trailers-only answer of a gRPC request. A 503 kind carries `Retry-After: 1`.
    ///
    /// ```
    /// use http::{Request, Response};
    /// use tower_jwt_auth::{Authentication, ErrorKind};
    ///
    /// /// Refuses callers that are not authenticated, as the layer would.
    /// fn gate<B>(request: &Request<B>) -> Option<Response<bytes::Bytes>> {
    ///     let auth = request.extensions().get::<Authentication>()?;
    ///     (!auth.is_authenticated()).then(|| auth.refuse(request, ErrorKind::MissingToken))
    /// }
    /// # let _ = gate::<()>;
    /// ```
    #[must_use]
    pub fn refuse<B>(&self, request: &http::Request<B>, kind: ErrorKind) -> http::Response<Bytes> {
        let protocol = Protocol::of(request.version(), request.headers());
        if kind.status() == http::StatusCode::SERVICE_UNAVAILABLE {
            return self
                .context
                .reject_unavailable(kind, Duration::from_secs(1), protocol);
        }
        self.context.reject(kind, protocol)
    }

    /// The trusted issuer that verified the token, as configured (a tenant template
    /// stays a template; the token's own `iss` is in its claims); none for an API key.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        let principal = self.principal.as_ref()?;
        (principal.record.kind != CredentialKind::ApiKey).then(|| principal.issuer.matcher.as_str())
    }
}

impl fmt::Debug for Authentication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The claims may be personal data and the token is a secret: identify only.
        f.debug_struct("Authentication")
            .field("authenticated", &self.is_authenticated())
            .field("kind", &self.kind())
            .field("issuer", &self.issuer())
            .field("permissions", self.permissions())
            .finish_non_exhaustive()
    }
}
