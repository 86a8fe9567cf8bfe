//! Trusted issuers: [`TrustedIssuer`], the builder of one issuer with its own keys and
//! audiences, and what a built configuration keeps of each issuer.
//!
//! Each issuer owns its keys: a token is verified only with the keys of the issuer its
//! `iss` names, and then checked against that issuer's audiences (RFC 8725 section 3.8).
//! The builder refuses several issuers sharing one key source that names no issuer
//! (static keys, a JWKS URL, a custom store): a key of one issuer could then sign tokens
//! claiming another.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::error::{ConfigError, ConfigErrorKind, ErrorKind};
#[cfg(feature = "remote")]
use crate::jwks::options::RemoteOptions;
#[cfg(feature = "remote")]
use crate::jwks::remote::RemoteJwks;
use crate::jwks::{KeySet, KeyStore, StaticKeys};

/// One trusted issuer with its own key source and audiences, for configurations that
/// trust several issuers; see
/// [`JwtAuthConfigBuilder::issuer`](crate::JwtAuthConfigBuilder::issuer).
///
/// Without a key source of its own, the issuer's keys come from OIDC discovery (or from
/// the builder's key source when it is the only issuer). Without audiences of its own,
/// the builder's apply.
///
/// ```
/// use tower_jwt_auth::{JwtAuthConfig, TrustedIssuer};
///
/// # let (keys_a, keys_b) = (
/// #     tower_jwt_auth::jwks::KeySet::from_hmac_secret(&[1u8; 32])?,
/// #     tower_jwt_auth::jwks::KeySet::from_hmac_secret(&[2u8; 32])?,
/// # );
/// let cfg = JwtAuthConfig::builder()
///     .issuer(TrustedIssuer::new("https://a.example.com/").key_set(keys_a))
///     .issuer(
///         TrustedIssuer::new("https://b.example.com/")
///             .key_set(keys_b)
///             .audience("https://api.example.com/b-only"),
///     )
///     .audience("https://api.example.com")
///     .build()?;
/// # let _ = cfg;
/// # Ok::<(), tower_jwt_auth::ConfigError>(())
/// ```
///
/// It is also an `[[issuers]]` table of a settings file: `issuer`, `audiences` (or
/// `audience` for one), `tenants`, `algorithms`, and at most one of `jwks_url`, `jwks`
/// (inline JSON), `pem_file` and `hmac_secret_file`.
#[must_use]
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedIssuer {
    pub(crate) issuer: String,
    #[serde(alias = "audience", deserialize_with = "crate::written::one_or_many")]
    pub(crate) audiences: Vec<String>,
    pub(crate) tenants: Vec<String>,
    /// The algorithms this issuer's tokens may use, instead of the builder's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) algorithms: Option<Vec<crate::algorithm::Algorithm>>,
    /// Keys from this JWKS URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jwks_url: Option<String>,
    /// Keys from this inline JWKS document, as a file writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) jwks: Option<InlineJwks>,
    /// Keys from this PEM file, read at `build()`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pem_file: Option<std::path::PathBuf>,
    /// An HMAC secret read from this file at `build()` (trailing line breaks ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hmac_secret_file: Option<std::path::PathBuf>,
    /// Keys given in code (never written out).
    #[serde(skip)]
    pub(crate) keys: KeySpec,
}

/// An inline JWKS document as a settings file writes it: shown by `Debug` as
/// `<redacted>`, since it may hold symmetric keys.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct InlineJwks(pub(crate) String);

impl fmt::Debug for InlineJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An issuer URL (or tenant template) with no settings of its own.
impl From<&str> for TrustedIssuer {
    fn from(issuer: &str) -> Self {
        Self::new(issuer)
    }
}

/// An issuer URL (or tenant template) with no settings of its own.
impl From<String> for TrustedIssuer {
    fn from(issuer: String) -> Self {
        Self::new(issuer)
    }
}

/// An issuer URL (or tenant template) with no settings of its own.
impl From<&String> for TrustedIssuer {
    fn from(issuer: &String) -> Self {
        Self::new(issuer.as_str())
    }
}

impl TrustedIssuer {
    /// An issuer: the exact `iss` its tokens carry, or a tenant template such as
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            ..Self::default()
        }
    }

    /// Adds an audience this issuer's tokens may carry; when an issuer has audiences of
    /// its own, the builder's do not apply to it.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The tenants a template issuer accepts (instead of the builder's).
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tenants.extend(tenants.into_iter().map(Into::into));
        self
    }

    /// The algorithms this issuer's tokens may use (instead of the builder's
    /// [`algorithms`](crate::JwtAuthConfigBuilder::algorithms)): pins each identity
    /// provider to what it signs with, when several sign differently.
    pub fn algorithms(
        mut self,
        algorithms: impl IntoIterator<Item = crate::algorithm::Algorithm>,
    ) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Keys from this issuer's OIDC discovery document (the default; feature `remote`).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn discovery(mut self) -> Self {
        self.keys.discovery = true;
        self
    }

    /// Keys from a JWKS URL, refreshed in the background (feature `remote`).
    #[cfg(feature = "remote")]
    #[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Keys from a custom [`KeyStore`].
    pub fn key_store(mut self, store: Arc<dyn KeyStore>) -> Self {
        self.keys.store = Some(store);
        self
    }

    /// Static keys: an already built [`KeySet`].
    pub fn key_set(mut self, keys: KeySet) -> Self {
        self.keys.inputs.push(KeyInput::Set(keys));
        self
    }

    /// Static keys: PEM public keys.
    pub fn pem(mut self, pem: impl Into<String>) -> Self {
        self.keys.inputs.push(KeyInput::Pem(pem.into()));
        self
    }

    /// Static keys: a JWKS document (JSON text).
    pub fn jwks(mut self, jwks: impl Into<String>) -> Self {
        self.keys.inputs.push(KeyInput::Jwks(jwks.into()));
        self
    }

    /// Static keys: an HMAC secret of at least 32 bytes.
    pub fn hmac_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.keys.inputs.push(KeyInput::Hmac(secret.into()));
        self
    }
}

/// A key given to the builder, parsed at `build()`.
#[derive(Clone)]
pub(crate) enum KeyInput {
    Pem(String),
    Jwk(String),
    Jwks(String),
    JwksValue(serde_json::Value),
    Hmac(Vec<u8>),
    Set(KeySet),
}

impl fmt::Debug for KeyInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pem(_) => "Pem",
            Self::Jwk(_) => "Jwk",
            Self::Jwks(_) | Self::JwksValue(_) => "Jwks",
            Self::Hmac(_) => "Hmac(<redacted>)",
            Self::Set(_) => "KeySet",
        })
    }
}

/// Where one issuer's keys come from, as configured (at most one source).
#[derive(Default, Clone)]
pub(crate) struct KeySpec {
    pub(crate) inputs: Vec<KeyInput>,
    pub(crate) store: Option<Arc<dyn KeyStore>>,
    pub(crate) jwks_url: Option<String>,
    pub(crate) discovery: bool,
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySpec")
            .field("inputs", &self.inputs)
            .field("store", &self.store)
            .field("jwks_url", &self.jwks_url)
            .field("discovery", &self.discovery)
            .finish()
    }
}

/// What a remote key store was built from: two equal ids build the same store, so a
/// reload keeps the running one. Compared by value, never by any text rendering.
#[cfg(feature = "remote")]
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteId {
    source: RemoteSource,
    /// Equal when every setting is; the HTTP client is not compared (clients have no
    /// identity), so a kept store keeps its client.
    options: RemoteOptions,
}

#[cfg(feature = "remote")]
#[derive(Debug, Clone, PartialEq, Eq)]
enum RemoteSource {
    Jwks(String),
    Discovery(String),
}

/// A built key source: the store, the static set when the keys are static, and the
/// remote store when they are fetched (for health reports).
pub(crate) struct BuiltKeys {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) static_set: Option<Arc<KeySet>>,
    #[cfg(feature = "remote")]
    pub(crate) remote: Option<RemoteJwks>,
}

impl KeySpec {
    fn count(&self) -> usize {
        usize::from(self.store.is_some())
            + usize::from(!self.inputs.is_empty())
            + usize::from(self.jwks_url.is_some())
            + usize::from(self.discovery)
    }

    /// Whether any source is configured.
    pub(crate) fn is_set(&self) -> bool {
        self.count() > 0
    }

    /// Whether the source serves keys without naming whose they are: static keys, a
    /// JWKS URL or a custom store. Only discovery binds keys to an issuer by itself.
    pub(crate) fn is_anonymous(&self) -> bool {
        self.is_set() && !self.discovery
    }

    /// What identifies a remote store built from this spec for `issuer`, so that a
    /// reload can keep a store whose source did not change; `None` for static keys and
    /// custom stores (cheap to rebuild, or the application's own).
    #[cfg(feature = "remote")]
    pub(crate) fn remote_id(&self, issuer: &str, options: &RemoteOptions) -> Option<RemoteId> {
        if self.store.is_some() || !self.inputs.is_empty() {
            return None;
        }
        let source = match &self.jwks_url {
            Some(url) => RemoteSource::Jwks(url.clone()),
            None => RemoteSource::Discovery(issuer.to_owned()),
        };
        Some(RemoteId {
            source,
            options: options.clone(),
        })
    }

    /// Builds the store for `issuer` (discovery from `issuer` when nothing is set).
    pub(crate) fn build(
        &self,
        issuer: &str,
        #[cfg(feature = "remote")] options: &RemoteOptions,
    ) -> Result<BuiltKeys, ConfigError> {
        if self.count() > 1 {
            return Err(ConfigError::new(
                ConfigErrorKind::ConflictingKeySources,
                format!(
                    "configure one key source for {issuer:?}: static keys, a key store, a JWKS URL or discovery"
                ),
            ));
        }
        if let Some(store) = &self.store {
            return Ok(BuiltKeys {
                store: Arc::clone(store),
                static_set: None,
                #[cfg(feature = "remote")]
                remote: None,
            });
        }
        if !self.inputs.is_empty() {
            let set = Arc::new(self.static_set()?);
            return Ok(BuiltKeys {
                store: Arc::new(StaticKeys::from_arc(Arc::clone(&set))),
                static_set: Some(set),
                #[cfg(feature = "remote")]
                remote: None,
            });
        }
        #[cfg(feature = "remote")]
        {
            let remote = match &self.jwks_url {
                Some(url) => RemoteJwks::from_jwks_url(url, options.clone())?,
                None => RemoteJwks::from_issuer(issuer, options.clone())?,
            };
            Ok(BuiltKeys {
                store: Arc::new(remote.clone()),
                static_set: None,
                remote: Some(remote),
            })
        }
        #[cfg(not(feature = "remote"))]
        Err(ConfigError::new(
            ConfigErrorKind::NoKeySource,
            format!(
                "no key source for {issuer:?}: give static keys or a key store, or enable the `remote` feature for OIDC discovery and JWKS URLs"
            ),
        ))
    }

    fn static_set(&self) -> Result<KeySet, ConfigError> {
        use ConfigErrorKind as K;
        let mut set = KeySet::new();
        for input in &self.inputs {
            let more = match input {
                KeyInput::Pem(pem) => KeySet::from_pem(pem)?,
                KeyInput::Jwk(jwk) => KeySet::from_jwk_json(jwk)?,
                KeyInput::Jwks(jwks) => KeySet::from_jwks_json(jwks)?,
                KeyInput::JwksValue(jwks) => KeySet::from_jwks_value(jwks)?,
                KeyInput::Hmac(secret) => KeySet::from_hmac_secret(secret)?,
                KeyInput::Set(keys) => keys.clone(),
            };
            set = set.merge(more);
        }
        if set.is_empty() {
            return Err(ConfigError::new(
                K::InvalidKey,
                "no usable key in the configured keys",
            ));
        }
        if set.has_hmac() && set.has_asymmetric() {
            return Err(ConfigError::new(
                K::MixedKeyTypes,
                "an HMAC secret cannot be combined with public keys",
            ));
        }
        Ok(set)
    }
}

/// A trusted issuer: an exact string, or a tenant template such as
/// `https://login.microsoftonline.com/{tenantid}/v2.0` with an allow-list.
#[derive(Debug)]
pub(crate) enum IssuerMatch {
    Exact(Box<str>),
    Template {
        template: Box<str>,
        prefix: Box<str>,
        suffix: Box<str>,
        /// `None` only when turned off through `dangerous()`. A set, so that matching
        /// costs the same with a thousand tenants as with one.
        tenants: Option<HashSet<Box<str>>>,
    },
}

impl IssuerMatch {
    pub(crate) fn new(
        issuer: &str,
        tenants: &[String],
        any_tenant: bool,
    ) -> Result<Self, ConfigError> {
        let placeholder = ["{tenantid}", "{tenant}"]
            .into_iter()
            .find(|p| issuer.contains(p));
        let Some(placeholder) = placeholder else {
            return Ok(Self::Exact(issuer.into()));
        };
        if tenants.is_empty() && !any_tenant {
            return Err(ConfigError::new(
                ConfigErrorKind::NoTenantAllowList,
                format!("issuer template {issuer:?} needs .tenants([...])"),
            ));
        }
        let (prefix, suffix) = issuer.split_once(placeholder).unwrap_or((issuer, ""));
        Ok(Self::Template {
            template: issuer.replace("{tenant}", "{tenantid}").into(),
            prefix: prefix.into(),
            suffix: suffix.into(),
            tenants: (!any_tenant).then(|| tenants.iter().map(|t| t.as_str().into()).collect()),
        })
    }

    /// Whether a token's `iss` is this issuer.
    pub(crate) fn matches(&self, iss: &str) -> bool {
        match self {
            Self::Exact(exact) => **exact == *iss,
            Self::Template {
                prefix,
                suffix,
                tenants,
                ..
            } => iss
                .strip_prefix(&**prefix)
                .and_then(|rest| rest.strip_suffix(&**suffix))
                .is_some_and(|tenant| {
                    !tenant.is_empty()
                        && !tenant.contains('/')
                        && tenants
                            .as_ref()
                            .is_none_or(|allowed| allowed.contains(tenant))
                }),
        }
    }

    /// The issuer as configured (the template for templates).
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Exact(exact) => exact,
            Self::Template { template, .. } => template,
        }
    }
}

/// What a built configuration keeps of one trusted issuer: how its `iss` is matched,
/// the audiences its tokens may carry, the algorithms its keys verify, and its keys.
pub(crate) struct Issuer {
    pub(crate) matcher: IssuerMatch,
    /// Empty only when the audience check was turned off through `dangerous()`.
    pub(crate) audiences: Vec<Box<str>>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) store: Arc<dyn KeyStore>,
    /// The store again when it is a remote one, for health reports.
    #[cfg(feature = "remote")]
    pub(crate) remote: Option<RemoteJwks>,
    /// What the remote store was built from, for reuse across a reload.
    #[cfg(feature = "remote")]
    pub(crate) remote_id: Option<RemoteId>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.matcher.as_str())
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("keys", &self.store)
            .finish()
    }
}

impl Issuer {
    /// Whether `aud` (the token's audiences) names one this issuer accepts.
    pub(crate) fn accepts_audience(&self, aud: &crate::payload::Aud<'_>) -> bool {
        self.audiences.is_empty() || aud.any(|a| self.audiences.iter().any(|ours| **ours == *a))
    }
}

/// Picks the issuer of a token among several by its unverified `iss`; the claim is
/// verified like every other once the signature is. With one issuer nothing is read
/// before verification, not even the token's text.
pub(crate) fn issuer_for<'a, 't>(
    issuers: &'a [Arc<Issuer>],
    token: impl FnOnce() -> Result<&'t str, ErrorKind>,
) -> Result<&'a Arc<Issuer>, ErrorKind> {
    if let [only] = issuers {
        return Ok(only);
    }
    let iss = crate::jws::peek_issuer(token()?)?;
    issuers
        .iter()
        .find(|issuer| issuer.matcher.matches(&iss))
        .ok_or(ErrorKind::InvalidIssuer)
}
