#![cfg_attr(docsrs, feature(doc_cfg))]
//! Tower middleware that makes any tower, axum or tonic service an OAuth 2.0 resource
//! server for JWT access tokens.
//!
//! [`JwtAuthLayer`] takes the bearer token from each request, verifies its signature
//! with keys parsed once, checks `iss`, `aud`, `exp`, `nbf`, `iat`, `typ` and `crit`
//! (RFC 7519, RFC 8725, RFC 9068), and inserts the typed claims into the request
//! extensions. Every refusal is an RFC 6750 answer with a precise [`ErrorKind`]: 401 with
//! a `WWW-Authenticate: Bearer` challenge, 400 `invalid_request` for malformed
//! credentials. No token a client sends gets a 5xx; the deliberate 5xx are 503s with
//! `Retry-After`: while a trusted issuer's keys have never loaded, and, when they are
//! configured, while a token state store (replay, revocation) or the introspection
//! endpoint does not answer.
//!
//! ```
//! use std::convert::Infallible;
//!
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jwt_auth::testing::{TestKey, TokenBuilder};
//! use tower_jwt_auth::{Authentication, JwtAuthConfig, JwtAuthLayer, StandardClaims};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = TestKey::ec_p256();
//! let cfg = JwtAuthConfig::builder()
//!     .issuer("https://idp.example.com/")
//!     .audience("https://api.example.com")
//!     .key_set(key.key_set())          // or .jwks(..), .pem(..), .hmac_secret(..)
//!     .build()?;
//!
//! let service = ServiceBuilder::new()
//!     .layer(JwtAuthLayer::new(cfg))
//!     .service_fn(|req: Request<String>| async move {
//!         let auth = req.extensions().get::<Authentication>();
//!         let claims = auth.and_then(|a| a.claims::<StandardClaims>());
//!         let sub = claims.and_then(|c| c.sub.clone()).unwrap_or_default();
//!         Ok::<_, Infallible>(Response::new(format!("hello {sub}")))
//!     });
//!
//! let token = TokenBuilder::new(&key)
//!     .issuer("https://idp.example.com/")
//!     .audience("https://api.example.com")
//!     .subject("alice")
//!     .sign();
//! let request = Request::get("/").header("authorization", format!("Bearer {token}"));
//! let response = service.clone().oneshot(request.body(String::new())?).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let response = service.oneshot(Request::get("/").body(String::new())?).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer");
//! # Ok(())
//! # }
//! ```
//!
//! # Map of the crate
//!
//! Each capability, where its API lives, and the [guide] chapter that says how it behaves.
//!
//! | capability | module or items | guide |
//! |---|---|---|
//! | protect a tower, axum or tonic service; read the verified caller | [`JwtAuthLayer`], [`Authentication`], [`StandardClaims`], [`claims`] | [permissions](guide::permissions) |
//! | permissions and guards | [`Permissions`], [`RequirePermission`](struct@RequirePermission), [`guard`] | [permissions](guide::permissions) |
//! | axum extractors (feature `axum`) | [`Claims`], [`SharedClaims`] | [permissions](guide::permissions) |
//! | gRPC with tonic (feature `tonic`) | [`tonic`] | [permissions](guide::permissions) |
//! | tokens outside a tower stack | [`Verifier`], [`explain`] | [permissions](guide::permissions) |
//! | RFC 9728 protected-resource metadata, MCP servers | [`resource::ProtectedResourceMetadata`] | [permissions](guide::permissions) |
//! | claim rules, client allow-list, exemptions, claim forwarding | [`rules`], [`JwtAuthConfigBuilder`] | [policy](guide::policy) |
//! | step-up authentication (RFC 9470) | [`StepUp`] | [policy](guide::policy) |
//! | issuers and keys: discovery, JWKS URLs, static keys, tenants | [`TrustedIssuer`], [`jwks`] | [keys](guide::keys) |
//! | DPoP (feature `dpop`) and certificate-bound tokens | [`dpop`], [`mtls`] | [DPoP and mTLS](guide::dpop_and_mtls) |
//! | opaque tokens by introspection (feature `introspection`) | [`introspection`] | [opaque tokens](guide::opaque_tokens) |
//! | single-use tokens and revocation, in memory or on Redis | [`state`] | [single use and revocation](guide::single_use_and_revocation) |
//! | configuration files, `JWT_*` variables, file watching (feature `settings`) | [`settings`] | [configuration](guide::configuration) |
//! | reload without restart | [`JwtAuthLayer::reloadable`], [`reload::ReloadHandle`], [`reload::Reloaded`] | [configuration](guide::configuration) |
//! | refusals and how they are rendered | [`ErrorKind`], [`AuthError`], [`response`] | [operating](guide::operating) |
//! | metrics, spans, audit | [`telemetry::OUTCOMES`], [`telemetry::AuditEvent`], [`telemetry::SubjectLogging`] | [operating](guide::operating) |
//! | verified-token cache | [`cache::CacheOptions`] | [operating](guide::operating) |
//! | diagnosing a refusal | [`Verifier::explain`], [`explain`] | [troubleshooting](guide::troubleshooting) |
//! | every check and its default | [`JwtAuthConfigBuilder`], [`TypPolicy`], [`Algorithm`], [`time`] | [validation rules](guide::validation_rules) |
//! | a test kit: keys, tokens, a mock issuer (feature `testing`) | [`testing`] | [testing](guide::testing) |
//! | the `jwt-auth` command and its console | the `cli/` workspace member | [the jwt-auth command](guide::cli) |
//! | API keys beside OAuth: by digest and prefix, a reloaded keys file | [`api_key`] | [API keys](guide::api_keys) |
//! | tokens for WebSocket and server-sent-event clients: a subprotocol entry, a query parameter on named paths | [`TokenSource`], [`rules::PathPattern`] | [WebSocket and server-sent events](guide::websocket) |
//! | the FAPI 2.0 resource-server profile, RFC 9068 strict; the conformance matrix | [`Profile`], [`JwtAuthConfigBuilder::profile`] | [FAPI 2.0](guide::fapi) |
//! | services in any language behind nginx, Caddy, Traefik or Envoy | `jwt-auth gate` (the `cli/` workspace member), [`rules::path_ambiguity`], [`Authentication::refuse`] | [behind a proxy](guide::gate) |
//!
//! # Features
//!
//! - `remote` (default): keys by OIDC discovery and JWKS URLs, refreshed in the
//!   background by `RemoteJwks` (reqwest with rustls, tokio).
//!   Without it, keys are static or come from your own [`KeyStore`](jwks::KeyStore), and
//!   no HTTP client is built in.
//! - `introspection` (default): opaque tokens by RFC 7662 introspection
//!   ([`introspection`]); implies `remote`.
//! - `dpop` (default): DPoP (RFC 9449) proofs, server nonces and thumbprints
//!   ([`dpop`]), and the proof stores (`state::MemoryProofStore`,
//!   `state::RedisProofStore`). Without it the `DPoP` scheme is not read and a
//!   key-bound token (`cnf.jkt`) is refused; a settings file with a `dpop` section fails.
//! - `testing`: the [`testing`] kit: key pairs, JWKS export, token minting with presets
//!   for every broken token, a mock issuer; implies `dpop`.
//! - `axum`: extractors for axum handlers.
//! - `tonic`: the [`crate::tonic`] module: claims from `tonic::Request`, status
//!   mapping, an interceptor, `NamedService` for the layers.
//! - `metrics`: counters, histograms and gauges through the `metrics` facade (bring
//!   your own exporter).
//! - `redis`: the shared replay store, proof store and revocation list on Redis or
//!   Valkey (`state::RedisReplayStore`, `state::RedisProofStore`,
//!   `state::RedisRevocationList`); implies `remote`.
//!   `redis-tls` adds `rediss://` URLs (rustls).
//! - `settings`: declarative configuration (`settings::Settings`) from JSON files and
//!   `JWT_*` environment variables; `config-toml` and `config-yaml` add TOML and YAML
//!   files and imply it; `watch` adds `settings::FileWatcher`, which turns file changes
//!   and SIGHUP into reloads, one per real change.
//!
//! # Security decisions
//!
//! - Keys come only from the configured key source; `jku`, `x5u`, `jwk` and `x5c` headers
//!   are never read. `alg: none` in any casing is refused, HMAC is only allowed with an
//!   explicitly configured secret and never together with public keys, a JWK `alg` pins
//!   its key to that algorithm, and `kty: oct` keys in a JWKS are ignored.
//! - A `crit` header is refused (no extension is understood), `typ` values meant for other
//!   token kinds (`dpop+jwt`, `logout+jwt`, ...) are refused (RFC 8725 section 3.11).
//! - The audience is required unless explicitly turned off (RFC 9068 section 4).
//! - Tokens longer than the limit (8 KiB) are refused before decoding; the payload is
//!   parsed only after the signature is verified (with several trusted issuers, its
//!   `iss` member alone is read first, to pick the issuer whose keys verify it).
//! - Error descriptions are fixed strings; tokens are never logged, and the `Debug` of
//!   [`BearerToken`] and of HMAC keys is redacted.

mod accept;
pub mod algorithm;
pub mod api_key;
mod authentication;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod binding;
mod body;
pub mod cache;
pub mod claims;
pub mod config;
mod context;
mod core;
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub mod dpop;
mod error;
pub mod explain;
mod future;
pub mod guard;
mod https;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub mod introspection;
mod issuer;
pub mod jwks;
mod jws;
pub mod layer;
mod log;
pub mod mtls;
mod payload;
mod permission;
mod plain;
mod policy;
mod profile;
mod record;
pub mod reload;
mod replay;
pub mod resource;
pub mod response;
pub mod rules;
mod seeded;
mod service;
#[cfg(feature = "settings")]
#[cfg_attr(docsrs, doc(cfg(feature = "settings")))]
pub mod settings;
mod shape;
mod source;
pub mod state;
mod step_up;
pub mod telemetry;
mod text;
pub mod time;
mod token;
mod trace;
mod tracking;
pub mod verifier;
mod verify;
mod written;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod tonic;

// The crate root holds what an application wires: configuration, layer, guards,
// extractors, claims, errors. Everything else lives in the module of its job.
pub use algorithm::Algorithm;
pub use authentication::Authentication;
pub use claims::StandardClaims;
pub use config::{DangerousConfigBuilder, JwtAuthConfig, JwtAuthConfigBuilder};
pub use error::{AuthError, ConfigError, ConfigErrorKind, ErrorKind};
pub use guard::{RequirePermission, SingleUse, StepUp};
pub use issuer::TrustedIssuer;
pub use layer::JwtAuthLayer;
pub use permission::Permissions;
pub use policy::TypPolicy;
pub use profile::Profile;
pub use token::{BearerToken, TokenSource};
pub use verifier::Verifier;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use crate::axum::{Claims, SharedClaims};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// The chapters are the Markdown files of `docs/`. Compiled for rustdoc only (`doc`), and
// for the doctests of their Rust examples (`doctest`).
/// The guide: how each capability behaves, with every default, one chapter a module.
#[cfg(any(doc, doctest))]
#[doc = include_str!("../docs/README.md")]
pub mod guide {
    #[doc = include_str!("../docs/permissions.md")]
    pub mod permissions {}
    #[doc = include_str!("../docs/policy.md")]
    pub mod policy {}
    #[doc = include_str!("../docs/keys.md")]
    pub mod keys {}
    #[doc = include_str!("../docs/dpop-and-mtls.md")]
    pub mod dpop_and_mtls {}
    #[doc = include_str!("../docs/opaque-tokens.md")]
    pub mod opaque_tokens {}
    #[doc = include_str!("../docs/single-use-and-revocation.md")]
    pub mod single_use_and_revocation {}
    #[doc = include_str!("../docs/configuration.md")]
    pub mod configuration {}
    #[doc = include_str!("../docs/operating.md")]
    pub mod operating {}
    #[doc = include_str!("../docs/troubleshooting.md")]
    pub mod troubleshooting {}
    #[doc = include_str!("../docs/validation-rules.md")]
    pub mod validation_rules {}
    #[doc = include_str!("../docs/testing.md")]
    pub mod testing {}
    #[doc = include_str!("../docs/cli.md")]
    pub mod cli {}
    #[doc = include_str!("../docs/gate.md")]
    pub mod gate {}
    #[doc = include_str!("../docs/api-keys.md")]
    pub mod api_keys {}
    #[doc = include_str!("../docs/websocket.md")]
    pub mod websocket {}
    #[doc = include_str!("../docs/fapi.md")]
    pub mod fapi {}
}
