//! Verification cost: our verifier against `jsonwebtoken::decode` (aws-lc-rs backend) and
//! against the floor, a bare aws-lc-rs signature check with an already parsed key.
//!
//! Run with `cargo bench --bench verify`. Group names are stable so results can be
//! compared over time: `verify/{RS256,ES256,EdDSA,HS256}/{raw-jsonwebtoken,ours}` and
//! `verify/RS256/aws-lc-floor`.

use std::hint::black_box;

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, StandardClaims, Verifier};

const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "https://api.example.com";

struct Case {
    name: &'static str,
    key: TestKey,
}

fn token(key: &TestKey) -> String {
    TokenBuilder::new(key)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .subject("auth0|5f7c8ec7c33c6c004bbafe82")
        .scope("read:documents write:documents")
        .permissions(["read:documents", "write:documents"])
        .claim("azp", "wLcV3Ot3Yh2T3wgBl2QxtmsD9Pj4k0sJ")
        .sign()
}

fn raw_decoding_key(key: &TestKey) -> jsonwebtoken::DecodingKey {
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

fn raw_algorithm(name: &str) -> jsonwebtoken::Algorithm {
    name.parse().expect("algorithm")
}

fn bench_verify(c: &mut Criterion) {
    let cases = [
        Case {
            name: "RS256",
            key: TestKey::rsa(),
        },
        Case {
            name: "ES256",
            key: TestKey::ec_p256(),
        },
        Case {
            name: "EdDSA",
            key: TestKey::ed25519(),
        },
        Case {
            name: "HS256",
            key: TestKey::hmac(),
        },
    ];
    for case in &cases {
        let token = token(&case.key);
        let mut group = c.benchmark_group(format!("verify/{}", case.name));

        let raw_key = raw_decoding_key(&case.key);
        let mut validation = jsonwebtoken::Validation::new(raw_algorithm(case.name));
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        assert!(jsonwebtoken::decode::<StandardClaims>(&token, &raw_key, &validation).is_ok());
        group.bench_function("raw-jsonwebtoken", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<StandardClaims>(black_box(&token), &raw_key, &validation)
            });
        });

        let cfg = JwtAuthConfig::builder()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .key_set(case.key.key_set())
            .build()
            .expect("config");
        let verifier = Verifier::new(cfg);
        assert!(verifier.verify::<StandardClaims>(&token).is_ok());
        group.bench_function("ours", |b| {
            b.iter(|| verifier.verify::<StandardClaims>(black_box(&token)));
        });

        if case.name == "RS256" {
            let jwk = case.key.public_jwk();
            let component = |name: &str| {
                URL_SAFE_NO_PAD
                    .decode(jwk[name].as_str().unwrap_or_default())
                    .expect("b64")
            };
            let (n, e) = (component("n"), component("e"));
            let parsed: ParsedPublicKey = RsaPublicKeyComponents {
                n: &n[..],
                e: &e[..],
            }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .expect("parsed key");
            let (input, sig) = token.rsplit_once('.').expect("segments");
            let sig = URL_SAFE_NO_PAD.decode(sig).expect("signature");
            assert!(parsed.verify_sig(input.as_bytes(), &sig).is_ok());
            group.bench_function("aws-lc-floor", |b| {
                b.iter(|| parsed.verify_sig(black_box(input.as_bytes()), black_box(&sig)));
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
