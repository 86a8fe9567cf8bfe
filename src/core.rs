//! The authentication core: one place, one order, for the tower layer, the tonic
//! interceptor and the public [`Verifier`](crate::Verifier).
//!
//! 1. the token from its source (none: anonymous or 401; ambiguous: 400);
//! 2. the length limit, before anything is decoded;
//! 3. the issuer, by the token's `iss` when several are trusted;
//! 4. that issuer's current keys (none yet: wait for the first load);
//! 5. the verified-token cache, then verification (an unknown `kid`: wait for a refetch);
//! 6. the token's binding (DPoP proof, client certificate), then the layer's typed
//!    validator (on every token, cached or not), then the layer-wide permissions;
//! 7. the state step: revocation, and single use when every token is single use.
//!
//! Steps 1 to 7 run synchronously as far as they can. Three waits are asynchronous (the
//! keys of step 4 and 5, a network store in step 7); they come back as a [`Pending`] the
//! caller may await (the layer, `verify_async`) or drop (the interceptor, `verify`): the
//! key store was signalled when the wait was created, so dropping it cancels nothing.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Uri};
use serde::de::DeserializeOwned;

use crate::binding::Presented;
use crate::error::ErrorKind;
#[cfg(feature = "remote")]
use crate::introspection::introspector;
use crate::issuer::{Issuer, issuer_for};
use crate::jwks::{KeySet, KeysFuture};
use crate::jws::header_kid;
use crate::permission::Requirement;
use crate::policy::Policy;
use crate::record::{TokenRecord, Verified};
use crate::telemetry::{self, Identity};
use crate::time::unix_seconds;
use crate::token::BearerToken;
use crate::tracking::{Check, STORE_RETRY_AFTER, Waiting};
use crate::verify;

/// What authentication decided. `T` holds the token: a [`BearerToken`] for the layer,
/// a `&str` for the `Verifier`.
pub(crate) enum Outcome<C, T> {
    /// A verified token with every layer-wide permission, and the issuer that verified it.
    Authenticated(Verified<C>, Arc<Issuer>, T),
    /// No token, and the layer lets such requests through.
    Anonymous,
    /// Refused: 400 or 401 by kind.
    Rejected(ErrorKind),
    /// 503, retry after this long: the issuer's keys have never loaded
    /// (`KeysUnavailable`), or a token state store does not answer (`StoreUnavailable`).
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

    /// The issuer and who the token names, for a verified token.
    pub(crate) fn identity(&self) -> (Option<&Issuer>, Option<&Identity>) {
        match self {
            Self::Authenticated(verified, issuer, _) => {
                (Some(&**issuer), verified.record.identity.as_ref())
            }
            Self::Forbidden(_, record, issuer) => (Some(&**issuer), record.identity.as_ref()),
            _ => (None, None),
        }
    }
}

/// The synchronous part's result: an outcome, or a wait for keys.
pub(crate) enum Step<C, T> {
    Done(Outcome<C, T>),
    Wait(Pending<C, T>),
}

/// Which steps of the sequence ran for one token, for explanations
/// ([`Verifier::explain`](crate::Verifier::explain)): a step not recorded here did not
/// run. A step is recorded when it starts, so the last one recorded is where a refusal
/// stopped the sequence; verification is one step whose inner checks run in a fixed
/// order, so a refusal's kind says how far it got inside it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Trace(u16);

impl Trace {
    pub(crate) const LENGTH: u16 = 1;
    pub(crate) const ISSUER: u16 = 1 << 1;
    /// Verified (its payload checks included), or found verified in the cache.
    pub(crate) const VERIFIED: u16 = 1 << 2;
    /// The token went to introspection: an opaque token, with no JWS to check.
    pub(crate) const OPAQUE: u16 = 1 << 3;
    /// The authorization server said active (or its answer was in the cache); the
    /// payload checks of the answer follow.
    pub(crate) const INTROSPECTED: u16 = 1 << 4;
    pub(crate) const BINDING: u16 = 1 << 5;
    pub(crate) const VALIDATOR: u16 = 1 << 6;
    pub(crate) const PERMISSIONS: u16 = 1 << 7;
    pub(crate) const STATE: u16 = 1 << 8;

    fn record(&mut self, step: u16) {
        self.0 |= step;
    }

    /// Whether `step` ran.
    pub(crate) fn ran(self, step: u16) -> bool {
        self.0 & step != 0
    }
}

/// A token as the core sees it: its text, and whether it came with the `DPoP` scheme.
pub(crate) trait TokenText: AsRef<str> {
    fn is_dpop(&self) -> bool;
}

impl TokenText for BearerToken {
    fn is_dpop(&self) -> bool {
        BearerToken::is_dpop(self)
    }
}

impl TokenText for &str {
    fn is_dpop(&self) -> bool {
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
    /// For keys (the first load, or a refetch for an unknown `kid`); `missing` is the
    /// refusal when the wait brings none.
    Keys {
        keys: KeysFuture,
        missing: ErrorKind,
    },
    /// For a network store's answer in the state step.
    State {
        verified: Verified<C>,
        check: Waiting,
    },
    /// For the introspection endpoint's answer about an opaque token.
    #[cfg(feature = "remote")]
    Introspect {
        answer: introspector::Pending,
        digest: [u8; 32],
    },
}

/// Steps 6 and 7 done as far as they go without waiting.
enum Admitted<C, T> {
    Done(Outcome<C, T>),
    Check(Verified<C>, Arc<Issuer>, T, Waiting),
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
    match policy.token.source.extract(headers, uri, dpop) {
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
    let text = token.as_ref();
    if text.len() > policy.token.max_len {
        return (
            Step::Done(Outcome::Rejected(ErrorKind::TokenTooLong)),
            trace,
        );
    }
    trace.record(Trace::LENGTH);
    #[cfg(feature = "remote")]
    if let Some(introspector) = &policy.introspection
        && introspector.takes(text)
    {
        trace.record(Trace::OPAQUE);
        let step = introspect(
            policy,
            introspector,
            token,
            presented,
            validator,
            &mut trace,
        );
        return (step, trace);
    }
    let issuer = match issuer_for(&policy.issuers, text) {
        Ok(issuer) => Arc::clone(issuer),
        Err(kind) => return (Step::Done(Outcome::Rejected(kind)), trace),
    };
    trace.record(Trace::ISSUER);
    let Some(keys) = issuer.store.current() else {
        let keys = issuer.store.wait_for_keys();
        let wait = Wait::Keys {
            keys,
            missing: ErrorKind::KeysUnavailable,
        };
        return (
            Pending::step(issuer, token, presented, validator, wait, trace),
            trace,
        );
    };
    let shown = presented.as_ref();
    let step = match timed_verify::<C>(policy, &issuer, &keys, text) {
        Ok(verified) => {
            trace.record(Trace::VERIFIED);
            admit(
                policy, verified, issuer, token, shown, validator, &mut trace,
            )
            .into_step(trace)
        }
        Err(ErrorKind::UnknownKey) => match header_kid(text) {
            Some(kid) => {
                // The store is signalled here, before anything awaits.
                let keys = issuer.store.refetch_for_kid(&kid);
                let wait = Wait::Keys {
                    keys,
                    missing: ErrorKind::UnknownKey,
                };
                Pending::step(issuer, token, presented, validator, wait, trace)
            }
            None => Step::Done(Outcome::Rejected(ErrorKind::UnknownKey)),
        },
        Err(kind) => Step::Done(Outcome::Rejected(kind)),
    };
    (step, trace)
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
    /// Waits (bounded by the key store or the state store) and finishes the steps left.
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
        match wait {
            Wait::Keys { keys, missing } => {
                let Some(keys) = keys.await else {
                    return missing_keys(missing, &issuer);
                };
                match timed_verify::<C>(policy, &issuer, &keys, token.as_ref()) {
                    Ok(verified) => {
                        trace.record(Trace::VERIFIED);
                        admitted(policy, verified, issuer, token, presented, validator, trace).await
                    }
                    Err(kind) => Outcome::Rejected(kind),
                }
            }
            Wait::State { verified, check } => checked(check.await, verified, issuer, token),
            #[cfg(feature = "remote")]
            Wait::Introspect { answer, digest } => {
                let Some(introspector) = &policy.introspection else {
                    return Outcome::Rejected(ErrorKind::Malformed);
                };
                match answer.await {
                    introspector::Answer::Active(body) => {
                        trace.record(Trace::INTROSPECTED);
                        let origin = verify::Origin::Introspection {
                            audience_optional: introspector.audience_optional(),
                        };
                        let identity = wants_identity(policy);
                        match verify::accept_payload::<C>(policy, &issuer, &body, origin, identity)
                        {
                            Ok(verified) => {
                                let now = unix_seconds(policy.claims.clock.now());
                                let text = token.as_ref();
                                let cache = &introspector.cache;
                                verify::remember(
                                    cache,
                                    text,
                                    cache.key(text),
                                    introspector::GENERATION,
                                    &verified,
                                    now,
                                );
                                admitted(
                                    policy, verified, issuer, token, presented, validator, trace,
                                )
                                .await
                            }
                            Err(kind) => {
                                introspector.refuse(digest, kind);
                                Outcome::Rejected(kind)
                            }
                        }
                    }
                    introspector::Answer::Refused(kind) => Outcome::Rejected(kind),
                    introspector::Answer::Failed => Outcome::Unavailable(
                        ErrorKind::IntrospectionUnavailable,
                        introspector::RETRY_AFTER,
                    ),
                }
            }
        }
    }

    /// The outcome without waiting, for callers that cannot wait (the interceptor, the
    /// synchronous `Verifier::verify`). A key store was already signalled; a network
    /// state store cannot be asked, so the request is refused as if it did not answer.
    pub(crate) fn give_up(self, policy: &Policy) -> Outcome<C, T> {
        match self.wait {
            Wait::Keys { missing, .. } => missing_keys(missing, &self.issuer),
            #[cfg(feature = "remote")]
            Wait::Introspect { .. } => Outcome::Unavailable(
                ErrorKind::IntrospectionUnavailable,
                introspector::RETRY_AFTER,
            ),
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
async fn admitted<C, T: TokenText>(
    policy: &Policy,
    verified: Verified<C>,
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

/// Whether to keep who a token names: a span or the audit hook will read it.
fn wants_identity(policy: &Policy) -> bool {
    policy.telemetry.audit.is_some()
        || tracing::enabled!(target: telemetry::SPAN_TARGET, tracing::Level::DEBUG)
}

/// The introspection path (step 5 for an opaque token): the cache of active answers,
/// the cache of refusals, then a shared call.
#[cfg(feature = "remote")]
fn introspect<C, T>(
    policy: &Policy,
    introspector: &Arc<introspector::Introspector>,
    token: T,
    presented: Option<Presented>,
    validator: Option<&Validator<C>>,
    trace: &mut Trace,
) -> Step<C, T>
where
    C: DeserializeOwned + Send + Sync + 'static,
    T: TokenText,
{
    let text = token.as_ref();
    if !introspector.fits_shape(text) {
        return Step::Done(Outcome::Rejected(ErrorKind::Malformed));
    }
    let now = unix_seconds(policy.claims.clock.now());
    let cache = &introspector.cache;
    let generation = introspector::GENERATION;
    if let Some(hit) = verify::cached::<C>(policy, cache, text, cache.key(text), generation, now) {
        telemetry::count_cache(true);
        let issuer = Arc::clone(&introspector.issuer);
        let shown = presented.as_ref();
        trace.record(Trace::INTROSPECTED);
        return match hit {
            Ok(verified) => {
                admit(policy, verified, issuer, token, shown, validator, trace).into_step(*trace)
            }
            Err(kind) => Step::Done(Outcome::Rejected(kind)),
        };
    }
    // Refusals and calls in flight are keyed by the SHA-256 of the token, computed only
    // once the cache of active answers has missed.
    let digest = introspector::digest(text);
    if let Some(kind) = introspector.refused(&digest) {
        return Step::Done(Outcome::Rejected(kind));
    }
    telemetry::count_cache(false);
    let answer = introspector.answer(text, digest);
    let issuer = Arc::clone(&introspector.issuer);
    let wait = Wait::Introspect { answer, digest };
    Pending::step(issuer, token, presented, validator, wait, *trace)
}

/// Step 5, timed for `jwt_auth_verify_seconds`; who the token names is kept only when a
/// span or the audit hook will read it.
fn timed_verify<C>(
    policy: &Policy,
    issuer: &Issuer,
    keys: &KeySet,
    token: &str,
) -> Result<Verified<C>, ErrorKind>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    let identity = wants_identity(policy);
    #[cfg(feature = "metrics")]
    let started = std::time::Instant::now();
    let result = verify::verify::<C>(policy, issuer, keys, token, identity);
    #[cfg(feature = "metrics")]
    telemetry::record_verify(started.elapsed());
    result
}

fn missing_keys<C, T>(missing: ErrorKind, issuer: &Issuer) -> Outcome<C, T> {
    match missing {
        ErrorKind::KeysUnavailable => {
            Outcome::Unavailable(ErrorKind::KeysUnavailable, issuer.store.retry_after())
        }
        kind => Outcome::Rejected(kind),
    }
}

/// Step 6: the token's binding, the typed validator and the layer-wide permissions;
/// then step 7 as far as it goes without waiting.
fn admit<C, T: TokenText>(
    policy: &Policy,
    verified: Verified<C>,
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
        if !validate(&verified.claims) {
            return Admitted::Done(Outcome::Rejected(ErrorKind::ClaimNotAccepted));
        }
    }
    if let Some(required) = &policy.permissions.required {
        trace.record(Trace::PERMISSIONS);
        if !required.is_met(&record.permissions) {
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
    verified: Verified<C>,
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
