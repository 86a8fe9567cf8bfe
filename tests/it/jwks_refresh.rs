//! Remote keys over real HTTP against the crate's MockIssuer: discovery, rotation,
//! refresh, outages, single-flight refetch, lifecycle, several issuers and tenants.
//! Intervals are milliseconds; waits poll with a deadline of a few seconds.
//!
//! The refresher schedules its fetches on tokio timers, not on the configured clock: the
//! waits here and the few fixed sleeps that prove nothing happens are real time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{Server, client, eventually, eventually_within};
use http::StatusCode;
use serde_json::{Value, json};
use tower_jwt_auth::jwks::{JwksHealth, KeyStore, KeysStatus, RemoteJwks, RemoteOptions};
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer, TestKey, jwks};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer};

/// Short intervals for tests.
fn fast() -> RemoteOptions {
    RemoteOptions::new()
        .http_client(client())
        .refresh_interval(Duration::from_millis(150))
        .max_age_bounds(Duration::from_millis(50), Duration::from_secs(3600))
        .fetch_timeout(Duration::from_secs(2))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
}

fn builder(issuer: &MockIssuer, options: RemoteOptions) -> JwtAuthConfigBuilder {
    JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .remote_options(options)
}

async fn server(issuer: &MockIssuer, options: RemoteOptions) -> Server {
    let cfg = builder(issuer, options).build().expect("config");
    Server::start(JwtAuthLayer::new(cfg)).await
}

/// The error of a store that never loaded.
fn first_load_error(health: &JwksHealth) -> String {
    match health.status() {
        KeysStatus::NeverLoaded {
            last_error: Some(error),
        } => error,
        other => panic!("a failed first load expected, got {other:?}"),
    }
}

#[tokio::test]
async fn first_request_waits_for_the_first_load() {
    let issuer = MockIssuer::start().await;
    let server = server(&issuer, fast()).await;
    let answer = server.bearer(&issuer.token().sign()).await;
    answer.assert_ok();
    assert_eq!(issuer.requests(Endpoint::Discovery), 1);
}

#[tokio::test]
async fn a_new_kid_after_rotation_is_accepted_on_the_first_request() {
    let issuer = MockIssuer::start().await;
    let server = server(&issuer, fast().refresh_interval(Duration::from_secs(3600))).await;
    server.bearer(&issuer.token().sign()).await.assert_ok();
    let fetches = issuer.requests(Endpoint::Jwks);
    issuer.rotate();
    let started = std::time::Instant::now();
    server.bearer(&issuer.token().sign()).await.assert_ok();
    println!(
        "first request with the rotated key: {:?} (one refetch included)",
        started.elapsed()
    );
    assert_eq!(issuer.requests(Endpoint::Jwks), fetches + 1, "one refetch");
}

#[tokio::test]
async fn a_removed_key_is_refused_after_the_next_refresh() {
    let issuer = MockIssuer::start().await;
    let server = server(&issuer, fast()).await;
    let old = issuer.token().sign();
    server.bearer(&old).await.assert_ok();
    let old_kid = issuer.active_key().kid().to_owned();
    issuer.rotate();
    issuer.remove_key(&old_kid);
    let seen = issuer.requests(Endpoint::Jwks);
    eventually("a scheduled refresh", async || {
        issuer.requests(Endpoint::Jwks) > seen
    })
    .await;
    // The refresh may still be in flight when the count moves: allow it to land.
    let refused = eventually("the old key refused", async || {
        let answer = server.bearer(&old).await;
        (answer.status == StatusCode::UNAUTHORIZED).then_some(answer)
    })
    .await;
    refused.assert_invalid_token("unknown signing key");
    server.bearer(&issuer.token().sign()).await.assert_ok();
}

#[tokio::test]
async fn a_thousand_random_kids_cause_at_most_two_jwks_fetches() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let server =
        Arc::new(server(&issuer, fast().refresh_interval(Duration::from_secs(3600))).await);
    server.bearer(&issuer.token().sign()).await.assert_ok();
    let tokens: Vec<String> = (0..1000)
        .map(|_| issuer.token().unknown_kid().sign())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in tokens.chunks(50) {
        let server = Arc::clone(&server);
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for token in chunk {
                server
                    .bearer(&token)
                    .await
                    .assert_invalid_token("unknown signing key");
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task");
    }
    let fetches = issuer.requests(Endpoint::Jwks);
    println!("JWKS fetches for 1000 requests with random kids: {fetches} (first load included)");
    assert!(fetches <= 2, "{fetches} JWKS fetches for 1000 random kids");
}

#[tokio::test]
async fn idp_down_at_startup_gives_503_with_retry_after_then_recovers() {
    let issuer = MockIssuer::start().await;
    issuer.set_fault(Endpoint::Discovery, Fault::Down);
    let server = server(&issuer, fast()).await;
    let token = issuer.token().sign();
    let answer = server.bearer(&token).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert!(answer.challenge.is_none());
    let retry: u64 = answer
        .retry_after
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    // Without a token the answer is still 401.
    server.get("/", &[]).await.assert_no_token();
    issuer.clear_faults();
    eventually("the token accepted once the issuer is back", async || {
        server.bearer(&token).await.status == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn idp_down_later_keeps_the_old_keys_working() {
    let issuer = MockIssuer::start().await;
    let cfg = builder(&issuer, fast()).build().expect("config");
    let health = cfg.key_health().remove(0);
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let token = issuer.token().sign();
    server.bearer(&token).await.assert_ok();
    assert!(matches!(health.status(), KeysStatus::Loaded { .. }));
    for fault in [Fault::Down, Fault::Garbage, Fault::Huge] {
        issuer.set_fault(Endpoint::Jwks, fault);
        let seen = issuer.requests(Endpoint::Jwks);
        eventually("a failed refresh", async || {
            issuer.requests(Endpoint::Jwks) > seen
                && matches!(health.status(), KeysStatus::Stale { .. })
        })
        .await;
        server.bearer(&token).await.assert_ok();
        let KeysStatus::Stale { last_error, .. } = health.status() else {
            panic!("stale expected");
        };
        assert!(!last_error.is_empty());
        issuer.clear_faults();
        eventually("recovery", async || {
            matches!(health.status(), KeysStatus::Loaded { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn a_slow_jwks_endpoint_does_not_hold_up_known_kids() {
    let issuer = MockIssuer::start().await;
    let server = server(&issuer, fast().fetch_timeout(Duration::from_secs(30))).await;
    let token = issuer.token().sign();
    server.bearer(&token).await.assert_ok();
    issuer.set_fault(Endpoint::Jwks, Fault::Hold);
    let seen = issuer.requests(Endpoint::Jwks);
    eventually("a refresh held open", async || {
        issuer.requests(Endpoint::Jwks) > seen
    })
    .await;
    for _ in 0..10 {
        server.bearer(&token).await.assert_ok();
    }
    issuer.clear_faults();
    issuer.release();
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused_and_reported() {
    let issuer = MockIssuer::start().await;
    issuer.set_discovery_issuer(Some("https://evil.example.com/".into()));
    let cfg = builder(&issuer, fast()).build().expect("config");
    let health = cfg.key_health().remove(0);
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let answer = server.bearer(&issuer.token().sign()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let last_error = first_load_error(&health);
    assert!(last_error.contains("evil.example.com"), "{last_error}");
    assert_eq!(
        issuer.requests(Endpoint::Jwks),
        0,
        "no JWKS fetch from a foreign issuer"
    );
}

#[tokio::test]
async fn one_malformed_jwk_is_skipped_and_the_rest_load() {
    let issuer = MockIssuer::start().await;
    let mut document = jwks(&issuer.keys());
    let keys = document["keys"].as_array_mut().expect("keys");
    keys.insert(
        0,
        json!({"kty": "RSA", "kid": "broken", "n": "%%%", "e": "AQAB"}),
    );
    keys.push(json!({"kty": "EC", "crv": "P-256", "kid": "half"}));
    issuer.set_jwks_document(Some(document));
    let server = server(&issuer, fast()).await;
    server.bearer(&issuer.token().sign()).await.assert_ok();
}

#[tokio::test]
async fn not_modified_keeps_the_set_and_etag_is_sent() {
    let issuer = MockIssuer::start().await;
    issuer.set_etag(Some("\"v1\"".into()));
    let server = server(&issuer, fast()).await;
    let token = issuer.token().sign();
    server.bearer(&token).await.assert_ok();
    eventually("two conditional refreshes", async || {
        issuer.requests(Endpoint::Jwks) >= 3
    })
    .await;
    let headers = issuer
        .last_request_headers(Endpoint::Jwks)
        .expect("headers");
    assert_eq!(headers["if-none-match"], "\"v1\"");
    server.bearer(&token).await.assert_ok();
}

#[tokio::test]
async fn cache_control_max_age_sets_the_interval_within_bounds() {
    // max-age=0 is raised to the lower bound (50 ms): refreshes come quickly even though
    // the interval is an hour.
    let issuer = MockIssuer::start().await;
    issuer.set_cache_control(Some("max-age=0".into()));
    let options = fast().refresh_interval(Duration::from_secs(3600));
    let server_short = server(&issuer, options).await;
    server_short
        .bearer(&issuer.token().sign())
        .await
        .assert_ok();
    eventually("refreshes at the lower bound", async || {
        issuer.requests(Endpoint::Jwks) >= 5
    })
    .await;

    // max-age=3600 lengthens a 20 ms interval: no refresh follows the first load soon.
    let issuer = MockIssuer::start().await;
    issuer.set_cache_control(Some("public, max-age=3600".into()));
    let options = fast()
        .refresh_interval(Duration::from_millis(20))
        .max_age_bounds(Duration::from_millis(10), Duration::from_secs(7200));
    let server_long = server(&issuer, options).await;
    server_long.bearer(&issuer.token().sign()).await.assert_ok();
    // Real time, as the refresher's timers count it: fifteen of the 20 ms intervals that
    // max-age overrode, each one a fetch had the header been ignored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(issuer.requests(Endpoint::Jwks), 1);
}

#[tokio::test]
async fn a_custom_http_client_is_the_one_that_reaches_the_issuer() {
    let issuer = MockIssuer::start().await;
    let mut headers = http::HeaderMap::new();
    headers.insert("x-probe", http::HeaderValue::from_static("custom-client"));
    let custom = reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .expect("client");
    let server = server(&issuer, fast().http_client(custom)).await;
    server.bearer(&issuer.token().sign()).await.assert_ok();
    for endpoint in [Endpoint::Discovery, Endpoint::Jwks] {
        let headers = issuer.last_request_headers(endpoint).expect("headers");
        assert_eq!(headers["x-probe"], "custom-client", "{endpoint:?}");
    }
}

#[tokio::test]
async fn the_refresher_stops_after_the_last_layer_clone_drops() {
    let issuer = MockIssuer::start().await;
    let cfg = builder(&issuer, fast().refresh_interval(Duration::from_millis(30)))
        .build()
        .expect("config");
    let health = cfg.key_health().remove(0);
    let layer = JwtAuthLayer::new(cfg);
    let clone = layer.clone();
    assert!(
        layer
            .verifier()
            .config()
            .wait_until_ready(Duration::from_secs(5))
            .await
    );
    assert!(health.is_refreshing());
    drop(layer);
    // Real time for the refresher's timer: three 30 ms intervals in which it would stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(health.is_refreshing(), "a clone is still alive");
    drop(clone);
    eventually("refresher stopped", async || !health.is_refreshing()).await;
    let fetches = issuer.requests(Endpoint::Jwks);
    // Six intervals of real time: a refresher still scheduling would have fetched.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        issuer.requests(Endpoint::Jwks),
        fetches,
        "no fetch after the stop"
    );
}

#[tokio::test]
async fn two_issuers_in_one_layer_route_by_iss() {
    let a = MockIssuer::start().await;
    let b = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let cfg = JwtAuthConfig::builder()
        .issuer(a.issuer())
        .issuer(b.issuer())
        .audience(a.audience())
        .remote_options(fast())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    server.bearer(&a.token().sign()).await.assert_ok();
    server.bearer(&b.token().sign()).await.assert_ok();
    // A's key claiming to be B: B's store does not know the key.
    let forged = a.token().issuer(b.issuer()).sign();
    server
        .bearer(&forged)
        .await
        .assert_invalid_token("unknown signing key");
    // An issuer nobody trusts: refused before any key store is asked.
    let (da, db) = (
        a.requests(Endpoint::Discovery),
        b.requests(Endpoint::Discovery),
    );
    let (ja, jb) = (a.requests(Endpoint::Jwks), b.requests(Endpoint::Jwks));
    let stranger = a.token().issuer("http://127.0.0.1:9/").sign();
    server
        .bearer(&stranger)
        .await
        .assert_invalid_token("issuer not trusted");
    assert_eq!(
        (
            a.requests(Endpoint::Discovery),
            b.requests(Endpoint::Discovery)
        ),
        (da, db)
    );
    assert_eq!(
        (a.requests(Endpoint::Jwks), b.requests(Endpoint::Jwks)),
        (ja, jb)
    );
}

#[tokio::test]
async fn tenant_templates_accept_allowed_tenants_only_and_check_the_key_issuer() {
    let issuer = MockIssuer::builder()
        .issuer_path("/{tenantid}/v2.0")
        .start()
        .await;
    let template = issuer.issuer().to_owned();
    // Keys carry Entra's per-key issuer member.
    let mut document = jwks(&issuer.keys());
    for key in document["keys"].as_array_mut().expect("keys") {
        key["issuer"] = Value::from(template.clone());
    }
    issuer.set_jwks_document(Some(document));
    let cfg = JwtAuthConfig::builder()
        .issuer(template.clone())
        .tenants(["tenant-a"])
        .audience(issuer.audience())
        .remote_options(fast())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let for_tenant = |tenant: &str, tid: &str| {
        issuer
            .token()
            .issuer(template.replace("{tenantid}", tenant))
            .claim("tid", tid)
            .sign()
    };
    server
        .bearer(&for_tenant("tenant-a", "tenant-a"))
        .await
        .assert_ok();
    let jwks_fetches = issuer.requests(Endpoint::Jwks);
    server
        .bearer(&for_tenant("tenant-b", "tenant-b"))
        .await
        .assert_invalid_token("issuer not trusted");
    // The key's issuer member, completed with `tid`, must equal `iss`.
    server
        .bearer(&for_tenant("tenant-a", "tenant-b"))
        .await
        .assert_invalid_token("issuer not trusted");
    assert_eq!(
        issuer.requests(Endpoint::Jwks),
        jwks_fetches,
        "no fetch for refused tenants"
    );
}

// ---- real providers' documents through the real fetch path ------------------------

fn fixture(provider: &str, file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/idp")
        .join(provider)
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

#[tokio::test]
async fn every_provider_document_loads_through_discovery_with_the_usable_keys() {
    let expected = [
        ("apple", 3),
        ("auth0", 2),
        ("cognito", 2),
        ("entra", 7),
        ("gitlab", 2),
        ("google", 2),
        ("keycloak", 1),
        ("okta", 2),
        ("onelogin", 1),
        ("paypal", 14),
        ("yahoo", 1),
    ];
    for (provider, usable) in expected {
        let issuer = MockIssuer::start().await;
        let mut discovery = fixture(provider, "openid-configuration.json");
        // Point the documents at loopback: nothing may reach the real provider.
        let path = if provider == "entra" {
            "/{tenantid}/v2.0"
        } else {
            "/"
        };
        let local_issuer = format!("{}{path}", issuer.base_url());
        discovery["issuer"] = Value::from(local_issuer.clone());
        discovery["jwks_uri"] = Value::from(issuer.jwks_url());
        issuer.set_discovery_document(Some(discovery));
        issuer.set_jwks_document(Some(fixture(provider, "jwks.json")));
        let remote = RemoteJwks::from_issuer(&local_issuer, fast()).expect("remote");
        assert!(
            remote.wait_until_ready(Duration::from_secs(5)).await,
            "{provider}: {:?}",
            remote.health().status()
        );
        let keys = remote.current().expect("keys");
        assert_eq!(keys.len(), usable, "{provider}");
        assert_eq!(issuer.requests(Endpoint::Discovery), 1, "{provider}");
    }
}

// ---- the refresher owns every fetch: cancellation, cooldown, generations -----------

/// A store whose only fetches are the first load and those unknown `kid`s ask for.
fn kid_driven(cooldown: Duration) -> RemoteOptions {
    fast()
        .refresh_interval(Duration::from_secs(3600))
        .unknown_kid_cooldown(cooldown)
}

fn has_kid(remote: &RemoteJwks, kid: &str) -> bool {
    remote
        .current()
        .is_some_and(|keys| keys.iter().any(|k| k.kid() == Some(kid)))
}

#[tokio::test]
async fn a_dropped_refetch_future_still_fetches_the_rotated_key() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let remote = RemoteJwks::from_issuer(issuer.issuer(), kid_driven(Duration::from_secs(60)))
        .expect("remote");
    assert!(remote.wait_until_ready(Duration::from_secs(5)).await);
    let fetches = issuer.requests(Endpoint::Jwks);
    let new = issuer.rotate();
    issuer.set_fault(Endpoint::Jwks, Fault::Hold);
    // The request's future is dropped while the issuer holds the JWKS response.
    let waited = tokio::time::timeout(
        Duration::from_millis(100),
        remote.refetch_for_kid(new.kid()),
    )
    .await;
    assert!(waited.is_err(), "the refetch was still in flight");
    eventually("the refetch reached the issuer", async || {
        issuer.requests(Endpoint::Jwks) > fetches
    })
    .await;
    issuer.clear_faults();
    issuer.release();
    eventually("the rotated key is in the set", async || {
        has_kid(&remote, new.kid())
    })
    .await;
    assert_eq!(issuer.requests(Endpoint::Jwks), fetches + 1, "one refetch");
}

#[tokio::test]
async fn a_client_that_hangs_up_during_a_refetch_does_not_hold_out_the_rotated_key() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let server = server(&issuer, kid_driven(Duration::from_secs(60))).await;
    server.bearer(&issuer.token().sign()).await.assert_ok();
    let fetches = issuer.requests(Endpoint::Jwks);
    issuer.rotate();
    let token = issuer.token().sign();
    issuer.set_fault(Endpoint::Jwks, Fault::Hold);
    let hung_up = server
        .client
        .get(server.url("/"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(hung_up.is_err(), "the client gave up: {hung_up:?}");
    eventually("the refetch reached the issuer", async || {
        issuer.requests(Endpoint::Jwks) > fetches
    })
    .await;
    issuer.clear_faults();
    issuer.release();
    // Within the 60 s cooldown, the first request after the fetch is accepted.
    server.bearer(&token).await.assert_ok();
    assert_eq!(issuer.requests(Endpoint::Jwks), fetches + 1, "one refetch");
}

#[tokio::test]
async fn random_kids_during_the_cooldown_are_refused_at_once_without_fetching() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let options = kid_driven(Duration::from_secs(60)).fetch_timeout(Duration::from_secs(30));
    let server = Arc::new(server(&issuer, options).await);
    server.bearer(&issuer.token().sign()).await.assert_ok();
    // One unknown kid starts the cooldown.
    server
        .bearer(&issuer.token().unknown_kid().sign())
        .await
        .assert_invalid_token("unknown signing key");
    let fetches = issuer.requests(Endpoint::Jwks);
    // A fetch now would hang for the 30 s timeout; none may start, and none is waited on.
    issuer.set_fault(Endpoint::Jwks, Fault::Hold);
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..150 {
        let server = Arc::clone(&server);
        let token = issuer.token().unknown_kid().sign();
        tasks.spawn(async move {
            server
                .bearer(&token)
                .await
                .assert_invalid_token("unknown signing key");
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task");
    }
    let elapsed = started.elapsed();
    println!("150 random kids during the cooldown: {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(30),
        "a request waited for a fetch"
    );
    assert_eq!(issuer.requests(Endpoint::Jwks), fetches, "no fetch");
    issuer.clear_faults();
    issuer.release();
    println!(
        "JWKS fetches for 151 random kids: {} (first load included)",
        issuer.requests(Endpoint::Jwks)
    );
}

#[tokio::test]
async fn a_rotated_key_is_accepted_after_the_cooldown_of_a_flood() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let cooldown = Duration::from_millis(300);
    let server = server(&issuer, kid_driven(cooldown)).await;
    server.bearer(&issuer.token().sign()).await.assert_ok();
    server
        .bearer(&issuer.token().unknown_kid().sign())
        .await
        .assert_invalid_token("unknown signing key");
    issuer.rotate();
    let token = issuer.token().sign();
    // Within one cooldown of the flood's fetch, the new key is accepted.
    eventually_within(
        cooldown * 3,
        "the rotated key accepted past the cooldown",
        async || server.bearer(&token).await.status == StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn an_identical_document_keeps_the_key_set_and_its_generation() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let remote = RemoteJwks::from_issuer(issuer.issuer(), fast()).expect("remote");
    assert!(remote.wait_until_ready(Duration::from_secs(5)).await);
    let first = remote.current().expect("keys");
    let fetches = issuer.requests(Endpoint::Jwks);
    eventually("two more refreshes", async || {
        issuer.requests(Endpoint::Jwks) >= fetches + 2
    })
    .await;
    let same = remote.current().expect("keys");
    assert_eq!(same.generation(), first.generation());
    assert!(Arc::ptr_eq(&first, &same), "the set itself is kept");
    issuer.add_key(TestKey::ec_p256());
    eventually("a new set after a change", async || {
        remote
            .current()
            .is_some_and(|keys| keys.generation() != first.generation() && keys.len() == 2)
    })
    .await;
}

// ---- key fetches stay on https -------------------------------------------------------

/// A host name that is not loopback by its name; `resolve` pins it to 127.0.0.1, so a
/// client that follows a redirect there still never leaves this machine.
const PLAIN_HTTP_HOST: &str = "jwks.test";

#[tokio::test]
async fn the_built_in_client_does_not_follow_a_redirect_to_plain_http() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let target = MockIssuer::builder().key(issuer.active_key()).start().await;
    let location = format!(
        "http://{PLAIN_HTTP_HOST}:{}/jwks.json",
        target.addr().port()
    );
    issuer.set_redirect(Endpoint::Jwks, Some(location));
    // No http_client: the store builds its own.
    let remote =
        RemoteJwks::from_jwks_url(&issuer.jwks_url(), RemoteOptions::new()).expect("remote");
    let health = remote.health();
    eventually("a failed first load", async || {
        matches!(
            health.status(),
            KeysStatus::NeverLoaded {
                last_error: Some(_)
            }
        )
    })
    .await;
    let last_error = first_load_error(&health);
    assert!(last_error.contains("redirected"), "{last_error}");
    assert_eq!(
        target.requests(Endpoint::Jwks),
        0,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn keys_reached_over_plain_http_through_a_custom_clients_redirect_are_refused() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let target = MockIssuer::builder().key(issuer.active_key()).start().await;
    let location = format!(
        "http://{PLAIN_HTTP_HOST}:{}/jwks.json",
        target.addr().port()
    );
    issuer.set_redirect(Endpoint::Jwks, Some(location));
    // A client that follows every redirect, and resolves the plain-http host to loopback.
    let follows = reqwest::Client::builder()
        .no_proxy()
        .resolve(PLAIN_HTTP_HOST, target.addr())
        .build()
        .expect("client");
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .jwks_url(issuer.jwks_url())
        .remote_options(fast().http_client(follows))
        .build()
        .expect("config");
    let health = cfg.key_health().remove(0);
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let answer = server.bearer(&issuer.token().sign()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{answer:?}");
    assert!(target.requests(Endpoint::Jwks) >= 1, "the client followed");
    let last_error = first_load_error(&health);
    assert!(last_error.contains("not https"), "{last_error}");
}

#[tokio::test]
async fn extreme_intervals_never_panic_the_refresher() {
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let options = RemoteOptions::new()
        .http_client(client())
        .refresh_interval(Duration::MAX)
        .max_age_bounds(Duration::MAX, Duration::MAX)
        .unknown_kid_cooldown(Duration::MAX)
        .backoff(Duration::MAX, Duration::MAX);
    let remote = RemoteJwks::from_issuer(issuer.issuer(), options).expect("remote");
    assert!(remote.wait_until_ready(Duration::MAX).await);
    // An unknown kid asks for a refetch (the first one is not blocked by a cooldown).
    let rotated = issuer.rotate();
    let keys = remote
        .refetch_for_kid(rotated.kid())
        .await
        .expect("refetched");
    assert!(keys.iter().any(|k| k.kid() == Some(rotated.kid())));
    // The task scheduled its next fetch at the far end of time and is still alive. The
    // wait is real time: the task must get to arm its tokio timer, where it would panic.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(remote.health().is_refreshing(), "the refresher survived");
    assert!(remote.retry_after() > Duration::from_secs(3600));
}
