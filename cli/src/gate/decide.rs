//! The decision for one check request. `Front` reads the original request, picks the
//! route and sends the request through one of two layer stacks over the same live
//! policy: the strict one (a token is needed) or the optional one (public routes, and
//! requests refused before any decision, so that a bad token is still refused first).
//! Behind the layer, `carry_out` runs the route's guard and answers 200 with the forwarded
//! claim headers, or the layer's own refusal.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use axum::body::Body;
use http::header::CACHE_CONTROL;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, Service, ServiceExt as _};
use tower_jwt_auth::layer::JwtAuth;
use tower_jwt_auth::rules::path_ambiguity;
use tower_jwt_auth::{
    Authentication, ErrorKind, JwtAuthLayer, RequirePermission, SingleUse, StandardClaims,
};

use super::original;
use super::section::{Decision, Table};

/// A route's guard, built once per table.
type Guard = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// What `Front` decided before the layer, for `carry_out` behind it.
#[derive(Clone)]
enum Verdict {
    /// Refused for the request itself, whatever its token.
    Refuse(ErrorKind),
    /// A verified token, or none on a public route, is enough.
    Allow,
    /// The route's guard decides.
    Guard(Guard),
}

/// One check: the verdict and the headers to answer with when allowed.
#[derive(Clone)]
struct Check {
    verdict: Verdict,
    forward: Arc<[HeaderName]>,
}

/// The `[gate]` table in force and the guards of its routes, swapped whole on reload.
pub(crate) struct Routes {
    table: Table,
    guards: Vec<Option<Guard>>,
}

impl Routes {
    pub(crate) fn new(table: Table) -> Self {
        let guards = table
            .routes
            .iter()
            .map(|route| match &route.decision {
                Decision::Public => None,
                Decision::Token {
                    require,
                    single_use,
                } => guard(require, *single_use),
            })
            .collect();
        Self { table, guards }
    }

    pub(crate) fn table(&self) -> &Table {
        &self.table
    }
}

/// The guard of a route that needs more than a valid token.
fn guard(require: &[Box<str>], single_use: bool) -> Option<Guard> {
    let allow = tower::service_fn(|request: Request<Body>| async move { Ok(allow(&request)) });
    let guarded = match (require.is_empty(), single_use) {
        (true, false) => return None,
        (true, true) => BoxCloneSyncService::new(SingleUse.layer(allow).map_response(boxed)),
        (false, once) => {
            let mut permissions = RequirePermission::all(require.iter().cloned());
            if once {
                permissions = permissions.single_use();
            }
            BoxCloneSyncService::new(permissions.layer(allow).map_response(boxed))
        }
    };
    Some(guarded)
}

/// The 200 of an allowed request: the forwarded claim headers the layer set on it, and
/// an empty one for a claim it did not set (no token, or no such claim), so that a
/// proxy copying the header replaces a client's own copy whatever its version does
/// with a header the answer lacks (Caddy 2.6 writes its placeholder's name, later
/// versions pass the client's copy on).
fn allow(request: &Request<Body>) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    if let Some(check) = request.extensions().get::<Check>() {
        for name in check.forward.iter() {
            let mut values = request.headers().get_all(name).iter().peekable();
            if values.peek().is_none() {
                headers.append(name.clone(), HeaderValue::from_static(""));
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn boxed<B>(response: Response<B>) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    response.map(Body::new)
}

type Stack = JwtAuth<Guard, StandardClaims>;

/// The gate's service: every path is a decision endpoint.
#[derive(Clone)]
pub(crate) struct Front {
    routes: Arc<ArcSwap<Routes>>,
    strict: Stack,
    optional: Stack,
}

impl Front {
    pub(crate) fn new(layer: &JwtAuthLayer, routes: Arc<ArcSwap<Routes>>) -> Self {
        let decide = BoxCloneSyncService::new(tower::service_fn(carry_out));
        Self {
            routes,
            strict: layer.layer(decide.clone()),
            optional: layer.clone().optional().layer(decide),
        }
    }
}

impl Service<Request<Body>> for Front {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let routes = self.routes.load();
        let (mut parts, body) = request.into_parts();
        let table = routes.table();
        // A client's own claim headers, whatever the table in force forwards: the layer
        // scrubs the ones its policy names, and a reload may change that list between
        // its policy and this table.
        scrub(&mut parts.headers);
        let rewritten =
            original::rewrite(&mut parts, table.convention, table.path_prefix.as_deref());
        let (verdict, strict) = match rewritten {
            Err(why) => {
                tracing::debug!(
                    why,
                    "check request refused: its original request cannot be read one way"
                );
                (Verdict::Refuse(ErrorKind::AmbiguousPath), false)
            }
            Ok(()) => decide(&routes, &parts),
        };
        parts.extensions.insert(Check {
            verdict,
            forward: Arc::clone(&table.forward),
        });
        let request = Request::from_parts(parts, body);
        let stack = if strict { &self.strict } else { &self.optional };
        let stack = stack.clone();
        Box::pin(async move {
            let response = stack.oneshot(request).await?;
            Ok(response.map(Body::new))
        })
    }
}

/// Removes every `x-jwt-*` header (and its `x_jwt_*` spelling) the check request
/// carries: only the gate's answer may hold them.
fn scrub(headers: &mut http::HeaderMap) {
    let ours = |name: &HeaderName| {
        let name = name.as_str().as_bytes();
        name.len() > 6 && (name[..6] == *b"x-jwt-" || name[..6] == *b"x_jwt_")
    };
    let names: Vec<HeaderName> = headers.keys().filter(|name| ours(name)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

/// The verdict for the original request, and whether it needs a token.
fn decide(routes: &Routes, parts: &http::request::Parts) -> (Verdict, bool) {
    let table = routes.table();
    let path = parts.uri.path();
    let matched = table.route(&parts.method, path);
    let route = matched.map(|(_, route)| route);
    // Once any route decides by path, a path that another component may read as
    // another path is refused, unless the route that matched it opts out.
    if !table.routes.is_empty()
        && !route.is_some_and(|route| route.allow_ambiguous_paths)
        && let Some(why) = path_ambiguity(path)
    {
        tracing::debug!(why, "check request refused: a path of ambiguous form");
        return (Verdict::Refuse(ErrorKind::AmbiguousPath), false);
    }
    match matched {
        Some((_, route)) if route.decision == Decision::Public => (Verdict::Allow, false),
        Some((i, _)) => match &routes.guards[i] {
            Some(guard) => (Verdict::Guard(guard.clone()), true),
            None => (Verdict::Allow, true),
        },
        None => (Verdict::Allow, true),
    }
}

/// Behind the layer: the verdict `Front` left, carried out.
async fn carry_out(request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let verdict = request
        .extensions()
        .get::<Check>()
        .map(|c| c.verdict.clone());
    match verdict {
        Some(Verdict::Allow) => Ok(allow(&request)),
        Some(Verdict::Guard(guard)) => guard.oneshot(request).await,
        Some(Verdict::Refuse(kind)) => Ok(match request.extensions().get::<Authentication>() {
            Some(auth) => auth.refuse(&request, kind).map(Body::from),
            None => internal(),
        }),
        None => Ok(internal()),
    }
}

/// Cannot happen: `Front` always leaves a check, and the layer always its
/// `Authentication`; refused rather than allowed if it ever did.
fn internal() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
