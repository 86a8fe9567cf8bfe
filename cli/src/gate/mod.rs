//! `jwt-auth gate`: a decision service for proxies (nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `ForwardAuth`, Envoy's HTTP `ext_authz`), on the library's
//! layer and settings. `section.rs` reads the `[gate]` table, `original.rs` the request
//! a check is about, `decide.rs` decides it, `ops.rs` serves the operations endpoints;
//! this file loads, serves and reloads.

mod decide;
mod ops;
mod original;
mod section;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tower_jwt_auth::reload::ReloadHandle;
use tower_jwt_auth::settings::{FileWatcher, Format, Settings};
use tower_jwt_auth::{ConfigError, JwtAuthConfigBuilder, JwtAuthLayer};

use crate::args::Gate;
use crate::commands::{Failure, Outcome};
use decide::{Front, Routes};
use section::{GateSection, Table};

/// Runs the gate until SIGINT or SIGTERM, or checks its file with `--check-config`.
pub(crate) async fn run(args: Gate) -> Outcome {
    if args.check_config {
        return check(&args.config);
    }
    logging();
    let metrics = ops::install_metrics()?;
    // Before the first read, so that a change between the two is not missed.
    let watcher = FileWatcher::new([&args.config])
        .map_err(|error| format!("{}: cannot watch: {error}", args.config.display()))?;
    let (builder, table) = load(&args.config).map_err(Failure::Other)?;
    let config = builder
        .build()
        .map_err(|error| named(&args.config, &error))?;
    let (layer, reload) = JwtAuthLayer::new(config).reloadable();
    let routes = Arc::new(ArcSwap::from_pointee(Routes::new(table)));
    let front = Front::new(&layer, Arc::clone(&routes));

    let listener = TcpListener::bind(args.listen).await?;
    println!("gate on http://{}", listener.local_addr()?);
    if let Some(address) = args.ops_listen {
        let ops = TcpListener::bind(address).await?;
        println!("operations on http://{}", ops.local_addr()?);
        tokio::spawn(ops::serve(ops, metrics.clone(), reload.clone()));
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(10));
        loop {
            every.tick().await;
            metrics.run_upkeep();
        }
    });
    tokio::spawn(watch(watcher, args.config, reload, routes));
    // Answers are one small write each: no reason to let Nagle hold them back.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
    });
    axum::serve(listener, Router::new().fallback_service(front))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// The builder the file and the `JWT_*` variables describe, with the gate's forwarded
/// claims added, and the compiled `[gate]` table.
///
/// # Errors
///
/// The file's errors, with the bad field's path and line; an option the gate cannot
/// honour.
fn load(path: &Path) -> Result<(JwtAuthConfigBuilder, Table), String> {
    let named = |error: ConfigError| format!("{}: {error}", path.display());
    let (settings, section) =
        Settings::from_file_with::<GateSection>(path, "gate").map_err(named)?;
    // A request URL from an extension needs code in front of the layer; the gate has
    // none, and every check would fail. The public base URL is the gate's way.
    let effective = settings.render(Format::Json).map_err(named)?;
    let effective: serde_json::Value = serde_json::from_str(&effective).unwrap_or_default();
    if effective["dpop"]["trusted_url_extension"] == true {
        return Err(format!(
            "{}: dpop.trusted_url_extension cannot work in the gate, which has no code to \
             insert the URL: set dpop.public_base_url instead",
            path.display()
        ));
    }
    // The layer takes these tokens out of the request before the application sees it;
    // behind the gate, the proxy sends the request upstream as it came, token included.
    for source in ["websocket_protocol", "query"] {
        if !effective["token"][source].is_null() {
            return Err(format!(
                "{}: token.{source} cannot work in the gate: the gate sees a copy of the \
                 request, and the proxy sends the original upstream with the token in it; \
                 send tokens in a header",
                path.display()
            ));
        }
    }
    let mut builder = Settings::from_env("JWT_")
        .and_then(|env| env.apply(settings.builder()?))
        .map_err(named)?;
    let section = section.unwrap_or_default();
    // A profile needs a valid token on every request: the library's layer stays strict
    // under one, so a public route would not be what the file says.
    if let (Some(profile), Some(i)) = (effective["profile"].as_str(), section.public_route()) {
        return Err(format!(
            "{}: gate.routes[{i}]: a public route cannot be served under profile {profile}, \
             which needs a valid token on every request",
            path.display()
        ));
    }
    for (claim, header) in section.forwarded() {
        builder = builder.forward_claim(claim, header.as_str());
    }
    Ok((builder, section.compile()))
}

fn named(path: &Path, error: &ConfigError) -> Failure {
    Failure::Other(format!("{}: {error}", path.display()))
}

/// `--check-config`: the file read and built on a runtime that never runs a task, so
/// nothing is fetched and no store connects.
fn check(path: &Path) -> Outcome {
    let (builder, table) = load(path).map_err(Failure::Other)?;
    let config = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let idle = tokio::runtime::Builder::new_current_thread().build()?;
                let _inside = idle.enter();
                builder.build().map_err(|error| named(path, &error))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    let issuers: Vec<&str> = config.issuers().collect();
    println!(
        "{}: valid; issuers {}; {} route(s){}",
        path.display(),
        issuers.join(", "),
        table.routes.len(),
        table
            .path_prefix
            .as_deref()
            .map(|prefix| format!("; path prefix {prefix}"))
            .unwrap_or_default(),
    );
    Ok(ExitCode::SUCCESS)
}

/// Reloads the file for each reason `watcher` gives (SIGHUP, or a change of its
/// content): the library's configuration first, then the `[gate]` table, so that a file
/// that does not build changes neither.
async fn watch(
    mut watcher: FileWatcher,
    path: PathBuf,
    reload: ReloadHandle,
    routes: Arc<ArcSwap<Routes>>,
) {
    while let Some(reason) = watcher.changed().await {
        let outcome = match load(&path) {
            Ok((builder, table)) => reload
                .reload(builder)
                .await
                .map(|changed| (changed, table))
                .map_err(|error| format!("{}: {error}", path.display())),
            Err(error) => Err(error),
        };
        match outcome {
            Ok((changed, table)) => {
                let count = table.routes.len();
                routes.store(Arc::new(Routes::new(table)));
                tracing::info!(?reason, %changed, routes = count, "configuration reloaded");
            }
            Err(error) => tracing::error!(
                ?reason,
                %error,
                "configuration reload refused; the previous configuration stays"
            ),
        }
    }
    tracing::warn!("the configuration file watcher stopped; restart to reload");
}

/// Logs to standard error at `RUST_LOG`'s levels (INFO by default).
fn logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// SIGINT, or SIGTERM on Unix.
async fn shutdown() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
