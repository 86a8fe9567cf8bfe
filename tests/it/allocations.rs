//! Allocation counts on the request path, with a counting global allocator: key handling
//! allocates nothing; what remains is the decoded token and the claims the handler gets.
//! The counter (the `allocation-counter` crate) counts the measuring thread only.

use serde::de::IgnoredAny;
use tower_jwt_auth::jwks::{KeyStore, StaticKeys};
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, StandardClaims, Verifier};

fn count<R>(f: impl Fn() -> R) -> u64 {
    let _ = f(); // warm up lazies
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            std::hint::black_box(f());
        }
    });
    info.count_total / 100
}

/// A token with the claims of a common access token.
fn token(key: &TestKey) -> String {
    TokenBuilder::new(key)
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .subject("auth0|5f7c8ec7c33c6c004bbafe82")
        .scope("read:documents write:documents")
        .sign()
}

/// Allocations of one verification into `StandardClaims` and `Permissions`.
fn count_standard(verifier: &Verifier, token: &str) -> u64 {
    count(|| {
        let verified = verifier
            .verify_token::<StandardClaims>(token)
            .expect("valid");
        assert!(!verified.permissions().is_empty());
        verified
    })
}

#[test]
fn key_handling_allocates_nothing_and_the_totals_are_small() {
    let key = TestKey::rsa();
    let keys = StaticKeys::new(key.key_set());
    assert_eq!(count(|| keys.current()), 0, "reading the key set");

    let cfg = JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .key_set(key.key_set())
        .build()
        .expect("config");
    let verifier = Verifier::new(cfg);
    let token = token(&key);
    // Up to and including the signature check (a forged token stops right after it):
    // nothing. The header and signature are decoded into a per-thread scratch buffer;
    // key lookup and verification allocate nothing.
    let forged = TokenBuilder::new(&key)
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .signed_by_foreign_key()
        .sign();
    let up_to_signature = count(|| verifier.verify::<IgnoredAny>(&forged).expect_err("forged"));
    assert_eq!(up_to_signature, 0);
    let ignored = count(|| verifier.verify::<IgnoredAny>(&token).expect("valid"));
    let standard = count_standard(&verifier, &token);
    println!(
        "allocations per verification: {up_to_signature} up to the signature, {ignored} in all \
         with the claims ignored, {standard} building StandardClaims and Permissions"
    );
    // The rest: the captured claims, where the permission claims are, the kept payload
    // and the `Arc` of the token's record; `StandardClaims` and the permission set add
    // their strings (a verifier makes both, a layer only when they are read).
    assert!(ignored <= 6, "{ignored}");
    assert!(standard <= ignored + 16, "{standard}");
}

/// The whole layer around a no-op service, polled once per request, by stage: the
/// service alone, the layer verifying, and the layer answering from its cache.
#[test]
fn the_layer_adds_little_to_the_verification() {
    use std::convert::Infallible;
    use std::future::Future as _;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use http::{Request, Response, StatusCode};
    use tower::Layer as _;
    use tower_jwt_auth::JwtAuthLayer;
    use tower_jwt_auth::cache::CacheOptions;

    let key = TestKey::rsa();
    let token = token(&key);
    let bearer = format!("Bearer {token}");
    let config = |cache: bool| {
        let builder = JwtAuthConfig::builder()
            .issuer("https://idp.example.com/")
            .audience("https://api.example.com")
            .key_set(key.key_set());
        if cache {
            builder.cache(CacheOptions::new())
        } else {
            builder
        }
        .build()
        .expect("config")
    };
    let inner = tower::service_fn(|_req: Request<String>| {
        std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
    });
    let request = || {
        Request::get("/")
            .header("authorization", bearer.as_str())
            .body(String::new())
            .expect("request")
    };
    // Each request is built before the count starts.
    let per_request = |service: &mut dyn FnMut(Request<String>) -> StatusCode| {
        let _ = service(request());
        let requests: Vec<_> = (0..100).map(|_| request()).collect();
        let info = allocation_counter::measure(|| {
            for request in requests {
                assert_eq!(service(request), StatusCode::OK);
            }
        });
        info.count_total / 100
    };
    fn poll_once<S: tower::Service<Request<String>, Response = Response<B>>, B>(
        service: &mut S,
        request: Request<String>,
    ) -> StatusCode {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(service.call(request)).poll(&mut cx) {
            Poll::Ready(Ok(response)) => response.status(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    let mut bare = inner;
    let alone = per_request(&mut |request| poll_once(&mut bare, request));
    let mut layered = JwtAuthLayer::new(config(false)).layer(inner);
    let verifying = per_request(&mut |request| poll_once(&mut layered, request));
    let mut layered = JwtAuthLayer::new(config(true)).layer(inner);
    let cached = per_request(&mut |request| poll_once(&mut layered, request));
    // A handler that reads the subject and the permissions.
    let reading = tower::service_fn(|req: Request<String>| {
        let auth = req.extensions().get::<tower_jwt_auth::Authentication>();
        let claims = auth.and_then(|auth| auth.claims::<StandardClaims>());
        let read = claims.and_then(|c| c.sub.as_deref()).is_some()
            && auth.is_some_and(|auth| auth.permissions().contains("read:documents"));
        let status = if read { 200 } else { 500 };
        let mut response = Response::new(String::new());
        *response.status_mut() = StatusCode::from_u16(status).expect("status");
        std::future::ready(Ok::<_, Infallible>(response))
    });
    let mut layered = JwtAuthLayer::new(config(true)).layer(reading);
    let cached_reading = per_request(&mut |request| poll_once(&mut layered, request));
    let verifier = Verifier::new(config(false));
    let ignored = count(|| verifier.verify::<IgnoredAny>(&token).expect("valid"));
    let verification = count_standard(&verifier, &token);
    println!(
        "allocations per request: {alone} for the service alone, {verifying} through the \
         layer (a verification ignoring the claims: {ignored}; making StandardClaims and \
         the permissions: {verification}), {cached} through the layer on a cache hit, \
         {cached_reading} on a cache hit whose handler reads the subject and permissions"
    );
    // The layer's own four: the extension map of the request (its box and its table)
    // and the boxed `Authentication` in it, and the token's header value kept for
    // relaying (a header parsed by hyper shares its buffer already; one built from a
    // `String`, as here, is copied once into a shared one). A `StandardClaims` layer
    // makes the claims only when they are read, so with a handler that reads nothing it
    // pays what a verification ignoring the claims pays.
    assert!(verifying <= alone + ignored + 4, "{verifying}");
    // A cache hit pays the same four and nothing else, and the claims and permissions
    // of a cached token are made once in its life, not once per request.
    assert!(cached <= alone + 4, "{cached}");
    assert_eq!(cached_reading, cached, "claims made again on a cache hit");
}

/// What the verified-token cache keeps per token, measured: the heap bytes still held
/// after a thousand distinct tokens went through the layer, divided by a thousand. The
/// claims (`StandardClaims`), the permissions, the token text and the map's own slot
/// are all in it; the request's own allocations are freed by then.
#[test]
fn bytes_per_cached_token() {
    use std::convert::Infallible;
    use std::future::Future as _;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use http::{Request, Response};
    use tower::{Layer as _, Service as _};
    use tower_jwt_auth::JwtAuthLayer;
    use tower_jwt_auth::cache::CacheOptions;

    const TOKENS: usize = 1000;
    let key = TestKey::rsa();
    let first = token(&key);
    let builder = TokenBuilder::new(&key)
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .subject("auth0|5f7c8ec7c33c6c004bbafe82")
        .scope("read:documents write:documents");
    let headers: Vec<String> = (0..TOKENS)
        .map(|n| {
            let token = builder.clone().claim("jti", format!("jti-{n}")).sign();
            format!("Bearer {token}")
        })
        .collect();
    let request = |authorization: &str| {
        Request::get("/")
            .header("authorization", authorization)
            .body(String::new())
            .expect("request")
    };
    let config = JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .key_set(key.key_set())
        .cache(CacheOptions::new().max_entries(4 * TOKENS))
        .build()
        .expect("config");
    // The handler reads the claims and the permissions, so the cache holds both made.
    let inner = tower::service_fn(|req: Request<String>| {
        let auth = req.extensions().get::<tower_jwt_auth::Authentication>();
        let subject = auth.and_then(|auth| auth.claims::<StandardClaims>()?.sub.clone());
        let permissions = auth.map_or(0, |auth| auth.permissions().len());
        assert!(
            subject.is_some() && permissions == 2,
            "claims and permissions made"
        );
        std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
    });
    let mut service = JwtAuthLayer::new(config).layer(inner);
    let mut call = |request: Request<String>| {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(service.call(request)).poll(&mut cx) {
            Poll::Ready(Ok(response)) => assert_eq!(response.status(), 200),
            _ => panic!("the request was not answered at once"),
        }
    };
    // Warm the lazies (the scratch buffer, the shards) with another token.
    call(request(&format!("Bearer {first}")));
    let token_len = headers[0].len() - "Bearer ".len();
    // Requests are built and dropped inside the count: what stays is the cache's.
    let info = allocation_counter::measure(|| {
        for authorization in &headers {
            call(request(authorization));
        }
    });
    let per_token = info.bytes_current / i64::try_from(TOKENS).unwrap_or(1);
    println!("verified-token cache: {per_token} bytes per cached token ({token_len}-byte token)");
    // The token text and the claims dominate; the bound keeps an eye on regressions.
    assert!(
        per_token > i64::try_from(token_len).unwrap_or(0),
        "{per_token}"
    );
    assert!(per_token < 4096, "{per_token}");
}
