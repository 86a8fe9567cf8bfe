//! Arbitrary text as a JWKS document, a JWK, or PEM: parsing never panics, and every key
//! that loads is usable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::jwks::KeySet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(keys) = KeySet::from_jwks_json(text) {
        for key in keys.iter() {
            assert!(!key.algorithms().is_empty());
        }
    }
    let _ = KeySet::from_jwk_json(text);
    let _ = KeySet::from_pem(text);
});
