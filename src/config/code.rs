//! `CodeParts`: what only code can give the builder, kept beside the declarative model
//! because no file can say it: closures, stores, clocks, keys given as bytes, and the
//! `dangerous()` switches that have no file key (plain http, which has one, is in the
//! model).

use std::sync::Arc;

use crate::issuer::KeySpec;
use crate::response::{DefaultResponder, ErrorResponder};
use crate::rules::{ClaimRule, PayloadCheck, Predicate};
#[cfg(feature = "dpop")]
use crate::state::ProofStore;
use crate::state::{ReplayStore, RevocationList};
use crate::telemetry::AuditHook;
use crate::time::{Clock, SystemClock};
use crate::token::TokenSource;

/// What only code can give, beside the declarative options.
pub(crate) struct CodeParts {
    /// Tokens pass whatever their `aud` (a dangerous setting).
    pub(crate) any_audience: bool,
    /// Issuer templates accept every tenant (a dangerous setting).
    pub(crate) any_tenant: bool,
    /// A token source built in code; it wins over the declared `[token]` sources.
    pub(crate) token_source: Option<TokenSource>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The builder-wide key source, for issuers that name none of their own.
    pub(crate) keys: KeySpec,
    /// Claim validators written as closures.
    pub(crate) claim_validators: Vec<ClaimRule>,
    pub(crate) payload_checks: Vec<PayloadCheck>,
    pub(crate) exempt_predicates: Vec<Predicate>,
    pub(crate) responder: Arc<dyn ErrorResponder>,
    pub(crate) audit: Option<AuditHook>,
    pub(crate) replay: Option<Arc<dyn ReplayStore>>,
    #[cfg(feature = "dpop")]
    pub(crate) proofs: Option<Arc<dyn ProofStore>>,
    pub(crate) revocation: Option<Arc<dyn RevocationList>>,
    /// Introspection answers without `aud` are accepted (a dangerous setting).
    #[cfg(feature = "introspection")]
    pub(crate) introspection_audience_optional: bool,
}

impl Default for CodeParts {
    fn default() -> Self {
        Self {
            any_audience: false,
            any_tenant: false,
            token_source: None,
            clock: Arc::new(SystemClock),
            keys: KeySpec::default(),
            claim_validators: Vec::new(),
            payload_checks: Vec::new(),
            exempt_predicates: Vec::new(),
            responder: Arc::new(DefaultResponder),
            audit: None,
            replay: None,
            #[cfg(feature = "dpop")]
            proofs: None,
            revocation: None,
            #[cfg(feature = "introspection")]
            introspection_audience_optional: false,
        }
    }
}
