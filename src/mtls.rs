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

/// The address of the peer a request came from, inserted into the request extensions by
/// the application (from axum's `ConnectInfo`, or its own accept loop), for
/// [`ClientCertHeader::trust_peers`]. It must be the socket's peer, never an address
/// read from `X-Forwarded-For` or a "real IP" header, which a client can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddress(pub std::net::IpAddr);

/// A shared secret, shown by `Debug` as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ProxySecret(pub(crate) Vec<u8>);

impl std::fmt::Debug for ProxySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The client certificate as a TLS-terminating proxy forwards it: the RFC 9440
/// `Client-Cert` header (a DER certificate as a structured-field byte sequence,
/// `:<base64>:`), read only from a proxy this configuration trusts. Off by default.
///
/// A request's own [`ClientCertificate`] extension, when there is one, wins. A
/// `Client-Cert` from a peer that is not trusted is ignored (and logged at DEBUG), as is
/// one that does not parse: a certificate-bound token then finds no certificate.
///
/// ```
/// use tower_jwt_auth::JwtAuthConfig;
/// use tower_jwt_auth::mtls::{ClientCertHeader, MtlsMode};
///
/// let builder = JwtAuthConfig::builder()
///     .mtls(MtlsMode::Allowed)
///     .client_cert_header(
///         ClientCertHeader::new().trust_secret_header("x-proxy-secret", "a secret the proxy sends"),
///     );
/// # let _ = builder;
/// ```
///
/// In a settings file: a `[client_cert]` table with `secret_header` and `secret_file`,
/// and/or `trusted_peers = ["10.0.0.5"]`.
#[must_use]
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientCertHeader {
    /// A header whose value must equal the shared secret for the proxy to be trusted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret_header: Option<String>,
    /// The shared secret, read from this file at `build()`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) secret_file: Option<std::path::PathBuf>,
    /// The shared secret given in code (never written out).
    #[serde(skip)]
    pub(crate) secret: Option<ProxySecret>,
    /// Peers trusted by address ([`PeerAddress`]).
    pub(crate) trusted_peers: Vec<std::net::IpAddr>,
}

impl ClientCertHeader {
    /// No trusted proxy yet: name one with [`trust_secret_header`](Self::trust_secret_header)
    /// or [`trust_peers`](Self::trust_peers).
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts a request whose `header` carries `secret` (compared in constant time). The
    /// proxy sets the header on every request it forwards, and removes any a client
    /// sent.
    pub fn trust_secret_header(
        mut self,
        header: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        self.secret_header = Some(header.into());
        self.secret = Some(ProxySecret(secret.into()));
        self
    }

    /// Trusts requests from these peer addresses, as the application gives them in the
    /// [`PeerAddress`] extension.
    pub fn trust_peers(mut self, peers: impl IntoIterator<Item = std::net::IpAddr>) -> Self {
        self.trusted_peers.extend(peers);
        self
    }
}

/// The compiled [`ClientCertHeader`].
#[derive(Debug)]
pub(crate) struct ForwardedCertificates {
    pub(crate) secret: Option<(http::HeaderName, ProxySecret)>,
    pub(crate) peers: Vec<std::net::IpAddr>,
}

/// The RFC 9440 header.
const CLIENT_CERT: &str = "client-cert";

impl ForwardedCertificates {
    /// The thumbprint of the certificate a trusted proxy forwarded; none when there is
    /// none, the sender is not trusted, or the header does not parse.
    pub(crate) fn thumbprint(
        &self,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Option<String> {
        let mut values = headers.get_all(CLIENT_CERT).iter();
        let value = values.next()?;
        if !self.trusts(headers, extensions) {
            tracing::debug!(
                "a Client-Cert header from a sender this layer does not trust was ignored"
            );
            return None;
        }
        if values.next().is_some() {
            tracing::debug!("several Client-Cert headers were ignored");
            return None;
        }
        match parse_byte_sequence(value.as_bytes()) {
            Some(der) => Some(ClientCertificate::from_der(der).thumbprint()),
            None => {
                tracing::debug!("a Client-Cert header that is not a byte sequence was ignored");
                None
            }
        }
    }

    /// Removes the shared secret's header, so the application behind never sees it.
    pub(crate) fn scrub(&self, headers: &mut http::HeaderMap) {
        if let Some((name, _)) = &self.secret {
            headers.remove(name);
        }
    }

    fn trusts(&self, headers: &http::HeaderMap, extensions: &http::Extensions) -> bool {
        let by_secret = self.secret.as_ref().is_some_and(|(name, secret)| {
            let mut values = headers.get_all(name).iter();
            // Exactly one value: a client's own beside the proxy's is not trusted.
            match (values.next(), values.next()) {
                (Some(value), None) => {
                    aws_lc_rs::constant_time::verify_slices_are_equal(value.as_bytes(), &secret.0)
                        .is_ok()
                }
                _ => false,
            }
        });
        // `::ffff:10.0.0.5` from a dual-stack listener is `10.0.0.5`.
        by_secret
            || extensions.get::<PeerAddress>().is_some_and(|peer| {
                let peer = peer.0.to_canonical();
                self.peers
                    .iter()
                    .any(|trusted| trusted.to_canonical() == peer)
            })
    }
}

/// An RFC 8941 byte sequence item: `:`, base64 (padding and trailing bits as the RFC
/// asks parsers to allow), `:`, then any parameters (ignored), with optional
/// surrounding spaces.
fn parse_byte_sequence(value: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const STANDARD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let value = value.trim_ascii();
    let rest = value.strip_prefix(b":")?;
    let end = rest.iter().position(|b| *b == b':')?;
    let (inner, after) = (&rest[..end], &rest[end + 1..]);
    if !(after.is_empty() || after.starts_with(b";")) {
        return None;
    }
    let der = STANDARD.decode(inner).ok()?;
    (!der.is_empty()).then_some(der)
}

#[cfg(test)]
mod tests {
    use super::parse_byte_sequence;

    #[test]
    fn byte_sequences_parse_with_or_without_padding_and_nothing_else_does() {
        assert_eq!(parse_byte_sequence(b":AQID:"), Some(vec![1, 2, 3]));
        assert_eq!(parse_byte_sequence(b" :AQI=: "), Some(vec![1, 2]));
        assert_eq!(parse_byte_sequence(b":AQI:"), Some(vec![1, 2]));
        assert_eq!(parse_byte_sequence(b":AQID:;x=1"), Some(vec![1, 2, 3]));
        assert_eq!(parse_byte_sequence(b":AQJ=:"), Some(vec![1, 2]));
        for bad in [
            &b"AQID"[..],
            b":AQID",
            b"::",
            b":A*ID:",
            b":AQ-_:",
            b":AQID:x",
        ] {
            assert_eq!(parse_byte_sequence(bad), None, "{bad:?}");
        }
    }
}
