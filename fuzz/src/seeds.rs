//! Writes seed corpora for the fuzz targets: valid and broken tokens signed with the
//! fuzzing secret, header values, and real providers' JWKS documents.
//! Run from `fuzz/`: `cargo run --bin seeds`.

use std::path::Path;

use serde_json::json;
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth_fuzz::{AUDIENCE, ISSUER, SECRET};

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), data).expect("seed");
}

fn main() {
    let key = TestKey::hmac_secret(SECRET.to_vec()).with_kid("fuzz");
    let base = || TokenBuilder::new(&key).issuer(ISSUER).audience(AUDIENCE);
    let tokens = [
        ("valid", base().permissions(["read"]).sign()),
        (
            "scope",
            base()
                .scope("read write")
                .claim("realm_access", json!({"roles": ["admin"]}))
                .sign(),
        ),
        ("expired", base().expired().sign()),
        ("future", base().not_yet_valid().sign()),
        ("no_kid", base().no_kid().sign()),
        ("crit", base().header("crit", json!(["exp"])).sign()),
        ("fraction", base().claim("exp", 4_000_000_000.5).sign()),
        ("aud_array", base().audiences(["a", AUDIENCE]).sign()),
        ("none", base().alg_none().sign()),
        ("tampered", base().tampered().sign()),
        ("hs512", base().alg(tower_jwt_auth::Algorithm::HS512).sign()),
    ];
    for (name, token) in &tokens {
        write("verify_token", name, token.as_bytes());
        write(
            "authorization_header",
            name,
            format!("Bearer {token}").as_bytes(),
        );
    }
    for (name, value) in [
        ("basic", "Basic dXNlcjpwdw=="),
        ("empty", "Bearer "),
        ("lower", "bearer a.b.c"),
    ] {
        write("authorization_header", name, value.as_bytes());
    }
    let fixtures = Path::new("../tests/fixtures/idp");
    for provider in std::fs::read_dir(fixtures).expect("fixtures").flatten() {
        let jwks = provider.path().join("jwks.json");
        if let Ok(text) = std::fs::read(&jwks) {
            let name = provider.file_name().to_string_lossy().into_owned();
            write("jwks_document", &name, &text);
        }
    }
    write(
        "jwks_document",
        "pem",
        TestKey::ec_p256()
            .public_pem()
            .unwrap_or_default()
            .as_bytes(),
    );
}
