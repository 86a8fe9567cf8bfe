//! [`RemoteJwks`]: an issuer's keys, fetched over HTTP and kept fresh by one background
//! task per store.
//!
//! The refresher task performs every fetch: the first load, the schedule, the refetch
//! for an unknown `kid`, rediscovery after a failure. A request never owns a fetch. It
//! reads the current set with one atomic load; when it must wait (the first load, an
//! unknown `kid`) it signals the task and waits on a watch channel for a fetch that is
//! already in flight or that its signal started, for at most the fetch timeout. Dropping
//! a waiting request (a client that hangs up, a deadline outside the layer) changes
//! nothing: the fetch goes on and its keys serve the next request.

use std::collections::HashSet;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use reqwest::Url;
use tokio::sync::{Notify, watch};

use super::fetch::{FetchError, Fetched, Fetcher, Memory, Source};
use super::health::{Health, JwksHealth};
use super::options::RemoteOptions;
use super::{KeySet, KeyStore, KeysFuture};
use crate::error::{ConfigError, ConfigErrorKind};
use crate::https::check_fetchable;
use crate::log::LogKid;
use crate::telemetry;

/// The most `kid`s remembered as waiting for, or still unknown after, one fetch.
const MAX_REMEMBERED_KIDS: usize = 1024;

/// An issuer's keys, fetched by OIDC discovery or from a JWKS URL and refreshed in the
/// background. Implements [`KeyStore`]; cheap to clone (clones share everything).
///
/// - Keys are swapped in whole ([`arc_swap`]): readers never lock and never wait. A
///   `304 Not Modified` or a byte-identical document keeps the set in use, with its
///   [`generation`](KeySet::generation), so the verified-token cache stays warm.
/// - Refresh every 5 minutes, or as `Cache-Control: max-age` says within [1 min, 24 h],
///   with ±10 % jitter, and conditional requests with `ETag`.
/// - One task per store performs every fetch. A token with an unknown `kid` asks it for
///   one refetch shared by every request waiting on it, at most once per 10-second
///   cooldown; during the cooldown such tokens are refused at once.
/// - Failed fetches keep the last good keys and retry with exponential backoff; a
///   malformed JWK is skipped, not the set.
/// - Creating the store never blocks and never fails because the issuer is unreachable.
///   Inside a tokio runtime the first fetch starts at once; outside, on first use.
/// - The refresher task ends when the last clone is dropped.
#[derive(Clone)]
pub struct RemoteJwks {
    handle: Arc<Handle>,
}

/// Owned by the clones of one store; its drop stops the refresher.
struct Handle {
    shared: Arc<Shared>,
    /// Never sent on: its drop is the refresher's stop signal.
    stop: watch::Sender<()>,
}

/// What the refresher task, the handles and waiting requests share.
struct Shared {
    fetcher: Fetcher,
    /// The issuer (or, for a JWKS URL, the URL) that labels this store's metrics.
    label: Arc<str>,
    options: RemoteOptions,
    keys: ArcSwapOption<KeySet>,
    health: Arc<Health>,
    refresh: Mutex<Refresh>,
    /// Wakes the refresher for an unknown-`kid` fetch.
    wake: Notify,
    /// Counts finished fetches; waiting requests subscribe to it.
    fetches: watch::Sender<u64>,
    /// Whether a refresher task exists; it clears this when it ends, so that a store
    /// whose runtime shut down starts again in the next one.
    started: AtomicBool,
}

/// The refresher's schedule and the unknown-`kid` bookkeeping.
#[derive(Default)]
struct Refresh {
    /// A fetch is running.
    in_flight: bool,
    /// A request asked for an unknown-`kid` fetch that has not started yet.
    kid_fetch_requested: bool,
    /// No unknown-`kid` fetch starts before this; set when one completes.
    cooldown_until: Option<Instant>,
    /// When the next scheduled fetch starts, for `Retry-After`.
    next_attempt: Option<Instant>,
    /// The `kid`s requests are waiting for in the coming or running fetch.
    waiting_kids: HashSet<Box<str>>,
    /// The `kid`s the last fetch did not find, refused at once until the next fetch or
    /// `unknown_until`, whichever comes first.
    unknown_kids: HashSet<Box<str>>,
    unknown_until: Option<Instant>,
}

/// What a request that saw an unknown `kid` does.
enum KidRequest {
    /// The key arrived meanwhile: verify again now.
    Known,
    /// Wait for the fetch in flight or just requested.
    Wait,
    /// Refuse now: the `kid` was not found by the last fetch, or the cooldown runs.
    Refused,
}

fn config_error(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(ConfigErrorKind::InvalidUrl, msg)
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

impl RemoteJwks {
    /// Keys found by OIDC discovery from `issuer`
    /// (`{issuer}/.well-known/openid-configuration`). The document's `issuer` must equal
    /// `issuer` byte for byte; its `jwks_uri` must be https (or loopback).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidUrl`] if the issuer is not an https URL (plain http is
    /// accepted for loopback addresses, or with
    /// [`dangerous().allow_plain_http()`](crate::DangerousConfigBuilder::allow_plain_http)).
    pub fn from_issuer(issuer: &str, options: RemoteOptions) -> Result<Self, ConfigError> {
        let url = Url::parse(&discovery_url(issuer))
            .map_err(|e| config_error(format!("issuer is not a URL: {e}")))?;
        check_fetchable(&url, options.allow_http).map_err(config_error)?;
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
    /// [`dangerous().allow_plain_http()`](crate::DangerousConfigBuilder::allow_plain_http)).
    pub fn from_jwks_url(url: &str, options: RemoteOptions) -> Result<Self, ConfigError> {
        let url =
            Url::parse(url).map_err(|e| config_error(format!("JWKS URL does not parse: {e}")))?;
        check_fetchable(&url, options.allow_http).map_err(config_error)?;
        Ok(Self::new(Source::Jwks(url), options))
    }

    fn new(source: Source, options: RemoteOptions) -> Self {
        let (fetches, _) = watch::channel(0);
        let (stop, _) = watch::channel(());
        let label: Arc<str> = match &source {
            Source::Discovery { issuer, .. } => issuer.as_str().into(),
            Source::Jwks(url) => url.as_str().into(),
        };
        let handle = Handle {
            shared: Arc::new(Shared {
                label,
                fetcher: Fetcher::new(source, &options),
                options,
                keys: ArcSwapOption::empty(),
                health: Arc::new(Health::default()),
                refresh: Mutex::new(Refresh::default()),
                wake: Notify::new(),
                fetches,
                started: AtomicBool::new(false),
            }),
            stop,
        };
        handle.ensure_started();
        Self {
            handle: Arc::new(handle),
        }
    }

    /// A handle that reports the store's status.
    #[must_use]
    pub fn health(&self) -> JwksHealth {
        JwksHealth::new(Arc::clone(&self.handle.shared.health))
    }

    /// Waits until keys have loaded, for at most `timeout`. Returns whether they have.
    /// Use it to hold back startup until the issuer answered; the layer does not need it.
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        self.handle.ensure_started();
        let shared = &self.handle.shared;
        let mut fetches = shared.fetches.subscribe();
        let deadline = tokio::time::Instant::from_std(later(Instant::now(), timeout));
        loop {
            if shared.keys.load().is_some() {
                return true;
            }
            match tokio::time::timeout_at(deadline, fetches.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return shared.keys.load().is_some(),
            }
        }
    }
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field(
                "source",
                &self.handle.shared.fetcher.source().url().as_str(),
            )
            .field("status", &self.health().status())
            .finish_non_exhaustive()
    }
}

impl KeyStore for RemoteJwks {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.handle.ensure_started();
        self.handle.shared.current()
    }

    fn wait_for_keys(&self) -> KeysFuture {
        self.handle.ensure_started();
        let shared = Arc::clone(&self.handle.shared);
        // Subscribed before the state is read, so a fetch that ends in between still
        // wakes the wait.
        let mut fetches = shared.fetches.subscribe();
        let in_flight = shared.lock().in_flight;
        Box::pin(async move {
            if let Some(keys) = shared.current() {
                return Some(keys);
            }
            if !in_flight {
                // The last attempt failed and the next waits for its backoff: 503 now.
                return None;
            }
            let _ = tokio::time::timeout(shared.options.fetch_timeout, fetches.changed()).await;
            shared.current()
        })
    }

    /// Signals the refresher when it is called, not when the future is polled: a caller
    /// that drops the future (or never polls it) still gets the key fetched for the next
    /// request.
    fn refetch_for_kid(&self, kid: &str) -> KeysFuture {
        self.handle.ensure_started();
        let shared = Arc::clone(&self.handle.shared);
        let mut fetches = shared.fetches.subscribe();
        let request = shared.ask_for_kid(kid);
        Box::pin(async move {
            match request {
                KidRequest::Known => shared.current(),
                KidRequest::Refused => None,
                KidRequest::Wait => {
                    let timeout = shared.options.fetch_timeout;
                    let _ = tokio::time::timeout(timeout, fetches.changed()).await;
                    shared.current()
                }
            }
        })
    }

    fn retry_after(&self) -> Duration {
        let next = self.handle.shared.lock().next_attempt;
        next.map_or(Duration::from_secs(1), |at| {
            at.saturating_duration_since(Instant::now())
        })
    }
}

impl Handle {
    /// Spawns the refresher, if none runs and a tokio runtime is at hand.
    fn ensure_started(&self) {
        let shared = &self.shared;
        if shared.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if shared.started.swap(true, Ordering::AcqRel) {
            return;
        }
        // Requests arriving before the task runs wait for its first fetch.
        shared.lock().in_flight = true;
        shared.health.set_running(true);
        runtime.spawn(refresh_loop(Arc::clone(shared), self.stop.subscribe()));
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Refresh> {
        // Plain data; a panic elsewhere cannot leave it inconsistent.
        self.refresh.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        let keys = self.keys.load_full()?;
        if let Some(max) = self.options.max_staleness
            && self
                .health
                .confirmed_at()
                .is_none_or(|at| at.elapsed() > max)
        {
            return None;
        }
        Some(keys)
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys
            .load()
            .as_ref()
            .is_some_and(|keys| keys.has_kid(kid))
    }

    /// Decides, without waiting, what a request with an unknown `kid` does, and wakes the
    /// refresher when a new fetch is due.
    fn ask_for_kid(&self, kid: &str) -> KidRequest {
        if self.has_kid(kid) {
            return KidRequest::Known;
        }
        let now = Instant::now();
        let mut refresh = self.lock();
        if refresh.unknown_kids.contains(kid) && refresh.unknown_until.is_some_and(|t| now < t) {
            return KidRequest::Refused;
        }
        if refresh.in_flight || refresh.kid_fetch_requested {
            refresh.remember_waiting(kid);
            return KidRequest::Wait;
        }
        if refresh.cooldown_until.is_some_and(|t| now < t) {
            return KidRequest::Refused;
        }
        refresh.kid_fetch_requested = true;
        refresh.remember_waiting(kid);
        drop(refresh);
        tracing::debug!(kid = ?LogKid(kid), "unknown kid: asking for a key refetch");
        self.wake.notify_one();
        KidRequest::Wait
    }

    /// Marks a fetch as running; returns whether a request with an unknown `kid` asked
    /// for it (such fetches start the cooldown).
    fn begin_fetch(&self) -> bool {
        let mut refresh = self.lock();
        refresh.in_flight = true;
        std::mem::take(&mut refresh.kid_fetch_requested)
    }

    /// Publishes a fetch's result, records the schedule and wakes the waiting requests.
    fn finish_fetch(&self, result: Result<Fetched, FetchError>, kid_fetch: bool, delay: Duration) {
        let now = Instant::now();
        let outcome = match &result {
            Ok(fetched) if fetched.keys.is_some() => "ok",
            Ok(_) => "unchanged",
            Err(_) => "error",
        };
        match result {
            Ok(fetched) => {
                if let Some(keys) = fetched.keys {
                    self.keys.store(Some(Arc::new(keys)));
                }
                self.health.confirmed(now);
            }
            Err(error) => {
                let source = self.fetcher.source().url();
                if self.keys.load().is_some() {
                    tracing::warn!(%source, %error, "fetching signing keys failed; the last good keys stay in use");
                } else {
                    tracing::warn!(%source, %error, "fetching signing keys failed; no keys have loaded yet, so requests with a token get 503 until a fetch succeeds");
                }
                self.health.failed(error.to_string());
            }
        }
        let age = self
            .health
            .confirmed_at()
            .map(|at| now.saturating_duration_since(at));
        telemetry::record_fetch(&self.label, outcome, age);
        let keys = self.keys.load();
        let cooldown = later(now, self.options.cooldown);
        let mut refresh = self.lock();
        refresh.in_flight = false;
        refresh.next_attempt = Some(later(now, delay));
        if kid_fetch {
            refresh.cooldown_until = Some(cooldown);
        }
        let waiting = std::mem::take(&mut refresh.waiting_kids);
        refresh.unknown_kids = waiting
            .into_iter()
            .filter(|kid| !keys.as_ref().is_some_and(|keys| keys.has_kid(kid)))
            .collect();
        refresh.unknown_until = Some(cooldown);
        drop(refresh);
        self.fetches.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The wait before the next scheduled refresh after a success.
    fn next_interval(&self, max_age: Option<Duration>) -> Duration {
        let o = &self.options;
        let base = max_age.map_or(o.refresh_interval, |age| {
            age.max(o.min_max_age).min(o.max_max_age)
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

    /// Whether a request asked for an unknown-`kid` fetch that has not started.
    fn kid_fetch_requested(&self) -> bool {
        self.lock().kid_fetch_requested
    }
}

impl Refresh {
    fn remember_waiting(&mut self, kid: &str) {
        if self.waiting_kids.len() < MAX_REMEMBERED_KIDS {
            self.waiting_kids.insert(kid.into());
        }
    }
}

/// `now + delay`, saturating far in the future instead of overflowing.
fn later(now: Instant, delay: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    now.checked_add(delay)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

/// Varies a delay by ±10 %, without overflowing for any delay.
fn jitter(base: Duration) -> Duration {
    /// Distinguishes fetch schedules when the system random source fails.
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 2];
    let random = if aws_lc_rs::rand::fill(&mut random).is_ok() {
        u32::from(u16::from_le_bytes(random))
    } else {
        // Truncation intended: any value spreads the schedule a little.
        #[allow(clippy::cast_possible_truncation)]
        let n = FALLBACK.fetch_add(7919, Ordering::Relaxed) as u32;
        n
    };
    // A factor in [0.900, 1.100], in thousandths.
    let permille = 900 + random % 201;
    base.checked_mul(permille).map_or(base, |d| d / 1000)
}

/// Runs `future` unless the store is dropped first (`None`).
async fn until_stopped<F: Future>(stop: &mut watch::Receiver<()>, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut stopped = pin!(stop.changed());
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        // `changed` resolves with an error once the sender (the store) is gone; it is
        // never sent on.
        stopped.as_mut().poll(cx).map(|_| None)
    })
    .await
}

/// The refresher task: fetch, publish, wait for the schedule or an unknown-`kid` signal,
/// until the store is dropped.
async fn refresh_loop(shared: Arc<Shared>, mut stop: watch::Receiver<()>) {
    /// Clears the running flags however the task ends, a runtime shutdown included.
    struct Running(Arc<Shared>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.health.set_running(false);
            self.0.lock().in_flight = false;
            self.0.started.store(false, Ordering::Release);
            // Requests waiting for this task's fetch stop waiting.
            self.0.fetches.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
    let _running = Running(Arc::clone(&shared));
    let mut memory = Memory::default();
    let mut failures = 0u32;
    loop {
        let kid_fetch = shared.begin_fetch();
        let have_keys = shared.keys.load().is_some();
        let Some(result) =
            until_stopped(&mut stop, shared.fetcher.fetch(&mut memory, have_keys)).await
        else {
            break;
        };
        let delay = if let Ok(fetched) = &result {
            failures = 0;
            shared.next_interval(fetched.max_age)
        } else {
            failures = failures.saturating_add(1);
            shared.backoff(failures)
        };
        shared.finish_fetch(result, kid_fetch, delay);
        let deadline = tokio::time::Instant::from_std(later(Instant::now(), delay));
        loop {
            let woken = until_stopped(
                &mut stop,
                tokio::time::timeout_at(deadline, shared.wake.notified()),
            )
            .await;
            match woken {
                None => {
                    tracing::debug!("signing key refresher stopped");
                    return;
                }
                // The schedule is due.
                Some(Err(_)) => break,
                // A request asked for a fetch; a permit left from an earlier signal whose
                // fetch already ran is ignored.
                Some(Ok(())) if shared.kid_fetch_requested() => break,
                Some(Ok(())) => {}
            }
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
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn extreme_durations_never_overflow() {
        assert!(jitter(Duration::MAX) <= Duration::MAX);
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > now);
        let options = RemoteOptions::new()
            .refresh_interval(Duration::MAX)
            .max_age_bounds(Duration::MAX, Duration::MAX)
            .backoff(Duration::MAX, Duration::MAX);
        let store =
            RemoteJwks::from_jwks_url("https://idp.example.com/keys", options).expect("store");
        let shared = &store.handle.shared;
        assert!(shared.next_interval(Some(Duration::from_secs(60))) > Duration::ZERO);
        assert!(shared.next_interval(None) > Duration::ZERO);
        assert!(shared.backoff(u32::MAX) > Duration::ZERO);
    }
}
