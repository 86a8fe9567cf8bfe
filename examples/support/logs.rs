//! Logs for the examples: warnings by default, more with `RUST_LOG`
//! (`RUST_LOG=tower_jwt_auth=debug` shows key loads, refetches and each rejection).

/// Installs a tracing subscriber that honours `RUST_LOG`.
pub(crate) fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second call (examples started from tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}
