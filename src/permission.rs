//! What a caller may do: the [`Permissions`] of a verified token, and the
//! [`RequirePermission`](struct@RequirePermission) guard that answers 403 without them.
//!
//! The layer computes the permission set from the verified payload, whatever the claims
//! type: the union of `permissions` (an array, as Auth0 sends it), `scope` (a
//! space-delimited string, RFC 8693 and RFC 9068) and `scp` (a string or an array, as
//! Entra ID and Okta send it), plus any configured claim paths such as Entra's `roles` or
//! Keycloak's `realm_access.roles`. Matching is exact: `writer` never grants `write`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::error::ErrorKind;
use crate::future::ResponseFuture;
use crate::response::Protocol;
use crate::service::AuthContext;

/// The permissions of a verified request, inserted into request extensions by the layer.
///
/// ```
/// # use tower_jwt_auth::Permissions;
/// let permissions = Permissions::from_iter(["read", "write"]);
/// assert!(permissions.contains("write"));
/// assert!(!permissions.contains("writ"));
/// assert!(permissions.contains_all(["read", "write"]));
/// assert!(permissions.contains_any(["admin", "read"]));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Sorted and deduplicated, for binary search.
    set: Arc<[Box<str>]>,
}

impl Permissions {
    /// Whether the set holds `permission`, compared exactly.
    #[must_use]
    pub fn contains(&self, permission: &str) -> bool {
        self.set.binary_search_by(|p| (**p).cmp(permission)).is_ok()
    }

    /// Whether the set holds every one of `permissions`.
    pub fn contains_all<'a>(&self, permissions: impl IntoIterator<Item = &'a str>) -> bool {
        permissions.into_iter().all(|p| self.contains(p))
    }

    /// Whether the set holds at least one of `permissions`.
    pub fn contains_any<'a>(&self, permissions: impl IntoIterator<Item = &'a str>) -> bool {
        permissions.into_iter().any(|p| self.contains(p))
    }

    /// The permissions, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(AsRef::as_ref)
    }

    /// The number of permissions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn from_vec(mut all: Vec<Box<str>>) -> Self {
        all.sort_unstable();
        all.dedup();
        Self { set: all.into() }
    }
}

impl<S: Into<Box<str>>> FromIterator<S> for Permissions {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().map(Into::into).collect())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A claim that holds permissions: a top-level name, or a path into nested objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimPath {
    pub(crate) segments: Vec<Box<str>>,
}

impl ClaimPath {
    pub(crate) fn new<I: IntoIterator<Item = S>, S: Into<Box<str>>>(segments: I) -> Option<Self> {
        let segments: Vec<Box<str>> = segments.into_iter().map(Into::into).collect();
        (!segments.is_empty() && segments.iter().all(|s| !s.is_empty()))
            .then_some(Self { segments })
    }

    pub(crate) fn dotted(path: &str) -> Option<Self> {
        Self::new(path.split('.'))
    }

    /// The claims read by default: `permissions`, `scope`, `scp`.
    pub(crate) fn defaults() -> Vec<Self> {
        ["permissions", "scope", "scp"]
            .into_iter()
            .filter_map(|name| Self::new([name]))
            .collect()
    }
}

/// Collects the permissions from the raw values captured during the payload pass.
/// `capture[i]` is the top-level name of capture `i`; every path starting with it reads
/// its value. Values of the wrong shape grant nothing.
pub(crate) fn collect(
    paths: &[ClaimPath],
    capture: &[Box<str>],
    captured: &[(usize, &RawValue)],
) -> Permissions {
    let mut all = Vec::new();
    for (index, raw) in captured {
        let top = &capture[*index];
        for path in paths.iter().filter(|p| p.segments[0] == *top) {
            if path.segments.len() == 1 {
                let _ = (*raw).deserialize_any(Collect(&mut all));
            } else if let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                let nested = path.segments[1..]
                    .iter()
                    .try_fold(&value, |v, segment| v.get(&**segment));
                if let Some(nested) = nested {
                    let _ = nested.deserialize_any(Collect(&mut all));
                }
            }
        }
    }
    Permissions::from_vec(all)
}

/// The top-level names to capture for `paths`, without repeats.
pub(crate) fn capture_names(paths: &[ClaimPath]) -> Vec<Box<str>> {
    let mut names: Vec<Box<str>> = Vec::new();
    for path in paths {
        if !names.contains(&path.segments[0]) {
            names.push(path.segments[0].clone());
        }
    }
    names
}

/// A visitor that adds the words of a string, or the string elements of an array.
struct Collect<'a>(&'a mut Vec<Box<str>>);

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a space-delimited string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.extend(v.split_ascii_whitespace().map(Into::into));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<serde_json::Value>()? {
            if let serde_json::Value::String(s) = element {
                self.0.push(s.into());
            }
        }
        Ok(())
    }
}

/// Which permissions a guard needs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Requirement {
    All(Arc<[Box<str>]>),
    Any(Arc<[Box<str>]>),
}

impl Requirement {
    pub(crate) fn is_met(&self, permissions: &Permissions) -> bool {
        match self {
            Self::All(needed) => needed.iter().all(|p| permissions.contains(p)),
            Self::Any(needed) => needed.iter().any(|p| permissions.contains(p)),
        }
    }

    pub(crate) fn names(&self) -> &[Box<str>] {
        match self {
            Self::All(needed) | Self::Any(needed) => needed,
        }
    }

    pub(crate) fn is_any_of(&self) -> bool {
        matches!(self, Self::Any(needed) if needed.len() > 1)
    }
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, names) = match self {
            Self::All(n) => ("all", n),
            Self::Any(n) => ("any", n),
        };
        write!(
            f,
            "{kind}{:?}",
            names.iter().map(AsRef::as_ref).collect::<Vec<&str>>()
        )
    }
}

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
/// # use tower_jwt_auth::Permission;
/// assert_eq!(Write::NAME, "write");
/// ```
#[macro_export]
macro_rules! permission {
    ($($(#[$meta:meta])* $vis:vis $name:ident = $value:literal;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
            $vis struct $name;
            impl $crate::Permission for $name {
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
    _permission: PhantomData<fn() -> P>,
}

/// A guard requiring one permission; see [`RequirePermission`](struct@RequirePermission).
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

    fn with(requirement: Requirement) -> Self {
        Self {
            requirement,
            _permission: PhantomData,
        }
    }
}

impl<P: Permission> RequirePermission<P> {
    /// The extractor value for `P` (what axum builds for a handler argument).
    #[must_use]
    pub fn typed() -> Self {
        Self {
            requirement: Requirement::All(Arc::from([Box::<str>::from(P::NAME)])),
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
    let Some(context) = extensions.get::<AuthContext>() else {
        return Err(missing_layer());
    };
    let protocol = Protocol::of(version, headers);
    match extensions.get::<Permissions>() {
        None => Err(context.reject(ErrorKind::MissingToken, protocol)),
        Some(permissions) if requirement.is_met(permissions) => Ok(()),
        Some(_) => Err(context.reject_permission(requirement, protocol)),
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

/// A guard or extractor on a route no `JwtAuthLayer` covers: a wiring mistake.
pub(crate) fn missing_layer() -> Response<bytes::Bytes> {
    tracing::error!("permission guard on a route that no JwtAuthLayer covers");
    let mut response = Response::new(bytes::Bytes::from_static(
        b"tower-jwt-auth: no JwtAuthLayer in front of this route (the permission guard needs one)",
    ));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

impl<P> Clone for RequirePermission<P> {
    fn clone(&self) -> Self {
        Self {
            requirement: self.requirement.clone(),
            _permission: PhantomData,
        }
    }
}

impl<P> fmt::Debug for RequirePermission<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequirePermission")
            .field(&self.requirement)
            .finish()
    }
}

impl<S> Layer<S> for RequirePermission<Dynamic> {
    type Service = RequirePermissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePermissionService {
            inner,
            rule: Rule::Always(self.requirement.clone()),
        }
    }
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
    Always(Requirement),
    /// By request path; paths not listed pass.
    PerPath(MethodPermissions),
}

impl Rule {
    fn requirement(&self, path: &str) -> Option<&Requirement> {
        match self {
            Self::Always(requirement) => Some(requirement),
            Self::PerPath(methods) => methods.requirement(path),
        }
    }
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
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let verdict = match self.rule.requirement(request.uri().path()) {
            Some(requirement) => check(
                requirement,
                request.version(),
                request.headers(),
                request.extensions(),
            ),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(response) => ResponseFuture::rejected(response),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).expect("raw")
    }

    #[test]
    fn union_of_sources_with_exact_matching() {
        let paths = {
            let mut p = ClaimPath::defaults();
            p.extend(ClaimPath::dotted("realm_access.roles"));
            p
        };
        let capture = capture_names(&paths);
        assert_eq!(capture.len(), 4);
        let (a, b, c, d) = (
            raw(r#"["documents:write"]"#),
            raw(r#""read  write""#),
            raw(r#"["a b", 7]"#),
            raw(r#"{"roles":["admin"],"other":1}"#),
        );
        let captured = [(0, &*a), (1, &*b), (2, &*c), (3, &*d)];
        let p = collect(&paths, &capture, &captured);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            ["a b", "admin", "documents:write", "read", "write"]
        );
        assert!(!p.contains("writ") && !p.contains("writer") && !p.contains("a"));
    }

    #[test]
    fn requirement_all_and_any() {
        let p = Permissions::from_iter(["read"]);
        assert!(Requirement::All(Arc::from([Box::from("read")])).is_met(&p));
        assert!(!Requirement::All(Arc::from([Box::from("read"), Box::from("write")])).is_met(&p));
        assert!(Requirement::Any(Arc::from([Box::from("write"), Box::from("read")])).is_met(&p));
    }
}

/// Permissions per gRPC method (or any request path), for one server that has read-only
/// and write methods. Methods not listed need only a valid token.
///
/// ```
/// use tower_jwt_auth::{MethodPermissions, RequirePermission};
///
/// let per_method = MethodPermissions::new()
///     .method("/documents.v1.Documents/Get", RequirePermission("read"))
///     .method("/documents.v1.Documents/Create", RequirePermission("write"));
/// # let _ = per_method;
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct MethodPermissions {
    methods: Arc<Vec<(Box<str>, Requirement)>>,
}

impl MethodPermissions {
    /// No method guarded yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Guards the method with this full path (`/package.Service/Method`).
    pub fn method(mut self, path: &str, guard: RequirePermission) -> Self {
        Arc::make_mut(&mut self.methods).push((path.into(), guard.requirement));
        self
    }

    fn requirement(&self, path: &str) -> Option<&Requirement> {
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
