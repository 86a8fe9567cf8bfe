//! What the layer tells operators: a fixed outcome label per request, metrics through the
//! `metrics` facade (feature `metrics`; every function here is a no-op without it), the
//! audit hook's [`AuditEvent`], and how subjects appear in spans ([`SubjectLogging`]).
//!
//! No label, span field or audit field is ever made from the token itself; the subject
//! and client id are the verified claims, and the issuer is the configured one.

use std::fmt;
use std::sync::Arc;
#[cfg(any(feature = "metrics", feature = "remote"))]
use std::time::Duration;

use aws_lc_rs::digest;

use crate::api_key::CredentialKind;
use crate::error::ErrorKind;

/// The target of the per-request `jwt_auth` span. The core collects who a token names only
/// when this target is enabled at DEBUG, so both must name the same one.
pub(crate) const SPAN_TARGET: &str = "tower_jwt_auth::request";

/// How the subject (`sub`) of a verified token appears in the layer's tracing spans.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectLogging {
    /// Not at all: the default, since a subject is often personal data.
    #[default]
    Off,
    /// As sent.
    Raw,
    /// As the first 16 hex digits of its SHA-256: the same subject gives the same value,
    /// so requests can be correlated, but the value does not say who it is.
    Hashed,
}

impl SubjectLogging {
    /// The span value for `subject`, or `None` when subjects are not logged.
    pub(crate) fn render(self, subject: &str) -> Option<String> {
        match self {
            Self::Off => None,
            Self::Raw => Some(subject.to_owned()),
            Self::Hashed => {
                let hash = digest::digest(&digest::SHA256, subject.as_bytes());
                Some(
                    hash.as_ref()[..8]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect(),
                )
            }
        }
    }
}

/// Who a verified token names, kept for spans and the audit hook: the token's `kid`,
/// `sub`, and `client_id` (or, without one, `azp`). Collected only when a span or an
/// audit hook will read it.
#[derive(Debug, Default)]
pub(crate) struct Identity {
    pub(crate) kid: Option<Box<str>>,
    pub(crate) subject: Option<Box<str>>,
    pub(crate) client_id: Option<Box<str>>,
}

/// The token-free summary of one authentication decision, handed to the
/// [`on_outcome`](crate::JwtAuthConfigBuilder::on_outcome) hook.
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub struct AuditEvent<'a> {
    /// The outcome label, one of [`OUTCOMES`].
    pub outcome: &'static str,
    /// The refusal's error kind, when the request was refused.
    pub error: Option<ErrorKind>,
    /// The request method.
    pub method: &'a http::Method,
    /// The request path (no query string).
    pub path: &'a str,
    /// The trusted issuer that verified the token, as configured.
    pub issuer: Option<&'a str>,
    /// The verified token's `sub`.
    pub subject: Option<&'a str>,
    /// The verified token's `client_id`, or `azp` without one.
    pub client_id: Option<&'a str>,
    /// The verified token's `kid`.
    pub kid: Option<&'a str>,
    /// What kind of credential was verified (for an API key, `subject` is its id).
    pub credential: Option<CredentialKind>,
}

/// A callback receiving every [`AuditEvent`].
pub(crate) type AuditHook = Arc<dyn Fn(&AuditEvent<'_>) + Send + Sync>;

/// Every value of the `outcome` label of `jwt_auth_requests_total`, and of
/// [`AuditEvent::outcome`].
pub const OUTCOMES: [&str; 17] = [
    "ok",
    "anonymous",
    "missing",
    "malformed",
    "expired",
    "invalid_signature",
    "invalid_claims",
    "client_not_allowed",
    "binding",
    "dpop",
    "step_up",
    "forbidden",
    "unavailable",
    "replayed",
    "revoked",
    "inactive",
    "unknown_api_key",
];

/// The outcome label of a refusal of this kind.
pub(crate) fn refusal_label(kind: ErrorKind) -> &'static str {
    kind.row().label
}

/// Counts one request the layer decided.
pub(crate) fn count_request(outcome: &'static str) {
    // A literal label value makes the metric key static: no allocation per request.
    #[cfg(feature = "metrics")]
    macro_rules! requests {
        ($($label:literal),+) => {
            match outcome {
                $($label => metrics::counter!("jwt_auth_requests_total", "outcome" => $label),)+
                other => metrics::counter!("jwt_auth_requests_total", "outcome" => other),
            }
        };
    }
    #[cfg(feature = "metrics")]
    requests!(
        "ok",
        "anonymous",
        "missing",
        "malformed",
        "expired",
        "invalid_signature",
        "invalid_claims",
        "client_not_allowed",
        "binding",
        "dpop",
        "step_up",
        "forbidden",
        "unavailable",
        "replayed",
        "revoked",
        "inactive",
        "unknown_api_key"
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = outcome;
}

/// Counts one refusal by a route guard, labelled by the permissions it requires.
pub(crate) fn count_guard_refusal(required: &[Box<str>]) {
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_auth_guard_refusals_total", "required" => required.join(" "))
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = required;
}

/// Counts one store failure: a request refused with 503, or passed in fail-open mode.
pub(crate) fn count_store_failure(open: bool) {
    #[cfg(feature = "metrics")]
    if open {
        metrics::counter!("jwt_auth_store_fail_open_total").increment(1);
    } else {
        metrics::counter!("jwt_auth_store_errors_total").increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = open;
}

/// Records how long one verification took (cache lookup included).
#[cfg(feature = "metrics")]
pub(crate) fn record_verify(elapsed: Duration) {
    metrics::histogram!("jwt_auth_verify_seconds").record(elapsed.as_secs_f64());
}

/// Counts a verified-token cache lookup.
pub(crate) fn count_cache(hit: bool) {
    #[cfg(feature = "metrics")]
    if hit {
        metrics::counter!("jwt_auth_cache_total", "result" => "hit").increment(1);
    } else {
        metrics::counter!("jwt_auth_cache_total", "result" => "miss").increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = hit;
}

/// Counts one key fetch of a remote store (`ok`, `unchanged` or `error`) and sets the age
/// of its key set as of this attempt.
#[cfg(feature = "remote")]
pub(crate) fn record_fetch(issuer: &Arc<str>, result: &'static str, age: Option<Duration>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!(
            "jwt_auth_jwks_fetches_total",
            "issuer" => Arc::clone(issuer),
            "result" => result
        )
        .increment(1);
        if let Some(age) = age {
            metrics::gauge!("jwt_auth_key_set_age_seconds", "issuer" => Arc::clone(issuer))
                .set(age.as_secs_f64());
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (issuer, result, age);
}

/// Counts one introspection call refused over the budget, its request answered 503:
/// `reason` is `"in_flight"` (the cap on calls at once) or `"rate_limit"` (calls per
/// second).
#[cfg(feature = "introspection")]
pub(crate) fn count_introspection_refused(reason: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("jwt_auth_introspection_refused_total", "reason" => reason).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

impl fmt::Display for AuditEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.outcome, self.method, self.path)?;
        if let Some(issuer) = self.issuer {
            write!(f, " issuer={issuer}")?;
        }
        if let Some(client) = self.client_id {
            write!(f, " client_id={client}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_one_of_the_fixed_labels() {
        use ErrorKind as K;
        for kind in [
            K::MissingToken,
            K::MalformedCredentials,
            K::TokenTooLong,
            K::Malformed,
            K::UnsupportedAlgorithm,
            K::AlgorithmNotAllowed,
            K::CriticalHeader,
            K::InvalidType,
            K::UnknownKey,
            K::NoMatchingKey,
            K::KeyAlgorithmMismatch,
            K::InvalidSignature,
            K::Expired,
            K::NotYetValid,
            K::IssuedInFuture,
            K::LifetimeTooLong,
            K::MissingClaim,
            K::InvalidClaim,
            K::InvalidIssuer,
            K::InvalidAudience,
            K::KeysUnavailable,
            K::InsufficientPermission,
            K::TokenReplayed,
            K::TokenRevoked,
            K::StoreUnavailable,
            K::ClientNotAllowed,
            K::ClaimNotAccepted,
            K::InsufficientUserAuthentication,
            K::BindingMismatch,
            K::InvalidDpopProof,
            K::UseDpopNonce,
            K::TokenInactive,
            K::IntrospectionUnavailable,
            K::UnknownApiKey,
        ] {
            assert!(OUTCOMES.contains(&refusal_label(kind)), "{kind:?}");
            // Every column of the one table is coherent with the others.
            let row = kind.row();
            assert!(
                row.step == "token" || crate::explain::CHECKS.contains(&row.step),
                "{kind:?}"
            );
            let grpc = match row.status.as_u16() {
                503 => crate::error::grpc::UNAVAILABLE,
                403 => crate::error::grpc::PERMISSION_DENIED,
                _ => crate::error::grpc::UNAUTHENTICATED,
            };
            assert_eq!(row.grpc, grpc, "{kind:?}");
            assert_eq!(
                row.code.is_none(),
                matches!(row.status.as_u16(), 503) || kind == K::MissingToken,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn hashed_subjects_correlate_without_revealing() {
        let a = SubjectLogging::Hashed.render("alice").expect("hashed");
        assert_eq!(a.len(), 16);
        assert_eq!(Some(a.clone()), SubjectLogging::Hashed.render("alice"));
        assert_ne!(Some(a.clone()), SubjectLogging::Hashed.render("bob"));
        assert!(!a.contains("alice"));
        assert_eq!(SubjectLogging::Off.render("alice"), None);
        assert_eq!(
            SubjectLogging::Raw.render("alice").as_deref(),
            Some("alice")
        );
    }
}
