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
//! token or every token of that subject, for the caller's own issuer; 204),
//! `GET /public/info` (exempt from authentication: `{"sub": ..}` with the caller's `sub`,
//! or `null` without a token; a bad token is still refused),
//! `GET /account/security` (step-up: `acr` `mfa` and `auth_time` at most 300 s old, else
//! 401 `insufficient_user_authentication`),
//! `GET /forwarded` (answers the `x-jwt-sub` header its handler received, forwarded from
//! the token's `sub`; a client-sent one never arrives).
//! `JWT_ALLOWED_CLIENTS` (comma-separated) admits only tokens whose `client_id` (or else
//! `azp`) is listed. `DPOP` is `off`, `allowed` (the default) or `required`, with proofs
//! checked against `PUBLIC_URL` (default `http://{LISTEN_ADDR}`) and proof `jti`s recorded
//! in the `REPLAY_STORE`.
//! `JWT_INTROSPECTION_CLIENT` (`id:secret`) turns on RFC 7662
//! introspection of opaque tokens at the endpoint the issuer's discovery names, with
//! `client_secret_basic`.
//! `JWT_CONFIG=path` (TOML, YAML or JSON) loads the whole configuration from a file
//! instead: no embedded mock issuer starts, `JWT_ISSUER` and `JWT_AUDIENCE` are ignored
//! (with a WARN), and SIGHUP or a change to the file's content reloads it without
//! restart (once per change: reading or touching the file reloads nothing).
//! `cargo run --example axum_server -- --check-config path` prints the effective
//! configuration as a file in the input's format (every default filled in, secrets
//! redacted) and checks that it builds, or prints its errors and exits non-zero; it
//! fetches nothing unless `--fetch` is added, which also loads every issuer's keys.
//! Permissions come from the `permissions` array or the space-delimited `scope`.
//! `JWT_API_KEYS_FILE=keys.toml` accepts API keys beside tokens: a `prefix` and
//! `[[api_keys]]` tables (`id`, `digest = "sha256:…"`, `permissions`, optional
//! `expires_at`), as `jwt-auth apikey new` prints them; keys come as
//! `Authorization: Bearer <key>` or `X-API-Key: <key>`, and the routes take them like
//! tokens. Whenever `JWT_API_KEYS_FILE` or `JWT_CONFIG` is set, SIGHUP (and a change of
//! the file's content) reloads the configuration, keys included.
//! `GET /whoami` (any credential): `{"kind": "jwt" | "api_key", "sub": ..}`.
//! `GET /ws`: a WebSocket that echoes text messages; browsers cannot set headers on the
//! handshake, so the token travels as the `Sec-WebSocket-Protocol` entry
//! `bearer.<token>` (the layer removes it), and when the client also offers `chat` the
//! 101 selects `chat`; without a valid token the upgrade gets 401, before any 101.
//! `GET /events?access_token=<token>` (the one path that takes a query token, for
//! `EventSource`): `text/event-stream`, one event `data: {"sub": ..}`, then the stream
//! ends. With `JWT_CONFIG`, the file's `[token]` table says where tokens are read
//! (`websocket_protocol = "bearer."`, `query = "access_token"`,
//! `query_paths = ["/events"]` for the same).
//! `JWT_PROFILE=fapi2` runs the API under the FAPI 2.0 profile (with `JWT_ISSUER`,
//! `JWT_AUDIENCE` and `PUBLIC_URL`, or the embedded issuer, which then signs PS256):
//! DPoP required (`DPOP` is ignored), server nonces when `DPOP_NONCE=on`, revocation
//! through the `REPLAY_STORE`'s list so `POST /admin/revoke` works, the profile's
//! one-hour maximum lifetime; the tokens must be RFC 9068 access tokens. What the profile
//! forbids is not mounted: no API keys, no query or subprotocol tokens (`/ws` and
//! `/events` then take the `Authorization` header like every route), no public route
//! (`/public/info` needs a token too). With `JWT_CONFIG`, the file's `profile` key says
//! it instead.

#[path = "support/logs.rs"]
mod logs;

use std::error::Error;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::convert::Infallible;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tower_jwt_auth::api_key::CredentialKind;
use tower_jwt_auth::cache::CacheOptions;
use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
use tower_jwt_auth::reload::ReloadHandle;
use tower_jwt_auth::rules::Exemption;
use tower_jwt_auth::settings::{FileWatcher, Format, Settings};
use tower_jwt_auth::state::{
    MemoryRevocationList, RedisConnection, RedisReplayStore, RedisRevocationList, Revocations,
};
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::{
    Authentication, Claims, ConfigError, JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer,
    Profile, RequirePermission, StandardClaims, StepUp, TokenSource,
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
async fn ready(State(config): State<CurrentConfig>) -> (StatusCode, String) {
    let config = config();
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

/// What kind of credential the caller holds, and whom it names (a token's subject, a
/// key's id).
async fn whoami(auth: Authentication, Claims(claims): Claims<StandardClaims>) -> Json<Value> {
    // The contract has two kinds: an introspected token is an OAuth access token too,
    // so it answers "jwt" like a verified JWT; a key answers its kind's own name.
    let kind = match auth.kind() {
        Some(kind @ CredentialKind::ApiKey) => kind.as_str(),
        _ => "jwt",
    };
    Json(json!({ "kind": kind, "sub": claims.sub }))
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

/// Public, but a caller who sends a token is known.
async fn public_info(claims: Option<Claims<StandardClaims>>) -> Json<Value> {
    let sub = claims.and_then(|c| c.sub.clone());
    Json(json!({ "sub": sub }))
}

/// Behind a step-up guard: only a recent MFA login gets here.
async fn account_security(Claims(claims): Claims<StandardClaims>) -> Json<Value> {
    Json(json!({ "sub": claims.sub, "step_up": "ok" }))
}

/// What an upstream behind a proxy sees: the forwarded claim, as a header.
async fn forwarded(headers: HeaderMap) -> Json<Value> {
    let sub = headers.get("x-jwt-sub").and_then(|v| v.to_str().ok());
    Json(json!({ "x-jwt-sub": sub }))
}

/// A WebSocket that echoes text messages, selecting the `chat` subprotocol when the
/// client offers it. The layer has verified the token (sent as the subprotocol entry
/// `bearer.<token>`) and removed it from the offer, so it can never be selected.
async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.protocols(["chat"]).on_upgrade(echo).into_response()
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let echoed = match message {
            Message::Text(text) => socket.send(Message::Text(text)).await,
            Message::Close(_) => return,
            _ => Ok(()),
        };
        if echoed.is_err() {
            return;
        }
    }
}

/// One server-sent event naming the caller, then the end of the stream.
async fn events(
    Claims(claims): Claims<StandardClaims>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let event = Event::default().data(json!({ "sub": claims.sub }).to_string());
    Sse::new(futures_util::stream::iter([Ok(event)]))
}

/// Where this API reads tokens when no configuration file says: the `Authorization`
/// header, the `bearer.` subprotocol entry of a WebSocket handshake, and the
/// `access_token` query parameter on `GET /events` alone (an `EventSource` cannot set
/// headers).
pub(crate) fn token_sources(builder: JwtAuthConfigBuilder) -> JwtAuthConfigBuilder {
    builder
        .token_source(
            TokenSource::bearer()
                .or(TokenSource::websocket_protocol("bearer."))
                .or(TokenSource::query("access_token")),
        )
        .query_token_paths(["/events"])
}

/// The policy of this API: `/public/info` needs no token, `sub` is forwarded as
/// `x-jwt-sub`, and with `allowed_clients` (comma-separated, `JWT_ALLOWED_CLIENTS`) only
/// those clients' tokens pass.
pub(crate) fn policy(
    builder: JwtAuthConfigBuilder,
    allowed_clients: Option<&str>,
) -> JwtAuthConfigBuilder {
    strict_policy(builder, allowed_clients)
        .exempt(Exemption::path("/public/info").method(Method::GET))
}

/// [`policy`] without the public route: under a profile every request needs a token.
pub(crate) fn strict_policy(
    builder: JwtAuthConfigBuilder,
    allowed_clients: Option<&str>,
) -> JwtAuthConfigBuilder {
    let builder = builder.forward_claim("sub", "x-jwt-sub");
    match allowed_clients {
        Some(list) => builder.allowed_clients(
            list.split(',')
                .map(str::trim)
                .filter(|client| !client.is_empty()),
        ),
        None => builder,
    }
}

/// Introspection of opaque tokens with the client `id:secret` (split at the first `:`).
///
/// # Errors
///
/// A value without `:`.
pub(crate) fn introspection(
    builder: JwtAuthConfigBuilder,
    client: Option<&str>,
) -> Result<JwtAuthConfigBuilder, Box<dyn Error>> {
    use tower_jwt_auth::introspection::{ClientAuth, Introspection};
    let Some(client) = client else {
        return Ok(builder);
    };
    let (id, secret) = client
        .split_once(':')
        .ok_or("JWT_INTROSPECTION_CLIENT must be id:secret")?;
    Ok(builder.introspection(Introspection::new(
        id,
        ClientAuth::client_secret_basic(secret),
    )))
}

/// API keys from `keys_file` (`JWT_API_KEYS_FILE`): its prefix and `[[api_keys]]`,
/// read at every build, presented as `Authorization: Bearer` or `X-API-Key`.
pub(crate) fn api_keys(
    builder: JwtAuthConfigBuilder,
    keys_file: Option<&Path>,
) -> JwtAuthConfigBuilder {
    match keys_file {
        Some(path) => builder.api_keys_file(path).api_key_header("X-API-Key"),
        None => builder,
    }
}

/// The keys file `JWT_API_KEYS_FILE` names.
fn keys_file() -> Option<PathBuf> {
    std::env::var_os("JWT_API_KEYS_FILE").map(PathBuf::from)
}

/// The builder a configuration file describes, with this API's own policy (the public
/// route, the forwarded `sub`) and the API keys of `JWT_API_KEYS_FILE` added.
///
/// # Errors
///
/// The file's errors, with the bad field's path and line.
pub(crate) fn file_builder(path: &Path) -> Result<JwtAuthConfigBuilder, ConfigError> {
    let builder = policy(Settings::from_file(path)?.builder()?, None);
    Ok(api_keys(builder, keys_file().as_deref()))
}

/// How the configuration watcher has fared so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reloads {
    /// Reloads tried: one per SIGHUP and one per change of the file's content.
    pub(crate) tried: u64,
    /// Of those, the ones refused (the file did not read or build); the previous
    /// configuration stayed.
    pub(crate) refused: u64,
}

/// Reloads the file for each reason `watcher` gives (SIGHUP, or a change of the file's
/// content; reading or touching it is none), for as long as the runtime runs. The
/// receiver follows the count of reloads, which tests read; the log says the same.
pub(crate) fn watch_config(
    watcher: FileWatcher,
    path: PathBuf,
    reload: ReloadHandle,
) -> tokio::sync::watch::Receiver<Reloads> {
    watch_with(watcher, reload, move || {
        file_builder(&path).map_err(Into::into)
    })
}

/// Rebuilds with `make` for each reason `watcher` gives, as [`watch_config`] does for a
/// configuration file.
pub(crate) fn watch_with(
    mut watcher: FileWatcher,
    reload: ReloadHandle,
    make: impl Fn() -> Result<JwtAuthConfigBuilder, Box<dyn Error + Send + Sync>> + Send + 'static,
) -> tokio::sync::watch::Receiver<Reloads> {
    let (count, counted) = tokio::sync::watch::channel(Reloads::default());
    tokio::spawn(async move {
        while let Some(reason) = watcher.changed().await {
            let outcome = match make() {
                Ok(builder) => reload.reload(builder).await.map_err(Into::into),
                Err(error) => Err(error),
            };
            let refused = outcome.is_err();
            match outcome {
                Ok(changed) => tracing::info!(?reason, %changed, "configuration reloaded"),
                Err(error) => tracing::error!(
                    ?reason,
                    %error,
                    "configuration reload refused; the previous configuration stays"
                ),
            }
            // Sent whether or not anyone follows the count.
            count.send_modify(|reloads| {
                reloads.tried += 1;
                reloads.refused += u64::from(refused);
            });
        }
        tracing::warn!("the configuration file watcher stopped; restart to reload");
    });
    counted
}

/// `builder` built on a runtime of its own that never runs a task, on a thread of its
/// own: no key store starts fetching and no state store connects.
fn build_idle(
    builder: JwtAuthConfigBuilder,
) -> Result<tower_jwt_auth::JwtAuthConfig, Box<dyn Error + Send + Sync>> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<_, Box<dyn Error + Send + Sync>> {
                let idle = tokio::runtime::Builder::new_current_thread().build()?;
                let _inside = idle.enter();
                Ok(builder.build()?)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `--check-config path [--fetch]`: the effective configuration as a file in the
/// input's format (every default filled in, secrets redacted) and whether it builds, or
/// its errors. Nothing is fetched unless `fetch`: then the keys of every issuer are
/// fetched once (for at most 10 s) and their state is reported.
pub(crate) async fn check_config(path: &Path, fetch: bool) -> std::process::ExitCode {
    let format = Format::of(path).unwrap_or(Format::Toml);
    let checked = Settings::from_file(path).map_err(Into::into).and_then(
        |settings| -> Result<_, Box<dyn Error + Send + Sync>> {
            let shown = settings.render(format)?;
            let builder = settings.builder()?;
            let config = if fetch {
                builder.build()?
            } else {
                build_idle(builder)?
            };
            Ok((shown, config))
        },
    );
    let (shown, config) = match checked {
        Ok(checked) => checked,
        Err(error) => {
            eprintln!("{}: {error}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{shown}");
    if fetch
        && !config
            .wait_until_ready(std::time::Duration::from_secs(10))
            .await
    {
        for health in config.key_health() {
            eprintln!("{health:?}");
        }
        eprintln!(
            "{}: valid, but not every issuer's keys loaded",
            path.display()
        );
        return std::process::ExitCode::FAILURE;
    }
    println!("{}: valid", path.display());
    std::process::ExitCode::SUCCESS
}

/// DPoP in the mode `DPOP` names (`off`, `allowed`, `required`; `allowed` when unset),
/// with proofs naming URLs under `public_url`.
///
/// # Errors
///
/// An unknown mode.
pub(crate) fn sender_constraints(
    builder: JwtAuthConfigBuilder,
    dpop: Option<&str>,
    public_url: &str,
) -> Result<JwtAuthConfigBuilder, Box<dyn Error>> {
    let mode = match dpop.unwrap_or("allowed") {
        "off" => return Ok(builder),
        "allowed" => DpopMode::Allowed,
        "required" => DpopMode::Required,
        other => {
            return Err(format!("DPOP must be off, allowed or required, not {other:?}").into());
        }
    };
    Ok(builder.dpop(DpopOptions::new(mode).public_base_url(public_url)))
}

/// The FAPI 2.0 profile (`JWT_PROFILE=fapi2`): locked, with DPoP required for proofs
/// under `public_url` in the algorithms FAPI 2.0 allows, and server nonces when
/// `nonces` (`DPOP_NONCE=on`); the revocation list comes with the stores.
///
/// # Errors
///
/// A profile other than `fapi2`, or a `DPOP_NONCE` other than `on` or `off`.
pub(crate) fn fapi_profile(
    builder: JwtAuthConfigBuilder,
    profile: &str,
    nonces: Option<&str>,
    public_url: &str,
) -> Result<JwtAuthConfigBuilder, Box<dyn Error + Send + Sync>> {
    use tower_jwt_auth::Algorithm::{ES256, EdDSA, PS256};
    if profile != "fapi2" {
        return Err(format!("JWT_PROFILE must be fapi2, not {profile:?}").into());
    }
    let dpop = DpopOptions::new(DpopMode::Required)
        .public_base_url(public_url)
        .algorithms([PS256, ES256, EdDSA]);
    let dpop = match nonces.unwrap_or("off") {
        "off" => dpop,
        "on" => {
            let mut secret = [0u8; 32];
            aws_lc_rs::rand::fill(&mut secret).map_err(|_| "no random source")?;
            dpop.nonces(secret.to_vec(), Duration::from_secs(300))
        }
        other => return Err(format!("DPOP_NONCE must be on or off, not {other:?}").into()),
    };
    Ok(builder.profile(Profile::Fapi2).dpop(dpop))
}

/// A curl command for `GET /documents` with a DPoP-bound token and a fresh proof by
/// `client` for it.
fn dpop_curl(
    addr: SocketAddr,
    public_url: &str,
    client: &tower_jwt_auth::testing::TestKey,
    bound: &str,
) -> String {
    let url = format!("{public_url}/documents");
    let proof = tower_jwt_auth::testing::DpopProof::new(client, "GET", &url)
        .token(bound)
        .sign();
    format!(
        "curl -i http://{addr}/documents -H 'Authorization: DPoP {bound}' \\\n  -H 'DPoP: {proof}'\n"
    )
}

/// The environment that decides what the API mounts: `JWT_PROFILE`, `DPOP_NONCE`,
/// `DPOP` and `PUBLIC_URL`.
pub(crate) struct Mode<'a> {
    pub(crate) profile: Option<&'a str>,
    pub(crate) nonces: Option<&'a str>,
    pub(crate) dpop: Option<&'a str>,
    pub(crate) public_url: &'a str,
}

/// What the API mounts beside its [`strict_policy`]: under `JWT_PROFILE` the profile and
/// nothing it forbids; otherwise the public route, the WebSocket and query token
/// sources, the API keys of `keys` and DPoP as `DPOP` says.
///
/// # Errors
///
/// A `JWT_PROFILE`, `DPOP_NONCE` or `DPOP` the example does not know.
pub(crate) fn mounted(
    builder: JwtAuthConfigBuilder,
    mode: &Mode<'_>,
    keys: Option<&Path>,
) -> Result<JwtAuthConfigBuilder, Box<dyn Error + Send + Sync>> {
    if let Some(profile) = mode.profile {
        return fapi_profile(builder, profile, mode.nonces, mode.public_url);
    }
    let builder = builder.exempt(Exemption::path("/public/info").method(Method::GET));
    let builder = api_keys(token_sources(builder), keys);
    Ok(sender_constraints(builder, mode.dpop, mode.public_url).map_err(|e| e.to_string())?)
}

/// What sets the state stores of a builder.
pub(crate) type Stores = Arc<dyn Fn(JwtAuthConfigBuilder) -> JwtAuthConfigBuilder + Send + Sync>;

/// Where used and revoked tokens are recorded: `memory` (or nothing) keeps them in this
/// process; a `redis://` or `rediss://` URL shares them with every replica.
/// They are made once and handed to every builder they are applied to, so that a reload
/// keeps what was used and revoked.
///
/// # Errors
///
/// An unknown value, or a Redis URL that does not parse.
pub(crate) fn shared_stores(replay_store: Option<&str>) -> Result<Stores, Box<dyn Error>> {
    match replay_store.unwrap_or("memory") {
        "memory" => {
            let list = Arc::new(MemoryRevocationList::default());
            Ok(Arc::new(move |builder| {
                builder.revocation_list(Arc::clone(&list))
            }))
        }
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            let redis = RedisConnection::open(url)?;
            Ok(Arc::new(move |builder| {
                builder
                    .replay_store(RedisReplayStore::new(redis.clone()))
                    .revocation_list(RedisRevocationList::new(redis.clone()))
            }))
        }
        other => {
            Err(format!("REPLAY_STORE must be `memory` or a redis:// URL, not {other:?}").into())
        }
    }
}

/// The configuration in force (it changes on reload).
pub(crate) type CurrentConfig = Arc<dyn Fn() -> JwtAuthConfig + Send + Sync>;

/// The application: `/health`, `/ready` and `/metrics` outside the auth layer, everything
/// else behind it.
pub(crate) fn app(auth: JwtAuthLayer) -> Router {
    let config = auth.verifier().config().clone();
    app_with(auth, Arc::new(move || config.clone()))
}

/// The application behind a reloadable layer: readiness follows the configuration in
/// force.
pub(crate) fn app_with(auth: JwtAuthLayer, current: CurrentConfig) -> Router {
    let _ = prometheus();
    let config = current();
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
    let policy = Router::new()
        .route("/public/info", get(public_info))
        .route(
            "/account/security",
            get(account_security)
                .route_layer(StepUp::new().acr(["mfa"]).max_age(Duration::from_secs(300))),
        )
        .route("/forwarded", get(forwarded));
    let protected = Router::new()
        .route("/me", get(me))
        .route("/whoami", get(whoami))
        .route("/ws", get(ws))
        .route("/events", get(events))
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
        .merge(policy)
        .layer(auth);
    let public = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .with_state(current);
    public.merge(protected)
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode, Box<dyn Error>> {
    logs::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, path] if flag == "--check-config" => {
            return Ok(check_config(Path::new(path), false).await);
        }
        [flag, path, fetch] | [flag, fetch, path]
            if flag == "--check-config" && fetch == "--fetch" =>
        {
            return Ok(check_config(Path::new(path), true).await);
        }
        _ => {}
    }
    let listen: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    if let Ok(path) = std::env::var("JWT_CONFIG") {
        serve_config_file(PathBuf::from(path), listen).await?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let audience =
        std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "https://api.example.com".into());

    let profile = std::env::var("JWT_PROFILE").ok();
    // Without JWT_ISSUER, an embedded mock issuer stands in for the identity provider
    // (signing PS256 under a profile, which allows neither RS256 nor HS256).
    let mock = match std::env::var("JWT_ISSUER") {
        Ok(_) => None,
        Err(_) => {
            let key = match profile {
                Some(_) => tower_jwt_auth::testing::TestKey::rsa_pss(),
                None => tower_jwt_auth::testing::TestKey::rsa(),
            };
            let issuer = MockIssuer::builder()
                .key(key)
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

    let cache = std::env::var_os("JWT_CACHE").is_some();
    let replay_store = std::env::var("REPLAY_STORE").ok();
    let stores = shared_stores(replay_store.as_deref())?;
    let allowed_clients = std::env::var("JWT_ALLOWED_CLIENTS").ok();
    // With the embedded issuer, introspection is on with a client it knows.
    let introspection_client = std::env::var("JWT_INTROSPECTION_CLIENT")
        .ok()
        .or_else(|| mock.as_ref().map(|_| "api:api-secret".to_owned()));
    if let (Some(mock), Some(spec)) = (&mock, &introspection_client)
        && let Some((id, secret)) = spec.split_once(':')
    {
        mock.add_client(id, secret, Vec::<String>::new());
    }
    let keys = keys_file();
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let public_url = std::env::var("PUBLIC_URL").unwrap_or_else(|_| format!("http://{addr}"));
    let dpop = std::env::var("DPOP").ok();
    let nonces = std::env::var("DPOP_NONCE").ok();
    // What a profile forbids is never mounted: no API keys, no query or subprotocol tokens.
    let keys = keys.filter(|_| profile.is_none());
    // The whole configuration, made again for each reload (the stores are shared).
    let make = {
        let (issuer_url, public_url, dpop) = (issuer_url.clone(), public_url.clone(), dpop.clone());
        let (keys, profile, nonces) = (keys.clone(), profile.clone(), nonces.clone());
        move || -> Result<JwtAuthConfigBuilder, Box<dyn Error + Send + Sync>> {
            let mut builder = JwtAuthConfig::builder()
                .issuer(issuer_url.clone())
                .audience(audience.clone());
            if cache {
                builder = builder.cache(CacheOptions::new());
            }
            let builder = strict_policy(stores(builder), allowed_clients.as_deref());
            let builder = introspection(builder, introspection_client.as_deref())
                .map_err(|e| e.to_string())?;
            let mode = Mode {
                profile: profile.as_deref(),
                nonces: nonces.as_deref(),
                dpop: dpop.as_deref(),
                public_url: &public_url,
            };
            mounted(builder, &mode, keys.as_deref())
        }
    };
    // Watching starts before the first read, so that an edit between the two is seen.
    let watcher = keys
        .as_ref()
        .map(|path| FileWatcher::new([path]))
        .transpose()?;
    let cfg = make().map_err(|e| e.to_string())?.build()?;
    println!("API on http://{addr} (issuer {issuer_url}, public URL {public_url})");

    if let (Some(mock), Some(_)) = (&mock, &profile) {
        // An RFC 9068 access token bound to a DPoP key, and a proof for one GET.
        let client = tower_jwt_auth::testing::TestKey::ec_p256();
        let bound = mock
            .token()
            .typ("at+jwt")
            .subject("reader")
            .claim("client_id", "demo-client")
            .permissions(["read"])
            .expires_in_secs(600)
            .dpop_bound(&client)
            .sign();
        println!(
            "\nFAPI 2.0: a DPoP-bound PS256 access token and a proof for one GET (good for 60 s, once):\n"
        );
        println!("{}", dpop_curl(addr, &public_url, &client, &bound));
        if nonces.as_deref() == Some("on") {
            println!(
                "With DPOP_NONCE=on the first call answers 401 use_dpop_nonce and a DPoP-Nonce header: put that nonce in the next proof.\n"
            );
        }
    } else if let Some(mock) = &mock {
        // Tokens of the demo client, so that JWT_ALLOWED_CLIENTS=demo-client admits them.
        let token = || mock.token().claim("client_id", "demo-client");
        let read = token().subject("reader").permissions(["read"]).sign();
        let write = token()
            .subject("writer")
            .permissions(["read", "write"])
            .sign();
        let admin = token().subject("admin").permissions(["admin"]).sign();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mfa = token()
            .subject("reader")
            .claim("acr", "mfa")
            .claim("auth_time", now)
            .sign();
        let opaque = mock.opaque(&token().subject("reader").permissions(["read"]));
        // The variables the guide's curl commands use, ready to paste into a shell.
        println!("\nTokens from the embedded issuer, for the guide's curl commands:\n");
        println!("export READ_TOKEN={read}");
        println!("export WRITE_TOKEN={write}");
        println!("export ADMIN_TOKEN={admin}");
        println!("export MFA_TOKEN={mfa}");
        println!("export OPAQUE_TOKEN={opaque}");
        println!("\nA read-only token and a read-write token from the embedded issuer:\n");
        println!("curl -i http://{addr}/documents -H 'Authorization: Bearer {read}'\n");
        println!(
            "curl -i -X POST http://{addr}/documents -H 'Authorization: Bearer {write}' \\\n  -H 'Content-Type: application/json' -d '{{\"title\":\"hello\"}}'\n"
        );
        let transfer = token().subject("writer").permissions(["write"]).sign();
        println!("A single-use transfer (the second identical request gets 401):\n");
        println!(
            "curl -i -X POST http://{addr}/transfers -H 'Authorization: Bearer {transfer}' \\\n  -H 'Content-Type: application/json' -d '{{\"amount\":1}}'\n"
        );
        println!("Revoke every token of the writer (then the read-write token above gets 401):\n");
        println!(
            "curl -i -X POST http://{addr}/admin/revoke -H 'Authorization: Bearer {admin}' \\\n  -H 'Content-Type: application/json' -d '{{\"sub\":\"writer\"}}'\n"
        );
        println!("Public, with or without a token:\n");
        println!("curl -s http://{addr}/public/info -H 'Authorization: Bearer {read}'\n");
        println!(
            "Step-up (a recent MFA login; the read token above gets 401 insufficient_user_authentication):\n"
        );
        println!("curl -i http://{addr}/account/security -H 'Authorization: Bearer {mfa}'\n");
        println!("A forwarded claim (the client's own x-jwt-sub is dropped):\n");
        println!(
            "curl -s http://{addr}/forwarded -H 'Authorization: Bearer {read}' -H 'x-jwt-sub: admin'\n"
        );
        if dpop.as_deref() != Some("off") {
            let client = tower_jwt_auth::testing::TestKey::ec_p256();
            let bound = token()
                .subject("reader")
                .permissions(["read"])
                .dpop_bound(&client)
                .sign();
            println!(
                "DPoP: a token bound to a client key, and a proof for one GET (good for 60 s, once):\n"
            );
            println!("{}", dpop_curl(addr, &public_url, &client, &bound));
        }
        println!("A WebSocket (echo; the token as a subprotocol entry, `chat` selected):\n");
        println!("websocat --protocol 'chat, bearer.{read}' ws://{addr}/ws\n");
        println!("Server-sent events, the token in the query on this path only:\n");
        println!("curl -N 'http://{addr}/events?access_token={read}'\n");
        println!("An opaque token, checked by introspection at the issuer:\n");
        println!("curl -i http://{addr}/documents -H 'Authorization: Bearer {opaque}'\n");
        println!("Or get one from the token endpoint:\n");
        println!(
            "curl -s {} -d grant_type=client_credentials -d client_id=demo-client -d client_secret=demo-secret\n",
            mock.token_url()
        );
    }

    if let Some(path) = &keys {
        println!(
            "API keys from {} (reloaded on SIGHUP and on change), as a bearer token or X-API-Key:\n",
            path.display()
        );
        println!("curl -s http://{addr}/whoami -H \"X-API-Key: $API_KEY\"\n");
    }
    let app = match watcher {
        Some(watcher) => {
            let (layer, reload) = JwtAuthLayer::new(cfg).reloadable();
            watch_with(watcher, reload.clone(), make);
            let current: CurrentConfig = Arc::new(move || reload.config());
            app_with(layer, current)
        }
        None => app(JwtAuthLayer::new(cfg)),
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The API configured by a file, reloaded on SIGHUP and when its content changes.
async fn serve_config_file(path: PathBuf, listen: SocketAddr) -> Result<(), Box<dyn Error>> {
    for ignored in ["JWT_ISSUER", "JWT_AUDIENCE", "JWT_PROFILE"] {
        if std::env::var_os(ignored).is_some() {
            tracing::warn!(
                "{ignored} is ignored: JWT_CONFIG={} configures the issuers and the profile (its `profile` key)",
                path.display()
            );
        }
    }
    // Watching starts before the first read, so that an edit between the two is seen.
    let watcher = FileWatcher::new(std::iter::once(path.clone()).chain(keys_file()))?;
    let config = file_builder(&path)?.build()?;
    let (layer, reload) = JwtAuthLayer::new(config).reloadable();
    watch_config(watcher, path.clone(), reload.clone());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!(
        "API on http://{} (configuration {}, reloaded on SIGHUP and on change)",
        listener.local_addr()?,
        path.display()
    );
    let current: CurrentConfig = Arc::new(move || reload.config());
    axum::serve(listener, app_with(layer, current))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
