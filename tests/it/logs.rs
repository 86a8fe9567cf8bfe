//! Logs never contain a token, a signature or a secret: every rejection path, and key
//! fetch failures, run with a subscriber that records everything at TRACE level.

use std::time::Duration;

use crate::support::{
    AUDIENCE, ISSUER, Server, capture, client, eventually, eventually_within, refusing_address,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use tower_jwt_auth::jwks::RemoteOptions;
use tower_jwt_auth::telemetry::SubjectLogging;
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};
use tracing_subscriber::fmt::format::FmtSpan;

#[tokio::test]
async fn rejections_and_fetch_failures_never_log_tokens_or_secrets() {
    let (captured, _guard) = capture(FmtSpan::NONE);

    // Static HMAC keys: every rejection kind.
    let secret = b"a-secret-that-must-never-appear-in-any-log-line-0123".to_vec();
    let key = TestKey::hmac_secret(secret.clone()).with_kid("k");
    let cfg = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_set(key.key_set())
        .build()
        .expect("config");
    tracing::debug!(config = ?cfg, "configured");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let base = || TokenBuilder::new(&key).issuer(ISSUER).audience(AUDIENCE);
    let tokens = vec![
        base().sign(),
        base().expired().sign(),
        base().wrong_audience().sign(),
        base().tampered().sign(),
        base().alg_none().sign(),
        base().unknown_kid().sign(),
        base().signed_by_foreign_key().sign(),
        base().typ("dpop+jwt").sign(),
    ];
    for token in &tokens {
        let _ = server.bearer(token).await;
        let _ = server
            .get("/", &[("authorization", &format!("Bearer {token} junk"))])
            .await;
    }

    // Remote keys with a failing issuer: fetch errors are logged, key material is not.
    let issuer = MockIssuer::start().await;
    issuer.set_fault(Endpoint::Jwks, Fault::Garbage);
    let remote = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .remote_options(RemoteOptions::new().http_client(client()))
        .build()
        .expect("config");
    let remote_server = Server::start(JwtAuthLayer::new(remote.clone())).await;
    let remote_token = issuer.token().sign();
    let _ = remote_server.bearer(&remote_token).await;
    issuer.clear_faults();
    assert!(remote.wait_until_ready(Duration::from_secs(5)).await);
    let _ = remote_server.bearer(&remote_token).await;

    let logs = captured.text();
    assert!(
        logs.contains("request rejected"),
        "the capture works: {logs}"
    );
    assert!(
        logs.contains("fetching signing keys failed"),
        "fetch errors are logged"
    );
    let mut secrets: Vec<String> = vec![
        String::from_utf8(secret.clone()).expect("ascii"),
        STANDARD.encode(&secret),
        URL_SAFE_NO_PAD.encode(&secret),
    ];
    for token in tokens.iter().chain([&remote_token]) {
        secrets.push(token.clone());
        for segment in token.split('.').filter(|s| s.len() > 8) {
            secrets.push(segment.to_owned());
        }
    }
    let rsa_n = issuer.active_key().public_jwk()["n"]
        .as_str()
        .expect("n")
        .to_owned();
    secrets.push(rsa_n[..40].to_owned());
    for secret in secrets {
        assert!(!logs.contains(&secret), "logged: {secret}");
    }
}

#[tokio::test]
async fn a_kid_with_line_breaks_cannot_forge_a_log_line() {
    let (captured, _guard) = capture(FmtSpan::NONE);

    let forged = "k\r\n2026-01-01T00:00:00Z  INFO forged: admin logged in";
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    // A published JWK that is skipped is logged with its kid too.
    let mut document = tower_jwt_auth::testing::jwks(&issuer.keys());
    document["keys"]
        .as_array_mut()
        .expect("keys")
        .push(serde_json::json!({"kty": "EC", "crv": "P-256", "kid": forged}));
    issuer.set_jwks_document(Some(document));
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .remote_options(RemoteOptions::new().http_client(client()))
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let token = issuer.token().kid(forged).sign();
    let _ = server.bearer(&token).await;
    let long_kid = "x".repeat(5000);
    let _ = server
        .bearer(&issuer.token().kid(long_kid.clone()).sign())
        .await;

    let logs = captured.text();
    assert!(logs.contains("unknown kid"), "the kid was logged: {logs}");
    assert!(logs.contains("skipping JWK"), "the JWK was logged: {logs}");
    for line in logs.lines() {
        assert!(!line.starts_with("2026-01-01"), "forged line: {line}");
    }
    assert!(!logs.contains(&long_kid[..100]), "kids are truncated");
}

#[tokio::test]
async fn a_failing_first_load_is_explained_in_words() {
    let (captured, _guard) = capture(FmtSpan::NONE);
    // A loopback port nothing listens on: the connection is refused.
    let (_held, addr) = refusing_address();
    let options = RemoteOptions::new()
        .http_client(client())
        .backoff(Duration::from_millis(20), Duration::from_millis(50));
    let url = format!("http://{addr}/jwks.json");
    let remote = tower_jwt_auth::jwks::RemoteJwks::from_jwks_url(&url, options).expect("remote");
    let health = remote.health();
    let error = eventually("a failed fetch", async || match health.status() {
        tower_jwt_auth::jwks::KeysStatus::NeverLoaded { last_error } => last_error,
        _ => None,
    })
    .await;
    assert!(error.contains("connection refused"), "{error}");
    let logs = captured.text();
    let warning = logs
        .lines()
        .find(|line| line.contains("WARN") && line.contains("fetching signing keys failed"))
        .unwrap_or_else(|| panic!("no warning in {logs}"));
    assert!(warning.contains("connection refused"), "{warning}");
    assert!(warning.contains("no keys have loaded yet"), "{warning}");
    assert!(!logs.contains("last good keys"), "{logs}");
}

#[tokio::test]
async fn the_span_names_issuer_kid_client_and_hashed_subject_never_the_token() {
    let (captured, _guard) = capture(FmtSpan::CLOSE);
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let cfg = crate::support::issuer_config(&issuer)
        .subject_logging(SubjectLogging::Hashed)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let token = issuer
        .token()
        .subject("alice@example.com")
        .claim("client_id", "billing-app")
        .sign();
    server.bearer(&token).await.assert_ok();
    let logs = captured.text();
    let line = logs
        .lines()
        .find(|l| l.contains("jwt_auth") && l.contains("outcome=\"ok\""))
        .unwrap_or_else(|| panic!("no span in {logs}"));
    assert!(
        line.contains(&format!("issuer=\"{}\"", issuer.issuer())),
        "{line}"
    );
    assert!(
        line.contains(&format!("kid=\"{}\"", issuer.active_key().kid())),
        "{line}"
    );
    assert!(line.contains("client_id=\"billing-app\""), "{line}");
    assert!(line.contains("subject=\""), "{line}");
    assert!(!logs.contains("alice@example.com"), "the subject is hashed");
    for segment in token.split('.') {
        assert!(!logs.contains(segment), "no token segment in the logs");
    }
}

/// Fail-open mode: requests pass while Redis is down; the outage is logged once at WARN
/// (not per request), its recovery once at INFO, and neither names the Redis password.
#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_store_outage_is_logged_once_and_its_end_too() {
    use crate::support::redis::RedisServer;
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore, StoreFailure};

    let (captured, _guard) = capture(FmtSpan::NONE);
    let mut redis = RedisServer::start().await;
    // A password in the URL: it must never be logged.
    let password = "hunter2-redis-password";
    redis.command(&["CONFIG", "SET", "requirepass", password]);
    let url = redis
        .url()
        .replace("redis://", &format!("redis://:{password}@"));
    let connection = RedisConnection::open(&url).expect("url");
    tracing::debug!(?connection, "configured");
    let key = TestKey::ec_p256().with_kid("k");
    let cfg = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_set(key.key_set())
        .single_use_tokens(true)
        .replay_store(RedisReplayStore::new(connection))
        .store_failure(StoreFailure::Open)
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let mint = || {
        TokenBuilder::new(&key)
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .sign()
    };
    server.bearer(&mint()).await.assert_ok();
    redis.kill();
    for _ in 0..5 {
        server.bearer(&mint()).await.assert_ok();
    }
    redis.restart().await;
    redis.command(&["CONFIG", "SET", "requirepass", password]);
    // Reconnecting to a restarted server can take longer than one wait usually allows.
    eventually_within(
        Duration::from_secs(10),
        "the end of the outage logged",
        async || {
            if captured.text().contains("answers again") {
                return true;
            }
            server.bearer(&mint()).await.assert_ok();
            false
        },
    )
    .await;
    let logs = captured.text();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("state store"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(warnings[0].contains("fail-open"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}

#[tokio::test]
async fn api_keys_never_reach_logs_metrics_or_the_audit_hook_and_their_id_is_the_subject() {
    use axum::Router;
    use axum::routing::get;
    use std::sync::{Arc, Mutex};
    use tower_jwt_auth::RequirePermission;
    use tower_jwt_auth::api_key::{ApiKey, NewApiKey};
    const PREFIX: &str = "sk_test_";
    use metrics_util::debugging::DebuggingRecorder;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (captured, _guard) = capture(FmtSpan::FULL);

    let key = NewApiKey::generate(PREFIX);
    let unknown = NewApiKey::generate(PREFIX);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let cfg = JwtAuthConfig::builder()
        .api_key_prefix(PREFIX)
        .api_key_header("X-API-Key")
        .api_key(ApiKey::new("partner-1", key.digest()).permissions(["read"]))
        .subject_logging(tower_jwt_auth::telemetry::SubjectLogging::Raw)
        .forward_claim("sub", "x-caller")
        .on_outcome(move |event| {
            let line = format!(
                "{} {:?} {:?} {:?}",
                event.outcome, event.subject, event.issuer, event.credential
            );
            seen.lock().expect("events").push(line);
        })
        .build()
        .expect("config");
    async fn caller(headers: axum::http::HeaderMap) -> String {
        headers
            .get("x-caller")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
    let server = Server::start_router(
        Router::new()
            .route("/", get(caller))
            .route(
                "/write",
                get(caller).route_layer(RequirePermission("write")),
            )
            .layer(JwtAuthLayer::new(cfg)),
    )
    .await;
    let ok = server.bearer(key.key()).await;
    ok.assert_ok();
    assert_eq!(ok.body, "partner-1");
    server
        .get("/", &[("x-api-key", key.key())])
        .await
        .assert_ok();
    assert_eq!(server.bearer_at("/write", key.key()).await.status, 403);
    assert_eq!(server.bearer(unknown.key()).await.status, 401);

    let events = events.lock().expect("events").clone();
    assert_eq!(
        events[0], "ok Some(\"partner-1\") None Some(ApiKey)",
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e.starts_with("unknown_api_key None")),
        "{events:?}"
    );
    let logs = captured.text();
    assert!(
        logs.contains("partner-1"),
        "the subject is logged raw: {logs}"
    );
    let mut metrics = String::new();
    for (composite, _, _, value) in snapshotter.snapshot().into_vec() {
        metrics.push_str(&format!("{composite:?} {value:?}\n"));
    }
    assert!(metrics.contains("unknown_api_key"), "{metrics}");
    for secret in [key.key(), unknown.key()] {
        let random = secret.trim_start_matches(PREFIX);
        assert!(!logs.contains(random), "a key in the logs: {logs}");
        assert!(!metrics.contains(random), "a key in the metrics: {metrics}");
        assert!(!events.iter().any(|e| e.contains(random)), "{events:?}");
    }
}
