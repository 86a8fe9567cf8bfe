//! A fixed amount of verification work for instruction counting under callgrind
//! (`scripts/instructions.sh`): instruction counts do not drift with machine noise.
//!
//! Usage: `instructions <alg> <iterations>`, alg one of RS256, ES256, EdDSA, HS256,
//! `floor` (bare aws-lc-rs RS256 check with a parsed key). Keys and tokens are made
//! before the loop; the script subtracts two runs to cancel that setup. The RSA key is a
//! fixed test key (`fixtures/rsa-2048-test-key.json`), never used for anything real.

use std::hint::black_box;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, StandardClaims, Verifier};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let alg = args.first().map_or("RS256", String::as_str);
    let iterations: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1000);
    let key = match alg {
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
    let token = TokenBuilder::new(&key)
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .subject("auth0|5f7c8ec7c33c6c004bbafe82")
        .scope("read:documents write:documents")
        .permissions(["read:documents", "write:documents"])
        .claim("azp", "wLcV3Ot3Yh2T3wgBl2QxtmsD9Pj4k0sJ")
        .sign();
    if alg == "floor" {
        let jwk = key.public_jwk();
        let part = |name: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[name].as_str().unwrap_or_default())
                .unwrap_or_default()
        };
        let (n, e) = (part("n"), part("e"));
        let Ok(parsed) = (RsaPublicKeyComponents {
            n: &n[..],
            e: &e[..],
        })
        .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256) else {
            panic!("key");
        };
        let (input, sig) = token.rsplit_once('.').unwrap_or_default();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        for _ in 0..iterations {
            black_box(parsed.verify_sig(black_box(input.as_bytes()), black_box(&sig))).ok();
        }
        return;
    }
    let Ok(cfg) = JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .key_set(key.key_set())
        .build()
    else {
        panic!("config");
    };
    let verifier = Verifier::new(cfg);
    for _ in 0..iterations {
        assert!(black_box(verifier.verify::<StandardClaims>(black_box(&token))).is_ok());
    }
}
