//! Paths as configuration names them: exactly, or as a prefix when they end in `*`.

use std::fmt;
use std::str::FromStr;

/// A path, or a path prefix when written with a final `*`: `/events` matches `/events`
/// and `/events/`; `/documents*` matches `/documents`, `/documents/7` and
/// `/documents-old`.
///
/// Used for the paths that take query tokens
/// ([`query_token_paths`](crate::JwtAuthConfigBuilder::query_token_paths)) and by the
/// `jwt-auth gate` routes. Matching is on the path the layer sees (under
/// `Router::nest`, without the nest's prefix), byte for byte but for the one trailing
/// `/` an exact path also takes. A pattern that holds a query, a fragment, or a form
/// [`path_ambiguity`](crate::rules::path_ambiguity) refuses could never match a
/// request that gets past it, and is refused.
///
/// ```
/// use tower_jwt_auth::rules::PathPattern;
///
/// let events: PathPattern = "/events".parse()?;
/// assert!(events.matches("/events") && events.matches("/events/"));
/// assert!(!events.matches("/events/7"));
/// let documents: PathPattern = "/documents*".parse()?;
/// assert!(documents.matches("/documents-old"));
/// # Ok::<(), tower_jwt_auth::rules::InvalidPathPattern>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// The path, or the prefix before the final `*`.
    path: Box<str>,
    prefix: bool,
}

impl PathPattern {
    /// Whether `path` (no query string) is this path, with or without one trailing
    /// `/` (most routers take `/events/` for `/events`), or starts with this prefix.
    #[must_use]
    pub fn matches(&self, path: &str) -> bool {
        if self.prefix {
            path.starts_with(&*self.path)
        } else {
            bare(path) == bare(&self.path)
        }
    }
}

/// A path without its one trailing `/` (the root stays `/`).
fn bare(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(rest) if !rest.is_empty() => rest,
        _ => path,
    }
}

impl FromStr for PathPattern {
    type Err = InvalidPathPattern;

    /// # Errors
    ///
    /// A path that does not start with `/`, with a `*` anywhere but at its end, with a
    /// `?` or `#`, or of a form [`path_ambiguity`](crate::rules::path_ambiguity)
    /// refuses.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if !text.starts_with('/') {
            return Err(InvalidPathPattern(format!(
                "path {text:?} must start with '/'"
            )));
        }
        if text.contains(['?', '#']) {
            return Err(InvalidPathPattern(format!(
                "path {text:?}: a path has no query or fragment"
            )));
        }
        let (path, prefix) = match text.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (text, false),
        };
        if path.contains('*') {
            return Err(InvalidPathPattern(format!(
                "path {text:?}: '*' may only end a path, where it makes it a prefix"
            )));
        }
        if let Some(why) = super::path_ambiguity(path) {
            return Err(InvalidPathPattern(format!(
                "path {text:?} has {why}: no request of that form gets this far"
            )));
        }
        Ok(Self {
            path: path.into(),
            prefix,
        })
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if self.prefix {
            f.write_str("*")?;
        }
        Ok(())
    }
}

/// Why a text is not a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPathPattern(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> PathPattern {
        text.parse().expect("pattern")
    }

    #[test]
    fn exact_paths_take_one_trailing_slash_and_nothing_more() {
        let events = pattern("/events");
        assert!(events.matches("/events"));
        assert!(events.matches("/events/"));
        assert!(!events.matches("/events//"));
        assert!(!events.matches("/events/7"));
        assert!(!events.matches("/eventsx"));
        assert!(pattern("/").matches("/"));
        assert!(!pattern("/").matches("/a"));
    }

    #[test]
    fn a_final_star_makes_a_prefix() {
        let documents = pattern("/documents*");
        for path in ["/documents", "/documents/7", "/documents-old"] {
            assert!(documents.matches(path), "{path}");
        }
        assert!(!documents.matches("/document"));
        assert_eq!(documents.to_string(), "/documents*");
        assert!(pattern("/*").matches("/anything"));
    }

    #[test]
    fn patterns_that_cannot_mean_anything_are_refused() {
        for (text, why) in [
            ("events", "must start with '/'"),
            ("", "must start with '/'"),
            ("/a*/b", "'*' may only end a path"),
            ("/**", "'*' may only end a path"),
            ("/events?x=1", "no query or fragment"),
            ("/a/../b*", "a dot segment"),
            ("/a%2Fb", "an encoded slash"),
        ] {
            let error = text.parse::<PathPattern>().expect_err(text).to_string();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
