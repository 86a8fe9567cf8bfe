//! DPoP (RFC 9449): tokens bound to a key the client proves it holds, with a fresh
//! signed proof on every request.
//!
//! Configure it with [`DpopOptions`] on
//! [`JwtAuthConfigBuilder::dpop`](crate::JwtAuthConfigBuilder::dpop):
//!
//! ```
//! use tower_jwt_auth::JwtAuthConfig;
//! use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
//!
//! let builder = JwtAuthConfig::builder()
//!     .dpop(DpopOptions::new(DpopMode::Allowed).public_base_url("https://api.example.com"));
//! # let _ = builder;
//! ```
//!
//! What a request with `Authorization: DPoP <token>` must bring (section 4.3): exactly one
//! `DPoP` header with a proof JWT whose `typ` is `dpop+jwt`, whose `alg` is an allowed
//! asymmetric algorithm, whose `jwk` is a public key (no private member) that verifies
//! its signature, whose `htm` is the request method and `htu` the request's public URL
//! (query and fragment ignored, compared after RFC 3986 normalisation), whose `iat` is
//! within the window, whose `ath` is the hash of the access token, whose `jti` was never
//! seen (the layer's proof store, kept apart from single-use tokens, shared by replicas,
//! with at most [`max_live_proofs_per_key`](DpopOptions::max_live_proofs_per_key) live
//! proofs per key), and, when server nonces are on,
//! whose `nonce` is a live one; and the token's `cnf.jkt` must be the RFC 7638 thumbprint
//! of the proof's key.
//!
//! The public URL is never rebuilt from `Host` or `X-Forwarded-*`: it is the configured
//! [`public_base_url`](DpopOptions::public_base_url) followed by the request path, or the
//! [`PublicUrl`] extension your proxy-aware code inserts.

pub(crate) mod htu;
pub(crate) mod nonce;
pub(crate) mod proof;
mod thumbprint;

use std::time::Duration;

use crate::algorithm::Algorithm;

/// The default most live proofs one client key may have.
const DEFAULT_LIVE_PROOFS_PER_KEY: usize = 2_000;

pub use thumbprint::jwk_thumbprint;

/// Whether DPoP is refused, accepted, or required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DpopMode {
    /// No DPoP: the `DPoP` scheme is not read, and a token bound to a key (`cnf.jkt`)
    /// is refused. The default.
    #[default]
    Off,
    /// Bearer and DPoP both accepted; a DPoP-bound token must come with its proof.
    Allowed,
    /// Only DPoP: every token must be DPoP-bound and come with its proof.
    Required,
}

/// Where the request's public URL (the `htu` a proof must name) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlSource {
    /// None: the test kit's token endpoint (`build()` refuses DPoP without a source).
    #[cfg(feature = "testing")]
    Unset,
    /// This base (scheme, host, port, optional path prefix) followed by the request path.
    Base(String),
    /// The [`PublicUrl`] request extension, inserted by the application.
    Extension,
}

/// The public URL of a request, as your proxy-aware code knows it, for
/// [`DpopOptions::trusted_url_extension`]: insert it into the request extensions before
/// the layer runs. Only the scheme, host, port and path are compared.
///
/// ```
/// use tower_jwt_auth::dpop::PublicUrl;
///
/// let mut request = http::Request::new(());
/// request
///     .extensions_mut()
///     .insert(PublicUrl::new("https://api.example.com/orders/7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// The public URL of this request.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Settings of DPoP on the resource server (the `[dpop]` table of a settings file).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[must_use]
pub struct DpopOptions {
    pub(crate) mode: DpopMode,
    pub(crate) algorithms: Vec<Algorithm>,
    #[serde(rename = "iat_window", with = "crate::written::text")]
    pub(crate) window: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) public_base_url: Option<String>,
    pub(crate) trusted_url_extension: bool,
    /// The nonce secret given in code (never written out).
    #[serde(skip)]
    pub(crate) nonce_secret: Option<NonceSecret>,
    /// The nonce secret read from this file at `build()`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce_secret_file: Option<std::path::PathBuf>,
    #[serde(with = "crate::written::text")]
    pub(crate) nonce_lifetime: Duration,
    #[serde(rename = "max_live_proofs_per_key")]
    pub(crate) per_key_limit: usize,
}

/// A nonce secret given in code; `Debug` does not show it.
#[derive(Clone)]
pub(crate) struct NonceSecret(pub(crate) Vec<u8>);

impl std::fmt::Debug for NonceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for DpopOptions {
    fn default() -> Self {
        Self::new(DpopMode::Off)
    }
}

impl DpopOptions {
    /// DPoP in this mode, with the asymmetric algorithms ES256, ES384, EdDSA, RS256 and
    /// PS256 and a 60 s `iat` window. A public URL source is still needed:
    /// [`public_base_url`](Self::public_base_url) or
    /// [`trusted_url_extension`](Self::trusted_url_extension).
    pub fn new(mode: DpopMode) -> Self {
        Self {
            mode,
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
                Algorithm::RS256,
                Algorithm::PS256,
            ],
            window: Duration::from_secs(60),
            public_base_url: None,
            trusted_url_extension: false,
            nonce_secret: None,
            nonce_secret_file: None,
            nonce_lifetime: Duration::from_secs(300),
            per_key_limit: DEFAULT_LIVE_PROOFS_PER_KEY,
        }
    }

    /// The most live proofs one client key (one `jwk` thumbprint) may have in the proof
    /// store; 2 000 by default. A proof lives in the store for the `iat` window plus two
    /// leeways (3 minutes by default), so the default lets one key send about 11
    /// requests a second, sustained; past it only that key's proofs are refused (401
    /// `invalid_dpop_proof`, or `use_dpop_nonce` with a fresh nonce when nonces are on).
    /// It holds per store: per replica with the in-memory store, across replicas with
    /// a shared one. Keep it well below the store's own bound, so that one key can
    /// never fill the store for every other client.
    pub fn max_live_proofs_per_key(mut self, limit: usize) -> Self {
        self.per_key_limit = limit;
        self
    }

    /// The algorithms a proof may use; symmetric ones are refused by `build()`.
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// How old a proof's `iat` may be (the claim leeway is added, and allows that much
    /// in the future too); 60 s by default.
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The public URL requests arrive at, as clients see it (`https://api.example.com`,
    /// or with a path prefix a proxy strips: `https://example.com/api`). The `htu` a
    /// proof must name is this base followed by the request path.
    pub fn public_base_url(mut self, base: impl Into<String>) -> Self {
        self.public_base_url = Some(base.into());
        self.trusted_url_extension = false;
        self
    }

    /// Reads each request's public URL from its [`PublicUrl`] extension, which code that
    /// knows your proxies inserts before the layer. A request without it is a wiring
    /// mistake: 500, naming the extension.
    pub fn trusted_url_extension(mut self) -> Self {
        self.trusted_url_extension = true;
        self.public_base_url = None;
        self
    }

    /// Requires server nonces (section 9): a proof must carry a `nonce` this layer, or
    /// any replica with the same `secret`, issued less than `lifetime` ago. A proof
    /// without one gets 401 `use_dpop_nonce` with a fresh `DPoP-Nonce` header. Nonces
    /// are stateless (an AEAD-sealed timestamp), so replicas share no state for them.
    /// The secret must be at least 32 bytes.
    pub fn nonces(mut self, secret: impl Into<Vec<u8>>, lifetime: Duration) -> Self {
        self.nonce_secret = Some(NonceSecret(secret.into()));
        self.nonce_lifetime = lifetime;
        self
    }
}
