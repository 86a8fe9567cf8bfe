//! The operations listener (`--ops-listen`): `/metrics` in Prometheus text, `/ready`
//! once every issuer's keys have loaded, `/health` while the process answers.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tower_jwt_auth::reload::ReloadHandle;

/// The process-wide recorder the library's metrics go to.
///
/// # Errors
///
/// Another recorder is already installed.
pub(crate) fn install_metrics() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|error| format!("metrics: {error}"))
}

#[derive(Clone)]
struct Ops {
    metrics: PrometheusHandle,
    reload: ReloadHandle,
}

/// Serves the three endpoints on `listener` for as long as the runtime runs.
pub(crate) async fn serve(listener: TcpListener, metrics: PrometheusHandle, reload: ReloadHandle) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/ready", get(ready))
        .route("/health", get(|| async { "ok" }))
        .with_state(Ops { metrics, reload });
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the operations listener stopped");
    }
}

/// Without the exporter's own listener, histograms are drained on each scrape.
async fn scrape(State(ops): State<Ops>) -> impl IntoResponse {
    ops.metrics.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics.render(),
    )
}

/// 200 once every issuer's keys have loaded (fresh or stale), else 503 naming each
/// issuer's state: a gate that cannot verify tokens should not get checks.
async fn ready(State(ops): State<Ops>) -> (StatusCode, String) {
    let config = ops.reload.config();
    let statuses: Vec<_> = config.key_health().iter().map(|h| h.status()).collect();
    if statuses.iter().all(|status| status.is_ready()) {
        (StatusCode::OK, "ready".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{statuses:?}"))
    }
}
