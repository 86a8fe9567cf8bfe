//! The test kit (feature `testing`): key pairs, JWK/JWKS/PEM export, token minting, and
//! [`MockIssuer`], a real OIDC issuer on a loopback port with rotation and fault
//! injection.
//!
//! Everything a test of a protected API needs without a real identity provider:
//!
//! ```
//! use tower_jwt_auth::testing::{TestKey, TokenBuilder, jwks};
//!
//! let key = TestKey::rsa();
//! let document = jwks([&key]);                 // serve or configure it
//! let good = TokenBuilder::new(&key)
//!     .issuer("https://idp.example.com/")
//!     .audience("https://api.example.com")
//!     .scope("read write")
//!     .sign();
//! let forged = TokenBuilder::new(&key).signed_by_foreign_key().sign();
//! # let _ = (document, good, forged);
//! ```
//!
//! RSA key generation takes tens of milliseconds; share keys between tests where you can.

mod dpop;
mod issuer;
mod keys;
mod token;

pub use dpop::DpopProof;
pub use issuer::{DEFAULT_AUDIENCE, Endpoint, Fault, MockIssuer, MockIssuerBuilder};
pub use keys::{TestKey, jwks};
pub use token::{TokenBuilder, encode_json};
