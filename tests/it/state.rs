//! Single-use tokens and revocation over real HTTP: in memory, and on a real Redis
//! server shared by two app instances (two replicas).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::support::redis::RedisServer;
use crate::support::{
    Answer, ISSUER, Server, answer, builder, ec_key, eventually_within, token, whoami,
};
use axum::Router;
use axum::routing::{get, post};
use http::StatusCode;
use tower_jwt_auth::cache::CacheOptions;
use tower_jwt_auth::guard::SingleUse;
use tower_jwt_auth::state::{MemoryReplayStore, MemoryRevocationList, StoreFailure};
use tower_jwt_auth::time::{Clock as _, ManualClock};
use tower_jwt_auth::{JwtAuthConfigBuilder, JwtAuthLayer, RequirePermission};

async fn created() -> (StatusCode, &'static str) {
    (StatusCode::CREATED, "created")
}

/// `/` needs a valid token; `/transfers` needs `write` and spends the token;
/// `/redeem` spends it whatever its permissions.
fn routes(layer: JwtAuthLayer) -> Router {
    Router::new()
        .route("/", get(whoami))
        .route(
            "/transfers",
            post(created).route_layer(RequirePermission("write").single_use()),
        )
        .route("/redeem", post(created).route_layer(SingleUse))
        .layer(layer)
}

fn config() -> JwtAuthConfigBuilder {
    builder(ec_key().key_set())
}

async fn start(builder: JwtAuthConfigBuilder) -> Server {
    let layer = JwtAuthLayer::new(builder.build().expect("config"));
    Server::start_router(routes(layer)).await
}

async fn post_with(server: &Server, path: &str, token: &str) -> Answer {
    let response = server
        .client
        .post(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    answer(response).await
}

/// The `Retry-After` of a 503 when a state store cannot answer, in seconds.
const RETRY_AFTER: &str = "1";

#[tokio::test]
async fn every_token_works_once_when_the_layer_makes_them_single_use() {
    let server = start(config().single_use_tokens(true)).await;
    let first = token(ec_key()).sign();
    server.bearer(&first).await.assert_ok();
    server
        .bearer(&first)
        .await
        .assert_invalid_token("token already used");
    // Another token is another jti.
    server.bearer(&token(ec_key()).sign()).await.assert_ok();
    // A token that cannot be single use is refused, not waved through.
    let no_jti = token(ec_key()).without_claim("jti").sign();
    server
        .bearer(&no_jti)
        .await
        .assert_invalid_token("required claim missing");
}

#[tokio::test]
async fn a_route_guard_spends_the_token_only_after_its_permission_is_met() {
    let server = start(config()).await;
    let reader = token(ec_key()).permissions(["read"]).sign();
    // 403 twice: the refused request did not use the token up.
    for _ in 0..2 {
        let refused = post_with(&server, "/transfers", &reader).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    }
    let writer = token(ec_key()).permissions(["write"]).sign();
    // Routes without the guard do not spend it.
    server.bearer(&writer).await.assert_ok();
    server.bearer(&writer).await.assert_ok();
    let first = post_with(&server, "/transfers", &writer).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    post_with(&server, "/transfers", &writer)
        .await
        .assert_invalid_token("token already used");
    // One replay store for every guarded route: spent on one, spent on all.
    post_with(&server, "/redeem", &writer)
        .await
        .assert_invalid_token("token already used");
    // Without a token, the guard answers like the layer: a bare challenge.
    let anonymous = server
        .client
        .post(server.url("/redeem"))
        .send()
        .await
        .expect("request");
    answer(anonymous).await.assert_no_token();
    let no_jti = token(ec_key()).without_claim("jti").sign();
    post_with(&server, "/redeem", &no_jti)
        .await
        .assert_invalid_token("required claim missing");
}

#[tokio::test]
async fn a_layer_wide_single_use_token_is_spent_once_even_behind_a_route_guard() {
    let server = start(config().single_use_tokens(true)).await;
    let writer = token(ec_key()).permissions(["write"]).sign();
    let first = post_with(&server, "/transfers", &writer).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    post_with(&server, "/transfers", &writer)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
async fn the_verified_token_cache_never_lets_a_single_use_token_skip_the_check() {
    let server = start(config().single_use_tokens(true).cache(CacheOptions::new())).await;
    let once = token(ec_key()).sign();
    server.bearer(&once).await.assert_ok();
    // The second request is a cache hit, and still refused.
    server
        .bearer(&once)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
async fn revoking_a_token_or_a_subject_refuses_it_at_once_cached_or_not() {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let config = config()
        .clock(clock.clone())
        .cache(CacheOptions::new())
        .revocation_list(MemoryRevocationList::default().with_clock(clock.clone()))
        .build()
        .expect("config");
    let revocations = config.revocations().expect("a revocation list");
    let server = Server::start_router(routes(JwtAuthLayer::new(config))).await;

    let mint = |sub: &str| token(ec_key()).subject(sub).now(clock.now());
    let one = mint("alice").claim("jti", "alice-1").sign();
    let two = mint("alice").claim("jti", "alice-2").sign();
    server.bearer(&one).await.assert_ok(); // now cached
    server.bearer(&two).await.assert_ok();
    revocations
        .revoke_token(ISSUER, "alice-1")
        .await
        .expect("revoke");
    server
        .bearer(&one)
        .await
        .assert_invalid_token("token revoked");
    server.bearer(&two).await.assert_ok();
    // The jti alone is not the key: the same jti from another issuer is another token.
    revocations
        .revoke_token("https://other.example/", "alice-2")
        .await
        .expect("revoke");
    server.bearer(&two).await.assert_ok();

    // A subject: every token issued until now, and every token without `iat`.
    let bob_old = mint("bob").sign();
    let bob_undated = mint("bob").without_claim("iat").sign();
    let carol = mint("carol").sign();
    revocations
        .revoke_subject(ISSUER, "bob")
        .await
        .expect("revoke");
    server
        .bearer(&bob_old)
        .await
        .assert_invalid_token("token revoked");
    server
        .bearer(&bob_undated)
        .await
        .assert_invalid_token("token revoked");
    server.bearer(&carol).await.assert_ok();
    // Tokens dated up to one leeway (60 s) after the revocation may predate it by the
    // issuer's clock, and are refused too; later ones pass.
    clock.advance(Duration::from_secs(30));
    let bob_soon = mint("bob").sign();
    server
        .bearer(&bob_soon)
        .await
        .assert_invalid_token("token revoked");
    clock.advance(Duration::from_secs(31));
    let bob_new = mint("bob").sign();
    server.bearer(&bob_new).await.assert_ok();
}

#[tokio::test]
async fn an_issuer_clock_ahead_of_ours_cannot_escape_a_subject_revocation() {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let config = config()
        .clock(clock.clone())
        .revocation_list(MemoryRevocationList::default().with_clock(clock.clone()))
        .build()
        .expect("config");
    let revocations = config.revocations().expect("a revocation list");
    let server = Server::start_router(routes(JwtAuthLayer::new(config))).await;
    // The identity provider's clock runs 20 s ahead of ours (inside the leeway): a token
    // it issues a moment before the revocation says `iat` = our now + 20 s.
    let ahead = token(ec_key())
        .subject("mallory")
        .now(clock.now() + Duration::from_secs(20))
        .sign();
    server.bearer(&ahead).await.assert_ok();
    revocations
        .revoke_subject(ISSUER, "mallory")
        .await
        .expect("revoke");
    server
        .bearer(&ahead)
        .await
        .assert_invalid_token("token revoked");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn replicas_with_clocks_20_s_apart_sharing_redis_refuse_the_second_use() {
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore};
    let redis = RedisServer::start().await;
    let now = SystemTime::now();
    // Replica A runs 20 s fast, replica B on time; both inside the 60 s leeway.
    let clocks = [
        Arc::new(ManualClock::new(now + Duration::from_secs(20))),
        Arc::new(ManualClock::new(now)),
    ];
    let mut servers = Vec::new();
    for clock in &clocks {
        let connection = RedisConnection::open(&redis.url())
            .expect("redis url")
            .prefix("skew:");
        let config = config()
            .clock(clock.clone())
            .single_use_tokens(true)
            .replay_store(RedisReplayStore::new(connection));
        servers.push(start(config).await);
    }
    // Expired 39 s ago: A accepts it for one more second by its clock, B for 21 more.
    let jti = "skewed";
    let once = token(ec_key())
        .claim("jti", jti)
        .now(now)
        .expires_in_secs(-39)
        .sign();
    servers[0].bearer(&once).await.assert_ok();
    let key = format!(
        "skew:replay:{}",
        tower_jwt_auth::state::StateKey::token(ISSUER, jti)
    );
    let ttl: i64 = redis.command(&["PTTL", &key]).parse().expect("pttl");
    // A record counted by A's clock alone (exp + leeway - now = 1 s) would be gone while
    // B still accepts the token; one more leeway covers B.
    assert!(ttl > 60_000, "{ttl}");
    // Past the life such a record would have had (Redis counts real time).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    servers[1]
        .bearer(&once)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
async fn a_token_outliving_the_revocation_retention_is_refused() {
    let day = Duration::from_secs(24 * 3600);
    let server = start(
        config()
            .revocation_retention(day)
            .revocation_list(MemoryRevocationList::default()),
    )
    .await;
    let week = token(ec_key()).expires_in_secs(7 * 24 * 3600).sign();
    server
        .bearer(&week)
        .await
        .assert_invalid_token("token lifetime exceeds the maximum");
    let undated_week = token(ec_key())
        .without_claim("iat")
        .expires_in_secs(7 * 24 * 3600)
        .sign();
    server
        .bearer(&undated_week)
        .await
        .assert_invalid_token("token lifetime exceeds the maximum");
    server.bearer(&token(ec_key()).sign()).await.assert_ok();
    // Without a revocation list nothing limits the lifetime unless asked.
    let free = start(config()).await;
    free.bearer(&week).await.assert_ok();
    let limited = start(config().max_lifetime(Duration::from_secs(3600))).await;
    limited
        .bearer(&week)
        .await
        .assert_invalid_token("token lifetime exceeds the maximum");
    limited
        .bearer(&token(ec_key()).expires_in_secs(3600).sign())
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_retention_shorter_than_the_maximum_lifetime_is_refused_at_build() {
    let error = config()
        .revocation_list(MemoryRevocationList::default())
        .revocation_retention(Duration::from_secs(3600))
        .max_lifetime(Duration::from_secs(7200))
        .build()
        .expect_err("a revoked token would outlive its revocation");
    let message = error.to_string();
    assert!(message.contains("revocation_retention"), "{message}");
    assert!(message.contains("max_lifetime"), "{message}");
    config()
        .revocation_list(MemoryRevocationList::default())
        .revocation_retention(Duration::from_secs(7200))
        .max_lifetime(Duration::from_secs(3600))
        .build()
        .expect("a retention longer than the lifetime");
}

/// Sends the same request from `n` concurrent tasks and counts the statuses.
async fn race(server: &Server, path: &str, token: &str, n: usize) -> Vec<StatusCode> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let request = server.client.post(server.url(path)).bearer_auth(token);
            tokio::spawn(async move { answer(request.send().await.expect("request")).await })
        })
        .collect();
    let mut statuses = Vec::with_capacity(n);
    for task in tasks {
        let answer = task.await.expect("task");
        if answer.status != StatusCode::CREATED {
            answer.assert_invalid_token("token already used");
        }
        statuses.push(answer.status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_uses_of_one_token_let_exactly_one_through() {
    let server = start(config()).await;
    let once = token(ec_key()).sign();
    let statuses = race(&server, "/redeem", &once, 1000).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
}

#[tokio::test]
async fn the_memory_store_stays_bounded_under_a_flood_of_distinct_tokens() {
    let store = Arc::new(MemoryReplayStore::new(160));
    let server = start(config().single_use_tokens(true).replay_store(store.clone())).await;
    let mut passed = 0;
    let mut full = 0;
    for _ in 0..1_000 {
        let answer = server.bearer(&token(ec_key()).sign()).await;
        match answer.status {
            StatusCode::OK => passed += 1,
            // Full of live entries: refused like an unavailable store, nothing forgotten.
            StatusCode::SERVICE_UNAVAILABLE => {
                answer.assert_unavailable(RETRY_AFTER);
                full += 1;
            }
            other => panic!("unexpected {other}: {answer:?}"),
        }
    }
    assert!(store.len() <= 160, "{} keys", store.len());
    assert_eq!(passed, store.len());
    assert_eq!(passed + full, 1_000);
    assert!(full >= 840, "{full} refused");
}

/// Two replicas: two app instances with their own layer and their own connection to one
/// Redis server.
async fn replicas(redis: &RedisServer, builder: impl Fn() -> JwtAuthConfigBuilder) -> Vec<Server> {
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore, RedisRevocationList};
    let mut servers = Vec::new();
    for _ in 0..2 {
        let connection = RedisConnection::open(&redis.url())
            .expect("redis url")
            .prefix("test:");
        let config = builder()
            .replay_store(RedisReplayStore::new(connection.clone()))
            .revocation_list(RedisRevocationList::new(connection));
        servers.push(start(config).await);
    }
    servers
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn two_replicas_sharing_redis_accept_a_single_use_token_once() {
    let redis = RedisServer::start().await;
    let servers = replicas(&redis, || config().single_use_tokens(true)).await;
    let (a, b) = (&servers[0], &servers[1]);
    let once = token(ec_key()).sign();
    a.bearer(&once).await.assert_ok();
    b.bearer(&once)
        .await
        .assert_invalid_token("token already used");
    a.bearer(&once)
        .await
        .assert_invalid_token("token already used");
    let other = token(ec_key()).sign();
    b.bearer(&other).await.assert_ok();
    a.bearer(&other)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_revocation_on_one_replica_refuses_the_token_on_both() {
    use tower_jwt_auth::state::{RedisConnection, RedisRevocationList};
    let redis = RedisServer::start().await;
    let servers = replicas(&redis, || config().cache(CacheOptions::new())).await;
    let (a, b) = (&servers[0], &servers[1]);
    // The admin side: its own connection and handle, as on a third replica.
    let admin = config()
        .revocation_list(RedisRevocationList::new(
            RedisConnection::open(&redis.url())
                .expect("url")
                .prefix("test:"),
        ))
        .build()
        .expect("config")
        .revocations()
        .expect("revocations");

    let t = token(ec_key())
        .subject("dave")
        .claim("jti", "dave-1")
        .sign();
    let u = token(ec_key()).subject("erin").sign();
    a.bearer(&t).await.assert_ok();
    b.bearer(&t).await.assert_ok();
    admin.revoke_token(ISSUER, "dave-1").await.expect("revoke");
    a.bearer(&t).await.assert_invalid_token("token revoked");
    b.bearer(&t).await.assert_invalid_token("token revoked");
    a.bearer(&u).await.assert_ok();
    admin.revoke_subject(ISSUER, "erin").await.expect("revoke");
    a.bearer(&u).await.assert_invalid_token("token revoked");
    b.bearer(&u).await.assert_invalid_token("token revoked");
    // What Redis holds names neither the issuer, the jti nor the subject.
    let keys = redis.command(&["KEYS", "*"]);
    assert_eq!(keys.lines().count(), 2, "{keys}");
    for needle in ["dave", "erin", "idp.example.com"] {
        assert!(!keys.contains(needle), "{keys}");
    }
    assert!(
        keys.lines().all(|k| k.starts_with("test:revoked:")),
        "{keys}"
    );
    let ttl: i64 = redis
        .command(&["PTTL", keys.lines().next().expect("a key")])
        .parse()
        .expect("pttl");
    // The default retention (a day) plus two leeways (60 s each): a token of the longest
    // life the retention allows still works one leeway past it, and a subject revocation
    // reaches tokens dated one leeway after it.
    let kept = (24 * 3600 + 2 * 60) * 1000;
    assert!(ttl > kept - 60_000 && ttl <= kept, "{ttl}");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_used_token_is_remembered_until_its_exp_even_beyond_the_revocation_retention() {
    let redis = RedisServer::start().await;
    let hour = Duration::from_secs(3600);
    // Single use alone: with a revocation list, a week-long token would be refused for
    // outliving the retention.
    let mut servers = Vec::new();
    for _ in 0..2 {
        use tower_jwt_auth::state::{RedisConnection, RedisReplayStore};
        let connection = RedisConnection::open(&redis.url())
            .expect("redis url")
            .prefix("test:");
        let config = config()
            .single_use_tokens(true)
            .revocation_retention(hour)
            .replay_store(RedisReplayStore::new(connection));
        servers.push(start(config).await);
    }
    let jti = "week-long";
    let week = 7 * 24 * 3600;
    let once = token(ec_key())
        .claim("jti", jti)
        .expires_in_secs(week)
        .sign();
    servers[0].bearer(&once).await.assert_ok();
    let key = format!(
        "test:replay:{}",
        tower_jwt_auth::state::StateKey::token(ISSUER, jti)
    );
    let ttl: i64 = redis.command(&["PTTL", &key]).parse().expect("pttl");
    // A record kept for the retention (1 h) would let the token work again for the six
    // days after it.
    assert!(ttl > (week - 120) * 1000, "{ttl}");
    servers[1]
        .bearer(&once)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_used_key_expires_from_redis_with_the_token_plus_two_leeways() {
    let redis = RedisServer::start().await;
    let leeway = Duration::from_secs(1);
    let servers = replicas(&redis, || config().single_use_tokens(true).leeway(leeway)).await;
    let a = &servers[0];
    let jti = "short-lived";
    let once = token(ec_key()).claim("jti", jti).expires_in_secs(1).sign();
    a.bearer(&once).await.assert_ok();
    let key = format!(
        "test:replay:{}",
        tower_jwt_auth::state::StateKey::token(ISSUER, jti)
    );
    let ttl: i64 = redis.command(&["PTTL", &key]).parse().expect("pttl");
    // exp (1 s, counted from a whole second) plus twice the leeway (1 s each: the one
    // every replica accepts the token for, and the skew between replicas' clocks), minus
    // the time since: never more than 3 s, and gone after.
    assert!(ttl > 1_000 && ttl <= 3_000, "{ttl}");
    // Redis expires keys by its own real clock, which no injected clock reaches.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_eq!(redis.command(&["EXISTS", &key]), "0");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn redis_down_gives_503_with_retry_after_and_service_resumes_by_itself() {
    let mut redis = RedisServer::start().await;
    let servers = replicas(&redis, || config().single_use_tokens(true)).await;
    let (a, b) = (&servers[0], &servers[1]);
    a.bearer(&token(ec_key()).sign()).await.assert_ok();
    redis.kill();
    for server in [a, b] {
        let answer = server.bearer(&token(ec_key()).sign()).await;
        answer.assert_unavailable(RETRY_AFTER);
    }
    redis.restart().await;
    // No restart of the app: the connection comes back on its own. Reconnecting to a
    // restarted server can take longer than one wait usually allows.
    for server in [a, b] {
        eventually_within(Duration::from_secs(10), "recovery", async || {
            let answer = server.bearer(&token(ec_key()).sign()).await;
            if answer.status == StatusCode::OK {
                return true;
            }
            answer.assert_unavailable(RETRY_AFTER);
            false
        })
        .await;
    }
    // And single use holds again across both.
    let once = token(ec_key()).sign();
    a.bearer(&once).await.assert_ok();
    b.bearer(&once)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn fail_open_lets_requests_through_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let servers = replicas(&redis, || {
        config()
            .single_use_tokens(true)
            .store_failure(StoreFailure::Open)
    })
    .await;
    let a = &servers[0];
    let once = token(ec_key()).sign();
    a.bearer(&once).await.assert_ok();
    redis.kill();
    // Unchecked while the store is down: even a used token passes. That is the trade
    // this mode makes, and why it is not the default.
    a.bearer(&once).await.assert_ok();
    a.bearer(&token(ec_key()).sign()).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_thousand_concurrent_uses_on_redis_let_exactly_one_through() {
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore};
    let redis = RedisServer::start().await;
    let mut servers = Vec::new();
    for _ in 0..2 {
        // A generous timeout: this test is about atomicity, not latency.
        let connection = RedisConnection::open(&redis.url())
            .expect("url")
            .timeout(Duration::from_secs(5));
        servers.push(start(config().replay_store(RedisReplayStore::new(connection))).await);
    }
    let once = token(ec_key()).sign();
    let (left, right) = tokio::join!(
        race(&servers[0], "/redeem", &once, 500),
        race(&servers[1], "/redeem", &once, 500)
    );
    let created = left
        .iter()
        .chain(&right)
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_slow_redis_costs_a_request_the_timeout_not_the_stall() {
    let redis = RedisServer::start().await;
    let servers = replicas(&redis, || config().single_use_tokens(true)).await;
    let a = &servers[0];
    a.bearer(&token(ec_key()).sign()).await.assert_ok();
    // The server stalls every client for 500 ms; the 50 ms timeout answers first.
    assert_eq!(redis.command(&["CLIENT", "PAUSE", "500", "ALL"]), "OK");
    let answer = a.bearer(&token(ec_key()).sign()).await;
    answer.assert_unavailable(RETRY_AFTER);
    // The pause ends by itself; so does the outage.
    eventually_within(Duration::from_secs(10), "recovery", async || {
        a.bearer(&token(ec_key()).sign()).await.status == StatusCode::OK
    })
    .await;
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_redis_command_may_take_as_long_as_the_configured_timeout() {
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore};
    let redis = RedisServer::start().await;
    let connection = RedisConnection::open(&redis.url())
        .expect("url")
        .timeout(Duration::from_secs(5));
    let server = start(
        config()
            .single_use_tokens(true)
            .replay_store(RedisReplayStore::new(connection)),
    )
    .await;
    server.bearer(&token(ec_key()).sign()).await.assert_ok();
    // A stall longer than the Redis client's own default response timeout (500 ms) but
    // well inside the configured 5 s: the request waits and passes.
    assert_eq!(redis.command(&["CLIENT", "PAUSE", "900", "ALL"]), "OK");
    server.bearer(&token(ec_key()).sign()).await.assert_ok();
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn on_redis_the_latest_subject_revocation_wins_whatever_the_order() {
    use tower_jwt_auth::state::{
        RedisConnection, RedisRevocationList, Revocation, RevocationList, StateKey,
    };
    let redis = RedisServer::start().await;
    let list = RedisRevocationList::new(RedisConnection::open(&redis.url()).expect("url"));
    let subject = StateKey::subject(ISSUER, "zed");
    let day = Duration::from_secs(86_400);
    list.revoke(Revocation::Subject(subject, 2_000_000), day)
        .await
        .expect("revoke");
    // A replica with a clock behind records an earlier instant afterwards.
    list.revoke(Revocation::Subject(subject, 1_000_000), day)
        .await
        .expect("revoke");
    let status = list.status(None, Some(subject)).await.expect("status");
    assert_eq!(status.subject_since, Some(2_000_000));
    list.revoke(Revocation::Subject(subject, 3_000_000), day)
        .await
        .expect("revoke");
    let status = list.status(None, Some(subject)).await.expect("status");
    assert_eq!(status.subject_since, Some(3_000_000));
}
