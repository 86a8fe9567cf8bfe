//! [`DpopProof`]: DPoP proofs (RFC 9449 section 4.2) for tests and for trying an API by
//! hand, with a switch for every way a proof can be wrong.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::keys::TestKey;
use crate::algorithm::Algorithm;

/// A DPoP proof for one request: signed by a [`TestKey`], naming the method and URL, and
/// the access token it goes with.
///
/// ```
/// use tower_jwt_auth::testing::{DpopProof, TestKey, TokenBuilder};
///
/// let client_key = TestKey::ec_p256();
/// let issuer_key = TestKey::ec_p256();
/// let token = TokenBuilder::new(&issuer_key).dpop_bound(&client_key).sign();
/// let proof = DpopProof::new(&client_key, "GET", "https://api.example.com/documents")
///     .token(&token)
///     .sign();
/// // curl -H "Authorization: DPoP $token" -H "DPoP: $proof" https://api.example.com/documents
/// # let _ = proof;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct DpopProof {
    key: TestKey,
    header_alg: Option<String>,
    typ: Option<String>,
    jwk: Option<Value>,
    claims: Map<String, Value>,
    now: Option<SystemTime>,
    iat_in: i64,
}

impl DpopProof {
    /// A proof by `key` for `method` and `url` (query and fragment are ignored by the
    /// check), with a random `jti`, `iat` now, and no `ath` until [`token`](Self::token).
    pub fn new(key: &TestKey, method: &str, url: &str) -> Self {
        let mut jti = [0u8; 12];
        // A failing random source leaves a zero jti; the proof is still well formed.
        let _ = aws_lc_rs::rand::fill(&mut jti);
        let mut claims = Map::new();
        claims.insert("jti".into(), Value::from(URL_SAFE_NO_PAD.encode(jti)));
        claims.insert("htm".into(), Value::from(method));
        claims.insert("htu".into(), Value::from(url));
        Self {
            key: key.clone(),
            header_alg: None,
            typ: Some("dpop+jwt".into()),
            jwk: None,
            claims,
            now: None,
            iat_in: 0,
        }
    }

    /// Binds the proof to this access token (`ath`, its SHA-256 in base64url).
    pub fn token(self, access_token: &str) -> Self {
        let ath = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()));
        self.claim("ath", ath)
    }

    /// Sets the server nonce.
    pub fn nonce(self, nonce: &str) -> Self {
        self.claim("nonce", nonce)
    }

    /// Sets the `jti` (the same twice is a replay).
    pub fn jti(self, jti: &str) -> Self {
        self.claim("jti", jti)
    }

    /// Sets the `htm`.
    pub fn method(self, method: &str) -> Self {
        self.claim("htm", method)
    }

    /// Sets the `htu`.
    pub fn url(self, url: &str) -> Self {
        self.claim("htu", url)
    }

    /// Any claim, or a wrong value for one (`ath`, `iat`, ...).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Removes a claim (`ath`, `jti`, `htu`, ...).
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// The time `iat` counts from, instead of the system clock.
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// `iat` this many seconds from now (negative: in the past).
    pub fn issued_at_in_secs(mut self, secs: i64) -> Self {
        self.iat_in = secs;
        self
    }

    /// The `typ` header (`None` removes it).
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// Writes this `alg` in the header whatever the key signs with (`HS256` for a
    /// symmetric algorithm, `none`, ...).
    pub fn header_alg(mut self, alg: &str) -> Self {
        self.header_alg = Some(alg.to_owned());
        self
    }

    /// Puts this JWK in the header instead of the signing key's public one (another
    /// key's, or the private key itself).
    pub fn jwk(mut self, jwk: Value) -> Self {
        self.jwk = Some(jwk);
        self
    }

    /// Adds private key material (a `d` member) to the header's `jwk`, as a careless
    /// client would.
    pub fn with_private_jwk(self) -> Self {
        let mut jwk = self.key.public_jwk();
        let private = self.key.export_private();
        jwk["d"] = private["pkcs8"].clone();
        self.jwk(jwk)
    }

    /// The compact proof.
    #[must_use]
    pub fn sign(&self) -> String {
        let alg: Algorithm = self.key.algorithm();
        let mut header = Map::new();
        header.insert(
            "alg".into(),
            Value::from(
                self.header_alg
                    .clone()
                    .unwrap_or_else(|| alg.as_str().into()),
            ),
        );
        if let Some(typ) = &self.typ {
            header.insert("typ".into(), Value::from(typ.as_str()));
        }
        let jwk = self.jwk.clone().unwrap_or_else(|| {
            let mut jwk = self.key.public_jwk();
            if let Some(object) = jwk.as_object_mut() {
                object.remove("use");
            }
            jwk
        });
        header.insert("jwk".into(), jwk);
        let now = self
            .now
            .unwrap_or_else(SystemTime::now)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut claims = self.claims.clone();
        claims
            .entry("iat")
            .or_insert_with(|| json!(now.saturating_add(self.iat_in)));
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        let signature = self.key.sign(alg, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}
