//! `private_key_jwt` client assertions (RFC 7523 section 2.2): a short-lived JWT signed
//! with the resource server's own key, sent with each introspection call.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::algorithm::Algorithm;

/// A private key for `private_key_jwt`, parsed once: RSA (RS256), P-256 (ES256) or
/// Ed25519 (EdDSA), from PKCS#8 DER.
#[derive(Clone)]
pub struct SigningKey {
    key: Arc<Key>,
    kid: Option<String>,
}

enum Key {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl SigningKey {
    /// A key from PKCS#8 DER, for `alg` (`RS256`, `ES256` or `EdDSA`), with the `kid`
    /// the authorization server knows it by.
    ///
    /// # Errors
    ///
    /// A message when the DER is not a key of that algorithm.
    pub fn from_pkcs8(alg: Algorithm, der: &[u8], kid: Option<&str>) -> Result<Self, String> {
        let key = match alg {
            Algorithm::RS256 => RsaKeyPair::from_pkcs8(der)
                .map(Key::Rsa)
                .map_err(|e| e.to_string()),
            Algorithm::ES256 => {
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map(Key::Ec)
                    .map_err(|e| e.to_string())
            }
            Algorithm::EdDSA => Ed25519KeyPair::from_pkcs8(der)
                .map(Key::Ed)
                .map_err(|e| e.to_string()),
            other => return Err(format!("{other} is not supported for private_key_jwt")),
        }?;
        Ok(Self {
            key: Arc::new(key),
            kid: kid.map(str::to_owned),
        })
    }

    fn alg(&self) -> &'static str {
        match &*self.key {
            Key::Rsa(_) => "RS256",
            Key::Ec(_) => "ES256",
            Key::Ed(_) => "EdDSA",
        }
    }

    /// A fresh assertion from `client_id` for `audience`, valid for 60 s.
    pub(crate) fn assertion(&self, client_id: &str, audience: &str) -> Option<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).ok()?;
        let mut header = json!({ "alg": self.alg(), "typ": "JWT" });
        if let Some(kid) = &self.kid {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": now,
            "exp": now + 60,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match &*self.key {
            Key::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut out,
                )
                .ok()?;
                out
            }
            Key::Ec(pair) => pair.sign(&rng, input.as_bytes()).ok()?.as_ref().to_vec(),
            Key::Ed(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}
