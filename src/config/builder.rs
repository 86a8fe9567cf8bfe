//! The setters of what only code can give the builder (closures, stores, clocks, keys
//! as bytes, HTTP clients), and [`DangerousConfigBuilder`]. Nothing here validates or
//! compiles; `compile.rs` does, once, in `build()`.

use std::sync::Arc;

use super::model::JwtAuthConfigBuilder;
use crate::issuer::KeyInput;
use crate::jwks::{KeySet, KeyStore};
use crate::response::ErrorResponder;
use crate::rules::{Check, ClaimRule, ClaimsView, RequestHead};
#[cfg(feature = "dpop")]
use crate::state::ProofStore;
use crate::state::{ReplayStore, RevocationList};
use crate::telemetry::AuditEvent;
use crate::time::Clock;
use crate::token::TokenSource;

/// The settings that weaken validation, reached through
/// [`JwtAuthConfigBuilder::dangerous`].
#[must_use]
#[derive(Debug)]
pub struct DangerousConfigBuilder {
    pub(super) builder: JwtAuthConfigBuilder,
}

impl DangerousConfigBuilder {
    /// Accepts tokens whatever their `aud`. RFC 9068 section 4 requires resource servers
    /// to check the audience: without it, a token minted for any other API of the same
    /// issuer is accepted here.
    pub fn accept_any_audience(mut self) -> JwtAuthConfigBuilder {
        self.builder.code.any_audience = true;
        self.builder
    }

    /// Fetches keys and discovery documents over plain http from any host, not only
    /// loopback: whoever can answer those requests (anyone on the path) chooses the keys
    /// this API trusts. For closed test networks only.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn allow_plain_http(mut self) -> JwtAuthConfigBuilder {
        self.builder.declared.remote.allow_http = true;
        self.builder
    }

    /// Accepts introspection answers that name no audience. RFC 7662 makes `aud`
    /// optional, but without it a token issued for any other resource server of the same
    /// authorization server is accepted here.
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub fn introspection_without_audience(mut self) -> JwtAuthConfigBuilder {
        self.builder.code.introspection_audience_optional = true;
        self.builder
    }

    /// Accepts every tenant of an issuer template such as
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`. Any organisation with a tenant
    /// at that provider can then mint tokens this API accepts (as long as the audience
    /// matches, which for multi-tenant applications it can).
    pub fn accept_any_tenant(mut self) -> JwtAuthConfigBuilder {
        self.builder.code.any_tenant = true;
        self.builder
    }
}

impl JwtAuthConfigBuilder {
    /// A mandatory validator of one claim: the token must have it, and `validate` must
    /// accept its value (401 "required claim missing" or "claim not accepted").
    ///
    /// ```
    /// use tower_jwt_auth::JwtAuthConfig;
    ///
    /// let builder = JwtAuthConfig::builder()
    ///     .validate_claim("amr", |amr| amr.as_array().is_some_and(|m| m.iter().any(|m| m == "mfa")));
    /// # let _ = builder;
    /// ```
    pub fn validate_claim<F>(self, name: impl Into<String>, validate: F) -> Self
    where
        F: Fn(&serde_json::Value) -> bool + Send + Sync + 'static,
    {
        self.claim_rule(name, true, Check::Validate(std::sync::Arc::new(validate)))
    }

    /// An optional validator of one claim: it runs only when the token has the claim.
    pub fn validate_claim_if_present<F>(self, name: impl Into<String>, validate: F) -> Self
    where
        F: Fn(&serde_json::Value) -> bool + Send + Sync + 'static,
    {
        self.claim_rule(name, false, Check::Validate(std::sync::Arc::new(validate)))
    }

    /// A validator over every top-level claim of the verified payload; `false` is 401
    /// ("claim not accepted"). For a check over your own claims type, use
    /// [`JwtAuthLayer::validate`](crate::JwtAuthLayer::validate).
    pub fn validate_claims<F>(mut self, validate: F) -> Self
    where
        F: Fn(&ClaimsView<'_>) -> bool + Send + Sync + 'static,
    {
        self.code.payload_checks.push(std::sync::Arc::new(validate));
        self
    }

    /// Lets requests for which `predicate` is true through without a token (as
    /// [`exempt`](Self::exempt), decided by code).
    pub fn exempt_when<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&RequestHead<'_>) -> bool + Send + Sync + 'static,
    {
        self.code
            .exempt_predicates
            .push(std::sync::Arc::new(predicate));
        self
    }

    fn claim_rule(mut self, name: impl Into<String>, mandatory: bool, check: Check) -> Self {
        self.code.claim_validators.push(ClaimRule {
            name: name.into().into(),
            mandatory,
            check,
        });
        self
    }

    /// Where the token is read from; the `Authorization: Bearer` header by default. It
    /// replaces the sources a settings file's `[token]` table names (`bearer`, `cookie`,
    /// `header`, `websocket_protocol`, `query`); the table's `query_paths` still apply.
    pub fn token_source(mut self, source: TokenSource) -> Self {
        self.code.token_source = Some(source);
        self
    }

    /// Sets what `profile` presets and locks it: a later setter or file key that would
    /// weaken one of its rules makes [`build`](Self::build) fail, naming the rule and
    /// its source. See [`Profile`](crate::Profile) for what each one sets; settings
    /// files say `profile = "fapi2"`.
    pub fn profile(mut self, profile: crate::Profile) -> Self {
        super::lock::preset(&mut self.declared, profile);
        self
    }

    /// The paths where a [`TokenSource::query`] source reads (exact paths, or prefixes
    /// written with a final `*`, as [`PathPattern`](crate::rules::PathPattern) reads
    /// them); `[token] query_paths` in a file. A query source without paths, or paths
    /// without a query source, make [`build`](Self::build) fail.
    pub fn query_token_paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.declared.token.query_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// The clock claim checks read; the system clock by default. Tests use
    /// [`ManualClock`](crate::time::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.code.clock = clock;
        self
    }

    /// Verifies with PEM public keys (RSA, EC P-256/P-384, Ed25519).
    pub fn pem(mut self, pem: impl Into<String>) -> Self {
        self.code.keys.inputs.push(KeyInput::Pem(pem.into()));
        self
    }

    /// Verifies with one JWK (JSON text).
    pub fn jwk(mut self, jwk: impl Into<String>) -> Self {
        self.code.keys.inputs.push(KeyInput::Jwk(jwk.into()));
        self
    }

    /// Verifies with the keys of a JWKS document (JSON text).
    pub fn jwks(mut self, jwks: impl Into<String>) -> Self {
        self.code.keys.inputs.push(KeyInput::Jwks(jwks.into()));
        self
    }

    /// Verifies with the keys of a JWKS document held as JSON.
    pub fn jwks_value(mut self, jwks: serde_json::Value) -> Self {
        self.code.keys.inputs.push(KeyInput::JwksValue(jwks));
        self
    }

    /// Verifies HS256/HS384/HS512 tokens with a shared secret. It must be at least as
    /// long as the hash output (32 bytes for HS256) and cannot be mixed with public keys.
    pub fn hmac_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.code.keys.inputs.push(KeyInput::Hmac(secret.into()));
        self
    }

    /// Verifies with an already built [`KeySet`].
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.code.keys.inputs.push(KeyInput::Set(keys));
        self
    }

    /// Fetches the keys from OIDC discovery of each issuer
    /// (`{issuer}/.well-known/openid-configuration`), refreshed in the background by a
    /// [`RemoteJwks`](crate::jwks::RemoteJwks) per issuer. This is the default when no other key source is given.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn discovery(mut self) -> Self {
        self.code.keys.discovery = true;
        self
    }

    /// Fetches the keys from a JWKS URL, refreshed in the background by a [`RemoteJwks`](crate::jwks::RemoteJwks).
    /// With several issuers, give each its own through a
    /// [`TrustedIssuer`](crate::TrustedIssuer) passed to [`issuer`](Self::issuer).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.code.keys.jwks_url = Some(url.into());
        self
    }

    /// The HTTP client for remote keys; shorthand for
    /// [`RemoteOptions::http_client`](crate::jwks::RemoteOptions::http_client).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        let remote = std::mem::take(&mut self.declared.remote);
        self.declared.remote = remote.http_client(client);
        self
    }

    /// Verifies with keys from a custom [`KeyStore`]. Cannot be combined with the other
    /// key sources.
    pub fn key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.code.keys.store = Some(store);
        self
    }

    /// How rejections are rendered; see [`ErrorResponder`].
    pub fn error_responder(mut self, responder: impl ErrorResponder) -> Self {
        self.code.responder = Arc::new(responder);
        self
    }

    /// Calls `hook` once per request the layer decides, with a token-free summary: the
    /// outcome label, the error kind of a refusal, the method and path, and for a verified
    /// token its issuer, subject, client id and `kid`. For audit logs.
    ///
    /// ```
    /// use tower_jwt_auth::JwtAuthConfig;
    ///
    /// let builder = JwtAuthConfig::builder().on_outcome(|event| {
    ///     if event.error.is_some() {
    ///         eprintln!("refused: {event}");
    ///     }
    /// });
    /// # let _ = builder;
    /// ```
    pub fn on_outcome<F>(mut self, hook: F) -> Self
    where
        F: Fn(&AuditEvent<'_>) + Send + Sync + 'static,
    {
        self.code.audit = Some(Arc::new(hook));
        self
    }

    /// Where used tokens are recorded, for single use (layer-wide or per route). The
    /// default is a [`MemoryReplayStore`](crate::state::MemoryReplayStore) of 100 000
    /// keys, which is right for one replica only: replicas share a `RedisReplayStore`
    /// (feature `redis`).
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.code.replay = Some(Arc::new(store));
        self
    }

    /// Where DPoP proofs are recorded (RFC 9449 section 11.1), apart from single-use
    /// tokens. The default is the proof store the [`replay_store`](Self::replay_store)
    /// offers on its backend (a `RedisReplayStore` offers a `RedisProofStore` on the
    /// same connection), else a [`MemoryProofStore`](crate::state::MemoryProofStore) of
    /// 100 000 proofs, right for one replica only. Each client key may hold at most
    /// [`max_live_proofs_per_key`](crate::dpop::DpopOptions::max_live_proofs_per_key)
    /// live proofs in it.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    pub fn proof_store(mut self, store: impl ProofStore) -> Self {
        self.code.proofs = Some(Arc::new(store));
        self
    }

    /// Checks every request against this revocation list, after the signature and for
    /// cached tokens too: a revoked token, or a token of a revoked subject issued at or
    /// before the revocation (or without `iat`), gets 401 `invalid_token` ("token
    /// revoked"). Record revocations through
    /// [`JwtAuthConfig::revocations`](crate::JwtAuthConfig::revocations).
    pub fn revocation_list(mut self, list: impl RevocationList) -> Self {
        self.code.revocation = Some(Arc::new(list));
        self
    }

    /// Settings that weaken validation; each one says what it gives up.
    pub fn dangerous(self) -> DangerousConfigBuilder {
        DangerousConfigBuilder { builder: self }
    }
}

#[cfg(all(test, feature = "remote"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::jwks::options::RemoteOptions;

    #[test]
    fn a_client_survives_remote_options_set_after_it_and_before_it() {
        let client = reqwest::Client::new();
        let after = JwtAuthConfigBuilder::default()
            .http_client(client.clone())
            .remote_options(RemoteOptions::new().fetch_timeout(Duration::from_secs(1)));
        assert!(after.declared.remote.client.is_some());
        assert_eq!(after.declared.remote.fetch_timeout, Duration::from_secs(1));
        let before = JwtAuthConfigBuilder::default()
            .remote_options(RemoteOptions::new())
            .http_client(client);
        assert!(before.declared.remote.client.is_some());
    }

    #[test]
    fn weakening_switches_are_reached_through_dangerous_only() {
        let b = JwtAuthConfigBuilder::default()
            .dangerous()
            .allow_plain_http()
            .dangerous()
            .introspection_without_audience();
        assert!(b.declared.remote.allow_http);
        assert!(b.code.introspection_audience_optional);
        let later = b.remote_options(RemoteOptions::new());
        assert!(later.declared.remote.allow_http, "kept by remote_options");
    }
}
