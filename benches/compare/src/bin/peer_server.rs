//! The same protected route as the `axum_server` example's `GET /documents`, behind
//! jwt-authorizer instead of tower-jwt-auth, for `scripts/load.sh` (set `PEER=1`).
//!
//! Environment: `JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`, `LISTEN_ADDR`.

use axum07::Router;
use axum07::routing::get;
use jwt_authorizer::{IntoLayer, JwtAuthorizer, JwtClaims, Validation};

async fn documents(JwtClaims(_claims): JwtClaims<serde_json::Value>) -> &'static str {
    "[]"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let issuer = env("JWT_ISSUER")?;
    let audience = env("JWT_AUDIENCE")?;
    let authorizer = JwtAuthorizer::<serde_json::Value>::from_jwks_url(&env("JWKS_URL")?)
        .validation(Validation::new().iss(&[issuer]).aud(&[audience]))
        .build()
        .await?;
    let app = Router::new()
        .route("/documents", get(documents))
        .layer(vec![authorizer].into_layer());
    let listener = tokio::net::TcpListener::bind(env("LISTEN_ADDR")?).await?;
    axum07::serve(listener, app).await?;
    Ok(())
}
