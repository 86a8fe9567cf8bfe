//! Guards: [`RequirePermission`](struct@RequirePermission) as a tower layer, as the
//! typed axum extractor `RequirePermission<P>`, and [`MethodPermissions`] for gRPC
//! methods. Each answers 401 without a verified token and 403 `insufficient_scope`
//! without the permission, rendered through the rejection context the layer inserted.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::authentication::Authentication;
use crate::context::AuthContext;
use crate::error::ErrorKind;
use crate::permission::Requirement;
use crate::response::grpc::Protocol;
use crate::response::{ResponseBody, missing_layer};
pub use crate::step_up::{StepUp, StepUpFuture, StepUpService};
use crate::telemetry;
use crate::tracking::{Check, STORE_RETRY_AFTER};

/// A permission named by a type, for the typed extractor `RequirePermission<P>`.
/// Declare them with [`permission!`](crate::permission!).
pub trait Permission: Send + Sync + 'static {
    /// The permission string, compared exactly with the token's permissions.
    const NAME: &'static str;
}

/// Declares marker types for [`RequirePermission<P>`](struct@RequirePermission) extractors.
///
/// ```
/// tower_jwt_auth::permission! {
///     /// May create documents.
///     pub Write = "write";
///     pub ReadDocuments = "documents:read";
/// }
/// # use tower_jwt_auth::guard::Permission;
/// assert_eq!(Write::NAME, "write");
/// ```
#[macro_export]
macro_rules! permission {
    ($($(#[$meta:meta])* $vis:vis $name:ident = $value:literal;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            $vis struct $name;
            impl $crate::guard::Permission for $name {
                const NAME: &'static str = $value;
            }
        )+
    };
}

/// The type parameter of a [`RequirePermission`](struct@RequirePermission) built at run time (the guard layer).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dynamic;

/// A guard that lets a request through only with the required permissions: 401 without
/// a verified token, 403 `insufficient_scope` (with `scope="…"` in the challenge) without
/// the permission.
///
/// As a layer it is built by the function of the same name, or `all` and `any`:
///
/// ```
/// use axum::{Router, routing::{get, post}};
/// use tower_jwt_auth::RequirePermission;
///
/// async fn list() {}
/// async fn create() {}
///
/// let app: Router = Router::new()
///     .route("/documents", get(list).route_layer(RequirePermission("read")))
///     .route("/documents/new", post(create).route_layer(RequirePermission("write")))
///     .route("/admin", get(list).route_layer(RequirePermission::all(["admin", "mfa"])))
///     .route("/either", get(list).route_layer(RequirePermission::any(["read", "audit"])));
/// # let _ = app;
/// ```
///
/// As an axum extractor it names the permission in the handler's signature; declare the
/// marker types with [`permission!`](crate::permission!):
///
/// ```
/// use tower_jwt_auth::RequirePermission;
///
/// tower_jwt_auth::permission! { pub Write = "write"; }
///
/// async fn create(_: RequirePermission<Write>, body: String) -> String {
///     body
/// }
/// ```
///
/// Either way the check runs before the body is read: an unauthorised POST with a bad
/// body gets 403, not 422.
pub struct RequirePermission<P = Dynamic> {
    requirement: Requirement,
    single_use: bool,
    _permission: PhantomData<fn() -> P>,
}

/// A guard requiring one permission; see [`RequirePermission`](struct@RequirePermission).
///
/// It takes a `&'static str`, the usual literal. For a permission known only at run time
/// (read from configuration), use [`RequirePermission::all`], which takes owned strings:
///
/// ```
/// use tower_jwt_auth::RequirePermission;
///
/// let from_config: String = "documents:write".to_owned();
/// let guard = RequirePermission::all([from_config]);
/// # let _ = guard;
/// ```
#[allow(non_snake_case)]
#[must_use]
pub fn RequirePermission(permission: &'static str) -> RequirePermission {
    RequirePermission::all([permission])
}

impl RequirePermission {
    /// A guard requiring every one of `permissions`.
    #[must_use]
    pub fn all<I: IntoIterator<Item = S>, S: Into<Box<str>>>(permissions: I) -> Self {
        Self::with(Requirement::All(
            permissions.into_iter().map(Into::into).collect(),
        ))
    }

    /// A guard requiring at least one of `permissions`; the challenge lists them all.
    #[must_use]
    pub fn any<I: IntoIterator<Item = S>, S: Into<Box<str>>>(permissions: I) -> Self {
        Self::with(Requirement::Any(
            permissions.into_iter().map(Into::into).collect(),
        ))
    }

    /// Decides a request by hand, for permissions that depend on its content (an MCP
    /// `tools/call` names the tool in the body): `Ok` to go on, or the response to send,
    /// rendered like every other rejection (401 without a verified token, 403 with the
    /// step-up challenge, gRPC statuses for gRPC, 500 without a layer in front).
    ///
    /// ```
    /// use tower_jwt_auth::RequirePermission;
    ///
    /// fn guard_tool(parts: &http::request::Parts, tool: &str) -> Result<(), http::Response<bytes::Bytes>> {
    ///     match tool {
    ///         "write_document" => RequirePermission("write").check(parts),
    ///         _ => Ok(()),
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// The rejection response when the request may not go on.
    #[allow(clippy::result_large_err)] // the error is the response to send
    pub fn check(&self, parts: &http::request::Parts) -> Result<(), Response<bytes::Bytes>> {
        check(
            &self.requirement,
            parts.version,
            &parts.headers,
            &parts.extensions,
        )
    }

    /// Also makes the token single use on this route: once the permission is met, the
    /// token's issuer and `jti` go into the layer's
    /// [`replay_store`](crate::JwtAuthConfigBuilder::replay_store), and a second request
    /// with it gets 401 `invalid_token` ("token already used"). A token without `jti`
    /// gets 401 ("required claim missing"). The permission is checked first, so a 403
    /// does not use the token up.
    ///
    /// ```
    /// use axum::{Router, routing::post};
    /// use tower_jwt_auth::RequirePermission;
    ///
    /// async fn transfer() {}
    ///
    /// let app: Router = Router::new()
    ///     .route("/transfers", post(transfer).route_layer(RequirePermission("write").single_use()));
    /// # let _ = app;
    /// ```
    pub fn single_use(mut self) -> Self {
        self.single_use = true;
        self
    }

    fn with(requirement: Requirement) -> Self {
        Self {
            requirement,
            single_use: false,
            _permission: PhantomData,
        }
    }

    fn guard(&self) -> Guard {
        Guard {
            requirement: self.requirement.clone(),
            single_use: self.single_use,
        }
    }
}

/// A guard that makes every token single use on the routes it covers, whatever their
/// permissions: [`RequirePermission::single_use`] without a permission. Put permission
/// guards outside it (with axum, `route_layer` it before them) so that a 403 does not
/// use the token up.
///
/// ```
/// use axum::{Router, routing::post};
/// use tower_jwt_auth::guard::SingleUse;
///
/// async fn redeem() {}
///
/// let app: Router = Router::new().route("/vouchers/redeem", post(redeem).route_layer(SingleUse));
/// # let _ = app;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleUse;

impl<S> Layer<S> for SingleUse {
    type Service = RequirePermissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePermissionService {
            inner,
            rule: Rule::Always(Guard {
                requirement: Requirement::All(Arc::from([])),
                single_use: true,
            }),
        }
    }
}

impl<P: Permission> RequirePermission<P> {
    /// The extractor value for `P` (what axum builds for a handler argument).
    #[must_use]
    pub fn typed() -> Self {
        Self {
            requirement: Requirement::All(Arc::from([Box::<str>::from(P::NAME)])),
            single_use: false,
            _permission: PhantomData,
        }
    }
}

/// Decides a request from its extensions: `Ok` to go on, or the rejection (401 without a
/// verified token, 403 without the permissions, 500 without a layer).
#[allow(clippy::result_large_err)] // the error is the response to send; it is moved once
pub(crate) fn check(
    requirement: &Requirement,
    version: http::Version,
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
) -> Result<(), Response<bytes::Bytes>> {
    let Some(auth) = extensions.get::<Authentication>() else {
        return Err(missing_layer());
    };
    if auth.is_authenticated() && requirement.is_met(auth.permissions()) {
        return Ok(());
    }
    let protocol = Protocol::of(version, headers);
    telemetry::count_guard_refusal(requirement.names());
    if auth.is_authenticated() {
        Err(auth.context.reject_permission(requirement, protocol))
    } else {
        Err(auth.context.reject(ErrorKind::MissingToken, protocol))
    }
}

/// [`check`] for the single permission of a typed extractor.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
#[allow(clippy::result_large_err)] // the error is the response to send; it is moved once
pub(crate) fn check_typed<P: Permission>(
    parts: &http::request::Parts,
) -> Result<RequirePermission<P>, Response<bytes::Bytes>> {
    let typed = RequirePermission::<P>::typed();
    check(
        &typed.requirement,
        parts.version,
        &parts.headers,
        &parts.extensions,
    )
    .map(|()| typed)
}

impl<P> Clone for RequirePermission<P> {
    fn clone(&self) -> Self {
        Self {
            requirement: self.requirement.clone(),
            single_use: self.single_use,
            _permission: PhantomData,
        }
    }
}

impl<P> fmt::Debug for RequirePermission<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePermission")
            .field("requirement", &self.requirement)
            .field("single_use", &self.single_use)
            .finish()
    }
}

impl<S> Layer<S> for RequirePermission<Dynamic> {
    type Service = RequirePermissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePermissionService {
            inner,
            rule: Rule::Always(self.guard()),
        }
    }
}

crate::future::response_future! {
    /// The response future of [`RequirePermissionService`]: the inner service's, the
    /// refusal, or (for a single-use route on a network store) the wait for the store
    /// followed by the inner call.
    RequirePermissionFuture
}

/// The service of a [`RequirePermission`](struct@RequirePermission) or a
/// [`MethodPermissions`] layer.
#[derive(Clone)]
pub struct RequirePermissionService<S> {
    inner: S,
    rule: Rule,
}

/// What a guard requires of a request.
#[derive(Clone, Debug)]
enum Rule {
    Always(Guard),
    /// By request path; paths not listed pass.
    PerPath(MethodPermissions),
}

impl Rule {
    fn guard(&self, path: &str) -> Option<&Guard> {
        match self {
            Self::Always(guard) => Some(guard),
            Self::PerPath(methods) => methods.guard(path),
        }
    }
}

/// One guard: the permissions, then, once they are met, whether the token is spent.
#[derive(Clone, Debug)]
struct Guard {
    requirement: Requirement,
    single_use: bool,
}

impl<S: fmt::Debug> fmt::Debug for RequirePermissionService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequirePermissionService")
            .field("inner", &self.inner)
            .field("rule", &self.rule)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequirePermissionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = RequirePermissionFuture<S::Future, S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(guard) = self.rule.guard(request.uri().path()) else {
            return RequirePermissionFuture::inner(self.inner.call(request));
        };
        let verdict = check(
            &guard.requirement,
            request.version(),
            request.headers(),
            request.extensions(),
        );
        if let Err(response) = verdict {
            return RequirePermissionFuture::rejected(response);
        }
        if !guard.single_use {
            return RequirePermissionFuture::inner(self.inner.call(request));
        }
        // `check` passed, so the layer's `Authentication` is there.
        let Some(auth) = request.extensions().get::<Authentication>() else {
            return RequirePermissionFuture::rejected(missing_layer());
        };
        let context = auth.context.clone();
        // Read from the request's headers only when it is refused.
        let protocol =
            |request: &Request<ReqBody>| Protocol::of(request.version(), request.headers());
        match context.state().check_route(auth.tracked().as_ref()) {
            Check::Done(Ok(())) => RequirePermissionFuture::inner(self.inner.call(request)),
            Check::Done(Err(kind)) => {
                RequirePermissionFuture::rejected(refuse(&context, kind, protocol(&request)))
            }
            Check::Wait(waiting) => {
                // The readied service goes with the future; this one takes a fresh clone.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let spent = Box::pin(async move {
                    match waiting.await {
                        Ok(()) => Ok(request),
                        Err(kind) => Err(refuse(&context, kind, protocol(&request))),
                    }
                });
                RequirePermissionFuture::authenticating(spent, ready)
            }
        }
    }
}

/// The refusal of a single-use check: 401 for a used token or a missing `jti`, 503 when
/// the store does not answer.
fn refuse(context: &AuthContext, kind: ErrorKind, protocol: Protocol) -> Response<bytes::Bytes> {
    telemetry::count_guard_refusal(&[Box::from("single_use")]);
    if kind == ErrorKind::StoreUnavailable {
        context.reject_unavailable(kind, STORE_RETRY_AFTER, protocol)
    } else {
        tracing::debug!(
            error = kind.description(),
            "request refused by a single-use guard"
        );
        context.reject(kind, protocol)
    }
}

/// Permissions per gRPC method (or any request path), for one server that has read-only
/// and write methods. Methods not listed need only a valid token.
///
/// ```
/// use tower_jwt_auth::RequirePermission;
/// use tower_jwt_auth::guard::MethodPermissions;
///
/// let per_method = MethodPermissions::new()
///     .method("/documents.v1.Documents/Get", RequirePermission("read"))
///     .method("/documents.v1.Documents/Create", RequirePermission("write"));
/// # let _ = per_method;
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct MethodPermissions {
    methods: Arc<Vec<(Box<str>, Guard)>>,
}

impl MethodPermissions {
    /// No method guarded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Guards the method with this full path (`/package.Service/Method`).
    pub fn method(mut self, path: &str, guard: RequirePermission) -> Self {
        Arc::make_mut(&mut self.methods).push((path.into(), guard.guard()));
        self
    }

    fn guard(&self, path: &str) -> Option<&Guard> {
        self.methods
            .iter()
            .find(|(p, _)| **p == *path)
            .map(|(_, r)| r)
    }
}

impl fmt::Debug for MethodPermissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.methods.iter().map(|(p, r)| (p, r)))
            .finish()
    }
}

impl<S> Layer<S> for MethodPermissions {
    type Service = RequirePermissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePermissionService {
            inner,
            rule: Rule::PerPath(self.clone()),
        }
    }
}
