//! The request a proxy asks about, read from its check request: `X-Forwarded-Method` and
//! `X-Forwarded-Uri` (Traefik, Caddy), else `X-Original-Method` and `X-Original-URI`
//! (nginx), else the check request's own method and path (Envoy's HTTP `ext_authz`,
//! which prepends a configured prefix); or only the convention the file pins.

use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, Method, Uri};
use serde::Deserialize;

/// Where the original request is read from (`[gate] convention`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Convention {
    /// `X-Forwarded-*`, else `X-Original-*`, else the check request itself.
    #[default]
    Any,
    /// `X-Forwarded-Method` and `X-Forwarded-Uri` only (Traefik, Caddy).
    XForwarded,
    /// `X-Original-Method` and `X-Original-URI` only (nginx).
    XOriginal,
    /// The check request's own method and path only (Envoy).
    Request,
}

const X_FORWARDED: (HeaderName, HeaderName) = (
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("x-forwarded-method"),
);
const X_ORIGINAL: (HeaderName, HeaderName) = (
    HeaderName::from_static("x-original-uri"),
    HeaderName::from_static("x-original-method"),
);

impl Convention {
    /// The header pairs looked for, in order, and whether the check request itself is
    /// the last resort.
    fn headers(self) -> (&'static [(HeaderName, HeaderName)], bool) {
        static BOTH: [(HeaderName, HeaderName); 2] = [X_FORWARDED, X_ORIGINAL];
        static FORWARDED: [(HeaderName, HeaderName); 1] = [X_FORWARDED];
        static ORIGINAL: [(HeaderName, HeaderName); 1] = [X_ORIGINAL];
        match self {
            Self::Any => (&BOTH, true),
            Self::XForwarded => (&FORWARDED, false),
            Self::XOriginal => (&ORIGINAL, false),
            Self::Request => (&[], true),
        }
    }
}

/// Rewrites `parts` into the original request: its method, and its path without the
/// query (the query takes no part in a decision, and DPoP's `htu` leaves it out).
///
/// # Errors
///
/// Why the original request cannot be read one way: a convention's header given twice
/// or missing, a URI that is not a path or has a fragment, a method that is not one or
/// is not in upper case (frameworks read `post` as POST, routes would not), a check
/// path without the configured prefix.
pub(crate) fn rewrite(
    parts: &mut Parts,
    convention: Convention,
    prefix: Option<&str>,
) -> Result<(), &'static str> {
    let (method, path) = original(
        &parts.method,
        &parts.uri,
        &parts.headers,
        convention,
        prefix,
    )?;
    if method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err("a method not in upper case");
    }
    parts.method = method;
    parts.uri = Uri::from(path);
    Ok(())
}

/// The method and path the convention finds, as they are written.
fn original(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    convention: Convention,
    prefix: Option<&str>,
) -> Result<(Method, PathAndQuery), &'static str> {
    let (pairs, itself) = convention.headers();
    for (uri_header, method_header) in pairs {
        let Some(forwarded) = one(headers, uri_header)? else {
            continue;
        };
        let method = match one(headers, method_header)? {
            Some(name) => {
                Method::from_bytes(name).map_err(|_| "a forwarded method that is not one")?
            }
            None => method.clone(),
        };
        return Ok((method, path_of(forwarded)?));
    }
    if !itself {
        return Err("no forwarded URI header of the configured convention");
    }
    let own = uri.path();
    let path = match prefix {
        None => own,
        Some(prefix) => match own.strip_prefix(prefix) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => return Err("a check path without the configured prefix"),
        },
    };
    Ok((method.clone(), path_of(path.as_bytes())?))
}

/// A header's one value: `None` when absent, an error when it comes twice (a client's
/// copy beside the proxy's).
fn one<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a [u8]>, &'static str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err("a forwarded request header given twice");
    }
    Ok(first.map(http::HeaderValue::as_bytes))
}

/// The path of an origin-form request target, without its query. A fragment is
/// refused: it is never sent by a client, and a path cut at `#` here would reach the
/// upstream whole.
fn path_of(target: &[u8]) -> Result<PathAndQuery, &'static str> {
    if target.contains(&b'#') {
        return Err("a forwarded URI with a fragment");
    }
    let target =
        PathAndQuery::try_from(target).map_err(|_| "a forwarded URI that is not a path")?;
    if !target.path().starts_with('/') {
        return Err("a forwarded URI that is not a path");
    }
    PathAndQuery::try_from(target.path()).map_err(|_| "a forwarded URI that is not a path")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        prefix: Option<&str>,
    ) -> Result<(String, String), &'static str> {
        pinned(Convention::Any, method, uri, headers, prefix)
    }

    fn pinned(
        convention: Convention,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        prefix: Option<&str>,
    ) -> Result<(String, String), &'static str> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap();
        let (mut parts, ()) = request.into_parts();
        parts.headers = map;
        rewrite(&mut parts, convention, prefix)
            .map(|()| (parts.method.to_string(), parts.uri.to_string()))
    }

    fn ok(method: &str, path: &str) -> Result<(String, String), &'static str> {
        Ok((method.to_owned(), path.to_owned()))
    }

    #[test]
    fn each_proxy_convention_is_read_and_the_query_dropped() {
        let traefik = [
            ("x-forwarded-method", "POST"),
            ("x-forwarded-uri", "/documents/7?x=1"),
        ];
        assert_eq!(read("GET", "/", &traefik, None), ok("POST", "/documents/7"));
        let nginx = [("x-original-method", "DELETE"), ("x-original-uri", "/a?b")];
        assert_eq!(read("GET", "/auth", &nginx, None), ok("DELETE", "/a"));
        // The X-Forwarded pair wins over the nginx one.
        let both = [
            ("x-original-uri", "/nginx"),
            ("x-forwarded-uri", "/traefik"),
        ];
        assert_eq!(read("GET", "/", &both, None), ok("GET", "/traefik"));
        // Envoy: the check request itself, its prefix stripped at a segment boundary.
        assert_eq!(
            read("PUT", "/check/documents?q", &[], Some("/check")),
            ok("PUT", "/documents")
        );
        assert_eq!(read("GET", "/check", &[], Some("/check")), ok("GET", "/"));
        assert!(read("GET", "/checked", &[], Some("/check")).is_err());
        assert!(read("GET", "/documents", &[], Some("/check")).is_err());
        assert_eq!(
            read("GET", "/documents", &[], None),
            ok("GET", "/documents")
        );
    }

    #[test]
    fn a_request_that_cannot_be_read_one_way_is_refused() {
        let twice = [("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/b")];
        assert!(read("GET", "/", &twice, None).is_err());
        let method_twice = [
            ("x-original-uri", "/a"),
            ("x-original-method", "GET"),
            ("x-original-method", "POST"),
        ];
        assert!(read("GET", "/", &method_twice, None).is_err());
        for target in ["documents", "*", "http://evil/admin", "/a b"] {
            let headers = [("x-forwarded-uri", target)];
            assert!(read("GET", "/", &headers, None).is_err(), "{target}");
        }
        let bad_method = [("x-forwarded-uri", "/a"), ("x-forwarded-method", "G(T")];
        assert!(read("GET", "/", &bad_method, None).is_err());
    }

    #[test]
    fn a_pinned_convention_reads_nothing_else() {
        let both = [
            ("x-forwarded-uri", "/public/x"),
            ("x-original-uri", "/documents"),
        ];
        assert_eq!(
            pinned(Convention::XOriginal, "GET", "/", &both, None),
            ok("GET", "/documents")
        );
        assert_eq!(
            pinned(Convention::XForwarded, "GET", "/", &both, None),
            ok("GET", "/public/x")
        );
        assert_eq!(
            pinned(
                Convention::Request,
                "GET",
                "/check/a",
                &both,
                Some("/check")
            ),
            ok("GET", "/a")
        );
        // The pinned headers missing: the proxy is not the one configured.
        assert!(pinned(Convention::XOriginal, "GET", "/a", &[], None).is_err());
        assert!(pinned(Convention::XForwarded, "GET", "/a", &both[1..], None).is_err());
    }

    #[test]
    fn lower_case_methods_and_fragments_are_refused() {
        let lower = [("x-forwarded-uri", "/a"), ("x-forwarded-method", "post")];
        assert!(read("GET", "/", &lower, None).is_err());
        assert!(read("get", "/a", &[], None).is_err());
        let fragment = [("x-original-uri", "/public#/../admin")];
        assert!(read("GET", "/", &fragment, None).is_err());
        let custom = [
            ("x-forwarded-uri", "/a"),
            ("x-forwarded-method", "M-SEARCH"),
        ];
        assert_eq!(read("GET", "/", &custom, None), ok("M-SEARCH", "/a"));
    }
}
