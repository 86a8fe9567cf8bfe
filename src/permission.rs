//! What a caller may do: the [`Permissions`] of a verified token, read from the
//! configured claims, and the [`Requirement`] a guard checks against them.
//!
//! The layer computes the permission set from the verified payload, whatever the claims
//! type: the union of `permissions` (an array, as Auth0 sends it), `scope` (a
//! space-delimited string, RFC 8693 and RFC 9068) and `scp` (a string or an array, as
//! Entra ID and Okta send it), plus any configured claim paths such as Entra's `roles` or
//! Keycloak's `realm_access.roles`. Matching is exact: `writer` never grants `write`.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::text::Json;

/// The permissions of a verified request, inserted into request extensions by the layer.
///
/// ```
/// # use tower_jwt_auth::Permissions;
/// let permissions = Permissions::from_iter(["read", "write"]);
/// assert!(permissions.contains("write"));
/// assert!(!permissions.contains("writ"));
/// assert!(permissions.contains_all(["read", "write"]));
/// assert!(permissions.contains_any(["admin", "read"]));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    /// Sorted and deduplicated, for binary search.
    set: Arc<[Box<str>]>,
}

impl Permissions {
    /// Whether the set holds `permission`, compared exactly.
    #[must_use]
    pub fn contains(&self, permission: &str) -> bool {
        self.set.binary_search_by(|p| (**p).cmp(permission)).is_ok()
    }

    /// Whether the set holds every one of `permissions`.
    pub fn contains_all<'a>(&self, permissions: impl IntoIterator<Item = &'a str>) -> bool {
        permissions.into_iter().all(|p| self.contains(p))
    }

    /// Whether the set holds at least one of `permissions`.
    pub fn contains_any<'a>(&self, permissions: impl IntoIterator<Item = &'a str>) -> bool {
        permissions.into_iter().any(|p| self.contains(p))
    }

    /// The permissions, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.set.iter().map(AsRef::as_ref)
    }

    /// The number of permissions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn from_vec(mut all: Vec<Box<str>>) -> Self {
        all.sort_unstable();
        all.dedup();
        Self { set: all.into() }
    }
}

impl<S: Into<Box<str>>> FromIterator<S> for Permissions {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().map(Into::into).collect())
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A claim that holds permissions: a top-level name, or a path into nested objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimPath {
    pub(crate) segments: Vec<Box<str>>,
}

impl ClaimPath {
    pub(crate) fn new<I: IntoIterator<Item = S>, S: Into<Box<str>>>(segments: I) -> Option<Self> {
        let segments: Vec<Box<str>> = segments.into_iter().map(Into::into).collect();
        (!segments.is_empty() && segments.iter().all(|s| !s.is_empty()))
            .then_some(Self { segments })
    }

    pub(crate) fn dotted(path: &str) -> Option<Self> {
        Self::new(path.split('.'))
    }

    /// The claims read by default: `permissions`, `scope`, `scp`.
    pub(crate) fn defaults() -> Vec<Self> {
        ["permissions", "scope", "scp"]
            .into_iter()
            .filter_map(|name| Self::new([name]))
            .collect()
    }
}

/// What the payload pass reads by name: the configured permission claims, and the
/// capture list (the permission claims' top-level names first, then those of claim
/// rules and forwarded claims).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PermissionSources {
    pub(crate) paths: Vec<ClaimPath>,
    /// How many names of `capture` are permission claims'.
    pub(crate) tops: usize,
    pub(crate) capture: Vec<Box<str>>,
}

impl PermissionSources {
    /// The top-level names of `paths`, without repeats.
    pub(crate) fn tops_of(paths: &[ClaimPath]) -> Vec<Box<str>> {
        let mut tops: Vec<Box<str>> = Vec::new();
        for path in paths {
            if !tops.contains(&path.segments[0]) {
                tops.push(path.segments[0].clone());
            }
        }
        tops
    }

    /// Sources that capture the permission claims alone.
    #[cfg(test)]
    pub(crate) fn new(paths: Vec<ClaimPath>) -> Self {
        let capture = Self::tops_of(&paths);
        Self {
            paths,
            tops: capture.len(),
            capture,
        }
    }

    /// Where the permission claims are in `payload`, from what the payload pass
    /// captured (`(index in the capture list, value)`, the value borrowed from
    /// `payload`).
    pub(crate) fn locate(
        &self,
        payload: &[u8],
        captured: &[(usize, Json<'_>)],
    ) -> Vec<(usize, Range<usize>)> {
        let base = payload.as_ptr() as usize;
        captured
            .iter()
            .filter(|(index, _)| *index < self.tops)
            .filter_map(|(index, raw)| {
                let start = (raw.get().as_ptr() as usize).checked_sub(base)?;
                let end = start + raw.get().len();
                (end <= payload.len()).then_some((*index, start..end))
            })
            .collect()
    }

    /// The permission set from the values at `found` in `payload`. Values of the wrong
    /// shape grant nothing.
    pub(crate) fn collect(&self, payload: &[u8], found: &[(usize, Range<usize>)]) -> Permissions {
        let mut all = Vec::new();
        for (index, range) in found {
            let top = self.capture[..self.tops].get(*index);
            let (Some(top), Some(raw)) = (top, payload.get(range.clone())) else {
                continue;
            };
            let Ok(raw) = serde_json::from_slice::<&RawValue>(raw) else {
                continue;
            };
            for path in self.paths.iter().filter(|p| p.segments[0] == *top) {
                if path.segments.len() == 1 {
                    let _ = raw.deserialize_any(Collect(&mut all));
                } else if let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                    let nested = path.segments[1..]
                        .iter()
                        .try_fold(&value, |v, segment| v.get(&**segment));
                    if let Some(nested) = nested {
                        let _ = nested.deserialize_any(Collect(&mut all));
                    }
                }
            }
        }
        Permissions::from_vec(all)
    }
}

/// A visitor that adds the words of a string, or the string elements of an array.
struct Collect<'a>(&'a mut Vec<Box<str>>);

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a space-delimited string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.extend(v.split_ascii_whitespace().map(Into::into));
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<serde_json::Value>()? {
            if let serde_json::Value::String(s) = element {
                self.0.push(s.into());
            }
        }
        Ok(())
    }
}

/// Which permissions a guard needs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Requirement {
    All(Arc<[Box<str>]>),
    Any(Arc<[Box<str>]>),
}

impl Requirement {
    pub(crate) fn is_met(&self, permissions: &Permissions) -> bool {
        match self {
            Self::All(needed) => needed.iter().all(|p| permissions.contains(p)),
            Self::Any(needed) => needed.iter().any(|p| permissions.contains(p)),
        }
    }

    pub(crate) fn names(&self) -> &[Box<str>] {
        match self {
            Self::All(needed) | Self::Any(needed) => needed,
        }
    }

    pub(crate) fn is_any_of(&self) -> bool {
        matches!(self, Self::Any(needed) if needed.len() > 1)
    }
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, names) = match self {
            Self::All(n) => ("all", n),
            Self::Any(n) => ("any", n),
        };
        write!(
            f,
            "{kind}{:?}",
            names.iter().map(AsRef::as_ref).collect::<Vec<&str>>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_of_sources_with_exact_matching() {
        let paths = {
            let mut p = ClaimPath::defaults();
            p.extend(ClaimPath::dotted("realm_access.roles"));
            p
        };
        let sources = PermissionSources::new(paths);
        assert_eq!(sources.tops, 4);
        let payload = br#"{"permissions":["documents:write"],"scope":"read  write","scp":["a b", 7],"realm_access":{"roles":["admin"],"other":1},"roles":["no"]}"#;
        let (_, registered) =
            crate::payload::parse::<serde::de::IgnoredAny>(payload, false, &sources.capture)
                .expect("parses");
        let found = sources.locate(payload, &registered.captured);
        assert_eq!(found.len(), 4);
        let p = sources.collect(payload, &found);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            ["a b", "admin", "documents:write", "read", "write"]
        );
        assert!(!p.contains("writ") && !p.contains("writer") && !p.contains("a"));
    }

    #[test]
    fn requirement_all_and_any() {
        let p = Permissions::from_iter(["read"]);
        assert!(Requirement::All(Arc::from([Box::from("read")])).is_met(&p));
        assert!(!Requirement::All(Arc::from([Box::from("read"), Box::from("write")])).is_met(&p));
        assert!(Requirement::Any(Arc::from([Box::from("write"), Box::from("read")])).is_met(&p));
    }
}
