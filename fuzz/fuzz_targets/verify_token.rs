//! Arbitrary bytes as a token: the verifier must answer (accept or refuse) without
//! panicking, and may accept only what the secret signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_jwt_auth::StandardClaims;
use tower_jwt_auth_fuzz::verifier;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = verifier().verify_token::<StandardClaims>(token);
    let _ = verifier().verify::<serde::de::IgnoredAny>(token);
    let _ = verifier().verify::<serde_json::Value>(token);
});
