//! The key store on the request path: `KeyStore::current` while idle and while a refresh
//! swaps the key set in a loop, and the whole layer: static keys (`ours`), with the
//! verified-token cache (`ours-cached`), and remote keys, for RS256 and ES256; picking a
//! key by `kid` as the set grows (`keys/lookup`); the cache's hash (`cache/hash`); and
//! what each optional part adds to a cached request (`features/RS256-cached`).
//!
//! Run with `cargo bench --bench keys`. The layer's future is polled once with a no-op
//! waker and must be ready: the verified request path takes no lock and never awaits.

mod common;

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tower::{Layer, Service};
use tower_jwt_auth::api_key::{ApiKey, NewApiKey};
use tower_jwt_auth::cache::CacheOptions;
use tower_jwt_auth::introspection::{ClientAuth, Introspection};
use tower_jwt_auth::jwks::{KeyStore, RemoteJwks, RemoteOptions};
use tower_jwt_auth::testing::{Endpoint, MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// Polls a future once; the request path must finish without waiting.
fn ready_now<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the verified request path awaited"),
    }
}

fn bench_keys(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let issuer = runtime.block_on(MockIssuer::builder().key(TestKey::rsa()).start());
    let quiet = RemoteOptions::new()
        .http_client(client())
        .refresh_interval(Duration::from_secs(3600));
    let idle = runtime.block_on(async {
        let store = RemoteJwks::from_jwks_url(&issuer.jwks_url(), quiet.clone()).expect("store");
        assert!(store.wait_until_ready(Duration::from_secs(5)).await);
        store
    });

    // A second issuer whose keys are refetched back to back: `no-store` with a zero
    // lower bound makes the refresher swap in a new key set as fast as HTTP allows.
    let busy_issuer = runtime.block_on(MockIssuer::builder().key(TestKey::rsa()).start());
    busy_issuer.set_cache_control(Some("no-store".into()));
    let swapping = runtime.block_on(async {
        let options = RemoteOptions::new()
            .http_client(client())
            .max_age_bounds(Duration::ZERO, Duration::ZERO);
        let store = RemoteJwks::from_jwks_url(&busy_issuer.jwks_url(), options).expect("store");
        assert!(store.wait_until_ready(Duration::from_secs(5)).await);
        store
    });

    let mut group = c.benchmark_group("keys/current");
    group.bench_function("idle", |b| b.iter(|| black_box(idle.current())));
    let (swaps_before, started) = (busy_issuer.requests(Endpoint::Jwks), Instant::now());
    group.bench_function("while-swapping", |b| {
        b.iter(|| black_box(swapping.current()))
    });
    let swaps = busy_issuer.requests(Endpoint::Jwks) - swaps_before;
    group.finish();
    #[allow(clippy::cast_precision_loss)]
    let rate = swaps as f64 / started.elapsed().as_secs_f64();
    println!("key-set swaps during keys/current/while-swapping: {swaps} ({rate:.0}/s)");

    // The full layer, static keys against remote keys loaded by discovery.
    let token = issuer.token().subject("bench").permissions(["read"]).sign();
    let static_cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .key_set(issuer.active_key().key_set())
        .build()
        .expect("config");
    let remote_cfg = runtime.block_on(async {
        let cfg = JwtAuthConfig::builder()
            .issuer(issuer.issuer())
            .audience(issuer.audience())
            .remote_options(quiet)
            .build()
            .expect("config");
        assert!(cfg.wait_until_ready(Duration::from_secs(5)).await);
        cfg
    });
    let mut group = c.benchmark_group("layer/RS256");
    let cached_cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .key_set(issuer.active_key().key_set())
        .cache(CacheOptions::new())
        .build()
        .expect("config");
    let layers = [
        ("ours", static_cfg),
        ("ours-cached", cached_cfg),
        ("remote-keys", remote_cfg),
    ];
    for (name, cfg) in layers {
        bench_layer(&mut group, name, cfg, &token, &runtime);
    }
    // An API key beside the same issuer: looked up by its digest, its record kept.
    let key = NewApiKey::generate("sk_bench_");
    let key_cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .key_set(issuer.active_key().key_set())
        .api_key_prefix("sk_bench_")
        .api_key(ApiKey::new("bench-client", key.digest()).permissions(["read"]))
        .build()
        .expect("config");
    bench_layer(&mut group, "api-key", key_cfg, key.key(), &runtime);
    group.finish();

    // ES256, static keys, with and without the cache.
    let ec = TestKey::ec_p256();
    let ec_token = TokenBuilder::new(&ec)
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .subject("bench")
        .permissions(["read"])
        .sign();
    let mut group = c.benchmark_group("layer/ES256");
    for (name, cache) in [("ours", None), ("ours-cached", Some(CacheOptions::new()))] {
        let mut builder = JwtAuthConfig::builder()
            .issuer(issuer.issuer())
            .audience(issuer.audience())
            .key_set(ec.key_set());
        if let Some(cache) = cache {
            builder = builder.cache(cache);
        }
        bench_layer(
            &mut group,
            name,
            builder.build().expect("config"),
            &ec_token,
            &runtime,
        );
    }
    group.finish();

    // An opaque token: introspected once, then served from the introspection cache.
    issuer.add_client("bench-api", "s3cret", Vec::<String>::new());
    let opaque = issuer.opaque(&issuer.token().subject("bench").permissions(["read"]));
    let introspection = Introspection::new("bench-api", ClientAuth::client_secret_basic("s3cret"))
        .cache_ttl(Duration::from_secs(3600));
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .key_set(issuer.active_key().key_set())
        .http_client(client())
        .introspection(introspection)
        .build()
        .expect("config");
    let inner = tower::service_fn(|_req: Request<String>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
    });
    let mut service = JwtAuthLayer::new(cfg).layer(inner);
    let request = || {
        Request::get("/")
            .header("authorization", format!("Bearer {opaque}"))
            .body(String::new())
            .expect("request")
    };
    let first = runtime
        .block_on(async { service.call(request()).await })
        .expect("response");
    assert_eq!(first.status(), 200);
    let mut group = c.benchmark_group("layer/opaque");
    group.bench_function("cached", |b| {
        b.iter_batched(
            request,
            |req| ready_now(service.call(req)),
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
    println!(
        "token sizes: RS256 {} bytes, ES256 {} bytes",
        token.len(),
        ec_token.len()
    );
}

/// The full layer around a no-op service, polled once per request.
fn bench_layer(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    cfg: JwtAuthConfig,
    token: &str,
    runtime: &tokio::runtime::Runtime,
) {
    let inner = tower::service_fn(|_req: Request<String>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
    });
    let mut service = JwtAuthLayer::new(cfg).layer(inner);
    let request = || {
        Request::get("/")
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .expect("request")
    };
    let _guard = runtime.enter();
    let response = ready_now(service.call(request())).expect("response");
    assert_eq!(response.status(), 200);
    group.bench_function(name, |b| {
        b.iter_batched(
            request,
            |req| ready_now(service.call(req)),
            criterion::BatchSize::SmallInput,
        );
    });
}

/// Picking the key by `kid` as the set grows: an HS256 token signed by the set's last
/// key, verified through `Verifier::verify` (HMAC is cheap, so the lookup shows).
fn bench_lookup(c: &mut Criterion) {
    use tower_jwt_auth::Verifier;
    use tower_jwt_auth::jwks::KeySet;
    let mut group = c.benchmark_group("keys/lookup");
    for size in [1usize, 10, 100, 1000] {
        let keys: Vec<TestKey> = (0..size)
            .map(|i| TestKey::hmac().with_kid(format!("key-{i}")))
            .collect();
        let set = keys
            .iter()
            .fold(KeySet::new(), |set, key| set.merge(key.key_set()));
        let verifier = Verifier::new(
            JwtAuthConfig::builder()
                .issuer("https://idp.example.com/")
                .audience("api")
                .key_set(set)
                .build()
                .expect("config"),
        );
        let token = TokenBuilder::new(&keys[size - 1])
            .issuer("https://idp.example.com/")
            .audience("api")
            .sign();
        verifier
            .verify::<serde_json::Value>(&token)
            .expect("verifies");
        group.bench_function(size.to_string(), |b| {
            b.iter(|| verifier.verify::<serde::de::IgnoredAny>(black_box(&token)));
        });
    }
    group.finish();
}

/// Hashes that could key the verified-token cache, over the whole of a realistic RS256
/// token (the cache itself hashes only its length and two ends): SHA-256 (aws-lc),
/// the standard library's keyed SipHash-1-3, and foldhash; plus the full-token
/// comparison a hit needs when the hash is not a collision-resistant digest.
fn bench_hash(c: &mut Criterion) {
    use std::hash::BuildHasher;
    let token = common::access_token(&TestKey::rsa());
    let copy = token.clone();
    let mut group = c.benchmark_group("cache/hash");
    group.bench_function("sha256", |b| {
        b.iter(|| {
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&token).as_bytes())
        });
    });
    let sip = std::hash::RandomState::new();
    group.bench_function("siphash13", |b| {
        b.iter(|| sip.hash_one(black_box(token.as_bytes())))
    });
    let fold = foldhash::quality::RandomState::default();
    group.bench_function("foldhash", |b| {
        b.iter(|| fold.hash_one(black_box(token.as_bytes())))
    });
    group.bench_function("compare", |b| {
        b.iter(|| black_box(&token) == black_box(&copy))
    });
    group.finish();
    println!("token: {} bytes", token.len());
}

/// What each optional part of the request path adds, on the cached path (verification
/// skipped, so the part's own cost shows): `off` has none of them, each other bench
/// turns one on. Single use cannot run here (a token passes once); `benches/state.rs`
/// measures its store, and DPoP.
fn bench_features(c: &mut Criterion) {
    use tower_jwt_auth::rules::Exemption;
    use tower_jwt_auth::state::MemoryRevocationList;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let key = TestKey::rsa();
    let token = common::access_token(&key);
    let base = || {
        JwtAuthConfig::builder()
            .issuer("https://idp.example.com/")
            .audience("https://api.example.com")
            .key_set(key.key_set())
            .cache(CacheOptions::new())
    };
    let client = "wLcV3Ot3Yh2T3wgBl2QxtmsD9Pj4k0sJ";
    let configs = [
        ("off", base()),
        ("require-claim", base().require_claim("azp", client)),
        ("allowed-clients", base().allowed_clients([client])),
        (
            "exemption-miss",
            base().exempt(Exemption::prefix("/public/")),
        ),
        ("forward-claim", base().forward_claim("sub", "x-jwt-sub")),
        (
            "revocation-memory",
            base().revocation_list(MemoryRevocationList::default()),
        ),
    ];
    let mut group = c.benchmark_group("features/RS256-cached");
    for (name, builder) in configs {
        bench_layer(
            &mut group,
            name,
            builder.build().expect("config"),
            &token,
            &runtime,
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_keys,
    bench_lookup,
    bench_hash,
    bench_features
);
criterion_main!(benches);
