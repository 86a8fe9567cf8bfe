//! One route for `scripts/load.sh`: `GET /documents` answering `[]`, behind no
//! authentication at all, tower-jwt-auth (with or without its verified-token cache), or
//! jwt-authorizer. The handler and the router are the same in every mode, so the
//! differences in requests/s are the layers' own.
//!
//! Environment: `MODE` (`none`, `ours`, `ours-cached`, `jwt-authorizer`), `JWKS_URL`,
//! `JWT_ISSUER`, `JWT_AUDIENCE`, `LISTEN_ADDR`.

use axum07::Router;
use axum07::routing::get;
use jwt_authorizer::{IntoLayer, JwtAuthorizer, Validation};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer, RequirePermission};
use tower_jwt_auth::cache::CacheOptions;

async fn documents() -> &'static str {
    "[]"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let (issuer, audience, jwks_url) = (env("JWT_ISSUER")?, env("JWT_AUDIENCE")?, env("JWKS_URL")?);
    let route = Router::new().route("/documents", get(documents));
    let app = match env("MODE")?.as_str() {
        "none" => route,
        mode @ ("ours" | "ours-cached") => {
            let mut config = JwtAuthConfig::builder()
                .issuer(issuer)
                .audience(audience)
                .jwks_url(jwks_url);
            if mode == "ours-cached" {
                config = config.cache(CacheOptions::new());
            }
            route
                .route_layer(RequirePermission("read"))
                .layer(JwtAuthLayer::new(config.build()?))
        }
        "jwt-authorizer" => {
            let authorizer = JwtAuthorizer::<serde_json::Value>::from_jwks_url(&jwks_url)
                .validation(Validation::new().iss(&[issuer]).aud(&[audience]))
                .build()
                .await?;
            route.layer(vec![authorizer].into_layer())
        }
        other => {
            return Err(
                format!("MODE {other:?}: none, ours, ours-cached or jwt-authorizer").into(),
            );
        }
    };
    let listener = tokio::net::TcpListener::bind(env("LISTEN_ADDR")?).await?;
    axum07::serve(listener, app).await?;
    Ok(())
}
