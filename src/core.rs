//! The authentication core: one place, one order, for the tower layer, the tonic
//! interceptor and the public [`Verifier`](crate::Verifier).
//!
//! 1. the token from its source (none: anonymous or 401; ambiguous: 400);
//! 2. the length limit, before anything is decoded;
//! 3. the source: the configured API keys for a credential with the key prefix or in
//!    the key header (never anything else for it), introspection for an opaque token
//!    (or every token, with `always_introspect`), else the issuer, by the token's `iss`
//!    when several are trusted;
//! 4. that issuer's current keys (none yet: wait for the first load);
//! 5. the source's answer (`source.rs`): the verified-token cache, then verification
//!    (an unknown `kid`: wait for a refetch), or introspection's cache and call;
//! 6. the token's binding (DPoP proof, client certificate), then the layer's typed
//!    validator (on every token, cached or not), then the layer-wide permissions;
//! 7. the state step: revocation, and single use when every token is single use.
//!
//! Steps 1 to 7 run synchronously as far as they can. The waits are asynchronous (the
//! keys of step 4 and 5, the introspection endpoint's answer, a network store in step
//! 7); they come back as a [`Pending`] the caller may await (the layer, `verify_async`)
//! or drop (the interceptor, `verify`): the key store or the introspector was signalled
//! when the wait was created, so dropping it cancels nothing.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, Uri};
use serde::de::DeserializeOwned;

use crate::api_key::CredentialKind;
use crate::binding::Presented;
use crate::error::ErrorKind;
#[cfg(feature = "introspection")]
use crate::introspection::introspector::Introspector;
use crate::issuer::{Issuer, issuer_for};
use crate::permission::Requirement;
use crate::policy::Policy;
use crate::record::{Accepted, TokenRecord};
use crate::source::{Credential, Lookup, Refusal, Source};
use crate::telemetry::{self, Identity};
use crate::time::unix_seconds;
use crate::token::BearerToken;
use crate::trace::Trace;
use crate::tracking::{Check, STORE_RETRY_AFTER, Waiting};

/// What authentication decided. `T` holds the token: a [`BearerToken`] for the layer,
/// a `&str` for the `Verifier`.
pub(crate) enum Outcome<C, T> {
    /// A verified token with every layer-wide permission, and the issuer that verified it.
    Authenticated(Accepted<C>, Arc<Issuer>, T),
    /// No token, and the layer lets such requests through.
    Anonymous,
    /// Refused: 400 or 401 by kind.
    Rejected(ErrorKind),
    /// 503, retry after this long: the issuer's keys have never loaded
    /// (`KeysUnavailable`), the introspection endpoint gave no answer
    /// (`IntrospectionUnavailable`), or a token state store does not answer
    /// (`StoreUnavailable`).
    Unavailable(ErrorKind, Duration),
    /// Verified, but without the layer-wide permissions: 403. The token's record (who
    /// it names) and its issuer, for spans and the audit hook.
    Forbidden(Requirement, Arc<TokenRecord>, Arc<Issuer>),
}

impl<C, T> Outcome<C, T> {
    /// The outcome label of metrics, spans and the audit hook (one of `OUTCOMES`).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Authenticated(..) => "ok",
            Self::Anonymous => "anonymous",
            Self::Rejected(kind) => telemetry::refusal_label(*kind),
            Self::Unavailable(..) => "unavailable",
            Self::Forbidden(..) => "forbidden",
        }
    }

    /// The error of a refusal.
    pub(crate) fn error(&self) -> Option<ErrorKind> {
        match self {
            Self::Authenticated(..) | Self::Anonymous => None,
            Self::Rejected(kind) => Some(*kind),
            Self::Unavailable(kind, _) => Some(*kind),
            Self::Forbidden(..) => Some(ErrorKind::InsufficientPermission),
        }
    }

    /// The issuer (none for an API key), who the credential names, and its kind, for a
    /// verified credential.
    pub(crate) fn identity(&self) -> (Option<&Issuer>, Option<&Identity>, Option<CredentialKind>) {
        let (record, issuer) = match self {
            Self::Authenticated(verified, issuer, _) => (&verified.record, issuer),
            Self::Forbidden(_, record, issuer) => (record, issuer),
            _ => return (None, None, None),
        };
        let issuer = (record.kind != CredentialKind::ApiKey).then_some(&**issuer);
        (issuer, record.identity.as_ref(), Some(record.kind))
    }
}

/// The synchronous part's result: an outcome, or a wait for keys.
pub(crate) enum Step<C, T> {
    Done(Outcome<C, T>),
    Wait(Pending<C, T>),
}

/// A token as the core sees it: its text, whether it came with the `DPoP` scheme, and
/// whether it came in the API key header.
pub(crate) trait TokenText: AsRef<str> {
    /// The token's bytes, read without a UTF-8 check.
    fn bytes(&self) -> &[u8];
    fn is_dpop(&self) -> bool;
    fn is_api_key(&self) -> bool;
    /// Whether RFC 6750's character check is still to run ([`Credential`]).
    fn characters_unchecked(&self) -> bool;
}

impl TokenText for BearerToken {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }

    fn is_dpop(&self) -> bool {
        BearerToken::is_dpop(self)
    }

    fn is_api_key(&self) -> bool {
        self.came_as_api_key()
    }

    fn characters_unchecked(&self) -> bool {
        BearerToken::characters_unchecked(self)
    }
}

impl TokenText for &str {
    fn bytes(&self) -> &[u8] {
        str::as_bytes(self)
    }

    fn is_dpop(&self) -> bool {
        false
    }

    fn is_api_key(&self) -> bool {
        false
    }

    fn characters_unchecked(&self) -> bool {
        false
    }
}

/// A check over the typed claims of a verified token
/// ([`JwtAuthLayer::validate`](crate::JwtAuthLayer::validate)).
pub(crate) type Validator<C> = Arc<dyn Fn(&C) -> bool + Send + Sync>;

/// A wait, and what to finish with once it is over.
pub(crate) struct Pending<C, T> {
    issuer: Arc<Issuer>,
    token: T,
    trace: Trace,
    presented: Option<Box<Presented>>,
    validator: Option<Validator<C>>,
    wait: Wait<C>,
}

enum Wait<C> {
    /// For the issuer's keys (the first load, or a refetch for an unknown `kid`).
    Keys(<Issuer as Source>::Wait),
    /// For the introspection endpoint's answer about an opaque token.
    #[cfg(feature = "introspection")]
    Answer(Arc<Introspector>, <Introspector as Source>::Wait),
    /// For a network store's answer in the state step.
    State {
        verified: Accepted<C>,
        check: Waiting,
    },
}

/// Steps 6 and 7 done as far as they go without waiting.
enum Admitted<C, T> {
    Done(Outcome<C, T>),
    Check(Accepted<C>, Arc<Issuer>, T, Waiting),
}

impl<C, T> Admitted<C, T> {
    fn into_step(self, trace: Trace) -> Step<C, T> {
        match self {
            Self::Done(outcome) => Step::Done(outcome),
            Self::Check(verified, issuer, token, check) => Step::Wait(Pending {
                issuer,
                token,
                trace,
                presented: None,
                validator: None,
                wait: Wait::State { verified, check },
            }),
        }
    }
}

/// Steps 1 to 7 for a request's head; `presented` is what it shows for a bound token,
/// `validator` the layer's check over the typed claims.
pub(crate) fn authenticate<C>(
    policy: &Policy,
    method: &Method,
    headers: &HeaderMap,
    uri: &Uri,
    optional: bool,
    presented: Option<Presented>,
    validator: Option<&Validator<C>>,
) -> Step<C, BearerToken>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    let dpop = policy.binding.reads_dpop();
    match policy.token.source.extract(method, headers, uri, dpop) {
        Ok(Some(token)) => authenticate_token(policy, token, presented, validator),
        Ok(None) if optional => Step::Done(Outcome::Anonymous),
        Ok(None) => Step::Done(Outcome::Rejected(ErrorKind::MissingToken)),
        Err(kind) => Step::Done(Outcome::Rejected(kind)),
    }
}

/// Steps 2 to 7 for a token already found.
pub(crate) fn authenticate_token<C, T>(
    policy: &Policy,
    token: T,
    presented: Option<Presented>,
    validator: Option<&Validator<C>>,
) -> Step<C, T>
where
    C: DeserializeOwned + Send + Sync + 'static,
    T: TokenText,
{
    authenticate_traced(policy, token, presented, validator).0
}

/// Steps 2 to 7, and which of them ran so far (a wait carries the trace on).
pub(crate) fn authenticate_traced<C, T>(
    policy: &Policy,
    token: T,
    presented: Option<Presented>,
    validator: Option<&Validator<C>>,
) -> (Step<C, T>, Trace)
where
    C: DeserializeOwned + Send + Sync + 'static,
    T: TokenText,
{
    let mut trace = Trace::default();
    // Bytes until a source needs text: a cache hit never does.
    let bytes = token.bytes();
    let credential = Credential::new(bytes, token.characters_unchecked());
    if bytes.len() > policy.token.max_len {
        let kind = credential.refusal(ErrorKind::TokenTooLong);
        return (Step::Done(Outcome::Rejected(kind)), trace);
    }
    trace.record(Trace::LENGTH);
    if let Some(keys) = &policy.api_keys
        && keys.takes(bytes, token.is_api_key())
    {
        trace.record(Trace::API_KEY);
        let lookup = keys
            .lookup::<C>(policy, credential, &mut trace)
            .map_wait(|never| -> Wait<C> { match never {} });
        let issuer = Arc::clone(keys.stand_in());
        let step = answered(
            policy, issuer, lookup, token, presented, validator, &mut trace,
        );
        return (step, trace);
    }
    #[cfg(feature = "introspection")]
    if let Some(introspector) = &policy.introspection
        && introspector.takes(|| credential.text())
    {
        trace.record(Trace::OPAQUE);
        let lookup = introspector
            .lookup::<C>(policy, credential, &mut trace)
            .map_wait(|asked| Wait::Answer(Arc::clone(introspector), asked));
        let issuer = introspector.issuer();
        let step = answered(
            policy, issuer, lookup, token, presented, validator, &mut trace,
        );
        return (step, trace);
    }
    let issuer = match issuer_for(&policy.issuers, || credential.text()) {
        Ok(issuer) => Arc::clone(issuer),
        Err(kind) => {
            let kind = credential.refusal(kind);
            return (Step::Done(Outcome::Rejected(kind)), trace);
        }
    };
    trace.record(Trace::ISSUER);
    let lookup = issuer
        .lookup::<C>(policy, credential, &mut trace)
        .map_wait(Wait::Keys);
    let step = answered(
        policy, issuer, lookup, token, presented, validator, &mut trace,
    );
    (step, trace)
}

/// Step 5's answer from the chosen source, then steps 6 and 7 for a verified token, or
/// the wait the source needs.
fn answered<C: Send + Sync + 'static, T: TokenText>(
    policy: &Policy,
    issuer: Arc<Issuer>,
    lookup: Lookup<C, Wait<C>>,
    token: T,
    presented: Option<Presented>,
    validator: Option<&Validator<C>>,
    trace: &mut Trace,
) -> Step<C, T> {
    match lookup {
        Lookup::Verified(verified) => {
            let shown = presented.as_ref();
            admit(policy, verified, issuer, token, shown, validator, trace).into_step(*trace)
        }
        Lookup::Wait(wait) => Pending::step(issuer, token, presented, validator, wait, *trace),
        Lookup::Refused(kind) => Step::Done(Outcome::Rejected(kind)),
    }
}

impl<C, T> Pending<C, T> {
    /// A wait of a request's steps, with what the steps after it need: what the request
    /// presented for a bound token, and the layer's typed validator.
    fn step(
        issuer: Arc<Issuer>,
        token: T,
        presented: Option<Presented>,
        validator: Option<&Validator<C>>,
        wait: Wait<C>,
        trace: Trace,
    ) -> Step<C, T> {
        Step::Wait(Self {
            issuer,
            token,
            trace,
            presented: presented.map(Box::new),
            validator: validator.cloned(),
            wait,
        })
    }
}

impl<C, T: TokenText> Pending<C, T> {
    /// Waits (bounded by the key store, the introspector or the state store) and
    /// finishes the steps left.
    pub(crate) async fn finish(self, policy: &Policy) -> Outcome<C, T>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        self.finish_traced(policy).await.0
    }

    /// [`finish`](Self::finish), and which steps ran in all.
    pub(crate) async fn finish_traced(self, policy: &Policy) -> (Outcome<C, T>, Trace)
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let mut trace = self.trace;
        let outcome = self.finish_steps(policy, &mut trace).await;
        (outcome, trace)
    }

    async fn finish_steps(self, policy: &Policy, trace: &mut Trace) -> Outcome<C, T>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        let Self {
            issuer,
            token,
            trace: _,
            presented,
            validator,
            wait,
        } = self;
        let validator = validator.as_ref();
        let presented = presented.as_deref();
        let text = token.as_ref();
        let answer = match wait {
            Wait::Keys(wait) => issuer.finish::<C>(policy, wait, text, trace).await,
            #[cfg(feature = "introspection")]
            Wait::Answer(introspector, asked) => {
                introspector.finish::<C>(policy, asked, text, trace).await
            }
            Wait::State { verified, check } => {
                return checked(check.await, verified, issuer, token);
            }
        };
        match answer {
            Ok(verified) => {
                admitted(policy, verified, issuer, token, presented, validator, trace).await
            }
            Err(refusal) => refusal.into(),
        }
    }

    /// The outcome without waiting, for callers that cannot wait (the interceptor, the
    /// synchronous `Verifier::verify`). A source was already signalled (a key store
    /// refetches, an introspection call runs on); a network state store cannot be
    /// asked, so the request is refused as if it did not answer.
    pub(crate) fn give_up(self, policy: &Policy) -> Outcome<C, T> {
        match self.wait {
            Wait::Keys(wait) => self.issuer.give_up(wait).into(),
            #[cfg(feature = "introspection")]
            Wait::Answer(introspector, asked) => introspector.give_up(asked).into(),
            Wait::State { .. } => {
                // Once per configuration: a reload that keeps the mistake says it again.
                if policy.state.warn_once_unwaitable() {
                    tracing::warn!(
                        "a network token state store needs a caller that can wait: use JwtAuthLayer (tonic servers take it with Server::builder().layer(..)) or Verifier::verify_async, not the interceptor or Verifier::verify"
                    );
                }
                Outcome::Unavailable(ErrorKind::StoreUnavailable, STORE_RETRY_AFTER)
            }
        }
    }
}

/// Steps 6 and 7 for a verified token, waiting for a network store if it must.
async fn admitted<C: Send + Sync + 'static, T: TokenText>(
    policy: &Policy,
    verified: Accepted<C>,
    issuer: Arc<Issuer>,
    token: T,
    presented: Option<&Presented>,
    validator: Option<&Validator<C>>,
    trace: &mut Trace,
) -> Outcome<C, T> {
    match admit(policy, verified, issuer, token, presented, validator, trace) {
        Admitted::Done(outcome) => outcome,
        Admitted::Check(verified, issuer, token, check) => {
            checked(check.await, verified, issuer, token)
        }
    }
}

impl<C, T> From<Refusal> for Outcome<C, T> {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Rejected(kind) => Self::Rejected(kind),
            Refusal::Unavailable(kind, after) => Self::Unavailable(kind, after),
        }
    }
}

/// Step 6: the token's binding, the typed validator and the layer-wide permissions;
/// then step 7 as far as it goes without waiting.
fn admit<C: Send + Sync + 'static, T: TokenText>(
    policy: &Policy,
    verified: Accepted<C>,
    issuer: Arc<Issuer>,
    token: T,
    presented: Option<&Presented>,
    validator: Option<&Validator<C>>,
    trace: &mut Trace,
) -> Admitted<C, T> {
    // The binding first: a bound token without its proof is not the caller's, and must
    // not learn what it may do (a 403 would say it is valid) or what the application
    // thinks of its claims.
    let record = &verified.record;
    let proof = if record.binding.is_none() && !policy.binding.is_active() {
        None
    } else {
        trace.record(Trace::BINDING);
        let now = unix_seconds(policy.claims.clock.now());
        match policy.binding.check(
            record.binding.as_ref(),
            token.is_dpop(),
            presented,
            token.as_ref(),
            now,
        ) {
            Ok(proof) => proof,
            Err(kind) => return Admitted::Done(Outcome::Rejected(kind)),
        }
    };
    // Before the state step: a token the application refuses is neither spent nor
    // looked up.
    if let Some(validate) = validator {
        trace.record(Trace::VALIDATOR);
        // Claims that cannot be made are never handed to the validator.
        let Some(claims) = verified.claims() else {
            return Admitted::Done(Outcome::Rejected(ErrorKind::InvalidClaim));
        };
        if !validate(claims) {
            return Admitted::Done(Outcome::Rejected(ErrorKind::ClaimNotAccepted));
        }
    }
    if let Some(required) = &policy.permissions.required {
        trace.record(Trace::PERMISSIONS);
        if !required.is_met(record.permissions()) {
            return Admitted::Done(Outcome::Forbidden(
                required.clone(),
                verified.record,
                issuer,
            ));
        }
    }
    if policy.state.runs_layer_check(proof.is_some()) {
        trace.record(Trace::STATE);
    }
    match policy
        .state
        .check_layer(verified.record.tracked.as_ref(), proof)
    {
        Check::Done(result) => Admitted::Done(checked(result, verified, issuer, token)),
        Check::Wait(check) => Admitted::Check(verified, issuer, token, check),
    }
}

/// The outcome of step 7.
fn checked<C, T>(
    result: Result<(), ErrorKind>,
    verified: Accepted<C>,
    issuer: Arc<Issuer>,
    token: T,
) -> Outcome<C, T> {
    match result {
        Ok(()) => Outcome::Authenticated(verified, issuer, token),
        Err(ErrorKind::StoreUnavailable) => {
            Outcome::Unavailable(ErrorKind::StoreUnavailable, STORE_RETRY_AFTER)
        }
        Err(kind) => Outcome::Rejected(kind),
    }
}
