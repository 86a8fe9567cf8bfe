//! Exemptions: requests the layer lets through without a token. A token they do carry is
//! still verified (an invalid one is refused), so a handler behind an exemption still
//! learns who calls when someone does; this is the layer's optional mode, per request.

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

/// The request head an exemption predicate sees.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl<'a> RequestHead<'a> {
    pub(crate) fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            uri,
            headers,
        }
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The URI as the layer sees it.
    #[must_use]
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The path as the layer sees it (no query string).
    #[must_use]
    pub fn path(&self) -> &'a str {
        self.uri.path()
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }
}

/// Requests that pass without a token, by method and path.
///
/// Paths match exactly, by prefix, or by a glob in which `*` matches any run of
/// characters within one segment (no `/`) and `**` any run at all. Matching is on the
/// path the layer sees, byte for byte: put the layer after any layer that rewrites or
/// normalises paths (trailing slashes, percent-decoding, a nest prefix), or write the
/// rules for the path as it arrives.
///
/// ```
/// use http::Method;
/// use tower_jwt_auth::JwtAuthConfig;
/// use tower_jwt_auth::rules::Exemption;
///
/// let builder = JwtAuthConfig::builder()
///     .exempt(Exemption::path("/health"))
///     .exempt(Exemption::prefix("/public/").method(Method::GET))
///     .exempt(Exemption::glob("/grpc.health.v1.Health/*"));
/// # let _ = builder;
/// ```
///
/// With axum, leaving public routes out of the layer (`Router::merge` of an unprotected
/// router, or `route_layer` on the protected ones) is the first choice: an exemption is
/// for stacks where the layer wraps everything, such as a tonic server or a plain tower
/// service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Exemption {
    method: Option<Method>,
    pattern: Pattern,
    /// Paths of ambiguous form are not refused on this rule's account.
    ambiguous_paths: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(Box<str>),
    Prefix(Box<str>),
    Glob(Box<str>),
}

impl Exemption {
    /// Exactly this path.
    pub fn path(path: impl Into<Box<str>>) -> Self {
        Self::with(Pattern::Exact(path.into()))
    }

    /// Every path that starts with `prefix` (`/public/` covers `/public/a/b`, not
    /// `/publicity`).
    pub fn prefix(prefix: impl Into<Box<str>>) -> Self {
        Self::with(Pattern::Prefix(prefix.into()))
    }

    /// Paths matching a glob: `*` within a segment, `**` across segments.
    pub fn glob(glob: impl Into<Box<str>>) -> Self {
        Self::with(Pattern::Glob(glob.into()))
    }

    /// Only for this method (any method by default).
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Lets paths of ambiguous form through this rule. By default, a request this rule
    /// (or an `exempt_when` predicate) would let through without a token gets 400
    /// `invalid_request` instead when its path is one a router, proxy or upstream may
    /// read as another path (`%2F`, `%5C`, `%25`, a backslash, a `.` or `..` segment, a
    /// `;` parameter, `%00`, `//` inside the path). Opt out only when every component
    /// on the way reads paths byte for byte as this layer does.
    pub fn allow_ambiguous_paths(mut self) -> Self {
        self.ambiguous_paths = true;
        self
    }

    fn with(pattern: Pattern) -> Self {
        Self {
            method: None,
            pattern,
            ambiguous_paths: false,
        }
    }

    pub(crate) fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        match &self.pattern {
            Pattern::Exact(exact) => **exact == *path,
            Pattern::Prefix(prefix) => path.starts_with(&**prefix),
            Pattern::Glob(glob) => glob_matches(glob.as_bytes(), path.as_bytes()),
        }
    }

    /// The pattern text, for validation.
    pub(crate) fn text(&self) -> &str {
        match &self.pattern {
            Pattern::Exact(p) | Pattern::Prefix(p) | Pattern::Glob(p) => p,
        }
    }
}

/// An exemption as a configuration file writes it: exactly one of `path`, `prefix` and
/// `glob`, and optionally a `method`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExemptionText {
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    glob: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    allow_ambiguous_paths: bool,
}

impl serde::Serialize for Exemption {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = ExemptionText {
            path: None,
            prefix: None,
            glob: None,
            method: self.method.as_ref().map(ToString::to_string),
            allow_ambiguous_paths: self.ambiguous_paths,
        };
        match &self.pattern {
            Pattern::Exact(p) => text.path = Some(p.clone()),
            Pattern::Prefix(p) => text.prefix = Some(p.clone()),
            Pattern::Glob(p) => text.glob = Some(p.clone()),
        }
        text.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Exemption {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = ExemptionText::deserialize(d)?;
        let mut exemption = match (text.path, text.prefix, text.glob) {
            (Some(path), None, None) => Self::path(path),
            (None, Some(prefix), None) => Self::prefix(prefix),
            (None, None, Some(glob)) => Self::glob(glob),
            _ => {
                return Err(D::Error::custom(
                    "give exactly one of path, prefix and glob",
                ));
            }
        };
        if let Some(method) = text.method {
            let parsed = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| D::Error::custom(format!("{method:?} is not a method")))?;
            exemption = exemption.method(parsed);
        }
        exemption.ambiguous_paths = text.allow_ambiguous_paths;
        Ok(exemption)
    }
}

/// `*` matches within a segment, `**` across segments; everything else literally.
/// One pass per pattern byte over the path's positions: `O(pattern × path)` whatever
/// the pattern, so a long path cannot make a glob backtrack exponentially.
fn glob_matches(pattern: &[u8], path: &[u8]) -> bool {
    let n = path.len();
    // `reach[i]`: the pattern so far can match exactly `path[..i]`.
    let mut reach = vec![false; n + 1];
    reach[0] = true;
    let mut next = vec![false; n + 1];
    let mut rest = pattern;
    while let Some((&first, tail)) = rest.split_first() {
        next.fill(false);
        match (first, tail.first()) {
            (b'*', Some(b'*')) => {
                rest = &tail[1..];
                let mut open = false;
                for i in 0..=n {
                    open |= reach[i];
                    next[i] = open;
                }
            }
            (b'*', _) => {
                rest = tail;
                let mut open = false;
                for i in 0..=n {
                    open |= reach[i];
                    next[i] = open;
                    if i < n && path[i] == b'/' {
                        open = false;
                    }
                }
            }
            (literal, _) => {
                rest = tail;
                for i in 0..n {
                    next[i + 1] = reach[i] && path[i] == literal;
                }
            }
        }
        std::mem::swap(&mut reach, &mut next);
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[n]
}

/// A predicate over the request head.
pub(crate) type Predicate = Arc<dyn Fn(&RequestHead<'_>) -> bool + Send + Sync>;

/// The compiled exemptions.
#[derive(Default, Clone)]
pub(crate) struct Exemptions {
    pub(crate) rules: Vec<Exemption>,
    pub(crate) predicates: Vec<Predicate>,
}

impl Exemptions {
    /// Whether the request passes without a token: `Ok(true)` when an exemption lets it
    /// through, `Err(why)` when one would but its path is ambiguous (a rule that keeps
    /// the check, or a predicate, matched it).
    pub(crate) fn matches(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<bool, &'static str> {
        if self.rules.is_empty() && self.predicates.is_empty() {
            return Ok(false);
        }
        let path = uri.path();
        let mut lenient = false;
        for rule in self.rules.iter().filter(|rule| rule.matches(method, path)) {
            if !rule.ambiguous_paths {
                return super::path::path_ambiguity(path).map_or(Ok(true), Err);
            }
            lenient = true;
        }
        let head = RequestHead::new(method, uri, headers);
        if self.predicates.iter().any(|predicate| predicate(&head)) {
            return super::path::path_ambiguity(path).map_or(Ok(true), Err);
        }
        Ok(lenient)
    }
}

impl fmt::Debug for Exemptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exemptions")
            .field("rules", &self.rules)
            .field("predicates", &self.predicates.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_stay_within_segments_unless_doubled() {
        let get = Method::GET;
        let one = Exemption::glob("/v1/*/status");
        assert!(one.matches(&get, "/v1/orders/status"));
        assert!(!one.matches(&get, "/v1/a/b/status"));
        assert!(!one.matches(&get, "/v1/orders/status/x"));
        let deep = Exemption::glob("/docs/**");
        assert!(deep.matches(&get, "/docs/a/b/c"));
        assert!(deep.matches(&get, "/docs/"));
        assert!(!deep.matches(&get, "/doc"));
        let grpc = Exemption::glob("/grpc.health.v1.Health/*");
        assert!(grpc.matches(&get, "/grpc.health.v1.Health/Check"));
    }

    #[test]
    fn exact_prefix_and_method() {
        let post = Method::POST;
        assert!(Exemption::path("/health").matches(&post, "/health"));
        assert!(!Exemption::path("/health").matches(&post, "/health/"));
        assert!(Exemption::prefix("/public/").matches(&post, "/public/a"));
        assert!(!Exemption::prefix("/public/").matches(&post, "/publicity"));
        let only_get = Exemption::prefix("/public/").method(Method::GET);
        assert!(!only_get.matches(&post, "/public/a"));
    }

    #[test]
    fn a_hostile_glob_does_not_take_exponential_time() {
        let glob = Exemption::glob("/**a**a**a**a**a**a**b");
        let path = format!("/{}", "a".repeat(40));
        assert!(!glob.matches(&Method::GET, &path));
    }
}
