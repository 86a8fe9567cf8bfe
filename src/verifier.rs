//! [`Verifier`]: the authentication core for code that is not a tower service.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::config::JwtAuthConfig;
use crate::core::{self, Outcome, Step};
use crate::error::{AuthError, ErrorKind};
use crate::explain::Explanation;
pub use crate::record::Verified;

/// Verifies tokens against a [`JwtAuthConfig`], outside of any tower stack.
///
/// The layer runs the same core in the same order (length limit, issuer, keys, cache,
/// verification, layer-wide permissions); this type is for places that are not a tower
/// service (a WebSocket handshake, a message consumer, a benchmark).
///
/// ```
/// use tower_jwt_auth::{ErrorKind, JwtAuthConfig, StandardClaims, Verifier};
///
/// let cfg = JwtAuthConfig::builder()
///     .issuer("https://idp.example.com/")
///     .audience("api")
///     .hmac_secret(vec![7u8; 32])
///     .build()?;
/// let verifier = Verifier::new(cfg);
/// let err = verifier.verify::<StandardClaims>("not.a.jwt").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Malformed);
/// # Ok::<(), tower_jwt_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    config: JwtAuthConfig,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.config)
            .finish()
    }
}

impl Verifier {
    /// A verifier for the given configuration.
    #[must_use]
    pub fn new(config: JwtAuthConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &JwtAuthConfig {
        &self.config
    }

    /// Verifies `token` and deserializes its claims into `C`.
    ///
    /// # Errors
    ///
    /// An [`AuthError`] whose [`kind`](AuthError::kind) names the first rule the token
    /// breaks: [`ErrorKind::InsufficientPermission`] when it lacks a layer-wide permission,
    /// [`ErrorKind::KeysUnavailable`] when the issuer's keys have never loaded.
    ///
    /// This call never waits: with remote keys it uses the key set loaded so far, so it
    /// answers [`ErrorKind::KeysUnavailable`] before the first load and
    /// [`ErrorKind::UnknownKey`] for a `kid` published since the last refresh (the store
    /// is asked to refetch, so a later call can pass). Use
    /// [`verify_async`](Self::verify_async) to wait as the layer does.
    pub fn verify<C>(&self, token: &str) -> Result<C, AuthError>
    where
        C: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.verify_token(token)
            .map(|verified| Arc::unwrap_or_clone(verified.claims))
    }

    /// Verifies `token` and returns its shared claims and [`Permissions`](crate::Permissions);
    /// see [`verify`](Self::verify).
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub fn verify_token<C>(&self, token: &str) -> Result<Verified<C>, AuthError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let outcome = match core::authenticate_token::<C, _>(&self.config.policy, token, None, None)
        {
            Step::Done(outcome) => outcome,
            Step::Wait(pending) => pending.give_up(&self.config.policy),
        };
        verified(outcome)
    }

    /// Verifies `token` as the layer does: waiting (bounded by the fetch timeout) for the
    /// first key load, and for one refetch when the `kid` is unknown.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub async fn verify_async<C>(&self, token: &str) -> Result<Verified<C>, AuthError>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let policy = &self.config.policy;
        let outcome = match core::authenticate_token::<C, _>(policy, token, None, None) {
            Step::Done(outcome) => outcome,
            Step::Wait(pending) => pending.finish(policy).await,
        };
        verified(outcome)
    }
}

impl Verifier {
    /// Why the layer would accept or refuse `token`, check by check, with the status and
    /// challenge it would answer: for tools that explain a 401 (the `jwt-auth explain`
    /// command). It waits for keys as [`verify_async`](Self::verify_async) does. It runs
    /// the layer's steps for real: an opaque token is introspected when introspection is
    /// configured, the revocation list is asked, and with single-use tokens on, the token
    /// is spent. Explain with a configuration of its own (as `jwt-auth explain` does) to
    /// leave a live store untouched.
    ///
    /// ```
    /// # use tower_jwt_auth::{JwtAuthConfig, Verifier};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jwt_auth::ConfigError> {
    /// let verifier = Verifier::new(JwtAuthConfig::builder()
    ///     .issuer("https://idp.example.com/").audience("api")
    ///     .hmac_secret(vec![1u8; 32]).build()?);
    /// let report = verifier.explain("not-a-token").await;
    /// assert!(!report.accepted);
    /// assert_eq!(report.failed_check().map(|c| c.name), Some("structure"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn explain(&self, token: &str) -> Explanation {
        let policy = &self.config.policy;
        let (step, trace) =
            core::authenticate_traced::<serde::de::IgnoredAny, _>(policy, token, None, None);
        let (outcome, trace) = match step {
            Step::Done(outcome) => (outcome, trace),
            Step::Wait(pending) => pending.finish_traced(policy).await,
        };
        let result = verified(outcome).map(|_| ());
        Explanation::new(policy, token, result, trace)
    }
}

fn verified<C: Send + Sync + 'static>(outcome: Outcome<C, &str>) -> Result<Verified<C>, AuthError> {
    match outcome {
        // Claims that cannot be made are a refusal of the claims, never a panic.
        Outcome::Authenticated(accepted, _, _) => {
            Verified::from_accepted(accepted).ok_or_else(|| AuthError::new(ErrorKind::InvalidClaim))
        }
        // A given token is never absent, so every other outcome is a refusal.
        refused => Err(AuthError::new(
            refused.error().unwrap_or(ErrorKind::MissingToken),
        )),
    }
}
