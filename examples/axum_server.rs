//! An axum API protected by tower-jwt-auth: the shape of a real resource server.
//!
//! ```sh
//! # Against your identity provider (discovery at {JWT_ISSUER}/.well-known/openid-configuration):
//! JWT_ISSUER=https://your-tenant.eu.auth0.com/ JWT_AUDIENCE=https://api.example.com \
//!     cargo run --example axum_server
//!
//! # With no JWT_ISSUER, an embedded mock issuer starts and ready-to-paste curl commands
//! # with tokens are printed:
//! cargo run --example axum_server
//! ```
//!
//! `LISTEN_ADDR` sets the address (default `127.0.0.1:3000`); `JWT_CACHE` (any value)
//! turns on the verified-token cache; `REPLAY_STORE` picks where used and revoked tokens
//! are recorded: `memory` (the default, one replica) or a `redis://` URL (shared by every
//! replica). Routes:
//! `GET /health` (public liveness, always 200), `GET /ready` (public readiness: 200 once
//! every issuer's keys have loaded, else 503), `GET /metrics` (public, Prometheus text),
//! `GET /me` (any valid token: the claims as JSON),
//! `GET /documents` (needs `read`), `POST /documents` (needs `write`, answers 201),
//! `POST /transfers` (needs `write` and a token used nowhere before: any JSON object,
//! answers 201 naming the token's `jti`; the same token again gets 401),
//! `POST /admin/revoke` (needs `admin`: `{"jti": ".."}` or `{"sub": ".."}` revokes that
//! token or every token of that subject, for the caller's own issuer; 204).
//! Permissions come from the `permissions` array or the space-delimited `scope`.

#[path = "support/logs.rs"]
mod logs;

use std::error::Error;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tower_jwt_auth::state::{
    MemoryRevocationList, RedisConnection, RedisReplayStore, RedisRevocationList, Revocations,
};
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::{
    CacheOptions, Claims, JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer, RequirePermission,
    StandardClaims,
};

/// A stored document.
#[derive(Debug, Clone, Serialize)]
struct Document {
    id: String,
    title: String,
    owner: String,
}

/// The body of `POST /documents`.
#[derive(Debug, Deserialize)]
struct NewDocument {
    title: String,
}

type Store = Arc<Mutex<Vec<Document>>>;

async fn health() -> &'static str {
    "ok"
}

/// 200 once every issuer's keys have loaded (fresh or stale), else 503: a pod that cannot
/// verify tokens should not get traffic.
async fn ready(State(config): State<JwtAuthConfig>) -> (StatusCode, String) {
    let statuses: Vec<_> = config.key_health().iter().map(|h| h.status()).collect();
    if statuses.iter().all(|status| status.is_ready()) {
        (StatusCode::OK, "ready".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{statuses:?}"))
    }
}

/// The process-wide Prometheus recorder: the metrics facade takes one global recorder,
/// installed the first time an app is built.
fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// The metrics in Prometheus text. Without the exporter's own listener, histograms are
/// drained on each scrape (`run_upkeep`).
async fn metrics() -> (StatusCode, String) {
    match prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            (StatusCode::OK, handle.render())
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder".into(),
        ),
    }
}

async fn me(Claims(claims): Claims<StandardClaims>) -> Json<StandardClaims> {
    Json(claims)
}

async fn list(State(store): State<Store>) -> Json<Vec<Document>> {
    let documents = store.lock().map(|d| d.clone()).unwrap_or_default();
    Json(documents)
}

async fn create(
    State(store): State<Store>,
    Claims(claims): Claims<StandardClaims>,
    Json(new): Json<NewDocument>,
) -> (StatusCode, Json<Document>) {
    let mut documents = match store.lock() {
        Ok(documents) => documents,
        Err(poisoned) => poisoned.into_inner(),
    };
    let document = Document {
        id: (documents.len() + 1).to_string(),
        title: new.title,
        owner: claims.sub.unwrap_or_default(),
    };
    documents.push(document.clone());
    (StatusCode::CREATED, Json(document))
}

/// A transfer: any JSON object, accepted once per token.
async fn transfer(
    Claims(claims): Claims<StandardClaims>,
    Json(body): Json<Map<String, Value>>,
) -> (StatusCode, Json<Value>) {
    let jti = claims.jti.unwrap_or_default();
    (
        StatusCode::CREATED,
        Json(json!({ "jti": jti, "transfer": body })),
    )
}

/// The body of `POST /admin/revoke`: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoke {
    jti: Option<String>,
    sub: Option<String>,
}

/// Revokes a token or a subject of the caller's own issuer.
async fn revoke(
    State(revocations): State<Option<Revocations>>,
    Claims(claims): Claims<StandardClaims>,
    Json(revoke): Json<Revoke>,
) -> (StatusCode, String) {
    let (Some(revocations), Some(issuer)) = (revocations, claims.iss) else {
        return (StatusCode::NOT_IMPLEMENTED, "no revocation list".into());
    };
    let result = match (revoke.jti, revoke.sub) {
        (Some(jti), None) => revocations.revoke_token(&issuer, &jti).await,
        (None, Some(sub)) => revocations.revoke_subject(&issuer, &sub).await,
        _ => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                "give exactly one of jti and sub".into(),
            );
        }
    };
    match result {
        Ok(()) => (StatusCode::NO_CONTENT, String::new()),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    }
}

/// Where used and revoked tokens are recorded: `memory` (or nothing) keeps them in this
/// process; a `redis://` or `rediss://` URL shares them with every replica.
///
/// # Errors
///
/// An unknown value, or a Redis URL that does not parse.
pub(crate) fn state_stores(
    builder: JwtAuthConfigBuilder,
    replay_store: Option<&str>,
) -> Result<JwtAuthConfigBuilder, Box<dyn Error>> {
    match replay_store.unwrap_or("memory") {
        "memory" => Ok(builder.revocation_list(MemoryRevocationList::default())),
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            let redis = RedisConnection::open(url)?;
            Ok(builder
                .replay_store(RedisReplayStore::new(redis.clone()))
                .revocation_list(RedisRevocationList::new(redis)))
        }
        other => {
            Err(format!("REPLAY_STORE must be `memory` or a redis:// URL, not {other:?}").into())
        }
    }
}

/// The application: `/health`, `/ready` and `/metrics` outside the auth layer, everything
/// else behind it.
pub(crate) fn app(auth: JwtAuthLayer) -> Router {
    let _ = prometheus();
    let config = auth.verifier().config().clone();
    let store: Store = Arc::default();
    let single_use = Router::new()
        .route(
            "/transfers",
            post(transfer).route_layer(RequirePermission("write").single_use()),
        )
        .route(
            "/admin/revoke",
            post(revoke).route_layer(RequirePermission("admin")),
        )
        .with_state(config.revocations());
    let protected = Router::new()
        .route("/me", get(me))
        .route(
            "/documents",
            get(list).route_layer(RequirePermission("read")),
        )
        .route(
            "/documents",
            post(create).route_layer(RequirePermission("write")),
        )
        .with_state(store)
        .merge(single_use)
        .layer(auth);
    let public = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .with_state(config);
    public.merge(protected)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    logs::init();
    let listen: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    let audience =
        std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "https://api.example.com".into());

    // Without JWT_ISSUER, an embedded mock issuer stands in for the identity provider.
    let mock = match std::env::var("JWT_ISSUER") {
        Ok(_) => None,
        Err(_) => {
            let issuer = MockIssuer::builder()
                .audience(audience.clone())
                .start()
                .await;
            issuer.add_client("demo-client", "demo-secret", ["read", "write"]);
            Some(issuer)
        }
    };
    let issuer_url = match (&mock, std::env::var("JWT_ISSUER")) {
        (Some(mock), _) => mock.issuer().to_owned(),
        (None, Ok(url)) => url,
        (None, Err(e)) => return Err(e.into()),
    };

    let mut builder = JwtAuthConfig::builder()
        .issuer(issuer_url.clone())
        .audience(audience);
    if std::env::var_os("JWT_CACHE").is_some() {
        builder = builder.cache(CacheOptions::new());
    }
    let replay_store = std::env::var("REPLAY_STORE").ok();
    let builder = state_stores(builder, replay_store.as_deref())?;
    let cfg = builder.build()?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("API on http://{addr} (issuer {issuer_url})");

    if let Some(mock) = &mock {
        let read = mock.token().subject("reader").permissions(["read"]).sign();
        let write = mock
            .token()
            .subject("writer")
            .permissions(["read", "write"])
            .sign();
        println!("\nA read-only token and a read-write token from the embedded issuer:\n");
        println!("curl -i http://{addr}/documents -H 'Authorization: Bearer {read}'\n");
        println!(
            "curl -i -X POST http://{addr}/documents -H 'Authorization: Bearer {write}' \\\n  -H 'Content-Type: application/json' -d '{{\"title\":\"hello\"}}'\n"
        );
        let transfer = mock.token().subject("writer").permissions(["write"]).sign();
        let admin = mock.token().subject("admin").permissions(["admin"]).sign();
        println!("A single-use transfer (the second identical request gets 401):\n");
        println!(
            "curl -i -X POST http://{addr}/transfers -H 'Authorization: Bearer {transfer}' \\\n  -H 'Content-Type: application/json' -d '{{\"amount\":1}}'\n"
        );
        println!("Revoke every token of the writer (then the read-write token above gets 401):\n");
        println!(
            "curl -i -X POST http://{addr}/admin/revoke -H 'Authorization: Bearer {admin}' \\\n  -H 'Content-Type: application/json' -d '{{\"sub\":\"writer\"}}'\n"
        );
        println!("Or get one from the token endpoint:\n");
        println!(
            "curl -s {} -d grant_type=client_credentials -d client_id=demo-client -d client_secret=demo-secret\n",
            mock.token_url()
        );
    }

    axum::serve(listener, app(JwtAuthLayer::new(cfg)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
