//! Shared helpers for the integration tests: shared keys, a real HTTP server on
//! 127.0.0.1:0 and a real HTTP client, the handlers the areas' apps share, reading the
//! answers, and waiting for what happens in the background (`wait`).
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use tower_jwt_auth::jwks::KeySet;
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth::{
    Algorithm, Authentication, Claims, JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer,
    StandardClaims,
};

pub mod redis;
pub mod wait;

pub use wait::{eventually, eventually_within};

pub const ISSUER: &str = "https://idp.example.com/";
pub const AUDIENCE: &str = "https://api.example.com";

/// RSA keys are slow to generate; tests share these.
pub fn rsa_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::rsa().with_kid("rsa-1"))
}

pub fn rsa_key_2() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::rsa().with_kid("rsa-2"))
}

pub fn ec_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::ec_p256().with_kid("ec-1"))
}

pub fn ec384_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::ec_p384().with_kid("ec384-1"))
}

pub fn ed_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::ed25519().with_kid("ed-1"))
}

/// A token for the test issuer and audience, signed by `key`.
pub fn token(key: &TestKey) -> TokenBuilder {
    TokenBuilder::new(key).issuer(ISSUER).audience(AUDIENCE)
}

/// The protected app: `/` answers the caller's `sub`, `/token` echoes the raw token's
/// length, `/optional` answers `anonymous` without claims.
pub fn app(layer: JwtAuthLayer) -> Router {
    Router::new()
        .route("/", get(whoami).post(whoami))
        .route("/token", get(token_len))
        .route("/optional", get(whoami_or_anonymous))
        .layer(layer)
}

/// Answers the caller's `sub` (empty without one); needs the claims.
pub async fn whoami(Claims(claims): Claims<StandardClaims>) -> String {
    claims.sub.unwrap_or_default()
}

/// Answers the caller's `sub`, or `anonymous` when the request came without claims. A
/// token without `sub` answers the empty string: it is not taken for no token.
pub async fn whoami_or_anonymous(claims: Option<Claims<StandardClaims>>) -> String {
    claims.map_or_else(|| "anonymous".into(), |c| c.sub.clone().unwrap_or_default())
}

async fn token_len(auth: Authentication) -> String {
    auth.token().map_or(0, |t| t.as_str().len()).to_string()
}

/// Serves `router` on 127.0.0.1 with an OS-chosen port. The server task belongs to the
/// test's runtime and stops with it.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = listener().await;
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A listener on 127.0.0.1 with an OS-chosen port, for a server `serve` does not start
/// (tonic, TLS, an app that must know its own address). The server takes the listener
/// itself: a port number that was bound, let go and bound again could meanwhile have
/// gone to another test.
pub async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback")
}

/// The example gRPC server (`examples/tonic_server.rs`) with `config`, on a listener of
/// its own, and a connected channel to it.
pub async fn grpc(config: JwtAuthConfig) -> (SocketAddr, tonic::transport::Channel) {
    let listener = listener().await;
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(crate::tonic_server::serve(
        listener,
        config,
        std::future::pending(),
    ));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    (addr, channel)
}

/// A loopback address where connections are refused, held until the socket drops: the
/// socket is bound but never listens, so its port cannot go to any other listener.
pub fn refusing_address() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind loopback");
    let addr = socket.local_addr().expect("local addr");
    (socket, addr)
}

/// The current Unix time in whole seconds, for claims such as `auth_time` that a test
/// sets relative to the system clock the layer reads by default.
pub fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_secs()).expect("seconds fit i64")
}

/// A config builder that trusts a mock issuer: its issuer and audience, keys by
/// discovery with a client that bypasses proxies.
pub fn issuer_config(issuer: &tower_jwt_auth::testing::MockIssuer) -> JwtAuthConfigBuilder {
    JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .http_client(client())
}

/// A `client_credentials` token request to `token_url` with the secret in the body,
/// for a test that adds to it (a DPoP proof) or reads more than the token.
pub fn client_credentials_request(
    token_url: &str,
    id: &str,
    secret: &str,
) -> reqwest::RequestBuilder {
    client().post(token_url).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ])
}

/// The access token a token endpoint (the mock issuer's `token_url()`, or the one a
/// client is configured with) issues by `client_credentials`, the secret in the body.
pub async fn client_credentials(token_url: &str, id: &str, secret: &str) -> String {
    let issued: serde_json::Value = client_credentials_request(token_url, id, secret)
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("json");
    issued["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// A client that never goes through a proxy: loopback traffic must stay on loopback.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// What a request got back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// The `DPoP-Nonce` header.
    pub nonce: Option<String>,
    pub body: String,
}

/// The value of the quoted parameter `name` in a `WWW-Authenticate` challenge. Only a
/// whole name counts: `description` is not found in `error_description="…"`.
pub fn param(challenge: &str, name: &str) -> Option<String> {
    let wanted = format!("{name}=\"");
    let mut from = 0;
    while let Some(found) = challenge[from..].find(&wanted) {
        let at = from + found;
        let whole = challenge[..at].ends_with([' ', ',']);
        let start = at + wanted.len();
        let end = challenge[start..].find('"')? + start;
        if whole {
            return Some(challenge[start..end].to_owned());
        }
        from = end + 1;
    }
    None
}

impl Answer {
    /// The `error` parameter of the `WWW-Authenticate` challenge.
    pub fn error_code(&self) -> Option<String> {
        param(self.challenge.as_deref()?, "error")
    }

    pub fn assert_ok(&self) {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
    }

    /// 401 with `error="invalid_token"`.
    pub fn assert_invalid_token(&self, description: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{self:?}");
        assert_eq!(
            self.error_code().as_deref(),
            Some("invalid_token"),
            "{self:?}"
        );
        let expected = format!("error_description=\"{description}\"");
        assert!(
            self.challenge
                .as_deref()
                .is_some_and(|c| c.contains(&expected)),
            "expected {expected} in {self:?}"
        );
    }

    /// 401 with a bare challenge: no error code (RFC 6750 section 3.1).
    pub fn assert_no_token(&self) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "{self:?}");
        assert_eq!(self.error_code(), None, "{self:?}");
        assert!(
            self.challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{self:?}"
        );
    }

    /// 503 that the client may retry after `retry_after` seconds: no challenge (the
    /// token was not judged), never stored by a cache.
    pub fn assert_unavailable(&self, retry_after: &str) {
        assert_eq!(self.status, StatusCode::SERVICE_UNAVAILABLE, "{self:?}");
        assert_eq!(self.retry_after.as_deref(), Some(retry_after), "{self:?}");
        assert_eq!(self.challenge, None, "{self:?}");
        assert_eq!(self.cache_control.as_deref(), Some("no-store"), "{self:?}");
    }

    /// 400 with `error="invalid_request"`.
    pub fn assert_invalid_request(&self) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{self:?}");
        assert_eq!(
            self.error_code().as_deref(),
            Some("invalid_request"),
            "{self:?}"
        );
    }
}

/// A running protected app and a client for it.
pub struct Server {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(layer: JwtAuthLayer) -> Self {
        Self::start_router(app(layer)).await
    }

    pub async fn start_router(router: Router) -> Self {
        Self {
            addr: serve(router).await,
            client: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET `/` with `Authorization: Bearer <token>`.
    pub async fn bearer(&self, token: &str) -> Answer {
        self.send_bearer("/", token.as_bytes()).await
    }

    /// GET `/` with `Authorization: Bearer <token>`, the token given as bytes (obs-text,
    /// which a `&str` cannot carry, included).
    pub async fn bearer_bytes(&self, token: &[u8]) -> Answer {
        self.send_bearer("/", token).await
    }

    /// GET `path` with `Authorization: Bearer <token>`.
    pub async fn bearer_at(&self, path: &str, token: &str) -> Answer {
        self.send_bearer(path, token.as_bytes()).await
    }

    /// The one place a bearer request is built.
    async fn send_bearer(&self, path: &str, token: &[u8]) -> Answer {
        let value = http::HeaderValue::from_bytes(&[b"Bearer ".as_slice(), token].concat())
            .expect("a header value");
        let response = self
            .client
            .get(self.url(path))
            .header("authorization", value)
            .send()
            .await
            .expect("request");
        answer(response).await
    }

    /// GET `path` with the given headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.expect("request")).await
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_owned())
    };
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    let challenge = header("www-authenticate");
    let retry_after = header("retry-after");
    let content_type = header("content-type");
    let cache_control = header("cache-control");
    let nonce = header("dpop-nonce");
    let body = response.text().await.expect("body");
    Answer {
        status,
        challenge,
        retry_after,
        content_type,
        cache_control,
        nonce,
        body,
    }
}

/// A config builder for the test issuer and audience with static keys.
pub fn builder(keys: KeySet) -> JwtAuthConfigBuilder {
    JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_set(keys)
}

/// A protected app with these keys.
pub async fn server_with(keys: KeySet) -> Server {
    Server::start(JwtAuthLayer::new(builder(keys).build().expect("config"))).await
}

/// A protected app with the shared RSA key.
pub async fn rsa_server() -> Server {
    server_with(rsa_key().key_set()).await
}

/// Replaces the signature segment of a token.
pub fn with_signature(token: &str, signature: &[u8]) -> String {
    let cut = token.rfind('.').expect("three segments");
    format!("{}.{}", &token[..cut], URL_SAFE_NO_PAD.encode(signature))
}

/// Signs arbitrary header and payload JSON text with `key`.
pub fn sign_raw(key: &TestKey, alg: Algorithm, header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = key.sign(alg, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Log output captured in memory.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("logs").clone()).expect("utf-8")
    }
}

/// Records every event at TRACE level on this thread (the tests' current-thread
/// runtime runs the server and the refresher here too) until the guard drops, with the
/// given span events (`FmtSpan::CLOSE` prints each span's fields when it ends).
pub fn capture(
    spans: tracing_subscriber::fmt::format::FmtSpan,
) -> (Captured, tracing::subscriber::DefaultGuard) {
    // While a single subscriber is registered, tracing decides a callsite's interest by
    // the subscriber of the thread that first reaches it: a test without one, running
    // beside, would disable the callsite for this one too. An idle subscriber kept for
    // the whole run makes tracing ask every registered subscriber.
    static IDLE: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    IDLE.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(spans)
        .with_writer(move || writer.clone())
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

/// Serialises the tests that hold a `FileWatcher` or send SIGHUP: the signal reaches
/// every watcher of this one test process, and a watcher's inotify instance is visible
/// to a test that counts them. Each such test holds the guard for its whole run.
pub async fn watcher_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Sends SIGHUP to this test process. A `FileWatcher` must exist first: it installs
/// tokio's handler, so the signal reaches it instead of ending the run.
pub fn hang_up() {
    // The shell's built-in `kill`: no procps package needed.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -HUP {}", std::process::id())])
        .status()
        .expect("sh");
    assert!(status.success(), "kill -HUP: {status}");
}
