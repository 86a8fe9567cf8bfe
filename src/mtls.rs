//! Certificate-bound access tokens (RFC 8705 section 3): a token whose `cnf` holds
//! `x5t#S256` works only on a request whose TLS client certificate has that SHA-256
//! thumbprint. The layer does not terminate TLS: the server's TLS acceptor puts the
//! client's leaf certificate into the request extensions as a [`ClientCertificate`].

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Whether certificate-bound tokens are refused, accepted, or required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MtlsMode {
    /// A token with `cnf["x5t#S256"]` is refused: the layer cannot check it. The default.
    #[default]
    Off,
    /// Bound tokens are checked against the client certificate; unbound ones pass.
    Allowed,
    /// Every token must be bound to the request's client certificate.
    Required,
}

/// The DER of the TLS client certificate (the leaf) of a request, inserted into the
/// request extensions by the code that accepts TLS connections. With tokio-rustls, after
/// the handshake: `tls.get_ref().1.peer_certificates()` gives it, and a hyper service
/// wrapper inserts it into every request of that connection (see
/// `examples/mtls_server.rs`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate(Vec<u8>);

impl ClientCertificate {
    /// A certificate from its DER bytes.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Self {
        Self(der.into())
    }

    /// The DER bytes.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.0
    }

    /// The RFC 8705 thumbprint: base64url of the SHA-256 of the DER, what a bound
    /// token's `cnf["x5t#S256"]` holds.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &self.0))
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientCertificate")
            .field(&self.thumbprint())
            .finish()
    }
}
