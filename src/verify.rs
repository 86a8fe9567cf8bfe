//! The [`Verifier`]: header checks, key selection, signature, claim checks.
//!
//! Order matters for safety: the header is judged (algorithm allow-list, `crit`, `typ`)
//! and the key chosen before the signature is checked, and the payload is parsed only
//! once the signature covers it, so attacker-controlled JSON beyond the small header is
//! never read from an unauthenticated token.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::algorithm::Algorithm;
use crate::cache::TokenCache;
use crate::config::{JwtAuthConfig, Settings, TypPolicy};
use crate::error::{AuthError, ErrorKind};
use crate::issuer::{Issuer, issuer_for};
use crate::jwks::KeySet;
use crate::jws::{Header, b64, header_kid, json_object};
use crate::payload::{self, Registered};
use crate::permission::{self, Permissions};
use crate::time::unix_seconds;

/// A verified token: its claims and what it may do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified<C> {
    /// The claims, deserialized into the claims type.
    pub claims: C,
    /// The permissions from the configured permission claims.
    pub permissions: Permissions,
    /// `exp`, `nbf`, `iat`, for re-checking a cached entry.
    pub(crate) times: (f64, Option<f64>, Option<f64>),
    /// The payload's size, for the cache's byte bound.
    pub(crate) payload_len: usize,
}

/// Verifies tokens against a [`JwtAuthConfig`], outside of any tower stack.
///
/// The layer uses the same code; this type is for places that are not a tower service
/// (a WebSocket handshake, a message consumer, a benchmark).
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
    /// breaks, or [`ErrorKind::KeysUnavailable`] when the key store has never loaded.
    ///
    /// This call never waits: with remote keys it uses the key set loaded so far, so it
    /// answers [`ErrorKind::KeysUnavailable`] before the first load and
    /// [`ErrorKind::UnknownKey`] for a `kid` published since the last refresh. Use
    /// [`verify_async`](Self::verify_async) to wait as the layer does.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, AuthError> {
        self.verify_token(token).map(|verified| verified.claims)
    }

    /// Verifies `token` and returns its claims and [`Permissions`]; see
    /// [`verify`](Self::verify).
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub fn verify_token<C: DeserializeOwned>(&self, token: &str) -> Result<Verified<C>, AuthError> {
        let issuer = self.issuer_for(token)?;
        let keys = issuer.store.current().ok_or(ErrorKind::KeysUnavailable)?;
        self.verify_with(issuer, &keys, token)
            .map_err(AuthError::new)
    }

    /// Verifies `token` as the layer does: waiting (bounded by the fetch timeout) for the
    /// first key load, and for one refetch when the `kid` is unknown.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify).
    pub async fn verify_async<C: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<C>, AuthError> {
        let issuer = self.issuer_for(token)?;
        let store = &issuer.store;
        let keys = match store.current() {
            Some(keys) => keys,
            None => store
                .wait_for_keys()
                .await
                .ok_or(ErrorKind::KeysUnavailable)?,
        };
        match self.verify_with(issuer, &keys, token) {
            Err(ErrorKind::UnknownKey) => {
                let kid = header_kid(token).ok_or(ErrorKind::UnknownKey)?;
                let keys = store
                    .refetch_for_kid(&kid)
                    .await
                    .ok_or(ErrorKind::UnknownKey)?;
                self.verify_with(issuer, &keys, token)
                    .map_err(AuthError::new)
            }
            other => other.map_err(AuthError::new),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.config.settings
    }

    /// The issuer whose keys verify `token`: the only one, or the one its unverified
    /// `iss` names. The length limit is checked first, so an oversized token is never
    /// decoded, not even to find its issuer.
    pub(crate) fn issuer_for(&self, token: &str) -> Result<&Arc<Issuer>, ErrorKind> {
        let s = self.settings();
        if token.len() > s.max_token_len {
            return Err(ErrorKind::TokenTooLong);
        }
        issuer_for(&s.issuers, token)
    }

    /// Verifies `token` with a given key set of `issuer`.
    pub(crate) fn verify_with<C: DeserializeOwned>(
        &self,
        issuer: &Issuer,
        keys: &KeySet,
        token: &str,
    ) -> Result<Verified<C>, ErrorKind> {
        let s = self.settings();
        if token.len() > s.max_token_len {
            return Err(ErrorKind::TokenTooLong);
        }
        let (header_b64, rest) = token.split_once('.').ok_or(ErrorKind::Malformed)?;
        let (payload_b64, signature_b64) = rest.split_once('.').ok_or(ErrorKind::Malformed)?;
        if signature_b64.contains('.') {
            // Five segments is a JWE; encrypted tokens are not accepted.
            return Err(ErrorKind::Malformed);
        }

        let header_json = b64(header_b64)?;
        // Any header the parser refuses, a duplicate member included, is malformed.
        let header: Header<'_> = json_object(&header_json).map_err(|_| ErrorKind::Malformed)?;
        let alg = Algorithm::from_header(&header.alg.0).ok_or(ErrorKind::UnsupportedAlgorithm)?;
        if !issuer.algorithms.contains(&alg) {
            return Err(ErrorKind::AlgorithmNotAllowed);
        }
        if header.crit {
            return Err(ErrorKind::CriticalHeader);
        }
        check_typ(s.typ, header.typ.as_ref().map(|t| t.0.as_ref()))?;

        let key = keys.select(header.kid.as_ref().map(|k| k.0.as_ref()), alg)?;
        let signature = b64(signature_b64)?;
        let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(alg, signing_input, &signature) {
            return Err(ErrorKind::InvalidSignature);
        }

        let payload = b64(payload_b64)?;
        let (claims, registered) = payload::parse::<C>(
            &payload,
            !s.required_claims.is_empty(),
            &s.permission_capture,
        )?;
        self.check_claims(issuer, &registered)?;
        if let Some(template) = key.issuer() {
            // Entra publishes, per key, the issuer its tokens must carry; for the common
            // endpoint it is a template completed with the token's tenant id.
            let tid = registered.tid.as_ref().map_or("", |t| t.0.as_ref());
            let expected = template.replace("{tenantid}", tid);
            if registered
                .iss
                .as_ref()
                .is_none_or(|iss| *iss.0 != *expected)
            {
                return Err(ErrorKind::InvalidIssuer);
            }
        }
        if let Some(names) = &registered.names {
            for required in &s.required_claims {
                if !names.iter().any(|name| **name == **required) {
                    return Err(ErrorKind::MissingClaim);
                }
            }
        }
        let permissions = permission::collect(
            &s.permission_paths,
            &s.permission_capture,
            &registered.captured,
        );
        let times = (
            registered.exp.unwrap_or_default(),
            registered.nbf,
            registered.iat,
        );
        Ok(Verified {
            claims,
            permissions,
            times,
            payload_len: payload.len(),
        })
    }

    /// `iss` must be the issuer whose keys verified the signature, and `aud` one of that
    /// issuer's audiences.
    fn check_claims(&self, issuer: &Issuer, claims: &Registered<'_>) -> Result<(), ErrorKind> {
        let s = self.settings();
        let iss = claims.iss.as_ref().ok_or(ErrorKind::MissingClaim)?;
        if !issuer.matcher.matches(&iss.0) {
            return Err(ErrorKind::InvalidIssuer);
        }
        if !issuer.audiences.is_empty() {
            let aud = claims.aud.as_ref().ok_or(ErrorKind::MissingClaim)?;
            if !issuer.accepts_audience(aud.iter().map(|a| a.0.as_ref())) {
                return Err(ErrorKind::InvalidAudience);
            }
        }
        let exp = claims.exp.ok_or(ErrorKind::MissingClaim)?;
        for date in [Some(exp), claims.nbf, claims.iat].into_iter().flatten() {
            if date < 0.0 {
                return Err(ErrorKind::InvalidClaim);
            }
        }
        self.check_times((exp, claims.nbf, claims.iat), unix_seconds(s.clock.now()))
    }

    /// The time-dependent checks, done at verification and again on every cache hit.
    fn check_times(
        &self,
        times: (f64, Option<f64>, Option<f64>),
        now: f64,
    ) -> Result<(), ErrorKind> {
        let leeway = self.settings().leeway;
        let (exp, nbf, iat) = times;
        if now >= exp + leeway {
            return Err(ErrorKind::Expired);
        }
        if nbf.is_some_and(|nbf| now + leeway < nbf) {
            return Err(ErrorKind::NotYetValid);
        }
        if iat.is_some_and(|iat| iat > now + leeway) {
            return Err(ErrorKind::IssuedInFuture);
        }
        Ok(())
    }

    /// [`verify_with`](Self::verify_with) through the verified-token cache, when one is
    /// configured.
    pub(crate) fn verify_cached<C>(
        &self,
        issuer: &Issuer,
        keys: &KeySet,
        token: &str,
    ) -> Result<Verified<C>, ErrorKind>
    where
        C: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let s = self.settings();
        let Some(cache) = &s.cache else {
            return self.verify_with(issuer, keys, token);
        };
        if token.len() > s.max_token_len {
            return Err(ErrorKind::TokenTooLong);
        }
        let digest = TokenCache::digest(token);
        let now = unix_seconds(s.clock.now());
        if let Some(entry) = cache.get(&digest, keys.generation(), now)
            && let Some(claims) = entry.claims.downcast_ref::<C>()
        {
            let times = (entry.exp, entry.nbf, entry.iat);
            self.check_times(times, now)?;
            return Ok(Verified {
                claims: claims.clone(),
                permissions: entry.permissions,
                times,
                payload_len: 0,
            });
        }
        let verified = self.verify_with::<C>(issuer, keys, token)?;
        cache.insert(
            digest,
            keys.generation(),
            Arc::new(verified.claims.clone()),
            verified.permissions.clone(),
            verified.times,
            now,
            token.len() + verified.payload_len,
        );
        Ok(verified)
    }
}

fn check_typ(policy: TypPolicy, typ: Option<&str>) -> Result<(), ErrorKind> {
    let Some(typ) = typ else {
        return match policy {
            TypPolicy::Lenient => Ok(()),
            TypPolicy::AccessToken => Err(ErrorKind::InvalidType),
        };
    };
    // RFC 7515 section 4.1.9: the `application/` prefix may be omitted, and media types
    // compare case-insensitively.
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    let ok = bare.eq_ignore_ascii_case("at+jwt")
        || (policy == TypPolicy::Lenient && bare.eq_ignore_ascii_case("jwt"));
    if ok {
        Ok(())
    } else {
        Err(ErrorKind::InvalidType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_policy() {
        let lenient = TypPolicy::Lenient;
        assert!(check_typ(lenient, None).is_ok());
        assert!(check_typ(lenient, Some("JWT")).is_ok());
        assert!(check_typ(lenient, Some("jwt")).is_ok());
        assert!(check_typ(lenient, Some("application/at+JWT")).is_ok());
        assert!(check_typ(lenient, Some("dpop+jwt")).is_err());
        assert!(check_typ(lenient, Some("secevent+jwt")).is_err());
        let strict = TypPolicy::AccessToken;
        assert!(check_typ(strict, None).is_err());
        assert!(check_typ(strict, Some("JWT")).is_err());
        assert!(check_typ(strict, Some("at+jwt")).is_ok());
    }
}
