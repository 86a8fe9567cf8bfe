//! [`RemoteOptions`]: how a [`RemoteJwks`](crate::jwks::RemoteJwks) fetches and refreshes keys.
//! Plain data, read by the fetcher and the refresher task.

use std::fmt;
use std::time::Duration;

/// How a [`RemoteJwks`](crate::jwks::RemoteJwks) fetches and refreshes keys. Every default is
/// explained on its setter.
///
/// ```
/// use std::time::Duration;
/// use tower_jwt_auth::jwks::RemoteOptions;
///
/// let options = RemoteOptions::new()
///     .refresh_interval(Duration::from_secs(600))
///     .fetch_timeout(Duration::from_secs(3));
/// # let _ = options;
/// ```
///
/// It is also the `[remote]` table of a settings file, under the setters' names
/// (`unknown_kid_cooldown = "10s"`); plain http beyond loopback is `dangerous_allow_http`.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[must_use]
pub struct RemoteOptions {
    /// A client given in code (never written out).
    #[serde(skip)]
    pub(crate) client: Option<reqwest::Client>,
    #[serde(with = "crate::written::text")]
    pub(crate) refresh_interval: Duration,
    #[serde(with = "crate::written::text")]
    pub(crate) min_max_age: Duration,
    #[serde(with = "crate::written::text")]
    pub(crate) max_max_age: Duration,
    #[serde(with = "crate::written::text")]
    pub(crate) fetch_timeout: Duration,
    pub(crate) max_body_len: usize,
    #[serde(rename = "unknown_kid_cooldown", with = "crate::written::text")]
    pub(crate) cooldown: Duration,
    #[serde(
        with = "crate::written::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) max_staleness: Option<Duration>,
    #[serde(with = "crate::written::text")]
    pub(crate) backoff_initial: Duration,
    #[serde(with = "crate::written::text")]
    pub(crate) backoff_max: Duration,
    #[serde(rename = "dangerous_allow_http")]
    pub(crate) allow_http: bool,
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

/// Equal when every setting is equal. The HTTP client is left out: clients have no
/// identity to compare.
impl PartialEq for RemoteOptions {
    fn eq(&self, other: &Self) -> bool {
        let Self {
            client: _,
            refresh_interval,
            min_max_age,
            max_max_age,
            fetch_timeout,
            max_body_len,
            cooldown,
            max_staleness,
            backoff_initial,
            backoff_max,
            allow_http,
        } = self;
        *refresh_interval == other.refresh_interval
            && *min_max_age == other.min_max_age
            && *max_max_age == other.max_max_age
            && *fetch_timeout == other.fetch_timeout
            && *max_body_len == other.max_body_len
            && *cooldown == other.cooldown
            && *max_staleness == other.max_staleness
            && *backoff_initial == other.backoff_initial
            && *backoff_max == other.backoff_max
            && *allow_http == other.allow_http
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
    /// to loopback URLs. It follows a redirect only to https (plain http only from
    /// loopback to loopback, or with [`dangerous().allow_plain_http()`](crate::DangerousConfigBuilder::allow_plain_http)).
    ///
    /// Whatever client is used, a response whose final URL (after the client's own
    /// redirects) is plain http where http is not allowed is refused, so a custom client's
    /// redirect policy cannot downgrade key fetches to plain http.
    ///
    /// An identity provider behind a private CA:
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_jwt_auth::jwks::RemoteOptions;
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

    /// The least time between the end of one refetch caused by an unknown `kid` and the
    /// start of the next: 10 seconds. A flood of tokens with random `kid`s then costs the
    /// issuer one request per cooldown; while the cooldown runs, a token whose `kid` is
    /// unknown is refused at once instead of waiting. Scheduled refreshes neither start a
    /// cooldown nor wait for one, and a genuinely new `kid` is picked up by the next fetch,
    /// whatever started it.
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
    /// can be replaced by anyone on the network path; only for closed test networks. It
    /// weakens a check, so it now lives behind
    /// [`dangerous()`](crate::JwtAuthConfigBuilder::dangerous):
    /// [`allow_plain_http`](crate::DangerousConfigBuilder::allow_plain_http).
    #[deprecated(
        since = "0.2.0",
        note = "use JwtAuthConfigBuilder::dangerous().allow_plain_http()"
    )]
    pub fn dangerous_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }
}
