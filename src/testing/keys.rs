//! Key pairs for tests: generation, and export of the public half as JWK, JWKS and PEM.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::algorithm::Algorithm;
use crate::jwks::KeySet;

/// A private key for minting test tokens, with a `kid`.
///
/// Cloning is cheap (the key pair is shared). `Debug` never prints key material.
///
/// ```
/// use tower_jwt_auth::testing::TestKey;
///
/// let key = TestKey::ed25519().with_kid("my-key");
/// let jwk = key.public_jwk();
/// assert_eq!(jwk["kid"], "my-key");
/// assert_eq!(jwk["crv"], "Ed25519");
/// ```
#[derive(Clone)]
pub struct TestKey {
    kid: String,
    private: Arc<Private>,
}

enum Private {
    /// The pair, and the algorithm its JWK names (RS256 or PS256).
    Rsa(RsaKeyPair, Algorithm),
    Ec(EcdsaKeyPair, Algorithm),
    Ed25519(Ed25519KeyPair),
    Hmac(Vec<u8>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa,
    P256,
    P384,
    Ed25519,
    Hmac,
}

/// Generation only fails when the system's random source does; a test kit cannot go on
/// without one.
fn generated<T, E: fmt::Debug>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("key generation failed: {e:?}"),
    }
}

fn random_kid() -> String {
    let mut bytes = [0u8; 8];
    generated(aws_lc_rs::rand::fill(&mut bytes));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TestKey {
    fn from_private(private: Private) -> Self {
        Self {
            kid: random_kid(),
            private: Arc::new(private),
        }
    }

    /// A fresh RSA 2048-bit key (RS256 by default; RS384/512 and PS256/384/512 also sign).
    ///
    /// # Panics
    ///
    /// If the system's random source fails.
    #[must_use]
    pub fn rsa() -> Self {
        Self::rsa_with_size(KeySize::Rsa2048)
    }

    /// A fresh RSA key of 2048, 3072, 4096 or 8192 bits.
    ///
    /// # Panics
    ///
    /// If `bits` is not one of those sizes or the system's random source fails.
    #[must_use]
    pub fn rsa_bits(bits: usize) -> Self {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            other => panic!("unsupported RSA key size {other}"),
        };
        Self::rsa_with_size(size)
    }

    fn rsa_with_size(size: KeySize) -> Self {
        Self::from_private(Private::Rsa(
            generated(RsaKeyPair::generate(size)),
            Algorithm::RS256,
        ))
    }

    /// A fresh RSA 2048-bit key published for PS256 (RSASSA-PSS), as FAPI 2.0 asks of
    /// RSA: its JWK's `alg` is `PS256`, and tokens and [`MockIssuer`](super::MockIssuer)
    /// sign with PS256 by default.
    ///
    /// # Panics
    ///
    /// If the system's random source fails.
    #[must_use]
    pub fn rsa_pss() -> Self {
        Self::from_private(Private::Rsa(
            generated(RsaKeyPair::generate(KeySize::Rsa2048)),
            Algorithm::PS256,
        ))
    }

    /// A fresh EC P-256 key (ES256).
    ///
    /// # Panics
    ///
    /// If the system's random source fails.
    #[must_use]
    pub fn ec_p256() -> Self {
        let pair = generated(EcdsaKeyPair::generate(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ));
        Self::from_private(Private::Ec(pair, Algorithm::ES256))
    }

    /// A fresh EC P-384 key (ES384).
    ///
    /// # Panics
    ///
    /// If the system's random source fails.
    #[must_use]
    pub fn ec_p384() -> Self {
        let pair = generated(EcdsaKeyPair::generate(
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        ));
        Self::from_private(Private::Ec(pair, Algorithm::ES384))
    }

    /// A fresh Ed25519 key (EdDSA).
    ///
    /// # Panics
    ///
    /// If the system's random source fails.
    #[must_use]
    pub fn ed25519() -> Self {
        Self::from_private(Private::Ed25519(generated(Ed25519KeyPair::generate())))
    }

    /// A fresh random 64-byte HMAC secret (HS256 by default; HS384 and HS512 also sign).
    ///
    /// # Panics
    ///
    /// If the system's random source fails.
    #[must_use]
    pub fn hmac() -> Self {
        let mut secret = vec![0u8; 64];
        generated(aws_lc_rs::rand::fill(&mut secret));
        Self::from_private(Private::Hmac(secret))
    }

    /// An HMAC key with the given secret, of any length: tests of weak or confused
    /// secrets need short ones and public keys used as secrets.
    #[must_use]
    pub fn hmac_secret(secret: impl Into<Vec<u8>>) -> Self {
        Self::from_private(Private::Hmac(secret.into()))
    }

    /// The same key with another `kid`.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with by default.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match &*self.private {
            Private::Rsa(_, alg) => *alg,
            Private::Ec(_, alg) => *alg,
            Private::Ed25519(_) => Algorithm::EdDSA,
            Private::Hmac(_) => Algorithm::HS256,
        }
    }

    fn kind(&self) -> Kind {
        match &*self.private {
            Private::Rsa(..) => Kind::Rsa,
            Private::Ec(_, Algorithm::ES384) => Kind::P384,
            Private::Ec(..) => Kind::P256,
            Private::Ed25519(_) => Kind::Ed25519,
            Private::Hmac(_) => Kind::Hmac,
        }
    }

    /// The HMAC secret, for HMAC keys.
    #[must_use]
    pub fn secret(&self) -> Option<&[u8]> {
        match &*self.private {
            Private::Hmac(secret) => Some(secret),
            _ => None,
        }
    }

    /// The public key as a JWK with `kid`, `alg` and `use: sig`. For an HMAC key this is
    /// a `kty: oct` JWK holding the secret, which is only useful to prove that such keys
    /// are refused when they appear in a published key set.
    #[must_use]
    pub fn public_jwk(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = match &*self.private {
            Private::Rsa(pair, _) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Private::Ec(pair, alg) => {
                let point = pair.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if *alg == Algorithm::ES384 {
                    "P-384"
                } else {
                    "P-256"
                };
                json!({
                    "kty": "EC",
                    "crv": crv,
                    "x": b64(&point[1..=half]),
                    "y": b64(&point[1 + half..]),
                })
            }
            Private::Ed25519(pair) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(pair.public_key().as_ref()),
            }),
            Private::Hmac(secret) => json!({"kty": "oct", "k": b64(secret)}),
        };
        jwk["kid"] = Value::from(self.kid.as_str());
        jwk["alg"] = Value::from(self.algorithm().as_str());
        jwk["use"] = Value::from("sig");
        jwk
    }

    /// The RFC 7638 thumbprint of the public key (what `cnf.jkt` holds for a token
    /// bound to this key); `None` for HMAC keys.
    #[must_use]
    pub fn thumbprint(&self) -> Option<String> {
        crate::dpop::jwk_thumbprint(&self.public_jwk())
    }

    /// The public key as PEM (`PUBLIC KEY`, SubjectPublicKeyInfo); `None` for HMAC keys.
    #[must_use]
    pub fn public_pem(&self) -> Option<String> {
        let der: PublicKeyX509Der<'static> = match &*self.private {
            Private::Rsa(pair, _) => pair.public_key().as_der().ok()?,
            Private::Ec(pair, _) => pair.public_key().as_der().ok()?,
            Private::Ed25519(pair) => pair.public_key().as_der().ok()?,
            Private::Hmac(_) => return None,
        };
        let body = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Some(pem)
    }

    /// A [`KeySet`] holding this key's public half (or its secret, for HMAC), ready for
    /// [`JwtAuthConfigBuilder::key_set`](crate::JwtAuthConfigBuilder::key_set). The key
    /// is not pinned to one algorithm: an RSA key verifies RS256 to PS512.
    ///
    /// # Panics
    ///
    /// For an HMAC key shorter than 32 bytes, which no configuration accepts.
    #[must_use]
    pub fn key_set(&self) -> KeySet {
        let set = match &*self.private {
            Private::Hmac(secret) => KeySet::from_hmac_secret(secret),
            _ => {
                // Without `alg` the key verifies every algorithm of its type.
                let mut jwk = self.public_jwk();
                if let Some(members) = jwk.as_object_mut() {
                    members.remove("alg");
                }
                KeySet::from_jwks_value(&json!({ "keys": [jwk] }))
            }
        };
        match set {
            Ok(set) => set.with_kid(&self.kid),
            Err(e) => panic!("test key not usable: {e}"),
        }
    }

    /// Another key of the same type and `kid`, unknown to any issuer: what an attacker
    /// holds. The same foreign key is returned for every key of a type.
    #[must_use]
    pub fn foreign(&self) -> Self {
        static RSA: OnceLock<TestKey> = OnceLock::new();
        static P256: OnceLock<TestKey> = OnceLock::new();
        static P384: OnceLock<TestKey> = OnceLock::new();
        static ED25519: OnceLock<TestKey> = OnceLock::new();
        let key = match self.kind() {
            Kind::Rsa => RSA.get_or_init(Self::rsa).clone(),
            Kind::P256 => P256.get_or_init(Self::ec_p256).clone(),
            Kind::P384 => P384.get_or_init(Self::ec_p384).clone(),
            Kind::Ed25519 => ED25519.get_or_init(Self::ed25519).clone(),
            Kind::Hmac => Self::hmac(),
        };
        key.with_kid(self.kid.clone())
    }

    /// The private key as JSON, to save it between runs of a manual test setup:
    /// `{"kid", "alg", "pkcs8"}` (base64 PKCS#8) or, for HMAC, `{"kid", "alg", "secret"}`.
    /// Test keys only: the file holds the private key in the clear.
    ///
    /// # Panics
    ///
    /// If the crypto library cannot serialize the key.
    #[must_use]
    pub fn export_private(&self) -> Value {
        let der = match &*self.private {
            Private::Rsa(pair, _) => {
                AsDer::<Pkcs8V1Der<'static>>::as_der(pair).map(|d| d.as_ref().to_vec())
            }
            Private::Ec(pair, _) => pair.to_pkcs8v1().map(|d| d.as_ref().to_vec()),
            Private::Ed25519(pair) => pair.to_pkcs8().map(|d| d.as_ref().to_vec()),
            Private::Hmac(secret) => {
                return json!({
                    "kid": self.kid,
                    "alg": "HS256",
                    "secret": URL_SAFE_NO_PAD.encode(secret),
                });
            }
        };
        json!({
            "kid": self.kid,
            "alg": self.algorithm().as_str(),
            "pkcs8": STANDARD.encode(generated(der)),
        })
    }

    /// Reads a key written by [`export_private`](Self::export_private).
    ///
    /// # Errors
    ///
    /// A message if the JSON is not such a key.
    pub fn import_private(value: &Value) -> Result<Self, String> {
        let field = |name: &str| {
            value[name]
                .as_str()
                .ok_or_else(|| format!("private key JSON lacks {name:?}"))
        };
        let kid = field("kid")?.to_owned();
        let alg: Algorithm = field("alg")?
            .parse()
            .map_err(|_| "unknown alg in private key JSON".to_owned())?;
        let private = if alg.is_hmac() {
            let secret = URL_SAFE_NO_PAD
                .decode(field("secret")?)
                .map_err(|_| "secret is not base64url".to_owned())?;
            Private::Hmac(secret)
        } else {
            let der = STANDARD
                .decode(field("pkcs8")?)
                .map_err(|_| "pkcs8 is not base64".to_owned())?;
            let bad = |e: aws_lc_rs::error::KeyRejected| format!("PKCS#8 key rejected: {e}");
            match alg {
                Algorithm::ES256 => Private::Ec(
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                        .map_err(bad)?,
                    alg,
                ),
                Algorithm::ES384 => Private::Ec(
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, &der)
                        .map_err(bad)?,
                    alg,
                ),
                Algorithm::EdDSA => {
                    Private::Ed25519(Ed25519KeyPair::from_pkcs8(&der).map_err(bad)?)
                }
                _ => Private::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(bad)?, alg),
            }
        };
        Ok(Self {
            kid,
            private: Arc::new(private),
        })
    }

    /// Signs `message` with `alg`.
    ///
    /// # Panics
    ///
    /// If `alg` does not fit the key type, or the crypto library fails.
    #[must_use]
    pub fn sign(&self, alg: Algorithm, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match (&*self.private, alg) {
            (Private::Rsa(pair, _), _) => {
                let encoding: &'static dyn signature::RsaEncoding = match alg {
                    Algorithm::RS256 => &signature::RSA_PKCS1_SHA256,
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    other => panic!("an RSA key cannot sign {other}"),
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                generated(pair.sign(encoding, &rng, message, &mut sig));
                sig
            }
            (Private::Ec(pair, own), alg) if *own == alg => {
                generated(pair.sign(&rng, message)).as_ref().to_vec()
            }
            (Private::Ed25519(pair), Algorithm::EdDSA) => pair.sign(message).as_ref().to_vec(),
            (Private::Hmac(secret), _) => {
                let h = match alg {
                    Algorithm::HS256 => hmac::HMAC_SHA256,
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    other => panic!("an HMAC key cannot sign {other}"),
                };
                hmac::sign(&hmac::Key::new(h, secret), message)
                    .as_ref()
                    .to_vec()
            }
            (_, other) => panic!("this key cannot sign {other}"),
        }
    }
}

impl fmt::Debug for TestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// A JWKS document (`{"keys": [...]}`) of the public halves of `keys`.
#[must_use]
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a TestKey>) -> Value {
    let keys: Vec<Value> = keys.into_iter().map(TestKey::public_jwk).collect();
    json!({ "keys": keys })
}
