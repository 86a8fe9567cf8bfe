//! Stateless server nonces (RFC 9449 section 9): the issue time sealed with AES-256-GCM
//! under a key derived from the configured secret. Any replica with the same secret
//! checks a nonce without shared state; a nonce older than its lifetime, or sealed under
//! another secret, is refused.

use std::time::Duration;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The key that seals and opens nonces, and how long one lives.
pub(crate) struct NonceKey {
    key: LessSafeKey,
    lifetime: Duration,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceKey")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl NonceKey {
    /// A key derived from `secret` (SHA-256 with a domain tag); `None` when the secret
    /// is shorter than 32 bytes.
    pub(crate) fn new(secret: &[u8], lifetime: Duration) -> Option<Self> {
        if secret.len() < 32 {
            return None;
        }
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"tower-jwt-auth/dpop-nonce");
        ctx.update(secret);
        let derived = ctx.finish();
        let key = UnboundKey::new(&AES_256_GCM, derived.as_ref()).ok()?;
        Some(Self {
            key: LessSafeKey::new(key),
            lifetime,
        })
    }

    /// A fresh nonce for `now` (Unix milliseconds).
    pub(crate) fn issue(&self, now_ms: u64) -> Option<String> {
        let mut iv = [0u8; NONCE_LEN];
        rand::fill(&mut iv).ok()?;
        let mut sealed = now_ms.to_be_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut sealed)
            .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// Whether `nonce` was issued by this key at most `lifetime` before `now_ms`, and not
    /// in the future (beyond one second of skew between replicas).
    pub(crate) fn accepts(&self, nonce: &str, now_ms: u64) -> bool {
        if nonce.len() > 128 {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if bytes.len() < NONCE_LEN {
            return false;
        }
        let (iv, sealed) = bytes.split_at(NONCE_LEN);
        let Ok(iv) = Nonce::try_assume_unique_for_key(iv) else {
            return false;
        };
        let mut sealed = sealed.to_vec();
        let Ok(plain) = self.key.open_in_place(iv, Aad::empty(), &mut sealed) else {
            return false;
        };
        let Ok(issued) = <[u8; 8]>::try_from(&*plain) else {
            return false;
        };
        let issued = u64::from_be_bytes(issued);
        let lifetime = u64::try_from(self.lifetime.as_millis()).unwrap_or(u64::MAX);
        issued <= now_ms.saturating_add(1_000) && now_ms.saturating_sub(issued) <= lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_lives_its_lifetime_under_its_own_secret_only() {
        let key = NonceKey::new(&[7u8; 32], Duration::from_secs(60)).expect("key");
        let nonce = key.issue(1_000_000).expect("nonce");
        assert!(key.accepts(&nonce, 1_000_000));
        assert!(key.accepts(&nonce, 1_060_000));
        assert!(!key.accepts(&nonce, 1_060_001));
        assert!(!key.accepts(&nonce, 990_000), "issued in the future");
        let other = NonceKey::new(&[8u8; 32], Duration::from_secs(60)).expect("key");
        assert!(!other.accepts(&nonce, 1_000_000));
        assert!(!key.accepts("not-a-nonce", 1_000_000));
        assert!(NonceKey::new(&[1u8; 31], Duration::from_secs(1)).is_none());
    }
}
