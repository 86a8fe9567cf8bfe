//! RFC 6750 answers: the [`Rejection`] the layer produces and the [`ErrorResponder`]
//! that turns it into a response. The gRPC form of the same rejection is in `grpc`.

pub(crate) mod grpc;

pub use crate::body::ResponseBody;

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::error::{AuthError, ErrorKind};

/// A refused request: the error plus what the challenge needs.
///
/// Responders read it to build the response; [`Rejection::to_response`] gives the
/// standard one (status, `WWW-Authenticate`, `Retry-After`, empty body).
#[derive(Debug, Clone)]
pub struct Rejection {
    error: AuthError,
    challenge: ChallengeParams,
    retry_after: Option<Duration>,
    /// For 403: the permissions the request needs, and whether one of them is enough.
    scope: Option<(String, bool)>,
    /// For a step-up 401 (RFC 9470): the acceptable `acr` values, space-separated, and
    /// the longest acceptable age of the authentication in seconds.
    step_up: Option<(Option<String>, Option<u64>)>,
    /// A fresh server nonce for `use_dpop_nonce` (the `DPoP-Nonce` header).
    dpop_nonce: Option<String>,
    /// Whether the refused request used the DPoP scheme: its error then goes in the DPoP
    /// challenge (RFC 9449 section 7.1).
    dpop_scheme: bool,
}

/// The configured parameters every challenge carries: `realm`, and `resource_metadata`
/// (RFC 9728 section 5.1) when a resource identifier is configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChallengeParams {
    pub(crate) realm: Option<Arc<str>>,
    pub(crate) resource_metadata: Option<Arc<str>>,
    /// With DPoP allowed or required: the proof algorithms, and every challenge carries
    /// a DPoP challenge after the Bearer one, or alone (RFC 9449 section 7.1).
    pub(crate) dpop_algs: Option<Arc<str>>,
    /// With DPoP required: the DPoP challenge is the only one, since a Bearer token is
    /// always refused, and it carries every parameter (RFC 9449 section 7.1).
    pub(crate) dpop_only: bool,
}

impl Rejection {
    pub(crate) fn new(kind: ErrorKind, challenge: ChallengeParams) -> Self {
        Self {
            error: AuthError::new(kind),
            challenge,
            retry_after: None,
            scope: None,
            step_up: None,
            dpop_nonce: None,
            dpop_scheme: false,
        }
    }

    pub(crate) fn in_dpop_scheme(mut self, dpop_scheme: bool) -> Self {
        self.dpop_scheme = dpop_scheme;
        self
    }

    #[cfg(feature = "dpop")]
    pub(crate) fn with_dpop_nonce(mut self, nonce: String) -> Self {
        self.dpop_nonce = Some(nonce);
        self
    }

    /// The fresh server nonce of a `use_dpop_nonce` refusal, sent as `DPoP-Nonce`.
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.dpop_nonce.as_deref()
    }

    /// A 401 `insufficient_user_authentication` (RFC 9470 section 3) naming what would
    /// do: `acr_values` and/or `max_age`.
    pub(crate) fn step_up(
        challenge: ChallengeParams,
        acr_values: Option<&str>,
        max_age: Option<u64>,
    ) -> Self {
        Self {
            step_up: Some((acr_values.map(str::to_owned), max_age)),
            ..Self::new(ErrorKind::InsufficientUserAuthentication, challenge)
        }
    }

    /// For a step-up refusal, the `acr` values that would be accepted, space-separated
    /// (the `acr_values` parameter of the challenge).
    #[must_use]
    pub fn acr_values(&self) -> Option<&str> {
        self.step_up.as_ref()?.0.as_deref()
    }

    /// For a step-up refusal, the longest acceptable time since the user authenticated,
    /// in seconds (the `max_age` parameter of the challenge).
    #[must_use]
    pub fn max_age(&self) -> Option<u64> {
        self.step_up.as_ref()?.1
    }

    /// A 403 naming the permissions the request needs (`any_of`: one of them is enough).
    pub(crate) fn insufficient<'a>(
        challenge: ChallengeParams,
        needed: impl IntoIterator<Item = &'a str>,
        any_of: bool,
    ) -> Self {
        let scope = needed.into_iter().collect::<Vec<_>>().join(" ");
        Self {
            scope: Some((scope, any_of)),
            ..Self::new(ErrorKind::InsufficientPermission, challenge)
        }
    }

    pub(crate) fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// The error behind the rejection.
    #[must_use]
    pub fn error(&self) -> &AuthError {
        &self.error
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.error.status()
    }

    /// For 403 answers, the permissions the request needs, space-delimited (the `scope`
    /// parameter of the challenge).
    #[must_use]
    pub fn required_scope(&self) -> Option<&str> {
        self.scope.as_ref().map(|(scope, _)| scope.as_str())
    }

    /// The client-safe description of this rejection.
    #[must_use]
    pub fn description(&self) -> &'static str {
        match &self.scope {
            Some((_, true)) => "one of the listed permissions is required",
            _ => self.error.description(),
        }
    }

    /// How long the client should wait before retrying, for 503 answers.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 section 3), or `None` for answers that
    /// are not authentication challenges (503).
    ///
    /// Without a token the challenge has no `error` code:
    /// `Bearer realm="api"`. Otherwise it names the error and a fixed description:
    /// `Bearer realm="api", error="invalid_token", error_description="token expired"`.
    #[must_use]
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        if self.error.status() == http::StatusCode::SERVICE_UNAVAILABLE {
            return None;
        }
        // The error and what would satisfy it (scope, acr_values, max_age).
        let mut error: Vec<(&str, &str)> = Vec::with_capacity(5);
        if let Some(code) = self.error.error_code() {
            error.push(("error", code));
            error.push(("error_description", self.description()));
        }
        if let Some((scope, _)) = &self.scope {
            error.push(("scope", scope));
        }
        let max_age = self.max_age().map(|age| age.to_string());
        if let Some(acr_values) = self.acr_values() {
            error.push(("acr_values", acr_values));
        }
        if let Some(max_age) = &max_age {
            error.push(("max_age", max_age));
        }
        let realm = self.challenge.realm.as_deref().map(|r| ("realm", r));
        let metadata =
            (self.challenge.resource_metadata.as_deref()).map(|url| ("resource_metadata", url));
        let Some(algs) = self.challenge.dpop_algs.as_deref() else {
            return challenge("Bearer", realm, &error, metadata, None);
        };
        // With DPoP required, its challenge is the only one and has every parameter.
        if self.challenge.dpop_only {
            return challenge("DPoP", realm, &error, metadata, Some(algs));
        }
        // Otherwise the error goes in the challenge of the scheme it concerns: DPoP's for
        // an error code of RFC 9449 (the table's) or a request that used the DPoP scheme,
        // Bearer's otherwise.
        let proof_error = matches!(
            self.error.error_code(),
            Some("invalid_dpop_proof" | "use_dpop_nonce")
        );
        let (bearer_error, dpop_error) = if proof_error || self.dpop_scheme {
            (&[][..], &error[..])
        } else {
            (&error[..], &[][..])
        };
        let bearer = challenge("Bearer", realm, bearer_error, metadata, None)?;
        let dpop = challenge("DPoP", None, dpop_error, None, Some(algs))?;
        let both = [bearer.as_bytes(), b", ", dpop.as_bytes()].concat();
        HeaderValue::from_bytes(&both).ok()
    }

    /// The standard response: status, `WWW-Authenticate`, `Retry-After` for 503,
    /// `Cache-Control: no-store`, and an empty body.
    #[must_use]
    pub fn to_response(&self) -> Response<Bytes> {
        let mut response = Response::new(Bytes::new());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if let Some(after) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
        }
        if let Some(nonce) = self
            .dpop_nonce
            .as_deref()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert("dpop-nonce", nonce);
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// One challenge: `scheme`, then the realm, the error's parameters, the resource
/// metadata URL and the DPoP algorithms, those that are present. The realm was checked
/// at build time and the other values are fixed ASCII, so the value is always valid.
fn challenge(
    scheme: &str,
    realm: Option<(&str, &str)>,
    error: &[(&str, &str)],
    metadata: Option<(&str, &str)>,
    algs: Option<&str>,
) -> Option<HeaderValue> {
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(8);
    params.extend(realm);
    params.extend_from_slice(error);
    params.extend(metadata);
    params.extend(algs.map(|algs| ("algs", algs)));
    let mut text = String::from(scheme);
    write_params(&mut text, &params);
    HeaderValue::from_str(&text).ok()
}

/// Appends ` name="value", …` to a challenge.
fn write_params(challenge: &mut String, params: &[(&str, &str)]) {
    for (i, (name, value)) in params.iter().enumerate() {
        let sep = if i == 0 { " " } else { ", " };
        let _ = write!(challenge, "{sep}{name}=\"{}\"", Quoted(value));
    }
}

/// Escapes a value for an HTTP quoted-string (RFC 9110 section 5.6.4).
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c == '"' || c == '\\' {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        Ok(())
    }
}

/// Renders rejections. The default, [`DefaultResponder`], sends the RFC 6750 status and
/// headers with an empty body; [`JsonResponder`] adds a JSON body. Closures
/// `Fn(&Rejection) -> Response<Bytes>` are responders too.
///
/// ```
/// use bytes::Bytes;
/// use http::Response;
/// use tower_jwt_auth::JwtAuthConfig;
/// use tower_jwt_auth::response::Rejection;
///
/// let problem = |rejection: &Rejection| -> Response<Bytes> {
///     let mut response = rejection.to_response();
///     *response.body_mut() = Bytes::from(format!(
///         r#"{{"title":"{}","status":{}}}"#,
///         rejection.error(),
///         rejection.status().as_u16()
///     ));
///     response.headers_mut().insert(
///         http::header::CONTENT_TYPE,
///         http::HeaderValue::from_static("application/problem+json"),
///     );
///     response
/// };
/// let builder = JwtAuthConfig::builder().error_responder(problem);
/// # let _ = builder;
/// ```
pub trait ErrorResponder: Send + Sync + 'static {
    /// Builds the response for a rejection. Keep the `WWW-Authenticate` header of
    /// [`Rejection::to_response`]: RFC 6750 requires it on 401.
    fn respond(&self, rejection: &Rejection) -> Response<Bytes>;
}

impl<F> ErrorResponder for F
where
    F: Fn(&Rejection) -> Response<Bytes> + Send + Sync + 'static,
{
    fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        self(rejection)
    }
}

/// Status and headers only, empty body.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultResponder;

impl ErrorResponder for DefaultResponder {
    fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        rejection.to_response()
    }
}

/// Status and headers plus a JSON body in the shape of RFC 6749 section 5.2:
/// `{"error":"invalid_token","error_description":"token expired"}`. A missing token
/// gives `{"error":"unauthorized",...}` and a 503 `{"error":"temporarily_unavailable",...}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonResponder;

impl ErrorResponder for JsonResponder {
    fn respond(&self, rejection: &Rejection) -> Response<Bytes> {
        let mut response = rejection.to_response();
        let code = rejection.error().error_code().unwrap_or(
            if rejection.status() == StatusCode::SERVICE_UNAVAILABLE {
                "temporarily_unavailable"
            } else {
                "unauthorized"
            },
        );
        let mut body = serde_json::json!({
            "error": code,
            "error_description": rejection.description(),
        });
        if let Some(scope) = rejection.required_scope() {
            body["scope"] = serde_json::Value::from(scope);
        }
        *response.body_mut() = Bytes::from(body.to_string());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// A guard or extractor on a route no `JwtAuthLayer` covers: a wiring mistake.
pub(crate) fn missing_layer() -> http::Response<bytes::Bytes> {
    tracing::error!("permission guard on a route that no JwtAuthLayer covers");
    let mut response = http::Response::new(bytes::Bytes::from_static(
        b"tower-jwt-auth: no JwtAuthLayer in front of this route (the permission guard needs one)",
    ));
    *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realm(realm: &str) -> ChallengeParams {
        ChallengeParams {
            realm: Some(realm.into()),
            resource_metadata: None,
            dpop_algs: None,
            dpop_only: false,
        }
    }

    #[test]
    fn resource_metadata_is_in_401_and_403_challenges() {
        let params = ChallengeParams {
            realm: None,
            resource_metadata: Some(
                "https://api.example.com/.well-known/oauth-protected-resource".into(),
            ),
            dpop_algs: None,
            dpop_only: false,
        };
        let r = Rejection::new(ErrorKind::MissingToken, params.clone());
        assert_eq!(
            r.www_authenticate().expect("challenge"),
            "Bearer resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
        );
        let r = Rejection::insufficient(params, ["write"], false);
        assert!(r.www_authenticate().expect("challenge").to_str().expect("ascii").ends_with(
            "scope=\"write\", resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
        ));
    }

    #[test]
    fn challenge_without_token_has_no_error_code() {
        let r = Rejection::new(ErrorKind::MissingToken, realm("api"));
        assert_eq!(
            r.www_authenticate().expect("challenge"),
            "Bearer realm=\"api\""
        );
        let r = Rejection::new(ErrorKind::MissingToken, ChallengeParams::default());
        assert_eq!(r.www_authenticate().expect("challenge"), "Bearer");
    }

    #[test]
    fn challenge_quotes_and_escapes() {
        let r = Rejection::new(ErrorKind::Expired, realm("a \"q\" \\"));
        assert_eq!(
            r.www_authenticate().expect("challenge"),
            r#"Bearer realm="a \"q\" \\", error="invalid_token", error_description="token expired""#
        );
    }

    #[test]
    fn unavailable_has_retry_after_and_no_challenge() {
        let r = Rejection::new(ErrorKind::KeysUnavailable, ChallengeParams::default())
            .with_retry_after(Duration::from_millis(300));
        let resp = r.to_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[RETRY_AFTER], "1");
        assert!(resp.headers().get(WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn insufficient_scope_lists_the_permissions() {
        let r = Rejection::insufficient(ChallengeParams::default(), ["read", "audit"], true);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            r.www_authenticate().expect("challenge"),
            "Bearer error=\"insufficient_scope\", error_description=\"one of the listed permissions is required\", scope=\"read audit\""
        );
    }

    #[test]
    fn json_responder_body() {
        let r = Rejection::new(ErrorKind::InvalidSignature, ChallengeParams::default());
        let resp = JsonResponder.respond(&r);
        let v: serde_json::Value = serde_json::from_slice(resp.body()).expect("json");
        assert_eq!(v["error"], "invalid_token");
        assert_eq!(v["error_description"], "invalid signature");
    }
}
