//! [`JwtAuthConfig`] and its builder. The builder is plain data: the declarative model
//! and its setters (`model.rs`), what only code can give (`code.rs`) and its setters
//! (`builder.rs`); a settings file is laid over the model (`merge.rs`); a profile presets
//! options and locks rules (`lock.rs`). Every setting is
//! checked once and compiled into the runtime policy in [`JwtAuthConfigBuilder::build`]
//! (`compile.rs`); a config that builds is one the layer can run with.

mod builder;
mod code;
mod compile;
mod lock;
#[cfg(feature = "settings")]
pub(crate) mod merge;
pub(crate) mod model;

use std::fmt;
use std::sync::Arc;
#[cfg(feature = "remote")]
use std::time::Duration;

pub use builder::DangerousConfigBuilder;
#[cfg(feature = "settings")]
pub(crate) use model::LineFinder;
pub use model::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, JwtAuthConfigBuilder};

use crate::algorithm::Algorithm;
use crate::error::ConfigError;
#[cfg(feature = "remote")]
use crate::jwks::health::JwksHealth;
#[cfg(feature = "remote")]
use crate::jwks::remote::RemoteJwks;
use crate::policy::Policy;
use crate::resource::ProtectedResourceMetadata;
use crate::state::Revocations;

/// The validated configuration of a [`JwtAuthLayer`](crate::JwtAuthLayer).
///
/// Cheap to clone. Built with [`JwtAuthConfig::builder`].
#[derive(Clone)]
pub struct JwtAuthConfig {
    /// The compiled policy the layer reads.
    pub(crate) policy: Arc<Policy>,
}

impl fmt::Debug for JwtAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JwtAuthConfig").field(&self.policy).finish()
    }
}

impl JwtAuthConfig {
    /// A builder with the defaults: bearer header, 60 s leeway, 8 KiB tokens, lenient
    /// `typ`, system clock, empty-body RFC 6750 responses.
    pub fn builder() -> JwtAuthConfigBuilder {
        JwtAuthConfigBuilder::default()
    }

    /// The trusted issuers (templates as configured).
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.policy.issuers.iter().map(|i| i.matcher.as_str())
    }

    /// The RFC 9728 metadata document and a service that serves it, when a
    /// [`resource`](JwtAuthConfigBuilder::resource) is configured.
    #[must_use]
    pub fn protected_resource_metadata(&self) -> Option<ProtectedResourceMetadata> {
        self.policy.metadata.clone()
    }

    /// Health handles of the remote key stores, one per issuer or JWKS URL; empty when
    /// the keys are static.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    #[must_use]
    pub fn key_health(&self) -> Vec<JwksHealth> {
        self.policy
            .issuers
            .iter()
            .filter_map(|i| i.remote.as_ref())
            .map(RemoteJwks::health)
            .collect()
    }

    /// Waits until every remote key store has loaded, for at most `timeout`. Returns
    /// whether all have. The layer does not need this; it is for applications that want
    /// to hold back startup until the identity provider answered.
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub async fn wait_until_ready(&self, timeout: Duration) -> bool {
        let start = std::time::Instant::now();
        for remote in self.policy.issuers.iter().filter_map(|i| i.remote.as_ref()) {
            let left = timeout.saturating_sub(start.elapsed());
            if !remote.wait_until_ready(left).await {
                return false;
            }
        }
        true
    }

    /// The audiences a token of `issuer` may carry (as configured, templates included);
    /// empty if the check was turned off or the issuer is not trusted.
    pub fn audiences<'a>(&'a self, issuer: &str) -> impl Iterator<Item = &'a str> {
        self.policy
            .issuers
            .iter()
            .filter(move |i| i.matcher.as_str() == issuer)
            .flat_map(|i| i.audiences.iter().map(AsRef::as_ref))
    }

    /// The algorithms a token may use, over every trusted issuer.
    #[must_use]
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.policy.algorithms
    }

    /// The [`Profile`](crate::Profile) this configuration was checked against, if any.
    #[must_use]
    pub fn profile(&self) -> Option<crate::Profile> {
        self.policy.profile
    }

    /// The handle that records revocations in the configured
    /// [`revocation_list`](JwtAuthConfigBuilder::revocation_list); `None` without one.
    ///
    /// ```
    /// use tower_jwt_auth::JwtAuthConfig;
    /// use tower_jwt_auth::state::MemoryRevocationList;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let config = JwtAuthConfig::builder()
    ///     .issuer("https://issuer.example")
    ///     .audience("api")
    ///     .hmac_secret(b"an example secret of at least 32 bytes".to_vec())
    ///     .revocation_list(MemoryRevocationList::default())
    ///     .build()?;
    /// let revocations = config.revocations().expect("a revocation list is configured");
    /// revocations.revoke_subject("https://issuer.example", "user-42").await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn revocations(&self) -> Option<Revocations> {
        self.policy.revocations.clone()
    }
}

impl JwtAuthConfigBuilder {
    /// Checks the settings and parses the keys.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] whose [`kind`](ConfigError::kind) says what is wrong: no issuer,
    /// no audience (unless turned off), an empty issuer or audience, two key sources for
    /// one issuer, several issuers sharing one static key set, JWKS URL or key store, a
    /// key that does not parse, an HMAC secret shorter than the hash output, HMAC mixed
    /// with public keys, an allowed algorithm no key can verify, an issuer or JWKS URL
    /// that is not https, an invalid realm, header or cookie name, resource-metadata
    /// settings without a resource, a zero maximum token length, a secret or key file that
    /// cannot be read, or a `redis://` state store named outside a Tokio runtime. Errors
    /// name the option's path, and its line when the options came from a settings file.
    /// Nothing is fetched.
    pub fn build(self) -> Result<JwtAuthConfig, ConfigError> {
        Ok(JwtAuthConfig {
            policy: Arc::new(compile::compile(self, None)?),
        })
    }
}

impl JwtAuthConfigBuilder {
    /// [`build`](Self::build) for a reload: remote key stores of issuers whose key source
    /// did not change are taken from `previous` (no refetch, no window without keys).
    pub(crate) fn build_replacing(self, previous: &Policy) -> Result<JwtAuthConfig, ConfigError> {
        Ok(JwtAuthConfig {
            policy: Arc::new(compile::compile(self, Some(previous))?),
        })
    }
}
