//! Policy beyond "is this token valid": required claim values and claim validators
//! ([`Expected`], [`ClaimsView`]), requests that pass without a token ([`Exemption`],
//! [`RequestHead`]), paths of ambiguous form ([`path_ambiguity`]), paths as configuration
//! names them ([`PathPattern`]), and claim forwarding. They are configured on the
//! [`JwtAuthConfigBuilder`](crate::JwtAuthConfigBuilder); step-up authentication is the
//! [`StepUp`](crate::StepUp) guard.

mod claims;
mod exempt;
mod forward;
mod path;
mod pattern;

pub use claims::{ClaimsView, Expected};
pub use exempt::{Exemption, RequestHead};
pub use path::path_ambiguity;
pub use pattern::{InvalidPathPattern, PathPattern};

pub(crate) use claims::{Check, ClaimChecks, ClaimRule, PayloadCheck};
pub(crate) use exempt::{Exemptions, Predicate};
pub(crate) use forward::{Forwarded, Forwarding};
pub(crate) use path::unreserved;
