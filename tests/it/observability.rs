//! What operators see, over real HTTP: exact metric values per outcome (through the
//! `metrics-util` debugging recorder, local to this test's current-thread runtime, which
//! also runs the servers and the key refreshers) and the audit hook. Never a token in
//! either. The span of each request is checked in `logs.rs`, where every test installs
//! its subscriber before any traffic (tracing caches a callsite's interest globally).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::support::Server;
use axum::Router;
use axum::routing::get;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tower_jwt_auth::cache::CacheOptions;
use tower_jwt_auth::telemetry::OUTCOMES;
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer, TestKey};
use tower_jwt_auth::{JwtAuthLayer, RequirePermission, StandardClaims};

/// Counter values by name and sorted labels, e.g. `requests{outcome=ok}`.
fn counters(snapshotter: &Snapshotter) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let mut labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => {
                out.insert(name, n);
            }
            DebugValue::Histogram(samples) => {
                out.insert(name, samples.len() as u64);
            }
            DebugValue::Gauge(_) => {
                out.insert(name, 1);
            }
        }
    }
    out
}

async fn who(auth: tower_jwt_auth::Authentication) -> String {
    auth.claims::<StandardClaims>()
        .and_then(|c| c.sub.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_outcome_is_counted_once_with_its_fixed_label() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let cfg = crate::support::issuer_config(&issuer)
        .require_permissions(["api"])
        .cache(CacheOptions::new())
        .build()
        .expect("config");
    let router = Router::new()
        .route("/", get(who))
        .route("/guarded", get(who).route_layer(RequirePermission("write")))
        .layer(JwtAuthLayer::new(cfg));
    let server = Server::start_router(router).await;
    let good = issuer.token().permissions(["api", "write"]).sign();
    server.bearer(&good).await.assert_ok();
    server.bearer(&good).await.assert_ok(); // a cache hit
    server.get("/", &[]).await.assert_no_token();
    server
        .get("/", &[("authorization", "Bearer a b")])
        .await
        .assert_invalid_request();
    let refused = [
        issuer.token().permissions(["api"]).expired().sign(),
        issuer.token().permissions(["api"]).tampered().sign(),
        issuer.token().permissions(["api"]).wrong_audience().sign(),
    ];
    for token in &refused {
        assert_eq!(server.bearer(token).await.status, 401);
    }
    let no_api = issuer.token().permissions(["write"]).sign();
    assert_eq!(server.bearer(&no_api).await.status, 403);
    // Passes the layer (ok), refused by the route guard.
    let reader = issuer.token().permissions(["api"]).sign();
    assert_eq!(server.bearer_at("/guarded", &reader).await.status, 403);

    // Optional mode without a token, and an issuer whose keys never loaded.
    let optional = Server::start(
        JwtAuthLayer::new(
            crate::support::issuer_config(&issuer)
                .build()
                .expect("config"),
        )
        .optional(),
    )
    .await;
    optional.get("/optional", &[]).await.assert_ok();
    let down = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    down.set_fault(Endpoint::Discovery, Fault::Down);
    let unavailable = Server::start(JwtAuthLayer::new(
        crate::support::issuer_config(&down)
            .build()
            .expect("config"),
    ))
    .await;
    assert_eq!(unavailable.bearer(&down.token().sign()).await.status, 503);

    let values = counters(&snapshotter);
    println!("{values:#?}");
    let requests = |outcome: &str| {
        values
            .get(&format!("jwt_auth_requests_total{{outcome={outcome}}}"))
            .copied()
            .unwrap_or(0)
    };
    let expected = [
        ("ok", 3),
        ("anonymous", 1),
        ("missing", 1),
        ("malformed", 1),
        ("expired", 1),
        ("invalid_signature", 1),
        ("invalid_claims", 1),
        ("forbidden", 1),
        ("unavailable", 1),
    ];
    for (outcome, count) in expected {
        assert!(OUTCOMES.contains(&outcome));
        assert_eq!(requests(outcome), count, "{outcome}");
    }
    assert_eq!(
        values.get("jwt_auth_guard_refusals_total{required=write}"),
        Some(&1)
    );
    assert_eq!(values.get("jwt_auth_cache_total{result=hit}"), Some(&1));
    // Misses: every token that reached verification but the repeated one.
    assert_eq!(values.get("jwt_auth_cache_total{result=miss}"), Some(&6));
    // Every request that reached verification (not the anonymous or unavailable one).
    assert_eq!(values.get("jwt_auth_verify_seconds{}"), Some(&7));
    let fetched = format!(
        "jwt_auth_jwks_fetches_total{{issuer={},result=ok}}",
        issuer.issuer()
    );
    assert!(values.get(&fetched).is_some_and(|n| *n >= 1), "{fetched}");
    let age = format!("jwt_auth_key_set_age_seconds{{issuer={}}}", issuer.issuer());
    assert!(values.contains_key(&age), "{age}");
    let failed = format!(
        "jwt_auth_jwks_fetches_total{{issuer={},result=error}}",
        down.issuer()
    );
    assert!(values.get(&failed).is_some_and(|n| *n >= 1), "{failed}");
    for name in values.keys() {
        assert!(!name.contains("eyJ"), "no token in {name}");
    }
}

#[tokio::test]
async fn the_audit_hook_gets_a_token_free_summary_of_every_decision() {
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&events);
    let issuer = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let cfg = crate::support::issuer_config(&issuer)
        .on_outcome(move |event| {
            let line = format!(
                "{} {:?} {} {} {:?} {:?} {:?} {}",
                event.outcome,
                event.error,
                event.method,
                event.path,
                event.issuer,
                event.subject,
                event.client_id,
                event.kid.is_some()
            );
            sink.lock().expect("events").push(line);
        })
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let token = issuer.token().subject("bob").claim("azp", "spa").sign();
    server.bearer(&token).await.assert_ok();
    server
        .bearer(&issuer.token().expired().sign())
        .await
        .assert_invalid_token("token expired");
    server.get("/", &[]).await.assert_no_token();
    let events = events.lock().expect("events").clone();
    assert_eq!(
        events,
        [
            format!(
                "ok None GET / Some({:?}) Some(\"bob\") Some(\"spa\") true",
                issuer.issuer()
            ),
            "expired Some(Expired) GET / None None None false".to_owned(),
            "missing Some(MissingToken) GET / None None None false".to_owned(),
        ]
    );
    for event in &events {
        assert!(!event.contains("eyJ"), "no token in {event}");
    }
}

/// A bearer token outside RFC 6750's `b64token` is 400 whichever source would take it,
/// and reaches none of them: no refetch for its unknown `kid`, no introspection call, no
/// API key lookup, no cache miss or verification in the metrics, no 503 while the keys
/// are missing. The layer checks the characters only for a token that the cache and
/// verification do not accept, so these paths are where the check must still hold.
#[tokio::test]
async fn characters_outside_b64token_reach_no_source() {
    use tower_jwt_auth::api_key::{ApiKey, NewApiKey};
    use tower_jwt_auth::introspection::{ClientAuth, Introspection};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let issuer = MockIssuer::start().await;
    issuer.add_client("api", "s3cret", Vec::<String>::new());
    let key = NewApiKey::generate("sk_test_");
    let introspection = Introspection::new("api", ClientAuth::client_secret_basic("s3cret"));
    let cfg = crate::support::issuer_config(&issuer)
        .introspection(introspection.clone())
        .api_key(ApiKey::new("k", key.digest()).permissions(["read"]))
        .api_key_prefix("sk_test_")
        .cache(CacheOptions::new())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let good = issuer.token().sign();
    server.bearer(&good).await.assert_ok();
    server.bearer(&good).await.assert_ok(); // from the cache
    server.bearer(key.key()).await.assert_ok();
    let fetches = issuer.requests(Endpoint::Jwks);
    let unknown_kid = issuer.token().kid("never-published").sign();
    for bad in [
        format!("Bearer {good},x"),
        format!("Bearer {good} x"),
        format!("Bearer {good}=x"),
        format!("Bearer {unknown_kid},"),
        format!("Bearer {}|", key.key()),
        "Bearer opaque,token".to_owned(),
        "Bearer ey J.e30.x".to_owned(),
    ] {
        let answer = server.get("/", &[("authorization", &bad)]).await;
        assert_eq!(answer.status, 400, "{bad}");
        answer.assert_invalid_request();
    }
    assert_eq!(issuer.requests(Endpoint::Jwks), fetches, "no refetch");
    assert_eq!(issuer.requests(Endpoint::Introspection), 0);
    let values = counters(&snapshotter);
    // The good token: one miss, one hit, both timed; the key is not a verification.
    // Seven refusals, none of them counted as reaching the cache or verification.
    let count = |name: &str| values.get(name).copied();
    assert_eq!(
        count("jwt_auth_cache_total{result=miss}"),
        Some(1),
        "{values:#?}"
    );
    assert_eq!(
        count("jwt_auth_cache_total{result=hit}"),
        Some(1),
        "{values:#?}"
    );
    assert_eq!(count("jwt_auth_verify_seconds{}"), Some(2), "{values:#?}");
    assert_eq!(
        count("jwt_auth_requests_total{outcome=malformed}"),
        Some(7),
        "{values:#?}"
    );

    // Every token introspected (`always_introspect`): a signed JWT with bad characters
    // never reaches the authorization server either.
    let always = Server::start(JwtAuthLayer::new(
        crate::support::issuer_config(&issuer)
            .introspection(introspection.always_introspect(true))
            .build()
            .expect("config"),
    ))
    .await;
    for bad in [format!("Bearer {good},"), "Bearer opaque token".to_owned()] {
        always
            .get("/", &[("authorization", &bad)])
            .await
            .assert_invalid_request();
    }
    assert_eq!(issuer.requests(Endpoint::Introspection), 0);
    always.bearer(&good).await.assert_ok();
    assert_eq!(
        issuer.requests(Endpoint::Introspection),
        1,
        "the good token is introspected"
    );

    // Keys that never loaded: the characters are refused before the wait, not with 503.
    let down = MockIssuer::start().await;
    down.set_fault(Endpoint::Discovery, Fault::Down);
    let waiting = Server::start(JwtAuthLayer::new(
        crate::support::issuer_config(&down)
            .build()
            .expect("config"),
    ))
    .await;
    let token = down.token().sign();
    waiting
        .get("/", &[("authorization", &format!("Bearer {token} x"))])
        .await
        .assert_invalid_request();
    assert_eq!(waiting.bearer(&token).await.status, 503);
}
