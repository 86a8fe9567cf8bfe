//! [`RemoteJwks`]: an issuer's keys, fetched over HTTP and kept fresh in the background.
//!
//! The request path never waits for the network except in two bounded cases: a request
//! that arrives while the very first load is in flight waits for it, and a token whose
//! `kid` is unknown triggers one shared refetch (at most one per cooldown). Both waits
//! end after the fetch timeout.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};
use reqwest::Url;
use tokio::sync::{oneshot, watch};

use super::{KeySet, KeyStore, KeysFuture};
use crate::error::{ConfigError, ConfigErrorKind};

/// How a [`RemoteJwks`] fetches and refreshes keys. Every default is explained on its
/// setter.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::RemoteOptions;
///
/// let options = RemoteOptions::new()
///     .refresh_interval(Duration::from_secs(600))
///     .fetch_timeout(Duration::from_secs(3));
/// # let _ = options;
/// ```
#[derive(Clone)]
#[must_use]
pub struct RemoteOptions {
    client: Option<reqwest::Client>,
    refresh_interval: Duration,
    min_max_age: Duration,
    max_max_age: Duration,
    fetch_timeout: Duration,
    max_body_len: usize,
    cooldown: Duration,
    max_staleness: Option<Duration>,
    backoff_initial: Duration,
    backoff_max: Duration,
    allow_http: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            client: None,
            refresh_interval: Duration::from_secs(300),
            min_max_age: Duration::from_secs(60),
            max_max_age: Duration::from_secs(24 * 3600),
            fetch_timeout: Duration::from_secs(5),
            max_body_len: 1024 * 1024,
            cooldown: Duration::from_secs(10),
            max_staleness: None,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            allow_http: false,
        }
    }
}

impl fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("custom_client", &self.client.is_some())
            .field("refresh_interval", &self.refresh_interval)
            .field("max_age_bounds", &(self.min_max_age, self.max_max_age))
            .field("fetch_timeout", &self.fetch_timeout)
            .field("max_body_len", &self.max_body_len)
            .field("cooldown", &self.cooldown)
            .field("max_staleness", &self.max_staleness)
            .field("backoff", &(self.backoff_initial, self.backoff_max))
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

impl RemoteOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The HTTP client for every request (discovery and JWKS): use it to add a private CA,
    /// a proxy or default headers.
    ///
    /// By default a client with reqwest's rustls TLS (aws-lc-rs crypto) and the
    /// platform's certificate verifier is built: public identity providers work with no
    /// OpenSSL or other system library. Proxy settings from the environment apply, except
    /// to loopback URLs.
    ///
    /// An identity provider behind a private CA:
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_jwt_auth::RemoteOptions;
    ///
    /// let ca = reqwest::Certificate::from_pem(&std::fs::read("corp-root-ca.pem")?)?;
    /// let client = reqwest::Client::builder().tls_certs_merge([ca]).build()?;
    /// let options = RemoteOptions::new().http_client(client);
    /// # let _ = options;
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How often keys are refreshed when the issuer sends no `Cache-Control: max-age`:
    /// 5 minutes. A rotated key is picked up before that by the unknown-`kid` refetch; the
    /// interval bounds how long a removed key keeps verifying. Each wait is varied by
    /// ±10 % so that many instances do not fetch in step.
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The bounds a `Cache-Control: max-age` is clamped to: 1 minute and 24 hours. The
    /// lower bound protects the issuer from a tiny max-age, the upper one keeps removed
    /// keys from lingering for days.
    pub fn max_age_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.min_max_age = min;
        self.max_max_age = max.max(min);
        self
    }

    /// The limit for one HTTP request, and for how long a request waits on the first load
    /// or on an unknown-`kid` refetch: 5 seconds.
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The largest discovery or JWKS body read: 1 MiB. Real key sets are a few kilobytes.
    pub fn max_body_len(mut self, len: usize) -> Self {
        self.max_body_len = len;
        self
    }

    /// The least time between two refetches caused by unknown `kid`s: 10 seconds. A flood
    /// of tokens with random `kid`s then costs the issuer one request per cooldown, and a
    /// `kid` still unknown after a refetch is refused without another for that long.
    /// Scheduled refreshes do not start a cooldown.
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// How long the last good key set stays in use while every refresh fails: unlimited
    /// by default, because an identity-provider outage should not take the API down with
    /// it. Past this age requests get 503.
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = Some(max);
        self
    }

    /// The retry delays after a failed fetch: from 1 second, doubling, up to 5 minutes,
    /// with jitter.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// Allows plain `http://` URLs for hosts other than loopback. Keys fetched without TLS
    /// can be replaced by anyone on the network path; only for closed test networks.
    pub fn dangerous_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }
}

/// What a [`RemoteJwks`] has, for readiness probes and diagnostics.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysStatus {
    /// The last fetch succeeded; `age` is the time since.
    Loaded {
        /// Time since the key set was last confirmed.
        age: Duration,
    },
    /// Keys are in use, but the last fetch failed.
    Stale {
        /// Time since the key set was last confirmed.
        since: Duration,
        /// Why the last fetch failed.
        last_error: String,
    },
    /// No key set has loaded yet.
    NeverLoaded {
        /// Why the last fetch failed, if one did.
        last_error: Option<String>,
    },
}

impl KeysStatus {
    /// Whether tokens can be verified (keys are loaded, fresh or stale).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        !matches!(self, Self::NeverLoaded { .. })
    }
}

/// A health handle for a [`RemoteJwks`]. It does not keep the store or its refresher
/// alive.
///
/// ```no_run
/// # async fn probe(health: tower_jwt_auth::JwksHealth) -> http::StatusCode {
/// // A readiness probe: ready once keys have loaded.
/// if health.status().is_ready() { http::StatusCode::OK } else { http::StatusCode::SERVICE_UNAVAILABLE }
/// # }
/// ```
#[derive(Clone)]
pub struct JwksHealth {
    shared: Arc<Shared>,
}

impl JwksHealth {
    /// The current status.
    #[must_use]
    pub fn status(&self) -> KeysStatus {
        let state = self.shared.lock();
        match (state.confirmed_at, &state.last_error) {
            (None, error) => KeysStatus::NeverLoaded {
                last_error: error.clone(),
            },
            (Some(at), None) => KeysStatus::Loaded { age: at.elapsed() },
            (Some(at), Some(error)) => KeysStatus::Stale {
                since: at.elapsed(),
                last_error: error.clone(),
            },
        }
    }

    /// Whether the background refresher is running. It starts with the first use inside
    /// a tokio runtime and stops when the last handle to the store is dropped.
    #[must_use]
    pub fn is_refreshing(&self) -> bool {
        self.shared.running.load(Ordering::Acquire)
    }
}

impl fmt::Debug for JwksHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksHealth")
            .field("status", &self.status())
            .finish()
    }
}

/// An issuer's keys, fetched by OIDC discovery or from a JWKS URL and refreshed in the
/// background. Implements [`KeyStore`]; cheap to clone (clones share everything).
///
/// - Keys are swapped in whole ([`arc_swap`]): readers never lock and never wait.
/// - Refresh every 5 minutes, or as `Cache-Control: max-age` says within [1 min, 24 h],
///   with ±10 % jitter, and conditional requests with `ETag`.
/// - A token with an unknown `kid` causes one refetch shared by all requests waiting on
///   it, at most once per 10-second cooldown.
/// - Failed fetches keep the last good keys and retry with exponential backoff; a
///   malformed JWK is skipped, not the set.
/// - Creating the store never blocks and never fails because the issuer is unreachable.
///   Inside a tokio runtime the first fetch starts at once; outside, on first use.
/// - The refresher task ends when the last clone is dropped.
#[derive(Clone)]
pub struct RemoteJwks {
    inner: Arc<Inner>,
}

enum Source {
    Discovery { issuer: String, url: Url },
    Jwks(Url),
}

struct Inner {
    source: Source,
    options: RemoteOptions,
    client: reqwest::Client,
    keys: ArcSwapOption<KeySet>,
    shared: Arc<Shared>,
    fetch: tokio::sync::Mutex<FetchState>,
    started: AtomicBool,
    /// Dropped with the store, which tells the refresher to stop.
    _stop: oneshot::Sender<()>,
    stop_rx: Mutex<Option<oneshot::Receiver<()>>>,
}

#[derive(Default)]
struct FetchState {
    jwks_url: Option<Url>,
    etag: Option<HeaderValue>,
    last_kid_refetch: Option<Instant>,
    /// `kid`s still unknown after a refetch, remembered for one cooldown.
    unknown_kids: HashMap<String, Instant>,
}

/// The part of the store that health handles see.
struct Shared {
    state: Mutex<State>,
    running: AtomicBool,
    /// Counts finished fetch attempts; waiters subscribe to it.
    attempts: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    confirmed_at: Option<Instant>,
    last_error: Option<String>,
    in_flight: bool,
    next_attempt: Option<Instant>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain data; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a fetch failed. Carries URLs and statuses, never key material.
#[derive(Debug)]
struct FetchError(String);

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> FetchError {
    FetchError(msg.into())
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn check_url(url: &Url, allow_http: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        _ => Err(format!(
            "{url} is not https (plain http is allowed for loopback only)"
        )),
    }
}

/// The discovery URL of an issuer (OIDC Discovery section 4): a trailing `/` is removed
/// before appending; a tenant template is asked for its `common` document.
fn discovery_url(issuer: &str) -> String {
    let concrete = issuer
        .replace("{tenantid}", "common")
        .replace("{tenant}", "common");
    format!(
        "{}/.well-known/openid-configuration",
        concrete.trim_end_matches('/')
    )
}

fn config_error(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::InvalidUrl, msg)
}

impl RemoteJwks {
    /// Keys found by OIDC discovery from `issuer`
    /// (`{issuer}/.well-known/openid-configuration`). The document's `issuer` must equal
    /// `issuer` byte for byte; its `jwks_uri` must be https (or loopback).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] if the issuer is not an https URL (plain http is
    /// accepted for loopback addresses, or with
    /// [`RemoteOptions::dangerous_allow_http`]).
    pub fn from_issuer(issuer: &str, options: RemoteOptions) -> Result<Self, ConfigError> {
        let url = Url::parse(&discovery_url(issuer))
            .map_err(|e| config_error(format!("issuer is not a URL: {e}")))?;
        check_url(&url, options.allow_http).map_err(config_error)?;
        Ok(Self::new(
            Source::Discovery {
                issuer: issuer.replace("{tenant}", "{tenantid}"),
                url,
            },
            options,
        ))
    }

    /// Keys fetched from a JWKS URL directly.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] if the URL does not parse or is not https (plain
    /// http is accepted for loopback addresses, or with
    /// [`RemoteOptions::dangerous_allow_http`]).
    pub fn from_jwks_url(url: &str, options: RemoteOptions) -> Result<Self, ConfigError> {
        let url =
            Url::parse(url).map_err(|e| config_error(format!("JWKS URL does not parse: {e}")))?;
        check_url(&url, options.allow_http).map_err(config_error)?;
        Ok(Self::new(Source::Jwks(url), options))
    }

    fn new(source: Source, options: RemoteOptions) -> Self {
        let client = options.client.clone().unwrap_or_else(|| {
            let loopback = match &source {
                Source::Discovery { url, .. } | Source::Jwks(url) => is_loopback(url),
            };
            let mut builder = reqwest::Client::builder();
            if loopback {
                // A proxy setting in the environment must not capture loopback traffic.
                builder = builder.no_proxy();
            }
            // Building fails only when the TLS backend cannot initialise; reqwest's own
            // default client would panic there, we fall back to it with a log line.
            builder.build().unwrap_or_else(|e| {
                tracing::error!(error = %e, "building the JWKS HTTP client failed");
                reqwest::Client::new()
            })
        });
        let (stop, stop_rx) = oneshot::channel();
        let (attempts, _) = watch::channel(0);
        let store = Self {
            inner: Arc::new(Inner {
                source,
                options,
                client,
                keys: ArcSwapOption::empty(),
                shared: Arc::new(Shared {
                    state: Mutex::new(State::default()),
                    running: AtomicBool::new(false),
                    attempts,
                }),
                fetch: tokio::sync::Mutex::new(FetchState::default()),
                started: AtomicBool::new(false),
                _stop: stop,
                stop_rx: Mutex::new(Some(stop_rx)),
            }),
        };
        store.inner.ensure_started();
        store
    }

    /// A handle that reports the store's status.
    #[must_use]
    pub fn health(&self) -> JwksHealth {
        JwksHealth {
            shared: Arc::clone(&self.inner.shared),
        }
    }

    /// Waits until keys have loaded, for at most `timeout`. Returns whether they have.
    /// Use it to hold back startup until the issuer answered; the layer does not need it.
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        self.inner.ensure_started();
        let mut attempts = self.inner.shared.attempts.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.inner.keys.load().is_some() {
                return true;
            }
            if tokio::time::timeout_at(deadline, attempts.changed())
                .await
                .is_err()
            {
                return self.inner.keys.load().is_some();
            }
        }
    }
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.inner.source {
            Source::Discovery { url, .. } | Source::Jwks(url) => url.as_str(),
        };
        f.debug_struct("RemoteJwks")
            .field("source", &source)
            .field("status", &self.health().status())
            .finish_non_exhaustive()
    }
}

impl KeyStore for RemoteJwks {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.inner.ensure_started();
        self.inner.current()
    }

    fn wait_for_keys(&self) -> KeysFuture {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.wait_first_load().await })
    }

    fn refetch_for_kid(&self, kid: &str) -> KeysFuture {
        let inner = Arc::clone(&self.inner);
        let kid = kid.to_owned();
        Box::pin(async move {
            let timeout = inner.options.fetch_timeout;
            tokio::time::timeout(timeout, inner.refetch_for_kid(kid))
                .await
                .ok()
                .flatten()
        })
    }

    fn retry_after(&self) -> Duration {
        let next = self.inner.shared.lock().next_attempt;
        next.map_or(Duration::from_secs(1), |at| {
            at.saturating_duration_since(Instant::now())
        })
    }
}

impl Inner {
    fn current(&self) -> Option<Arc<KeySet>> {
        let keys = self.keys.load_full()?;
        if let Some(max) = self.options.max_staleness {
            let confirmed = self.shared.lock().confirmed_at;
            if confirmed.is_none_or(|at| at.elapsed() > max) {
                return None;
            }
        }
        Some(keys)
    }

    /// Spawns the refresher once, if a tokio runtime is at hand.
    fn ensure_started(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(stop) = self
            .stop_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        self.shared.lock().in_flight = true;
        self.shared.running.store(true, Ordering::Release);
        runtime.spawn(refresher(
            Arc::downgrade(self),
            Arc::clone(&self.shared),
            stop,
        ));
    }

    async fn wait_first_load(self: Arc<Self>) -> Option<Arc<KeySet>> {
        self.ensure_started();
        let mut attempts = self.shared.attempts.subscribe();
        if let Some(keys) = self.current() {
            return Some(keys);
        }
        if !self.shared.lock().in_flight {
            return None;
        }
        let _ = tokio::time::timeout(self.options.fetch_timeout, attempts.changed()).await;
        self.current()
    }

    async fn refetch_for_kid(self: Arc<Self>, kid: String) -> Option<Arc<KeySet>> {
        let seen = *self.shared.attempts.borrow();
        let mut state = self.fetch.lock().await;
        if *self.shared.attempts.borrow() != seen {
            // Another request fetched while this one waited: share its result.
            return self.current();
        }
        let cooldown = self.options.cooldown;
        state.unknown_kids.retain(|_, at| at.elapsed() < cooldown);
        if state.unknown_kids.contains_key(&kid)
            || state
                .last_kid_refetch
                .is_some_and(|at| at.elapsed() < cooldown)
        {
            return None;
        }
        state.last_kid_refetch = Some(Instant::now());
        tracing::debug!(kid = %kid, "unknown kid: refetching keys");
        let _ = self.refresh_locked(&mut state).await;
        let keys = self.current();
        let known = keys
            .as_ref()
            .is_some_and(|k| k.iter().any(|key| key.kid() == Some(kid.as_str())));
        if !known && state.unknown_kids.len() < 1024 {
            state.unknown_kids.insert(kid, Instant::now());
        }
        keys
    }

    /// One fetch (discovery if needed, then JWKS) under the fetch lock. Returns the
    /// `max-age` the issuer asked for.
    async fn refresh(&self) -> Result<Option<Duration>, FetchError> {
        let mut state = self.fetch.lock().await;
        self.refresh_locked(&mut state).await
    }

    async fn refresh_locked(&self, state: &mut FetchState) -> Result<Option<Duration>, FetchError> {
        self.shared.lock().in_flight = true;
        let result = self.fetch_once(state).await;
        {
            let mut shared = self.shared.lock();
            shared.in_flight = false;
            match &result {
                Ok(_) => {
                    shared.confirmed_at = Some(Instant::now());
                    shared.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fetching signing keys failed; keeping the last good keys");
                    shared.last_error = Some(e.to_string());
                    // The next fetch rediscovers the JWKS URL.
                    state.jwks_url = None;
                }
            }
        }
        self.shared.attempts.send_modify(|n| *n += 1);
        result
    }

    async fn fetch_once(&self, state: &mut FetchState) -> Result<Option<Duration>, FetchError> {
        let jwks_url = match (&self.source, &state.jwks_url) {
            (Source::Jwks(url), _) | (_, Some(url)) => url.clone(),
            (Source::Discovery { issuer, url }, None) => {
                let found = self.discover(issuer, url).await?;
                state.jwks_url = Some(found.clone());
                found
            }
        };
        let mut request = self
            .client
            .get(jwks_url.clone())
            .timeout(self.options.fetch_timeout)
            .header(
                http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            );
        if self.keys.load().is_some()
            && let Some(etag) = &state.etag
        {
            request = request.header(IF_NONE_MATCH, etag.clone());
        }
        let response = request.send().await.map_err(|e| {
            err(format!(
                "JWKS request to {jwks_url} failed: {}",
                e.without_url()
            ))
        })?;
        let status = response.status();
        let max_age = max_age(response.headers());
        if status == StatusCode::NOT_MODIFIED && self.keys.load().is_some() {
            return Ok(max_age);
        }
        if !status.is_success() {
            return Err(err(format!("JWKS at {jwks_url} answered {status}")));
        }
        let etag = response.headers().get(ETAG).cloned();
        let body = self.read_body(response, "JWKS").await?;
        let document: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| err(format!("JWKS at {jwks_url} is not JSON")))?;
        let keys = KeySet::parse_jwks(&document).map_err(err)?;
        if keys.is_empty() {
            return Err(err(format!("JWKS at {jwks_url} has no usable key")));
        }
        tracing::debug!(keys = keys.len(), url = %jwks_url, "signing keys loaded");
        self.keys.store(Some(Arc::new(keys)));
        state.etag = etag;
        Ok(max_age)
    }

    async fn discover(&self, issuer: &str, url: &Url) -> Result<Url, FetchError> {
        let response = self
            .client
            .get(url.clone())
            .timeout(self.options.fetch_timeout)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                err(format!(
                    "discovery request to {url} failed: {}",
                    e.without_url()
                ))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(err(format!("discovery at {url} answered {status}")));
        }
        let body = self.read_body(response, "discovery document").await?;
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let document: Discovery = serde_json::from_slice(&body).map_err(|_| {
            err(format!(
                "discovery document at {url} is not JSON with issuer and jwks_uri"
            ))
        })?;
        if document.issuer.replace("{tenant}", "{tenantid}") != issuer {
            return Err(err(format!(
                "discovery document names issuer {:?}, expected {issuer:?}",
                document.issuer
            )));
        }
        let jwks = Url::parse(&document.jwks_uri)
            .map_err(|_| err(format!("jwks_uri {:?} is not a URL", document.jwks_uri)))?;
        check_url(&jwks, self.options.allow_http).map_err(err)?;
        Ok(jwks)
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let cap = self.options.max_body_len;
        let too_large = || err(format!("{what} is larger than {cap} bytes"));
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| err(format!("reading the {what} failed: {}", e.without_url())))?
        {
            if body.len() + chunk.len() > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The wait before the next scheduled refresh after a success.
    fn next_interval(&self, max_age: Option<Duration>) -> Duration {
        let base = max_age.map_or(self.options.refresh_interval, |age| {
            age.clamp(self.options.min_max_age, self.options.max_max_age)
        });
        jitter(base)
    }

    /// The wait before retrying after `failures` failed fetches in a row.
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        let delay = self
            .options
            .backoff_initial
            .saturating_mul(factor)
            .min(self.options.backoff_max);
        jitter(delay)
    }
}

/// The `max-age` of a `Cache-Control` header; `no-cache` and `no-store` count as zero
/// (clamped to the lower bound later).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            age = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

/// Varies a delay by ±10 %.
fn jitter(base: Duration) -> Duration {
    let mut random = [0u8; 2];
    if aws_lc_rs::rand::fill(&mut random).is_err() {
        return base;
    }
    // A factor in [0.9, 1.1].
    let factor = 0.9 + 0.2 * f64::from(u16::from_le_bytes(random)) / f64::from(u16::MAX);
    base.mul_f64(factor)
}

/// The background task: refresh, sleep, repeat, until the store is dropped.
async fn refresher(store: Weak<Inner>, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    struct Running(Arc<Shared>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.running.store(false, Ordering::Release);
            self.0.lock().in_flight = false;
        }
    }
    let _running = Running(Arc::clone(&shared));
    let mut failures = 0u32;
    loop {
        let delay = {
            let Some(inner) = store.upgrade() else { break };
            match inner.refresh().await {
                Ok(max_age) => {
                    failures = 0;
                    inner.next_interval(max_age)
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    inner.backoff(failures)
                }
            }
        };
        shared.lock().next_attempt = Some(Instant::now() + delay);
        let sleep = tokio::time::sleep(delay);
        let mut sleep = std::pin::pin!(sleep);
        let stopped = poll_fn(|cx| {
            if Pin::new(&mut stop).poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            sleep.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if stopped {
            break;
        }
    }
    tracing::debug!("signing key refresher stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_follows_oidc_discovery() {
        assert_eq!(
            discovery_url("https://idp.example.com/"),
            "https://idp.example.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example.com/realms/x"),
            "https://idp.example.com/realms/x/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://login.microsoftonline.com/{tenantid}/v2.0"),
            "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration"
        );
    }

    #[test]
    fn only_https_or_loopback_http() {
        let ok = |u: &str| check_url(&Url::parse(u).expect("url"), false).is_ok();
        assert!(ok("https://idp.example.com/keys"));
        assert!(ok("http://127.0.0.1:8080/keys"));
        assert!(ok("http://localhost/keys"));
        assert!(ok("http://[::1]/keys"));
        assert!(!ok("http://idp.example.com/keys"));
        assert!(!ok("ftp://idp.example.com/keys"));
    }

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600, must-revalidate"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(3600)));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(max_age(&h), Some(Duration::ZERO));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }
}
