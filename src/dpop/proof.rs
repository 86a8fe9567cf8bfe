//! Checking one DPoP proof (RFC 9449 section 4.3) against the request and the access
//! token. Every failure is the same `invalid_dpop_proof` to the client; only a missing
//! or stale server nonce is told apart (`use_dpop_nonce`), as section 9 requires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny};
use serde_json::Value;

use super::nonce::NonceKey;
use super::{DpopMode, UrlSource, htu, jwk_thumbprint};
use crate::algorithm::{Algorithm, KeyFamily};
use crate::error::ErrorKind;
use crate::jwks::VerificationKey;
use crate::jws::{b64, json_object};
use crate::log::LogKid;
use crate::state::{StateKey, record_life};
use crate::text::Text;
use crate::tracking::ProofCheck;

/// A proof refused at `check`, logged at DEBUG with the check's name: every refusal is
/// the same `invalid_dpop_proof` to the client, so the log is where a developer tells
/// a replay from a wrong host.
fn refused(check: &'static str) -> ErrorKind {
    tracing::debug!(check, "DPoP proof refused");
    ErrorKind::InvalidDpopProof
}

/// The longest proof read, in bytes.
const MAX_PROOF_LEN: usize = 8 * 1024;

/// JWK members that only a private key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The compiled DPoP settings.
#[derive(Debug)]
pub(crate) struct ProofRules {
    pub(crate) mode: DpopMode,
    pub(crate) algorithms: Vec<Algorithm>,
    /// The algorithms, space-separated, for the `algs` challenge parameter.
    pub(crate) algs: Arc<str>,
    pub(crate) window: f64,
    pub(crate) leeway: f64,
    pub(crate) url: UrlSource,
    pub(crate) nonce: Option<NonceKey>,
    /// The most live proofs one client key may have in the proof store.
    pub(crate) per_key_limit: usize,
    /// Proof keys parsed before, by RFC 7638 thumbprint (which covers every member
    /// that defines the public key), so a client's key is parsed once, not per request.
    pub(crate) keys: KeyCache,
}

/// Parsed proof keys, bounded: when full it starts over, since a miss only costs one
/// parse.
#[derive(Default)]
pub(crate) struct KeyCache(Mutex<HashMap<String, Arc<VerificationKey>>>);

/// Names the cache only: its content is what clients presented, and changes with every
/// request.
impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

const MAX_CACHED_KEYS: usize = 4096;

impl KeyCache {
    /// The key the thumbprint names, parsed from the members the thumbprint covers
    /// only: a proof cannot attach `alg`, `use` or `key_ops` to a cached key (and so lock
    /// another client's key to an algorithm it does not use).
    fn get_or_parse(&self, thumbprint: &str, jwk: &Value) -> Option<Arc<VerificationKey>> {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = lock().get(thumbprint) {
            return Some(Arc::clone(key));
        }
        let members: &[&str] = match jwk.get("kty")?.as_str()? {
            "RSA" => &["kty", "n", "e"],
            "EC" => &["kty", "crv", "x", "y"],
            "OKP" => &["kty", "crv", "x"],
            _ => return None,
        };
        let bare: serde_json::Map<String, Value> = members
            .iter()
            .filter_map(|m| Some(((*m).to_owned(), jwk.get(*m)?.clone())))
            .collect();
        let key = Arc::new(crate::jwks::parse::jwk(&Value::Object(bare)).ok()?);
        let mut keys = lock();
        if keys.len() >= MAX_CACHED_KEYS {
            keys.clear();
        }
        keys.insert(thumbprint.to_owned(), Arc::clone(&key));
        Some(key)
    }
}

/// A proof that passed every check but replay: what to record, and for how long.
pub(crate) type Accepted = ProofCheck;

#[derive(Deserialize)]
struct ProofHeader<'a> {
    #[serde(borrow)]
    typ: Option<Text<'a>>,
    #[serde(borrow)]
    alg: Text<'a>,
    jwk: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Deserialize)]
struct ProofClaims<'a> {
    #[serde(borrow)]
    jti: Text<'a>,
    #[serde(borrow)]
    htm: Text<'a>,
    #[serde(borrow)]
    htu: Text<'a>,
    #[serde(deserialize_with = "crate::claims::numeric")]
    iat: f64,
    #[serde(borrow, default)]
    ath: Option<Text<'a>>,
    #[serde(borrow, default)]
    nonce: Option<Text<'a>>,
}

/// What the request presents, for one proof check.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    /// The request's public URL (absolute, not necessarily normalised).
    pub(crate) htu: &'a str,
    /// The access token text.
    pub(crate) token: &'a str,
    /// The token's `cnf.jkt`.
    pub(crate) jkt: &'a str,
    /// Unix seconds.
    pub(crate) now: f64,
}

/// A proof whose structure, signature, `htm`, `htu` and `iat` hold.
struct Opened {
    thumbprint: String,
    jti: String,
    iat: f64,
    ath: Option<String>,
    nonce: Option<String>,
}

impl ProofRules {
    /// Rules for a token endpoint's proofs (the test kit's `MockIssuer`): every
    /// asymmetric algorithm, a five-minute window, no nonces.
    #[cfg(feature = "testing")]
    pub(crate) fn for_token_endpoint() -> Self {
        Self {
            mode: DpopMode::Allowed,
            algorithms: Algorithm::ALL
                .iter()
                .copied()
                .filter(|a| a.family() != KeyFamily::Hmac)
                .collect(),
            algs: Arc::from(""),
            window: 300.0,
            leeway: 60.0,
            url: UrlSource::Unset,
            nonce: None,
            per_key_limit: usize::MAX,
            keys: KeyCache::default(),
        }
    }

    /// The thumbprint of the key of a proof sent to a token endpoint (no access token
    /// yet, so no `ath`).
    #[cfg(feature = "testing")]
    pub(crate) fn token_request_key(
        &self,
        proof: &str,
        htu: &str,
        now: f64,
    ) -> Result<String, ErrorKind> {
        self.open(proof, "POST", htu, now).map(|o| o.thumbprint)
    }

    /// Checks `proof`; `Ok` with the replay key when all but replay holds.
    pub(crate) fn check(&self, proof: &str, request: &Request<'_>) -> Result<Accepted, ErrorKind> {
        const BAD: ErrorKind = ErrorKind::InvalidDpopProof;
        let opened = self.open(proof, request.method, request.htu, request.now)?;
        if let Some(nonces) = &self.nonce {
            let now_ms = (request.now * 1000.0).max(0.0) as u64;
            let fresh = opened
                .nonce
                .as_ref()
                .is_some_and(|n| nonces.accepts(n, now_ms));
            if !fresh {
                tracing::debug!(
                    check = "nonce",
                    present = opened.nonce.is_some(),
                    "DPoP proof without a live server nonce: a fresh one is sent"
                );
                return Err(ErrorKind::UseDpopNonce);
            }
        }
        let ath = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, request.token.as_bytes()));
        if opened.ath.as_deref() != Some(ath.as_str()) {
            return Err(refused("ath"));
        }
        if opened.thumbprint != request.jkt {
            tracing::debug!(
                check = "jkt",
                "DPoP proof refused: its key is not the one the token's cnf.jkt names"
            );
            return Err(BAD);
        }
        // Replicas accept the proof until `iat + window + leeway` by their own clocks;
        // the store counts the record's life by this one's: one more leeway covers a
        // replica whose clock runs behind.
        let ttl = record_life(opened.iat + self.window + 2.0 * self.leeway - request.now);
        Ok(Accepted {
            client: StateKey::proof_key(&opened.thumbprint),
            proof: StateKey::proof(&opened.thumbprint, &opened.jti),
            ttl,
            limit: self.per_key_limit,
            nonces: self.nonce.is_some(),
        })
    }

    /// The checks that need neither the access token nor the store.
    fn open(&self, proof: &str, method: &str, htu: &str, now: f64) -> Result<Opened, ErrorKind> {
        const BAD: ErrorKind = ErrorKind::InvalidDpopProof;
        if proof.len() > MAX_PROOF_LEN {
            return Err(refused("length"));
        }
        let mut parts = proof.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused("structure"));
        };
        let header_json = b64(header_b64).map_err(|_| refused("structure"))?;
        let header: ProofHeader<'_> =
            json_object(&header_json).map_err(|_| refused("structure"))?;
        let typ_ok = header
            .typ
            .as_ref()
            .is_some_and(|t| t.0.eq_ignore_ascii_case("dpop+jwt"));
        if !typ_ok {
            return Err(refused("typ"));
        }
        if header.crit {
            return Err(refused("crit"));
        }
        let alg = Algorithm::from_header(&header.alg.0).ok_or_else(|| refused("alg"))?;
        if alg.family() == KeyFamily::Hmac || !self.algorithms.contains(&alg) {
            return Err(refused("alg"));
        }
        let jwk = header
            .jwk
            .as_ref()
            .filter(|j| j.is_object())
            .ok_or_else(|| refused("jwk"))?;
        if PRIVATE_MEMBERS.iter().any(|m| jwk.get(m).is_some()) {
            return Err(refused("jwk"));
        }
        let thumbprint = jwk_thumbprint(jwk).ok_or_else(|| refused("jwk"))?;
        let key = self
            .keys
            .get_or_parse(&thumbprint, jwk)
            .ok_or_else(|| refused("jwk"))?;
        let signature = b64(signature_b64).map_err(|_| refused("structure"))?;
        let signing_input = &proof.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        if !key.supports(alg) || !key.verify(alg, signing_input, &signature) {
            return Err(refused("signature"));
        }
        let payload = b64(payload_b64).map_err(|_| refused("structure"))?;
        let claims: ProofClaims<'_> = json_object(&payload).map_err(|_| refused("claims"))?;
        if *claims.htm.0 != *method {
            tracing::debug!(check = "htm", expected = method, received = ?LogKid(&claims.htm.0), "DPoP proof refused");
            return Err(BAD);
        }
        if !htu::matches(&claims.htu.0, htu) {
            tracing::debug!(check = "htu", expected = htu, received = ?LogKid(&claims.htu.0), "DPoP proof refused");
            return Err(BAD);
        }
        if claims.iat > now + self.leeway || claims.iat < now - self.window - self.leeway {
            tracing::debug!(
                check = "iat",
                seconds_from_now = claims.iat - now,
                window = self.window,
                leeway = self.leeway,
                "DPoP proof refused: iat outside the window"
            );
            return Err(BAD);
        }
        Ok(Opened {
            thumbprint,
            jti: claims.jti.0.into_owned(),
            iat: claims.iat,
            ath: claims.ath.map(|a| a.0.into_owned()),
            nonce: claims.nonce.map(|n| n.0.into_owned()),
        })
    }
}
