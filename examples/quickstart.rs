//! Quickstart: a protected axum API, an identity provider, and the answers real requests
//! get.
//!
//! Run it with `cargo run --example quickstart`. No network and no setup: an embedded
//! mock issuer serves OIDC discovery and a JWKS on 127.0.0.1, the API finds its keys by
//! discovery exactly as it would with Auth0, Keycloak or Entra ID, and the program exits
//! once every request is printed.

#[path = "support/logs.rs"]
mod logs;

use std::error::Error;

use axum::Router;
use axum::routing::{get, post};
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::{Claims, JwtAuthConfig, JwtAuthLayer, RequirePermission, StandardClaims};

async fn list(Claims(claims): Claims<StandardClaims>) -> String {
    format!("documents for {}", claims.sub.unwrap_or_default())
}

async fn create(Claims(claims): Claims<StandardClaims>) -> String {
    format!("created by {}", claims.sub.unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    logs::init();
    // 1. The identity provider. In production this is your IdP's issuer URL.
    let idp = MockIssuer::start().await;

    // 2. The API: reading needs `read`, creating needs `write`.
    let cfg = JwtAuthConfig::builder()
        .issuer(idp.issuer()) // keys come from {issuer}/.well-known/openid-configuration
        .audience(idp.audience())
        .build()?;
    let app = Router::new()
        .route(
            "/documents",
            get(list).route_layer(RequirePermission("read")),
        )
        .route(
            "/documents",
            post(create).route_layer(RequirePermission("write")),
        )
        .layer(JwtAuthLayer::new(cfg));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!(
        "API on http://{addr}, identity provider on {}\n",
        idp.issuer()
    );

    let client = reqwest::Client::builder().no_proxy().build()?;
    let call =
        |method: &'static str, path: &'static str, token: Option<String>, what: &'static str| {
            let client = client.clone();
            async move {
                let url = format!("http://{addr}{path}");
                let mut request = client.request(method.parse()?, url);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await?;
                let status = response.status();
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response.text().await?;
                let why = challenge.unwrap_or(body);
                println!("{method:<4} {path:<11} {what:<24} -> {status}  {why}");
                Ok::<_, Box<dyn Error>>(())
            }
        };

    let reader = || idp.token().subject("alice").permissions(["read"]);
    let writer = || idp.token().subject("bob").permissions(["read", "write"]);
    call("GET", "/documents", Some(reader().sign()), "read token").await?;
    call("POST", "/documents", Some(reader().sign()), "read token").await?;
    call("POST", "/documents", Some(writer().sign()), "write token").await?;
    call(
        "GET",
        "/documents",
        Some(reader().expired().sign()),
        "expired token",
    )
    .await?;
    call(
        "GET",
        "/documents",
        Some(reader().wrong_audience().sign()),
        "wrong audience",
    )
    .await?;
    call(
        "GET",
        "/documents",
        Some(reader().signed_by_foreign_key().sign()),
        "forged signature",
    )
    .await?;
    idp.rotate(); // the IdP publishes a new key and signs with it from now on
    call(
        "GET",
        "/documents",
        Some(reader().sign()),
        "key rotated at the IdP",
    )
    .await?;
    call("GET", "/documents", None, "no token").await?;

    server.abort();
    Ok(())
}
