//! One criterion run with every comparison side by side, so that every ratio comes from
//! measurements taken together on one machine:
//!
//! - `verify/{RS256,ES256,EdDSA,HS256}/{raw-jsonwebtoken,ours}` and, for the asymmetric
//!   algorithms, `verify/{alg}/aws-lc-floor`: the bare aws-lc-rs signature check with a
//!   parsed key and a decoded signature, the least any verifier can do;
//! - `layer/{RS256,ES256,EdDSA}/{no-auth,ours,ours-cached,jwt-authorizer,oauth-resource-server}`:
//!   one harness for every service, called in-process with `oneshot` on a no-op handler
//!   inside a tokio runtime; `no-auth` is the same handler with no layer, so the harness's
//!   own cost is measured; building the request is outside the measurement;
//! - `subject/{RS256,ES256,EdDSA}/{no-auth,ours,ours-cached,jwt-authorizer,oauth-resource-server}`:
//!   the same, with a handler that reads the subject from the claims each layer produced
//!   (ours: `Authentication::claims::<StandardClaims>`; jwt-authorizer: its `TokenData`;
//!   oauth-resource-server: its `AuthorizedToken`), so that work a layer defers until
//!   the claims are read is measured against layers that do it eagerly; `no-auth` is the
//!   no-op handler;
//! - `layer/RS256/tenants-{1,100,1000}`: our layer trusting an issuer template with that
//!   many allowed tenants, the token from the last one.
//!
//! Run from this directory: `cargo bench`, or `cargo bench -- RS256` for one algorithm.

use std::convert::Infallible;
use std::hint::black_box;

use aws_lc_rs_floor::floor;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use jwt_authorizer::{IntoLayer, JwtAuthorizer, Validation};
use tower::{Layer, ServiceExt};
use tower_jwt_auth::testing::{MockIssuer, TestKey, TokenBuilder, jwks};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer, StandardClaims, Verifier};
use tower_jwt_auth::cache::CacheOptions;

const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "https://api.example.com";

fn token(key: &TestKey) -> String {
    token_from(key, ISSUER)
}

/// The benches' access token, from `issuer`.
fn token_from(key: &TestKey, issuer: &str) -> String {
    TokenBuilder::new(key)
        .issuer(issuer)
        .audience(AUDIENCE)
        .subject("auth0|5f7c8ec7c33c6c004bbafe82")
        .scope("read:documents write:documents")
        .permissions(["read:documents", "write:documents"])
        .claim("azp", "wLcV3Ot3Yh2T3wgBl2QxtmsD9Pj4k0sJ")
        .claim("client_id", "wLcV3Ot3Yh2T3wgBl2QxtmsD9Pj4k0sJ")
        // RFC 9068 access tokens, which every crate here accepts.
        .typ("at+jwt")
        .sign()
}

fn config(key: &TestKey, cache: bool) -> JwtAuthConfig {
    let mut builder = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .key_set(key.key_set());
    if cache {
        builder = builder.cache(CacheOptions::new());
    }
    builder.build().expect("config")
}

fn raw_key(key: &TestKey) -> jsonwebtoken::DecodingKey {
    let jwk = key.public_jwk();
    let s = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
    match jwk["kty"].as_str() {
        Some("RSA") => jsonwebtoken::DecodingKey::from_rsa_components(&s("n"), &s("e")),
        Some("EC") => jsonwebtoken::DecodingKey::from_ec_components(&s("x"), &s("y")),
        Some("OKP") => jsonwebtoken::DecodingKey::from_ed_components(&s("x")),
        _ => Ok(jsonwebtoken::DecodingKey::from_secret(
            key.secret().unwrap_or_default(),
        )),
    }
    .expect("decoding key")
}

fn bench_verify(c: &mut Criterion) {
    for (name, key) in [
        ("RS256", TestKey::rsa()),
        ("ES256", TestKey::ec_p256()),
        ("EdDSA", TestKey::ed25519()),
        ("HS256", TestKey::hmac()),
    ] {
        let token = token(&key);
        let mut group = c.benchmark_group(format!("verify/{name}"));
        let decoding = raw_key(&key);
        let mut validation = jsonwebtoken::Validation::new(name.parse().expect("alg"));
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        assert!(jsonwebtoken::decode::<StandardClaims>(&token, &decoding, &validation).is_ok());
        group.bench_function("raw-jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<StandardClaims>(black_box(&token), &decoding, &validation)
            });
        });
        let verifier = Verifier::new(config(&key, false));
        assert!(verifier.verify::<StandardClaims>(&token).is_ok());
        group.bench_function("ours", |b| {
            b.iter(|| verifier.verify::<StandardClaims>(black_box(&token)))
        });
        if let Some(check) = floor(&key, &token) {
            assert!(check(), "the floor verifies");
            group.bench_function("aws-lc-floor", |b| b.iter(&check));
        }
        group.finish();
    }
}

type Body = axum07::body::Body;

/// The no-op handler every layer wraps.
async fn noop(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::empty()))
}

/// An answer that says whether the handler found the subject: 200, or 500 (which the
/// harness refuses to time).
fn found(subject: Option<&str>) -> Result<Response<Body>, Infallible> {
    let mut response = Response::new(Body::empty());
    match subject {
        Some(subject) => {
            black_box(subject);
        }
        None => *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR,
    }
    Ok(response)
}

/// Reads the subject from our layer's claims.
async fn ours_subject(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let auth = req.extensions().get::<tower_jwt_auth::Authentication>();
    let claims = auth.and_then(|auth| auth.claims::<StandardClaims>());
    found(claims.and_then(|claims| claims.sub.as_deref()))
}

/// Reads the subject from jwt-authorizer's claims.
async fn jwt_authorizer_subject(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let data = req
        .extensions()
        .get::<jsonwebtoken9::TokenData<serde_json::Value>>();
    found(data.and_then(|data| data.claims["sub"].as_str()))
}

/// Reads the subject from oauth-resource-server's token.
async fn oauth_resource_server_subject(
    req: Request<Body>,
) -> Result<Response<Body>, Infallible> {
    let token = req
        .extensions()
        .get::<oauth_resource_server::AuthorizedToken>();
    found(token.and_then(|token| token.subject.as_deref()))
}

/// A handler: an async function of the request, copied into each service.
trait Handler: Fn(Request<Body>) -> Self::Answer + Copy + Send + Sync + 'static {
    type Answer: std::future::Future<Output = Result<Response<Body>, Infallible>> + Send + 'static;
}

impl<F, A> Handler for F
where
    F: Fn(Request<Body>) -> A + Copy + Send + Sync + 'static,
    A: std::future::Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
{
    type Answer = A;
}

/// A request to `/` with this `Authorization` header.
fn bearer_request(authorization: &str) -> Request<Body> {
    Request::get("/")
        .header("authorization", authorization)
        .body(Body::empty())
        .expect("request")
}

/// Checks that `service` accepts the token, then times it with `oneshot`.
fn bench_service<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    service: S,
    request: &dyn Fn() -> Request<Body>,
) where
    S: tower::Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
{
    let status = runtime
        .block_on(service.clone().oneshot(request()))
        .expect("response")
        .status();
    if name != "oauth-resource-server" || status == 200 {
        assert_eq!(status, 200, "{name}");
    } else {
        // It accepts fewer algorithms than the others: say so instead of timing a refusal.
        println!("{name} refuses this token ({status}): not measured");
        return;
    }
    group.bench_function(name, |b| {
        b.to_async(runtime).iter_batched(
            request,
            |req| service.clone().oneshot(req),
            criterion::BatchSize::SmallInput,
        );
    });
}

fn bench_layer(c: &mut Criterion) {
    bench_layers(c, "layer", noop, noop, noop);
    bench_layers(
        c,
        "subject",
        ours_subject,
        jwt_authorizer_subject,
        oauth_resource_server_subject,
    );
}

/// Every layer, each on its handler: `layer/{alg}/…` with the no-op handler,
/// `subject/{alg}/…` with the subject readers.
fn bench_layers(
    c: &mut Criterion,
    prefix: &str,
    ours: impl Handler,
    authorizer: impl Handler,
    resource_server: impl Handler,
) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for (name, key) in [
        ("RS256", TestKey::rsa()),
        ("ES256", TestKey::ec_p256()),
        ("EdDSA", TestKey::ed25519()),
    ] {
        let token = token(&key);
        let bearer = format!("Bearer {token}");
        let request = || bearer_request(&bearer);
        let mut group = c.benchmark_group(format!("{prefix}/{name}"));

        let bare = tower::service_fn(noop);
        bench_service(&mut group, &runtime, "no-auth", bare, &request);
        for (variant, cache) in [("ours", false), ("ours-cached", true)] {
            let service = JwtAuthLayer::new(config(&key, cache)).layer(tower::service_fn(ours));
            bench_service(&mut group, &runtime, variant, service, &request);
        }

        let peer = runtime.block_on(async {
            let document = jwks([&key]).to_string();
            let authorizer = JwtAuthorizer::<serde_json::Value>::from_jwks_text(&document)
                .validation(Validation::new().iss(&[ISSUER]).aud(&[AUDIENCE]))
                .build()
                .await
                .expect("jwt-authorizer");
            vec![authorizer].into_layer()
        });
        let service = peer.layer(tower::service_fn(authorizer));
        bench_service(&mut group, &runtime, "jwt-authorizer", service, &request);

        // oauth-resource-server loads keys from a JWKS URL: serve one on loopback with the
        // mock issuer and warm its key cache before timing.
        let issuer = runtime.block_on(MockIssuer::builder().key(key.clone()).start());
        let peer = runtime.block_on(oauth_resource_server_layer(&issuer));
        let service = peer.layer(tower::service_fn(resource_server));
        bench_service(
            &mut group,
            &runtime,
            "oauth-resource-server",
            service,
            &request,
        );
        drop(issuer);
        if name == "RS256" && prefix == "layer" {
            bench_tenants(&mut group, &runtime, &key);
        }
        group.finish();
    }
}

/// Our layer trusting an issuer template with `n` allowed tenants; the token comes from
/// the last one, so a scan of the allow-list would show.
fn bench_tenants(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    runtime: &tokio::runtime::Runtime,
    key: &TestKey,
) {
    const TEMPLATE: &str = "https://login.example.com/{tenantid}/v2.0";
    for n in [1usize, 100, 1000] {
        let tenants: Vec<String> = (0..n)
            .map(|i| format!("8eaef023-2b34-4da1-9baa-{i:012}"))
            .collect();
        let last = &tenants[n - 1];
        let token = token_from(key, &TEMPLATE.replace("{tenantid}", last));
        let bearer = format!("Bearer {token}");
        let request = || bearer_request(&bearer);
        let config = JwtAuthConfig::builder()
            .issuer(TEMPLATE)
            .tenants(tenants.iter().cloned())
            .audience(AUDIENCE)
            .key_set(key.key_set())
            .build()
            .expect("config");
        let service = JwtAuthLayer::new(config).layer(tower::service_fn(noop));
        bench_service(group, runtime, &format!("tenants-{n}"), service, &request);
    }
}

/// oauth-resource-server's tower layer for the test issuer, with its key cache warm.
async fn oauth_resource_server_layer(
    issuer: &MockIssuer,
) -> oauth_resource_server::http_layer::HttpAuthLayer {
    use oauth_resource_server::http_layer::HttpAuthLayer;
    use oauth_resource_server::{KeyNaming, OAuthConfig, OAuthValidator};
    let resolved = OAuthConfig {
        enabled: true,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        resource: AUDIENCE.into(),
        jwks_uri: Some(issuer.jwks_url()),
        require_at_jwt: true,
        ..OAuthConfig::default()
    }
    .resolve(KeyNaming::Dotted("oauth"))
    .expect("config")
    .expect("enabled");
    let validator = std::sync::Arc::new(OAuthValidator::new(&resolved).expect("validator"));
    validator.refresh_now().await.expect("keys");
    HttpAuthLayer::builder()
        .oauth(validator)
        .build()
        .expect("layer")
}

/// The bare aws-lc-rs signature check with a parsed key and a decoded signature, for
/// the asymmetric algorithms; `None` for HMAC.
mod aws_lc_rs_floor {
    use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use tower_jwt_auth::testing::TestKey;

    pub(crate) fn floor(key: &TestKey, token: &str) -> Option<impl Fn() -> bool + use<>> {
        let jwk = key.public_jwk();
        let part = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().unwrap_or_default())
                .expect("b64")
        };
        let parsed = match jwk["kty"].as_str()? {
            "RSA" => {
                let (n, e) = (part("n"), part("e"));
                RsaPublicKeyComponents {
                    n: &n[..],
                    e: &e[..],
                }
                .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
                .expect("key")
            }
            "EC" => {
                let mut point = vec![4u8];
                point.extend(part("x"));
                point.extend(part("y"));
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).expect("key")
            }
            "OKP" => ParsedPublicKey::new(&signature::ED25519, part("x")).expect("key"),
            _ => return None,
        };
        let (input, sig) = token.rsplit_once('.').expect("segments");
        let input = input.as_bytes().to_vec();
        let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature");
        Some(move || {
            parsed
                .verify_sig(std::hint::black_box(&input), std::hint::black_box(&sig))
                .is_ok()
        })
    }
}

criterion_group!(benches, bench_verify, bench_layer);
criterion_main!(benches);
