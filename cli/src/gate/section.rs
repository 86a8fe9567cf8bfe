//! The `[gate]` table of the settings file: which claims go back to the proxy, the path
//! prefix of Envoy's check requests, and the routes, each checked as it is read so that a
//! mistake is an error naming its path and line in the file.

use std::sync::Arc;

use http::{HeaderName, Method};
use serde::Deserialize;
use tower_jwt_auth::rules::{InvalidPathPattern, PathPattern};

use super::original::Convention;

/// The `[gate]` table as the file writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GateSection {
    /// Claims answered as `x-jwt-<name>` headers when a request is allowed.
    #[serde(default)]
    forward_claims: Vec<ClaimName>,
    /// Stripped from the check request's own path (Envoy's `path_prefix`).
    #[serde(default)]
    path_prefix: Option<PathPrefix>,
    /// Where the original request is read from.
    #[serde(default)]
    convention: Convention,
    /// The first route that matches a request decides it.
    #[serde(default)]
    routes: Vec<Route>,
}

impl GateSection {
    /// The claims to forward, each with the header it is answered in.
    pub(crate) fn forwarded(&self) -> impl Iterator<Item = (&str, &HeaderName)> {
        self.forward_claims
            .iter()
            .map(|claim| (&*claim.name, &claim.header))
    }

    /// The index of the first public route, if any.
    pub(crate) fn public_route(&self) -> Option<usize> {
        self.routes
            .iter()
            .position(|route| route.decision == Decision::Public)
    }

    /// The table compiled for requests.
    pub(crate) fn compile(self) -> Table {
        Table {
            forward: self.forward_claims.into_iter().map(|c| c.header).collect(),
            path_prefix: self.path_prefix.map(|p| p.0),
            convention: self.convention,
            routes: self.routes,
        }
    }
}

/// What requests read of the `[gate]` table; swapped whole on reload.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// The headers of the forwarded claims, copied from the admitted request to the 200.
    pub(crate) forward: Arc<[HeaderName]>,
    pub(crate) path_prefix: Option<Box<str>>,
    pub(crate) convention: Convention,
    pub(crate) routes: Vec<Route>,
}

impl Table {
    /// The first route that matches `method` and `path`, and its place in the list.
    pub(crate) fn route(&self, method: &Method, path: &str) -> Option<(usize, &Route)> {
        self.routes
            .iter()
            .enumerate()
            .find(|(_, route)| route.matches(method, path))
    }
}

/// A claim name and its header, `x-jwt-<name>` in lower case with `_` written `-`
/// (`client_id` is `x-jwt-client-id`): CGI-style upstreams read the two alike, and
/// nginx drops headers with `_` unless told otherwise.
#[derive(Debug)]
struct ClaimName {
    name: Box<str>,
    header: HeaderName,
}

impl<'de> Deserialize<'de> for ClaimName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let header = HeaderName::try_from(format!(
            "x-jwt-{}",
            name.to_ascii_lowercase().replace('_', "-")
        ))
        .ok()
        .filter(|_| !name.is_empty())
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{name:?} cannot name a header: use letters, digits, '-' and '_'"
            ))
        })?;
        Ok(Self {
            name: name.into(),
            header,
        })
    }
}

/// `/check`: starts with `/`, does not end with one.
#[derive(Debug)]
struct PathPrefix(Box<str>);

impl<'de> Deserialize<'de> for PathPrefix {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let prefix = String::deserialize(d)?;
        if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') {
            return Err(serde::de::Error::custom(
                "a path prefix starts with '/' and does not end with one, as \"/check\"",
            ));
        }
        Ok(Self(prefix.into()))
    }
}

/// One route: which requests it matches and what it asks of them.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RouteText")]
pub(crate) struct Route {
    /// The path, or a prefix when written with a final `*`.
    path: PathPattern,
    /// Empty: every method.
    methods: Vec<Method>,
    pub(crate) decision: Decision,
    /// Paths of ambiguous form are not refused on this route's account.
    pub(crate) allow_ambiguous_paths: bool,
}

/// What a route asks of the requests it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// No token needed; a token that is there must be valid.
    Public,
    /// A valid token with every one of these permissions (none: any valid token), spent
    /// on first use when `single_use`.
    Token {
        require: Vec<Box<str>>,
        single_use: bool,
    },
}

impl Route {
    /// An exact path matches with or without one trailing `/` (most routers take
    /// `/transfers/` for `/transfers`); a route for GET also matches HEAD, which
    /// frameworks answer with the GET handler.
    fn matches(&self, method: &Method, path: &str) -> bool {
        let path_matches = self.path.matches(path);
        let method_matches = self.methods.is_empty()
            || self.methods.contains(method)
            || (*method == Method::HEAD && self.methods.contains(&Method::GET));
        path_matches && method_matches
    }
}

/// A route as the file writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteText {
    path: String,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    require: Vec<String>,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    single_use: bool,
    #[serde(default)]
    allow_ambiguous_paths: bool,
}

impl TryFrom<RouteText> for Route {
    type Error = String;

    fn try_from(text: RouteText) -> Result<Self, String> {
        let path: PathPattern = text
            .path
            .parse()
            .map_err(|e: InvalidPathPattern| e.to_string())?;
        let methods = text
            .methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("{m:?} is not a method"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let decision = match (text.public, text.require.is_empty(), text.single_use) {
            (true, false, _) => {
                return Err("a public route cannot require permissions".to_owned());
            }
            (true, true, true) => {
                return Err("a public route cannot spend tokens (single_use)".to_owned());
            }
            (true, true, false) => Decision::Public,
            (false, _, single_use) => Decision::Token {
                require: text.require.into_iter().map(Into::into).collect(),
                single_use,
            },
        };
        Ok(Self {
            path,
            methods,
            decision,
            allow_ambiguous_paths: text.allow_ambiguous_paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(json: &str) -> Result<Table, String> {
        serde_json::from_str::<GateSection>(json)
            .map(GateSection::compile)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_star_makes_a_prefix_and_the_first_match_decides() {
        let table = table(
            r#"{"routes": [
                {"path": "/documents*", "methods": ["post"], "require": ["write"]},
                {"path": "/documents*", "require": ["read"]},
                {"path": "/health", "public": true}
            ]}"#,
        )
        .unwrap();
        let decision =
            |method: Method, path: &str| table.route(&method, path).map(|(_, r)| &r.decision);
        let write = Decision::Token {
            require: vec!["write".into()],
            single_use: false,
        };
        let read = Decision::Token {
            require: vec!["read".into()],
            single_use: false,
        };
        assert_eq!(decision(Method::POST, "/documents/7"), Some(&write));
        assert_eq!(decision(Method::GET, "/documents"), Some(&read));
        assert_eq!(decision(Method::GET, "/documents-old"), Some(&read));
        assert_eq!(decision(Method::GET, "/health"), Some(&Decision::Public));
        assert_eq!(decision(Method::GET, "/health/"), Some(&Decision::Public));
        assert_eq!(decision(Method::GET, "/health//"), None);
        assert_eq!(decision(Method::GET, "/health/x"), None);
        assert_eq!(decision(Method::GET, "/doc"), None);
    }

    #[test]
    fn a_get_route_covers_head_and_only_the_listed_methods() {
        let get = table(r#"{"routes": [{"path": "/a", "methods": ["GET"], "require": ["read"]}]}"#)
            .unwrap();
        assert!(get.route(&Method::GET, "/a").is_some());
        assert!(get.route(&Method::HEAD, "/a").is_some());
        assert!(get.route(&Method::PATCH, "/a").is_none());
        let post = table(r#"{"routes": [{"path": "/a", "methods": ["post"]}]}"#).unwrap();
        assert!(post.route(&Method::HEAD, "/a").is_none());
        assert!(post.route(&Method::POST, "/a").is_some());
    }

    #[test]
    fn routes_that_cannot_mean_one_thing_are_refused() {
        for (json, why) in [
            (
                r#"{"routes": [{"path": "documents"}]}"#,
                "must start with '/'",
            ),
            (r#"{"routes": [{"path": "/a*/b"}]}"#, "may only end a path"),
            (
                r#"{"routes": [{"path": "/a", "public": true, "require": ["x"]}]}"#,
                "cannot require",
            ),
            (
                r#"{"routes": [{"path": "/a", "public": true, "single_use": true}]}"#,
                "cannot spend",
            ),
            (
                r#"{"routes": [{"path": "/a", "methods": ["G T"]}]}"#,
                "not a method",
            ),
            (
                r#"{"routes": [{"path": "/a", "requires": ["x"]}]}"#,
                "unknown field",
            ),
            (r#"{"path_prefix": "/check/"}"#, "does not end with one"),
            (r#"{"forward_claims": ["a b"]}"#, "cannot name a header"),
            (r#"{"convention": "forwarded"}"#, "unknown variant"),
        ] {
            let error = table(json).unwrap_err();
            assert!(error.contains(why), "{json}: {error}");
        }
    }

    #[test]
    fn forwarded_claims_are_answered_as_x_jwt_headers() {
        let section: GateSection =
            serde_json::from_str(r#"{"forward_claims": ["sub", "Client_ID"]}"#).unwrap();
        let pairs: Vec<(String, String)> = section
            .forwarded()
            .map(|(claim, header)| (claim.to_owned(), header.to_string()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("sub".to_owned(), "x-jwt-sub".to_owned()),
                ("Client_ID".to_owned(), "x-jwt-client-id".to_owned())
            ]
        );
    }
}
