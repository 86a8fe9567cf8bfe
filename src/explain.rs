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

/// The checks in the order the layer runs them; it stops at the first that fails.
pub const CHECKS: [&str; 14] = [
    "length",
    "structure",
    "issuer",
    "algorithm",
    "header",
    "key",
    "signature",
    "audience",
    "expiry",
    "not-before",
    "issued-at",
    "claims",
    "binding",
    "state",
];

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CheckStatus {
    /// Passed.
    Passed,
    /// Failed: the layer refuses here.
    Failed,
    /// Not run: an earlier check failed.
    NotReached,
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
        "claims" => "required claims, claim rules, client allow-list, layer-wide permissions",
        "binding" => "a sender-constrained token's binding (DPoP, mTLS) is satisfied",
        _ => "revocation and single use",
    }
}

/// The check a refusal stops at; `issuer_known` says whether the token's `iss` matched a
/// trusted issuer before the signature (an issuer refusal after it is a key's template).
fn failing_check(kind: ErrorKind, issuer_known: bool) -> usize {
    use ErrorKind as K;
    let name = match kind {
        K::TokenTooLong | K::MissingToken | K::MalformedCredentials => "length",
        K::Malformed => "structure",
        K::InvalidIssuer if !issuer_known => "issuer",
        K::MissingClaim if !issuer_known => "issuer",
        K::UnsupportedAlgorithm | K::AlgorithmNotAllowed => "algorithm",
        K::CriticalHeader | K::InvalidType => "header",
        K::UnknownKey | K::NoMatchingKey | K::KeyAlgorithmMismatch | K::KeysUnavailable => "key",
        K::InvalidSignature => "signature",
        K::InvalidAudience => "audience",
        K::Expired | K::LifetimeTooLong => "expiry",
        K::NotYetValid => "not-before",
        K::IssuedInFuture => "issued-at",
        K::BindingMismatch | K::InvalidDpopProof | K::UseDpopNonce => "binding",
        K::TokenRevoked
        | K::TokenReplayed
        | K::StoreUnavailable
        | K::TokenInactive
        | K::IntrospectionUnavailable => "state",
        _ => "claims",
    };
    CHECKS
        .iter()
        .position(|c| *c == name)
        .unwrap_or(CHECKS.len() - 1)
}

impl Explanation {
    pub(crate) fn new(policy: &Policy, token: &str, result: Result<(), AuthError>) -> Self {
        let error = result.err().map(|e| e.kind());
        let issuer_known = crate::jws::peek_issuer(token)
            .is_ok_and(|iss| policy.issuers.iter().any(|i| i.matcher.matches(&iss)))
            || policy.issuers.len() == 1 && crate::jws::peek_issuer(token).is_err();
        let failed = error.map(|kind| failing_check(kind, issuer_known));
        let checks = CHECKS
            .iter()
            .enumerate()
            .map(|(i, name)| Check {
                name,
                about: about(name),
                status: match failed {
                    Some(at) if i == at => CheckStatus::Failed,
                    Some(at) if i > at => CheckStatus::NotReached,
                    _ => CheckStatus::Passed,
                },
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
                CheckStatus::NotReached => "  - ",
            };
            writeln!(f, "{mark}  {:<11} {}", check.name, check.about)?;
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
