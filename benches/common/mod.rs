//! What several benches share.

use tower_jwt_auth::testing::{TestKey, TokenBuilder};

/// A realistic access token: `iss`, `aud`, `sub`, `exp`, `iat`, `jti`, `scope`,
/// `permissions` (two entries), `azp`; header `alg`, `kid`, `typ`. RS256: about 620
/// bytes.
pub(crate) fn access_token(key: &TestKey) -> String {
    TokenBuilder::new(key)
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .subject("auth0|5f7c8ec7c33c6c004bbafe82")
        .scope("read:documents write:documents")
        .permissions(["read:documents", "write:documents"])
        .claim("azp", "wLcV3Ot3Yh2T3wgBl2QxtmsD9Pj4k0sJ")
        .sign()
}
