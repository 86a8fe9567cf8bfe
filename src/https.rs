//! Which URLs the crate fetches from or publishes: https, and plain http only for
//! loopback hosts (or when the application explicitly allows it).
//!
//! Loopback is decided on the parsed host, never on its spelling: `127.0.0.1`, `[::1]`
//! and `localhost` are loopback; `127.evil.example` is a domain like any other.

use url::{Host, Url};

/// Whether the URL's host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(feature = "remote")]
/// Checks that a URL may be fetched: https, or http for loopback hosts or when
/// `allow_http` is set.
///
/// # Errors
///
/// A message naming the URL when it may not be fetched.
pub(crate) fn check_fetchable(url: &Url, allow_http: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(url) => Ok(()),
        _ => Err(format!(
            "{url} is not https (plain http is allowed for loopback only, or everywhere with JwtAuthConfigBuilder::dangerous().allow_plain_http(), never in production)"
        )),
    }
}

#[cfg(feature = "remote")]
/// Whether a redirect from `from` to `to` may be followed: to https, or to plain http
/// only from a loopback URL to a loopback URL, or when plain http is allowed.
pub(crate) fn redirect_allowed(from: &Url, to: &Url, allow_http: bool) -> bool {
    match to.scheme() {
        "https" => true,
        "http" => allow_http || (is_loopback(from) && is_loopback(to)),
        _ => false,
    }
}

#[cfg(feature = "introspection")]
/// Whether a response came from the URL that was asked for: same scheme, host, port,
/// path and query. The client hands back a URL it parsed again (without userinfo or
/// fragment), so the two are compared by the parts that pick the server and resource.
pub(crate) fn same_target(asked: &Url, answered: &Url) -> bool {
    asked.scheme() == answered.scheme()
        && asked.host() == answered.host()
        && asked.port_or_known_default() == answered.port_or_known_default()
        && asked.path() == answered.path()
        && asked.query() == answered.query()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Url {
        Url::parse(u).expect("url")
    }

    #[test]
    fn loopback_is_decided_on_the_parsed_host() {
        assert!(is_loopback(&url("http://127.0.0.1:8080/keys")));
        assert!(is_loopback(&url("http://127.8.9.10/keys")));
        assert!(is_loopback(&url("http://[::1]/keys")));
        assert!(is_loopback(&url("http://LOCALHOST/keys")));
        assert!(!is_loopback(&url("http://127.evil.example/keys")));
        assert!(!is_loopback(&url("http://localhost.evil.example/keys")));
        assert!(!is_loopback(&url("http://0.0.0.0/keys")));
        assert!(!is_loopback(&url("http://[::ffff:7f00:1]/keys")));
    }

    #[cfg(feature = "remote")]
    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        let ok = |u: &str| check_fetchable(&url(u), false).is_ok();
        assert!(ok("https://idp.example.com/keys"));
        assert!(ok("http://127.0.0.1:8080/keys"));
        assert!(ok("http://localhost/keys"));
        assert!(ok("http://[::1]/keys"));
        assert!(!ok("http://idp.example.com/keys"));
        assert!(!ok("http://127.evil.example/keys"));
        assert!(!ok("ftp://idp.example.com/keys"));
        assert!(check_fetchable(&url("http://idp.example.com/keys"), true).is_ok());
    }

    #[cfg(feature = "remote")]
    #[test]
    fn redirects_never_downgrade_to_plain_http() {
        let https = url("https://idp.example.com/keys");
        let local = url("http://127.0.0.1:1/keys");
        assert!(redirect_allowed(
            &https,
            &url("https://cdn.example.com/k"),
            false
        ));
        assert!(!redirect_allowed(
            &https,
            &url("http://cdn.example.com/k"),
            false
        ));
        assert!(!redirect_allowed(&https, &local, false));
        assert!(redirect_allowed(
            &local,
            &url("http://127.0.0.1:2/k"),
            false
        ));
        assert!(!redirect_allowed(&local, &url("http://0.0.0.0:2/k"), false));
        assert!(redirect_allowed(&local, &url("http://0.0.0.0:2/k"), true));
    }

    #[cfg(feature = "introspection")]
    #[test]
    fn a_response_from_another_url_is_not_the_one_asked_for() {
        let asked = url("https://idp.example.com/introspect?v=1");
        assert!(same_target(&asked, &asked));
        assert!(same_target(
            &asked,
            &url("https://IDP.example.com:443/introspect?v=1#f")
        ));
        assert!(same_target(
            &url("https://client:pw@idp.example.com/introspect?v=1"),
            &asked
        ));
        for other in [
            "http://idp.example.com/introspect?v=1",
            "https://idp.example.com:8443/introspect?v=1",
            "https://cdn.example.com/introspect?v=1",
            "https://idp.example.com/introspect/?v=1",
            "https://idp.example.com/introspect",
            "https://idp.example.com/introspect?v=2",
        ] {
            assert!(!same_target(&asked, &url(other)), "{other}");
        }
    }
}
