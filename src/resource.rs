//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells clients
//! which authorization servers issue tokens for this API, served by
//! [`ProtectedResourceMetadata`].

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};
use tower_service::Service;
use url::Url;

use crate::error::{ConfigError, ConfigErrorKind};
use crate::https::is_loopback;

/// The well-known path of RFC 9728 section 3.
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The settings behind the metadata document (the `[resource]` table of a settings
/// file).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ResourceSettings {
    /// The resource identifier (an https URL).
    pub(crate) resource: String,
    /// `resource_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    /// `resource_documentation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) documentation: Option<String>,
    /// `scopes_supported`.
    pub(crate) scopes: Vec<String>,
}

impl ResourceSettings {
    /// Checks the resource identifier and returns the metadata URL and the paths the
    /// document is served at.
    pub(crate) fn locate(&self) -> Result<(String, Vec<String>), ConfigError> {
        let bad =
            |why: &str| ConfigError::new(ConfigErrorKind::InvalidUrl, format!("resource {why}"));
        let url = Url::parse(&self.resource).map_err(|_| bad("is not an absolute URL"))?;
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
            return Err(bad("must be https (plain http for loopback only)"));
        }
        if url.fragment().is_some() {
            return Err(bad("must not have a fragment (RFC 9728 section 1.2)"));
        }
        let path = url.path().trim_end_matches('/');
        // RFC 9728 section 3.1: the well-known segment goes between host and path.
        let suffixed = format!("{WELL_KNOWN}{path}");
        let mut metadata = url.clone();
        metadata.set_path(&suffixed);
        metadata.set_query(None);
        let mut paths = vec![suffixed];
        if !path.is_empty() {
            // Clients that ignore the path suffix ask at the root; answer there too.
            paths.push(WELL_KNOWN.to_owned());
        }
        Ok((metadata.to_string(), paths))
    }
}

/// Serves the RFC 9728 metadata document of a configured resource. Mount it outside the
/// auth layer, at each of [`paths`](Self::paths); obtained from
/// [`JwtAuthConfig::protected_resource_metadata`](crate::JwtAuthConfig::protected_resource_metadata).
///
/// `GET` and `HEAD` at those paths answer `200` with `application/json`; other methods
/// `405`, other paths `404`.
///
/// ```
/// use tower_jwt_auth::JwtAuthConfig;
///
/// let cfg = JwtAuthConfig::builder()
///     .issuer("https://idp.example.com/")
///     .audience("https://api.example.com/mcp")
///     .resource("https://api.example.com/mcp")
///     .scopes_supported(["read", "write"])
///     .hmac_secret(vec![1u8; 32])
///     .build()?;
/// let metadata = cfg.protected_resource_metadata().expect("a resource is configured");
/// assert_eq!(metadata.paths()[0], "/.well-known/oauth-protected-resource/mcp");
/// assert_eq!(metadata.document()["authorization_servers"][0], "https://idp.example.com/");
/// // axum: for path in metadata.paths() { router = router.route_service(path, metadata.clone()) }
/// # Ok::<(), tower_jwt_auth::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProtectedResourceMetadata {
    document: Arc<Value>,
    body: Bytes,
    paths: Arc<[String]>,
    url: Arc<str>,
}

impl ProtectedResourceMetadata {
    pub(crate) fn new(
        settings: &ResourceSettings,
        issuers: Vec<&str>,
        header_bearer: bool,
        url: Arc<str>,
        paths: Vec<String>,
        extra: Vec<(&'static str, Value)>,
    ) -> Self {
        let mut document = json!({
            "resource": settings.resource,
            "authorization_servers": issuers,
            "bearer_methods_supported": if header_bearer { vec!["header"] } else { Vec::new() },
        });
        if !settings.scopes.is_empty() {
            document["scopes_supported"] = json!(settings.scopes);
        }
        if let Some(name) = &settings.name {
            document["resource_name"] = json!(name);
        }
        if let Some(documentation) = &settings.documentation {
            document["resource_documentation"] = json!(documentation);
        }
        for (name, value) in extra {
            document[name] = value;
        }
        let body = Bytes::from(document.to_string());
        Self {
            document: Arc::new(document),
            body,
            paths: paths.into(),
            url,
        }
    }

    /// The metadata document.
    #[must_use]
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The paths to serve it at: the path-suffixed form of RFC 9728 section 3.1 first,
    /// then, for a resource with a path, the root form too.
    #[must_use]
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The absolute URL of the document, as challenges name it in `resource_metadata`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl<B> Service<Request<B>> for ProtectedResourceMetadata {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let mut response = Response::new(Full::new(Bytes::new()));
        if !self.paths.iter().any(|p| p == request.uri().path()) {
            *response.status_mut() = StatusCode::NOT_FOUND;
        } else if request.method() != Method::GET && request.method() != Method::HEAD {
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        } else {
            if request.method() == Method::GET {
                *response.body_mut() = Full::new(self.body.clone());
            }
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
        }
        ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locate(resource: &str) -> Result<(String, Vec<String>), ConfigError> {
        ResourceSettings {
            resource: resource.into(),
            name: None,
            documentation: None,
            scopes: Vec::new(),
        }
        .locate()
    }

    #[test]
    fn metadata_url_inserts_the_well_known_segment_before_the_path() {
        let (url, paths) = locate("https://api.example.com").expect("root");
        assert_eq!(
            url,
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(paths, ["/.well-known/oauth-protected-resource"]);
        let (url, paths) = locate("https://api.example.com/v1/mcp/").expect("path");
        assert_eq!(
            url,
            "https://api.example.com/.well-known/oauth-protected-resource/v1/mcp"
        );
        assert_eq!(
            paths,
            [
                "/.well-known/oauth-protected-resource/v1/mcp",
                "/.well-known/oauth-protected-resource"
            ]
        );
        assert!(locate("http://api.example.com").is_err());
        assert!(locate("https://api.example.com/#x").is_err());
        assert!(locate("not a url").is_err());
        assert!(locate("http://127.0.0.1:8080/mcp").is_ok());
    }
}
