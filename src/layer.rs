//! [`JwtAuthLayer`]: the tower layer that authenticates requests, its service
//! [`JwtAuth`] and the service's [`ResponseFuture`].

use std::fmt;
use std::marker::PhantomData;

use tower_layer::Layer;

use crate::claims::StandardClaims;
use crate::config::JwtAuthConfig;
use crate::core::Validator;
use crate::reload::{PolicySource, ReloadHandle};
pub use crate::service::{JwtAuth, ResponseFuture};
use crate::verifier::Verifier;

/// Authenticates every request with a JWT access token.
///
/// On success one [`Authentication`](crate::Authentication) goes into the request
/// extensions, holding the claims (`C`, [`StandardClaims`] by default), the permissions
/// and the raw [`BearerToken`](crate::BearerToken), and the request goes on to the inner
/// service. Otherwise the layer answers itself, as RFC 6750
/// says: 401 with a `WWW-Authenticate: Bearer` challenge, 400 for malformed credentials,
/// 503 with `Retry-After` while the issuer's keys have never loaded.
///
/// Cloning is cheap: clones share the configuration and the keys.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};
///
/// let cfg = JwtAuthConfig::builder()
///     .issuer("https://idp.example.com/")
///     .audience("https://api.example.com")
///     .hmac_secret(vec![42u8; 32])
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(JwtAuthLayer::new(cfg))
///     .service_fn(|_req: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     });
/// # let _ = service;
/// # Ok::<(), tower_jwt_auth::ConfigError>(())
/// ```
#[must_use]
pub struct JwtAuthLayer<C = StandardClaims> {
    optional: bool,
    validator: Option<Validator<C>>,
    /// The policy the services read: the configuration's, or a live one after
    /// [`reloadable`](Self::reloadable).
    source: PolicySource,
    _claims: PhantomData<fn() -> C>,
}

impl JwtAuthLayer<StandardClaims> {
    /// A layer that puts [`StandardClaims`] into request extensions.
    pub fn new(config: JwtAuthConfig) -> Self {
        Self::with_claims(config)
    }

    /// A layer that deserializes the claims into a type of your own.
    ///
    /// ```
    /// # use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};
    /// #[derive(Clone, serde::Deserialize)]
    /// struct MyClaims {
    ///     sub: String,
    ///     org_id: String,
    /// }
    /// # let cfg = JwtAuthConfig::builder().issuer("i").audience("a")
    /// #     .hmac_secret(vec![1u8; 32]).build()?;
    /// let layer = JwtAuthLayer::with_claims::<MyClaims>(cfg);
    /// # let _ = layer;
    /// # Ok::<(), tower_jwt_auth::ConfigError>(())
    /// ```
    pub fn with_claims<C>(config: JwtAuthConfig) -> JwtAuthLayer<C> {
        let source = PolicySource::Fixed(std::sync::Arc::clone(&config.policy));
        JwtAuthLayer {
            optional: false,
            validator: None,
            source,
            _claims: PhantomData,
        }
    }
}

impl<C> JwtAuthLayer<C> {
    /// Lets requests without a token through, without claims. A token that is present
    /// but invalid is still refused: a client that sends a bad token is told so.
    ///
    /// Under a [`Profile`](crate::Profile) the layer stays strict whatever this says
    /// (logged at ERROR here): the profile needs a valid token on every request it
    /// serves; serve public routes outside the layer.
    pub fn optional(mut self) -> Self {
        if let Some(profile) = self.source.current().profile {
            tracing::error!(
                %profile,
                "JwtAuthLayer::optional() is ignored: the profile needs a token on every request"
            );
        }
        self.optional = true;
        self
    }

    /// A check over your claims type, run on every verified token (cached ones too);
    /// `false` refuses the request with 401 `invalid_token` ("claim not accepted").
    /// Checks that need no type belong on the configuration
    /// ([`require_claim`](crate::JwtAuthConfigBuilder::require_claim) and its kin).
    /// It runs after the token's binding check and before the layer-wide permissions and
    /// the state step: a token it refuses is neither looked up in the revocation list
    /// nor spent by
    /// [`single_use_tokens`](crate::JwtAuthConfigBuilder::single_use_tokens).
    ///
    /// ```
    /// # use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};
    /// #[derive(serde::Deserialize)]
    /// struct MyClaims {
    ///     org_id: String,
    ///     seats: u32,
    /// }
    /// # let cfg = JwtAuthConfig::builder().issuer("i").audience("a")
    /// #     .hmac_secret(vec![1u8; 32]).build()?;
    /// let layer = JwtAuthLayer::with_claims::<MyClaims>(cfg)
    ///     .validate(|claims| claims.org_id.starts_with("org_") && claims.seats > 0);
    /// # let _ = layer;
    /// # Ok::<(), tower_jwt_auth::ConfigError>(())
    /// ```
    pub fn validate<F>(mut self, validate: F) -> Self
    where
        F: Fn(&C) -> bool + Send + Sync + 'static,
    {
        self.validator = Some(std::sync::Arc::new(validate));
        self
    }

    /// Makes the layer reloadable: its services read the policy through an atomic swap,
    /// and the [`ReloadHandle`] replaces it without restart (see there). Costs one
    /// uncontended atomic load per request.
    ///
    /// ```
    /// # use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_jwt_auth::ConfigError> {
    /// let config = || JwtAuthConfig::builder().issuer("https://idp.example.com/")
    ///     .hmac_secret(vec![1u8; 32]);
    /// let (layer, reload) = JwtAuthLayer::new(config().audience("a").build()?).reloadable();
    /// let changed = reload.reload(config().audience("a").audience("b")).await?;
    /// assert_eq!(changed.audiences_added.len(), 1);
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn reloadable(mut self) -> (Self, ReloadHandle) {
        let live = match &self.source {
            PolicySource::Live(live) => std::sync::Arc::clone(live),
            PolicySource::Fixed(policy) => {
                std::sync::Arc::new(arc_swap::ArcSwap::new(std::sync::Arc::clone(policy)))
            }
        };
        self.source = PolicySource::Live(std::sync::Arc::clone(&live));
        (self, ReloadHandle::new(live))
    }

    /// A [`Verifier`] over the configuration the layer serves now: after a reload of a
    /// [reloadable](Self::reloadable) layer, the new one.
    #[must_use]
    pub fn verifier(&self) -> Verifier {
        Verifier::new(JwtAuthConfig {
            policy: self.source.current(),
        })
    }
}

impl<C> Clone for JwtAuthLayer<C> {
    fn clone(&self) -> Self {
        Self {
            optional: self.optional,
            validator: self.validator.clone(),
            source: self.source.clone(),
            _claims: PhantomData,
        }
    }
}

impl<C> fmt::Debug for JwtAuthLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthLayer")
            .field("policy", &*self.source.current())
            .field("optional", &self.optional)
            .field("claims", &std::any::type_name::<C>())
            .finish()
    }
}

impl<S, C: 'static> Layer<S> for JwtAuthLayer<C> {
    type Service = JwtAuth<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtAuth::new(
            inner,
            self.source.clone(),
            self.optional,
            self.validator.clone(),
        )
    }
}
