//! [`TokenBuilder`]: signs any claims with any algorithm, including the broken tokens
//! that every auth path must refuse.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::keys::TestKey;
use crate::algorithm::Algorithm;
use crate::time::unix_seconds;

/// Mints a signed JWT for tests.
///
/// Defaults: `alg` from the key, `typ: JWT`, the key's `kid`, `sub: test-user`,
/// `iat` now, `exp` in one hour, a random `jti`. Issuer and audience are unset until
/// given. Presets make the tokens a resource server must refuse.
///
/// ```
/// use tower_jwt_auth::testing::{TestKey, TokenBuilder};
///
/// let key = TestKey::ec_p256();
/// let token = TokenBuilder::new(&key)
///     .issuer("https://idp.example.com/")
///     .audience("api")
///     .permissions(["read", "write"])
///     .sign();
/// assert_eq!(token.split('.').count(), 3);
///
/// let expired = TokenBuilder::new(&key).issuer("https://idp.example.com/").expired().sign();
/// # let _ = expired;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenBuilder {
    key: TestKey,
    alg: Algorithm,
    header_alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    now: Option<SystemTime>,
    exp_in: Option<i64>,
    nbf_in: Option<i64>,
    iat_in: Option<i64>,
    tampered: bool,
    alg_none: bool,
}

impl TokenBuilder {
    /// A builder that signs with `key`.
    pub fn new(key: &TestKey) -> Self {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("test-user"));
        let mut jti = [0u8; 12];
        // A failing random source leaves a zero jti; the token is still usable.
        let _ = aws_lc_rs::rand::fill(&mut jti);
        claims.insert("jti".into(), Value::from(URL_SAFE_NO_PAD.encode(jti)));
        Self {
            key: key.clone(),
            alg: key.algorithm(),
            header_alg: None,
            kid: Some(key.kid().to_owned()),
            typ: Some("JWT".into()),
            header: Map::new(),
            claims,
            now: None,
            exp_in: Some(3600),
            nbf_in: None,
            iat_in: Some(0),
            tampered: false,
            alg_none: false,
        }
    }

    /// Binds the token to a DPoP key (`cnf.jkt`, the key's RFC 7638 thumbprint).
    pub fn dpop_bound(self, key: &TestKey) -> Self {
        let jkt = key.thumbprint().unwrap_or_default();
        self.claim("cnf", serde_json::json!({ "jkt": jkt }))
    }

    /// Binds the token to a client certificate (`cnf["x5t#S256"]`, RFC 8705).
    pub fn certificate_bound(self, thumbprint: &str) -> Self {
        self.claim("cnf", serde_json::json!({ "x5t#S256": thumbprint }))
    }

    /// Sets `iss`.
    pub fn issuer(self, iss: impl Into<String>) -> Self {
        self.claim("iss", iss.into())
    }

    /// Sets `aud` to one audience.
    pub fn audience(self, aud: impl Into<String>) -> Self {
        self.claim("aud", aud.into())
    }

    /// Sets `aud` to an array.
    pub fn audiences<I, S>(self, auds: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<Value> = auds.into_iter().map(|a| Value::from(a.into())).collect();
        self.claim("aud", list)
    }

    /// Sets `sub`.
    pub fn subject(self, sub: impl Into<String>) -> Self {
        self.claim("sub", sub.into())
    }

    /// Sets `permissions` (an array, as Auth0 sends it).
    pub fn permissions<I, S>(self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<Value> = permissions
            .into_iter()
            .map(|p| Value::from(p.into()))
            .collect();
        self.claim("permissions", list)
    }

    /// Sets `scope` (space-delimited).
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.claim("scope", scope.into())
    }

    /// Sets any claim; this also overrides `exp`, `nbf` and `iat` with a raw value, which
    /// is how tests send a string or a fraction.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Removes a claim, `exp` and `iat` included.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        match name {
            "exp" => self.exp_in = None,
            "nbf" => self.nbf_in = None,
            "iat" => self.iat_in = None,
            _ => {}
        }
        self
    }

    /// The time the relative claims count from; the system clock by default. Set it to
    /// the time of a [`ManualClock`](crate::time::ManualClock).
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// `exp` this long after now.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.exp_in = Some(secs(ttl));
        self
    }

    /// `exp` this many seconds from now; negative for the past.
    pub fn expires_in_secs(mut self, secs: i64) -> Self {
        self.exp_in = Some(secs);
        self
    }

    /// `nbf` this many seconds from now; negative for the past.
    pub fn not_before_in_secs(mut self, secs: i64) -> Self {
        self.nbf_in = Some(secs);
        self
    }

    /// `iat` this many seconds from now; negative for the past.
    pub fn issued_at_in_secs(mut self, secs: i64) -> Self {
        self.iat_in = Some(secs);
        self
    }

    /// Signs with another algorithm the key supports (RS384 or PS256 with an RSA key).
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Writes this `alg` into the header while signing with the key's own algorithm:
    /// the header lies.
    pub fn header_alg(mut self, alg: impl Into<String>) -> Self {
        self.header_alg = Some(alg.into());
        self
    }

    /// Sets the `kid` header.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Leaves out the `kid` header.
    pub fn no_kid(mut self) -> Self {
        self.kid = None;
        self
    }

    /// Sets the `typ` header.
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Leaves out the `typ` header.
    pub fn no_typ(mut self) -> Self {
        self.typ = None;
        self
    }

    /// Adds any header member (`crit`, `jku`, `jwk`, `x5u`, ...).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.header.insert(name.into(), value.into());
        self
    }

    /// Expired an hour ago, issued two hours ago: outside any reasonable leeway.
    pub fn expired(mut self) -> Self {
        self.exp_in = Some(-3600);
        self.iat_in = Some(-7200);
        self
    }

    /// Not valid before an hour from now.
    pub fn not_yet_valid(mut self) -> Self {
        self.nbf_in = Some(3600);
        self
    }

    /// Issued by `https://wrong-issuer.example/`.
    pub fn wrong_issuer(self) -> Self {
        self.issuer("https://wrong-issuer.example/")
    }

    /// Meant for `https://wrong-audience.example`.
    pub fn wrong_audience(self) -> Self {
        self.audience("https://wrong-audience.example")
    }

    /// Names a `kid` no issuer publishes.
    pub fn unknown_kid(self) -> Self {
        let mut random = [0u8; 6];
        let _ = aws_lc_rs::rand::fill(&mut random);
        let kid = format!("unknown-{}", URL_SAFE_NO_PAD.encode(random));
        self.kid(kid)
    }

    /// Changes a claim after signing, so the signature no longer covers the payload.
    pub fn tampered(mut self) -> Self {
        self.tampered = true;
        self
    }

    /// `alg: none` and an empty signature.
    pub fn alg_none(mut self) -> Self {
        self.alg_none = true;
        self
    }

    /// Signed by another key of the same type and `kid`: what an attacker can do.
    pub fn signed_by_foreign_key(mut self) -> Self {
        self.key = self.key.foreign();
        self
    }

    /// The claims as they will be signed.
    #[must_use]
    pub fn claims(&self) -> Map<String, Value> {
        let now = unix_seconds(self.now.unwrap_or_else(SystemTime::now)).floor();
        let mut claims = self.claims.clone();
        for (name, offset) in [
            ("exp", self.exp_in),
            ("nbf", self.nbf_in),
            ("iat", self.iat_in),
        ] {
            if let Some(offset) = offset
                && !claims.contains_key(name)
            {
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                let at = (now + offset as f64) as i64;
                claims.insert(name.into(), Value::from(at));
            }
        }
        claims
    }

    /// Signs the token and returns its compact serialization.
    ///
    /// # Panics
    ///
    /// If the signing algorithm does not fit the key (for example `.alg(ES256)` on an RSA
    /// key).
    #[must_use]
    pub fn sign(&self) -> String {
        let mut header = Map::new();
        let alg = if self.alg_none {
            "none".to_owned()
        } else {
            self.header_alg
                .clone()
                .unwrap_or_else(|| self.alg.as_str().to_owned())
        };
        header.insert("alg".into(), Value::from(alg));
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), Value::from(kid.as_str()));
        }
        if let Some(typ) = &self.typ {
            header.insert("typ".into(), Value::from(typ.as_str()));
        }
        header.extend(self.header.clone());
        let mut claims = self.claims();
        let signing_input = format!(
            "{}.{}",
            encode_json(&Value::Object(header)),
            encode_json(&Value::Object(claims.clone()))
        );
        if self.alg_none {
            return format!("{signing_input}.");
        }
        let signature = URL_SAFE_NO_PAD.encode(self.key.sign(self.alg, signing_input.as_bytes()));
        if self.tampered {
            claims.insert("sub".into(), Value::from("admin"));
            claims.insert("tampered".into(), Value::from(true));
            let header_b64 = signing_input.split('.').next().unwrap_or_default();
            return format!(
                "{header_b64}.{}.{signature}",
                encode_json(&Value::Object(claims))
            );
        }
        format!("{signing_input}.{signature}")
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Base64url (no padding) of a JSON value's compact text.
#[must_use]
pub fn encode_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}
