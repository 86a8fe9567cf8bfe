//! A fixed amount of verification work for instruction counting under callgrind
//! (`scripts/instructions.sh`): instruction counts do not drift with machine noise.
//!
//! Usage: `instructions <alg> <iterations>`, alg one of RS256, ES256, EdDSA, HS256,
//! `floor` (bare aws-lc-rs RS256 check with a parsed key; `floor-ES256`, `floor-EdDSA`
//! for the others), or the whole layer around a
//! no-op service with RS256: `layer`, `layer-cached`, and `no-auth` (the same service
//! and requests without the layer, so its cost can be subtracted); `layer-subject` and
//! `layer-cached-subject` with a service that reads the subject from the claims. Keys and tokens are made
//! before the loop; the script subtracts two runs to cancel that setup. The RSA key is a
//! fixed test key (`fixtures/rsa-2048-test-key.json`), never used for anything real.

mod common;

use std::convert::Infallible;
use std::future::Future as _;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response};
use tower::{Layer as _, Service as _};
use tower_jwt_auth::cache::CacheOptions;
use tower_jwt_auth::testing::TestKey;
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer, StandardClaims, Verifier};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let alg = args.first().map_or("RS256", String::as_str);
    let iterations: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let key = match alg.trim_start_matches("floor-") {
        "ES256" => TestKey::ec_p256(),
        "EdDSA" => TestKey::ed25519(),
        "HS256" => TestKey::hmac(),
        // A fixed RSA key: generating one costs a random number of instructions.
        _ => {
            let text = include_str!("fixtures/rsa-2048-test-key.json");
            let json = serde_json::from_str(text).unwrap_or_default();
            TestKey::import_private(&json).unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let token = common::access_token(&key);
    if alg.starts_with("floor") {
        let parsed = floor_key(&key);
        let (input, sig) = token.rsplit_once('.').unwrap_or_default();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        for _ in 0..iterations {
            black_box(parsed.verify_sig(black_box(input.as_bytes()), black_box(&sig))).ok();
        }
        return;
    }
    let mut builder = JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .key_set(key.key_set());
    if alg.starts_with("layer-cached") {
        builder = builder.cache(CacheOptions::new());
    }
    let Ok(cfg) = builder.build() else {
        panic!("config");
    };
    if alg.starts_with("layer") || alg == "no-auth" {
        layer(
            cfg,
            &token,
            iterations,
            alg == "no-auth",
            alg.ends_with("-subject"),
        );
        return;
    }
    let verifier = Verifier::new(cfg);
    for _ in 0..iterations {
        assert!(black_box(verifier.verify::<StandardClaims>(black_box(&token))).is_ok());
    }
}

/// The public key of `key`, parsed by aws-lc-rs as a floor check uses it.
fn floor_key(key: &TestKey) -> ParsedPublicKey {
    let jwk = key.public_jwk();
    let part = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().unwrap_or_default())
            .unwrap_or_default()
    };
    let parsed = match jwk["kty"].as_str() {
        Some("EC") => {
            let point = [&[4u8][..], &part("x"), &part("y")].concat();
            ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
        }
        Some("OKP") => ParsedPublicKey::new(&signature::ED25519, part("x")),
        _ => RsaPublicKeyComponents {
            n: &part("n")[..],
            e: &part("e")[..],
        }
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256),
    };
    parsed.unwrap_or_else(|e| panic!("{e}"))
}

/// Requests through the layer (or, with `bare`, straight to the service), each polled
/// once: the verified path is ready at once. With `subject`, the service reads the
/// subject from the claims the layer produced.
fn layer(cfg: JwtAuthConfig, token: &str, iterations: usize, bare: bool, subject: bool) {
    let inner = tower::service_fn(move |req: Request<String>| {
        if subject {
            let auth = req.extensions().get::<tower_jwt_auth::Authentication>();
            let sub = auth.and_then(|auth| auth.claims::<StandardClaims>()?.sub.as_deref());
            assert!(black_box(sub).is_some(), "the subject");
        }
        std::future::ready(Ok::<_, Infallible>(Response::new(String::new())))
    });
    let mut layered = JwtAuthLayer::new(cfg).layer(inner);
    let mut bare_service = inner;
    let bearer = format!("Bearer {token}");
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..iterations {
        let request = Request::get("/")
            .header("authorization", bearer.as_str())
            .body(String::new())
            .unwrap_or_default();
        let status = if bare {
            ready(pin!(bare_service.call(request)).poll(&mut cx)).map(|r| r.status())
        } else {
            ready(pin!(layered.call(request)).poll(&mut cx)).map(|r| r.status())
        };
        assert_eq!(status, Some(http::StatusCode::OK));
    }
}

fn ready<T, E>(poll: Poll<Result<T, E>>) -> Option<T> {
    match poll {
        Poll::Ready(Ok(value)) => Some(black_box(value)),
        _ => None,
    }
}
