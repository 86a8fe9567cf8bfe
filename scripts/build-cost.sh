#!/usr/bin/env bash
# The cold release build of a minimal protected axum app, as a user of the crate pays
# it: the README's "Protecting an axum API" code in its own crate, in a temporary
# directory with its own target directory, built once with `--timings`.
#
# Usage: scripts/build-cost.sh [ours|ours-lean|jwt-authorizer|oauth-resource-server ...]
# (default: ours ours-lean). `ours` uses the crate's default features, `ours-lean` only
# `remote` and `axum` (no DPoP, no introspection). Each app is built from an empty
# target directory; the registry cache is shared, so only compilation is timed. Prints
# the wall time of each build and keeps the `--timings` report (cargo-timing.html) in
# the temporary directory it names.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
apps=("$@")
[ ${#apps[@]} -eq 0 ] && apps=(ours ours-lean)
work=$(mktemp -d)
echo "apps in $work ($(nproc) cores, $(rustc --version))"

# A package in $1 whose dependencies are read from standard input.
manifest() {
  { printf '[package]\nname = "app"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n'
    printf '\n[workspace]\n\n[dependencies]\n'
    cat; } >"$1/Cargo.toml"
}

write_app() {
  local name=$1 dir=$work/$1
  mkdir -p "$dir/src"
  case $name in
  ours|ours-lean)
    local features='features = ["axum"]'
    [ "$name" = ours-lean ] && features='default-features = false, features = ["remote", "axum"]'
    manifest "$dir" <<EOF
axum = "0.8"
tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
tower-jwt-auth = { path = "$repo", $features }
EOF
    cat >"$dir/src/main.rs" <<'EOF'
use axum::{Router, routing::{get, post}};
use tower_jwt_auth::{Claims, JwtAuthConfig, JwtAuthLayer, RequirePermission, StandardClaims};

async fn list(Claims(claims): Claims<StandardClaims>) -> String {
    format!("documents of {}", claims.sub.unwrap_or_default())
}
async fn create(body: String) -> String { body }

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cfg = JwtAuthConfig::builder()
        .issuer("https://your-tenant.eu.auth0.com/")
        .audience("https://api.example.com")
        .build()?;
    let app = Router::new()
        .route("/documents", get(list).route_layer(RequirePermission("read")))
        .route("/documents", post(create).route_layer(RequirePermission("write")))
        .layer(JwtAuthLayer::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
EOF
    ;;
  jwt-authorizer)
    # Its default features pull OpenSSL; rustls is the comparable build.
    manifest "$dir" <<EOF
axum = "0.7"
jwt-authorizer = { version = "0.15", default-features = false, features = ["rustls-tls"] }
serde = { version = "1", features = ["derive"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
EOF
    cat >"$dir/src/main.rs" <<'EOF'
use axum::{Router, routing::{get, post}};
use jwt_authorizer::{IntoLayer, JwtAuthorizer, JwtClaims, Validation};

#[derive(Clone, serde::Deserialize)]
struct User { sub: Option<String> }

async fn list(JwtClaims(user): JwtClaims<User>) -> String {
    format!("documents of {}", user.sub.unwrap_or_default())
}
async fn create(body: String) -> String { body }

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auth = JwtAuthorizer::<User>::from_oidc("https://your-tenant.eu.auth0.com/")
        .validation(Validation::new().aud(&["https://api.example.com"]))
        .build()
        .await?;
    let app = Router::new()
        .route("/documents", get(list).post(create))
        .layer(auth.into_layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
EOF
    ;;
  oauth-resource-server)
    manifest "$dir" <<EOF
axum = "0.8"
oauth-resource-server = { version = "0.4", features = ["tower"] }
tokio = { version = "1", features = ["macros", "rt-multi-thread", "net"] }
EOF
    cat >"$dir/src/main.rs" <<'EOF'
use std::sync::Arc;

use axum::{Router, routing::{get, post}};
use oauth_resource_server::http_layer::HttpAuthLayer;
use oauth_resource_server::{KeyNaming, OAuthConfig, OAuthValidator};

async fn list() -> &'static str { "documents" }
async fn create(body: String) -> String { body }

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let resolved = OAuthConfig {
        enabled: true,
        issuer: "https://your-tenant.eu.auth0.com/".into(),
        audience: "https://api.example.com".into(),
        resource: "https://api.example.com".into(),
        ..OAuthConfig::default()
    }
    .resolve(KeyNaming::Dotted("oauth"))?
    .ok_or("disabled")?;
    let validator = Arc::new(OAuthValidator::new(&resolved)?);
    let layer = HttpAuthLayer::builder().oauth(validator).build()?;
    let app = Router::new()
        .route("/documents", get(list).post(create))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
EOF
    ;;
  *) echo "unknown app $name"; exit 2 ;;
  esac
}

for app in "${apps[@]}"; do
  write_app "$app"
  (cd "$work/$app" && cargo generate-lockfile -q && cargo fetch -q)
  start=$(date +%s.%N)
  (cd "$work/$app" && cargo build --release --timings -q 2>/dev/null) \
    || { echo "$app: the build failed (run cargo build in $work/$app)"; exit 1; }
  end=$(date +%s.%N)
  crates=$(cd "$work/$app" && cargo tree -e normal --prefix none -q | sort -u | wc -l)
  printf '%-22s %6.1f s  %4d crates  timings: %s\n' "$app" "$(echo "$end - $start" | bc)" \
    "$crates" "$work/$app/target/cargo-timings/cargo-timing.html"
done
