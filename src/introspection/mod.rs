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

mod assertion;
pub(crate) mod introspector;

use std::fmt;
use std::time::Duration;

pub use assertion::SigningKey;

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

/// Settings of token introspection for the issuer.
#[derive(Clone, Debug)]
#[must_use]
pub struct Introspection {
    pub(crate) client_id: String,
    pub(crate) auth: ClientAuth,
    pub(crate) endpoint: Option<String>,
    pub(crate) cache_ttl: Duration,
    pub(crate) negative_ttl: Duration,
    pub(crate) max_entries: usize,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) timeout: Duration,
    pub(crate) always: bool,
    pub(crate) audience_optional: bool,
    pub(crate) jwt_response: bool,
    pub(crate) max_in_flight: usize,
}

impl Introspection {
    /// Introspection as client `client_id`, authenticating with `auth`, at the endpoint
    /// the issuer's discovery document names (`introspection_endpoint`).
    pub fn new(client_id: impl Into<String>, auth: ClientAuth) -> Self {
        Self {
            client_id: client_id.into(),
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
    /// refused like a JWT without `aud`.
    pub fn audience_optional(mut self, optional: bool) -> Self {
        self.audience_optional = optional;
        self
    }
}
