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
    let token = TokenBuilder::new(&key)
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .subject("auth0|5f7c8ec7c33c6c004bbafe82")
        .scope("read:documents write:documents")
        .sign();
    // Up to and including the signature check (a forged token stops right after it):
    // two allocations, the decoded header and signature. Key lookup and verification
    // allocate nothing.
    let forged = TokenBuilder::new(&key)
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .signed_by_foreign_key()
        .sign();
    let up_to_signature = count(|| verifier.verify::<IgnoredAny>(&forged).expect_err("forged"));
    assert_eq!(up_to_signature, 2);
    let ignored = count(|| verifier.verify::<IgnoredAny>(&token).expect("valid"));
    let standard = count(|| {
        verifier
            .verify_token::<StandardClaims>(&token)
            .expect("valid")
    });
    println!(
        "allocations per verification: {up_to_signature} up to the signature, {ignored} in all \
         with the claims ignored, {standard} building StandardClaims and Permissions"
    );
    // The rest: the payload buffer, the audience list, the permission set and its words.
    assert!(ignored <= 10, "{ignored}");
    assert!(standard <= ignored + 16, "{standard}");
}
