//! The verified-token cache over real HTTP: hits keep the time checks, and a key-set
//! change ends every entry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::support::{Server, client, eventually};
use http::StatusCode;
use tower_jwt_auth::cache::CacheOptions;
use tower_jwt_auth::jwks::RemoteOptions;
use tower_jwt_auth::testing::{Endpoint, MockIssuer, TestKey};
use tower_jwt_auth::time::ManualClock;
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};

#[tokio::test]
async fn cached_tokens_are_still_checked_for_time_on_every_hit() {
    let issuer = MockIssuer::start().await;
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .http_client(client())
        .clock(clock.clone())
        .cache(CacheOptions::new())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let token = issuer.token().subject("cached").expires_in_secs(120).sign();
    for _ in 0..3 {
        let answer = server.bearer(&token).await;
        answer.assert_ok();
        assert_eq!(answer.body, "cached");
    }
    clock.advance(Duration::from_secs(200)); // past exp + leeway
    server
        .bearer(&token)
        .await
        .assert_invalid_token("token expired");
    // A tampered twin of a cached token is not a hit.
    clock.rewind(Duration::from_secs(200));
    server
        .bearer(&issuer.token().tampered().sign())
        .await
        .assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn a_key_set_change_ends_every_cached_entry() {
    let issuer = MockIssuer::start().await;
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .remote_options(
            RemoteOptions::new()
                .http_client(client())
                .refresh_interval(Duration::from_millis(100))
                .max_age_bounds(Duration::from_millis(50), Duration::from_secs(60)),
        )
        .cache(CacheOptions::new())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let token = issuer.token().sign();
    server.bearer(&token).await.assert_ok();
    server.bearer(&token).await.assert_ok();
    let old = issuer.active_key().kid().to_owned();
    issuer.rotate();
    issuer.remove_key(&old);
    let seen = issuer.requests(Endpoint::Jwks);
    let refused = eventually("the cached token refused with its key gone", async || {
        let answer = server.bearer(&token).await;
        (answer.status == StatusCode::UNAUTHORIZED).then_some(answer)
    })
    .await;
    refused.assert_invalid_token("unknown signing key");
    assert!(issuer.requests(Endpoint::Jwks) > seen);
}

#[tokio::test]
async fn key_set_churn_never_revives_a_removed_keys_entry() {
    let old = TestKey::ec_p256();
    let issuer = MockIssuer::builder().key(old.clone()).start().await;
    let options = RemoteOptions::new()
        .http_client(client())
        .refresh_interval(Duration::from_millis(20))
        .max_age_bounds(Duration::from_millis(10), Duration::from_secs(1));
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .remote_options(options)
        .cache(CacheOptions::new())
        .build()
        .expect("config");
    let server = Server::start(JwtAuthLayer::new(cfg)).await;
    let token = issuer.token().sign();
    server.bearer(&token).await.assert_ok(); // verified and cached
    issuer.set_active(TestKey::ec_p256());
    issuer.remove_key(old.kid());
    let extra = TestKey::ec_p256();
    // Each round publishes another document, so each refresh swaps in a new set and
    // frees the one before: the freed memory is handed out again and again.
    for round in 0..40 {
        if round % 2 == 0 {
            issuer.add_key(extra.clone());
        } else {
            issuer.remove_key(extra.kid());
        }
        let seen = issuer.requests(Endpoint::Jwks);
        eventually("two refreshes", async || {
            issuer.requests(Endpoint::Jwks) >= seen + 2
        })
        .await;
        let answer = server.bearer(&token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "round {round}");
        answer.assert_invalid_token("unknown signing key");
    }
}
