//! [`Explanation`]: why the layer would accept or refuse a token, check by check, for
//! tools (the `jwt-auth explain` command). It runs the layer's own verification and
//! renders the layer's own refusal; it is reached only through
//! [`Verifier::explain`](crate::Verifier::explain), never from a request.

use std::fmt;

use http::header::WWW_AUTHENTICATE;
use serde::Serialize;

use crate::error::{AuthError, ErrorKind};
use crate::policy::Policy;
use crate::response::grpc::Protocol;
use crate::time::unix_seconds;
use crate::trace::Trace;

/// The checks in the order the layer runs them; it stops at the first that fails, and
/// skips those the configuration or the token does not call for.
pub const CHECKS: [&str; 17] = [
    "length",
    "api-key",
    "structure",
    "issuer",
    "algorithm",
    "header",
    "key",
    "signature",
    "introspection",
    "audience",
    "expiry",
    "not-before",
    "issued-at",
    "claims",
    "binding",
    "permissions",
    "state",
];

/// The checks of one verification, from `structure` to `claims`: they run in this order
/// and none is skipped, so a refusal's check says how far verification got (a JWT's
/// verification has no `introspection` check; an opaque token's has only that one and
/// the payload checks; an API key has none of them, only `api-key` before).
const VERIFICATION: std::ops::RangeInclusive<usize> = 2..=13;

/// The checks a verified payload goes through, an introspection answer's included.
const PAYLOAD: std::ops::RangeInclusive<usize> = 9..=13;

/// The steps after verification, in the core's order, with the check each reports as.
/// The core records a step when it starts, so the last one recorded is where a refusal
/// stopped (a single-use token without `jti` fails in `state`, not in `claims`).
const AFTER_VERIFICATION: [(u16, &str); 4] = [
    (Trace::BINDING, "binding"),
    (Trace::VALIDATOR, "claims"),
    (Trace::PERMISSIONS, "permissions"),
    (Trace::STATE, "state"),
];

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CheckStatus {
    /// Ran and passed.
    Passed,
    /// Failed: the layer refuses here.
    Failed,
    /// Did not run: an earlier check failed, or the configuration or the token does not
    /// call for it (no binding to check, no layer-wide permission, no
    /// state store, no introspection for a JWT).
    NotRun,
}

/// One check and how it went.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// The check's name, one of [`CHECKS`].
    pub name: &'static str,
    /// What it checks, in words.
    pub about: &'static str,
    /// How it went.
    pub status: CheckStatus,
    /// For the failed check, the values it compared (read from the token without
    /// verifying it: this is a local tool's report, never a client's answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Why the layer would accept or refuse a token.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// Whether the layer would let the request through.
    pub accepted: bool,
    /// Each check, in order.
    pub checks: Vec<Check>,
    /// The refusal's kind (`Expired`, `InvalidAudience`, ...).
    #[serde(serialize_with = "kind_name")]
    pub error: Option<ErrorKind>,
    /// The refusal's fixed description.
    pub description: Option<&'static str>,
    /// The HTTP status the layer would answer.
    pub status: u16,
    /// The `WWW-Authenticate` challenge it would send.
    pub www_authenticate: Option<String>,
}

fn kind_name<S: serde::Serializer>(kind: &Option<ErrorKind>, s: S) -> Result<S::Ok, S::Error> {
    match kind {
        Some(kind) => s.serialize_str(&format!("{kind:?}")),
        None => s.serialize_none(),
    }
}

fn about(check: &str) -> &'static str {
    match check {
        "length" => "the token fits the maximum length",
        "api-key" => {
            "a credential with the API key prefix, or in the key header, is a configured key, not expired"
        }
        "structure" => "a compact JWS: three base64url segments, JSON header and payload",
        "issuer" => "iss names a trusted issuer",
        "algorithm" => "alg is supported and allowed for the issuer",
        "header" => "no crit member, and typ is accepted",
        "key" => "a key of the issuer matches kid and alg",
        "signature" => "the signature verifies",
        "audience" => "aud names an accepted audience",
        "expiry" => "exp is in the future (with the leeway), and the lifetime within the maximum",
        "not-before" => "nbf is not in the future (with the leeway)",
        "issued-at" => "iat is not in the future (with the leeway)",
        "claims" => "required claims, claim rules, client allow-list",
        "introspection" => "the authorization server says the opaque token is active",
        "binding" => "a sender-constrained token's binding (DPoP, mTLS) is satisfied",
        "permissions" => "the layer-wide permissions",
        _ => "revocation, DPoP proof replay and single use",
    }
}

/// The check a refusal stops at: where the core stopped when it was past verification,
/// else the one the error table names, except that an issuer refusal (or a missing
/// `iss`) after the signature is a claim check: `issuer_known` says whether the token's
/// `iss` matched a trusted issuer before it.
fn failing_check(kind: ErrorKind, issuer_known: bool, trace: Trace) -> usize {
    let stopped = AFTER_VERIFICATION
        .iter()
        .rev()
        .find(|(step, _)| trace.ran(*step))
        .map(|(_, check)| *check);
    let step = match (stopped, kind) {
        (Some(check), _) => check,
        // A key unknown or expired: the lookup is the one check it had.
        (None, _) if trace.ran(Trace::API_KEY) => "api-key",
        (None, ErrorKind::InvalidIssuer | ErrorKind::MissingClaim) if issuer_known => "claims",
        (None, ErrorKind::MissingClaim) => "issuer",
        (None, kind) => kind.row().step,
    };
    // Refusals of a request rather than a token (no token, two tokens) cannot come from
    // an explanation, which is given the token: they count as the first check.
    CHECKS.iter().position(|c| *c == step).unwrap_or(0)
}

/// How check `i` went, given the check that failed and the steps that ran.
fn status_of(i: usize, failed: Option<usize>, trace: Trace) -> CheckStatus {
    let ran = |step| {
        if trace.ran(step) {
            CheckStatus::Passed
        } else {
            CheckStatus::NotRun
        }
    };
    match failed {
        Some(at) if at == i => return CheckStatus::Failed,
        Some(at) if i > at => return CheckStatus::NotRun,
        _ => {}
    }
    // From here on, check `i` comes before the failure, or nothing failed.
    let opaque = trace.ran(Trace::OPAQUE);
    let verification_failed = failed.is_some_and(|at| VERIFICATION.contains(&at));
    match CHECKS[i] {
        "length" => ran(Trace::LENGTH),
        "api-key" => ran(Trace::API_KEY),
        // A key is looked up, not verified: no JWS, no introspection, no payload check.
        _ if trace.ran(Trace::API_KEY) && VERIFICATION.contains(&i) => CheckStatus::NotRun,
        "introspection" => ran(Trace::INTROSPECTED),
        "binding" => ran(Trace::BINDING),
        "permissions" => ran(Trace::PERMISSIONS),
        "state" => ran(Trace::STATE),
        // An opaque token has no JWS: only the payload checks run, on the answer.
        _ if opaque && !PAYLOAD.contains(&i) => CheckStatus::NotRun,
        _ if opaque => ran(Trace::INTROSPECTED),
        "issuer" => ran(Trace::ISSUER),
        // Verification stops at its first failing check; those before it passed.
        _ if trace.ran(Trace::VERIFIED) || verification_failed => CheckStatus::Passed,
        _ => CheckStatus::NotRun,
    }
}

/// What the token says, read without verifying it, for the failed check's detail.
#[derive(Default)]
struct Unverified {
    header: serde_json::Map<String, serde_json::Value>,
    payload: serde_json::Map<String, serde_json::Value>,
}

impl Unverified {
    fn read(token: &str) -> Self {
        let mut parts = token.split('.');
        let object = |part: Option<&str>| {
            part.and_then(|p| crate::jws::b64(p).ok())
                .and_then(|json| serde_json::from_slice(&json).ok())
                .unwrap_or_default()
        };
        let header = object(parts.next());
        let payload = object(parts.next());
        Self { header, payload }
    }

    fn number(&self, claim: &str) -> Option<f64> {
        self.payload.get(claim).and_then(serde_json::Value::as_f64)
    }

    fn shown(&self, claim: &str) -> String {
        self.payload
            .get(claim)
            .map_or_else(|| "absent".to_owned(), |v| format!("{v}"))
    }
}

/// The values a failed check compared.
fn detail(policy: &Policy, kind: ErrorKind, check: &str, token: &Unverified) -> Option<String> {
    let list = |items: Vec<String>| items.join(", ");
    let leeway = policy.claims.leeway;
    let now = unix_seconds(policy.claims.clock.now());
    match check {
        "issuer" | "claims" if matches!(kind, ErrorKind::InvalidIssuer) => Some(format!(
            "iss is {}; trusted: {}",
            token.shown("iss"),
            list(
                policy
                    .issuers
                    .iter()
                    .map(|i| format!("{:?}", i.matcher.as_str()))
                    .collect()
            )
        )),
        "audience" => {
            let accepted: Vec<String> = policy
                .issuers
                .iter()
                .flat_map(|i| i.audiences.iter().map(|a| format!("{a:?}")))
                .collect();
            Some(format!(
                "aud is {}; accepted: {}",
                token.shown("aud"),
                list(accepted)
            ))
        }
        "algorithm" => {
            let alg = token
                .header
                .get("alg")
                .map_or_else(|| "absent".to_owned(), |v| format!("{v}"));
            let allowed: Vec<String> = policy
                .algorithms
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect();
            Some(format!("alg is {alg}; allowed: {}", list(allowed)))
        }
        "expiry" if kind == ErrorKind::LifetimeTooLong => {
            let exp = token.number("exp")?;
            let lifetime = token.number("iat").map_or(exp - now, |iat| exp - iat);
            let max = policy.claims.max_lifetime?;
            Some(format!(
                "lifetime is {lifetime:.0} s; the maximum is {max:.0} s"
            ))
        }
        "expiry" => token.number("exp").map(|exp| {
            format!(
                "exp passed {:.0} s ago; the leeway is {leeway:.0} s",
                now - exp
            )
        }),
        "not-before" => token.number("nbf").map(|nbf| {
            format!(
                "nbf is {:.0} s ahead; the leeway is {leeway:.0} s",
                nbf - now
            )
        }),
        "issued-at" => token.number("iat").map(|iat| {
            format!(
                "iat is {:.0} s ahead; the leeway is {leeway:.0} s",
                iat - now
            )
        }),
        _ => None,
    }
}

impl Explanation {
    pub(crate) fn new(
        policy: &Policy,
        token: &str,
        result: Result<(), AuthError>,
        trace: Trace,
    ) -> Self {
        let error = result.err().map(|e| e.kind());
        let issuer_known = match crate::jws::peek_issuer(token) {
            Ok(iss) => policy.issuers.iter().any(|i| i.matcher.matches(&iss)),
            Err(_) => policy.issuers.len() == 1,
        };
        let failed = error.map(|kind| failing_check(kind, issuer_known, trace));
        // An opaque token has no payload to read: its failed checks show no values.
        let unverified = if trace.ran(Trace::OPAQUE) {
            None
        } else {
            Some(Unverified::read(token))
        };
        let checks = CHECKS
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let status = status_of(i, failed, trace);
                let detail = match (status, error, &unverified) {
                    (CheckStatus::Failed, Some(kind), Some(token)) => {
                        detail(policy, kind, name, token)
                    }
                    _ => None,
                };
                Check {
                    name,
                    about: about(name),
                    status,
                    detail,
                }
            })
            .collect();
        let (status, www_authenticate) = match error {
            None => (200, None),
            Some(kind) => {
                let response = policy.context.reject(kind, Protocol::HTTP);
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (response.status().as_u16(), challenge)
            }
        };
        Self {
            accepted: error.is_none(),
            checks,
            error,
            description: error.map(ErrorKind::description),
            status,
            www_authenticate,
        }
    }

    /// The check that failed, if one did.
    #[must_use]
    pub fn failed_check(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.status == CheckStatus::Failed)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            let mark = match check.status {
                CheckStatus::Passed => "pass",
                CheckStatus::Failed => "FAIL",
                CheckStatus::NotRun => "  - ",
            };
            writeln!(f, "{mark}  {:<13} {}", check.name, check.about)?;
            if let Some(detail) = &check.detail {
                writeln!(f, "      {:<13} {detail}", "")?;
            }
        }
        match (self.error, &self.www_authenticate) {
            (None, _) => write!(f, "\naccepted: the layer lets this token through"),
            (Some(kind), challenge) => {
                write!(
                    f,
                    "\nrefused: {} ({kind:?}), HTTP {}",
                    kind.description(),
                    self.status
                )?;
                if let Some(challenge) = challenge {
                    write!(f, "\nWWW-Authenticate: {challenge}")?;
                }
                Ok(())
            }
        }
    }
}
