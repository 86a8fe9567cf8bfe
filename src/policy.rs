//! The compiled runtime policy requests read: built once from a configuration by
//! [`JwtAuthConfigBuilder::build`](crate::JwtAuthConfigBuilder::build), immutable, and
//! shared whole behind an `Arc` (so that a new one can replace it in one swap).
//!
//! It is grouped by reader: the core reads `token` and `issuers`, the verifier `claims`
//! and `permissions`, the service `context`. Nothing here is configuration syntax; the
//! builder and its validation live in `config`.

use std::fmt;
use std::sync::Arc;

use crate::algorithm::Algorithm;
use crate::api_key::keys::ApiKeys;
use crate::binding::BindingRules;
use crate::cache::TokenCache;
use crate::context::AuthContext;
#[cfg(feature = "introspection")]
use crate::introspection::introspector::Introspector;
use crate::issuer::Issuer;
use crate::permission::{PermissionSources, Requirement};
use crate::resource::ProtectedResourceMetadata;
use crate::rules::{ClaimChecks, Exemptions, Forwarding};
use crate::state::Revocations;
use crate::telemetry::{AuditHook, SubjectLogging};
use crate::time::Clock;
use crate::token::TokenSource;
use crate::tracking::StateRules;

/// Which JWS `typ` header values are accepted (RFC 8725 section 3.11).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypPolicy {
    /// `typ` absent, `JWT` or `at+jwt` (case-insensitive, optional `application/`
    /// prefix). Any other type, such as `dpop+jwt`, `logout+jwt` or `secevent+jwt`, is a
    /// token meant for something else and is refused.
    #[default]
    Lenient,
    /// RFC 9068 access tokens only: `typ` must be `at+jwt`.
    AccessToken,
}

/// The compiled policy.
pub(crate) struct Policy {
    /// The profile whose rules this policy was checked against; a reload keeps it.
    pub(crate) profile: Option<crate::profile::Profile>,
    /// Each trusted issuer with its matcher, audiences, algorithms and keys.
    pub(crate) issuers: Vec<Arc<Issuer>>,
    pub(crate) token: TokenRules,
    pub(crate) claims: ClaimRules,
    pub(crate) permissions: PermissionRules,
    pub(crate) cache: Option<TokenCache>,
    /// What refusals carry, and what admitted requests take along for guards.
    pub(crate) context: AuthContext,
    /// Every algorithm some issuer accepts (each issuer checks its own list).
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) metadata: Option<ProtectedResourceMetadata>,
    pub(crate) telemetry: TelemetryRules,
    /// Revocation and single use.
    pub(crate) state: Arc<StateRules>,
    /// The admin handle of the revocation list, when there is one.
    pub(crate) revocations: Option<Revocations>,
    /// Requests that pass without a token.
    pub(crate) exemptions: Exemptions,
    /// Claims copied into request headers for the inner service.
    pub(crate) forwarding: Forwarding,
    /// DPoP and certificate-bound tokens.
    pub(crate) binding: BindingRules,
    /// Token introspection, for opaque tokens (and every token with `always_introspect`).
    #[cfg(feature = "introspection")]
    pub(crate) introspection: Option<Arc<Introspector>>,
    /// The configured API keys, when there are any (or a place to read them from).
    pub(crate) api_keys: Option<Arc<ApiKeys>>,
}

/// What spans and the audit hook are told.
pub(crate) struct TelemetryRules {
    pub(crate) subject: SubjectLogging,
    pub(crate) audit: Option<AuditHook>,
}

/// Where the token is and how long it may be.
#[derive(Debug)]
pub(crate) struct TokenRules {
    pub(crate) source: TokenSource,
    pub(crate) max_len: usize,
}

/// The checks on a verified payload that do not depend on the issuer.
#[derive(Debug)]
pub(crate) struct ClaimRules {
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    pub(crate) leeway: f64,
    /// The longest lifetime a token may have, in seconds (`exp - iat`).
    pub(crate) max_lifetime: Option<f64>,
    pub(crate) typ: TypPolicy,
    pub(crate) required: Vec<Box<str>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Required values, validators and the client allow-list.
    pub(crate) checks: ClaimChecks,
}

/// Where permissions come from, and which ones every request needs.
#[derive(Debug)]
pub(crate) struct PermissionRules {
    /// The permission claims and every name the payload pass captures, shared with each
    /// token record for what it makes when first read.
    pub(crate) sources: Arc<PermissionSources>,
    /// Permissions every request needs, whatever the route.
    pub(crate) required: Option<Requirement>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Policy");
        f.field("profile", &self.profile)
            .field("issuers", &self.issuers)
            .field("token", &self.token)
            .field("claims", &self.claims)
            .field("permissions", &self.permissions)
            .field("cache", &self.cache)
            .field("algorithms", &self.algorithms)
            .field("metadata", &self.metadata)
            .field("subject_logging", &self.telemetry.subject)
            .field("state", &self.state)
            .field("exemptions", &self.exemptions)
            .field("forwarding", &self.forwarding)
            .field("binding", &self.binding);
        #[cfg(feature = "introspection")]
        f.field("introspection", &self.introspection);
        f.field("api_keys", &self.api_keys);
        f.finish_non_exhaustive()
    }
}
