//! One fetch of an issuer's keys over HTTP: OIDC discovery when needed, then the JWKS,
//! with the body cap, conditional requests and the URL rules. Only the refresher task of
//! a [`RemoteJwks`](crate::jwks::RemoteJwks) calls it, so no request's future ever owns a fetch.

use std::time::Duration;

use aws_lc_rs::digest;
use http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode};
use reqwest::Url;

use super::KeySet;
use super::options::RemoteOptions;
use crate::https::{check_fetchable, is_loopback, redirect_allowed};

/// The most redirects one fetch follows.
const MAX_REDIRECTS: usize = 3;

/// Where the keys are found.
pub(crate) enum Source {
    /// OIDC discovery: the document at `url` names the JWKS; its `issuer` must equal
    /// `issuer` (a tenant template for multi-tenant providers).
    Discovery { issuer: String, url: Url },
    /// A JWKS URL given directly.
    Jwks(Url),
}

impl Source {
    pub(crate) fn url(&self) -> &Url {
        match self {
            Self::Discovery { url, .. } | Self::Jwks(url) => url,
        }
    }
}

/// Why a fetch failed. Carries URLs and statuses, never key material.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FetchError(String);

fn err(msg: impl Into<String>) -> FetchError {
    FetchError(msg.into())
}

/// What one fetcher remembers from one fetch to the next.
#[derive(Default)]
pub(crate) struct Memory {
    /// The JWKS URL discovery found; forgotten after a failure, so the next fetch
    /// discovers again.
    jwks_url: Option<Url>,
    etag: Option<HeaderValue>,
    /// SHA-256 of the last JWKS body that loaded: the same document keeps the same set.
    digest: Option<[u8; 32]>,
}

/// The result of a successful fetch.
pub(crate) struct Fetched {
    /// `None` when the issuer confirmed the keys in use (304, or the same document).
    pub(crate) keys: Option<KeySet>,
    /// The `Cache-Control: max-age` the issuer asked for.
    pub(crate) max_age: Option<Duration>,
}

/// Fetches one issuer's keys.
pub(crate) struct Fetcher {
    source: Source,
    client: reqwest::Client,
    timeout: Duration,
    max_body_len: usize,
    allow_http: bool,
}

impl Fetcher {
    pub(crate) fn new(source: Source, options: &RemoteOptions) -> Self {
        let client = options
            .client
            .clone()
            .unwrap_or_else(|| default_client(source.url(), options.allow_http));
        Self {
            source,
            client,
            timeout: options.fetch_timeout,
            max_body_len: options.max_body_len,
            allow_http: options.allow_http,
        }
    }

    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// One fetch: discovery if the JWKS URL is not known yet, then the JWKS (conditional
    /// when keys are already in use).
    pub(crate) async fn fetch(
        &self,
        memory: &mut Memory,
        have_keys: bool,
    ) -> Result<Fetched, FetchError> {
        let result = self.fetch_inner(memory, have_keys).await;
        if result.is_err() {
            memory.jwks_url = None;
        }
        result
    }

    async fn fetch_inner(
        &self,
        memory: &mut Memory,
        have_keys: bool,
    ) -> Result<Fetched, FetchError> {
        let jwks_url = match (&self.source, &memory.jwks_url) {
            (Source::Jwks(url), _) | (_, Some(url)) => url.clone(),
            (Source::Discovery { issuer, url }, None) => {
                let found = self.discover(issuer, url).await?;
                memory.jwks_url = Some(found.clone());
                found
            }
        };
        let mut request = self
            .client
            .get(jwks_url.clone())
            .timeout(self.timeout)
            .header(
                http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            );
        if have_keys && let Some(etag) = &memory.etag {
            request = request.header(IF_NONE_MATCH, etag.clone());
        }
        let response = self.send(request, &jwks_url, "JWKS").await?;
        let status = response.status();
        let max_age = max_age(response.headers());
        if status == StatusCode::NOT_MODIFIED && have_keys {
            return Ok(Fetched {
                keys: None,
                max_age,
            });
        }
        if !status.is_success() {
            return Err(err(format!("JWKS at {jwks_url} answered {status}")));
        }
        let etag = response.headers().get(ETAG).cloned();
        let body = self.read_body(response, "JWKS").await?;
        let digest = sha256(&body);
        memory.etag = etag;
        if have_keys && memory.digest == Some(digest) {
            // The same document: keep the set, its generation and every cache entry.
            return Ok(Fetched {
                keys: None,
                max_age,
            });
        }
        let document: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| err(format!("JWKS at {jwks_url} is not JSON")))?;
        let keys = KeySet::parse_jwks(&document).map_err(err)?;
        if keys.is_empty() {
            return Err(err(format!("JWKS at {jwks_url} has no usable key")));
        }
        tracing::debug!(keys = keys.len(), url = %jwks_url, "signing keys loaded");
        memory.digest = Some(digest);
        Ok(Fetched {
            keys: Some(keys),
            max_age,
        })
    }

    async fn discover(&self, issuer: &str, url: &Url) -> Result<Url, FetchError> {
        let request = self
            .client
            .get(url.clone())
            .timeout(self.timeout)
            .header(http::header::ACCEPT, "application/json");
        let response = self.send(request, url, "discovery").await?;
        let status = response.status();
        if !status.is_success() {
            return Err(err(format!("discovery at {url} answered {status}")));
        }
        let body = self.read_body(response, "discovery document").await?;
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let document: Discovery = serde_json::from_slice(&body).map_err(|_| {
            err(format!(
                "discovery document at {url} is not JSON with issuer and jwks_uri"
            ))
        })?;
        if document.issuer.replace("{tenant}", "{tenantid}") != issuer {
            return Err(err(format!(
                "discovery document names issuer {:?}, expected {issuer:?}",
                document.issuer
            )));
        }
        let jwks = Url::parse(&document.jwks_uri)
            .map_err(|_| err(format!("jwks_uri {:?} is not a URL", document.jwks_uri)))?;
        check_fetchable(&jwks, self.allow_http).map_err(err)?;
        Ok(jwks)
    }

    /// Sends a request and applies the URL rules to where it ended up: a redirect the
    /// client did not follow is an error naming its target, and a response from a URL
    /// that may not be fetched (a custom client followed a redirect to plain http) is
    /// refused.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
        what: &str,
    ) -> Result<reqwest::Response, FetchError> {
        let response = request
            .send()
            .await
            .map_err(|e| err(format!("{what} request to {url} failed: {}", cause(e))))?;
        if response.status().is_redirection() && response.status() != StatusCode::NOT_MODIFIED {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("");
            return Err(err(format!(
                "{what} at {url} redirected to {location:?}; redirects are followed only to https, at most {MAX_REDIRECTS} times"
            )));
        }
        check_fetchable(response.url(), self.allow_http)
            .map_err(|why| err(format!("{what} at {url} was redirected: {why}")))?;
        Ok(response)
    }

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, FetchError> {
        let cap = self.max_body_len;
        let too_large = || err(format!("{what} is larger than {cap} bytes"));
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| err(format!("reading the {what} failed: {}", cause(e))))?
        {
            if body.len().saturating_add(chunk.len()) > cap {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The built-in client: rustls, no proxy for loopback, and redirects only where
/// [`redirect_allowed`] says.
fn default_client(url: &Url, allow_http: bool) -> reqwest::Client {
    let mut builder =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::custom(move |attempt| {
            let allowed = attempt.previous().len() <= MAX_REDIRECTS
                && attempt
                    .previous()
                    .last()
                    .is_some_and(|from| redirect_allowed(from, attempt.url(), allow_http));
            if allowed {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }));
    if is_loopback(url) {
        // A proxy setting in the environment must not capture loopback traffic.
        builder = builder.no_proxy();
    }
    // Building fails only when the TLS backend cannot initialise; reqwest's own default
    // client would panic there, so fall back to it with a log line.
    builder.build().unwrap_or_else(|e| {
        tracing::error!(error = %e, "building the JWKS HTTP client failed");
        reqwest::Client::new()
    })
}

/// What went wrong with a request, in words an operator can act on: the kind first
/// (timeout, DNS, refused connection, TLS), then the innermost error's own message.
fn cause(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut innermost = error.to_string();
    let mut chain = innermost.to_ascii_lowercase();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        innermost = inner.to_string();
        chain.push_str(": ");
        chain.push_str(&innermost.to_ascii_lowercase());
        source = inner.source();
    }
    let has = |words: &[&str]| words.iter().any(|w| chain.contains(w));
    let kind = if error.is_timeout() || has(&["timed out", "timeout"]) {
        "timed out"
    } else if has(&[
        "dns error",
        "failed to lookup",
        "name or service not known",
        "no such host",
    ]) {
        "DNS lookup failed"
    } else if has(&["connection refused"]) {
        "connection refused"
    } else if has(&["certificate", "tls", "handshake", "unknownissuer"]) {
        "TLS handshake failed"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    format!("{kind} ({innermost})")
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// The `max-age` of a `Cache-Control` header; `no-cache` and `no-store` count as zero
/// (clamped to the lower bound later).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(CACHE_CONTROL)?.to_str().ok()?;
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            age = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600, must-revalidate"),
        );
        assert_eq!(max_age(&h), Some(Duration::from_secs(3600)));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("max-age=99999999999999999999"),
        );
        assert_eq!(max_age(&h), None, "an unparsable age is ignored");
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert_eq!(max_age(&h), Some(Duration::ZERO));
    }
}
