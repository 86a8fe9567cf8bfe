//! An axum API behind TLS with client certificates, accepting certificate-bound access
//! tokens (RFC 8705 section 3): the TLS acceptor (tokio-rustls) reads the client's
//! certificate after the handshake and inserts it into every request of the connection
//! as a `ClientCertificate`; the layer checks a token's `cnf["x5t#S256"]` against it.
//!
//! ```sh
//! cargo run --example mtls_server
//! ```
//!
//! It makes a throwaway CA, a server certificate for `localhost` and a client
//! certificate, writes them to a temporary directory, starts an embedded mock issuer,
//! and prints a curl command with the client certificate and a token bound to it.
//! `LISTEN_ADDR` sets the address (default `127.0.0.1:3443`). Client certificates are
//! optional at the TLS level (a client without one connects), so that unbound tokens
//! keep working: the token's binding decides.

#[path = "support/logs.rs"]
mod logs;

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;
use tower_jwt_auth::mtls::{ClientCertificate, MtlsMode};
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::{Claims, JwtAuthConfig, JwtAuthLayer, StandardClaims};

/// A throwaway public-key infrastructure: a CA, and a server and a client certificate
/// it signed.
pub(crate) struct Pki {
    pub(crate) ca: CertificateDer<'static>,
    pub(crate) ca_pem: String,
    pub(crate) server: (CertificateDer<'static>, PrivatePkcs8KeyDer<'static>),
    pub(crate) client: (CertificateDer<'static>, PrivatePkcs8KeyDer<'static>),
    pub(crate) client_pem: (String, String),
}

/// A CA, a server certificate for `localhost` and `127.0.0.1`, and a client certificate
/// named `client`.
///
/// # Errors
///
/// When a key or certificate cannot be made.
pub(crate) fn pki(client_name: &str) -> Result<Pki, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tower-jwt-auth test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| -> Result<_, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.clone())?;
        // A subject of its own: the default one would equal the CA's and look self-signed.
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert, key))
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()])?;
    let (client_cert, client_key) = leaf(vec![client_name.into()])?;
    Ok(Pki {
        ca: ca_cert.der().clone(),
        ca_pem: ca_cert.pem(),
        server: (
            server_cert.der().clone(),
            PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        ),
        client_pem: (client_cert.pem(), client_key.serialize_pem()),
        client: (
            client_cert.der().clone(),
            PrivatePkcs8KeyDer::from(client_key.serialize_der()),
        ),
    })
}

/// The server's TLS settings: aws-lc-rs named as the provider (never a process default),
/// client certificates from the CA verified when sent, and optional.
///
/// # Errors
///
/// When the certificates do not fit together.
pub(crate) fn server_tls(pki: &Pki) -> Result<Arc<ServerConfig>, Box<dyn Error>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone())?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .allow_unauthenticated()
            .build()?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![pki.server.0.clone()],
            PrivateKeyDer::Pkcs8(pki.server.1.clone_key()),
        )?;
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener`: each connection's client certificate, when it
/// sent one, goes into every request of that connection as a [`ClientCertificate`].
pub(crate) async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, app: Router) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCertificate::from_der(leaf.as_ref()));
            let service = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    if let Some(certificate) = &certificate {
                        request.extensions_mut().insert(certificate.clone());
                    }
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn me(Claims(claims): Claims<StandardClaims>) -> String {
    claims.sub.clone().unwrap_or_default()
}

/// The protected app.
pub(crate) fn app(layer: JwtAuthLayer) -> Router {
    Router::new().route("/me", get(me)).layer(layer)
}

/// Writes a private key readable by its owner only: the directory is the shared
/// temporary one.
fn write_private(path: &std::path::Path, key: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        // An existing file keeps its mode when opened: make it private first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    options.open(path)?.write_all(key)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    logs::init();
    let listen: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3443".into())
        .parse()?;
    let pki = pki("demo-client")?;
    let dir = std::env::temp_dir().join("tower-jwt-auth-mtls");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem)?;
    std::fs::write(dir.join("client.pem"), &pki.client_pem.0)?;
    write_private(&dir.join("client.key"), pki.client_pem.1.as_bytes())?;

    let issuer = MockIssuer::start().await;
    let config = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .mtls(MtlsMode::Allowed)
        .build()?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let thumbprint = ClientCertificate::from_der(pki.client.0.as_ref()).thumbprint();
    let bound = issuer
        .token()
        .subject("demo-client")
        .certificate_bound(&thumbprint)
        .sign();
    println!(
        "API on https://localhost:{} (mTLS, certificate-bound tokens)\n",
        addr.port()
    );
    println!(
        "curl --cacert {ca} --cert {cert} --key {key} https://localhost:{port}/me \\\n  -H 'Authorization: Bearer {bound}'\n",
        ca = dir.join("ca.pem").display(),
        cert = dir.join("client.pem").display(),
        key = dir.join("client.key").display(),
        port = addr.port(),
    );
    println!("Without --cert/--key, the same token gets 401 (token binding not satisfied).");
    let tls = server_tls(&pki)?;
    tokio::select! {
        () = serve(listener, tls, app(JwtAuthLayer::new(config))) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
