//! The browser console of `jwt-auth serve`: a page at `/` to mint a token, see it
//! decoded, copy a curl command, and explain any token against the mock issuer, and the
//! page's two JSON calls, `/console/mint` and `/console/explain`. The page
//! (`console.html`) is plain HTML, CSS and a little JavaScript served from the binary:
//! no build step, no external assets, and tokens go only to this local issuer.
//!
//! The mock issuer hands the console every path it does not serve itself
//! (`MockIssuerBuilder::fallback`); paths the console does not serve either get the
//! issuer's `404 Not Found`.

use std::future::Future;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_jwt_auth::jwks::KeySet;
use tower_jwt_auth::testing::{MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::{Algorithm, JwtAuthConfig, Verifier};

use crate::commands::segment;

/// The page; `{ISSUER}`, `{AUDIENCE}` and `{ALGS}` are filled in for each request.
const PAGE: &str = include_str!("console.html");

/// The largest request body the JSON calls read.
const BODY_LIMIT: usize = 64 * 1024;

/// What the mint form sends.
#[derive(Deserialize)]
struct MintForm {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    permissions: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    lifetime: Option<i64>,
    #[serde(default)]
    alg: String,
    #[serde(default)]
    claims: Option<Value>,
    #[serde(default)]
    url: String,
}

/// What the explain box sends.
#[derive(Deserialize)]
struct ExplainForm {
    token: String,
    #[serde(default)]
    audience: String,
}

/// The issuer as the console needs it, taken when a request comes: its URL, default
/// audience, and keys, the signing one first.
struct Issuer {
    url: String,
    audience: String,
    keys: Vec<TestKey>,
}

impl Issuer {
    fn of(issuer: &MockIssuer) -> Self {
        let active = issuer.active_key();
        let others = issuer
            .keys()
            .into_iter()
            .filter(|k| k.kid() != active.kid());
        let keys = std::iter::once(active.clone()).chain(others).collect();
        Self {
            url: issuer.issuer().to_owned(),
            audience: issuer.audience().to_owned(),
            keys,
        }
    }

    /// The audience asked for, or this issuer's default.
    fn audience<'a>(&'a self, asked: &'a str) -> &'a str {
        if asked.is_empty() {
            &self.audience
        } else {
            asked
        }
    }
}

/// The console's answer to a request the mock issuer does not serve itself. The future
/// borrows nothing from `issuer` (`use<>`): it owns what it took from it.
pub(crate) fn answer(
    issuer: &MockIssuer,
    request: Request<Incoming>,
) -> impl Future<Output = Response<Full<Bytes>>> + Send + use<> {
    let served = matches!(
        request.uri().path(),
        "/" | "/console/mint" | "/console/explain"
    );
    let issuer = served.then(|| Issuer::of(issuer));
    async move {
        match issuer {
            Some(issuer) => console(&issuer, request).await,
            None => respond(StatusCode::NOT_FOUND, "text/plain", "not found"),
        }
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The page, or one of its two JSON calls.
async fn console(issuer: &Issuer, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path == "/" {
        return respond(StatusCode::OK, "text/html; charset=utf-8", page(issuer));
    }
    let body = match Limited::new(request.into_body(), BODY_LIMIT)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return respond(
                StatusCode::BAD_REQUEST,
                "application/json",
                r#"{"error":"body too large"}"#,
            );
        }
    };
    let answer = if path == "/console/mint" {
        match serde_json::from_slice(&body) {
            Ok(form) => mint(form, issuer),
            Err(e) => Err(e.to_string()),
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(form) => explain(form, issuer).await,
            Err(e) => Err(e.to_string()),
        }
    };
    match answer {
        Ok(value) => respond(StatusCode::OK, "application/json", value.to_string()),
        Err(error) => respond(
            StatusCode::BAD_REQUEST,
            "application/json",
            json!({ "error": error }).to_string(),
        ),
    }
}

/// The page with this issuer's URL, audience, and one choice per algorithm of its keys.
fn page(issuer: &Issuer) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut algs: Vec<&str> = Vec::new();
    for key in &issuer.keys {
        let alg = key.algorithm().as_str();
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    let options: String = algs
        .iter()
        .map(|a| format!("<option>{a}</option>"))
        .collect();
    PAGE.replace("{ISSUER}", &escape(&issuer.url))
        .replace("{AUDIENCE}", &escape(&issuer.audience))
        .replace("{ALGS}", &options)
}

/// A token from the form, signed by a published key of the asked algorithm.
fn mint(form: MintForm, issuer: &Issuer) -> Result<Value, String> {
    let alg: Algorithm = if form.alg.is_empty() {
        issuer
            .keys
            .first()
            .map_or(Algorithm::RS256, TestKey::algorithm)
    } else {
        form.alg
            .parse()
            .map_err(|_| format!("unknown algorithm {:?}", form.alg))?
    };
    let key = issuer
        .keys
        .iter()
        .find(|k| k.algorithm() == alg)
        .ok_or_else(|| format!("this issuer publishes no {alg} key"))?;
    let mut token = TokenBuilder::new(key)
        .issuer(&issuer.url)
        .audience(issuer.audience(&form.audience))
        .expires_in_secs(form.lifetime.unwrap_or(3600));
    if !form.sub.is_empty() {
        token = token.subject(form.sub);
    }
    let permissions: Vec<&str> = form
        .permissions
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    if !permissions.is_empty() {
        token = token.permissions(permissions);
    }
    match form.claims {
        None | Some(Value::Null) => {}
        Some(Value::Object(claims)) => {
            for (name, value) in claims {
                token = token.claim(name, value);
            }
        }
        Some(_) => return Err("extra claims must be a JSON object".into()),
    }
    let token = token.sign();
    let mut parts = token.split('.');
    let header = segment(parts.next()).unwrap_or(Value::Null);
    let payload = segment(parts.next()).unwrap_or(Value::Null);
    let url = if form.url.is_empty() {
        "http://127.0.0.1:3000/"
    } else {
        &form.url
    };
    Ok(json!({
        "token": token,
        "header": header,
        "payload": payload,
        "curl": format!("curl -i {url} -H 'Authorization: Bearer {token}'"),
    }))
}

/// The layer's verdict on a pasted token, against this issuer's published keys.
async fn explain(form: ExplainForm, issuer: &Issuer) -> Result<Value, String> {
    let set = issuer
        .keys
        .iter()
        .filter(|k| k.secret().is_none())
        .fold(KeySet::new(), |set, key| set.merge(key.key_set()));
    let config = JwtAuthConfig::builder()
        .issuer(&issuer.url)
        .audience(issuer.audience(&form.audience))
        .key_set(set)
        .build()
        .map_err(|e| e.to_string())?;
    let report = Verifier::new(config).explain(form.token.trim()).await;
    serde_json::to_value(&report).map_err(|e| e.to_string())
}
