//! The configured API keys as the third [`Source`] of verified credentials, beside JWT
//! verification and introspection.
//!
//! A lookup digests the presented key and reads the map by that digest: no secret is
//! compared, so the time a lookup takes says nothing about any configured key. A key
//! never waits for the network. Its record is built once per key, configuration and
//! claims type, and shared by every request that presents it, as the verified-token
//! cache shares a token's.

use std::any::TypeId;
use std::convert::Infallible;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::keys::{ApiKeys, Entry};
use crate::accept;
use crate::error::ErrorKind;
use crate::issuer::Issuer;
use crate::policy::Policy;
use crate::record::Accepted;
use crate::source::{Credential, Lookup, Refusal, Source};
use crate::time::unix_seconds;
use crate::trace::Trace;

/// The key's record for claims of type `C`: the one built before for that type, or
/// built now and kept beside those of other types.
fn accepted<C>(entry: &Entry, policy: &Policy, issuer: &Issuer) -> Result<Accepted<C>, ErrorKind>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    let type_id = TypeId::of::<C>();
    if let Some(accepted) = entry.record(type_id).and_then(Accepted::from_record) {
        return Ok(accepted);
    }
    let built = accept::accept_key::<C>(policy, issuer, &entry.payload, entry.permissions.clone())?;
    Accepted::from_record(entry.keep(type_id, &built.record)).ok_or(ErrorKind::InvalidClaim)
}

impl Source for ApiKeys {
    /// A key never waits.
    type Wait = Infallible;

    #[cfg(feature = "introspection")]
    fn issuer(self: &Arc<Self>) -> Arc<Issuer> {
        Arc::clone(self.stand_in())
    }

    /// The characters, then the key by its digest; unknown is `UnknownApiKey`, past its expiry `Expired`.
    fn lookup<C>(
        self: &Arc<Self>,
        policy: &Policy,
        token: Credential<'_>,
        trace: &mut Trace,
    ) -> Lookup<C, Infallible>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        if let Err(kind) = token.check() {
            return Lookup::Refused(kind);
        }
        let Some(entry) = self.get(token.bytes()) else {
            return Lookup::Refused(ErrorKind::UnknownApiKey);
        };
        // The configuration's own date, read by the configuration's clock: no leeway.
        if unix_seconds(policy.claims.clock.now()) >= entry.exp {
            return Lookup::Refused(ErrorKind::Expired);
        }
        match accepted::<C>(entry, policy, self.stand_in()) {
            Ok(accepted) => {
                trace.record(Trace::VERIFIED);
                Lookup::Verified(accepted)
            }
            Err(kind) => Lookup::Refused(kind),
        }
    }

    async fn finish<C>(
        &self,
        _policy: &Policy,
        wait: Infallible,
        _token: &str,
        _trace: &mut Trace,
    ) -> Result<Accepted<C>, Refusal>
    where
        C: DeserializeOwned + Send + Sync + 'static,
    {
        match wait {}
    }

    fn give_up(&self, wait: Infallible) -> Refusal {
        match wait {}
    }
}
