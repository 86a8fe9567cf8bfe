//! Opaque access tokens: RFC 7662 token introspection beside JWT verification.
//!
//! A token that does not look like a JWS (three segments and a header that parses) is
//! sent to the issuer's introspection endpoint; a JWT is verified locally unless
//! [`always_introspect`](Introspection::always_introspect) is set. The answer feeds the
//! claims type, [`Permissions`](crate::Permissions) and every policy rule exactly as a
//! JWT payload does, so guards and extractors do not care how a token was verified.
//!
//! ```
//! use std::time::Duration;
//! use tower_jwt_auth::JwtAuthConfig;
//! use tower_jwt_auth::introspection::{ClientAuth, Introspection};
//!
//! let builder = JwtAuthConfig::builder()
//!     .issuer("https://idp.example.com/")
//!     .audience("https://api.example.com")
//!     .introspection(
//!         Introspection::new("my-api", ClientAuth::client_secret_basic("s3cret"))
//!             .cache_ttl(Duration::from_secs(30)),
//!     );
//! # let _ = builder;
//! ```
//!
//! Answers are cached by a hash of the token: an active one until the earlier of its
//! `exp` and the cache TTL (60 s by default: the longest a revocation at the
//! authorization server can go unnoticed), a refusal for 5 s. Requests with the same
//! uncached token share one call. A failing endpoint gives 503 with `Retry-After`, never
//! an accepted token.
//!
//! Every call carries our client credentials, so the discovery document and the endpoint
//! are fetched over https only (plain http for loopback, or with
//! [`dangerous().allow_plain_http()`](crate::DangerousConfigBuilder::allow_plain_http)),
//! redirects are never followed, and an answer from any URL but the one asked for is
//! refused.
//!
//! Each new opaque token spends a call from a shared budget (the calls in flight, and the
//! rate limit when one is set). Where the server's tokens have a known shape,
//! [`opaque_token_prefix`](Introspection::opaque_token_prefix) and
//! [`opaque_token_length`](Introspection::opaque_token_length) refuse strings that cannot
//! be its tokens before any call, so junk cannot spend that budget.

mod assertion;
pub(crate) mod introspector;
mod source;

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::time::Duration;

pub use assertion::SigningKey;

use crate::error::ConfigErrorKind;

/// How this resource server authenticates to the introspection endpoint.
#[derive(Clone)]
pub struct ClientAuth(pub(crate) Method);

#[derive(Clone)]
pub(crate) enum Method {
    /// HTTP Basic with the client id and secret, each form-urlencoded first (RFC 6749
    /// section 2.3.1).
    Basic(String),
    /// `client_id` and `client_secret` in the form body.
    Post(String),
    /// A JWT assertion signed with our key (RFC 7523 section 2.2).
    PrivateKeyJwt(SigningKey),
}

impl ClientAuth {
    /// `client_secret_basic`, the method every authorization server supports.
    #[must_use]
    pub fn client_secret_basic(secret: impl Into<String>) -> Self {
        Self(Method::Basic(secret.into()))
    }

    /// `client_secret_post`.
    #[must_use]
    pub fn client_secret_post(secret: impl Into<String>) -> Self {
        Self(Method::Post(secret.into()))
    }

    /// `private_key_jwt`: each call carries a fresh assertion signed with `key`.
    #[must_use]
    pub fn private_key_jwt(key: SigningKey) -> Self {
        Self(Method::PrivateKeyJwt(key))
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets are never shown.
        let method = match &self.0 {
            Method::Basic(_) => "client_secret_basic",
            Method::Post(_) => "client_secret_post",
            Method::PrivateKeyJwt(_) => "private_key_jwt",
        };
        f.write_str(method)
    }
}

/// The client authentication methods a settings file can name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SecretMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

/// Settings of token introspection for the issuer (the `[introspection]` table of a
/// settings file, where the client secret is `client_secret` or `client_secret_file`
/// and `auth` names its method).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[must_use]
pub struct Introspection {
    pub(crate) client_id: String,
    /// The client secret, given in code or in a file's `client_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret: Option<String>,
    /// The client secret read from this file at `build()`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret_file: Option<std::path::PathBuf>,
    /// How a client secret is sent.
    #[serde(rename = "auth")]
    pub(crate) method: SecretMethod,
    /// A `private_key_jwt` key given in code (never written out); it wins over a secret.
    #[serde(skip)]
    pub(crate) signing_key: Option<SigningKey>,
    /// The authentication `build()` resolved from the fields above.
    #[serde(skip)]
    pub(crate) auth: ClientAuth,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint: Option<String>,
    #[serde(with = "crate::written::text")]
    pub(crate) cache_ttl: Duration,
    #[serde(with = "crate::written::text")]
    pub(crate) negative_ttl: Duration,
    pub(crate) max_entries: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rate_limit: Option<u32>,
    #[serde(with = "crate::written::text")]
    pub(crate) timeout: Duration,
    pub(crate) always: bool,
    pub(crate) audience_optional: bool,
    #[serde(rename = "signed_answers")]
    pub(crate) jwt_response: bool,
    #[serde(rename = "max_concurrent_calls")]
    pub(crate) max_in_flight: usize,
    /// A client given in code (never written out).
    #[serde(skip)]
    pub(crate) client: Option<reqwest::Client>,
    #[serde(rename = "opaque_token_prefixes")]
    pub(crate) prefixes: Vec<String>,
    #[serde(
        rename = "opaque_token_min_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) min_length: Option<usize>,
    #[serde(
        rename = "opaque_token_max_length",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) max_length: Option<usize>,
}

impl Default for Introspection {
    fn default() -> Self {
        Self::new(String::new(), ClientAuth::default())
    }
}

impl Default for ClientAuth {
    /// `client_secret_basic` with no secret, until `build()` resolves one.
    fn default() -> Self {
        Self(Method::Basic(String::new()))
    }
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A client's `Debug` shows its default headers and proxies, credentials included.
        f.debug_struct("Introspection")
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("method", &self.method)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_file", &self.client_secret_file)
            .field("endpoint", &self.endpoint)
            .field("cache_ttl", &self.cache_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("max_entries", &self.max_entries)
            .field("rate_limit", &self.rate_limit)
            .field("timeout", &self.timeout)
            .field("always", &self.always)
            .field("audience_optional", &self.audience_optional)
            .field("jwt_response", &self.jwt_response)
            .field("max_in_flight", &self.max_in_flight)
            .field("custom_client", &self.client.is_some())
            .field("prefixes", &self.prefixes)
            .field("min_length", &self.min_length)
            .field("max_length", &self.max_length)
            .finish()
    }
}

impl Introspection {
    /// Introspection as client `client_id`, authenticating with `auth`, at the endpoint
    /// the issuer's discovery document names (`introspection_endpoint`).
    pub fn new(client_id: impl Into<String>, auth: ClientAuth) -> Self {
        let (method, client_secret, signing_key) = match &auth.0 {
            Method::Basic(secret) => (SecretMethod::ClientSecretBasic, Some(secret.clone()), None),
            Method::Post(secret) => (SecretMethod::ClientSecretPost, Some(secret.clone()), None),
            Method::PrivateKeyJwt(key) => (SecretMethod::default(), None, Some(key.clone())),
        };
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.filter(|s| !s.is_empty()),
            client_secret_file: None,
            method,
            signing_key,
            auth,
            endpoint: None,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            max_entries: 10_000,
            rate_limit: None,
            timeout: Duration::from_secs(2),
            always: false,
            audience_optional: false,
            jwt_response: false,
            max_in_flight: 64,
            client: None,
            prefixes: Vec::new(),
            min_length: None,
            max_length: None,
        }
    }

    /// The endpoint, instead of the one from discovery.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// How long an active answer is kept (never past the token's `exp`); 60 s by
    /// default. It is the longest a token revoked at the authorization server still
    /// works here.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long a refusal is kept, to absorb floods of bad tokens; 5 s by default.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The most answers kept (active and refused each); 10 000 by default.
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// At most this many calls per second to the endpoint; a request that would need
    /// one more gets 503 with `Retry-After`. Unlimited by default.
    pub fn rate_limit(mut self, calls_per_second: u32) -> Self {
        self.rate_limit = Some(calls_per_second);
        self
    }

    /// At most this many calls at once (64 by default): a flood of distinct unknown
    /// tokens beyond it gets 503 instead of as many connections to the server.
    pub fn max_concurrent_calls(mut self, calls: usize) -> Self {
        self.max_in_flight = calls.max(1);
        self
    }

    /// The longest one call may take; 2 s by default. A slower endpoint is a failure
    /// (503).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends JWTs to introspection too, instead of verifying them locally: the
    /// authorization server's answer decides (for immediate revocation). Its answer goes
    /// through the same checks as for an opaque token (`active`, `aud`, `iss` when
    /// present, dates, refresh tokens refused); the JWT's own signature, `typ` and
    /// algorithm are the server's to judge.
    pub fn always_introspect(mut self, always: bool) -> Self {
        self.always = always;
        self
    }

    /// Asks for signed answers (RFC 9701, `application/token-introspection+jwt`): each
    /// answer is a JWT the issuer signs with its token-signing keys, with `typ`
    /// `token-introspection+jwt`, `iss` the issuer and `aud` our client id, checked
    /// before its `token_introspection` member is read. A plain JSON answer is then
    /// refused (503).
    pub fn signed_answers(mut self, signed: bool) -> Self {
        self.jwt_response = signed;
        self
    }

    /// Accepts answers without `aud` (some servers leave it out); by default they are
    /// refused like a JWT without `aud`. It weakens a check, so it now lives behind
    /// [`dangerous()`](crate::JwtAuthConfigBuilder::dangerous):
    /// [`introspection_without_audience`](crate::DangerousConfigBuilder::introspection_without_audience).
    #[deprecated(
        since = "0.2.0",
        note = "use JwtAuthConfigBuilder::dangerous().introspection_without_audience()"
    )]
    pub fn audience_optional(mut self, optional: bool) -> Self {
        self.audience_optional = optional;
        self
    }

    /// The HTTP client for discovery and introspection calls, instead of the one the
    /// crate builds (rustls, redirects off, no proxy for loopback). Give one for custom
    /// root certificates or a proxy; the client of
    /// [`JwtAuthConfigBuilder::http_client`](crate::JwtAuthConfigBuilder::http_client)
    /// fetches keys only and is never used here.
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())`: reqwest decides
    /// redirects per client, not per request. A client that follows them still sends the
    /// discovery request wherever a redirect points, and turns a POST answered 301, 302
    /// or 303 into a GET (without its body) to the new URL. Whatever the client, an
    /// answer from any other URL than the one asked for is refused (the request gets
    /// 503, and an ERROR is logged at most once a minute), and the POST body cannot be
    /// replayed, so a 307 or 308 never carries the token or a `client_secret_post`
    /// secret elsewhere.
    ///
    /// An authorization server behind a private CA:
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use tower_jwt_auth::introspection::{ClientAuth, Introspection};
    ///
    /// let ca = reqwest::Certificate::from_pem(&std::fs::read("corp-root-ca.pem")?)?;
    /// let client = reqwest::Client::builder()
    ///     .tls_certs_merge([ca])
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()?;
    /// let introspection = Introspection::new("my-api", ClientAuth::client_secret_basic("s3cret"))
    ///     .http_client(client);
    /// # let _ = introspection;
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Refuses an opaque token that does not start with `prefix`: 401 `invalid_token`
    /// (`malformed token`), with no call to the endpoint. Called more than once, a token
    /// may start with any of the prefixes given.
    ///
    /// Every opaque token the cache has not seen spends a call from a shared budget: a
    /// slot among the calls in flight ([`max_concurrent_calls`](Self::max_concurrent_calls))
    /// and, with a [`rate_limit`](Self::rate_limit), a call of the second's allowance.
    /// Random strings spend it as well as real tokens, so a client sending them can leave
    /// every genuine opaque token with 503. Where the authorization server's tokens have
    /// a known shape, say so here and with
    /// [`opaque_token_length`](Self::opaque_token_length): Ory Hydra's access tokens start
    /// with `ory_at_`, and any server that marks its tokens with a fixed prefix can be
    /// described the same way. A string of another shape then costs no call at all.
    ///
    /// The filter is only as strict as the shape: a client that knows it can still send
    /// well-shaped junk, which the refusal cache, the in-flight cap and the rate limit
    /// bound as before. Servers that issue JWT access tokens need no filter: a JWT is
    /// verified locally and never reaches the endpoint, and with
    /// [`always_introspect`](Self::always_introspect) JWTs are sent on unfiltered.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_jwt_auth::introspection::{ClientAuth, Introspection};
    ///
    /// // Ory Hydra: `ory_at_` followed by two base64url parts.
    /// let hydra = Introspection::new("my-api", ClientAuth::client_secret_basic("s3cret"))
    ///     .opaque_token_prefix("ory_at_")
    ///     .opaque_token_length(40..=512);
    /// # let _ = hydra;
    /// ```
    pub fn opaque_token_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(prefix.into());
        self
    }

    /// Refuses an opaque token whose length in bytes is outside `lengths` (such as
    /// `40..=512`): 401 `invalid_token` (`malformed token`), with no call to the
    /// endpoint. See [`opaque_token_prefix`](Self::opaque_token_prefix) for why. Leave
    /// room around the lengths the server issues today: a server upgrade that changes
    /// them would otherwise have every token refused.
    pub fn opaque_token_length(mut self, lengths: impl RangeBounds<usize>) -> Self {
        self.min_length = match lengths.start_bound() {
            Bound::Included(n) => Some(*n),
            Bound::Excluded(n) => Some(n.saturating_add(1)),
            Bound::Unbounded => None,
        };
        // An exclusive end of 0 admits no length: kept as an empty range for `build()`.
        self.max_length = match lengths.end_bound() {
            Bound::Included(n) => Some(*n),
            Bound::Excluded(0) => {
                self.min_length = Some(self.min_length.unwrap_or(0).max(1));
                Some(0)
            }
            Bound::Excluded(n) => Some(n - 1),
            Bound::Unbounded => None,
        };
        self
    }

    /// Whether an opaque token of `len` bytes has an admitted length.
    pub(crate) fn admits_length(&self, len: usize) -> bool {
        self.min_length.is_none_or(|min| len >= min) && self.max_length.is_none_or(|max| len <= max)
    }

    /// The client authentication: a key given in code, else `secret` (given, or read
    /// from `client_secret_file` by `build()`) sent as `auth` says; `None` without either.
    pub(crate) fn client_auth(&self, secret: Option<String>) -> Option<ClientAuth> {
        if let Some(key) = &self.signing_key {
            return Some(ClientAuth::private_key_jwt(key.clone()));
        }
        Some(match self.method {
            SecretMethod::ClientSecretBasic => ClientAuth::client_secret_basic(secret?),
            SecretMethod::ClientSecretPost => ClientAuth::client_secret_post(secret?),
        })
    }

    /// Takes over what `code` held beside the file's keys: a signing key and a client.
    #[cfg(feature = "settings")]
    pub(crate) fn keep_code_parts(&mut self, code: &mut Self) {
        self.signing_key = self.signing_key.take().or_else(|| code.signing_key.take());
        self.client = self.client.take().or_else(|| code.client.take());
    }

    /// What is wrong with the shape filter, if anything: a filter no token can pass
    /// would refuse every opaque token, which is a mistake better seen at build.
    pub(crate) fn shape_problem(&self) -> Option<(ConfigErrorKind, &'static str, &'static str)> {
        if self.prefixes.iter().any(String::is_empty) {
            return Some((
                ConfigErrorKind::EmptyValue,
                "opaque_token_prefixes",
                "an introspection opaque_token_prefix is empty",
            ));
        }
        if self.min_length.is_none() && self.max_length.is_none() {
            return None;
        }
        let min = Some(self.min_length.unwrap_or(0));
        let max = Some(self.max_length.unwrap_or(usize::MAX));
        let longest_possible = match (min, max) {
            (Some(min), Some(max)) if min <= max => max,
            _ => {
                return Some((
                    ConfigErrorKind::InvalidValue,
                    "opaque_token_min_length",
                    "the introspection opaque_token_length range is empty",
                ));
            }
        };
        if !self.prefixes.is_empty() && self.prefixes.iter().all(|p| p.len() > longest_possible) {
            return Some((
                ConfigErrorKind::InvalidValue,
                "opaque_token_prefixes",
                "every introspection opaque_token_prefix is longer than opaque_token_length allows",
            ));
        }
        None
    }
}
