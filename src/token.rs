//! Where the token is: [`TokenSource`], and the raw token handed to handlers,
//! [`BearerToken`].

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use crate::error::ErrorKind;

type CustomFn = dyn Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync;

/// Where the layer looks for the token.
///
/// The default is the `Authorization: Bearer` header (RFC 6750 section 2.1). The query
/// string is never read unless a [`custom`](TokenSource::custom) source does so. Sources
/// can be combined with [`or`](TokenSource::or); a request that carries a token in two of
/// them is refused as malformed (400), since it is ambiguous which one to trust.
///
/// ```
/// use tower_jwt_auth::TokenSource;
///
/// let source = TokenSource::bearer().or(TokenSource::cookie("access_token"));
/// # let _ = source;
/// ```
#[derive(Clone)]
pub struct TokenSource {
    sources: Vec<Source>,
}

#[derive(Clone)]
enum Source {
    Bearer,
    Cookie(Box<str>),
    Header(HeaderName),
    Custom(Arc<CustomFn>),
    /// The header API keys come in: its value is an API key and nothing else.
    ApiKeyHeader(HeaderName),
    /// A source given a name HTTP does not allow; `build()` reports it.
    Invalid(Box<str>),
}

impl TokenSource {
    /// `Authorization: Bearer <token>`, scheme matched case-insensitively, exactly one
    /// `Authorization` header.
    #[must_use]
    pub fn bearer() -> Self {
        Self {
            sources: vec![Source::Bearer],
        }
    }

    /// The value of the named cookie.
    #[must_use]
    pub fn cookie(name: &str) -> Self {
        Self {
            sources: vec![Source::Cookie(name.into())],
        }
    }

    /// The whole value of a custom header, such as `X-Access-Token`. A header name that
    /// is not valid HTTP makes [`build`](crate::JwtAuthConfigBuilder::build) fail.
    #[must_use]
    pub fn header(name: &str) -> Self {
        let source = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => Source::Header(name),
            Err(_) => Source::Invalid(format!("invalid header name {name:?}").into()),
        };
        Self {
            sources: vec![source],
        }
    }

    /// A function of the request head that returns the token, if the request has one.
    #[must_use]
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            sources: vec![Source::Custom(Arc::new(f))],
        }
    }

    /// The header API keys come in (`X-API-Key`): what it holds is an API key, never
    /// tried as a token.
    pub(crate) fn api_key_header(name: &str) -> Self {
        let source = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => Source::ApiKeyHeader(name),
            Err(_) => Source::Invalid(format!("invalid API key header name {name:?}").into()),
        };
        Self {
            sources: vec![source],
        }
    }

    /// The headers this source reads tokens from (bearer aside).
    pub(crate) fn header_names(&self) -> impl Iterator<Item = &HeaderName> {
        self.sources.iter().filter_map(|source| match source {
            Source::Header(name) => Some(name),
            _ => None,
        })
    }

    /// Looks in `other` too; a token found in both is refused as malformed.
    #[must_use]
    pub fn or(mut self, other: Self) -> Self {
        self.sources.extend(other.sources);
        self
    }

    /// Whether the `Authorization: Bearer` header is one of the sources (RFC 9728
    /// `bearer_methods_supported: ["header"]`).
    pub(crate) fn reads_bearer_header(&self) -> bool {
        self.sources.iter().any(|s| matches!(s, Source::Bearer))
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        for source in &self.sources {
            match source {
                Source::Invalid(msg) => return Err(msg.to_string()),
                Source::Cookie(name)
                    if name.is_empty() || !name.bytes().all(is_cookie_name_byte) =>
                {
                    return Err(format!("invalid cookie name {name:?}"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Finds the token. `Ok(None)`: no token (another `Authorization` scheme counts as
    /// none; `DPoP` too unless `dpop`). `Err`: malformed credentials.
    pub(crate) fn extract(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
        dpop: bool,
    ) -> Result<Option<BearerToken>, ErrorKind> {
        let mut found = None;
        for source in &self.sources {
            let token = match source {
                Source::Bearer => bearer(headers, dpop)?,
                Source::Cookie(name) => cookie(headers, name)?,
                Source::Header(name) => custom_header(headers, name)?,
                Source::ApiKeyHeader(name) => custom_header(headers, name)?.map(|mut key| {
                    key.api_key = true;
                    key
                }),
                Source::Invalid(_) => None,
                Source::Custom(f) => match f(headers, uri) {
                    None => None,
                    Some(token) => Some(BearerToken::from_text(&token)?),
                },
            };
            if let Some(token) = token {
                if found.is_some() {
                    return Err(ErrorKind::MalformedCredentials);
                }
                found = Some(token);
            }
        }
        Ok(found)
    }
}

impl Default for TokenSource {
    fn default() -> Self {
        Self::bearer()
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for source in &self.sources {
            match source {
                Source::Bearer => list.entry(&"bearer"),
                Source::Cookie(name) => list.entry(&format_args!("cookie {name:?}")),
                Source::Header(name) => list.entry(&format_args!("header {name:?}")),
                Source::ApiKeyHeader(name) => list.entry(&format_args!("API key header {name:?}")),
                Source::Custom(_) => list.entry(&"custom"),
                Source::Invalid(_) => list.entry(&"invalid"),
            };
        }
        list.finish()
    }
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    // `fold` rather than `all`: without an early exit the loop has no branch per byte
    // and the compiler checks many bytes at once. It runs over every byte of every
    // token.
    body_len > 0
        && token[..body_len].iter().fold(true, |ok, &b| {
            ok & matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

fn bearer(headers: &HeaderMap, dpop: bool) -> Result<Option<BearerToken>, ErrorKind> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ErrorKind::MalformedCredentials);
    }
    let bytes = value.as_bytes();
    let scheme_end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
    let scheme = &bytes[..scheme_end];
    let is_dpop = dpop && scheme.eq_ignore_ascii_case(b"dpop");
    if !is_dpop && !scheme.eq_ignore_ascii_case(b"bearer") {
        // Another scheme (Basic, DPoP while it is off, ...) is not ours to judge.
        return Ok(None);
    }
    let mut start = scheme_end;
    while bytes.get(start) == Some(&b' ') {
        start += 1;
    }
    let mut end = bytes.len();
    while end > start && matches!(bytes[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if start == end || !is_b64token(&bytes[start..end]) {
        return Err(ErrorKind::MalformedCredentials);
    }
    Ok(Some(BearerToken {
        value: value.clone(),
        range: start..end,
        dpop: is_dpop,
        api_key: false,
    }))
}

/// The `name=value` pairs of a `Cookie` header (RFC 6265 section 5.4 and the leniency of
/// section 5.2): pairs split at `;`, each trimmed of whitespace, split at its first `=`,
/// name and value trimmed again; a pair without `=` or with an empty name is skipped.
/// The value keeps its quotes (see [`unquoted`]).
///
/// Only RFC 6265 whitespace (space, tab) is trimmed: the header may carry other Unicode
/// (see [`cookie`]), which is never whitespace here.
fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (name, value) = trim(pair).split_once('=')?;
        let name = trim(name);
        (!name.is_empty()).then(|| (name, trim(value)))
    })
}

/// `text` without RFC 6265 whitespace (space, tab) around it.
fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// A cookie value without the double quotes RFC 6265 allows around it.
fn unquoted(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// The named cookie, over every `Cookie` header (HTTP/2 sends one per cookie). Other
/// cookies, well formed or not, are not ours to judge.
/// The same name twice is ambiguous and refused like a second `Authorization` header; a
/// value that is not a `b64token` (quotes around it aside) is malformed; an empty value
/// is no token.
fn cookie(headers: &HeaderMap, name: &str) -> Result<Option<BearerToken>, ErrorKind> {
    let mut found = None;
    for value in &headers.get_all(COOKIE) {
        // Other cookies may carry UTF-8 (browsers send it) or other bytes: the header is
        // read whole, without allocating when it is UTF-8, so that a token cookie beside
        // them is still found, and an invalid one still refused.
        let text = String::from_utf8_lossy(value.as_bytes());
        for (cookie_name, value) in cookie_pairs(&text) {
            if cookie_name != name {
                continue;
            }
            if found.is_some() {
                return Err(ErrorKind::MalformedCredentials);
            }
            let token = unquoted(value);
            if token.is_empty() {
                found = Some(None);
                continue;
            }
            if !is_b64token(token.as_bytes()) {
                return Err(ErrorKind::MalformedCredentials);
            }
            found = Some(Some(BearerToken::from_text(token)?));
        }
    }
    Ok(found.flatten())
}

fn custom_header(headers: &HeaderMap, name: &HeaderName) -> Result<Option<BearerToken>, ErrorKind> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ErrorKind::MalformedCredentials);
    }
    let bytes = value.as_bytes();
    let trimmed = bytes.trim_ascii();
    if trimmed.is_empty() || !is_b64token(trimmed) {
        return Err(ErrorKind::MalformedCredentials);
    }
    let start = bytes.len() - bytes.trim_ascii_start().len();
    Ok(Some(BearerToken {
        value: value.clone(),
        range: start..start + trimmed.len(),
        dpop: false,
        api_key: false,
    }))
}

/// The raw access token of a verified request, for relaying it to downstream services.
///
/// The layer inserts it into request extensions next to the claims. Its `Debug` output
/// is redacted; use [`as_str`](Self::as_str) deliberately.
#[derive(Clone)]
pub struct BearerToken {
    value: HeaderValue,
    range: Range<usize>,
    /// Sent with the `DPoP` scheme rather than `Bearer`.
    dpop: bool,
    /// Sent in the API key header: an API key whatever its form.
    api_key: bool,
}

impl BearerToken {
    /// A token found outside a header of its own (a cookie, a custom source).
    fn from_text(token: &str) -> Result<Self, ErrorKind> {
        let value = HeaderValue::from_str(token).map_err(|_| ErrorKind::MalformedCredentials)?;
        let range = 0..value.len();
        Ok(Self {
            value,
            range,
            dpop: false,
            api_key: false,
        })
    }

    /// The token text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Every source checks that the range holds visible ASCII (b64token, or a value
        // that `HeaderValue::from_str` accepted), so this never falls back in practice.
        std::str::from_utf8(&self.value.as_bytes()[self.range.clone()]).unwrap_or_default()
    }

    /// Whether the token came with the `DPoP` scheme (a DPoP-bound token with its
    /// proof) rather than `Bearer`.
    #[must_use]
    pub fn is_dpop(&self) -> bool {
        self.dpop
    }

    /// Whether the credential came in the API key header.
    pub(crate) fn came_as_api_key(&self) -> bool {
        self.api_key
    }

    /// The token in a form ready for an outgoing `Authorization` header:
    /// `Bearer <token>`, or `DPoP <token>` for a DPoP-bound one (which also needs a
    /// proof of its own for the next hop).
    #[must_use]
    pub fn to_header_value(&self) -> HeaderValue {
        let scheme = if self.dpop { "DPoP" } else { "Bearer" };
        let mut value = HeaderValue::from_str(&format!("{scheme} {}", self.as_str()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        value.set_sensitive(true);
        value
    }
}

impl AsRef<str> for BearerToken {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    fn extract(source: &TokenSource, pairs: &[(&str, &str)]) -> Result<Option<String>, ErrorKind> {
        source
            .extract(&headers(pairs), &Uri::from_static("/"), false)
            .map(|t| t.map(|t| t.as_str().to_owned()))
    }

    #[test]
    fn the_dpop_scheme_is_read_only_when_dpop_is_on() {
        let headers = headers(&[("authorization", "dpop  a.b.c")]);
        let uri = Uri::from_static("/");
        let source = TokenSource::bearer();
        assert!(matches!(source.extract(&headers, &uri, false), Ok(None)));
        let token = source
            .extract(&headers, &uri, true)
            .expect("well formed")
            .expect("a token");
        assert_eq!(token.as_str(), "a.b.c");
        assert!(token.is_dpop());
        assert_eq!(token.to_header_value(), "DPoP a.b.c");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let s = TokenSource::bearer();
        assert_eq!(
            extract(&s, &[("authorization", "bearer a.b.c")]),
            Ok(Some("a.b.c".into()))
        );
        assert_eq!(
            extract(&s, &[("authorization", "BEARER a.b.c")]),
            Ok(Some("a.b.c".into()))
        );
        // RFC 6750 section 2.1: one or more spaces after the scheme.
        assert_eq!(
            extract(&s, &[("authorization", "Bearer    a.b.c")]),
            Ok(Some("a.b.c".into()))
        );
    }

    #[test]
    fn malformed_bearer_credentials() {
        let s = TokenSource::bearer();
        let bad = Err(ErrorKind::MalformedCredentials);
        assert_eq!(extract(&s, &[("authorization", "Bearer")]), bad);
        assert_eq!(extract(&s, &[("authorization", "Bearer ")]), bad);
        assert_eq!(extract(&s, &[("authorization", "Bearer a.b.c junk")]), bad);
        assert_eq!(extract(&s, &[("authorization", "Bearer a,b")]), bad);
        assert_eq!(extract(&s, &[("authorization", "Bearer ="),]), bad);
        assert_eq!(
            extract(
                &s,
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")]
            ),
            bad
        );
        assert_eq!(
            extract(&s, &[("authorization", "Basic dXNlcjpwdw==")]),
            Ok(None)
        );
        assert_eq!(extract(&s, &[("authorization", "Bearerx a")]), Ok(None));
    }

    #[test]
    fn cookie_header_pairs() {
        let pairs = |h| cookie_pairs(h).collect::<Vec<_>>();
        assert!(pairs("").is_empty() && pairs(";;").is_empty() && pairs(" ; ").is_empty());
        assert_eq!(pairs("  name=value  "), [("name", "value")]);
        assert_eq!(
            pairs("a=1;  ;b = 2 ;junk; =x;c=d=e"),
            [("a", "1"), ("b", "2"), ("c", "d=e")]
        );
        assert_eq!(pairs("at=\"x.y\""), [("at", "\"x.y\"")]);
        assert_eq!(unquoted("\"x.y\""), "x.y");
        assert_eq!(unquoted("\""), "\"");
        assert_eq!(unquoted("\"\""), "");
    }

    #[test]
    fn cookie_and_header_sources() {
        let s = TokenSource::cookie("at");
        assert_eq!(
            extract(&s, &[("cookie", "a=1; at=x.y.z; b=2")]),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(extract(&s, &[("cookie", "a=1")]), Ok(None));
        assert_eq!(
            extract(&s, &[("cookie", "junk; at=\"x.y.z\"")]),
            Ok(Some("x.y.z".into())),
            "quotes around the value and malformed neighbours"
        );
        assert_eq!(extract(&s, &[("cookie", "at=")]), Ok(None));
        let s = TokenSource::header("x-token");
        assert_eq!(
            extract(&s, &[("x-token", " x.y.z ")]),
            Ok(Some("x.y.z".into()))
        );
        assert_eq!(
            extract(&s, &[("x-token", "a"), ("x-token", "b")]),
            Err(ErrorKind::MalformedCredentials)
        );
    }

    #[test]
    fn duplicate_or_malformed_cookies_are_malformed_credentials() {
        let s = TokenSource::cookie("at");
        let bad = Err(ErrorKind::MalformedCredentials);
        assert_eq!(extract(&s, &[("cookie", "at=a.b.c; at=d.e.f")]), bad);
        assert_eq!(
            extract(&s, &[("cookie", "at=a.b.c"), ("cookie", "x=1; at=d.e.f")]),
            bad,
            "across Cookie headers too"
        );
        assert_eq!(extract(&s, &[("cookie", "at=a,b")]), bad);
        assert_eq!(extract(&s, &[("cookie", "at=a b")]), bad);
        assert_eq!(extract(&s, &[("cookie", "at==")]), bad);
    }

    #[test]
    fn a_token_in_two_places_is_malformed() {
        let s = TokenSource::bearer().or(TokenSource::cookie("at"));
        assert_eq!(
            extract(&s, &[("authorization", "Bearer a"), ("cookie", "at=b")]),
            Err(ErrorKind::MalformedCredentials)
        );
        assert_eq!(extract(&s, &[("cookie", "at=b")]), Ok(Some("b".into())));
    }

    #[test]
    fn debug_is_redacted() {
        let t = BearerToken {
            value: HeaderValue::from_static("Bearer secret"),
            range: 7..13,
            dpop: false,
            api_key: false,
        };
        assert_eq!(t.as_str(), "secret");
        assert!(!format!("{t:?}").contains("secret"));
    }
}
