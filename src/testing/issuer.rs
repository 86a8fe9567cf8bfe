//! [`MockIssuer`]: a real OIDC issuer on 127.0.0.1 for tests: discovery, JWKS, a token
//! endpoint, key rotation and fault injection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::keys::{TestKey, jwks};
use super::token::TokenBuilder;

/// The audience of tokens from [`MockIssuer::token`] unless set otherwise.
pub const DEFAULT_AUDIENCE: &str = "https://api.example.com";

/// An endpoint of the mock issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/.well-known/openid-configuration` (under any path prefix).
    Discovery,
    /// `/jwks.json`.
    Jwks,
    /// `/oauth/token` (`client_credentials` and `password` grants).
    Token,
    /// `/oauth/introspect` (RFC 7662).
    Introspection,
    /// `/oauth/revoke` (RFC 7009).
    Revocation,
}

/// A failure the mock issuer plays on an endpoint.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// 503 Service Unavailable.
    Down,
    /// Answer normally after a delay.
    Slow(Duration),
    /// Hold the request open until [`MockIssuer::release`] is called.
    Hold,
    /// 200 with an HTML body.
    Garbage,
    /// The right body with `Content-Type: text/html`.
    WrongContentType,
    /// 200 with a 2 MiB body.
    Huge,
}

struct State {
    base: String,
    issuer: String,
    audience: String,
    keys: Mutex<Keys>,
    behaviour: Mutex<Behaviour>,
    released: watch::Sender<u64>,
    counters: HashMap<Endpoint, AtomicUsize>,
    last_headers: Mutex<HashMap<Endpoint, HeaderMap>>,
    accounts: Mutex<Accounts>,
    opaque: Mutex<Opaque>,
    fallback: Option<Fallback>,
}

/// What answers the paths the issuer does not serve (see [`MockIssuerBuilder::fallback`]).
type Fallback = Box<
    dyn Fn(
            &MockIssuer,
            Request<Incoming>,
        ) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

/// Opaque tokens and what introspection says of them.
#[derive(Default)]
struct Opaque {
    /// Each opaque token's claims.
    tokens: HashMap<String, serde_json::Map<String, Value>>,
    /// Revoked tokens (opaque ones, or JWTs by their text).
    revoked: std::collections::HashSet<String>,
    /// Whether the token endpoint issues opaque tokens.
    issue: bool,
    /// Public keys of clients that authenticate with `private_key_jwt`.
    client_keys: HashMap<String, TestKey>,
}

/// Registered OAuth clients and users, for the token endpoint.
#[derive(Default)]
struct Accounts {
    clients: HashMap<String, Account>,
    users: HashMap<String, Account>,
}

struct Account {
    secret: String,
    permissions: Vec<String>,
}

struct Keys {
    published: Vec<TestKey>,
    active: TestKey,
}

#[derive(Default)]
struct Behaviour {
    faults: HashMap<Endpoint, Fault>,
    discovery_issuer: Option<String>,
    cache_control: Option<String>,
    etag: Option<String>,
    jwks_document: Option<Value>,
    discovery_document: Option<Value>,
    redirects: HashMap<Endpoint, String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Test state is plain data; a panicking test thread must not poison the issuer.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A mock OpenID Connect issuer serving discovery and JWKS on `127.0.0.1` (a port the
/// OS picks), for tests and manual checks. It stops when dropped.
///
/// ```
/// use tower_jwt_auth::testing::MockIssuer;
/// use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let issuer = MockIssuer::start().await;
/// let cfg = JwtAuthConfig::builder()
///     .issuer(issuer.issuer())          // keys found by OIDC discovery
///     .audience(issuer.audience())
///     .build()?;
/// let layer = JwtAuthLayer::new(cfg);
/// let token = issuer.token().subject("alice").permissions(["read"]).sign();
/// # let _ = (layer, token);
/// # Ok(())
/// # }
/// ```
pub struct MockIssuer {
    state: Arc<State>,
    addr: SocketAddr,
    /// The server task; `None` in the issuer a [fallback](MockIssuerBuilder::fallback)
    /// is given, which must not stop the server when dropped.
    server: Option<JoinHandle<()>>,
}

/// Options for [`MockIssuer::builder`].
#[must_use]
pub struct MockIssuerBuilder {
    key: Option<TestKey>,
    audience: String,
    issuer_path: String,
    port: u16,
    fallback: Option<Fallback>,
}

impl fmt::Debug for MockIssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockIssuerBuilder")
            .field("audience", &self.audience)
            .field("issuer_path", &self.issuer_path)
            .finish_non_exhaustive()
    }
}

impl MockIssuerBuilder {
    /// The first signing key (a fresh RSA key by default).
    pub fn key(mut self, key: TestKey) -> Self {
        self.key = Some(key);
        self
    }

    /// The default audience of minted tokens ([`DEFAULT_AUDIENCE`] by default).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// A path after the address that is part of the issuer, such as `/realms/demo` or a
    /// tenant template `/{tenantid}/v2.0`. Discovery is served under any path.
    pub fn issuer_path(mut self, path: impl Into<String>) -> Self {
        self.issuer_path = path.into();
        self
    }

    /// Answers every request whose path the issuer does not serve with `handler`,
    /// instead of `404 Not Found`: a page or an API of your own beside the identity
    /// provider, at the same address. As with axum's `Router::fallback`, the issuer's
    /// own routes (discovery, JWKS, token, introspection, revocation) come first, and
    /// requests to them never reach `handler`.
    ///
    /// `handler` gets the running issuer, for its URL, audience and keys as they are
    /// when the request comes (after any rotation), and the request. What it needs from
    /// the issuer it takes before the future it returns, which owns its data (a
    /// function returning `impl Future` says so with `+ use<>`).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Response;
    /// use http_body_util::Full;
    /// use tower_jwt_auth::testing::MockIssuer;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let issuer = MockIssuer::builder()
    ///     .fallback(|issuer: &MockIssuer, request| {
    ///         let text = format!("{} at {}", request.uri().path(), issuer.issuer());
    ///         async move { Response::new(Full::new(Bytes::from(text))) }
    ///     })
    ///     .start()
    ///     .await;
    /// # let _ = issuer;
    /// # }
    /// ```
    pub fn fallback<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(&MockIssuer, Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        self.fallback = Some(Box::new(move |issuer, request| {
            Box::pin(handler(issuer, request))
        }));
        self
    }

    /// A fixed port on 127.0.0.1 instead of one the OS picks (for manual testing,
    /// where the issuer URL must stay the same between runs).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Binds 127.0.0.1 (on a free port unless [`port`](Self::port) was given) and
    /// starts serving.
    ///
    /// # Panics
    ///
    /// If the loopback port cannot be bound, or outside a tokio runtime.
    pub async fn start(self) -> MockIssuer {
        let listener = match TcpListener::bind(("127.0.0.1", self.port)).await {
            Ok(listener) => listener,
            Err(e) => panic!("mock issuer cannot bind 127.0.0.1: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("mock issuer has no local address: {e}"),
        };
        let base = format!("http://{addr}");
        let key = self.key.unwrap_or_else(TestKey::rsa);
        let counters = [
            Endpoint::Discovery,
            Endpoint::Jwks,
            Endpoint::Token,
            Endpoint::Introspection,
            Endpoint::Revocation,
        ]
        .into_iter()
        .map(|e| (e, AtomicUsize::new(0)))
        .collect();
        let state = Arc::new(State {
            issuer: format!("{base}{}", self.issuer_path),
            base,
            audience: self.audience,
            keys: Mutex::new(Keys {
                published: vec![key.clone()],
                active: key,
            }),
            behaviour: Mutex::new(Behaviour::default()),
            released: watch::channel(0).0,
            counters,
            last_headers: Mutex::new(HashMap::new()),
            accounts: Mutex::new(Accounts::default()),
            opaque: Mutex::new(Opaque::default()),
            fallback: self.fallback,
        });
        // What the server hands to the fallback: the same issuer, without the server
        // task, so that it stops nothing when dropped.
        let served = MockIssuer {
            state: Arc::clone(&state),
            addr,
            server: None,
        };
        let server = tokio::spawn(serve(listener, Arc::new(served)));
        MockIssuer {
            state,
            addr,
            server: Some(server),
        }
    }
}

async fn serve(listener: TcpListener, issuer: Arc<MockIssuer>) {
    // Connection tasks live in this set: aborting the server task drops it, which
    // aborts them too.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        while connections.try_join_next().is_some() {}
        let issuer = Arc::clone(&issuer);
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let issuer = Arc::clone(&issuer);
                async move { Ok::<_, Infallible>(handle(&issuer, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

async fn handle(issuer: &MockIssuer, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let state = &*issuer.state;
    let path = request.uri().path();
    let endpoint = if path.ends_with("/.well-known/openid-configuration") {
        Endpoint::Discovery
    } else if path == "/jwks.json" {
        Endpoint::Jwks
    } else if path == "/oauth/token" {
        Endpoint::Token
    } else if path == "/oauth/introspect" {
        Endpoint::Introspection
    } else if path == "/oauth/revoke" {
        Endpoint::Revocation
    } else if let Some(fallback) = &state.fallback {
        return fallback(issuer, request).await;
    } else {
        return respond(StatusCode::NOT_FOUND, "text/plain", "not found");
    };
    if let Some(counter) = state.counters.get(&endpoint) {
        counter.fetch_add(1, Ordering::SeqCst);
    }
    lock(&state.last_headers).insert(endpoint, request.headers().clone());
    if let Some(location) = lock(&state.behaviour).redirects.get(&endpoint) {
        let mut response = respond(StatusCode::FOUND, "text/plain", "moved");
        if let Ok(location) = HeaderValue::from_str(location) {
            response
                .headers_mut()
                .insert(http::header::LOCATION, location);
        }
        return response;
    }
    let fault = lock(&state.behaviour)
        .faults
        .get(&endpoint)
        .copied()
        .unwrap_or_default();
    match fault {
        Fault::Down => return respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "down"),
        Fault::Garbage => {
            return respond(
                StatusCode::OK,
                "text/html",
                "<html><body>Sign in</body></html>",
            );
        }
        Fault::Huge => {
            let mut body = b"{\"keys\":[".to_vec();
            body.resize(2 * 1024 * 1024, b' ');
            body.extend_from_slice(b"]}");
            return respond(StatusCode::OK, "application/json", body);
        }
        Fault::Slow(delay) => tokio::time::sleep(delay).await,
        Fault::Hold => {
            let mut released = state.released.subscribe();
            let _ = released.changed().await;
        }
        Fault::None | Fault::WrongContentType => {}
    }
    let content_type = if fault == Fault::WrongContentType {
        "text/html"
    } else {
        "application/json"
    };
    match endpoint {
        Endpoint::Token => token_endpoint(state, request).await,
        Endpoint::Introspection => introspection_endpoint(state, request).await,
        Endpoint::Revocation => revocation_endpoint(state, request).await,
        Endpoint::Discovery => {
            let behaviour = lock(&state.behaviour);
            if let Some(document) = &behaviour.discovery_document {
                return respond(StatusCode::OK, content_type, document.to_string());
            }
            let issuer = behaviour
                .discovery_issuer
                .clone()
                .unwrap_or_else(|| state.issuer.clone());
            let document = json!({
                "issuer": issuer,
                "jwks_uri": format!("{}/jwks.json", state.base),
                "token_endpoint": format!("{}/oauth/token", state.base),
                "introspection_endpoint": format!("{}/oauth/introspect", state.base),
                "revocation_endpoint": format!("{}/oauth/revoke", state.base),
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
                "grant_types_supported": ["client_credentials", "password"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "response_types_supported": ["token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256", "ES384", "EdDSA"],
            });
            respond(StatusCode::OK, content_type, document.to_string())
        }
        Endpoint::Jwks => {
            let behaviour = lock(&state.behaviour);
            if let Some(etag) = &behaviour.etag {
                let matches = request
                    .headers()
                    .get(IF_NONE_MATCH)
                    .is_some_and(|v| v.as_bytes() == etag.as_bytes());
                if matches {
                    let mut response = respond(StatusCode::NOT_MODIFIED, content_type, "");
                    add_cache_headers(&mut response, &behaviour);
                    return response;
                }
            }
            let document = behaviour.jwks_document.clone().unwrap_or_else(|| {
                let keys = lock(&state.keys);
                jwks(&keys.published)
            });
            let mut response = respond(StatusCode::OK, content_type, document.to_string());
            add_cache_headers(&mut response, &behaviour);
            response
        }
    }
}

/// An RFC 6749 section 5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Full<Bytes>> {
    let body = json!({"error": error, "error_description": description});
    let mut response = respond(status, "application/json", body.to_string());
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mock-issuer\""),
        );
    }
    response
}

fn form_decode(value: &str) -> String {
    form_urlencoded::parse(value.as_bytes())
        .next()
        .map(|(decoded, _)| decoded.into_owned())
        .unwrap_or_default()
}

/// `client_id:client_secret` from HTTP Basic (RFC 6749 section 2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// A fresh opaque token: 32 random bytes, base64url.
fn opaque_id() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    // A failing random source leaves zeros; the mock stays usable.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    format!(
        "mock_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The form of an authenticated client request to the introspection or revocation
/// endpoint: `client_secret_basic`, `client_secret_post` or `private_key_jwt`.
async fn client_form(
    state: &State,
    request: Request<Incoming>,
) -> Result<(String, HashMap<String, String>), Response<Full<Bytes>>> {
    use http_body_util::BodyExt as _;
    if request.method() != http::Method::POST {
        return Err(respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "POST only",
        ));
    }
    let basic = basic_credentials(request.headers());
    let body = match http_body_util::Limited::new(request.into_body(), 64 * 1024)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "body too large",
            ));
        }
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let secret_ok = |id: &str, secret: &str| {
        lock(&state.accounts)
            .clients
            .get(id)
            .is_some_and(|c| c.secret == secret)
    };
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    let authenticated = if let Some((id, secret)) = basic {
        secret_ok(&id, &secret).then_some(id)
    } else if let Some(assertion) = form.get("client_assertion") {
        let key = lock(&state.opaque).client_keys.get(&client_id).cloned();
        key.filter(|key| assertion_ok(state, key, &client_id, assertion))
            .map(|_| client_id.clone())
    } else {
        match form.get("client_secret") {
            Some(secret) => secret_ok(&client_id, secret).then(|| client_id.clone()),
            None => None,
        }
    };
    if let Some(id) = authenticated {
        Ok((id, form))
    } else {
        Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        ))
    }
}

/// A `private_key_jwt` assertion: signed by the client's registered key, `iss` and
/// `sub` the client, `aud` the issuer or an endpoint of it, not expired.
fn assertion_ok(state: &State, key: &TestKey, client_id: &str, assertion: &str) -> bool {
    use base64::Engine as _;
    let b64 = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
    };
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(verifier) = crate::jwks::parse::jwk(&key.public_jwk()) else {
        return false;
    };
    let (Some(signature), Some(claims)) = (b64(signature), b64(payload)) else {
        return false;
    };
    let input = &assertion.as_bytes()[..header.len() + 1 + payload.len()];
    if !verifier.verify(key.algorithm(), input, &signature) {
        return false;
    }
    let Ok(claims) = serde_json::from_slice::<Value>(&claims) else {
        return false;
    };
    let now = crate::time::unix_seconds(std::time::SystemTime::now());
    let audience_ok = claims["aud"]
        .as_str()
        .is_some_and(|aud| aud == state.issuer || aud.starts_with(&state.base));
    claims["iss"] == client_id
        && claims["sub"] == client_id
        && audience_ok
        && claims["exp"].as_f64().is_some_and(|exp| exp > now)
}

/// RFC 7662: what the mock knows of a token. Opaque tokens by their record; JWTs the
/// mock issued by their payload (their signature is the mock's own).
async fn introspection_endpoint(
    state: &State,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let signed = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/token-introspection+jwt"));
    let (client_id, form) = match client_form(state, request).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    let Some(token) = form.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let opaque = lock(&state.opaque);
    let claims = if opaque.revoked.contains(token) {
        None
    } else if let Some(claims) = opaque.tokens.get(token) {
        Some(claims.clone())
    } else {
        // A JWT is active only when one of the issuer's published keys signed it, as an
        // authorization server knows only the tokens it issued.
        let genuine = issued_with(token, &lock(&state.keys).published);
        genuine.then(|| jwt_claims(token)).flatten()
    };
    drop(opaque);
    let now = crate::time::unix_seconds(std::time::SystemTime::now());
    let body = match claims {
        Some(mut claims)
            if claims
                .get("exp")
                .and_then(Value::as_f64)
                .is_none_or(|exp| exp > now) =>
        {
            claims.insert("active".into(), Value::Bool(true));
            claims
                .entry("token_type")
                .or_insert_with(|| Value::from("Bearer"));
            Value::Object(claims)
        }
        _ => json!({ "active": false }),
    };
    if signed {
        // RFC 9701: the answer as a JWT signed with the issuer's token key.
        let key = lock(&state.keys).active.clone();
        let answer = TokenBuilder::new(&key)
            .typ("token-introspection+jwt")
            .without_claim("sub")
            .without_claim("jti")
            .issuer(state.issuer.clone())
            .audience(client_id)
            .claim("token_introspection", body)
            .sign();
        return respond(
            StatusCode::OK,
            "application/token-introspection+jwt",
            answer,
        );
    }
    respond(StatusCode::OK, "application/json", body.to_string())
}

/// Whether `token` is a compact JWS whose signature one of `keys` checks.
fn issued_with(token: &str, keys: &[TestKey]) -> bool {
    let Ok((header_b64, _, signature_b64)) = crate::jws::segments(token.as_bytes()) else {
        return false;
    };
    let (Ok(header), Ok(signature)) = (crate::jws::b64(header_b64), crate::jws::b64(signature_b64))
    else {
        return false;
    };
    let Ok(header) = crate::jws::json_object::<crate::jws::Header<'_>>(&header) else {
        return false;
    };
    let Some(alg) = crate::Algorithm::from_header(&header.alg.0) else {
        return false;
    };
    let kid = header.kid.as_ref().map(|kid| kid.0.as_ref());
    let input = &token.as_bytes()[..token.len() - signature_b64.len() - 1];
    keys.iter().any(|key| {
        key.key_set()
            .select(kid, alg)
            .is_ok_and(|key| key.verify(alg, input, &signature))
    })
}

/// The payload of a compact JWS, unverified (the caller checked its signature).
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// RFC 7009: the token stops being active.
async fn revocation_endpoint(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (_, form) = match client_form(state, request).await {
        Ok(client) => client,
        Err(response) => return response,
    };
    if let Some(token) = form.get("token") {
        lock(&state.opaque).revoked.insert(token.clone());
    }
    respond(StatusCode::OK, "text/plain", "")
}

/// The permissions to grant: all of `granted`, or the requested subset.
fn grant(granted: &[String], requested: Option<&str>) -> Result<Vec<String>, String> {
    let Some(requested) = requested else {
        return Ok(granted.to_vec());
    };
    let mut out = Vec::new();
    for scope in requested.split_ascii_whitespace() {
        if !granted.iter().any(|g| g == scope) {
            return Err(format!("scope {scope:?} is not granted"));
        }
        out.push(scope.to_owned());
    }
    Ok(out)
}

async fn token_endpoint(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    use http_body_util::BodyExt as _;
    if request.method() != http::Method::POST {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "POST only");
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let basic = basic_credentials(request.headers());
    let used_basic = request.headers().contains_key(http::header::AUTHORIZATION);
    // A DPoP proof makes the token DPoP-bound (RFC 9449 section 5).
    let mut proofs = request.headers().get_all("dpop").iter();
    let jkt = match (proofs.next(), proofs.next()) {
        (None, _) => None,
        (Some(proof), None) => {
            let url = format!("{}/oauth/token", state.base);
            let htu = url;
            let now = crate::time::unix_seconds(std::time::SystemTime::now());
            let key = proof.to_str().ok().and_then(|proof| {
                crate::dpop::proof::ProofRules::for_token_endpoint()
                    .token_request_key(proof, &htu, now)
                    .ok()
            });
            match key {
                Some(jkt) => Some(jkt),
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_dpop_proof",
                        "the DPoP proof is not valid for this request",
                    );
                }
            }
        }
        (Some(_), Some(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                "one DPoP header at most",
            );
        }
    };
    let body = match http_body_util::Limited::new(request.into_body(), 64 * 1024)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "body too large"),
    };
    if !is_form {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let client = basic.or_else(|| {
        Some((
            param("client_id")?.to_owned(),
            param("client_secret").unwrap_or("").to_owned(),
        ))
    });
    let accounts = lock(&state.accounts);
    let client_ok = client.as_ref().map(|(id, secret)| {
        accounts
            .clients
            .get(id)
            .is_some_and(|c| c.secret == *secret)
    });
    let invalid_client = || {
        let status = if used_basic {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        oauth_error(status, "invalid_client", "unknown client or wrong secret")
    };
    let (subject, client_id, granted) = match param("grant_type") {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            );
        }
        Some("client_credentials") => {
            let (Some((id, _)), Some(true)) = (&client, client_ok) else {
                return invalid_client();
            };
            let permissions = accounts
                .clients
                .get(id)
                .map(|c| c.permissions.clone())
                .unwrap_or_default();
            (id.clone(), Some(id.clone()), permissions)
        }
        Some("password") => {
            if client_ok == Some(false) {
                return invalid_client();
            }
            let (Some(username), Some(password)) = (param("username"), param("password")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                );
            };
            let Some(user) = accounts
                .users
                .get(username)
                .filter(|u| u.secret == password)
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "wrong username or password",
                );
            };
            (
                username.to_owned(),
                client.map(|(id, _)| id),
                user.permissions.clone(),
            )
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only client_credentials and password are supported",
            );
        }
    };
    drop(accounts);
    let scopes = match grant(&granted, param("scope")) {
        Ok(scopes) => scopes,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &why),
    };
    let scope = scopes.join(" ");
    let key = lock(&state.keys).active.clone();
    let mut builder = TokenBuilder::new(&key)
        .issuer(state.issuer.clone())
        .audience(state.audience.clone())
        .subject(subject)
        .scope(scope.clone())
        .typ("at+jwt")
        .expires_in(Duration::from_secs(3600));
    if let Some(client_id) = client_id {
        builder = builder.claim("client_id", client_id);
    }
    if let Some(jkt) = &jkt {
        builder = builder.claim("cnf", json!({ "jkt": jkt }));
    }
    let access_token = {
        let mut opaque = lock(&state.opaque);
        if opaque.issue {
            let token = opaque_id();
            opaque.tokens.insert(token.clone(), builder.claims());
            token
        } else {
            builder.sign()
        }
    };
    let body = json!({
        "access_token": access_token,
        "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
        "expires_in": 3600,
        "scope": scope,
    });
    let mut response = respond(StatusCode::OK, "application/json", body.to_string());
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn add_cache_headers(response: &mut Response<Full<Bytes>>, behaviour: &Behaviour) {
    let headers = response.headers_mut();
    if let Some(value) = behaviour
        .cache_control
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(CACHE_CONTROL, value);
    }
    if let Some(value) = behaviour
        .etag
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert(ETAG, value);
    }
}

impl MockIssuer {
    /// Starts an issuer with a fresh RSA signing key.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound, or outside a tokio runtime.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// Options: first key, default audience, issuer path, port, fallback.
    pub fn builder() -> MockIssuerBuilder {
        MockIssuerBuilder {
            key: None,
            audience: DEFAULT_AUDIENCE.to_owned(),
            issuer_path: String::new(),
            port: 0,
            fallback: None,
        }
    }

    /// The issuer identifier (`iss` of its tokens): `http://127.0.0.1:<port>` plus the
    /// configured path.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.state.base
    }

    /// The socket address served.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JWKS URL.
    #[must_use]
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.state.base)
    }

    /// The discovery document URL.
    #[must_use]
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.state.issuer.trim_end_matches('/')
        )
    }

    /// The default audience of minted tokens.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.state.audience
    }

    /// A token builder set to this issuer, the active key and the default audience.
    pub fn token(&self) -> TokenBuilder {
        TokenBuilder::new(&self.active_key())
            .issuer(self.state.issuer.clone())
            .audience(self.state.audience.clone())
    }

    /// The key tokens are signed with.
    #[must_use]
    pub fn active_key(&self) -> TestKey {
        lock(&self.state.keys).active.clone()
    }

    /// The published keys.
    #[must_use]
    pub fn keys(&self) -> Vec<TestKey> {
        lock(&self.state.keys).published.clone()
    }

    /// Publishes another key (it does not sign until made active).
    pub fn add_key(&self, key: TestKey) {
        lock(&self.state.keys).published.push(key);
    }

    /// Stops publishing the key with this `kid`.
    pub fn remove_key(&self, kid: &str) {
        lock(&self.state.keys).published.retain(|k| k.kid() != kid);
    }

    /// Signs with this key from now on, publishing it if it is not yet.
    pub fn set_active(&self, key: TestKey) {
        let mut keys = lock(&self.state.keys);
        if !keys.published.iter().any(|k| k.kid() == key.kid()) {
            keys.published.push(key.clone());
        }
        keys.active = key;
    }

    /// Replaces the published keys; the first one signs.
    ///
    /// # Panics
    ///
    /// If `keys` is empty.
    pub fn replace_keys(&self, keys: Vec<TestKey>) {
        let Some(first) = keys.first().cloned() else {
            panic!("a mock issuer needs at least one key");
        };
        let mut state = lock(&self.state.keys);
        state.published = keys;
        state.active = first;
    }

    /// Rotates as identity providers do: a new key of the same type is published and
    /// signs from now on; the old one stays published. Returns the new key.
    pub fn rotate(&self) -> TestKey {
        let old = self.active_key();
        let new = match old.algorithm() {
            crate::Algorithm::ES256 => TestKey::ec_p256(),
            crate::Algorithm::ES384 => TestKey::ec_p384(),
            crate::Algorithm::EdDSA => TestKey::ed25519(),
            _ => TestKey::rsa(),
        };
        self.set_active(new.clone());
        new
    }

    /// Plays `fault` on `endpoint` until changed.
    pub fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        lock(&self.state.behaviour).faults.insert(endpoint, fault);
    }

    /// Ends every fault.
    pub fn clear_faults(&self) {
        lock(&self.state.behaviour).faults.clear();
    }

    /// Lets every request held by [`Fault::Hold`] go on.
    pub fn release(&self) {
        self.state.released.send_modify(|n| *n += 1);
    }

    /// Makes the discovery document name another issuer (`None`: its own).
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        lock(&self.state.behaviour).discovery_issuer = issuer;
    }

    /// The `Cache-Control` header of JWKS answers.
    pub fn set_cache_control(&self, value: Option<String>) {
        lock(&self.state.behaviour).cache_control = value;
    }

    /// The `ETag` of JWKS answers; a request with a matching `If-None-Match` gets 304.
    pub fn set_etag(&self, value: Option<String>) {
        lock(&self.state.behaviour).etag = value;
    }

    /// Serves this JSON as the JWKS instead of the published keys (`None`: the keys
    /// again). For real providers' documents and malformed keys.
    pub fn set_jwks_document(&self, document: Option<Value>) {
        lock(&self.state.behaviour).jwks_document = document;
    }

    /// Answers `302 Found` with this `Location` on `endpoint` (`None`: answer normally),
    /// to test how clients follow redirects.
    pub fn set_redirect(&self, endpoint: Endpoint, location: Option<String>) {
        let redirects = &mut lock(&self.state.behaviour).redirects;
        match location {
            Some(location) => redirects.insert(endpoint, location),
            None => redirects.remove(&endpoint),
        };
    }

    /// Serves this JSON as the discovery document (`None`: the issuer's own).
    pub fn set_discovery_document(&self, document: Option<Value>) {
        lock(&self.state.behaviour).discovery_document = document;
    }

    /// The token endpoint URL (`client_credentials` and `password` grants, form-encoded,
    /// client secrets by HTTP Basic or in the body).
    #[must_use]
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.state.base)
    }

    /// The URL of the introspection endpoint (RFC 7662).
    #[must_use]
    pub fn introspection_url(&self) -> String {
        format!("{}/oauth/introspect", self.state.base)
    }

    /// The URL of the revocation endpoint (RFC 7009).
    #[must_use]
    pub fn revocation_url(&self) -> String {
        format!("{}/oauth/revoke", self.state.base)
    }

    /// An opaque token with the claims `token` would carry: a random string the
    /// introspection endpoint answers for.
    #[must_use]
    pub fn opaque(&self, token: &TokenBuilder) -> String {
        let id = opaque_id();
        lock(&self.state.opaque)
            .tokens
            .insert(id.clone(), token.claims());
        id
    }

    /// Makes the token endpoint issue opaque tokens instead of JWTs.
    pub fn issue_opaque_tokens(&self, opaque: bool) {
        lock(&self.state.opaque).issue = opaque;
    }

    /// Revokes a token (opaque or JWT): introspection answers `active: false` for it.
    pub fn revoke(&self, token: &str) {
        lock(&self.state.opaque).revoked.insert(token.to_owned());
    }

    /// Registers the public key of a client that authenticates to the introspection
    /// and revocation endpoints with `private_key_jwt`.
    pub fn add_client_key(&self, id: &str, key: TestKey) {
        lock(&self.state.opaque)
            .client_keys
            .insert(id.to_owned(), key);
    }

    /// Registers an OAuth client for the `client_credentials` grant; its tokens carry
    /// `sub` and `client_id` set to `id` and the granted permissions in `scope`.
    pub fn add_client<I, S>(&self, id: &str, secret: &str, permissions: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let account = Account {
            secret: secret.to_owned(),
            permissions: permissions.into_iter().map(Into::into).collect(),
        };
        lock(&self.state.accounts)
            .clients
            .insert(id.to_owned(), account);
    }

    /// Registers a user for the `password` grant; its tokens carry `sub` set to the
    /// username and the granted permissions in `scope`.
    pub fn add_user<I, S>(&self, username: &str, password: &str, permissions: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let account = Account {
            secret: password.to_owned(),
            permissions: permissions.into_iter().map(Into::into).collect(),
        };
        lock(&self.state.accounts)
            .users
            .insert(username.to_owned(), account);
    }

    /// How many requests an endpoint has had.
    #[must_use]
    pub fn requests(&self, endpoint: Endpoint) -> usize {
        self.state
            .counters
            .get(&endpoint)
            .map_or(0, |c| c.load(Ordering::SeqCst))
    }

    /// The headers of the last request to an endpoint.
    #[must_use]
    pub fn last_request_headers(&self, endpoint: Endpoint) -> Option<HeaderMap> {
        lock(&self.state.last_headers).get(&endpoint).cloned()
    }
}

impl Drop for MockIssuer {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

impl fmt::Debug for MockIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockIssuer")
            .field("issuer", &self.state.issuer)
            .finish_non_exhaustive()
    }
}
