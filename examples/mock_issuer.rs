//! The test kit's mock identity provider, used from code: a real OIDC issuer on a
//! loopback port, with a client for the token endpoint and a token printed to try.
//!
//! ```sh
//! cargo run --example mock_issuer
//! ```
//!
//! For a mock provider on the command line, with keys kept between runs, rotation and
//! faults, use the `jwt-auth` tool: `cargo run -p jwt-auth-cli -- serve --help`.

#[path = "support/logs.rs"]
mod logs;

use tower_jwt_auth::testing::MockIssuer;

#[tokio::main]
async fn main() {
    logs::init();
    let issuer = MockIssuer::start().await;
    issuer.add_client("demo-client", "demo-secret", ["read", "write"]);
    println!("issuer    {}", issuer.issuer());
    println!("JWKS      {}", issuer.jwks_url());
    println!("token     {}", issuer.token_url());
    let token = issuer.token().subject("alice").permissions(["read"]).sign();
    println!("\na token for {}:\n{token}", issuer.audience());
    println!(
        "\ncurl -s {} -u demo-client:demo-secret -d grant_type=client_credentials",
        issuer.token_url()
    );
    println!("\nCtrl-C stops it.");
    let _ = tokio::signal::ctrl_c().await;
}
