//! Verification keys: the immutable [`KeySet`], the [`KeyStore`] that hands it out, and
//! (feature `remote`) [`RemoteJwks`], the store that fetches an issuer's keys.
//!
//! A `KeySet` is built once from a JWKS document, JWKs, PEM public keys or an HMAC secret;
//! every key in it is parsed into its ready-to-verify form at that moment, so a request
//! never parses key material. A [`KeyStore`] gives the request path the current set with
//! one cheap call; [`StaticKeys`] is the store for keys the application holds itself.

#[cfg(feature = "remote")]
mod fetch;
#[cfg(feature = "remote")]
pub(crate) mod health;
#[cfg(feature = "remote")]
pub(crate) mod options;
pub(crate) mod parse;
#[cfg(feature = "remote")]
pub(crate) mod remote;

#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub use health::{JwksHealth, KeysStatus};
#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub use options::RemoteOptions;
#[cfg(feature = "remote")]
#[cfg_attr(docsrs, doc(cfg(feature = "remote")))]
pub use remote::RemoteJwks;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::ParsedPublicKey;

use crate::algorithm::{Algorithm, KeyFamily};
use crate::error::{ConfigError, ConfigErrorKind, ErrorKind};
use crate::log::LogKid;

/// An immutable set of verification keys, each parsed once.
///
/// ```
/// use tower_jwt_auth::jwks::KeySet;
///
/// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
/// let keys = KeySet::from_jwks_json(jwks)?;
/// assert_eq!(keys.len(), 1);
/// assert_eq!(keys.iter().next().and_then(|k| k.kid()), Some("k1"));
/// # Ok::<(), tower_jwt_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    generation: u64,
    /// The keys' positions by `kid`, built on the first lookup of a large set, so that
    /// picking a key costs the same with a thousand keys as with ten.
    by_kid: OnceLock<HashMap<Box<str>, Vec<usize>>>,
}

/// Sets this small are scanned: a hash lookup would cost more than the scan.
const SCAN_BELOW: usize = 8;

impl Default for KeySet {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            generation: next_generation(),
            by_kid: OnceLock::new(),
        }
    }
}

/// A number no other key set content of this process has had.
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One key of a [`KeySet`], ready to verify signatures.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<Box<str>>,
    pinned: Option<Algorithm>,
    material: KeyMaterial,
    issuer: Option<Box<str>>,
}

#[derive(Clone)]
pub(crate) enum KeyMaterial {
    /// One parsed key per RSA algorithm the key may verify.
    Rsa(Vec<(Algorithm, ParsedPublicKey)>),
    Ec(Algorithm, ParsedPublicKey),
    Ed25519(ParsedPublicKey),
    /// One HMAC key per algorithm the secret is long enough for.
    Hmac(Vec<(Algorithm, hmac::Key)>),
}

impl KeyMaterial {
    pub(crate) fn family(&self) -> KeyFamily {
        match self {
            Self::Rsa(_) => KeyFamily::Rsa,
            Self::Ec(Algorithm::ES384, _) => KeyFamily::EcP384,
            Self::Ec(..) => KeyFamily::EcP256,
            Self::Ed25519(_) => KeyFamily::Ed25519,
            Self::Hmac(_) => KeyFamily::Hmac,
        }
    }
}

impl VerificationKey {
    /// The key id (`kid`), if the key has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is pinned to by its JWK `alg` member, if any.
    #[must_use]
    pub fn pinned_algorithm(&self) -> Option<Algorithm> {
        self.pinned
    }

    /// The non-standard `issuer` member some providers (Microsoft Entra ID) publish.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The algorithms this key verifies.
    #[must_use]
    pub fn algorithms(&self) -> Vec<Algorithm> {
        match &self.material {
            KeyMaterial::Rsa(keys) => keys.iter().map(|(alg, _)| *alg).collect(),
            KeyMaterial::Hmac(keys) => keys.iter().map(|(alg, _)| *alg).collect(),
            KeyMaterial::Ec(alg, _) => vec![*alg],
            KeyMaterial::Ed25519(_) => vec![Algorithm::EdDSA],
        }
    }

    /// Whether this key may verify a token signed with `alg`.
    #[must_use]
    pub fn supports(&self, alg: Algorithm) -> bool {
        if self.pinned.is_some_and(|p| p != alg) {
            return false;
        }
        match &self.material {
            KeyMaterial::Rsa(keys) => keys.iter().any(|(a, _)| *a == alg),
            KeyMaterial::Hmac(keys) => keys.iter().any(|(a, _)| *a == alg),
            KeyMaterial::Ec(a, _) => *a == alg,
            KeyMaterial::Ed25519(_) => alg == Algorithm::EdDSA,
        }
    }

    /// Checks `signature` over `message` with `alg`. HMAC tags are compared in constant
    /// time.
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if self.pinned.is_some_and(|p| p != alg) {
            return false;
        }
        match &self.material {
            KeyMaterial::Rsa(keys) => keys
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok()),
            KeyMaterial::Ec(a, key) => *a == alg && key.verify_sig(message, signature).is_ok(),
            KeyMaterial::Ed25519(key) => {
                alg == Algorithm::EdDSA && key.verify_sig(message, signature).is_ok()
            }
            KeyMaterial::Hmac(keys) => keys
                .iter()
                .find(|(a, _)| *a == alg)
                .is_some_and(|(_, key)| hmac::verify(key, message, signature).is_ok()),
        }
    }

    fn hmac(secret: &[u8]) -> Self {
        let keys = [
            (Algorithm::HS256, hmac::HMAC_SHA256),
            (Algorithm::HS384, hmac::HMAC_SHA384),
            (Algorithm::HS512, hmac::HMAC_SHA512),
        ]
        .into_iter()
        .filter(|(alg, _)| {
            alg.hmac_min_secret_len()
                .is_some_and(|min| secret.len() >= min)
        })
        .map(|(alg, h)| (alg, hmac::Key::new(h, secret)))
        .collect();
        Self {
            kid: None,
            pinned: None,
            material: KeyMaterial::Hmac(keys),
            issuer: None,
        }
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public keys are not secret, but HMAC keys are, and neither helps a log reader:
        // print what identifies the key only.
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// An empty key set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a JWKS document (`{"keys": [...]}`).
    ///
    /// Keys that cannot be used are skipped with a `tracing` warning, and the rest load:
    /// keys for encryption (`use` other than `sig`, `key_ops` without `verify`), symmetric
    /// `oct` keys (a published key is not a secret), RSA moduli under 2048 bits, unknown
    /// key types or curves, and malformed members.
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidKey`] if the text is not a JSON object with a `keys`
    /// array.
    pub fn from_jwks_json(json: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|_| ConfigError::new(ConfigErrorKind::InvalidKey, "JWKS is not valid JSON"))?;
        Self::from_jwks_value(&value)
    }

    /// Parses a JWKS document already held as JSON; see [`KeySet::from_jwks_json`].
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidKey`] if the value is not an object with a `keys` array.
    pub fn from_jwks_value(value: &serde_json::Value) -> Result<Self, ConfigError> {
        Self::parse_jwks(value).map_err(|msg| ConfigError::new(ConfigErrorKind::InvalidKey, msg))
    }

    pub(crate) fn parse_jwks(value: &serde_json::Value) -> Result<Self, &'static str> {
        let keys = value
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .ok_or("JWKS has no \"keys\" array")?;
        let mut set = Self::new();
        for key in keys {
            match parse::jwk(key) {
                Ok(key) => set.keys.push(key),
                Err((kid, reason)) => log_skipped(kid.as_deref(), reason),
            }
        }
        Ok(set)
    }

    /// Parses a single JWK (JSON text).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidKey`] if the JWK is malformed or not usable for
    /// verification under the rules of [`KeySet::from_jwks_json`].
    pub fn from_jwk_json(json: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|_| ConfigError::new(ConfigErrorKind::InvalidKey, "JWK is not valid JSON"))?;
        let key = parse::jwk(&value).map_err(|(_, reason)| {
            ConfigError::new(
                ConfigErrorKind::InvalidKey,
                format!("JWK not usable: {}", reason.as_str()),
            )
        })?;
        Ok(Self::of(vec![key]))
    }

    /// Parses PEM public keys: `PUBLIC KEY` (SubjectPublicKeyInfo: RSA, EC P-256, EC P-384,
    /// Ed25519) and `RSA PUBLIC KEY` (PKCS#1) blocks. The keys have no `kid`; see
    /// [`KeySet::with_kid`].
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::InvalidKey`] if there is no public key block, a block does not
    /// parse, or an RSA key is under 2048 bits.
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        let blocks = parse::pem_blocks(pem)
            .map_err(|msg| ConfigError::new(ConfigErrorKind::InvalidKey, msg))?;
        let mut set = Self::new();
        for der in blocks {
            let material = parse::der_public_key(&der).map_err(|reason| {
                let message = match reason {
                    parse::SkipReason::Malformed | parse::SkipReason::UnknownKeyType => {
                        "corrupt key: the PEM block is not an RSA, EC P-256, EC P-384 or \
                         Ed25519 public key"
                            .to_owned()
                    }
                    other => format!("PEM key not usable: {}", other.as_str()),
                };
                ConfigError::new(ConfigErrorKind::InvalidKey, message)
            })?;
            set.keys.push(VerificationKey {
                kid: None,
                pinned: None,
                material,
                issuer: None,
            });
        }
        Ok(set)
    }

    /// A key set holding one HMAC secret, usable for the HS algorithms whose hash output
    /// is no longer than the secret (RFC 7518 section 3.2).
    ///
    /// # Errors
    ///
    /// [`ConfigErrorKind::HmacSecretTooShort`] if the secret is shorter than 32 bytes.
    pub fn from_hmac_secret(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < 32 {
            return Err(ConfigError::new(
                ConfigErrorKind::HmacSecretTooShort,
                "HMAC secret must be at least 32 bytes (RFC 7518 section 3.2)",
            ));
        }
        Ok(Self::of(vec![VerificationKey::hmac(secret)]))
    }

    fn of(keys: Vec<VerificationKey>) -> Self {
        Self {
            keys,
            generation: next_generation(),
            by_kid: OnceLock::new(),
        }
    }

    /// Gives every key that has no `kid` the given one.
    #[must_use]
    pub fn with_kid(mut self, kid: &str) -> Self {
        for key in &mut self.keys {
            if key.kid.is_none() {
                key.kid = Some(kid.into());
            }
        }
        self.generation = next_generation();
        self.by_kid = OnceLock::new();
        self
    }

    /// Adds the keys of `other` to this set.
    #[must_use]
    pub fn merge(mut self, other: Self) -> Self {
        self.keys.extend(other.keys);
        self.generation = next_generation();
        self.by_kid = OnceLock::new();
        self
    }

    /// The generation of this set: a number given to each key set when it is built and
    /// never given to another in this process. A clone keeps it (same keys); every
    /// change makes a new one. The verified-token cache ties each entry to the generation
    /// that verified it, so a key set swap can never revive an entry verified by a key
    /// that has since been removed.
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a key of this set has the given `kid`.
    #[cfg(feature = "remote")]
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.named(kid).next().is_some()
    }

    /// The keys with this `kid`, in set order: scanned in a small set, looked up in a
    /// large one.
    fn named<'a, 'k>(&'a self, kid: &'k str) -> Named<'a, 'k> {
        if self.keys.len() < SCAN_BELOW {
            return Named::Scan(self.keys.iter(), kid);
        }
        let index = self.by_kid.get_or_init(|| {
            let mut index: HashMap<Box<str>, Vec<usize>> = HashMap::new();
            for (i, key) in self.keys.iter().enumerate() {
                if let Some(kid) = &key.kid {
                    index.entry(kid.clone()).or_default().push(i);
                }
            }
            index
        });
        let positions = index.get(kid).map_or(&[][..], Vec::as_slice);
        Named::Indexed(positions.iter(), &self.keys)
    }

    /// The number of usable keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no usable key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys.
    pub fn iter(&self) -> impl Iterator<Item = &VerificationKey> {
        self.keys.iter()
    }

    pub(crate) fn has_hmac(&self) -> bool {
        self.keys
            .iter()
            .any(|k| matches!(k.material, KeyMaterial::Hmac(_)))
    }

    pub(crate) fn has_asymmetric(&self) -> bool {
        self.keys
            .iter()
            .any(|k| !matches!(k.material, KeyMaterial::Hmac(_)))
    }

    /// Picks the key for a token.
    ///
    /// With a `kid`: the key with that id that supports `alg`; when no key has that id,
    /// the one key without an id that supports `alg`, if there is exactly one (a single
    /// PEM key or secret). Without a `kid`: the one key that supports `alg`, if there is
    /// exactly one.
    pub(crate) fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<&VerificationKey, ErrorKind> {
        if let Some(kid) = kid {
            let mut named = self.named(kid).peekable();
            if named.peek().is_some() {
                return named
                    .find(|k| k.supports(alg))
                    .ok_or(ErrorKind::KeyAlgorithmMismatch);
            }
            return self
                .single(|k| k.kid.is_none() && k.supports(alg))
                .ok_or(ErrorKind::UnknownKey);
        }
        self.single(|k| k.supports(alg))
            .ok_or(ErrorKind::NoMatchingKey)
    }

    fn single(&self, pred: impl Fn(&VerificationKey) -> bool) -> Option<&VerificationKey> {
        let mut matching = self.keys.iter().filter(|k| pred(k));
        let first = matching.next()?;
        matching.next().is_none().then_some(first)
    }
}

/// The keys of a set with one `kid`, without allocating.
enum Named<'a, 'k> {
    Scan(std::slice::Iter<'a, VerificationKey>, &'k str),
    Indexed(std::slice::Iter<'a, usize>, &'a [VerificationKey]),
}

impl<'a> Iterator for Named<'a, '_> {
    type Item = &'a VerificationKey;

    fn next(&mut self) -> Option<&'a VerificationKey> {
        match self {
            Self::Scan(keys, kid) => keys.find(|k| k.kid.as_deref() == Some(*kid)),
            Self::Indexed(positions, keys) => positions.next().and_then(|i| keys.get(*i)),
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.keys).finish()
    }
}

fn log_skipped(kid: Option<&str>, reason: parse::SkipReason) {
    tracing::warn!(
        kid = ?kid.map(LogKid),
        reason = reason.as_str(),
        "skipping JWK"
    );
}

/// The future a [`KeyStore`] returns when keys must be waited for.
pub type KeysFuture = Pin<Box<dyn Future<Output = Option<Arc<KeySet>>> + Send + 'static>>;

/// Where the layer gets its verification keys.
///
/// The request path calls [`KeyStore::current`] once per request; it must be cheap and
/// must never block. Implementations that fetch keys over the network do so in the
/// background and swap in complete new sets; the two async hooks let a request wait, for
/// a bounded time, on the first load and on a refetch for an unknown `kid`.
pub trait KeyStore: Send + Sync + fmt::Debug + 'static {
    /// The key set to verify with now, or `None` while no set has ever loaded.
    fn current(&self) -> Option<Arc<KeySet>>;

    /// Called when [`current`](Self::current) returned `None`: resolves once a load in
    /// flight has finished (with the keys, or `None` if it failed). The default resolves
    /// to `None` at once.
    fn wait_for_keys(&self) -> KeysFuture {
        Box::pin(std::future::ready(None))
    }

    /// Called when a token names a `kid` the current set lacks: resolves to a newer set
    /// if the store fetched one. Implementations must bound both the wait and how often
    /// they go to the network, and should start the refetch when called rather than when
    /// the future is polled, and never inside the returned future: a caller may drop it
    /// at any point (a client hangs up), and the refetch must still happen for the next
    /// request. The default resolves to `None` at once.
    fn refetch_for_kid(&self, kid: &str) -> KeysFuture {
        let _ = kid;
        Box::pin(std::future::ready(None))
    }

    /// How long a client should wait before retrying while no keys are available
    /// (the `Retry-After` of 503 answers). One second by default.
    fn retry_after(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// A [`KeyStore`] over keys the application holds: PEM, JWK, JWKS or an HMAC secret.
#[derive(Debug, Clone)]
pub struct StaticKeys {
    keys: Arc<KeySet>,
}

impl StaticKeys {
    /// A store that always returns `keys`.
    #[must_use]
    pub fn new(keys: KeySet) -> Self {
        Self {
            keys: Arc::new(keys),
        }
    }
}

impl StaticKeys {
    pub(crate) fn from_arc(keys: Arc<KeySet>) -> Self {
        Self { keys }
    }
}

impl KeyStore for StaticKeys {
    fn current(&self) -> Option<Arc<KeySet>> {
        Some(Arc::clone(&self.keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hmac_secret_is_refused() {
        let err = KeySet::from_hmac_secret(b"short").err().map(|e| e.kind());
        assert_eq!(err, Some(ConfigErrorKind::HmacSecretTooShort));
    }

    #[test]
    fn hmac_secret_covers_only_algorithms_it_is_long_enough_for() {
        let keys = KeySet::from_hmac_secret(&[7; 48]).expect("48-byte secret");
        let key = keys.iter().next().expect("one key");
        assert!(key.supports(Algorithm::HS256));
        assert!(key.supports(Algorithm::HS384));
        assert!(!key.supports(Algorithm::HS512));
        assert!(format!("{keys:?}").contains("HS384"));
    }

    #[test]
    fn a_corrupt_pem_says_so() {
        let not_base64 = "-----BEGIN PUBLIC KEY-----\n%%%%\n-----END PUBLIC KEY-----\n";
        let err = KeySet::from_pem(not_base64).expect_err("refused");
        assert_eq!(err.kind(), ConfigErrorKind::InvalidKey);
        assert!(err.to_string().contains("corrupt key"), "{err}");
        let not_a_key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let err = KeySet::from_pem(not_a_key).expect_err("refused");
        assert!(err.to_string().contains("corrupt key"), "{err}");
    }
}
