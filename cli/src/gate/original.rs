//! The request a proxy asks about, read from its check request: `X-Forwarded-Method` and
//! `X-Forwarded-Uri` (Traefik, Caddy), else `X-Original-Method` and `X-Original-URI`
//! (nginx), else the check request's own method and path (Envoy's HTTP `ext_authz`,
//! which prepends a configured prefix).

use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, Method, Uri};

/// The two header conventions, in the order they are looked for.
const CONVENTIONS: [(HeaderName, HeaderName); 2] = [
    (
        HeaderName::from_static("x-forwarded-uri"),
        HeaderName::from_static("x-forwarded-method"),
    ),
    (
        HeaderName::from_static("x-original-uri"),
        HeaderName::from_static("x-original-method"),
    ),
];

/// Rewrites `parts` into the original request: its method, and its path without the
/// query (the query takes no part in a decision, and DPoP's `htu` leaves it out).
///
/// # Errors
///
/// Why the original request cannot be read one way: a convention's header given twice,
/// a URI that is not a path, a method that is not one.
pub(crate) fn rewrite(parts: &mut Parts, prefix: Option<&str>) -> Result<(), &'static str> {
    let (method, path) = original(&parts.method, &parts.uri, &parts.headers, prefix)?;
    parts.method = method;
    parts.uri = Uri::from(path);
    Ok(())
}

fn original(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    prefix: Option<&str>,
) -> Result<(Method, PathAndQuery), &'static str> {
    for (uri_header, method_header) in &CONVENTIONS {
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
    let own = uri.path();
    let path = prefix
        .and_then(|prefix| own.strip_prefix(prefix))
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .map_or(own, |rest| if rest.is_empty() { "/" } else { rest });
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

/// The path of an origin-form request target, without its query.
fn path_of(target: &[u8]) -> Result<PathAndQuery, &'static str> {
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
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let uri: Uri = uri.parse().unwrap();
        original(&method, &uri, &map, prefix).map(|(m, p)| (m.to_string(), p.to_string()))
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
        assert_eq!(
            read("GET", "/checked", &[], Some("/check")),
            ok("GET", "/checked")
        );
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
}
