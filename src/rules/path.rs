//! Paths that a router, a proxy and an upstream may read differently: refused before a
//! decision by path is made, so that a rule written for `/public/` cannot be reached
//! by a path another component reads as `/private`.

/// Why `path` is ambiguous, or `None` when it is not: an encoded slash, backslash or
/// NUL, a backslash, a `.` or `..` segment (also percent-encoded), a `;` parameter, or
/// an empty segment (`//` inside the path; a trailing slash is not one).
pub(crate) fn ambiguity(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    if bytes.contains(&b'\\') {
        return Some("a backslash");
    }
    if bytes.contains(&b';') {
        return Some("a ';' parameter");
    }
    if bytes.contains(&0) {
        return Some("a NUL");
    }
    for window in bytes.windows(3).filter(|w| w[0] == b'%') {
        match (window[1], window[2].to_ascii_uppercase()) {
            (b'2', b'F') => return Some("an encoded slash"),
            (b'5', b'C') => return Some("an encoded backslash"),
            (b'0', b'0') => return Some("an encoded NUL"),
            _ => {}
        }
    }
    let inner = path.strip_prefix('/').unwrap_or(path);
    let segments: Vec<&str> = inner.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if segment.is_empty() && i != last {
            return Some("an empty segment");
        }
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Some("a dot segment");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::ambiguity;

    #[test]
    fn every_confusing_shape_is_named_and_plain_paths_pass() {
        for path in [
            "/public/..%2Fprivate",
            "/public/%2fprivate",
            "/public/%5Cprivate",
            "/public\\private",
            "/public/../private",
            "/public/./x",
            "/public/%2e%2e/private",
            "/public/%2E/x",
            "/public/x;jsessionid=1",
            "/public//x",
            "//public/x",
            "/public/%00",
            "/public/..",
        ] {
            assert!(ambiguity(path).is_some(), "{path}");
        }
        for path in [
            "/",
            "/public/x",
            "/public/",
            "/public/a.b",
            "/public/..x",
            "/a%20b",
            "/%2",
            "",
        ] {
            assert_eq!(ambiguity(path), None, "{path}");
        }
    }
}
