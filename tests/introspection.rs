//! Opaque tokens through RFC 7662 introspection, over real HTTP against the MockIssuer:
//! acceptance with permissions, every refusal, each client authentication method, the
//! caches and the shared call, every fault, and JWTs that never reach the endpoint.

mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use support::{Answer, Server, issuer_config};
use tower_jwt_auth::introspection::{ClientAuth, Introspection, SigningKey};
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer, TestKey};
use tower_jwt_auth::{Algorithm, Claims, JwtAuthLayer, RequirePermission, StandardClaims, StepUp};

async fn whoami(Claims(claims): Claims<StandardClaims>) -> String {
    claims.sub.unwrap_or_default()
}

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
    let config = issuer_config(issuer)
        .introspection(introspection)
        .build()
        .expect("config");
    Server::start_router(app(JwtAuthLayer::new(config))).await
}

fn calls(issuer: &MockIssuer) -> usize {
    issuer.requests(Endpoint::Introspection)
}

fn assert_unavailable(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert_eq!(answer.retry_after.as_deref(), Some("2"), "{answer:?}");
}

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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
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
    assert_unavailable(&server.bearer(&opaque).await);
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
    let server = start(&issuer, basic().cache_ttl(Duration::from_millis(300))).await;
    let opaque = issuer.opaque(&issuer.token());
    server.bearer(&opaque).await.assert_ok();
    issuer.revoke(&opaque);
    // Still cached: the TTL is the revocation delay.
    server.bearer(&opaque).await.assert_ok();
    tokio::time::sleep(Duration::from_millis(400)).await;
    server
        .bearer(&opaque)
        .await
        .assert_invalid_token("token not active");
}

#[tokio::test]
async fn refusals_are_cached_briefly() {
    let issuer = issuer().await;
    let server = start(&issuer, basic().negative_ttl(Duration::from_millis(300))).await;
    for _ in 0..3 {
        server
            .bearer("no-such-token")
            .await
            .assert_invalid_token("token not active");
    }
    assert_eq!(calls(&issuer), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    server
        .bearer("no-such-token")
        .await
        .assert_invalid_token("token not active");
    assert_eq!(calls(&issuer), 2);
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
    assert_unavailable(&wrong.bearer(&opaque).await);
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
        assert_unavailable(&server.bearer(&opaque).await);
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
            assert_unavailable(&answer);
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
            tokio::spawn(
                async move { support::answer(request.send().await.expect("request")).await },
            )
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

#[tokio::test]
async fn opaque_tokens_from_the_token_endpoint_work_and_several_issuers_are_refused() {
    let issuer = issuer().await;
    issuer.add_client("svc", "pw", ["read"]);
    issuer.issue_opaque_tokens(true);
    let server = start(&issuer, basic()).await;
    let access = support::client_credentials(&issuer, "svc", "pw").await;
    assert!(!access.contains('.'), "opaque: {access}");
    server.bearer_at("/read", &access).await.assert_ok();

    let other = MockIssuer::start().await;
    let err = issuer_config(&issuer)
        .trusted_issuer(tower_jwt_auth::TrustedIssuer::new(other.issuer()))
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
        .key_set(support::ec_key().key_set())
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
    assert_unavailable(&server.bearer(&other).await);
    // The same token with plain answers passes: the signature was the only problem.
    let plain_server = start(&issuer, basic()).await;
    plain_server.bearer(&other).await.assert_ok();
}

#[tokio::test]
async fn a_single_use_opaque_token_without_exp_is_kept_for_the_maximum_lifetime_on_redis() {
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore};
    let redis = support::redis::RedisServer::start();
    let issuer = issuer().await;
    let connection = RedisConnection::open(&redis.url())
        .expect("url")
        .prefix("t:");
    let config = issuer_config(&issuer)
        .introspection(basic())
        .single_use_tokens(true)
        .max_token_lifetime(Duration::from_secs(600))
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
