//! Certificate-bound tokens (RFC 8705) over real TLS on loopback: the example's
//! tokio-rustls acceptor, certificates made at test time, and clients with, without and
//! with another certificate.

use std::net::IpAddr;
use std::sync::Arc;

use crate::support::{Answer, answer, builder, ec_key, token};
use http::StatusCode;
use rustls::pki_types::PrivateKeyDer;
use rustls::{ClientConfig, RootCertStore};
use tower_jwt_auth::JwtAuthLayer;
use tower_jwt_auth::mtls::{ClientCertHeader, ClientCertificate, MtlsMode, PeerAddress};

/// A client trusting the test CA, presenting `identity` when given; aws-lc-rs named as
/// the provider, the same as the server's.
fn client(
    pki: &crate::mtls_server::Pki,
    identity: Option<&crate::mtls_server::Pki>,
) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).expect("CA");
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(
                vec![identity.client.0.clone()],
                PrivateKeyDer::Pkcs8(identity.client.1.clone_key()),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(config)
        .build()
        .expect("client")
}

struct Tls {
    port: u16,
    pki: crate::mtls_server::Pki,
}

async fn start(mode: MtlsMode) -> Tls {
    let pki = crate::mtls_server::pki("client-a").expect("pki");
    let config = builder(ec_key().key_set())
        .mtls(mode)
        .build()
        .expect("config");
    let listener = crate::support::listener().await;
    let port = listener.local_addr().expect("addr").port();
    let tls = crate::mtls_server::server_tls(&pki).expect("tls");
    tokio::spawn(crate::mtls_server::serve(
        listener,
        tls,
        crate::mtls_server::app(JwtAuthLayer::new(config)),
    ));
    Tls { port, pki }
}

async fn me(tls: &Tls, client: &reqwest::Client, access: &str) -> Answer {
    let response = client
        .get(format!("https://localhost:{}/me", tls.port))
        .bearer_auth(access)
        .send()
        .await
        .expect("request");
    answer(response).await
}

fn thumbprint(pki: &crate::mtls_server::Pki) -> String {
    ClientCertificate::from_der(pki.client.0.as_ref()).thumbprint()
}

#[tokio::test]
async fn a_certificate_bound_token_works_only_with_its_certificate() {
    let tls = start(MtlsMode::Allowed).await;
    let other = crate::mtls_server::pki("client-b").expect("pki");
    let with_cert = client(&tls.pki, Some(&tls.pki));
    let without_cert = client(&tls.pki, None);
    let bound = token(ec_key())
        .subject("a")
        .certificate_bound(&thumbprint(&tls.pki))
        .sign();
    let ok = me(&tls, &with_cert, &bound).await;
    ok.assert_ok();
    assert_eq!(ok.body, "a");
    me(&tls, &without_cert, &bound)
        .await
        .assert_invalid_token("token binding not satisfied");
    // Bound to another certificate (one from another CA is not even a valid client).
    let elsewhere = token(ec_key())
        .certificate_bound(&thumbprint(&other))
        .sign();
    me(&tls, &with_cert, &elsewhere)
        .await
        .assert_invalid_token("token binding not satisfied");
    // Unbound tokens pass in `allowed` mode, with or without a certificate.
    let plain = token(ec_key()).sign();
    me(&tls, &with_cert, &plain).await.assert_ok();
    me(&tls, &without_cert, &plain).await.assert_ok();
}

#[tokio::test]
async fn required_mode_refuses_unbound_tokens_and_off_refuses_bound_ones() {
    let required = start(MtlsMode::Required).await;
    let with_cert = client(&required.pki, Some(&required.pki));
    me(&required, &with_cert, &token(ec_key()).sign())
        .await
        .assert_invalid_token("token binding not satisfied");
    let bound = token(ec_key())
        .certificate_bound(&thumbprint(&required.pki))
        .sign();
    me(&required, &with_cert, &bound).await.assert_ok();

    let off = start(MtlsMode::Off).await;
    let with_cert = client(&off.pki, Some(&off.pki));
    let bound = token(ec_key())
        .certificate_bound(&thumbprint(&off.pki))
        .sign();
    let refused = me(&off, &with_cert, &bound).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    refused.assert_invalid_token("token binding not satisfied");
}

/// A plain-HTTP server behind an imagined TLS-terminating proxy: the layer reads the
/// certificate from `Client-Cert` (RFC 9440) when the sender is trusted; `peer` is the
/// address the application says the request came from.
async fn behind_proxy(header: ClientCertHeader, peer: Option<IpAddr>) -> crate::support::Server {
    let config = builder(ec_key().key_set())
        .mtls(MtlsMode::Allowed)
        .client_cert_header(header)
        .build()
        .expect("config");
    let app = crate::mtls_server::app(JwtAuthLayer::new(config)).layer(
        tower::util::MapRequestLayer::new(move |mut request: http::Request<axum::body::Body>| {
            if let Some(peer) = peer {
                request.extensions_mut().insert(PeerAddress(peer));
            }
            request
        }),
    );
    crate::support::Server::start_router(app).await
}

/// `Client-Cert` as RFC 9440 writes it: the DER as a structured-field byte sequence.
fn client_cert(pki: &crate::mtls_server::Pki) -> String {
    use base64::Engine as _;
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(pki.client.0.as_ref())
    )
}

const SECRET: &str = "a secret only the proxy knows";

#[tokio::test]
async fn a_certificate_forwarded_by_a_trusted_proxy_binds_and_an_untrusted_one_is_ignored() {
    let pki = crate::mtls_server::pki("client-a").expect("pki");
    let other = crate::mtls_server::pki("client-b").expect("pki");
    let bound = token(ec_key())
        .subject("a")
        .certificate_bound(&thumbprint(&pki))
        .sign();
    let server = behind_proxy(
        ClientCertHeader::new().trust_secret_header("x-proxy-secret", SECRET),
        None,
    )
    .await;
    let cert = client_cert(&pki);
    let me = |headers: Vec<(&'static str, String)>| {
        let server = &server;
        let bound = bound.clone();
        async move {
            let mut all: Vec<(&str, String)> = vec![("authorization", format!("Bearer {bound}"))];
            all.extend(headers);
            let borrowed: Vec<(&str, &str)> = all.iter().map(|(n, v)| (*n, v.as_str())).collect();
            server.get("/me", &borrowed).await
        }
    };
    let ok = me(vec![
        ("client-cert", cert.clone()),
        ("x-proxy-secret", SECRET.into()),
    ])
    .await;
    ok.assert_ok();
    assert_eq!(ok.body, "a");
    // From a sender without the secret (a client reaching the service directly): ignored.
    me(vec![("client-cert", cert.clone())])
        .await
        .assert_invalid_token("token binding not satisfied");
    me(vec![
        ("client-cert", cert.clone()),
        ("x-proxy-secret", "a guess".into()),
    ])
    .await
    .assert_invalid_token("token binding not satisfied");
    // Another certificate, or one that is not a byte sequence.
    me(vec![
        ("client-cert", client_cert(&other)),
        ("x-proxy-secret", SECRET.into()),
    ])
    .await
    .assert_invalid_token("token binding not satisfied");
    me(vec![
        ("client-cert", cert.trim_matches(':').to_owned()),
        ("x-proxy-secret", SECRET.into()),
    ])
    .await
    .assert_invalid_token("token binding not satisfied");

    // Trust by the peer address the application provides.
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let peers = ClientCertHeader::new().trust_peers([loopback]);
    let trusted = behind_proxy(peers.clone(), Some(loopback)).await;
    let header = format!("Bearer {bound}");
    let answer = trusted
        .get("/me", &[("authorization", &header), ("client-cert", &cert)])
        .await;
    answer.assert_ok();
    // A dual-stack listener gives an IPv4 peer as an IPv4-mapped IPv6 address.
    let mapped = IpAddr::from(std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped());
    let dual_stack = behind_proxy(peers.clone(), Some(mapped)).await;
    dual_stack
        .get("/me", &[("authorization", &header), ("client-cert", &cert)])
        .await
        .assert_ok();
    let elsewhere = behind_proxy(peers, Some(IpAddr::from([10, 0, 0, 9]))).await;
    elsewhere
        .get("/me", &[("authorization", &header), ("client-cert", &cert)])
        .await
        .assert_invalid_token("token binding not satisfied");
}

#[test]
fn a_forwarded_certificate_needs_mtls_and_a_trusted_proxy() {
    let base = || builder(ec_key().key_set());
    let with = |header: ClientCertHeader| {
        base()
            .mtls(MtlsMode::Allowed)
            .client_cert_header(header)
            .build()
    };
    let off = base()
        .client_cert_header(ClientCertHeader::new().trust_peers([IpAddr::from([10, 0, 0, 1])]))
        .build()
        .expect_err("mtls off");
    assert_eq!(off.path(), Some("client_cert"));
    let nobody = with(ClientCertHeader::new()).expect_err("nobody trusted");
    assert_eq!(nobody.path(), Some("client_cert"));
    let short = with(ClientCertHeader::new().trust_secret_header("x-proxy-secret", "short"))
        .expect_err("short secret");
    assert_eq!(short.path(), Some("client_cert"));
    let name = with(ClientCertHeader::new().trust_secret_header("bad header", SECRET))
        .expect_err("header name");
    assert_eq!(name.path(), Some("client_cert.secret_header"));
}
