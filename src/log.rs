//! Text from outside in log fields: a token's `kid`, a JWK's `kid`. Printed through
//! `Debug` only, quoted, escaped (a CR or LF cannot start a forged log line) and cut to
//! a bounded length, so a log line stays one line of bounded size whatever was sent.

use std::fmt;

/// The most characters of outside text a log field shows.
const MAX_CHARS: usize = 64;

/// Outside text for a log field: `tracing::debug!(kid = ?LogKid(kid), ..)`.
pub(crate) struct LogKid<'a>(pub(crate) &'a str);

impl fmt::Debug for LogKid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_CHARS) {
            fmt::Display::fmt(&c.escape_debug(), f)?;
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_and_truncated() {
        assert_eq!(format!("{:?}", LogKid("k1")), "\"k1\"");
        let forged = format!("{:?}", LogKid("a\r\nINFO forged \"line\""));
        assert!(!forged.contains('\n') && !forged.contains('\r'), "{forged}");
        assert_eq!(forged, r#""a\r\nINFO forged \"line\"""#);
        let long = format!("{:?}", LogKid(&"x".repeat(1000)));
        assert_eq!(long.chars().count(), MAX_CHARS + 3);
    }
}
