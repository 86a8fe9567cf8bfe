//! The introspection client of one issuer: endpoint resolution, the RFC 7662 call with
//! client authentication, the answer's classification, and what keeps the authorization
//! server from being hammered (the shape filter, a cache of refusals, one call per token
//! at a time, a cap on calls in flight, a rate limit). Active answers are cached, typed,
//! in its [`TokenCache`] by the introspection source (`source.rs`), which consults these
//! books in order.
//!
//! Both requests (discovery and the POST) carry or decide where our client credentials
//! go, so an answer counts only when it comes from the very URL asked for.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{OnceCell, watch};
use url::Url;

use super::{Introspection, Method};
use crate::cache::{CacheOptions, TokenCache};
use crate::error::ErrorKind;
use crate::https::{is_loopback, redirect_allowed, same_target};
use crate::issuer::Issuer;
use crate::log::LogKid;
use crate::telemetry;
use crate::time::{Clock, unix_seconds};

/// The most bytes of an introspection answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// The media type of signed introspection answers (RFC 9701).
const JWT_ANSWER: &str = "application/token-introspection+jwt";

/// How long, by the layer's clock, a completed call with an active answer stays
/// joinable: its waiters cache the answer once they run again, and a request for the
/// same token arriving meanwhile must share the answer rather than call again.
const LINGER: f64 = 1.0;

/// One call for one token: its answer, and when it came (for an active one).
struct Flight {
    answer: watch::Receiver<Option<Answer>>,
    landed: Option<f64>,
}

impl Flight {
    /// In flight, or landed less than `linger` seconds ago.
    fn joinable(&self, now: f64, linger: f64) -> bool {
        self.landed.is_none_or(|at| now < at + linger)
    }
}

/// How long a client is told to wait when introspection fails.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(2);

pub(super) type Digest = [u8; 32];

/// The SHA-256 of a token, keying refusals and calls in flight.
pub(super) fn digest(token: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref(),
    );
    out
}

/// What the authorization server said about a token.
#[derive(Clone, Debug)]
pub(super) enum Answer {
    /// Active, not a refresh token: the answer's JSON object.
    Active(Bytes),
    /// Refused for this reason (inactive, a refresh token).
    Refused(ErrorKind),
    /// No usable answer: the endpoint failed, was slow, or the rate limit was reached.
    Failed,
}

pub(super) type Pending = Pin<Box<dyn Future<Output = Answer> + Send>>;

/// Where the endpoint comes from; the URL is checked against the https rule at build.
#[derive(Debug)]
pub(crate) enum Source {
    /// Configured with [`Introspection::endpoint`].
    Endpoint(Url),
    /// The `introspection_endpoint` of the discovery document at this URL.
    Discovery(Url),
}

impl Source {
    fn url(&self) -> &Url {
        match self {
            Self::Endpoint(url) | Self::Discovery(url) => url,
        }
    }
}

/// The discovery URL of an issuer (OIDC Discovery section 4).
pub(crate) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The calls a second allows: `governor`'s GCRA limiter, whose burst is one second's
/// worth of calls (what the former hand-written token bucket allowed too).
enum Budget {
    Unlimited,
    /// A rate of zero: no call is ever made.
    Closed,
    Limited(governor::DefaultDirectRateLimiter),
}

impl Budget {
    fn new(rate: Option<u32>) -> Self {
        match rate.map(std::num::NonZeroU32::new) {
            None => Self::Unlimited,
            Some(None) => Self::Closed,
            Some(Some(rate)) => Self::Limited(governor::RateLimiter::direct(
                governor::Quota::per_second(rate),
            )),
        }
    }

    fn take(&self) -> bool {
        match self {
            Self::Unlimited => true,
            Self::Closed => false,
            Self::Limited(limiter) => limiter.check().is_ok(),
        }
    }
}

/// Introspection for one issuer.
pub(crate) struct Introspector {
    pub(super) issuer: Arc<Issuer>,
    settings: Introspection,
    /// The issuer URL, as the assertion audience and the discovery document's `issuer`.
    issuer_url: String,
    /// The discovery URL, when the endpoint is not configured.
    discovery: Option<Url>,
    client: reqwest::Client,
    allow_http: bool,
    endpoint: OnceCell<Url>,
    /// Active answers, typed by the layer that read them.
    pub(super) cache: TokenCache,
    refused: Mutex<HashMap<Digest, (f64, ErrorKind)>>,
    flights: Mutex<HashMap<Digest, Flight>>,
    budget: Budget,
    /// When an authentication failure was last logged at ERROR.
    auth_logged: Mutex<Option<Instant>>,
    /// When an answer from another URL than the one asked was last logged at ERROR.
    redirect_logged: Mutex<Option<Instant>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("issuer", &self.issuer_url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether this slot was last set over a minute ago (or never), setting it if so: an
/// ERROR that would repeat on every request is logged once a minute instead.
fn once_a_minute(slot: &Mutex<Option<Instant>>) -> bool {
    let mut logged = lock(slot);
    if logged.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
        *logged = Some(Instant::now());
        true
    } else {
        false
    }
}

impl Introspector {
    /// # Errors
    ///
    /// The HTTP client could not be built (its TLS backend failed to start).
    pub(crate) fn new(
        issuer: Arc<Issuer>,
        issuer_url: String,
        settings: Introspection,
        source: Source,
        allow_http: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, reqwest::Error> {
        let client = match &settings.client {
            Some(client) => client.clone(),
            None => {
                // Credentials are posted: never follow a redirect with them. reqwest sets
                // redirects per client, so introspection has a client of its own.
                let mut builder =
                    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
                if is_loopback(source.url()) {
                    // A proxy setting in the environment must not capture loopback traffic.
                    builder = builder.no_proxy();
                }
                builder.build()?
            }
        };
        let cache = TokenCache::new(
            CacheOptions::new()
                .max_entries(settings.max_entries)
                .ttl(settings.cache_ttl),
        );
        let budget = Budget::new(settings.rate_limit);
        let (discovery, endpoint) = match source {
            Source::Endpoint(url) => (None, OnceCell::new_with(Some(url))),
            Source::Discovery(url) => (Some(url), OnceCell::new()),
        };
        Ok(Self {
            issuer,
            settings,
            issuer_url,
            discovery,
            client,
            allow_http,
            endpoint,
            cache,
            refused: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
            budget,
            auth_logged: Mutex::new(None),
            redirect_logged: Mutex::new(None),
            clock,
        })
    }

    /// Whether `token` has the configured shape of the server's opaque tokens. Checked
    /// before the caches and the budget: a string that cannot be the server's token must
    /// not take a call in flight or a rate-limit slot from one that can, nor a cache
    /// entry (checking again costs less than one).
    pub(super) fn fits_shape(&self, token: &str) -> bool {
        fits_shape(&self.settings, token)
    }

    /// Whether a token is for introspection: every token when it always asks, else one
    /// whose `text` is not a JWS (bytes that are not UTF-8 are not one, and the character
    /// check refuses them before anything is asked). The text is read only when asked.
    pub(crate) fn takes<'t>(&self, text: impl FnOnce() -> Result<&'t str, ErrorKind>) -> bool {
        self.settings.always || !text().is_ok_and(looks_like_jws)
    }

    pub(super) fn audience_optional(&self) -> bool {
        self.settings.audience_optional
    }

    fn now(&self) -> f64 {
        unix_seconds(self.clock.now())
    }

    /// A refusal remembered for this token.
    pub(super) fn refused(&self, digest: &Digest) -> Option<ErrorKind> {
        let now = self.now();
        let refused = lock(&self.refused);
        refused
            .get(digest)
            .filter(|(until, _)| now < *until)
            .map(|(_, kind)| *kind)
    }

    /// Remembers a refusal for the negative TTL.
    pub(super) fn refuse(&self, digest: Digest, kind: ErrorKind) {
        let until = self.now() + self.settings.negative_ttl.as_secs_f64();
        let mut refused = lock(&self.refused);
        if refused.len() >= self.settings.max_entries {
            let now = self.now();
            refused.retain(|_, (until, _)| now < *until);
            if refused.len() >= self.settings.max_entries {
                refused.clear();
            }
        }
        refused.insert(digest, (until, kind));
    }

    /// The answer for `token`: one call shared by every request with the same token
    /// meanwhile, run in its own task so that no request's cancellation stops it.
    pub(super) fn answer(self: &Arc<Self>, token: &str, digest: Digest) -> Pending {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                "token introspection needs a tokio runtime; the request is refused with 503"
            );
            return Box::pin(std::future::ready(Answer::Failed));
        };
        let now = self.now();
        let cap = self.settings.max_in_flight;
        // Never longer than answers are cached: with no cache, every request asks.
        let linger = self.settings.cache_ttl.as_secs_f64().min(LINGER);
        let mut flights = lock(&self.flights);
        let joined = flights
            .get(&digest)
            .filter(|flight| flight.joinable(now, linger))
            .map(|flight| flight.answer.clone());
        let (mut receiver, sender) = match joined {
            Some(receiver) => (receiver, None),
            None => {
                if flights.len() >= cap {
                    flights.retain(|_, flight| flight.joinable(now, linger));
                }
                let in_flight = if flights.len() >= cap {
                    flights.values().filter(|f| f.landed.is_none()).count()
                } else {
                    flights.len()
                };
                if in_flight >= cap {
                    drop(flights);
                    telemetry::count_introspection_refused("in_flight");
                    tracing::warn!(issuer = %self.issuer_url, "too many introspection calls at once; request refused with 503");
                    return Box::pin(std::future::ready(Answer::Failed));
                }
                let (sender, receiver) = watch::channel(None);
                let flight = Flight {
                    answer: receiver.clone(),
                    landed: None,
                };
                flights.insert(digest, flight);
                (receiver, Some(sender))
            }
        };
        // Released before spawning: a runtime that is shutting down drops the task on
        // this thread, and its guard takes the lock.
        drop(flights);
        if let Some(sender) = sender {
            // Leaves the map however the call ends, a panic or a task dropped unpolled
            // included: a stale entry would answer 503 for this token from then on.
            let mut landing = Landing {
                introspector: Arc::clone(self),
                digest,
                linger: false,
            };
            let this = Arc::clone(self);
            let token = token.to_owned();
            runtime.spawn(async move {
                let answer = this.call(&token).await;
                if let Answer::Refused(kind) = &answer {
                    this.refuse(digest, *kind);
                }
                let active = matches!(answer, Answer::Active(_));
                let _ = sender.send(Some(answer));
                if active {
                    landing.linger();
                }
                drop(landing);
            });
        }
        Box::pin(async move {
            match receiver.wait_for(Option::is_some).await {
                Ok(answer) => answer.clone().unwrap_or(Answer::Failed),
                Err(_) => Answer::Failed,
            }
        })
    }

    /// One call to the endpoint, classified.
    async fn call(&self, token: &str) -> Answer {
        if !self.take_call() {
            telemetry::count_introspection_refused("rate_limit");
            tracing::warn!(issuer = %self.issuer_url, "introspection rate limit reached; request refused with 503");
            return Answer::Failed;
        }
        let Some(endpoint) = self.endpoint().await else {
            return Answer::Failed;
        };
        let mut form: Vec<(&str, String)> = vec![
            ("token", token.to_owned()),
            ("token_type_hint", "access_token".to_owned()),
        ];
        let accept = if self.settings.jwt_response {
            JWT_ANSWER
        } else {
            "application/json"
        };
        let mut request = self
            .client
            .post(endpoint.clone())
            .timeout(self.settings.timeout)
            .header(http::header::ACCEPT, accept)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
        let id = &self.settings.client_id;
        match &self.settings.auth.0 {
            Method::Basic(secret) => {
                // RFC 6749 section 2.3.1: each part form-urlencoded, then Base64.
                let encode =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let credentials = STANDARD.encode(format!("{}:{}", encode(id), encode(secret)));
                request =
                    request.header(http::header::AUTHORIZATION, format!("Basic {credentials}"));
            }
            Method::Post(secret) => {
                form.push(("client_id", id.clone()));
                form.push(("client_secret", secret.clone()));
            }
            Method::PrivateKeyJwt(key) => {
                let Some(assertion) = key.assertion(id, &self.issuer_url) else {
                    tracing::error!("signing the private_key_jwt client assertion failed");
                    return Answer::Failed;
                };
                form.push(("client_id", id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        // A body that cannot be cloned is one that a client following a 307 or 308
        // cannot send again: the token (and a `client_secret_post` secret) reach the
        // endpoint asked for or nothing. Its exact size still gives a Content-Length.
        let request = request.body(reqwest::Body::wrap(body));
        let Some(response) = self.send(request, &endpoint, "token introspection").await else {
            return Answer::Failed;
        };
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            self.log_auth_failure(status.as_u16());
            return Answer::Failed;
        }
        if !status.is_success() {
            tracing::warn!(issuer = %self.issuer_url, status = status.as_u16(), "token introspection answered with an error status");
            return Answer::Failed;
        }
        let signed = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_signed_answer);
        if self.settings.jwt_response != signed {
            tracing::warn!(issuer = %self.issuer_url, "token introspection answered {} where {} was asked for", if signed { "a signed JWT" } else { "plain JSON" }, if signed { "plain JSON" } else { "a signed JWT" });
            return Answer::Failed;
        }
        match read_capped(response).await {
            Some(body) if signed => match self.open_signed(&body).await {
                Some(inner) => classify(inner),
                None => {
                    tracing::warn!(issuer = %self.issuer_url, "a signed introspection answer did not verify");
                    Answer::Failed
                }
            },
            Some(body) => classify(body),
            None => {
                tracing::warn!(issuer = %self.issuer_url, "token introspection answer unreadable or over 64 KiB");
                Answer::Failed
            }
        }
    }

    /// The `token_introspection` member of an RFC 9701 answer, once its signature (by a
    /// key of the issuer, with an algorithm the issuer may use), `typ`, `iss` and `aud`
    /// hold.
    async fn open_signed(&self, body: &[u8]) -> Option<Bytes> {
        let keys = match self.issuer.store.current() {
            Some(keys) => keys,
            None => self.issuer.store.wait_for_keys().await?,
        };
        #[derive(Deserialize)]
        struct Claims {
            iss: String,
            aud: serde_json::Value,
            token_introspection: Box<serde_json::value::RawValue>,
        }
        let text = std::str::from_utf8(body).ok()?.trim();
        let (header_b64, payload_b64, signature_b64) =
            crate::jws::segments(text.as_bytes()).ok()?;
        let header_json = crate::jws::b64(header_b64).ok()?;
        let header: crate::jws::Header<'_> = crate::jws::json_object(&header_json).ok()?;
        let typ = header.typ.as_ref().map(|t| t.0.as_ref());
        let typ_ok = typ.is_some_and(is_introspection_typ);
        let alg = crate::algorithm::Algorithm::from_header(&header.alg.0)?;
        if !typ_ok || header.crit || !self.issuer.algorithms.contains(&alg) {
            return None;
        }
        let kid = header.kid.as_ref().map(|k| k.0.as_ref());
        // A key the issuer published since the last refresh: the store's one shared
        // refetch, as for a token with an unknown `kid`.
        let keys = match (keys.select(kid, alg).err(), kid) {
            (Some(ErrorKind::UnknownKey), Some(kid)) => {
                self.issuer.store.refetch_for_kid(kid).await?
            }
            _ => keys,
        };
        let key = keys.select(kid, alg).ok()?;
        let signature = crate::jws::b64(signature_b64).ok()?;
        let input = &text.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(alg, input, &signature) {
            return None;
        }
        let payload = crate::jws::b64(payload_b64).ok()?;
        let claims: Claims = crate::jws::json_object(&payload).ok()?;
        let ours = |aud: &serde_json::Value| aud.as_str() == Some(self.settings.client_id.as_str());
        let audience_ok = match &claims.aud {
            serde_json::Value::Array(list) => list.iter().any(ours),
            single => ours(single),
        };
        if !self.issuer.matcher.matches(&claims.iss) || !audience_ok {
            return None;
        }
        Some(Bytes::copy_from_slice(
            claims.token_introspection.get().as_bytes(),
        ))
    }

    /// Sends one request and keeps its response only if it came from `url` itself: not a
    /// redirect (which the crate's client does not follow), and not the answer of
    /// another URL (which a client given by the application may have followed to).
    /// Every failure is logged here; a redirect at ERROR, at most once a minute.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        what: &str,
    ) -> Option<reqwest::Response> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let kind = if error.is_timeout() {
                    "timed out"
                } else {
                    "failed"
                };
                tracing::warn!(issuer = %self.issuer_url, "{what} {kind}: {}", error.without_url());
                return None;
            }
        };
        let moved = if !same_target(url, response.url()) {
            Some(response.url().as_str())
        } else if response.status().is_redirection() {
            Some(
                response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|location| location.to_str().ok())
                    .unwrap_or_default(),
            )
        } else {
            None
        };
        if let Some(target) = moved {
            if once_a_minute(&self.redirect_logged) {
                tracing::error!(
                    issuer = %self.issuer_url,
                    url = %without_credentials(url),
                    target = ?LogKid(target),
                    "{what} was redirected, and introspection follows no redirect (its requests carry our client credentials or decide where they go); opaque tokens get 503 until the URL is corrected"
                );
            }
            return None;
        }
        Some(response)
    }

    fn log_auth_failure(&self, status: u16) {
        if once_a_minute(&self.auth_logged) {
            tracing::error!(
                issuer = %self.issuer_url,
                client_id = %self.settings.client_id,
                status,
                "the introspection endpoint refused our client credentials; every opaque token gets 503 until they are fixed"
            );
        }
    }

    fn take_call(&self) -> bool {
        self.budget.take()
    }

    /// The configured endpoint, or the discovery document's `introspection_endpoint`
    /// (fetched once; a failure is retried on the next call).
    async fn endpoint(&self) -> Option<Url> {
        let resolved = self
            .endpoint
            .get_or_try_init(|| async { self.discover().await.ok_or(()) })
            .await;
        resolved.ok().cloned()
    }

    /// The endpoint the discovery document names, if it may receive our credentials:
    /// https, or plain http only when discovery itself was on loopback (or plain http is
    /// allowed), as for a redirect from the discovery URL.
    async fn discover(&self) -> Option<Url> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            introspection_endpoint: Option<String>,
        }
        let url = self.discovery.as_ref()?;
        let request = self
            .client
            .get(url.clone())
            .timeout(self.settings.timeout)
            .header(http::header::ACCEPT, "application/json");
        let response = self
            .send(request, url, "the discovery request for introspection")
            .await?;
        if !response.status().is_success() {
            tracing::error!(issuer = %self.issuer_url, status = response.status().as_u16(), "the discovery document for introspection could not be fetched");
            return None;
        }
        let body = read_capped(response).await?;
        let document: Discovery = serde_json::from_slice(&body).ok()?;
        // OIDC Discovery section 4.3: the document must name the issuer it was read for.
        if document.issuer != self.issuer_url {
            tracing::error!(issuer = %self.issuer_url, found = ?LogKid(&document.issuer), "the discovery document names another issuer; its introspection endpoint is not used");
            return None;
        }
        let Some(text) = document.introspection_endpoint else {
            tracing::error!(issuer = %self.issuer_url, "the discovery document names no introspection_endpoint; configure Introspection::endpoint");
            return None;
        };
        let Ok(endpoint) = Url::parse(&text) else {
            tracing::error!(issuer = %self.issuer_url, found = ?LogKid(&text), "the discovery document's introspection_endpoint is not a URL");
            return None;
        };
        if !redirect_allowed(url, &endpoint, self.allow_http) {
            tracing::error!(issuer = %self.issuer_url, found = ?LogKid(endpoint.as_str()), "introspection endpoint refused: it is not https (plain http only when discovery is on loopback too, or with dangerous().allow_plain_http())");
            return None;
        }
        Some(endpoint)
    }
}

/// Whether `token` has the shape configured for the server's opaque tokens. A JWT sent
/// on by `always_introspect` is not held to it.
fn fits_shape(settings: &Introspection, token: &str) -> bool {
    let prefixed = settings.prefixes.is_empty()
        || settings
            .prefixes
            .iter()
            .any(|prefix| token.starts_with(prefix.as_str()));
    let sized = settings.admits_length(token.len());
    (prefixed && sized) || (settings.always && looks_like_jws(token))
}

/// Whether a `Content-Type` is RFC 9701's, parameters aside; media types compare
/// case-insensitively (RFC 9110 section 8.3.1).
fn is_signed_answer(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(JWT_ANSWER)
}

/// Whether a JWS `typ` names RFC 9701's answer, with or without `application/`, in any
/// case (RFC 7515 section 4.1.9).
fn is_introspection_typ(typ: &str) -> bool {
    typ.eq_ignore_ascii_case("token-introspection+jwt") || typ.eq_ignore_ascii_case(JWT_ANSWER)
}

/// Removes a call from the map of calls in flight when dropped.
struct Landing {
    introspector: Arc<Introspector>,
    digest: [u8; 32],
    /// The call ended with an active answer that stays joinable a moment.
    linger: bool,
}

impl Landing {
    /// Keeps the completed call joinable for [`LINGER`] instead of removing it.
    fn linger(&mut self) {
        let now = self.introspector.now();
        if let Some(flight) = lock(&self.introspector.flights).get_mut(&self.digest) {
            flight.landed = Some(now);
            self.linger = true;
        }
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.linger {
            lock(&self.introspector.flights).remove(&self.digest);
        }
    }
}

/// The body, if it fits in [`MAX_ANSWER`].
async fn read_capped(mut response: reqwest::Response) -> Option<Bytes> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(Bytes::from(body))
}

/// `active`, and a refresh token refused whatever the server says of it.
fn classify(body: Bytes) -> Answer {
    #[derive(Deserialize)]
    struct Status {
        active: Option<serde_json::Value>,
        token_type: Option<serde_json::Value>,
        token_use: Option<serde_json::Value>,
    }
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Answer::Failed;
    }
    let Ok(status) = serde_json::from_slice::<Status>(&body) else {
        return Answer::Failed;
    };
    if status.active != Some(serde_json::Value::Bool(true)) {
        return Answer::Refused(ErrorKind::TokenInactive);
    }
    let refresh = [&status.token_type, &status.token_use]
        .into_iter()
        .any(|v| {
            v.as_ref()
                .and_then(serde_json::Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
        });
    if refresh {
        return Answer::Refused(ErrorKind::InvalidType);
    }
    Answer::Active(body)
}

/// Three base64url segments and a header that decodes to a JSON object with `alg`.
pub(crate) fn looks_like_jws(token: &str) -> bool {
    #[derive(Deserialize)]
    struct Alg {
        #[allow(dead_code)]
        alg: serde::de::IgnoredAny,
    }
    let Ok((header, _, _)) = crate::jws::segments(token.as_bytes()) else {
        return false;
    };
    crate::jws::b64(header)
        .ok()
        .is_some_and(|json| crate::jws::json_object::<Alg>(&json).is_ok())
}

/// A URL for logs: any user name and password taken out.
fn without_credentials(url: &Url) -> Url {
    let mut shown = url.clone();
    // Setting them fails only for URLs that cannot carry them, which then have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jws_and_opaque_tokens_are_told_apart() {
        assert!(looks_like_jws("eyJhbGciOiJSUzI1NiJ9.e30.sig"));
        assert!(!looks_like_jws("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jws("a.b.c"));
        assert!(!looks_like_jws("eyJhbGciOiJSUzI1NiJ9.e30"));
    }

    #[test]
    fn introspection_shape_admits_any_prefix_given_within_the_lengths() {
        use crate::introspection::ClientAuth;
        let open = Introspection::new("api", ClientAuth::client_secret_basic("s"));
        assert!(fits_shape(&open, "anything"));
        assert!(fits_shape(&open, ""));
        let shaped = open
            .clone()
            .opaque_token_prefix("ory_at_")
            .opaque_token_prefix("legacy_")
            .opaque_token_length(10..=20);
        assert!(fits_shape(&shaped, "ory_at_abc"));
        assert!(fits_shape(&shaped, "legacy_abcdefghijklm"));
        assert!(!fits_shape(&shaped, "ory_at_ab"), "too short");
        assert!(!fits_shape(&shaped, "legacy_abcdefghijklmn"), "too long");
        assert!(!fits_shape(&shaped, "ory_rt_abc"), "another prefix");
        assert!(
            !fits_shape(&shaped, "xory_at_abc"),
            "a prefix, not a substring"
        );
        let jwt = "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl";
        assert!(!fits_shape(&shaped, jwt), "opaque only: a JWT here is junk");
        assert!(
            fits_shape(&shaped.clone().always_introspect(true), jwt),
            "a JWT sent on by always_introspect"
        );
        let exclusive = open.opaque_token_length(..4);
        assert!(fits_shape(&exclusive, "abc"));
        assert!(!fits_shape(&exclusive, "abcd"));
    }

    #[test]
    fn media_types_compare_without_case_and_parameters() {
        for signed in [
            "application/token-introspection+jwt",
            "Application/Token-Introspection+JWT",
            " application/token-introspection+jwt; charset=utf-8",
        ] {
            assert!(is_signed_answer(signed), "{signed}");
        }
        for other in [
            "application/json",
            "application/token-introspection+jwtx",
            "",
        ] {
            assert!(!is_signed_answer(other), "{other}");
        }
        for typ in [
            "token-introspection+jwt",
            "TOKEN-INTROSPECTION+JWT",
            "Application/token-introspection+jwt",
        ] {
            assert!(is_introspection_typ(typ), "{typ}");
        }
        assert!(!is_introspection_typ("JWT"));
        assert!(!is_introspection_typ("text/token-introspection+jwt"));
    }

    #[test]
    fn answers_are_classified() {
        assert!(matches!(
            classify(Bytes::from_static(br#"{"active":true}"#)),
            Answer::Active(_)
        ));
        assert!(matches!(
            classify(Bytes::from_static(br#"{"active":false}"#)),
            Answer::Refused(ErrorKind::TokenInactive)
        ));
        assert!(matches!(
            classify(Bytes::from_static(br#"{"active":"true"}"#)),
            Answer::Refused(ErrorKind::TokenInactive)
        ));
        assert!(matches!(
            classify(Bytes::from_static(
                br#"{"active":true,"token_type":"Refresh_Token"}"#
            )),
            Answer::Refused(ErrorKind::InvalidType)
        ));
        assert!(matches!(
            classify(Bytes::from_static(
                br#"{"active":true,"token_use":"refresh_token"}"#
            )),
            Answer::Refused(ErrorKind::InvalidType)
        ));
        assert!(matches!(
            classify(Bytes::from_static(b"<html>")),
            Answer::Failed
        ));
    }
}
