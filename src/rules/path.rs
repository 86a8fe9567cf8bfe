//! Paths that a router, a proxy and an upstream may read differently: refused before a
//! decision by path is made, so that a rule written for `/public/` cannot be reached
//! by a path another component reads as `/private`.

/// Why a router, a proxy or an upstream may read `path` as another path, or `None` when
/// none would: an encoded slash, backslash, NUL, `;` or `%` (a second decoding would read
/// it), an encoded character that needs no encoding (`%41` for `A`: one component
/// decodes it before matching, another matches the bytes), an overlong UTF-8 sequence,
/// a `%` not followed by two hex digits, a backslash, a `.` or `..` segment (also
/// percent-encoded), a `;` parameter, or an empty segment (`//` inside the path; a
/// trailing slash is not one).
///
/// The layer asks it of every request an exemption would let through; a service that
/// decides by path on its own (a proxy's decision endpoint, a router of your own) asks
/// it before deciding and refuses with
/// [`ErrorKind::AmbiguousPath`](crate::ErrorKind::AmbiguousPath).
///
/// ```
/// use tower_jwt_auth::rules::path_ambiguity;
///
/// assert_eq!(path_ambiguity("/public/..%2Fadmin"), Some("an encoded slash"));
/// assert_eq!(path_ambiguity("/%61dmin"), Some("an encoded character that needs no encoding"));
/// assert_eq!(path_ambiguity("/documents/7/"), None);
/// ```
#[must_use]
pub fn path_ambiguity(path: &str) -> Option<&'static str> {
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
            // Three and four bytes where fewer would do: E0 then 80-9F, F0 then 80-8F.
            (b'e' | b'E', b'0') if continuation(bytes, i + 3, b"89") => {
                return Some("an overlong UTF-8 sequence");
            }
            (b'f' | b'F', b'0') if continuation(bytes, i + 3, b"8") => {
                return Some("an overlong UTF-8 sequence");
            }
            _ if unreserved(hex(high) << 4 | hex(low)) => {
                return Some("an encoded character that needs no encoding");
            }
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

/// Whether `%XY` at `at` encodes a byte whose high hex digit is one of `high`.
fn continuation(bytes: &[u8], at: usize, high: &[u8]) -> bool {
    matches!(bytes.get(at..at + 3), Some([b'%', h, _]) if high.contains(&h.to_ascii_uppercase()))
}

/// The value of a hex digit already checked to be one.
fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        _ => (digit | 0x20) - b'a' + 10,
    }
}

/// RFC 3986 section 2.3: letters, digits, `-`, `.`, `_`, `~`.
pub(crate) fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::path_ambiguity as ambiguity;

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
            "/%64ocuments/7",
            "/public/%7e",
            "/public/a%2Eb",
            "/public/%e0%80%afadmin",
            "/public/%F0%80%80%AFadmin",
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
