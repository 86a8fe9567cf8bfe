//! Paths that a router, a proxy and an upstream may read differently: refused before a
//! decision by path is made, so that a rule written for `/public/` cannot be reached
//! by a path another component reads as `/private`.

/// Why `path` is ambiguous, or `None` when it is not: an encoded slash, backslash, NUL,
/// `;` or `%` (a second decoding would read it), an overlong UTF-8 lead byte, a `%` not
/// followed by two hex digits, a backslash, a `.` or `..` segment (also
/// percent-encoded), a `;` parameter, or an empty segment (`//` inside the path; a
/// trailing slash is not one).
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
    for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'%') {
        let (Some(&high), Some(&low)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
            return Some("a '%' without two hex digits");
        };
        if !high.is_ascii_hexdigit() || !low.is_ascii_hexdigit() {
            return Some("a '%' without two hex digits");
        }
        match (high, low.to_ascii_uppercase()) {
            (b'2', b'F') => return Some("an encoded slash"),
            (b'5', b'C') => return Some("an encoded backslash"),
            (b'0', b'0') => return Some("an encoded NUL"),
            (b'3', b'B') => return Some("an encoded ';'"),
            // Decoded once, it is a '%' that a second decoding reads again.
            (b'2', b'5') => return Some("an encoded '%'"),
            // Overlong UTF-8 for '/', '.' and the like.
            (b'c' | b'C', b'0' | b'1') => return Some("an overlong UTF-8 sequence"),
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
            "/public/..%252Fadmin",
            "/public/%%32%66admin",
            "/public/%c0%afadmin",
            "/public/%3Bx",
            "/public/%zz",
            "/public/%2",
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
            "/caf%C3%A9",
            "",
        ] {
            assert_eq!(ambiguity(path), None, "{path}");
        }
    }
}
