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
use crate::payload::Text;
use crate::state::{
    ReplayStore, RevocationList, RevocationStatus, StateKey, StoreError, StoreFailure,
};
use crate::telemetry;
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

    /// The keys of a token the layer already verified, read again from its payload (for
    /// a route guard behind a layer that did not keep them); `issuer` stands in for an
    /// absent `iss` (an introspection answer may leave it out).
    pub(crate) fn from_payload(payload: &[u8], issuer: &str) -> Option<Self> {
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
        let iss = claims.iss.as_ref().map_or(issuer, |iss| iss.0.as_ref());
        Some(Self::new(
            iss,
            claims.jti.as_ref().map(|t| t.0.as_ref()),
            claims.sub.as_ref().map(|t| t.0.as_ref()),
            claims.iat,
            claims.exp.unwrap_or(f64::INFINITY),
        ))
    }
}

/// The compiled state options: the stores and how to use them.
pub(crate) struct StateRules {
    /// Where single-use keys go (an in-memory store unless one was configured).
    pub(crate) replay: Arc<dyn ReplayStore>,
    pub(crate) revocation: Option<Arc<dyn RevocationList>>,
    /// Every token is single use, layer-wide.
    pub(crate) single_use: bool,
    /// Whether `replay` is the default in-memory store (carried over by a reload).
    pub(crate) default_replay: bool,
    /// Whether `revocation` is an in-memory list the configuration asked for by name
    /// (a settings file), carried over by a reload.
    pub(crate) default_revocation: bool,
    /// How long a single-use key is kept for a token without `exp` (an introspected
    /// one): the configured maximum token lifetime. A token with `exp` is kept until
    /// then, however long that is.
    pub(crate) max_lifetime: Duration,
    pub(crate) failure: StoreFailure,
    /// The claim leeway, added to `exp` for the life of a single-use key.
    pub(crate) leeway: f64,
    pub(crate) clock: Arc<dyn Clock>,
    /// Whether a store is failing now, so that each outage is logged once.
    outage: AtomicBool,
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
        revocation: Option<Arc<dyn RevocationList>>,
        single_use: bool,
        failure: StoreFailure,
        leeway: f64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            replay,
            revocation,
            single_use,
            default_replay: false,
            default_revocation: false,
            max_lifetime: Duration::from_secs(24 * 3600),
            failure,
            leeway,
            clock,
            outage: AtomicBool::new(false),
        }
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
        proof: Option<(StateKey, Duration)>,
    ) -> Check {
        if !self.tracks() && proof.is_none() {
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
        proof: Option<(StateKey, Duration)>,
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
                        if let Some((key, ttl)) = proof {
                            let fresh = rules.replay.insert_once(key, ttl).await;
                            rules.judge_proof(fresh)?;
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
        if let Some((key, ttl)) = proof {
            match self.replay.insert_once(key, ttl).into_ready() {
                Ok(fresh) => {
                    if let Err(kind) = self.judge_proof(fresh) {
                        return Check::Done(Err(kind));
                    }
                }
                Err(waiting) => {
                    let rules = Arc::clone(self);
                    let tracked = tracked.map(Arc::clone);
                    return Check::Wait(Box::pin(async move {
                        rules.judge_proof(waiting.await)?;
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

    /// How long a single-use key lives: until the token expires (with the leeway), at
    /// least one second. A shorter life would let the token work again before it
    /// expires, so the maximum token lifetime bounds only a token without `exp` (an
    /// introspected one); an absurd `exp` is kept a century, which stores accept.
    fn ttl(&self, tracked: &Tracked) -> Duration {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        if tracked.exp.is_infinite() {
            return self.max_lifetime.max(Duration::from_secs(1));
        }
        let now = unix_seconds(self.clock.now());
        let left = tracked.exp + self.leeway - now;
        Duration::try_from_secs_f64(left)
            .unwrap_or(if left > 0.0 { CENTURY } else { Duration::ZERO })
            .clamp(Duration::from_secs(1), CENTURY)
    }

    fn judge_revocation(
        &self,
        status: Result<RevocationStatus, StoreError>,
        tracked: &Tracked,
    ) -> Result<(), ErrorKind> {
        match status {
            Ok(status) => {
                self.answered();
                if status.revokes(tracked.iat) {
                    Err(ErrorKind::TokenRevoked)
                } else {
                    Ok(())
                }
            }
            Err(error) => self.failed(&error),
        }
    }

    /// A DPoP proof's `jti` seen before is a replayed proof.
    fn judge_proof(&self, result: Result<bool, StoreError>) -> Result<(), ErrorKind> {
        match self.judge_use(result) {
            Err(ErrorKind::TokenReplayed) => Err(ErrorKind::InvalidDpopProof),
            other => other,
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
