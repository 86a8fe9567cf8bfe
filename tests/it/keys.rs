//! Real JWKS documents from eleven identity providers load with exactly the keys the
//! rules allow. The documents are in `tests/fixtures/idp/`
//! with their provenance.

use std::path::Path;

use tower_jwt_auth::Algorithm;
use tower_jwt_auth::jwks::KeySet;

fn load(provider: &str) -> KeySet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/idp")
        .join(provider)
        .join("jwks.json");
    let text = std::fs::read_to_string(&path).expect("fixture");
    KeySet::from_jwks_json(&text).expect("every provider's JWKS loads")
}

/// (RSA keys, EC P-256 keys) that must be usable.
fn count(keys: &KeySet) -> (usize, usize) {
    let rsa = keys
        .iter()
        .filter(|k| {
            k.algorithms()
                .iter()
                .any(|a| a.as_str().starts_with(['R', 'P']))
        })
        .count();
    let ec = keys
        .iter()
        .filter(|k| k.algorithms() == [Algorithm::ES256])
        .count();
    (rsa, ec)
}

#[test]
fn every_provider_document_loads_with_exactly_the_usable_keys() {
    let expected = [
        ("apple", (3, 0)),
        ("auth0", (2, 0)),
        ("cognito", (2, 0)),
        ("entra", (7, 0)),
        ("gitlab", (2, 0)),
        ("google", (2, 0)),
        // The use=enc RSA-OAEP key is skipped.
        ("keycloak", (1, 0)),
        ("okta", (2, 0)),
        ("onelogin", (1, 0)),
        // EC keys without alg or use are usable; the X25519 key is skipped.
        ("paypal", (7, 7)),
        // The 1024-bit RSA keys are skipped.
        ("yahoo", (0, 1)),
    ];
    for (provider, want) in expected {
        let keys = load(provider);
        assert_eq!(count(&keys), want, "{provider}");
        assert_eq!(keys.len(), want.0 + want.1, "{provider}");
    }
}

#[test]
fn keys_are_pinned_to_their_published_alg() {
    let paypal = load("paypal");
    let ps256 = paypal
        .iter()
        .filter(|k| k.pinned_algorithm() == Some(Algorithm::PS256))
        .count();
    assert_eq!(ps256, 3);
    for key in paypal
        .iter()
        .filter(|k| k.pinned_algorithm() == Some(Algorithm::PS256))
    {
        assert_eq!(key.algorithms(), [Algorithm::PS256]);
        assert!(!key.supports(Algorithm::RS256));
    }
    // Entra keys carry no alg: every RSA algorithm fits them.
    let entra = load("entra");
    let key = entra.iter().next().expect("a key");
    assert!(key.supports(Algorithm::RS256) && key.supports(Algorithm::PS512));
    assert!(
        key.issuer()
            .is_some_and(|i| i.starts_with("https://login.microsoftonline.com/"))
    );
}

#[test]
fn cognito_kids_with_standard_base64_characters_are_kept_verbatim() {
    let cognito = load("cognito");
    assert!(
        cognito
            .iter()
            .all(|k| k.kid().is_some_and(|kid| kid.contains(['+', '/', '='])))
    );
}

#[test]
fn a_document_without_keys_is_an_error_and_an_empty_one_is_not() {
    assert!(KeySet::from_jwks_json(r#"{"not_keys": []}"#).is_err());
    assert!(KeySet::from_jwks_json("<html>").is_err());
    assert!(
        KeySet::from_jwks_json(r#"{"keys": []}"#)
            .expect("empty")
            .is_empty()
    );
    // One malformed key is skipped, the rest load.
    let text = r#"{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}, {"kty": "EC", "crv": "P-256"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    assert_eq!(KeySet::from_jwks_json(text).expect("loads").len(), 1);
}

#[test]
fn exported_private_keys_sign_tokens_the_public_keys_verify() {
    use tower_jwt_auth::testing::{TestKey, TokenBuilder};
    use tower_jwt_auth::{JwtAuthConfig, StandardClaims, Verifier};
    for key in [
        TestKey::rsa(),
        TestKey::ec_p256(),
        TestKey::ec_p384(),
        TestKey::ed25519(),
        TestKey::hmac(),
    ] {
        let copy = TestKey::import_private(&key.export_private()).expect("round trip");
        assert_eq!(copy.kid(), key.kid());
        let cfg = JwtAuthConfig::builder()
            .issuer("https://idp.example.com/")
            .audience("api")
            .key_set(key.key_set())
            .build()
            .expect("config");
        let token = TokenBuilder::new(&copy)
            .issuer("https://idp.example.com/")
            .audience("api")
            .sign();
        let verified = Verifier::new(cfg).verify::<StandardClaims>(&token);
        assert!(verified.is_ok(), "{:?}: {verified:?}", key.algorithm());
    }
    assert!(TestKey::import_private(&serde_json::json!({"kid": "x"})).is_err());
}

#[test]
fn a_large_key_set_finds_each_key_by_kid() {
    use tower_jwt_auth::testing::{TestKey, TokenBuilder};
    use tower_jwt_auth::{ErrorKind, JwtAuthConfig, Verifier};
    let keys: Vec<TestKey> = (0..40)
        .map(|i| TestKey::hmac().with_kid(format!("k{i}")))
        .collect();
    let set = keys
        .iter()
        .fold(tower_jwt_auth::jwks::KeySet::new(), |set, key| {
            set.merge(key.key_set())
        });
    let verifier = Verifier::new(
        JwtAuthConfig::builder()
            .issuer("https://idp.example.com/")
            .audience("api")
            .key_set(set)
            .build()
            .expect("config"),
    );
    let mint = |key: &TestKey| {
        TokenBuilder::new(key)
            .issuer("https://idp.example.com/")
            .audience("api")
            .sign()
    };
    for key in [&keys[0], &keys[17], &keys[39]] {
        verifier
            .verify::<serde_json::Value>(&mint(key))
            .expect("its own key is found");
    }
    let stranger = TestKey::hmac().with_kid("k-unknown");
    assert_eq!(
        verifier
            .verify::<serde_json::Value>(&mint(&stranger))
            .expect_err("no such kid")
            .kind(),
        ErrorKind::UnknownKey
    );
    // A known kid with another key's signature is a bad signature, not a lookup miss.
    let impostor = TestKey::hmac().with_kid("k17");
    assert_eq!(
        verifier
            .verify::<serde_json::Value>(&mint(&impostor))
            .expect_err("wrong secret")
            .kind(),
        ErrorKind::InvalidSignature
    );
}
