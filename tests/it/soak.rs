//! Soak: sustained concurrent load on the `axum_server` example while the mock issuer
//! rotates keys and goes down and up. Ignored by default; `scripts/soak.sh` runs it with
//! a time bound (`SOAK_SECS`, default 300) and prints the report.
//!
//! The issuer publishes each new key 4 s before signing with it (longer than the
//! refresh interval and the unknown-kid cooldown, as real identity providers do), and its
//! JWKS endpoint is down for 1.5 s in every 6 s cycle. Every request carries a valid
//! token, so every rejection is a false rejection, and no answer may be a 5xx.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Server, client};
use tower_jwt_auth::jwks::RemoteOptions;
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer, TestKey};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};

fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    ok: AtomicU64,
    false_rejections: AtomicU64,
    server_errors: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long-running; run with scripts/soak.sh"]
async fn soak_under_rotation_and_outages() {
    let seconds: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let workers: usize = std::env::var("SOAK_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let issuer = Arc::new(MockIssuer::builder().key(TestKey::rsa()).start().await);
    let options = RemoteOptions::new()
        .http_client(client())
        .refresh_interval(Duration::from_secs(2))
        .unknown_kid_cooldown(Duration::from_secs(1))
        .max_age_bounds(Duration::from_millis(500), Duration::from_secs(60))
        .backoff(Duration::from_millis(100), Duration::from_millis(500));
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .remote_options(options)
        .build()
        .expect("config");
    assert!(
        cfg.wait_until_ready(Duration::from_secs(10)).await,
        "first load"
    );
    let server =
        Arc::new(Server::start_router(crate::axum_server::app(JwtAuthLayer::new(cfg))).await);

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let rotations = Arc::new(AtomicU64::new(0));

    // The issuer: a 6 s cycle of publish (t=0), activate (t=4), outage (t=4.5..6).
    let rotator = {
        let (issuer, stop, rotations) = (
            Arc::clone(&issuer),
            Arc::clone(&stop),
            Arc::clone(&rotations),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let next = TestKey::rsa();
                issuer.add_key(next.clone());
                let keep: Vec<String> = {
                    let keys = issuer.keys();
                    keys.iter()
                        .rev()
                        .take(3)
                        .map(|k| k.kid().to_owned())
                        .collect()
                };
                for key in issuer.keys() {
                    if !keep.iter().any(|k| k == key.kid()) {
                        issuer.remove_key(key.kid());
                    }
                }
                tokio::time::sleep(Duration::from_secs(4)).await;
                issuer.set_active(next);
                rotations.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                issuer.set_fault(Endpoint::Jwks, Fault::Down);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                issuer.clear_faults();
            }
        })
    };

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let (issuer, server, counts, stop) = (
            Arc::clone(&issuer),
            Arc::clone(&server),
            Arc::clone(&counts),
            Arc::clone(&stop),
        );
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                n += 1;
                let token = issuer
                    .token()
                    .subject(format!("worker-{worker}"))
                    .permissions(["read", "write"])
                    .sign();
                let answer = if n.is_multiple_of(4) {
                    let request = server
                        .client
                        .post(server.url("/documents"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"title": "soak"}));
                    crate::support::answer(request.send().await.expect("request")).await
                } else {
                    server.bearer_at("/documents", &token).await
                };
                counts.requests.fetch_add(1, Ordering::Relaxed);
                if answer.status.is_success() {
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                } else if answer.status.is_server_error() {
                    counts.server_errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("5xx: {answer:?}");
                } else {
                    counts.false_rejections.fetch_add(1, Ordering::Relaxed);
                    eprintln!("false rejection: {answer:?}");
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    stop.store(true, Ordering::Relaxed);
    rotator.abort();

    let elapsed = started.elapsed().as_secs_f64();
    let requests = counts.requests.load(Ordering::Relaxed);
    let false_rejections = counts.false_rejections.load(Ordering::Relaxed);
    let server_errors = counts.server_errors.load(Ordering::Relaxed);
    println!("soak report");
    println!("  duration          {elapsed:.0} s, {workers} concurrent clients");
    println!(
        "  requests          {requests} ({:.0}/s)",
        requests as f64 / elapsed
    );
    println!("  ok                {}", counts.ok.load(Ordering::Relaxed));
    println!("  false rejections  {false_rejections}");
    println!("  5xx               {server_errors}");
    println!("  key rotations     {}", rotations.load(Ordering::Relaxed));
    println!(
        "  JWKS requests     {} (outages included)",
        issuer.requests(Endpoint::Jwks)
    );
    println!(
        "  peak memory       {} KiB (VmHWM of the test process)",
        peak_memory_kib()
    );
    assert!(requests > 0);
    assert_eq!(false_rejections, 0);
    assert_eq!(server_errors, 0);
}
