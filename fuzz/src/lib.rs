//! Shared setup for the fuzz targets: one configuration with a fixed HMAC secret, so
//! that seed tokens signed with it get past the signature check and the fuzzer reaches
//! the claim checks.

use std::sync::OnceLock;

use tower_jwt_auth::{JwtAuthConfig, Verifier};

pub const ISSUER: &str = "https://idp.example.com/";
pub const AUDIENCE: &str = "https://api.example.com";
pub const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-0123456789";

pub fn config() -> JwtAuthConfig {
    static CONFIG: OnceLock<JwtAuthConfig> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            JwtAuthConfig::builder()
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .hmac_secret(SECRET.to_vec())
                .require_claims_present(["sub"])
                .permission_claim("realm_access.roles")
                .build()
                .expect("fuzz config")
        })
        .clone()
}

pub fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new(config()))
}
