//! The state step: after a token is verified and its permissions met, is it revoked,
//! and (where single use is asked for) was it used before?
//!
//! It runs on every request, cached tokens included: the verified-token cache keeps a
//! token's [`Tracked`] keys, never the answer of a store. Revocation comes first, so a
//! revoked single-use token is not spent. With in-memory stores the step finishes
//! without waiting; with a network store it is one future the caller awaits.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ErrorKind;
#[cfg(feature = "dpop")]
use crate::state::{ProofRecord, ProofStore};
use crate::state::{
    ReplayStore, RevocationList, RevocationStatus, StateKey, StoreError, StoreFailure, record_life,
};
use crate::telemetry;
use crate::text::Text;
use crate::time::{Clock, unix_seconds};

/// How long a client is told to wait when a token state store does not answer.
pub(crate) const STORE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the state step needs of a verified token: the digests of (iss, jti) and
/// (iss, sub), and its `iat` and `exp`. No claim text is kept.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) token: Option<StateKey>,
    pub(crate) subject: Option<StateKey>,
    pub(crate) iat: Option<f64>,
    pub(crate) exp: f64,
}

impl Tracked {
    pub(crate) fn new(
        iss: &str,
        jti: Option<&str>,
        sub: Option<&str>,
        iat: Option<f64>,
        exp: f64,
    ) -> Self {
        Self {
            token: jti.map(|jti| StateKey::token(iss, jti)),
            subject: sub.map(|sub| StateKey::subject(iss, sub)),
            iat,
            exp,
        }
    }

    /// The keys of an API key: its id under the API key tag, never an issuer's subject;
    /// no `jti`, no `iat` (every revocation of the id refuses it).
    pub(crate) fn api_key(id: Option<&str>, exp: f64) -> Self {
        Self {
            token: None,
            subject: id.map(StateKey::api_key),
            iat: None,
            exp,
        }
    }

    /// The keys of a token the layer already verified, read again from its payload (for
    /// a route guard behind a layer that did not keep them); `issuer` stands in for an
    /// absent `iss` (an introspection answer may leave it out).
    pub(crate) fn from_payload(payload: &[u8], issuer: &str, api_key: bool) -> Option<Self> {
        #[derive(Deserialize)]
        struct Payload<'a> {
            #[serde(borrow)]
            iss: Option<Text<'a>>,
            #[serde(default, borrow, deserialize_with = "lenient")]
            jti: Option<Text<'a>>,
            #[serde(default, borrow, deserialize_with = "lenient")]
            sub: Option<Text<'a>>,
            iat: Option<f64>,
            exp: Option<f64>,
        }
        fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Text<'de>>, D::Error> {
            let raw = <&serde_json::value::RawValue>::deserialize(d)?;
            Ok(Text::deserialize(raw).ok())
        }
        let claims: Payload<'_> = serde_json::from_slice(payload).ok()?;
        let exp = claims.exp.unwrap_or(f64::INFINITY);
        if api_key {
            return Some(Self::api_key(
                claims.sub.as_ref().map(|t| t.0.as_ref()),
                exp,
            ));
        }
        let iss = claims.iss.as_ref().map_or(issuer, |iss| iss.0.as_ref());
        Some(Self::new(
            iss,
            claims.jti.as_ref().map(|t| t.0.as_ref()),
            claims.sub.as_ref().map(|t| t.0.as_ref()),
            claims.iat,
            exp,
        ))
    }
}

/// A DPoP proof that passed every check but replay, as the state step records it.
#[cfg(feature = "dpop")]
#[derive(Debug)]
pub(crate) struct ProofCheck {
    /// [`StateKey::proof_key`] of the proof's key thumbprint.
    pub(crate) client: StateKey,
    /// [`StateKey::proof`] of the thumbprint and the proof's `jti`.
    pub(crate) proof: StateKey,
    pub(crate) ttl: Duration,
    /// The most live proofs one client key may have.
    pub(crate) limit: usize,
    /// Whether server nonces are on: a key over its limit is then asked for a fresh
    /// nonce rather than refused outright.
    pub(crate) nonces: bool,
}

/// Without DPoP no request presents a proof: there is no value of this type.
#[cfg(not(feature = "dpop"))]
#[derive(Debug)]
pub(crate) enum ProofCheck {}

/// The compiled state options: the stores and how to use them.
pub(crate) struct StateRules {
    /// Where single-use keys go (an in-memory store unless one was configured).
    pub(crate) replay: Arc<dyn ReplayStore>,
    /// Where DPoP proofs go: never the single-use store, so proofs cannot fill it.
    #[cfg(feature = "dpop")]
    pub(crate) proofs: Arc<dyn ProofStore>,
    /// Whether `proofs` is the default in-memory store (carried over by a reload).
    #[cfg(feature = "dpop")]
    pub(crate) default_proofs: bool,
    pub(crate) revocation: Option<Arc<dyn RevocationList>>,
    /// Every token is single use, layer-wide.
    pub(crate) single_use: bool,
    /// Whether `replay` is the default in-memory store (carried over by a reload).
    pub(crate) default_replay: bool,
    /// Whether `revocation` is an in-memory list the configuration asked for by name
    /// (a settings file), carried over by a reload.
    pub(crate) default_revocation: bool,
    /// How long a single-use key is kept for a token without `exp` (an introspected
    /// one): the revocation retention. A token with `exp` is kept until then, however
    /// long that is.
    pub(crate) retention: Duration,
    pub(crate) failure: StoreFailure,
    /// The claim leeway: the skew tolerated between clocks. A single-use key lives
    /// until `exp` plus two leeways (the one every replica accepts the token for, and the
    /// skew between the replica that writes the record and the one that reads it); a
    /// subject revocation also covers tokens issued up to one leeway after it.
    pub(crate) leeway: f64,
    pub(crate) clock: Arc<dyn Clock>,
    /// Whether a store is failing now, so that each outage is logged once.
    outage: AtomicBool,
    /// Whether the proof store is full now, so that it is logged once per episode.
    #[cfg(feature = "dpop")]
    proofs_full: AtomicBool,
    /// Whether a caller that cannot wait for a network store was warned about.
    warned_unwaitable: AtomicBool,
}

impl std::fmt::Debug for StateRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateRules")
            .field("replay", &self.replay)
            .field("revocation", &self.revocation)
            .field("single_use", &self.single_use)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// The state step's answer: now, or after a store round trip.
pub(crate) enum Check {
    Done(Result<(), ErrorKind>),
    Wait(Waiting),
}

pub(crate) type Waiting = Pin<Box<dyn Future<Output = Result<(), ErrorKind>> + Send>>;

impl StateRules {
    pub(crate) fn new(
        replay: Arc<dyn ReplayStore>,
        #[cfg(feature = "dpop")] proofs: Arc<dyn ProofStore>,
        revocation: Option<Arc<dyn RevocationList>>,
        single_use: bool,
        failure: StoreFailure,
        leeway: f64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            replay,
            #[cfg(feature = "dpop")]
            proofs,
            #[cfg(feature = "dpop")]
            default_proofs: false,
            revocation,
            single_use,
            default_replay: false,
            default_revocation: false,
            retention: Duration::from_secs(24 * 3600),
            failure,
            leeway,
            clock,
            outage: AtomicBool::new(false),
            #[cfg(feature = "dpop")]
            proofs_full: AtomicBool::new(false),
            warned_unwaitable: AtomicBool::new(false),
        }
    }

    /// `true` the first time it is called for this configuration: a caller that cannot
    /// wait for a network store (the interceptor, `Verifier::verify`) is warned once.
    pub(crate) fn warn_once_unwaitable(&self) -> bool {
        !self.warned_unwaitable.swap(true, Ordering::Relaxed)
    }

    /// Whether the layer's state step has anything to do for a token: a store to ask,
    /// or a DPoP proof to record.
    pub(crate) fn runs_layer_check(&self, proof: bool) -> bool {
        self.tracks() || proof
    }

    /// Whether verification must keep a token's [`Tracked`] keys for the layer's checks.
    pub(crate) fn tracks(&self) -> bool {
        self.single_use || self.revocation.is_some()
    }

    /// The layer's state checks for a verified token: revocation, the DPoP proof's
    /// `jti` when there is one (its key and how long to keep it), then single use when
    /// every token is single use.
    pub(crate) fn check_layer(
        self: &Arc<Self>,
        tracked: Option<&Arc<Tracked>>,
        proof: Option<ProofCheck>,
    ) -> Check {
        if !self.runs_layer_check(proof.is_some()) {
            return Check::Done(Ok(()));
        }
        self.check(tracked, true, proof, self.single_use)
    }

    /// A route guard's single-use check, behind a layer that checked revocation. When the
    /// layer already makes every token single use, the token was spent there.
    pub(crate) fn check_route(self: &Arc<Self>, tracked: Option<&Arc<Tracked>>) -> Check {
        if self.single_use {
            return Check::Done(Ok(()));
        }
        self.check(tracked, false, None, true)
    }

    /// Revocation (when asked for and a list is configured), then the DPoP proof, then
    /// single use when `single_use`.
    fn check(
        self: &Arc<Self>,
        tracked: Option<&Arc<Tracked>>,
        revocation: bool,
        proof: Option<ProofCheck>,
        single_use: bool,
    ) -> Check {
        if let (Some(list), Some(tracked)) = (self.revocation.as_ref(), tracked)
            && revocation
        {
            match list.status(tracked.token, tracked.subject).into_ready() {
                Ok(status) => {
                    if let Err(kind) = self.judge_revocation(status, tracked) {
                        return Check::Done(Err(kind));
                    }
                }
                Err(waiting) => {
                    let rules = Arc::clone(self);
                    let tracked = Arc::clone(tracked);
                    return Check::Wait(Box::pin(async move {
                        rules.judge_revocation(waiting.await, &tracked)?;
                        #[cfg(feature = "dpop")]
                        if let Some(proof) = proof {
                            let record = rules
                                .proofs
                                .record(proof.client, proof.proof, proof.ttl, proof.limit)
                                .await;
                            rules.judge_proof(record, proof.nonces)?;
                        }
                        if single_use {
                            rules.spend(&tracked).await
                        } else {
                            Ok(())
                        }
                    }));
                }
            }
        }
        #[cfg(not(feature = "dpop"))]
        if let Some(proof) = proof {
            match proof {}
        }
        #[cfg(feature = "dpop")]
        if let Some(proof) = proof {
            let record = self
                .proofs
                .record(proof.client, proof.proof, proof.ttl, proof.limit);
            match record.into_ready() {
                Ok(record) => {
                    if let Err(kind) = self.judge_proof(record, proof.nonces) {
                        return Check::Done(Err(kind));
                    }
                }
                Err(waiting) => {
                    let rules = Arc::clone(self);
                    let tracked = tracked.map(Arc::clone);
                    return Check::Wait(Box::pin(async move {
                        rules.judge_proof(waiting.await, proof.nonces)?;
                        match (single_use, tracked) {
                            (false, _) => Ok(()),
                            (true, Some(tracked)) => rules.spend(&tracked).await,
                            (true, None) => Err(ErrorKind::MissingClaim),
                        }
                    }));
                }
            }
        }
        if !single_use {
            return Check::Done(Ok(()));
        }
        let Some(tracked) = tracked else {
            // Without its keys, single use cannot be enforced.
            return Check::Done(Err(ErrorKind::MissingClaim));
        };
        let Some(key) = tracked.token else {
            return Check::Done(Err(ErrorKind::MissingClaim));
        };
        match self.replay.insert_once(key, self.ttl(tracked)).into_ready() {
            Ok(result) => Check::Done(self.judge_use(result)),
            Err(waiting) => {
                let rules = Arc::clone(self);
                Check::Wait(Box::pin(async move { rules.judge_use(waiting.await) }))
            }
        }
    }

    /// Records a single use, waiting for the store if it must.
    async fn spend(&self, tracked: &Tracked) -> Result<(), ErrorKind> {
        let key = tracked.token.ok_or(ErrorKind::MissingClaim)?;
        let result = self.replay.insert_once(key, self.ttl(tracked)).await;
        self.judge_use(result)
    }

    /// How long a single-use key lives: until the token expires for every replica, at
    /// least one second. A replica accepts the token until `exp` plus the leeway by its
    /// own clock, and the store counts the record's life by the writer's clock: one more
    /// leeway covers a reader whose clock runs that much behind the writer's. A shorter
    /// life would let the token work again before it expires, so the retention bounds
    /// only a token without `exp` (an introspected one).
    fn ttl(&self, tracked: &Tracked) -> Duration {
        if tracked.exp.is_infinite() {
            return self.retention.max(Duration::from_secs(1));
        }
        let now = unix_seconds(self.clock.now());
        record_life(tracked.exp + 2.0 * self.leeway - now)
    }

    fn judge_revocation(
        &self,
        status: Result<RevocationStatus, StoreError>,
        tracked: &Tracked,
    ) -> Result<(), ErrorKind> {
        match status {
            Ok(status) => {
                self.answered();
                // The revocation instant is this replica's clock and `iat` the issuer's:
                // a token the issuer dated up to one leeway later may predate it.
                let iat = tracked.iat.map(|iat| iat - self.leeway);
                if status.revokes(iat) {
                    Err(ErrorKind::TokenRevoked)
                } else {
                    Ok(())
                }
            }
            Err(error) => self.failed(&error),
        }
    }

    /// A DPoP proof's `jti` seen before is a replayed proof; a key over its limit of
    /// live proofs is refused (or asked for a fresh nonce, when nonces are on). A full
    /// proof store refuses the request (503) even in fail-open mode: it is full because
    /// proofs arrive faster than they expire, not because a server is down, and passing
    /// would make every proof replayable for as long as the flood lasts.
    #[cfg(feature = "dpop")]
    fn judge_proof(
        &self,
        result: Result<ProofRecord, StoreError>,
        nonces: bool,
    ) -> Result<(), ErrorKind> {
        match result {
            Ok(ProofRecord::Fresh) => {
                self.answered();
                if self.proofs_full.load(Ordering::Relaxed)
                    && self.proofs_full.swap(false, Ordering::Relaxed)
                {
                    tracing::info!("the DPoP proof store takes proofs again");
                }
                Ok(())
            }
            Ok(ProofRecord::Replayed) => {
                self.answered();
                tracing::debug!(
                    check = "jti",
                    "DPoP proof refused: its jti was seen before (a replay)"
                );
                Err(ErrorKind::InvalidDpopProof)
            }
            Ok(ProofRecord::KeyOverLimit) => {
                self.answered();
                tracing::debug!(
                    check = "limit",
                    "DPoP proof refused: its key already has as many live proofs as one key may have"
                );
                Err(if nonces {
                    ErrorKind::UseDpopNonce
                } else {
                    ErrorKind::InvalidDpopProof
                })
            }
            Err(StoreError::Full) => {
                if !self.proofs_full.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the DPoP proof store is full of live proofs; DPoP requests get 503 until proofs expire (single-use tokens are not affected)"
                    );
                }
                telemetry::count_store_failure(false);
                Err(ErrorKind::StoreUnavailable)
            }
            Err(error) => self.failed(&error),
        }
    }

    fn judge_use(&self, result: Result<bool, StoreError>) -> Result<(), ErrorKind> {
        match result {
            Ok(true) => {
                self.answered();
                Ok(())
            }
            Ok(false) => {
                self.answered();
                Err(ErrorKind::TokenReplayed)
            }
            Err(error) => self.failed(&error),
        }
    }

    fn answered(&self) {
        if self.outage.load(Ordering::Relaxed) && self.outage.swap(false, Ordering::Relaxed) {
            tracing::info!("the token state store answers again");
        }
    }

    /// A store that could not answer: refuse (503) or, in fail-open mode, pass.
    fn failed(&self, error: &StoreError) -> Result<(), ErrorKind> {
        let open = self.failure == StoreFailure::Open;
        if !self.outage.swap(true, Ordering::Relaxed) {
            if open {
                tracing::warn!(
                    %error,
                    "the token state store does not answer; requests pass without revocation, single-use and DPoP proof replay checks (fail-open) until it does"
                );
            } else {
                tracing::warn!(
                    %error,
                    "the token state store does not answer; requests that need it get 503 until it does"
                );
            }
        }
        telemetry::count_store_failure(open);
        if open {
            Ok(())
        } else {
            Err(ErrorKind::StoreUnavailable)
        }
    }
}
