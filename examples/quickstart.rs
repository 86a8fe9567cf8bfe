//! Quickstart: a protected axum API and the answers it gives to real requests.
//!
//! Run it with `cargo run --example quickstart`. No network and no setup: the keys and
//! tokens come from the crate's test kit, the server listens on 127.0.0.1 on a free port,
//! and the program exits once every request is printed.

use std::error::Error;

use axum::Router;
use axum::routing::get;
use tower_jwt_auth::testing::{TestKey, TokenBuilder};
use tower_jwt_auth::{Claims, JwtAuthConfig, JwtAuthLayer, StandardClaims};

const ISSUER: &str = "https://idp.example.com/";
const AUDIENCE: &str = "https://api.example.com";

async fn me(Claims(claims): Claims<StandardClaims>) -> String {
    format!("hello {}", claims.sub.unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The identity provider's signing key. In production the layer gets the public half
    // from the issuer's JWKS; here we hand it the public key directly, as PEM.
    let signing_key = TestKey::rsa();
    let public_pem = signing_key.public_pem().ok_or("an RSA key has a PEM")?;

    let cfg = JwtAuthConfig::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .realm("quickstart")
        .pem(public_pem)
        .build()?;

    let app = Router::new()
        .route("/me", get(me))
        .layer(JwtAuthLayer::new(cfg));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("protected API on http://{addr}/me\n");

    let token = || {
        TokenBuilder::new(&signing_key)
            .issuer(ISSUER)
            .audience(AUDIENCE)
    };
    let cases = [
        ("valid token", Some(token().subject("alice").sign())),
        ("expired token", Some(token().expired().sign())),
        ("wrong audience", Some(token().wrong_audience().sign())),
        (
            "signed by another key",
            Some(token().signed_by_foreign_key().sign()),
        ),
        ("alg: none", Some(token().alg_none().sign())),
        ("no token", None),
    ];

    let client = reqwest::Client::builder().no_proxy().build()?;
    for (what, bearer) in cases {
        let mut request = client.get(format!("http://{addr}/me"));
        if let Some(bearer) = &bearer {
            request = request.bearer_auth(bearer);
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
        println!("GET /me  {what:<22} -> {status}  {why}");
    }

    server.abort();
    Ok(())
}
