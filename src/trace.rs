//! [`Trace`]: which steps of the core's sequence ran for one token, for explanations
//! ([`Verifier::explain`](crate::Verifier::explain)). The core records its own steps;
//! the two sources record theirs (a JWT verified, an introspection answer received).

/// Which steps of the sequence ran for one token: a step not recorded here did not
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
    /// The credential went to the configured API keys: no JWS, no introspection.
    pub(crate) const API_KEY: u16 = 1 << 9;

    /// Records that `step` ran.
    pub(crate) fn record(&mut self, step: u16) {
        self.0 |= step;
    }

    /// Whether `step` ran.
    pub(crate) fn ran(self, step: u16) -> bool {
        self.0 & step != 0
    }
}
