//! Opaque tokens through RFC 7662 introspection, over real HTTP against the MockIssuer:
//! acceptance with permissions, every refusal, each client authentication method, the
//! caches and the shared call, every fault, and JWTs that never reach the endpoint. Then
//! where credentials may go (plain http refused at build, redirects of discovery and of
//! the POST, against loopback servers that record what reaches them), and the call
//! budget: what junk strings cost without the shape filter, and with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::support::{Answer, Server, eventually_within, issuer_config, unix_now, whoami};
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower_jwt_auth::introspection::{ClientAuth, Introspection, SigningKey};
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::time::ManualClock;
use tower_jwt_auth::{
    Algorithm, ConfigErrorKind, JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer,
    RequirePermission, StandardClaims, StepUp,
};

fn app(layer: JwtAuthLayer) -> Router {
    Router::new()
        .route("/", get(whoami))
        .route("/read", get(whoami).route_layer(RequirePermission("read")))
        .layer(layer)
}

/// A mock issuer with the API's introspection client registered.
async fn issuer() -> MockIssuer {
    let issuer = MockIssuer::start().await;
    issuer.add_client("api", "s3cret", Vec::<String>::new());
    issuer
}

fn basic() -> Introspection {
    Introspection::new("api", ClientAuth::client_secret_basic("s3cret"))
}

async fn start(issuer: &MockIssuer, introspection: Introspection) -> Server {
    start_with(issuer_config(issuer), introspection).await
}

async fn start_with(builder: JwtAuthConfigBuilder, introspection: Introspection) -> Server {
    let config = builder
        .introspection(introspection)
        .build()
        .expect("config");
    Server::start_router(app(JwtAuthLayer::new(config))).await
}

fn calls(issuer: &MockIssuer) -> usize {
    issuer.requests(Endpoint::Introspection)
}

/// The `Retry-After` of a 503 when introspection cannot answer, in seconds.
const RETRY_AFTER: &str = "2";

#[tokio::test]
async fn an_opaque_token_is_accepted_with_its_permissions_and_cached() {
    let issuer = issuer().await;
    let server = start(&issuer, basic()).await;
    let opaque = issuer.opaque(&issuer.token().subject("olga").scope("read"));
    let answer = server.bearer_at("/read", &opaque).await;
    answer.assert_ok();
    assert_eq!(answer.body, "olga");
    assert_eq!(calls(&issuer), 1);
    // The second request makes no call.
    server.bearer(&opaque).await.assert_ok();
    assert_eq!(calls(&issuer), 1);
    // Without the permission: 403, as for a JWT.
    let writer_only = issuer.opaque(&issuer.token().scope("write"));
    let refused = server.bearer_at("/read", &writer_only).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
}

/// The forwarded payload header, decoded.
async fn forwarded_payload(headers: http::HeaderMap) -> String {
    let header = headers
        .get("x-jwt-payload")
        .expect("the payload is forwarded");
    let payload = URL_SAFE_NO_PAD
        .decode(header.as_bytes())
        .expect("base64url");
    let payload: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
    payload["sub"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn step_up_route_single_use_and_payload_forwarding_read_the_introspection_answer() {
    let issuer = issuer().await;
    let config = issuer_config(&issuer)
        .introspection(basic())
        .forward_payload("x-jwt-payload")
        .build()
        .expect("config");
    let router = Router::new()
        .route(
            "/security",
            get(whoami).route_layer(StepUp::new().acr(["mfa"]).max_age(Duration::from_secs(300))),
        )
        .route(
            "/redeem",
            get(whoami).route_layer(RequirePermission("read").single_use()),
        )
        .route("/forwarded", get(forwarded_payload))
        .layer(JwtAuthLayer::new(config));
    let server = Server::start_router(router).await;
    let now = unix_now();
    let strong = issuer.opaque(
        &issuer
            .token()
            .subject("olga")
            .scope("read")
            .claim("acr", "mfa")
            .claim("auth_time", now - 10),
    );
    let answer = server.bearer_at("/security", &strong).await;
    answer.assert_ok();
    assert_eq!(answer.body, "olga");
    let weak = issuer.opaque(&issuer.token().subject("olga").claim("acr", "pwd"));
    let refused = server.bearer_at("/security", &weak).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    let challenge = refused.challenge.as_deref().unwrap_or_default();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    // The route's single use keys the token by the answer's `iss` and `jti`.
    let once = issuer.opaque(&issuer.token().subject("olga").scope("read"));
    server.bearer_at("/redeem", &once).await.assert_ok();
    server
        .bearer_at("/redeem", &once)
        .await
        .assert_invalid_token("token already used");
    // The forwarded payload is the verified answer, base64url-encoded.
    let forwarded = server.bearer_at("/forwarded", &strong).await;
    forwarded.assert_ok();
    assert_eq!(forwarded.body, "olga");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_gives_no_endpoint() {
    let issuer = issuer().await;
    let server = start(&issuer, basic()).await;
    let opaque = issuer.opaque(&issuer.token().subject("olga"));
    // OIDC Discovery section 4.3: a document for another issuer is not this one's.
    issuer.set_discovery_issuer(Some("https://elsewhere.example".into()));
    server.bearer(&opaque).await.assert_unavailable(RETRY_AFTER);
    assert_eq!(calls(&issuer), 0);
    issuer.set_discovery_issuer(None);
    let answer = server.bearer(&opaque).await;
    answer.assert_ok();
    assert_eq!(answer.body, "olga");
}

#[tokio::test]
async fn a_jwt_is_still_verified_locally_without_a_call() {
    let issuer = issuer().await;
    let server = start(&issuer, basic()).await;
    server
        .bearer(&issuer.token().subject("jay").sign())
        .await
        .assert_ok();
    server
        .bearer(&issuer.token().expired().sign())
        .await
        .assert_invalid_token("token expired");
    assert_eq!(calls(&issuer), 0);
}

#[tokio::test]
async fn every_refusal_of_the_answer() {
    let issuer = issuer().await;
    let server = start(&issuer, basic()).await;
    let cases = [
        (
            "unknown",
            "an-unknown-opaque-token".to_owned(),
            "token not active",
        ),
        (
            "expired",
            issuer.opaque(&issuer.token().expired()),
            "token not active",
        ),
        (
            "wrong audience",
            issuer.opaque(&issuer.token().wrong_audience()),
            "audience not accepted",
        ),
        (
            "no audience",
            issuer.opaque(&issuer.token().without_claim("aud")),
            "required claim missing",
        ),
        (
            "wrong issuer",
            issuer.opaque(&issuer.token().wrong_issuer()),
            "issuer not trusted",
        ),
        (
            "refresh token",
            issuer.opaque(&issuer.token().claim("token_type", "refresh_token")),
            "unexpected token type",
        ),
        (
            "refresh token use",
            issuer.opaque(&issuer.token().claim("token_use", "Refresh_Token")),
            "unexpected token type",
        ),
    ];
    for (case, token, description) in cases {
        let answer = server.bearer(&token).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {answer:?}"
        );
        answer.assert_invalid_token(description);
    }
    // Other token types pass.
    for kind in ["Bearer", "DPoP", "access_token"] {
        let token = issuer.opaque(&issuer.token().claim("token_type", kind));
        server.bearer(&token).await.assert_ok();
    }
}

#[tokio::test]
async fn a_revocation_at_the_server_is_seen_after_the_cache_ttl() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let ttl = Duration::from_secs(60);
    let server = start_with(
        issuer_config(&issuer).clock(clock.clone()),
        basic().cache_ttl(ttl),
    )
    .await;
    let opaque = issuer.opaque(&issuer.token());
    server.bearer(&opaque).await.assert_ok();
    issuer.revoke(&opaque);
    // Still cached up to the end of the TTL: the TTL is the revocation delay.
    clock.advance(ttl - Duration::from_secs(1));
    server.bearer(&opaque).await.assert_ok();
    assert_eq!(calls(&issuer), 1, "answered from the cache");
    clock.advance(Duration::from_secs(1));
    server
        .bearer(&opaque)
        .await
        .assert_invalid_token("token not active");
    assert_eq!(calls(&issuer), 2, "asked again once the TTL ran out");
}

#[tokio::test]
async fn refusals_are_cached_briefly() {
    let issuer = issuer().await;
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let ttl = Duration::from_secs(5);
    let server = start_with(
        issuer_config(&issuer).clock(clock.clone()),
        basic().negative_ttl(ttl),
    )
    .await;
    for _ in 0..3 {
        server
            .bearer("no-such-token")
            .await
            .assert_invalid_token("token not active");
    }
    assert_eq!(calls(&issuer), 1);
    clock.advance(ttl - Duration::from_millis(1));
    server
        .bearer("no-such-token")
        .await
        .assert_invalid_token("token not active");
    assert_eq!(calls(&issuer), 1, "still the remembered refusal");
    clock.advance(Duration::from_millis(1));
    server
        .bearer("no-such-token")
        .await
        .assert_invalid_token("token not active");
    assert_eq!(calls(&issuer), 2, "asked again once the TTL ran out");
}

#[tokio::test]
async fn each_client_authentication_method_works() {
    let issuer = issuer().await;
    let opaque = issuer.opaque(&issuer.token().subject("m"));
    // client_secret_post
    let post = start(
        &issuer,
        Introspection::new("api", ClientAuth::client_secret_post("s3cret")),
    )
    .await;
    post.bearer(&opaque).await.assert_ok();
    assert_eq!(
        issuer
            .last_request_headers(Endpoint::Introspection)
            .and_then(|h| h.get("authorization").cloned()),
        None
    );
    // client_secret_basic, with a secret that needs form-encoding first.
    issuer.add_client("api:2", "p@ss w:rd", Vec::<String>::new());
    let basic = start(
        &issuer,
        Introspection::new("api:2", ClientAuth::client_secret_basic("p@ss w:rd")),
    )
    .await;
    basic.bearer(&opaque).await.assert_ok();
    // private_key_jwt
    let key = TestKey::ec_p256().with_kid("api-key");
    issuer.add_client_key("api-jwt", key.clone());
    let der = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        key.export_private()["pkcs8"].as_str().expect("pkcs8"),
    )
    .expect("base64");
    let signing = SigningKey::from_pkcs8(Algorithm::ES256, &der, Some("api-key")).expect("key");
    let jwt = start(
        &issuer,
        Introspection::new("api-jwt", ClientAuth::private_key_jwt(signing)),
    )
    .await;
    jwt.bearer(&opaque).await.assert_ok();
    // Wrong credentials: 503, never an accepted token.
    let wrong = start(
        &issuer,
        Introspection::new("api", ClientAuth::client_secret_basic("nope")),
    )
    .await;
    wrong.bearer(&opaque).await.assert_unavailable(RETRY_AFTER);
}

#[tokio::test]
async fn every_fault_gives_503_with_retry_after() {
    let issuer = issuer().await;
    let server = start(
        &issuer,
        basic()
            .timeout(Duration::from_millis(200))
            .negative_ttl(Duration::ZERO),
    )
    .await;
    for fault in [
        Fault::Down,
        Fault::Garbage,
        Fault::Slow(Duration::from_millis(500)),
        Fault::Huge,
    ] {
        issuer.set_fault(Endpoint::Introspection, fault);
        let opaque = issuer.opaque(&issuer.token());
        server.bearer(&opaque).await.assert_unavailable(RETRY_AFTER);
    }
    issuer.clear_faults();
    let opaque = issuer.opaque(&issuer.token());
    server.bearer(&opaque).await.assert_ok();
}

#[tokio::test]
async fn the_rate_limit_protects_the_authorization_server() {
    let issuer = issuer().await;
    let server = start(&issuer, basic().rate_limit(2)).await;
    let mut unavailable = 0;
    for _ in 0..5 {
        let answer = server.bearer(&issuer.opaque(&issuer.token())).await;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            answer.assert_unavailable(RETRY_AFTER);
            unavailable += 1;
        } else {
            answer.assert_ok();
        }
    }
    assert!(unavailable >= 2, "{unavailable}");
    assert!(calls(&issuer) <= 3, "{}", calls(&issuer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_with_one_new_token_make_one_call() {
    let issuer = issuer().await;
    issuer.set_fault(
        Endpoint::Introspection,
        Fault::Slow(Duration::from_millis(200)),
    );
    let server = start(&issuer, basic()).await;
    let opaque = issuer.opaque(&issuer.token().subject("crowd"));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let request = server.client.get(server.url("/")).bearer_auth(&opaque);
            tokio::spawn(async move {
                crate::support::answer(request.send().await.expect("request")).await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").assert_ok();
    }
    assert_eq!(calls(&issuer), 1);
}

#[tokio::test]
async fn always_introspect_sees_a_revoked_jwt() {
    let issuer = issuer().await;
    let server = start(
        &issuer,
        basic().always_introspect(true).cache_ttl(Duration::ZERO),
    )
    .await;
    let jwt = issuer.token().subject("jo").sign();
    server.bearer(&jwt).await.assert_ok();
    issuer.revoke(&jwt);
    server
        .bearer(&jwt)
        .await
        .assert_invalid_token("token not active");
    assert_eq!(calls(&issuer), 2);
}

/// The mock authorization server answers `active` only for a JWT one of its published
/// keys signed, as a real one knows only the tokens it issued: not for one signed by
/// another key with the same claims, nor for its own token with a changed payload.
#[tokio::test]
async fn the_mock_introspects_as_active_only_the_jwts_it_signed() {
    let issuer = issuer().await;
    let client = reqwest::Client::new();
    let active = async |token: &str| -> bool {
        let answer: serde_json::Value = client
            .post(issuer.introspection_url())
            .basic_auth("api", Some("s3cret"))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection answer")
            .json()
            .await
            .expect("json");
        answer["active"].as_bool().expect("active")
    };
    let own = issuer.token().subject("jo").sign();
    assert!(active(&own).await);
    let forged = TokenBuilder::new(&TestKey::rsa())
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .subject("jo")
        .sign();
    assert!(!active(&forged).await);
    assert!(!active(&issuer.token().subject("jo").tampered().sign()).await);
    // A key taken out of the JWKS no longer vouches for its tokens.
    let old = issuer.active_key();
    issuer.rotate();
    assert!(active(&own).await, "still published after a rotation");
    issuer.remove_key(old.kid());
    assert!(!active(&own).await);
}

#[tokio::test]
async fn opaque_tokens_from_the_token_endpoint_work_and_several_issuers_are_refused() {
    let issuer = issuer().await;
    issuer.add_client("svc", "pw", ["read"]);
    issuer.issue_opaque_tokens(true);
    let server = start(&issuer, basic()).await;
    let access = crate::support::client_credentials(&issuer.token_url(), "svc", "pw").await;
    assert!(!access.contains('.'), "opaque: {access}");
    server.bearer_at("/read", &access).await.assert_ok();

    let other = MockIssuer::start().await;
    let err = issuer_config(&issuer)
        .issuer(tower_jwt_auth::TrustedIssuer::new(other.issuer()))
        .introspection(basic())
        .build()
        .expect_err("two issuers");
    assert!(err.to_string().contains("exactly one"), "{err}");
}

#[test]
fn outside_a_runtime_an_opaque_token_is_unavailable_not_a_panic() {
    let config = tower_jwt_auth::JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("api")
        .key_set(crate::support::ec_key().key_set())
        .introspection(basic().endpoint("https://idp.example.com/introspect"))
        .build()
        .expect("config");
    let verifier = tower_jwt_auth::Verifier::new(config);
    let error = verifier
        .verify::<StandardClaims>("an-opaque-token")
        .expect_err("no runtime, no call");
    assert_eq!(
        error.kind(),
        tower_jwt_auth::ErrorKind::IntrospectionUnavailable
    );
}

#[tokio::test]
async fn signed_answers_are_verified_with_the_issuers_keys() {
    let issuer = issuer().await;
    let server = start(&issuer, basic().signed_answers(true)).await;
    let opaque = issuer.opaque(&issuer.token().subject("sig").scope("read"));
    let answer = server.bearer_at("/read", &opaque).await;
    answer.assert_ok();
    assert_eq!(answer.body, "sig");
    let accept = issuer
        .last_request_headers(Endpoint::Introspection)
        .and_then(|h| h.get("accept").cloned())
        .expect("accept");
    assert_eq!(accept, "application/token-introspection+jwt");
    server
        .bearer("not-a-token-it-knows")
        .await
        .assert_invalid_token("token not active");
    // The authorization server rotates its key: the answer's new `kid` fetches the keys
    // again instead of failing until the next scheduled refresh.
    let jwks_before = issuer.requests(Endpoint::Jwks);
    issuer.rotate();
    let rotated = issuer.opaque(&issuer.token().subject("new-key"));
    let answer = server.bearer(&rotated).await;
    answer.assert_ok();
    assert_eq!(answer.body, "new-key");
    assert_eq!(issuer.requests(Endpoint::Jwks), jwks_before + 1);
    // Signed by another key under the published key's `kid`: no answer, 503.
    let published = issuer.active_key();
    let impostor = TestKey::rsa_bits(2048).with_kid(published.kid());
    issuer.set_active(impostor);
    let other = issuer.opaque(&issuer.token());
    server.bearer(&other).await.assert_unavailable(RETRY_AFTER);
    // The same token with plain answers passes: the signature was the only problem.
    let plain_server = start(&issuer, basic()).await;
    plain_server.bearer(&other).await.assert_ok();
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_single_use_opaque_token_without_exp_is_kept_for_the_maximum_lifetime_on_redis() {
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore};
    let redis = crate::support::redis::RedisServer::start().await;
    let issuer = issuer().await;
    let connection = RedisConnection::open(&redis.url())
        .expect("url")
        .prefix("t:");
    let config = issuer_config(&issuer)
        .introspection(basic())
        .single_use_tokens(true)
        .revocation_retention(Duration::from_secs(600))
        .replay_store(RedisReplayStore::new(connection))
        .build()
        .expect("config");
    let server = Server::start_router(app(JwtAuthLayer::new(config))).await;
    let opaque = issuer.opaque(&issuer.token().without_claim("exp").claim("jti", "no-exp"));
    server.bearer(&opaque).await.assert_ok();
    server
        .bearer(&opaque)
        .await
        .assert_invalid_token("token already used");
    let keys = redis.command(&["KEYS", "t:replay:*"]);
    let ttl: i64 = redis.command(&["PTTL", keys.trim()]).parse().expect("pttl");
    assert!(ttl > 590_000 && ttl <= 600_000, "{ttl}");
}

/// One request a [`Spy`] server received.
#[derive(Clone, Debug)]
struct Seen {
    method: http::Method,
    path: String,
    authorization: Option<String>,
    content_length: Option<String>,
    body: String,
}

/// A loopback server that records every request, then either redirects it (to the same
/// path on another base URL) or answers as a compliant authorization server would: a
/// discovery document naming the issuer it is told and its own `/introspect`, and
/// `active: true` with the test audience for any token at all, so an answer from it that
/// the layer wrongly trusts shows up as a 200.
#[derive(Clone, Default)]
struct Spy {
    base: Arc<Mutex<String>>,
    issuer: Arc<Mutex<String>>,
    redirect: Arc<Mutex<Option<(StatusCode, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Spy {
    async fn start() -> Self {
        let spy = Self::default();
        let router = Router::new().fallback(spy_answer).with_state(spy.clone());
        let addr = crate::support::serve(router).await;
        *spy.base.lock().expect("base") = format!("http://{addr}");
        spy
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.lock().expect("base"))
    }

    fn set_issuer(&self, issuer: &str) {
        *self.issuer.lock().expect("issuer") = issuer.to_owned();
    }

    /// Redirects every request with `status` to the same path under `base`; `None`
    /// answers normally.
    fn redirect(&self, redirect: Option<(StatusCode, String)>) {
        *self.redirect.lock().expect("redirect") = redirect;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    /// The requests that carried `secret` anywhere: body or `Authorization` header.
    fn carrying(&self, secret: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|seen| {
                seen.body.contains(secret)
                    || seen
                        .authorization
                        .as_deref()
                        .is_some_and(|a| a.contains(secret))
            })
            .collect()
    }
}

async fn spy_answer(
    axum::extract::State(spy): axum::extract::State<Spy>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: http::header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    spy.seen.lock().expect("seen").push(Seen {
        method,
        path: uri.path().to_owned(),
        authorization: header(http::header::AUTHORIZATION),
        content_length: header(http::header::CONTENT_LENGTH),
        body,
    });
    let redirect = spy.redirect.lock().expect("redirect").clone();
    if let Some((status, base)) = redirect {
        let location = format!("{base}{}", uri.path());
        return (status, [(http::header::LOCATION, location)]).into_response();
    }
    let document = if uri.path() == "/.well-known/openid-configuration" {
        serde_json::json!({
            "issuer": *spy.issuer.lock().expect("issuer"),
            "introspection_endpoint": spy.url("/introspect"),
        })
    } else {
        serde_json::json!({ "active": true, "sub": "mallory", "aud": crate::support::AUDIENCE })
    };
    axum::Json(document).into_response()
}

/// A layer for a trusted issuer with static keys, introspecting with `introspection`.
/// The key-fetch client follows redirects (reqwest's default): introspection must not
/// borrow it.
async fn start_static(issuer: &str, introspection: Introspection) -> Server {
    let config = JwtAuthConfig::builder()
        .issuer(issuer)
        .audience(crate::support::AUDIENCE)
        .key_set(crate::support::ec_key().key_set())
        .http_client(crate::support::client())
        .introspection(introspection)
        .build()
        .expect("config");
    Server::start_router(app(JwtAuthLayer::new(config))).await
}

/// Introspection with the secret in the form body, where a re-sent POST would show it.
fn post_secret() -> Introspection {
    Introspection::new("api", ClientAuth::client_secret_post(SECRET))
        .timeout(Duration::from_secs(5))
}

const SECRET: &str = "spy-s3cret";

/// A fresh opaque token: no server has seen it, and it is no JWS.
fn fresh(label: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}-{n}", std::process::id())
}

#[test]
fn a_plain_http_issuer_without_an_introspection_endpoint_is_refused_at_build() {
    // A plain test without a runtime: build() could not run a request even if it tried,
    // so the refusal comes from the URL alone.
    let plain = || {
        JwtAuthConfig::builder()
            .issuer("http://idp.example.test")
            .audience(crate::support::AUDIENCE)
            .key_set(crate::support::ec_key().key_set())
    };
    let error = plain()
        .introspection(basic())
        .build()
        .expect_err("discovery over plain http to a remote host");
    assert_eq!(error.kind(), ConfigErrorKind::InvalidUrl);
    let message = error.to_string();
    assert!(
        message.contains("http://idp.example.test/.well-known/openid-configuration"),
        "{message}"
    );
    assert!(
        message.contains("dangerous().allow_plain_http()"),
        "{message}"
    );
    // The switch it names allows it, and an https endpoint needs no discovery at all.
    plain()
        .dangerous()
        .allow_plain_http()
        .introspection(basic())
        .build()
        .expect("plain http explicitly allowed");
    plain()
        .introspection(basic().endpoint("https://idp.example.test/introspect"))
        .build()
        .expect("an https endpoint of its own");
    let error = plain()
        .introspection(basic().endpoint("http://idp.example.test/introspect"))
        .build()
        .expect_err("a plain http endpoint");
    assert!(
        error.to_string().contains("dangerous().allow_plain_http()"),
        "{error}"
    );
}

#[tokio::test]
async fn a_redirected_discovery_document_never_picks_the_endpoint() {
    let issuer_side = Spy::start().await;
    let elsewhere = Spy::start().await;
    let issuer = issuer_side.url("");
    issuer_side.set_issuer(&issuer);
    // The document at the other end is a correct one for this issuer, naming its own
    // endpoint: if the layer read it, the POST would go there and be answered active.
    elsewhere.set_issuer(&issuer);
    issuer_side.redirect(Some((StatusCode::FOUND, elsewhere.url(""))));

    // The crate's own client follows no redirect.
    let server = start_static(&issuer, post_secret()).await;
    let token = fresh("own-client");
    server.bearer(&token).await.assert_unavailable(RETRY_AFTER);
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());

    // An application's client that follows redirects fetches the other document, but an
    // answer from another URL than the one asked for is refused.
    let following =
        start_static(&issuer, post_secret().http_client(crate::support::client())).await;
    let token = fresh("following-client");
    following
        .bearer(&token)
        .await
        .assert_unavailable(RETRY_AFTER);
    let seen = elsewhere.seen();
    assert!(
        seen.iter()
            .all(|s| s.method == http::Method::GET && s.path.ends_with("openid-configuration")),
        "{seen:?}"
    );
    assert!(
        !seen.is_empty(),
        "the application's client followed the redirect"
    );
    assert!(elsewhere.carrying(SECRET).is_empty(), "{seen:?}");
    assert!(elsewhere.carrying(&token).is_empty(), "{seen:?}");

    // Without the redirect the same layer discovers, calls and accepts: the refusal
    // above was the redirect's, not the document's.
    issuer_side.redirect(None);
    let answer = following.bearer(&token).await;
    answer.assert_ok();
    assert_eq!(answer.body, "mallory");
    assert_eq!(issuer_side.carrying(SECRET).len(), 1);
}

#[tokio::test]
async fn a_redirected_introspection_post_never_delivers_the_secret_or_the_token() {
    let endpoint = Spy::start().await;
    let elsewhere = Spy::start().await;
    let introspect = endpoint.url("/introspect");
    let own = start_static(crate::support::ISSUER, post_secret().endpoint(&introspect)).await;
    let following = start_static(
        crate::support::ISSUER,
        post_secret()
            .endpoint(&introspect)
            .http_client(crate::support::client()),
    )
    .await;
    let mut tokens = Vec::new();
    for status in [
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
    ] {
        endpoint.redirect(Some((status, elsewhere.url(""))));
        for (client, server) in [("own", &own), ("following", &following)] {
            let before = elsewhere.seen().len();
            let token = fresh(&format!("{client}-{}", status.as_u16()));
            let answer = server.bearer(&token).await;
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{client} client, {status}: {answer:?}"
            );
            answer.assert_unavailable(RETRY_AFTER);
            if client == "own" {
                assert_eq!(elsewhere.seen().len(), before, "{status}: followed");
            }
            tokens.push(token);
        }
    }
    // The crate's client never reached the other server, and the application's client
    // reached it only with a body-less GET (301 to 303 turn a POST into one; a 307 or
    // 308 cannot re-send a body that cannot be replayed).
    let seen = elsewhere.seen();
    assert!(
        seen.iter()
            .all(|s| s.method == http::Method::GET && s.body.is_empty()),
        "{seen:?}"
    );
    assert!(elsewhere.carrying(SECRET).is_empty(), "{seen:?}");
    for token in &tokens {
        assert!(elsewhere.carrying(token).is_empty(), "{token}: {seen:?}");
    }
    assert!(seen.iter().all(|s| s.authorization.is_none()), "{seen:?}");

    // Without the redirect, the same layers call and accept; the POST carries its length.
    endpoint.redirect(None);
    for server in [&own, &following] {
        let answer = server.bearer(&fresh("direct")).await;
        answer.assert_ok();
        assert_eq!(answer.body, "mallory");
    }
    let posts = endpoint.carrying(SECRET);
    let direct: Vec<_> = posts.iter().filter(|s| s.body.contains("direct")).collect();
    assert_eq!(direct.len(), 2, "{posts:?}");
    assert!(
        direct
            .iter()
            .all(|s| s.content_length.as_deref() == Some(s.body.len().to_string().as_str())),
        "{direct:?}"
    );
}

/// `jwt_auth_introspection_refused_total{reason}` as recorded so far; 0 when never
/// counted.
fn refused_over_budget(snapshotter: &Snapshotter, reason: &str) -> u64 {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| {
            let key = key.key();
            let named = key.name() == "jwt_auth_introspection_refused_total"
                && key
                    .labels()
                    .any(|label| label.key() == "reason" && label.value() == reason);
            match value {
                DebugValue::Counter(count) if named => Some(count),
                _ => None,
            }
        })
        .unwrap_or(0)
}

/// `n` distinct opaque strings such as a client makes up, 8 to 14 bytes long: none has
/// the length of the MockIssuer's tokens (43).
fn junk(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("j{:x}{}", i, "z".repeat(i % 7 + 5)))
        .collect()
}

/// Sends every token at once, each in its own task, by one client.
fn flood(server: &Server, tokens: &[String]) -> Vec<tokio::task::JoinHandle<Answer>> {
    tokens
        .iter()
        .map(|token| {
            let request = server.client.get(server.url("/")).bearer_auth(token);
            tokio::spawn(async move {
                crate::support::answer(request.send().await.expect("request")).await
            })
        })
        .collect()
}

#[tokio::test]
async fn junk_opaque_strings_fill_the_in_flight_cap_so_a_genuine_token_gets_503_and_it_is_counted()
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let issuer = issuer().await;
    issuer.set_fault(Endpoint::Introspection, Fault::Hold);
    let server = start(&issuer, basic().timeout(Duration::from_secs(30))).await;
    // One client, 64 made-up strings at once: the default cap on calls in flight.
    let flood = flood(&server, &junk(64));
    // Sixty-four connections set up at once take longer than one wait usually allows.
    eventually_within(
        Duration::from_secs(10),
        "64 calls held at the endpoint",
        async || calls(&issuer) == 64,
    )
    .await;
    let genuine = issuer.opaque(&issuer.token().subject("olga"));
    server
        .bearer(&genuine)
        .await
        .assert_unavailable(RETRY_AFTER);
    assert_eq!(calls(&issuer), 64, "the genuine token got no call");
    assert_eq!(refused_over_budget(&snapshotter, "in_flight"), 1);
    issuer.clear_faults();
    issuer.release();
    for task in flood {
        task.await
            .expect("task")
            .assert_invalid_token("token not active");
    }
    // It was a genuine token: with the junk gone, it passes.
    let answer = server.bearer(&genuine).await;
    answer.assert_ok();
    assert_eq!(answer.body, "olga");
}

#[tokio::test]
async fn junk_opaque_strings_spend_the_rate_limit_so_a_genuine_token_gets_503_and_it_is_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let issuer = issuer().await;
    // One call a second: the junk below takes it, and refills take a full second.
    let server = start(&issuer, basic().rate_limit(1)).await;
    server
        .bearer(&junk(1)[0])
        .await
        .assert_invalid_token("token not active");
    let genuine = issuer.opaque(&issuer.token().subject("olga"));
    server
        .bearer(&genuine)
        .await
        .assert_unavailable(RETRY_AFTER);
    assert_eq!(calls(&issuer), 1, "the genuine token got no call");
    assert_eq!(refused_over_budget(&snapshotter, "rate_limit"), 1);
    assert_eq!(refused_over_budget(&snapshotter, "in_flight"), 0);
}

#[tokio::test]
async fn the_shape_filter_refuses_junk_before_any_call_and_keeps_the_budget_for_genuine_tokens() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let issuer = issuer().await;
    let genuine = issuer.opaque(&issuer.token().subject("olga"));
    let shape = genuine.len();
    // Held: any call the junk made would never end, and the wait below would fail.
    issuer.set_fault(Endpoint::Introspection, Fault::Hold);
    let server = start(
        &issuer,
        basic()
            .timeout(Duration::from_secs(30))
            .rate_limit(1)
            .opaque_token_length(shape..=shape),
    )
    .await;
    for task in flood(&server, &junk(200)) {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("refused at once, never held at the endpoint")
            .expect("task")
            .assert_invalid_token("malformed token");
    }
    assert_eq!(calls(&issuer), 0);
    assert_eq!(refused_over_budget(&snapshotter, "in_flight"), 0);
    assert_eq!(refused_over_budget(&snapshotter, "rate_limit"), 0);
    // The one call a second and every slot in flight are still there for it.
    issuer.clear_faults();
    let answer = server.bearer(&genuine).await;
    answer.assert_ok();
    assert_eq!(answer.body, "olga");
    assert_eq!(calls(&issuer), 1);
}

#[tokio::test]
async fn an_opaque_token_prefix_admits_only_tokens_of_that_shape_and_never_holds_back_a_jwt() {
    let endpoint = Spy::start().await;
    let hydra = || {
        post_secret()
            .endpoint(endpoint.url("/introspect"))
            .opaque_token_prefix("ory_at_")
            .opaque_token_prefix("legacy_")
            .opaque_token_length(40..=200)
    };
    let server = start_static(crate::support::ISSUER, hydra()).await;
    let part = "b".repeat(43);
    for junk in [
        format!("random{part}"),
        format!("ory_rt_{part}.{part}"),
        "ory_at_short".to_owned(),
        format!("ory_at_{}", "x".repeat(300)),
    ] {
        server
            .bearer(&junk)
            .await
            .assert_invalid_token("malformed token");
    }
    assert!(endpoint.seen().is_empty(), "{:?}", endpoint.seen());
    for genuine in [format!("ory_at_{part}.{part}"), format!("legacy_{part}")] {
        let answer = server.bearer(&genuine).await;
        answer.assert_ok();
        assert_eq!(answer.body, "mallory");
    }
    assert_eq!(endpoint.seen().len(), 2);
    // A JWT sent to introspection too is the server's to judge, whatever its shape.
    let always = start_static(crate::support::ISSUER, hydra().always_introspect(true)).await;
    let jwt = crate::support::token(crate::support::ec_key())
        .subject("jo")
        .sign();
    always.bearer(&jwt).await.assert_ok();
    assert_eq!(endpoint.seen().len(), 3);
}

#[test]
fn a_shape_filter_no_token_can_pass_is_refused_at_build() {
    use std::ops::Bound;
    let build = |introspection: Introspection| {
        JwtAuthConfig::builder()
            .issuer(crate::support::ISSUER)
            .audience(crate::support::AUDIENCE)
            .key_set(crate::support::ec_key().key_set())
            .introspection(introspection.endpoint("https://idp.example.com/introspect"))
            .build()
    };
    let cases = [
        (basic().opaque_token_prefix(""), ConfigErrorKind::EmptyValue),
        (
            basic().opaque_token_length(10..10),
            ConfigErrorKind::InvalidValue,
        ),
        (
            basic().opaque_token_length((Bound::Included(20), Bound::Included(10))),
            ConfigErrorKind::InvalidValue,
        ),
        (
            basic()
                .opaque_token_prefix("ory_at_")
                .opaque_token_length(..=6),
            ConfigErrorKind::InvalidValue,
        ),
    ];
    for (introspection, kind) in cases {
        let filter = format!("{introspection:?}");
        let error = build(introspection).expect_err("no token could pass");
        assert_eq!(error.kind(), kind, "{filter}: {error}");
        assert!(error.to_string().contains("opaque_token_"), "{error}");
    }
    build(
        basic()
            .opaque_token_prefix("ory_at_")
            .opaque_token_length(..=7),
    )
    .expect("the bare prefix fits");
}

#[tokio::test]
async fn the_shape_filter_is_read_from_a_settings_file() {
    use tower_jwt_auth::settings::{Format, Settings};
    let endpoint = Spy::start().await;
    let settings = |min: usize, max: usize| {
        serde_json::json!({
            "issuers": [{
                "issuer": crate::support::ISSUER,
                "audiences": [crate::support::AUDIENCE],
                "jwks": tower_jwt_auth::testing::jwks([crate::support::ec_key()]).to_string(),
            }],
            "introspection": {
                "client_id": "api",
                "client_secret": SECRET,
                "auth": "client_secret_post",
                "endpoint": endpoint.url("/introspect"),
                "opaque_token_prefixes": ["ory_at_"],
                "opaque_token_min_length": min,
                "opaque_token_max_length": max,
            },
        })
        .to_string()
    };
    let config = Settings::parse(&settings(40, 200), Format::Json)
        .expect("parses")
        .builder()
        .expect("applies")
        .build()
        .expect("builds");
    let server = Server::start_router(app(JwtAuthLayer::new(config))).await;
    let part = "c".repeat(43);
    for junk in [format!("other_{part}"), "ory_at_short".to_owned()] {
        server
            .bearer(&junk)
            .await
            .assert_invalid_token("malformed token");
    }
    assert!(endpoint.seen().is_empty(), "{:?}", endpoint.seen());
    server.bearer(&format!("ory_at_{part}")).await.assert_ok();
    assert_eq!(endpoint.seen().len(), 1);
    let error = Settings::parse(&settings(200, 40), Format::Json)
        .expect("parses")
        .builder()
        .and_then(tower_jwt_auth::JwtAuthConfigBuilder::build)
        .expect_err("no length fits");
    assert!(
        error
            .to_string()
            .contains("introspection.opaque_token_min_length"),
        "{error}"
    );
}
