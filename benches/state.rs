//! The state step's cost per request: the replay check (a first use, `insert_once` of a
//! new key) and the revocation check (a hit and a miss), in memory and on a real
//! `redis-server` on loopback; the layer's cached path with and without a revocation
//! list; and a DPoP request next to a Bearer one (`layer/ES256/ours` and
//! `layer/ES256/dpop`, no cache: the proof is new on every request).
//!
//! Run with `cargo bench --bench state`. The Redis groups start their own server on a
//! free loopback port and are skipped, with a message, when `redis-server` is missing.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::net::TcpListener;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, Service};
use tower_jwt_auth::cache::CacheOptions;
use tower_jwt_auth::state::{
    MemoryReplayStore, MemoryRevocationList, RedisConnection, RedisReplayStore,
    RedisRevocationList, ReplayStore, Revocation, RevocationList, StateKey,
};
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer};

const ISSUER: &str = "https://idp.example.com/";
const TTL: Duration = Duration::from_secs(3600);

/// Polls a future once; the in-memory state step must finish without waiting.
fn ready_now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the in-memory path awaited"),
    }
}

/// A `redis-server` on a free loopback port, killed on drop.
struct Redis(Child, u16);

impl Redis {
    fn start() -> Option<Self> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self(child, port))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keys(n: u64, tag: &str) -> Vec<StateKey> {
    (0..n)
        .map(|i| StateKey::token(ISSUER, &format!("{tag}-{i}")))
        .collect()
}

/// `iters` first uses, timed alone: the keys are made before the clock starts.
fn first_uses(store: &dyn ReplayStore, runtime: &tokio::runtime::Runtime, iters: u64) -> Duration {
    let keys = keys(iters, "first");
    runtime.block_on(async {
        let start = Instant::now();
        for key in keys {
            assert!(store.insert_once(key, TTL).await.expect("store answers"));
        }
        start.elapsed()
    })
}

fn bench_replay(c: &mut Criterion, runtime: &tokio::runtime::Runtime, redis: Option<&Redis>) {
    let mut group = c.benchmark_group("replay");
    group.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            // Room to spare: the bound is per shard, and keys do not spread perfectly.
            let room = usize::try_from(iters).unwrap_or(usize::MAX / 4);
            let store = MemoryReplayStore::new(room.saturating_mul(2).saturating_add(4096));
            first_uses(&store, runtime, iters)
        });
    });
    if let Some(redis) = redis {
        let store = runtime.block_on(async {
            let connection = RedisConnection::open(&format!("redis://127.0.0.1:{}", redis.1))
                .expect("url")
                .timeout(Duration::from_secs(1))
                .prefix("bench:");
            RedisReplayStore::new(connection)
        });
        let mut round = 0u64;
        group.bench_function("redis", |b| {
            b.iter_custom(|iters| {
                round += 1;
                let keys = keys(iters, &format!("redis-{round}"));
                runtime.block_on(async {
                    let start = Instant::now();
                    for key in keys {
                        assert!(store.insert_once(key, TTL).await.expect("redis answers"));
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

fn bench_revocation(c: &mut Criterion, runtime: &tokio::runtime::Runtime, redis: Option<&Redis>) {
    let revoked = StateKey::token(ISSUER, "revoked");
    let subject = StateKey::subject(ISSUER, "someone");
    let other = StateKey::token(ISSUER, "fine");
    let other_subject = StateKey::subject(ISSUER, "someone-else");
    let mut lists: Vec<(&str, Box<dyn RevocationList>)> = vec![(
        "memory",
        Box::new(MemoryRevocationList::default()) as Box<dyn RevocationList>,
    )];
    if let Some(redis) = redis {
        let list = runtime.block_on(async {
            let connection = RedisConnection::open(&format!("redis://127.0.0.1:{}", redis.1))
                .expect("url")
                .timeout(Duration::from_secs(1))
                .prefix("bench:");
            RedisRevocationList::new(connection)
        });
        lists.push(("redis", Box::new(list)));
    }
    let mut group = c.benchmark_group("revocation");
    for (name, list) in &lists {
        runtime.block_on(async {
            list.revoke(Revocation::Token(revoked), TTL)
                .await
                .expect("revoke");
            // Many other entries, so that a lookup is not in an empty map.
            for key in keys(10_000, "filler") {
                list.revoke(Revocation::Token(key), TTL)
                    .await
                    .expect("revoke");
            }
        });
        group.bench_function(format!("{name}/hit"), |b| {
            b.iter(|| {
                let status = runtime
                    .block_on(list.status(Some(revoked), Some(subject)))
                    .expect("status");
                assert!(black_box(status).token);
            });
        });
        group.bench_function(format!("{name}/miss"), |b| {
            b.iter(|| {
                let status = runtime
                    .block_on(list.status(Some(other), Some(other_subject)))
                    .expect("status");
                assert!(!black_box(status).token);
            });
        });
    }
    group.finish();
}

/// The layer's cached request path, with and without the revocation check.
fn bench_layer(c: &mut Criterion) {
    let key = TestKey::ec_p256().with_kid("ec");
    let token = TokenBuilder::new(&key)
        .issuer(ISSUER)
        .audience("api")
        .sign();
    let base = || -> JwtAuthConfigBuilder {
        JwtAuthConfig::builder()
            .issuer(ISSUER)
            .audience("api")
            .key_set(key.key_set())
            .cache(CacheOptions::new())
    };
    let mut group = c.benchmark_group("layer/ES256");
    for (name, config) in [
        ("cached", base()),
        (
            "cached-revocation-memory",
            base().revocation_list(MemoryRevocationList::default()),
        ),
    ] {
        let layer = JwtAuthLayer::new(config.build().expect("config"));
        let mut service = layer.layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
        let request = || {
            Request::get("/")
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .expect("request")
        };
        let response = ready_now(service.call(request())).expect("infallible");
        assert_eq!(response.status(), 200);
        group.bench_function(name, |b| {
            b.iter_batched(
                request,
                |req| ready_now(service.call(req)).expect("infallible"),
                criterion::BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// A Bearer request and a DPoP request through the same layer, without the cache; the
/// proofs are signed before the clock starts, one per request.
fn bench_dpop(c: &mut Criterion) {
    use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
    use tower_jwt_auth::testing::DpopProof;
    let issuer_key = TestKey::ec_p256().with_kid("ec");
    let client_key = TestKey::ec_p256();
    let config = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience("api")
        .key_set(issuer_key.key_set())
        .dpop(DpopOptions::new(DpopMode::Allowed).public_base_url("https://api.example.test"))
        .replay_store(MemoryReplayStore::new(50_000_000))
        .build()
        .expect("config");
    let layer = JwtAuthLayer::new(config);
    let mut service = layer.layer(tower::service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let mint = || {
        TokenBuilder::new(&issuer_key)
            .issuer(ISSUER)
            .audience("api")
    };
    let bearer = mint().sign();
    let bound = mint().dpop_bound(&client_key).sign();
    let bearer_request = || {
        Request::get("/documents")
            .header("authorization", format!("Bearer {bearer}"))
            .body(())
            .expect("request")
    };
    let dpop_request = || {
        let proof = DpopProof::new(&client_key, "GET", "https://api.example.test/documents")
            .token(&bound)
            .sign();
        Request::get("/documents")
            .header("authorization", format!("DPoP {bound}"))
            .header("dpop", proof)
            .body(())
            .expect("request")
    };
    for request in [bearer_request(), dpop_request()] {
        let response = ready_now(service.call(request)).expect("infallible");
        assert_eq!(response.status(), 200);
    }
    let mut group = c.benchmark_group("layer/ES256");
    // The floor a DPoP request adds to: one ES256 signature check with a parsed key.
    let proof = DpopProof::new(&client_key, "GET", "https://api.example.test/documents").sign();
    let (input, signature) = proof.rsplit_once('.').expect("three segments");
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .expect("base64url");
    let jwk = client_key.public_jwk();
    let coordinate = |name: &str| {
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            jwk[name].as_str().expect("coordinate"),
        )
        .expect("base64url")
    };
    let mut point = vec![4u8];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    let parsed = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        &point,
    )
    .expect("key");
    group.bench_function("signature-floor", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(input.as_bytes()), black_box(&signature))
                .expect("valid");
        });
    });
    group.bench_function("ours", |b| {
        b.iter_batched(
            bearer_request,
            |req| ready_now(service.call(req)).expect("infallible"),
            criterion::BatchSize::SmallInput,
        );
    });
    group.bench_function("dpop", |b| {
        b.iter_batched(
            dpop_request,
            |req| {
                let response = ready_now(service.call(req)).expect("infallible");
                assert_eq!(response.status(), 200);
                response
            },
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_state(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let redis = Redis::start();
    if redis.is_none() {
        eprintln!("redis-server is not installed: the Redis benches are skipped");
    }
    bench_replay(c, &runtime, redis.as_ref());
    bench_revocation(c, &runtime, redis.as_ref());
    bench_layer(c);
    bench_dpop(c);
}

criterion_group!(benches, bench_state);
criterion_main!(benches);
