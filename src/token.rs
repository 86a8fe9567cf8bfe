//! Where the token is: [`TokenSource`], and the raw token handed to handlers,
//! [`BearerToken`].

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use http::header::{AUTHORIZATION, COOKIE, SEC_WEBSOCKET_PROTOCOL};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::error::ErrorKind;
use crate::rules::{PathPattern, path_ambiguity, unreserved};

type CustomFn = dyn Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync;

/// Where the layer looks for the token.
///
/// The default is the `Authorization: Bearer` header (RFC 6750 section 2.1). The query
/// string is read only by a [`query`](TokenSource::query) source, on the paths that
/// opt in, or by a [`custom`](TokenSource::custom) one. Sources can be combined with
/// [`or`](TokenSource::or); a request that carries a token in two of them is refused as
/// malformed (400), since it is ambiguous which one to trust.
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
    /// Where a [`query`](TokenSource::query) source reads; set by `build()` from
    /// [`query_token_paths`](crate::JwtAuthConfigBuilder::query_token_paths).
    query_paths: Arc<[PathPattern]>,
}

#[derive(Clone)]
enum Source {
    Bearer,
    Cookie(Box<str>),
    Header(HeaderName),
    Custom(Arc<CustomFn>),
    /// The header API keys come in: its value is an API key and nothing else.
    ApiKeyHeader(HeaderName),
    /// The `Sec-WebSocket-Protocol` entry that starts with this prefix.
    WebSocketProtocol(Box<str>),
    /// The query parameter of this name, on GET requests to the query paths.
    Query(Box<str>),
    /// A source given a name HTTP does not allow; `build()` reports it.
    Invalid(Box<str>),
}

impl TokenSource {
    /// `Authorization: Bearer <token>`, scheme matched case-insensitively, exactly one
    /// `Authorization` header.
    #[must_use]
    pub fn bearer() -> Self {
        Self::one(Source::Bearer)
    }

    /// The value of the named cookie.
    #[must_use]
    pub fn cookie(name: &str) -> Self {
        Self::one(Source::Cookie(name.into()))
    }

    /// The whole value of a custom header, such as `X-Access-Token`. A header name that
    /// is not valid HTTP makes [`build`](crate::JwtAuthConfigBuilder::build) fail.
    #[must_use]
    pub fn header(name: &str) -> Self {
        let source = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => Source::Header(name),
            Err(_) => Source::Invalid(format!("invalid header name {name:?}").into()),
        };
        Self::one(source)
    }

    /// A function of the request head that returns the token, if the request has one.
    #[must_use]
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&HeaderMap, &Uri) -> Option<String> + Send + Sync + 'static,
    {
        Self::one(Source::Custom(Arc::new(f)))
    }

    /// One entry of `Sec-WebSocket-Protocol`, written `<prefix><token>`, for WebSocket
    /// clients that cannot set headers (a browser's `new WebSocket(url, protocols)`).
    /// Read on WebSocket handshakes only (a GET with `Upgrade: websocket`, or an HTTP/2
    /// extended CONNECT).
    ///
    /// The layer removes that entry before the application sees the header (the whole
    /// header when nothing else is left), so the application can never select the
    /// token as its subprotocol. Browsers fail a handshake whose offered subprotocols
    /// get no selection: clients offer a real subprotocol beside the token entry
    /// (`["chat", "bearer." + token]`) and the application selects that one. Two
    /// entries with the prefix are refused as malformed (400). The prefix is compared
    /// case-sensitively, as subprotocol names are; one that is empty or not an HTTP
    /// token makes [`build`](crate::JwtAuthConfigBuilder::build) fail.
    ///
    /// ```
    /// use tower_jwt_auth::TokenSource;
    ///
    /// let source = TokenSource::bearer().or(TokenSource::websocket_protocol("bearer."));
    /// # let _ = source;
    /// ```
    #[must_use]
    pub fn websocket_protocol(prefix: &str) -> Self {
        Self::one(Source::WebSocketProtocol(prefix.into()))
    }

    /// The query parameter `name` (`?access_token=<token>`, form-encoded), read only on
    /// GET requests to the paths named by
    /// [`query_token_paths`](crate::JwtAuthConfigBuilder::query_token_paths), for
    /// clients that cannot set headers (a browser's `EventSource`). On any other path
    /// or method the parameter is ignored.
    ///
    /// RFC 6750 section 2.3 discourages query tokens (URIs end up in logs, history and
    /// `Referer` headers) and FAPI 2.0 forbids them: use them only where the client
    /// has no other way. Where it is read, the parameter is removed from the URI the
    /// inner service sees; a request that also carries a token elsewhere, or the
    /// parameter twice, is refused as malformed (400); so is a request whose path, of
    /// ambiguous form (see [`path_ambiguity`](crate::rules::path_ambiguity)), matches a
    /// query path. A name that is not made of letters, digits and `-._~` makes
    /// [`build`](crate::JwtAuthConfigBuilder::build) fail.
    ///
    /// ```
    /// use tower_jwt_auth::{JwtAuthConfig, TokenSource};
    ///
    /// let builder = JwtAuthConfig::builder()
    ///     .token_source(TokenSource::bearer().or(TokenSource::query("access_token")))
    ///     .query_token_paths(["/events"]);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn query(name: &str) -> Self {
        Self::one(Source::Query(name.into()))
    }

    fn one(source: Source) -> Self {
        Self {
            sources: vec![source],
            query_paths: Arc::from([]),
        }
    }

    /// The header API keys come in (`X-API-Key`): what it holds is an API key, never
    /// tried as a token.
    pub(crate) fn api_key_header(name: &str) -> Self {
        let source = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => Source::ApiKeyHeader(name),
            Err(_) => Source::Invalid(format!("invalid API key header name {name:?}").into()),
        };
        Self::one(source)
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

    /// Whether the `Authorization` header is the only source.
    pub(crate) fn is_bearer_only(&self) -> bool {
        matches!(self.sources.as_slice(), [Source::Bearer])
    }

    /// Whether a query source is one of the sources.
    pub(crate) fn reads_query(&self) -> bool {
        self.sources.iter().any(|s| matches!(s, Source::Query(_)))
    }

    /// The paths a query source reads on.
    pub(crate) fn with_query_paths(mut self, paths: Vec<PathPattern>) -> Self {
        self.query_paths = paths.into();
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
                Source::WebSocketProtocol(prefix)
                    if prefix.is_empty() || !prefix.bytes().all(is_tchar) =>
                {
                    return Err(format!(
                        "invalid WebSocket subprotocol prefix {prefix:?}: an HTTP token is needed"
                    ));
                }
                Source::Query(name) if name.is_empty() || !name.bytes().all(unreserved) => {
                    return Err(format!(
                        "invalid query parameter name {name:?}: letters, digits and -._~ only"
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Finds the token. `Ok(None)`: no token (another `Authorization` scheme counts as
    /// none; `DPoP` too unless `dpop`). `Err`: malformed credentials, or a query token
    /// on a path of ambiguous form.
    pub(crate) fn extract(
        &self,
        method: &Method,
        headers: &HeaderMap,
        uri: &Uri,
        dpop: bool,
    ) -> Result<Option<BearerToken>, ErrorKind> {
        let mut found = None;
        for source in &self.sources {
            let token = match source {
                // Alone, the header leaves the character check to the core; beside other
                // sources it checks at once, so that the first malformed source decides
                // the refusal, as it always has.
                Source::Bearer => bearer(headers, dpop, self.sources.len() > 1)?,
                Source::Cookie(name) => cookie(headers, name)?,
                Source::Header(name) => custom_header(headers, name)?,
                Source::WebSocketProtocol(prefix) if is_upgrade(method, headers) => {
                    websocket_protocol(headers, prefix)?
                }
                Source::WebSocketProtocol(_) => None,
                Source::Query(name) if self.reads_query_on(method, uri) => {
                    let token = query(uri, name)?;
                    if token.is_some() && path_ambiguity(uri.path()).is_some() {
                        return Err(ErrorKind::AmbiguousPath);
                    }
                    token
                }
                Source::Query(_) => None,
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

    /// Whether a query source reads this request: a GET to one of the query paths.
    fn reads_query_on(&self, method: &Method, uri: &Uri) -> bool {
        *method == Method::GET && self.query_paths.iter().any(|p| p.matches(uri.path()))
    }

    /// Removes what the request-line and handshake sources read from the request the
    /// inner service gets: the token entry of `Sec-WebSocket-Protocol` (always, so an
    /// application never selects it), and the query parameter where it is read.
    /// Done for every request, whatever the outcome. True when a query parameter was
    /// removed: the token came in the URI.
    pub(crate) fn scrub(&self, method: &Method, uri: &mut Uri, headers: &mut HeaderMap) -> bool {
        let mut in_uri = false;
        for source in &self.sources {
            match source {
                Source::WebSocketProtocol(prefix) => scrub_protocol(headers, prefix),
                Source::Query(name) if self.reads_query_on(method, uri) => {
                    in_uri |= scrub_query(uri, name);
                }
                _ => {}
            }
        }
        in_uri
    }

    /// Whether [`scrub`](Self::scrub) has anything to do for some request.
    pub(crate) fn scrubs(&self) -> bool {
        self.sources
            .iter()
            .any(|s| matches!(s, Source::WebSocketProtocol(_) | Source::Query(_)))
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
                Source::WebSocketProtocol(prefix) => {
                    list.entry(&format_args!("WebSocket protocol {prefix:?}"))
                }
                Source::Query(name) => list.entry(&format_args!(
                    "query {name:?} on {:?}",
                    self.query_paths
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                )),
                Source::Custom(_) => list.entry(&"custom"),
                Source::Invalid(_) => list.entry(&"invalid"),
            };
        }
        list.finish()
    }
}

/// RFC 9110 `tchar`: a byte of a token, such as a subprotocol name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub(crate) fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    let (chunks, rest) = token[..body_len].as_chunks::<32>();
    // Each chunk is judged without an early exit inside it, by arithmetic rather than a
    // table, so the compiler checks its 32 bytes with vector instructions: 1.9
    // instructions a byte against 2.3 for a per-byte `match` (callgrind). It runs over
    // every token the header sources and the query find, but an `Authorization` token
    // that is the only source and that the JWT source accepts.
    let clean = |bytes: &[u8]| bytes.iter().fold(true, |ok, &b| ok & is_b64token_byte(b));
    body_len > 0 && chunks.iter().all(|chunk| clean(chunk)) && clean(rest)
}

/// A byte of a `b64token` before its padding, in branch-free form.
pub(crate) const fn is_b64token_byte(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    // `-` `.` `/` and the digits are 0x2D to 0x39.
    let run = b.wrapping_sub(b'-') < 13;
    letter | run | (b == b'+') | (b == b'_') | (b == b'~')
}

/// The `Authorization` header's token; its characters are checked here when
/// `check_now`, else left to the core ([`BearerToken::characters_unchecked`]).
fn bearer(
    headers: &HeaderMap,
    dpop: bool,
    check_now: bool,
) -> Result<Option<BearerToken>, ErrorKind> {
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
    if start == end || (check_now && !is_b64token(&bytes[start..end])) {
        return Err(ErrorKind::MalformedCredentials);
    }
    // Unchecked, the character check is the core's: a token the cache or verification
    // accepts needs none, and it was the largest cost of a cache hit.
    Ok(Some(BearerToken {
        value: value.clone(),
        range: start..end,
        dpop: is_dpop,
        api_key: false,
        unchecked: !check_now,
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
        unchecked: false,
    }))
}

/// Whether the request opens a WebSocket: a GET with `Upgrade: websocket` (RFC 6455
/// section 4.1), or an HTTP/2 extended CONNECT (RFC 8441). A subprotocol entry on any
/// other request is no token (it is still removed).
fn is_upgrade(method: &Method, headers: &HeaderMap) -> bool {
    if *method == Method::CONNECT {
        return true;
    }
    *method == Method::GET
        && headers.get_all(http::header::UPGRADE).iter().any(|value| {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|protocol| protocol.trim_ascii().eq_ignore_ascii_case(b"websocket"))
        })
}

/// The entries of every `Sec-WebSocket-Protocol` header, with their place: the index
/// of the header value and the byte range of the entry in it (RFC 6455 section 11.3.4:
/// comma-separated, optional whitespace around each).
fn protocol_entries(headers: &HeaderMap) -> impl Iterator<Item = (&HeaderValue, Range<usize>)> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|value| {
            let bytes = value.as_bytes();
            let mut start = 0;
            std::iter::from_fn(move || {
                while start <= bytes.len() {
                    let end = bytes[start..]
                        .iter()
                        .position(|&b| b == b',')
                        .map_or(bytes.len(), |i| start + i);
                    let mut range = start..end;
                    start = end + 1;
                    while range.start < range.end && matches!(bytes[range.start], b' ' | b'\t') {
                        range.start += 1;
                    }
                    while range.end > range.start && matches!(bytes[range.end - 1], b' ' | b'\t') {
                        range.end -= 1;
                    }
                    if !range.is_empty() {
                        return Some((value, range));
                    }
                }
                None
            })
        })
}

/// The `Sec-WebSocket-Protocol` entry that starts with `prefix`, without the prefix.
/// Two such entries are ambiguous; an entry that is the prefix alone or whose rest is
/// not a `b64token` is malformed.
fn websocket_protocol(headers: &HeaderMap, prefix: &str) -> Result<Option<BearerToken>, ErrorKind> {
    let mut found = None;
    for (value, range) in protocol_entries(headers) {
        let entry = &value.as_bytes()[range.clone()];
        if !entry.starts_with(prefix.as_bytes()) {
            continue;
        }
        if found.is_some() {
            return Err(ErrorKind::MalformedCredentials);
        }
        let token = range.start + prefix.len()..range.end;
        if token.is_empty() || !is_b64token(&value.as_bytes()[token.clone()]) {
            return Err(ErrorKind::MalformedCredentials);
        }
        found = Some(BearerToken {
            value: value.clone(),
            range: token,
            dpop: false,
            api_key: false,
            unchecked: false,
        });
    }
    Ok(found)
}

/// `Sec-WebSocket-Protocol` without the entries that start with `prefix`: one header
/// of what is left, or none when nothing is.
fn scrub_protocol(headers: &mut HeaderMap, prefix: &str) {
    let mut removed = false;
    let mut kept: Vec<&[u8]> = Vec::new();
    for (value, range) in protocol_entries(headers) {
        let entry = &value.as_bytes()[range];
        if entry.starts_with(prefix.as_bytes()) {
            removed = true;
        } else {
            kept.push(entry);
        }
    }
    if !removed {
        return;
    }
    let rest = HeaderValue::from_bytes(&kept.join(&b", "[..])).ok();
    headers.remove(SEC_WEBSOCKET_PROTOCOL);
    if let Some(rest) = rest.filter(|rest| !rest.is_empty()) {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, rest);
    }
}

/// The `&`-separated pairs of a query, raw, each with its name decoded
/// (`application/x-www-form-urlencoded`, as RFC 6750 section 2.3 says).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, std::borrow::Cow<'_, str>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let decoded = form_urlencoded::parse(name.as_bytes())
                .next()
                .map_or(std::borrow::Cow::Borrowed(""), |(name, _)| name);
            (pair, decoded)
        })
}

/// The query parameter `name`, decoded. Twice is ambiguous; an empty value or one that
/// is not a `b64token` is malformed.
fn query(uri: &Uri, name: &str) -> Result<Option<BearerToken>, ErrorKind> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let mut found = None;
    for (pair, decoded) in query_pairs(query) {
        if decoded != name {
            continue;
        }
        if found.is_some() {
            return Err(ErrorKind::MalformedCredentials);
        }
        let value = form_urlencoded::parse(pair.as_bytes())
            .next()
            .map(|(_, value)| value)
            .unwrap_or_default();
        if value.is_empty() || !is_b64token(value.as_bytes()) {
            return Err(ErrorKind::MalformedCredentials);
        }
        found = Some(BearerToken::from_text(&value)?);
    }
    Ok(found)
}

/// The URI without the query parameter `name`; the other pairs stay as they came.
/// True when there was one.
fn scrub_query(uri: &mut Uri, name: &str) -> bool {
    let Some(query) = uri.query() else {
        return false;
    };
    let mut removed = false;
    let kept: Vec<&str> = query_pairs(query)
        .filter(|(_, decoded)| {
            let ours = decoded == name;
            removed |= ours;
            !ours
        })
        .map(|(pair, _)| pair)
        .collect();
    if !removed {
        return false;
    }
    let path_and_query = if kept.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    };
    // Made of a path and pairs that were valid in the URI already, so this holds; were
    // it not so, the whole query goes rather than the token staying.
    let path_and_query = PathAndQuery::try_from(path_and_query)
        .or_else(|_| PathAndQuery::try_from(uri.path()))
        .unwrap_or_else(|_| PathAndQuery::from_static("/"));
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query);
    if let Ok(scrubbed) = Uri::from_parts(parts) {
        *uri = scrubbed;
    }
    true
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
    /// Its characters are not yet known to be RFC 6750's `b64token`: the check is left
    /// to the core, which skips it for a token verification accepts (see
    /// [`Self::characters_unchecked`]).
    unchecked: bool,
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
            unchecked: false,
        })
    }

    /// The token text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Every source but a lone `Authorization` header checks that the range holds
        // visible ASCII (b64token, or a value that `HeaderValue::from_str` accepted); the
        // core refuses an unchecked token that is not a b64token before anyone reads it
        // here, so an authenticated token never falls back to "".
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The token's bytes, without the UTF-8 check of [`as_str`](Self::as_str).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.value.as_bytes()[self.range.clone()]
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

    /// Whether the token's characters are still to be checked against RFC 6750's
    /// `b64token` ([`is_b64token`]), which refuses it with 400. The `Authorization`
    /// header leaves the check to the core: a token that verifies is base64url segments
    /// and dots, which the check would pass, so the core runs it only before anything
    /// that is not pure (a source's network or state, a wait) and on a refusal.
    pub(crate) fn characters_unchecked(&self) -> bool {
        self.unchecked
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

    /// The branch-free byte test is RFC 6750's set, byte for byte, and the chunked check
    /// judges a bad byte at every position of a long token, padding included.
    #[test]
    fn b64token_set() {
        for b in 0..=u8::MAX {
            let spec = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64token_byte(b), spec, "byte {b:#04x}");
        }
        let good = vec![b'a'; 70];
        assert!(is_b64token(&good));
        for at in 0..good.len() {
            for bad in [b' ', b',', b'=', b'"', 0x80, 0xff] {
                let mut token = good.clone();
                token[at] = bad;
                // `=` at the end is padding.
                let padding = bad == b'=' && at == good.len() - 1;
                assert_eq!(is_b64token(&token), padding, "{bad:#04x} at {at}");
            }
        }
        assert!(is_b64token(b"ab=="));
        assert!(!is_b64token(b"=="));
        assert!(!is_b64token(b""));
        assert!(!is_b64token(b"a=b"));
    }

    fn extract(source: &TokenSource, pairs: &[(&str, &str)]) -> Result<Option<String>, ErrorKind> {
        source
            .extract(&Method::GET, &headers(pairs), &Uri::from_static("/"), false)
            .map(|t| t.map(|t| t.as_str().to_owned()))
    }

    /// What a source finds on a request, and the URI and `Sec-WebSocket-Protocol` the
    /// inner service then sees.
    fn through(
        source: &TokenSource,
        method: Method,
        uri: &str,
        pairs: &[(&str, &str)],
    ) -> (Result<Option<String>, ErrorKind>, String, Option<String>) {
        let mut headers = headers(pairs);
        let mut uri: Uri = uri.parse().expect("uri");
        let found = source
            .extract(&method, &headers, &uri, false)
            .map(|t| t.map(|t| t.as_str().to_owned()));
        source.scrub(&method, &mut uri, &mut headers);
        let protocol = headers
            .get(SEC_WEBSOCKET_PROTOCOL)
            .map(|v| v.to_str().expect("ascii").to_owned());
        (found, uri.to_string(), protocol)
    }

    /// The header of a WebSocket handshake.
    const UPGRADE: (&str, &str) = ("upgrade", "websocket");

    fn query_source(paths: &[&str]) -> TokenSource {
        TokenSource::bearer()
            .or(TokenSource::query("access_token"))
            .with_query_paths(paths.iter().map(|p| p.parse().expect("pattern")).collect())
    }

    #[test]
    fn the_protocol_entry_is_read_and_never_left_for_the_application() {
        let s = TokenSource::bearer().or(TokenSource::websocket_protocol("bearer."));
        let (found, _, left) = through(
            &s,
            Method::GET,
            "/ws",
            &[("sec-websocket-protocol", "chat, bearer.a.b.c"), UPGRADE],
        );
        assert_eq!(found, Ok(Some("a.b.c".into())));
        assert_eq!(left.as_deref(), Some("chat"));
        // Alone, and across two headers with odd spacing.
        let (found, _, left) = through(
            &s,
            Method::GET,
            "/ws",
            &[("sec-websocket-protocol", "bearer.x"), UPGRADE],
        );
        assert_eq!((found, left), (Ok(Some("x".into())), None));
        let (found, _, left) = through(
            &s,
            Method::GET,
            "/ws",
            &[
                ("sec-websocket-protocol", " bearer.x ,\tv2 "),
                ("sec-websocket-protocol", "chat"),
                UPGRADE,
            ],
        );
        assert_eq!(
            (found, left.as_deref()),
            (Ok(Some("x".into())), Some("v2, chat"))
        );
        // Other entries are not ours: untouched, and no token.
        let (found, _, left) = through(
            &s,
            Method::GET,
            "/ws",
            &[("sec-websocket-protocol", "chat,v2"), UPGRADE],
        );
        assert_eq!((found, left.as_deref()), (Ok(None), Some("chat,v2")));
        // The prefix is case-sensitive, as subprotocol names are.
        let (found, ..) = through(
            &s,
            Method::GET,
            "/ws",
            &[("sec-websocket-protocol", "Bearer.x"), UPGRADE],
        );
        assert_eq!(found, Ok(None));
    }

    #[test]
    fn a_protocol_entry_is_a_token_only_on_a_websocket_handshake() {
        let s = TokenSource::websocket_protocol("bearer.");
        let offer = ("sec-websocket-protocol", "chat, bearer.x");
        for (method, upgrade) in [
            (Method::GET, None),
            (Method::POST, Some("websocket")),
            (Method::GET, Some("h2c")),
        ] {
            let mut pairs = vec![offer];
            pairs.extend(upgrade.map(|u| ("upgrade", u)));
            let (found, _, left) = through(&s, method.clone(), "/ws", &pairs);
            assert_eq!(
                (found, left.as_deref()),
                (Ok(None), Some("chat")),
                "{method} {upgrade:?}"
            );
        }
        for (method, upgrade) in [(Method::GET, Some("WebSocket")), (Method::CONNECT, None)] {
            let mut pairs = vec![offer];
            pairs.extend(upgrade.map(|u| ("upgrade", u)));
            let (found, ..) = through(&s, method.clone(), "/ws", &pairs);
            assert_eq!(found, Ok(Some("x".into())), "{method} {upgrade:?}");
        }
    }

    #[test]
    fn protocol_entries_that_cannot_be_one_token_are_malformed_and_still_removed() {
        let s = TokenSource::websocket_protocol("bearer.");
        let bad = Err(ErrorKind::MalformedCredentials);
        for offered in ["bearer.a, bearer.b", "bearer.", "chat, bearer.a=b"] {
            let (found, _, left) = through(
                &s,
                Method::GET,
                "/ws",
                &[("sec-websocket-protocol", offered), UPGRADE],
            );
            assert_eq!(found, bad, "{offered}");
            assert!(
                left.is_none_or(|left| !left.contains("bearer.")),
                "{offered}"
            );
        }
        let beside_a_header = TokenSource::bearer().or(s);
        let (found, ..) = through(
            &beside_a_header,
            Method::GET,
            "/ws",
            &[
                ("authorization", "Bearer a"),
                ("sec-websocket-protocol", "bearer.a"),
                UPGRADE,
            ],
        );
        assert_eq!(found, bad);
    }

    #[test]
    fn a_query_token_is_read_on_its_paths_for_get_and_removed_from_the_uri() {
        let s = query_source(&["/events", "/streams/*"]);
        let (found, uri, _) = through(&s, Method::GET, "/events?x=1&access_token=a.b&y=%20", &[]);
        assert_eq!(found, Ok(Some("a.b".into())));
        assert_eq!(uri, "/events?x=1&y=%20");
        let (found, uri, _) = through(&s, Method::GET, "/streams/7?access%5Ftoken=a%2Eb", &[]);
        assert_eq!(
            found,
            Ok(Some("a.b".into())),
            "names and values are form-decoded"
        );
        assert_eq!(uri, "/streams/7");
        // Another path, another method: ignored and left alone.
        for (method, uri) in [
            (Method::GET, "/documents?access_token=a"),
            (Method::POST, "/events?access_token=a"),
            (Method::HEAD, "/events?access_token=a"),
        ] {
            let (found, seen, _) = through(&s, method.clone(), uri, &[]);
            assert_eq!((found, seen.as_str()), (Ok(None), uri), "{method} {uri}");
        }
    }

    #[test]
    fn query_tokens_that_are_ambiguous_or_malformed_are_refused() {
        let s = query_source(&["/events*"]);
        let bad = Err(ErrorKind::MalformedCredentials);
        for uri in [
            "/events?access_token=a&access_token=b",
            "/events?access_token=",
            "/events?access_token",
            "/events?access_token=a+b",
            "/events?access_token=a%22",
        ] {
            assert_eq!(through(&s, Method::GET, uri, &[]).0, bad, "{uri}");
        }
        let (found, ..) = through(
            &s,
            Method::GET,
            "/events?access_token=a",
            &[("authorization", "Bearer b")],
        );
        assert_eq!(found, bad, "beside a header token");
        let (found, ..) = through(&s, Method::GET, "/events/..%2Fadmin?access_token=a", &[]);
        assert_eq!(found, Err(ErrorKind::AmbiguousPath));
        // No parameter: the path's form is not the query source's business.
        let (found, ..) = through(&s, Method::GET, "/events/..%2Fadmin", &[]);
        assert_eq!(found, Ok(None));
    }

    #[test]
    fn request_line_sources_check_their_names_at_build() {
        assert!(TokenSource::websocket_protocol("").validate().is_err());
        assert!(
            TokenSource::websocket_protocol("bearer ")
                .validate()
                .is_err()
        );
        assert!(
            TokenSource::websocket_protocol("base64url.bearer.authorization.k8s.io.")
                .validate()
                .is_ok()
        );
        assert!(TokenSource::query("").validate().is_err());
        assert!(TokenSource::query("a&b").validate().is_err());
        assert!(TokenSource::query("access_token").validate().is_ok());
        let debug = format!("{:?}", query_source(&["/events", "/s/*"]));
        assert_eq!(
            debug,
            r#"["bearer", query "access_token" on ["/events", "/s/*"]]"#
        );
    }

    #[test]
    fn the_dpop_scheme_is_read_only_when_dpop_is_on() {
        let headers = headers(&[("authorization", "dpop  a.b.c")]);
        let uri = Uri::from_static("/");
        let source = TokenSource::bearer();
        assert!(matches!(
            source.extract(&Method::GET, &headers, &uri, false),
            Ok(None)
        ));
        let token = source
            .extract(&Method::GET, &headers, &uri, true)
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
        // Beside another source the header checks at once, as the other sources do.
        let beside = TokenSource::bearer().or(TokenSource::cookie("at"));
        assert_eq!(extract(&beside, &[("authorization", "Bearer a,b")]), bad);
        let found = beside
            .extract(
                &Method::GET,
                &headers(&[("authorization", "Bearer a.b.c")]),
                &Uri::from_static("/"),
                false,
            )
            .expect("a token")
            .expect("a token");
        assert!(!found.characters_unchecked());
        // Alone, characters outside `b64token` are the core's to refuse: the token comes
        // out marked for the check, which refuses it.
        for junk in [
            "Bearer a.b.c junk",
            "Bearer a,b",
            "Bearer =",
            "Bearer a.b.c",
        ] {
            let found = s
                .extract(
                    &Method::GET,
                    &headers(&[("authorization", junk)]),
                    &Uri::from_static("/"),
                    false,
                )
                .expect("a token")
                .expect("a token");
            assert!(found.characters_unchecked(), "{junk}");
            assert_eq!(
                is_b64token(found.as_str().as_bytes()),
                junk == "Bearer a.b.c",
                "{junk}"
            );
        }
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
            unchecked: false,
        };
        assert_eq!(t.as_str(), "secret");
        assert!(!format!("{t:?}").contains("secret"));
    }
}
