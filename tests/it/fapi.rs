//! The FAPI 2.0 resource-server profile's conformance matrix (docs/fapi.md): one test
//! per row, named after the rule, over real HTTP with the mock issuer's PS256 and ES256
//! tokens, DPoP-bound and certificate-bound; then every weakening setter after
//! `profile(Fapi2)`, each refused at `build()` by the rule it breaks.

use std::net::IpAddr;
use std::sync::OnceLock;

use axum::Router;
use axum::routing::get;
use http::StatusCode;
use serde_json::json;
use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
use tower_jwt_auth::mtls::{ClientCertHeader, ClientCertificate, MtlsMode, PeerAddress};
use tower_jwt_auth::state::MemoryRevocationList;
use tower_jwt_auth::testing::{DpopProof, MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::{
    Algorithm, ConfigErrorKind, JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer, Profile,
    RequirePermission, TokenSource,
};

use crate::support::{Answer, Server, whoami};

/// The API's public URL, which DPoP proofs name.
const BASE: &str = "https://api.example.test";

/// The client's DPoP key.
fn client_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::ec_p256().with_kid("client"))
}

/// The client's TLS certificate, as a TLS-terminating proxy forwards it (RFC 9440).
fn pki() -> &'static crate::mtls_server::Pki {
    static PKI: OnceLock<crate::mtls_server::Pki> = OnceLock::new();
    PKI.get_or_init(|| crate::mtls_server::pki("fapi-client").expect("pki"))
}

fn certificate_thumbprint() -> String {
    ClientCertificate::from_der(pki().client.0.as_ref()).thumbprint()
}

fn client_cert_header() -> String {
    use base64::Engine as _;
    let der = pki().client.0.as_ref();
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// What the profile needs beside itself: DPoP and mTLS (behind a proxy on loopback), a
/// revocation list.
fn fapi(issuer: &MockIssuer) -> JwtAuthConfigBuilder {
    crate::support::issuer_config(issuer)
        .profile(Profile::Fapi2)
        .dpop(
            DpopOptions::new(DpopMode::Allowed)
                .public_base_url(BASE)
                .algorithms([Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA]),
        )
        .mtls(MtlsMode::Allowed)
        .client_cert_header(ClientCertHeader::new().trust_peers([IpAddr::from([127, 0, 0, 1])]))
        .revocation_list(MemoryRevocationList::default())
}

/// `/documents` needs `read`; `/me` any token.
async fn serve(config: JwtAuthConfig) -> Server {
    let app = Router::new()
        .route("/me", get(whoami))
        .route(
            "/documents",
            get(whoami).route_layer(RequirePermission("read")),
        )
        .layer(JwtAuthLayer::new(config))
        .layer(tower::util::MapRequestLayer::new(
            |mut request: http::Request<axum::body::Body>| {
                // The proxy in front is on loopback.
                request
                    .extensions_mut()
                    .insert(PeerAddress(IpAddr::from([127, 0, 0, 1])));
                request
            },
        ));
    Server::start_router(app).await
}

/// A mock issuer signing with RSA (PS256 tokens), and the API in front of it.
async fn rsa_api() -> (MockIssuer, Server, JwtAuthConfig) {
    let issuer = MockIssuer::builder().key(TestKey::rsa_pss()).start().await;
    let config = fapi(&issuer).build().expect("the profile builds");
    let server = serve(config.clone()).await;
    (issuer, server, config)
}

/// A token as FAPI 2.0 and RFC 9068 want it, before its binding: PS256 (the mock
/// issuer's RSA key), `typ` at+jwt, every RFC 9068 claim, ten minutes.
fn access(issuer: &MockIssuer) -> TokenBuilder {
    issuer
        .token()
        .alg(Algorithm::PS256)
        .typ("at+jwt")
        .subject("alice")
        .claim("client_id", "fapi-client")
        .permissions(["read"])
        .expires_in_secs(600)
}

fn dpop_bound(issuer: &MockIssuer) -> TokenBuilder {
    access(issuer).dpop_bound(client_key())
}

fn certificate_bound(issuer: &MockIssuer) -> TokenBuilder {
    access(issuer).certificate_bound(&certificate_thumbprint())
}

/// GET `path` with `Authorization: <scheme> <token>` and one more header: what binds
/// the token (a `DPoP` proof, a `Client-Cert`).
async fn presented(
    server: &Server,
    path: &str,
    (scheme, token): (&str, &str),
    (name, value): (&str, &str),
) -> Answer {
    let authorization = format!("{scheme} {token}");
    server
        .get(path, &[("authorization", &authorization), (name, value)])
        .await
}

/// GET `path` with a DPoP-bound token and a fresh proof for it.
async fn with_proof(server: &Server, path: &str, token: &str) -> Answer {
    let proof = DpopProof::new(client_key(), "GET", &format!("{BASE}{path}"))
        .token(token)
        .sign();
    presented(server, path, ("DPoP", token), ("dpop", &proof)).await
}

/// GET `path` with a certificate-bound token and the client's certificate.
async fn with_certificate(server: &Server, path: &str, token: &str) -> Answer {
    let certificate = client_cert_header();
    presented(
        server,
        path,
        ("Bearer", token),
        ("client-cert", &certificate),
    )
    .await
}

// ---- FAPI 2.0 Security Profile, section 5.3.4: resource servers -----------------------

#[tokio::test]
async fn fapi2_accepts_access_tokens_in_the_authorization_header() {
    let (issuer, server, _) = rsa_api().await;
    // RFC 9449 section 7.1: the DPoP scheme with its proof.
    let answer = with_proof(&server, "/me", &dpop_bound(&issuer).sign()).await;
    answer.assert_ok();
    assert_eq!(answer.body, "alice");
    // RFC 6750 section 2.1: the Bearer scheme, for a certificate-bound token.
    with_certificate(&server, "/me", &certificate_bound(&issuer).sign())
        .await
        .assert_ok();
}

#[tokio::test]
async fn fapi2_never_accepts_access_tokens_in_the_query() {
    let (issuer, server, _) = rsa_api().await;
    let token = certificate_bound(&issuer).sign();
    let answer = server
        .get(
            &format!("/me?access_token={token}"),
            &[("client-cert", &client_cert_header())],
        )
        .await;
    answer.assert_no_token();
    // Nor can one be configured.
    let error = fapi(&issuer)
        .token_source(TokenSource::bearer().or(TokenSource::query("access_token")))
        .query_token_paths(["/me"])
        .build()
        .expect_err("a query source");
    assert_eq!(error.kind(), ConfigErrorKind::ProfileViolation);
}

#[tokio::test]
async fn fapi2_verifies_validity_integrity_expiry_and_revocation_status() {
    let (issuer, server, config) = rsa_api().await;
    let send = |token: String| {
        let server = &server;
        async move { with_certificate(server, "/me", &token).await }
    };
    send(certificate_bound(&issuer).sign()).await.assert_ok();
    let refused = [
        (certificate_bound(&issuer).tampered(), "invalid signature"),
        (
            certificate_bound(&issuer).signed_by_foreign_key(),
            "invalid signature",
        ),
        (certificate_bound(&issuer).expired(), "token expired"),
        (
            certificate_bound(&issuer).wrong_issuer(),
            "issuer not trusted",
        ),
    ];
    for (token, why) in refused {
        send(token.sign()).await.assert_invalid_token(why);
    }
    // Revocation status: the token's own `jti`.
    let revoked = certificate_bound(&issuer).claim("jti", "revoked-1").sign();
    send(revoked.clone()).await.assert_ok();
    let revocations = config.revocations().expect("a revocation list");
    revocations
        .revoke_token(issuer.issuer(), "revoked-1")
        .await
        .expect("revoke");
    send(revoked).await.assert_invalid_token("token revoked");
}

#[tokio::test]
async fn fapi2_needs_a_valid_token_on_every_request_it_serves() {
    let (issuer, _, config) = rsa_api().await;
    // The layer stays strict whatever optional() says.
    let server = Server::start_router(
        Router::new()
            .route("/me", get(crate::support::whoami_or_anonymous))
            .layer(JwtAuthLayer::new(config).optional()),
    )
    .await;
    server.get("/me", &[]).await.assert_no_token();
    // And no exemption lets a request through: public routes go outside the layer.
    let error = fapi(&issuer)
        .exempt(tower_jwt_auth::rules::Exemption::path("/health"))
        .build()
        .expect_err("an exemption");
    assert_eq!(error.path(), Some("exempt"), "{error}");
}

#[tokio::test]
async fn fapi2_verifies_the_token_authorizes_the_request() {
    let (issuer, server, _) = rsa_api().await;
    with_certificate(&server, "/documents", &certificate_bound(&issuer).sign())
        .await
        .assert_ok();
    let write_only = certificate_bound(&issuer).permissions(["write"]).sign();
    let answer = with_certificate(&server, "/documents", &write_only).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    assert_eq!(answer.error_code().as_deref(), Some("insufficient_scope"));
}

#[tokio::test]
async fn fapi2_returns_errors_as_rfc6750_and_rfc9449_say() {
    let (issuer, server, _) = rsa_api().await;
    // RFC 6750 section 3.1: no token, a bad token, an ambiguous request (insufficient
    // scope is `fapi2_verifies_the_token_authorizes_the_request`).
    let none = server.get("/me", &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    let challenge = none.challenge.clone().expect("a challenge");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    // RFC 9449 section 7.1: DPoP is offered in the challenge, with its algorithms.
    assert!(
        challenge.contains("DPoP algs=\"PS256 ES256 EdDSA\""),
        "{challenge}"
    );
    let bad = with_certificate(&server, "/me", "a.b.c").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.error_code().as_deref(), Some("invalid_token"));
    let two = server
        .get(
            "/me",
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
        )
        .await;
    two.assert_invalid_request();
    // A DPoP-bound token with a bad proof: the DPoP scheme's own error.
    let token = dpop_bound(&issuer).sign();
    let proof = DpopProof::new(client_key(), "POST", &format!("{BASE}/me"))
        .token(&token)
        .sign();
    let wrong = presented(&server, "/me", ("DPoP", &token), ("dpop", &proof)).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error_code().as_deref(), Some("invalid_dpop_proof"));
    assert!(
        wrong
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains("DPoP error=\"invalid_dpop_proof\"")),
        "{wrong:?}"
    );
}

#[tokio::test]
async fn fapi2_accepts_only_sender_constrained_access_tokens() {
    let (issuer, server, _) = rsa_api().await;
    let unbound = access(&issuer).sign();
    with_certificate(&server, "/me", &unbound)
        .await
        .assert_invalid_token("token binding not satisfied");
    with_proof(&server, "/me", &unbound)
        .await
        .assert_invalid_token("token binding not satisfied");
    // Bound tokens without what binds them.
    let dpop = dpop_bound(&issuer).sign();
    server
        .get("/me", &[("authorization", &format!("Bearer {dpop}"))])
        .await
        .assert_invalid_token("token binding not satisfied");
    let certificate = certificate_bound(&issuer).sign();
    server
        .get(
            "/me",
            &[("authorization", &format!("Bearer {certificate}"))],
        )
        .await
        .assert_invalid_token("token binding not satisfied");
}

#[tokio::test]
async fn fapi2_dpop_proofs_are_checked_as_rfc9449_says() {
    let (issuer, server, _) = rsa_api().await;
    let token = dpop_bound(&issuer).sign();
    let proof = DpopProof::new(client_key(), "GET", &format!("{BASE}/me"))
        .token(&token)
        .sign();
    let send = |proof: String| {
        let (server, token) = (&server, token.clone());
        async move { presented(server, "/me", ("DPoP", &token), ("dpop", &proof)).await }
    };
    send(proof.clone()).await.assert_ok();
    // Section 11.1: a proof is used once.
    let replayed = send(proof).await;
    assert_eq!(replayed.error_code().as_deref(), Some("invalid_dpop_proof"));
    // Section 4.3: htu, ath, the key the token is bound to.
    for (case, proof) in [
        (
            "another URL",
            DpopProof::new(client_key(), "GET", &format!("{BASE}/documents")).token(&token),
        ),
        (
            "another method",
            DpopProof::new(client_key(), "POST", &format!("{BASE}/me")).token(&token),
        ),
        (
            "another token",
            DpopProof::new(client_key(), "GET", &format!("{BASE}/me")).token("x.y.z"),
        ),
        (
            "another key",
            DpopProof::new(&TestKey::ec_p256(), "GET", &format!("{BASE}/me")).token(&token),
        ),
    ] {
        let answer = send(proof.sign()).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {answer:?}"
        );
    }
}

#[tokio::test]
async fn fapi2_certificate_bound_tokens_need_their_own_certificate() {
    let (issuer, server, _) = rsa_api().await;
    let other = crate::mtls_server::pki("someone-else").expect("pki");
    let token = certificate_bound(&issuer).sign();
    use base64::Engine as _;
    let their_cert = format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(other.client.0.as_ref())
    );
    presented(
        &server,
        "/me",
        ("Bearer", &token),
        ("client-cert", &their_cert),
    )
    .await
    .assert_invalid_token("token binding not satisfied");
    with_certificate(&server, "/me", &token).await.assert_ok();
}

#[tokio::test]
async fn fapi2_opaque_tokens_by_introspection_pass_when_bound() {
    let issuer = MockIssuer::builder().key(TestKey::rsa_pss()).start().await;
    issuer.add_client("api", "api-secret", Vec::<String>::new());
    let config = fapi(&issuer)
        .introspection(tower_jwt_auth::introspection::Introspection::new(
            "api",
            tower_jwt_auth::introspection::ClientAuth::client_secret_basic("api-secret"),
        ))
        .build()
        .expect("the profile builds with introspection");
    let server = serve(config).await;
    let bound = issuer.opaque(&certificate_bound(&issuer));
    with_certificate(&server, "/me", &bound).await.assert_ok();
    let unbound = issuer.opaque(&access(&issuer));
    with_certificate(&server, "/me", &unbound)
        .await
        .assert_invalid_token("token binding not satisfied");
}

// ---- FAPI 2.0 Security Profile, section 5.4: cryptography ------------------------------

#[tokio::test]
async fn fapi2_only_ps256_es256_and_eddsa() {
    let (issuer, server, _) = rsa_api().await;
    // The same RSA key, with PKCS#1 v1.5 padding instead of PSS.
    let rs256 = certificate_bound(&issuer).alg(Algorithm::RS256).sign();
    with_certificate(&server, "/me", &rs256)
        .await
        .assert_invalid_token("algorithm not allowed");
    // ES256 from an issuer with an EC key.
    let ec = MockIssuer::builder().key(TestKey::ec_p256()).start().await;
    let ec_server = serve(fapi(&ec).build().expect("config")).await;
    let es256 = ec
        .token()
        .typ("at+jwt")
        .subject("alice")
        .claim("client_id", "fapi-client")
        .certificate_bound(&certificate_thumbprint())
        .sign();
    with_certificate(&ec_server, "/me", &es256)
        .await
        .assert_ok();
    // And none of the others can be allowed.
    for alg in [Algorithm::RS256, Algorithm::HS256, Algorithm::ES384] {
        let error = fapi(&issuer)
            .algorithms([Algorithm::PS256, alg])
            .build()
            .expect_err("a weaker algorithm");
        assert!(error.to_string().contains("section 5.4"), "{error}");
    }
}

#[tokio::test]
async fn fapi2_rsa_keys_under_2048_bits_are_never_used() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = TestKey::rsa_pss().with_kid("short");
    let mut jwk = key.public_jwk();
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("base64url");
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(&n[..128]));
    let issuer = MockIssuer::start().await;
    let good = issuer.active_key().public_jwk();
    issuer.set_jwks_document(Some(json!({ "keys": [good, jwk] })));
    let server = serve(fapi(&issuer).build().expect("config")).await;
    let token = TokenBuilder::new(&key)
        .issuer(issuer.issuer())
        .audience(issuer.audience())
        .alg(Algorithm::PS256)
        .typ("at+jwt")
        .subject("alice")
        .claim("client_id", "fapi-client")
        .certificate_bound(&certificate_thumbprint())
        .sign();
    // Had the short key been loaded, its signature would be checked (and fail): the
    // key is unknown instead.
    let answer = with_certificate(&server, "/me", &token).await;
    answer.assert_invalid_token("unknown signing key");
}

// ---- RFC 9068 (the profile's own stricter choice) --------------------------------------

#[tokio::test]
async fn rfc9068_typ_must_be_at_jwt() {
    let (issuer, server, _) = rsa_api().await;
    for typ in ["JWT", "jwt"] {
        let token = certificate_bound(&issuer).typ(typ).sign();
        with_certificate(&server, "/me", &token)
            .await
            .assert_invalid_token("unexpected token type");
    }
    let none = certificate_bound(&issuer).no_typ().sign();
    with_certificate(&server, "/me", &none)
        .await
        .assert_invalid_token("unexpected token type");
    let media_type = certificate_bound(&issuer).typ("application/at+jwt").sign();
    with_certificate(&server, "/me", &media_type)
        .await
        .assert_ok();
}

#[tokio::test]
async fn rfc9068_requires_iss_exp_aud_sub_client_id_iat_and_jti() {
    let (issuer, server, _) = rsa_api().await;
    // iss, exp and aud are required whatever the profile; the other four by it.
    for claim in ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"] {
        let token = certificate_bound(&issuer).without_claim(claim).sign();
        let answer = with_certificate(&server, "/me", &token).await;
        if ["sub", "client_id", "iat", "jti"].contains(&claim) {
            answer.assert_invalid_token("required claim missing");
        }
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{claim}: {answer:?}"
        );
    }
}

#[tokio::test]
async fn rfc9068_the_audience_is_checked() {
    let (issuer, server, _) = rsa_api().await;
    let token = certificate_bound(&issuer).wrong_audience().sign();
    with_certificate(&server, "/me", &token)
        .await
        .assert_invalid_token("audience not accepted");
    // FAPI 2.0 asks it as the token's validity; RFC 9068 strict alone as its own rule.
    let error = fapi(&issuer)
        .dangerous()
        .accept_any_audience()
        .build()
        .expect_err("any audience");
    assert!(error.to_string().contains("section 5.3.4"), "{error}");
    let error = crate::support::issuer_config(&issuer)
        .profile(Profile::Rfc9068Strict)
        .dangerous()
        .accept_any_audience()
        .build()
        .expect_err("any audience");
    assert!(error.to_string().contains("(RFC 9068, section"), "{error}");
}

// ---- RFC 8725 --------------------------------------------------------------------------

#[tokio::test]
async fn rfc8725_unsigned_and_confused_algorithms_are_refused() {
    let (issuer, server, _) = rsa_api().await;
    // Section 3.1: "none", and a key used with an algorithm it is not for.
    let none = certificate_bound(&issuer).alg_none().sign();
    with_certificate(&server, "/me", &none)
        .await
        .assert_invalid_token("unsupported algorithm");
    let confused = certificate_bound(&issuer).header_alg("ES256").sign();
    with_certificate(&server, "/me", &confused)
        .await
        .assert_invalid_token("key does not match algorithm");
}

// ---- The fapi2 profile's own stricter choices ------------------------------------------

#[tokio::test]
async fn fapi2_profile_limits_the_token_lifetime() {
    let (issuer, server, _) = rsa_api().await;
    let long = certificate_bound(&issuer).expires_in_secs(2 * 3600).sign();
    with_certificate(&server, "/me", &long)
        .await
        .assert_invalid_token("token lifetime exceeds the maximum");
    let hour = certificate_bound(&issuer).expires_in_secs(3600).sign();
    with_certificate(&server, "/me", &hour).await.assert_ok();
}

#[tokio::test]
async fn fapi2_profile_fetches_over_https_only() {
    let issuer = MockIssuer::start().await;
    let error = fapi(&issuer)
        .dangerous()
        .allow_plain_http()
        .build()
        .expect_err("plain http");
    assert_eq!(error.path(), Some("remote.dangerous_allow_http"));
    assert!(error.to_string().contains("section 5.2.1"), "{error}");
}

// ---- Locked: every weakening setter after the profile fails build() --------------------

#[tokio::test]
async fn each_weakening_setting_after_the_profile_fails_build_naming_its_rule() {
    let issuer = MockIssuer::start().await;
    let cases: Vec<(&str, JwtAuthConfigBuilder, &str, &str)> = vec![
        (
            "a cookie source",
            fapi(&issuer).token_source(TokenSource::bearer().or(TokenSource::cookie("at"))),
            "token",
            "FAPI 2.0 Security Profile, section 5.3.4",
        ),
        (
            "a WebSocket source",
            fapi(&issuer).token_source(TokenSource::websocket_protocol("bearer.")),
            "token",
            "access tokens only from the Authorization header",
        ),
        (
            "API keys",
            fapi(&issuer).api_key_prefix("sk_live_"),
            "api_keys_settings.prefix",
            "access tokens only from the Authorization header",
        ),
        (
            "RS256",
            fapi(&issuer).algorithms([Algorithm::RS256]),
            "algorithms",
            "section 5.4",
        ),
        (
            "unbound tokens",
            fapi(&issuer).sender_constrained(false),
            "sender_constrained",
            "only sender-constrained access tokens",
        ),
        (
            "neither DPoP nor mTLS",
            fapi(&issuer)
                .dpop(DpopOptions::new(DpopMode::Off))
                .mtls(MtlsMode::Off),
            "dpop",
            "only sender-constrained access tokens",
        ),
        (
            "DPoP proofs in RS256",
            fapi(&issuer).dpop(DpopOptions::new(DpopMode::Required).public_base_url(BASE)),
            "dpop.algorithms",
            "section 5.4",
        ),
        (
            "no revocation list",
            crate::support::issuer_config(&issuer)
                .profile(Profile::Fapi2)
                .mtls(MtlsMode::Allowed),
            "state.revocation",
            "revocation status",
        ),
        (
            "any tenant",
            fapi(&issuer).dangerous().accept_any_tenant(),
            "dangerous",
            "validity",
        ),
        (
            "a lenient typ",
            fapi(&issuer).typ_policy(tower_jwt_auth::TypPolicy::Lenient),
            "typ",
            "the fapi2 profile's own rule, stricter than FAPI 2.0: RFC 9068",
        ),
        (
            "an issuer's own RS256",
            fapi(&issuer).issuer(
                tower_jwt_auth::TrustedIssuer::new("https://other.example.com/")
                    .algorithms([Algorithm::RS256])
                    .jwks_url("https://other.example.com/jwks.json"),
            ),
            "issuers[1].algorithms",
            "section 5.4",
        ),
        (
            "an exemption",
            fapi(&issuer).exempt(tower_jwt_auth::rules::Exemption::prefix("/")),
            "exempt",
            "a valid access token on every request",
        ),
        (
            "an exempt_when predicate",
            fapi(&issuer).exempt_when(|_| true),
            "exempt",
            "a valid access token on every request",
        ),
        (
            "a store that fails open",
            fapi(&issuer).store_failure(tower_jwt_auth::state::StoreFailure::Open),
            "state.failure",
            "revocation status",
        ),
        (
            "introspection of every JWT",
            fapi(&issuer).introspection(introspection().always_introspect(true)),
            "introspection.always_introspect",
            "revocation status",
        ),
        (
            "introspection answers without an audience, from a file",
            tower_jwt_auth::settings::Settings::parse(
                "[introspection]\nclient_id = \"api\"\nclient_secret = \"api-secret\"\naudience_optional = true\n",
                tower_jwt_auth::settings::Format::Toml,
            )
            .expect("parses")
            .apply(fapi(&issuer))
            .expect("applies"),
            "introspection.audience_optional",
            "validity",
        ),
        (
            "two minutes of leeway",
            fapi(&issuer).leeway(std::time::Duration::from_secs(120)),
            "leeway",
            "the fapi2 profile's own rule",
        ),
        (
            "a long DPoP window",
            fapi(&issuer).dpop(
                DpopOptions::new(DpopMode::Required)
                    .public_base_url(BASE)
                    .algorithms([Algorithm::ES256])
                    .iat_window(std::time::Duration::from_secs(300)),
            ),
            "dpop.iat_window",
            "at most 60 s of clock skew",
        ),
    ];
    for (case, builder, path, rule) in cases {
        let error = builder.build().expect_err(case);
        assert_eq!(
            error.kind(),
            ConfigErrorKind::ProfileViolation,
            "{case}: {error}"
        );
        assert_eq!(error.path(), Some(path), "{case}: {error}");
        assert!(error.to_string().contains(rule), "{case}: {error}");
    }
    // What the preset sets, a later setter may still narrow or retune.
    fapi(&issuer)
        .algorithms([Algorithm::ES256])
        .max_lifetime(std::time::Duration::from_secs(300))
        .build()
        .expect("narrower is fine");
    // And a preset keeps what was narrower before it.
    let narrow = crate::support::issuer_config(&issuer)
        .algorithms([Algorithm::ES256, Algorithm::RS256])
        .leeway(std::time::Duration::from_secs(5));
    let config = narrow
        .profile(Profile::Fapi2)
        .mtls(MtlsMode::Allowed)
        .revocation_list(MemoryRevocationList::default())
        .build()
        .expect("builds");
    assert_eq!(config.algorithms(), [Algorithm::ES256]);
    assert_eq!(config.profile(), Some(Profile::Fapi2));
}

fn introspection() -> tower_jwt_auth::introspection::Introspection {
    tower_jwt_auth::introspection::Introspection::new(
        "api",
        tower_jwt_auth::introspection::ClientAuth::client_secret_basic("api-secret"),
    )
}

#[tokio::test]
async fn a_profile_is_never_dropped_by_a_file_the_environment_or_a_reload() {
    use tower_jwt_auth::settings::{Format, Settings};
    let issuer = MockIssuer::start().await;
    // A file or the environment naming the weaker profile keeps fapi2, and its rules.
    let file = Settings::parse(
        "profile = \"rfc9068_strict\"\nsender_constrained = false\n",
        Format::Toml,
    )
    .expect("parses");
    let error = file
        .apply(fapi(&issuer))
        .expect("applies")
        .build()
        .expect_err("unbound tokens");
    assert_eq!(error.path(), Some("sender_constrained"), "{error}");
    let env = Settings::from_vars("JWT_", [("JWT_PROFILE", "rfc9068_strict")]).expect("reads");
    let config = env
        .apply(fapi(&issuer))
        .expect("applies")
        .build()
        .expect("builds");
    assert_eq!(config.profile(), Some(Profile::Fapi2));
    let twice = fapi(&issuer)
        .profile(Profile::Rfc9068Strict)
        .build()
        .expect("builds");
    assert_eq!(twice.profile(), Some(Profile::Fapi2));
    // A file's own token source is refused as the builder's is.
    let cookie = Settings::parse("[token]\ncookie = \"at\"\n", Format::Toml).expect("parses");
    let error = cookie
        .apply(fapi(&issuer))
        .expect("applies")
        .build()
        .expect_err("cookie");
    assert_eq!(error.path(), Some("token.cookie"), "{error}");
    // A Redis store without TLS, beyond loopback.
    let redis = Settings::parse(
        "[state]\nrevocation = true\nstore = \"redis://cache.example.com:6379\"\n",
        Format::Toml,
    )
    .expect("parses");
    let error = redis
        .apply(fapi(&issuer))
        .expect("applies")
        .build()
        .expect_err("redis://");
    assert_eq!(error.path(), Some("state.store"), "{error}");

    // A reload must name the profile again.
    let (layer, reload) = JwtAuthLayer::new(fapi(&issuer).build().expect("config")).reloadable();
    let error = reload
        .reload(crate::support::issuer_config(&issuer))
        .await
        .expect_err("the profile dropped");
    assert_eq!(error.kind(), ConfigErrorKind::ProfileViolation, "{error}");
    reload
        .reload(fapi(&issuer))
        .await
        .expect("the same profile");
    // The reloaded layer stays strict whatever optional() says.
    let server = Server::start_router(
        Router::new()
            .route("/me", get(crate::support::whoami_or_anonymous))
            .layer(layer.optional()),
    )
    .await;
    server.get("/me", &[]).await.assert_no_token();
}

#[tokio::test]
async fn rfc9068_strict_alone_locks_typ_and_claims_but_not_fapi() {
    let issuer = MockIssuer::start().await;
    let strict = || crate::support::issuer_config(&issuer).profile(Profile::Rfc9068Strict);
    strict()
        .build()
        .expect("unbound tokens and any algorithm are fine");
    let error = strict()
        .typ_policy(tower_jwt_auth::TypPolicy::Lenient)
        .build()
        .expect_err("lenient");
    assert_eq!(error.path(), Some("typ"));
    assert!(error.to_string().contains("(RFC 9068, section"), "{error}");
    let server = serve(strict().build().expect("config")).await;
    let token = issuer
        .token()
        .typ("at+jwt")
        .subject("alice")
        .claim("client_id", "c")
        .sign();
    server.bearer_at("/me", &token).await.assert_ok();
    let without = issuer.token().typ("at+jwt").subject("alice").sign();
    server
        .bearer_at("/me", &without)
        .await
        .assert_invalid_token("required claim missing");
}

#[test]
fn a_settings_file_takes_the_profile_and_locks_it_too() {
    use tower_jwt_auth::settings::{Format, Settings};
    let base = r#"
profile = "fapi2"
mtls = "allowed"
[[issuers]]
issuer = "https://idp.example.com/"
audience = "https://api.example.com"
jwks_url = "https://idp.example.com/jwks.json"
[state]
revocation = true
"#;
    let built = |text: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _inside = runtime.enter();
        Settings::parse(text, Format::Toml).and_then(|s| s.builder()?.build())
    };
    let config = built(base).expect("the profile from a file builds");
    assert_eq!(
        config.algorithms(),
        [Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA]
    );
    let error = built(&format!("algorithms = [\"RS256\"]\n{base}")).expect_err("RS256");
    assert_eq!(
        (error.path(), error.line()),
        (Some("algorithms"), Some(1)),
        "{error}"
    );
    assert!(error.to_string().contains("section 5.4"), "{error}");
    let unknown = Settings::parse("profile = \"fapi3\"\n", Format::Toml).expect_err("unknown");
    assert_eq!(unknown.path(), Some("profile"), "{unknown}");
}
