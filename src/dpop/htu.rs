//! The `htu` comparison (RFC 9449 section 4.3, step 9): the proof's URL and the request's
//! public URL, both without query and fragment, after RFC 3986 section 6.2.2 (case,
//! percent-encoding, dot segments) and 6.2.3 (default port, empty path) normalisation.

use url::Url;

/// The normalised form of a URL for comparison: scheme, host and port (the `url` crate
/// lowercases and drops default ports), and the path with dot segments removed,
/// percent-encoded unreserved characters decoded and other escapes in upper case. `None`
/// when it is not an absolute http(s) URL.
pub(crate) fn normalise(text: &str) -> Option<String> {
    let mut url = Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = normalise_escapes(url.path());
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!(
        "{}://{}{port}{path}",
        url.scheme(),
        url.host_str()?
    ))
}

/// `%7e` → `~`, `%2f` → `%2F`: unreserved characters decoded, other escapes uppercased.
fn normalise_escapes(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| (*b as char).to_digit(16)),
                bytes.get(i + 2).and_then(|b| (*b as char).to_digit(16)),
            )
        {
            let byte = u8::try_from(h * 16 + l).unwrap_or(0);
            if crate::rules::unreserved(byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
            i += 3;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

/// Whether a proof's `htu` names the request's public URL `request` (an absolute URL the
/// layer built or was given). Byte-identical up to the query is a match without parsing
/// (the common case: clients send the URL they call); otherwise both are normalised.
pub(crate) fn matches(proof: &str, request: &str) -> bool {
    let without_query = |url: &str| -> usize { url.find(['?', '#']).unwrap_or(url.len()) };
    if proof[..without_query(proof)] == request[..without_query(request)] {
        return true;
    }
    match (normalise(proof), normalise(request)) {
        (Some(proof), Some(request)) => proof == request,
        _ => false,
    }
}

/// The request's public URL: the configured base followed by the request path.
pub(crate) fn join(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("{base}/{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_urls_normalise_alike() {
        let canonical = normalise("https://api.example.com/a/b").expect("url");
        for same in [
            "HTTPS://API.Example.COM/a/b",
            "https://api.example.com:443/a/b",
            "https://api.example.com/a/./c/../b",
            "https://api.example.com/%61/b?q=1#frag",
        ] {
            assert_eq!(
                normalise(same).as_deref(),
                Some(canonical.as_str()),
                "{same}"
            );
        }
        assert_ne!(
            normalise("https://api.example.com/a/B"),
            Some(canonical.clone())
        );
        assert_ne!(
            normalise("http://api.example.com/a/b"),
            Some(canonical.clone())
        );
        assert_ne!(
            normalise("https://api.example.com:8443/a/b"),
            Some(canonical)
        );
        assert_eq!(
            normalise("https://h/%2f%7e").as_deref(),
            Some("https://h/%2F~")
        );
        assert_eq!(normalise("https://h").as_deref(), Some("https://h/"));
        assert!(normalise("ftp://h/").is_none());
        assert!(normalise("/relative").is_none());
    }

    #[test]
    fn matching_takes_the_fast_path_or_normalises() {
        assert!(matches("https://h/a?x=1", "https://h/a"));
        assert!(matches("HTTPS://H:443/a", "https://h/a"));
        assert!(!matches("https://h/b", "https://h/a"));
        assert!(!matches("garbage", "https://h/a"));
    }

    #[test]
    fn the_base_and_the_path_join_with_one_slash() {
        assert_eq!(join("https://h/api/", "/x"), "https://h/api/x");
        assert_eq!(join("https://h", "/x"), "https://h/x");
    }
}
