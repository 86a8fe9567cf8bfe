//! DPoP (RFC 9449) over real HTTP: every proof check failing on its own, the binding
//! rules, the challenge field's exact shape, server nonces, the public-URL rules, replay
//! across two replicas sharing Redis, proofs from an independent implementation, the
//! token endpoint, and gRPC.

use std::sync::OnceLock;
use std::time::Duration;

use crate::support::redis::RedisServer;
use crate::support::{Answer, Server, answer, builder, ec_key, token};
use axum::Router;
use axum::routing::get;
use http::StatusCode;
use serde_json::json;
use tower_jwt_auth::dpop::{DpopMode, DpopOptions, PublicUrl};
use tower_jwt_auth::testing::{DpopProof, MockIssuer, TestKey};
use tower_jwt_auth::{
    Algorithm, Authentication, ConfigErrorKind, JwtAuthConfigBuilder, JwtAuthLayer,
};

const BASE: &str = "https://api.example.test";

/// The client's proof key.
fn client_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::ec_p256().with_kid("client"))
}

async fn scheme(auth: Authentication) -> &'static str {
    match auth.token() {
        Some(token) if token.is_dpop() => "dpop",
        Some(_) => "bearer",
        None => "none",
    }
}

fn app(layer: JwtAuthLayer) -> Router {
    Router::new()
        .route("/documents", get(scheme).post(scheme))
        .layer(layer)
}

fn dpop(mode: DpopMode) -> DpopOptions {
    DpopOptions::new(mode)
        .public_base_url(BASE)
        .algorithms([Algorithm::ES256, Algorithm::EdDSA])
}

fn config(mode: DpopMode) -> JwtAuthConfigBuilder {
    builder(ec_key().key_set()).dpop(dpop(mode))
}

async fn start(builder: JwtAuthConfigBuilder) -> Server {
    Server::start_router(app(JwtAuthLayer::new(builder.build().expect("config")))).await
}

fn bound() -> String {
    token(ec_key()).dpop_bound(client_key()).sign()
}

fn proof_for(access: &str) -> DpopProof {
    DpopProof::new(client_key(), "GET", &format!("{BASE}/documents")).token(access)
}

/// GET /documents with `Authorization: DPoP <token>` and the given `DPoP` headers.
async fn send(server: &Server, access: &str, proofs: &[String]) -> Answer {
    let mut request = server
        .client
        .get(server.url("/documents"))
        .header("authorization", format!("DPoP {access}"));
    for proof in proofs {
        request = request.header("dpop", proof);
    }
    answer(request.send().await.expect("request")).await
}

const ALGS: &str = "ES256 EdDSA";

fn assert_proof_refused(answer: &Answer, case: &str) {
    assert_eq!(
        answer.status,
        StatusCode::UNAUTHORIZED,
        "{case}: {answer:?}"
    );
    assert_eq!(
        answer.challenge.as_deref(),
        Some(
            format!(
                "Bearer, DPoP error=\"invalid_dpop_proof\", error_description=\"invalid DPoP proof\", algs=\"{ALGS}\""
            )
            .as_str()
        ),
        "{case}"
    );
}

/// A token refused on a request that used the DPoP scheme: the error is in the DPoP
/// challenge, which a DPoP client reads (RFC 9449 section 7.1).
fn assert_dpop_token_refused(answer: &Answer, description: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    let expected = format!(
        "Bearer, DPoP error=\"invalid_token\", error_description=\"{description}\", algs=\"{ALGS}\""
    );
    assert_eq!(answer.challenge.as_deref(), Some(expected.as_str()));
}

/// A refusal by a DPoP-only resource: one DPoP challenge with `params` before `algs`.
fn assert_dpop_only(answer: &Answer, params: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    let expected = format!("DPoP {params}algs=\"{ALGS}\"");
    assert_eq!(answer.challenge.as_deref(), Some(expected.as_str()));
}

fn assert_token_refused(answer: &Answer, description: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    assert_eq!(
        answer.challenge.as_deref(),
        Some(
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{description}\", DPoP algs=\"{ALGS}\""
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn a_dpop_scheme_credential_outside_b64token_is_a_bad_request() {
    for mode in [DpopMode::Allowed, DpopMode::Required] {
        let server = start(config(mode)).await;
        let access = bound();
        for bad in [
            format!("{access},"),
            format!("{access} x"),
            "e30,.e30.x".to_owned(),
        ] {
            // Even with a proof made for exactly these characters.
            let answer = send(&server, &bad, &[proof_for(&bad).sign()]).await;
            answer.assert_invalid_request();
        }
        send(&server, &access, &[proof_for(&access).sign()])
            .await
            .assert_ok();
    }
}

#[tokio::test]
async fn a_bound_token_with_its_proof_passes_and_every_broken_proof_is_refused() {
    let server = start(config(DpopMode::Allowed)).await;
    let access = bound();
    let ok = send(&server, &access, &[proof_for(&access).sign()]).await;
    ok.assert_ok();
    assert_eq!(ok.body, "dpop");
    // The query and fragment of both URLs are ignored; RFC 3986 equivalents match.
    let with_query = server
        .client
        .get(server.url("/documents?page=2"))
        .header("authorization", format!("DPoP {access}"))
        .header(
            "dpop",
            DpopProof::new(
                client_key(),
                "GET",
                "HTTPS://API.example.test:443/./documents?x=1#f",
            )
            .token(&access)
            .sign(),
        )
        .send()
        .await
        .expect("request");
    answer(with_query).await.assert_ok();

    let other_key = TestKey::ec_p256();
    let p384 = TestKey::ec_p384();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no proof", vec![]),
        (
            "two proofs",
            vec![proof_for(&access).sign(), proof_for(&access).sign()],
        ),
        ("not a JWS", vec!["abc".into()]),
        ("typ jwt", vec![proof_for(&access).typ(Some("jwt")).sign()]),
        ("no typ", vec![proof_for(&access).typ(None).sign()]),
        (
            "algorithm not allowed",
            vec![
                DpopProof::new(&p384, "GET", &format!("{BASE}/documents"))
                    .token(&access)
                    .sign(),
            ],
        ),
        (
            "symmetric alg",
            vec![proof_for(&access).header_alg("HS256").sign()],
        ),
        (
            "private key in jwk",
            vec![proof_for(&access).with_private_jwk().sign()],
        ),
        (
            "signature by another key",
            vec![proof_for(&access).jwk(other_key.public_jwk()).sign()],
        ),
        ("wrong htm", vec![proof_for(&access).method("POST").sign()]),
        (
            "wrong htu path",
            vec![proof_for(&access).url(&format!("{BASE}/other")).sign()],
        ),
        (
            "wrong htu host",
            vec![
                proof_for(&access)
                    .url("https://evil.example.test/documents")
                    .sign(),
            ],
        ),
        (
            "iat too old",
            vec![proof_for(&access).issued_at_in_secs(-200).sign()],
        ),
        (
            "iat in the future",
            vec![proof_for(&access).issued_at_in_secs(200).sign()],
        ),
        (
            "no ath",
            vec![proof_for(&access).without_claim("ath").sign()],
        ),
        (
            "ath of another token",
            vec![proof_for(&access).token(&bound()).sign()],
        ),
        (
            "no jti",
            vec![proof_for(&access).without_claim("jti").sign()],
        ),
        (
            "a key the token is not bound to",
            vec![
                DpopProof::new(&other_key, "GET", &format!("{BASE}/documents"))
                    .token(&access)
                    .sign(),
            ],
        ),
    ];
    for (case, proofs) in cases {
        let refused = send(&server, &access, &proofs).await;
        assert_proof_refused(&refused, case);
    }
    // A proof is good once.
    let once = proof_for(&access).jti("once").sign();
    send(&server, &access, std::slice::from_ref(&once))
        .await
        .assert_ok();
    assert_proof_refused(&send(&server, &access, &[once]).await, "replayed jti");
}

#[tokio::test]
async fn bindings_the_layer_cannot_check_are_refused() {
    let allowed = start(config(DpopMode::Allowed)).await;
    // A bound token sent as Bearer.
    assert_token_refused(
        &allowed.bearer_at("/documents", &bound()).await,
        "token binding not satisfied",
    );
    // An unbound token sent with the DPoP scheme.
    let plain = token(ec_key()).sign();
    assert_dpop_token_refused(
        &send(&allowed, &plain, &[proof_for(&plain).sign()]).await,
        "token binding not satisfied",
    );
    // An unknown confirmation method.
    let odd = token(ec_key()).claim("cnf", json!({"kid": "x"})).sign();
    assert_token_refused(
        &allowed.bearer_at("/documents", &odd).await,
        "token binding not satisfied",
    );
    // Bearer still works for unbound tokens in `allowed` mode.
    let ok = allowed.bearer_at("/documents", &plain).await;
    ok.assert_ok();
    assert_eq!(ok.body, "bearer");

    // `required`: an unbound Bearer token is refused, and the only challenge is DPoP's,
    // with every parameter (RFC 9449 section 7.1): Bearer would never be accepted.
    let required = start(config(DpopMode::Required)).await;
    let refused = required.bearer_at("/documents", &plain).await;
    assert_dpop_only(
        &refused,
        "error=\"invalid_token\", error_description=\"token binding not satisfied\", ",
    );
    let access = bound();
    send(&required, &access, &[proof_for(&access).sign()])
        .await
        .assert_ok();
    let replayed = proof_for(&access).jti("once").sign();
    send(&required, &access, std::slice::from_ref(&replayed))
        .await
        .assert_ok();
    let refused = send(&required, &access, &[replayed]).await;
    assert_dpop_only(
        &refused,
        "error=\"invalid_dpop_proof\", error_description=\"invalid DPoP proof\", ",
    );
    assert_dpop_only(&required.get("/documents", &[]).await, "");

    // The binding comes before the application's own check: a bound token without its
    // proof learns nothing of what the application thinks of its claims.
    let cfg = config(DpopMode::Allowed).build().expect("config");
    let picky = Server::start_router(app(JwtAuthLayer::new(cfg).validate(|_| false))).await;
    assert_token_refused(
        &picky.bearer_at("/documents", &bound()).await,
        "token binding not satisfied",
    );
    let access = bound();
    assert_dpop_token_refused(
        &send(&picky, &access, &[proof_for(&access).sign()]).await,
        "claim not accepted",
    );

    // DPoP off: a bound token is refused, and the DPoP scheme is no token at all.
    let off = Server::start_router(app(JwtAuthLayer::new(
        builder(ec_key().key_set()).build().expect("config"),
    )))
    .await;
    let refused = off.bearer_at("/documents", &bound()).await;
    refused.assert_invalid_token("token binding not satisfied");
    assert_eq!(
        refused.challenge.as_deref(),
        Some("Bearer error=\"invalid_token\", error_description=\"token binding not satisfied\"")
    );
    send(&off, &access, &[proof_for(&access).sign()])
        .await
        .assert_no_token();
}

#[tokio::test]
async fn the_challenge_names_bearer_first_and_dpop_second() {
    let server = start(config(DpopMode::Allowed)).await;
    let none = server.get("/documents", &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.challenge.as_deref(),
        Some(format!("Bearer, DPoP algs=\"{ALGS}\"").as_str())
    );
    assert_token_refused(
        &server
            .bearer_at("/documents", &token(ec_key()).expired().sign())
            .await,
        "token expired",
    );
}

#[tokio::test]
async fn server_nonces_are_asked_for_checked_and_shared_by_secret() {
    let secret = [9u8; 32];
    let nonced = |secret: [u8; 32]| {
        builder(ec_key().key_set())
            .dpop(dpop(DpopMode::Allowed).nonces(secret, Duration::from_secs(60)))
    };
    let server = start(nonced(secret)).await;
    let access = bound();
    let first = send(&server, &access, &[proof_for(&access).sign()]).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED, "{first:?}");
    assert_eq!(
        first.challenge.as_deref(),
        Some(
            format!(
                "Bearer, DPoP error=\"use_dpop_nonce\", error_description=\"DPoP nonce required\", algs=\"{ALGS}\""
            )
            .as_str()
        )
    );
    let response = server
        .client
        .get(server.url("/documents"))
        .header("authorization", format!("DPoP {access}"))
        .header("dpop", proof_for(&access).sign())
        .send()
        .await
        .expect("request");
    let nonce = response
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .expect("a DPoP-Nonce header")
        .to_owned();
    send(&server, &access, &[proof_for(&access).nonce(&nonce).sign()])
        .await
        .assert_ok();
    // Another replica with the same secret accepts it; one with another secret does not.
    let twin = start(nonced(secret)).await;
    send(&twin, &access, &[proof_for(&access).nonce(&nonce).sign()])
        .await
        .assert_ok();
    let stranger = start(nonced([1u8; 32])).await;
    let refused = send(
        &stranger,
        &access,
        &[proof_for(&access).nonce(&nonce).sign()],
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains("use_dpop_nonce")),
        "{refused:?}"
    );
    // A made-up nonce is no better.
    let forged = send(&server, &access, &[proof_for(&access).nonce("AAAA").sign()]).await;
    assert!(
        forged
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains("use_dpop_nonce")),
        "{forged:?}"
    );
}

#[tokio::test]
async fn the_public_url_is_configured_or_trusted_never_guessed() {
    // Neither: a build error.
    let err = builder(ec_key().key_set())
        .dpop(DpopOptions::new(DpopMode::Allowed))
        .build()
        .expect_err("no public URL");
    assert_eq!(err.kind(), ConfigErrorKind::InvalidValue);
    assert!(err.to_string().contains("public_base_url"), "{err}");

    // A trusted extension, inserted by the application's own proxy-aware code.
    let config = builder(ec_key().key_set())
        .dpop(
            DpopOptions::new(DpopMode::Allowed)
                .trusted_url_extension()
                .algorithms([Algorithm::ES256, Algorithm::EdDSA]),
        )
        .build()
        .expect("config");
    let with_url = app(JwtAuthLayer::new(config.clone())).layer(axum::middleware::map_request(
        |mut request: axum::extract::Request| async move {
            let url = format!("https://public.example.test{}", request.uri().path());
            request.extensions_mut().insert(PublicUrl::new(url));
            request
        },
    ));
    let server = Server::start_router(with_url).await;
    let access = bound();
    let proof = DpopProof::new(client_key(), "GET", "https://public.example.test/documents")
        .token(&access)
        .sign();
    send(&server, &access, &[proof]).await.assert_ok();
    // Host and X-Forwarded-* never make a URL.
    let spoofed = server
        .client
        .get(server.url("/documents"))
        .header("authorization", format!("DPoP {access}"))
        .header("x-forwarded-host", "evil.example.test")
        .header(
            "dpop",
            DpopProof::new(client_key(), "GET", "https://evil.example.test/documents")
                .token(&access)
                .sign(),
        )
        .send()
        .await
        .expect("request");
    assert_proof_refused(&answer(spoofed).await, "forwarded host");

    // The extension missing is a wiring mistake: 500 naming it.
    let bare = Server::start_router(app(JwtAuthLayer::new(config))).await;
    let miswired = bare.bearer_at("/documents", &token(ec_key()).sign()).await;
    assert_eq!(miswired.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(miswired.body.contains("PublicUrl"), "{miswired:?}");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_proof_used_on_one_replica_is_refused_on_the_other() {
    use tower_jwt_auth::state::{RedisConnection, RedisReplayStore};
    let redis = RedisServer::start().await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let connection = RedisConnection::open(&redis.url()).expect("url");
        replicas.push(
            start(config(DpopMode::Allowed).replay_store(RedisReplayStore::new(connection))).await,
        );
    }
    let access = bound();
    let proof = proof_for(&access).sign();
    send(&replicas[0], &access, std::slice::from_ref(&proof))
        .await
        .assert_ok();
    assert_proof_refused(
        &send(&replicas[1], &access, &[proof]).await,
        "replayed elsewhere",
    );
    send(&replicas[1], &access, &[proof_for(&access).sign()])
        .await
        .assert_ok();
}

#[tokio::test]
async fn proofs_signed_by_jsonwebtoken_are_accepted() {
    use base64::Engine as _;
    let server = start(config(DpopMode::Allowed)).await;
    let access = bound();
    let mut jwk = client_key().public_jwk();
    jwk.as_object_mut().expect("object").remove("use");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(serde_json::from_value(jwk).expect("jwk"));
    let ath = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        access.as_bytes(),
    ));
    let now = crate::support::unix_now();
    let claims = json!({
        "jti": "jsonwebtoken-1",
        "htm": "GET",
        "htu": format!("{BASE}/documents"),
        "iat": now,
        "ath": ath,
    });
    let pkcs8 = base64::engine::general_purpose::STANDARD
        .decode(
            client_key().export_private()["pkcs8"]
                .as_str()
                .expect("pkcs8"),
        )
        .expect("base64");
    let key = jsonwebtoken::EncodingKey::from_ec_der(&pkcs8);
    let proof = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    send(&server, &access, &[proof]).await.assert_ok();
}

/// A client-credentials request for the client `svc`, with this DPoP proof.
async fn token_request(issuer: &MockIssuer, proof: String) -> reqwest::Response {
    crate::support::client_credentials_request(&issuer.token_url(), "svc", "s3cret")
        .header("dpop", proof)
        .send()
        .await
        .expect("token endpoint")
}

#[tokio::test]
async fn the_mock_token_endpoint_issues_dpop_bound_tokens() {
    let issuer = MockIssuer::start().await;
    issuer.add_client("svc", "s3cret", ["read"]);
    let proof = DpopProof::new(client_key(), "POST", &issuer.token_url()).sign();
    let issued: serde_json::Value = token_request(&issuer, proof)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(issued["token_type"], "DPoP");
    let access = issued["access_token"].as_str().expect("token").to_owned();
    let config = crate::support::issuer_config(&issuer).dpop(dpop(DpopMode::Required));
    let server = start(config).await;
    send(&server, &access, &[proof_for(&access).sign()])
        .await
        .assert_ok();
    // A proof for another URL is refused at the token endpoint.
    let wrong = DpopProof::new(client_key(), "POST", "https://elsewhere.test/token").sign();
    assert_eq!(token_request(&issuer, wrong).await.status(), 400);
}

#[tokio::test]
async fn dpop_over_grpc_metadata_with_the_method_path_as_htu() {
    use crate::tonic_server::proto::GetRequest;
    use crate::tonic_server::proto::documents_client::DocumentsClient;
    let config = config(DpopMode::Allowed).build().expect("config");
    let (_, channel) = crate::support::grpc(config).await;
    let mut client = DocumentsClient::new(channel);
    let method_url = format!("{BASE}/documents.v1.Documents/Get");
    let access = token(ec_key())
        .dpop_bound(client_key())
        .permissions(["read"])
        .sign();
    let request = |proof: String| {
        let mut request = tonic::Request::new(GetRequest { id: "1".into() });
        let metadata = request.metadata_mut();
        metadata.insert(
            "authorization",
            format!("DPoP {access}").parse().expect("metadata"),
        );
        metadata.insert("dpop", proof.parse().expect("metadata"));
        request
    };
    let good = DpopProof::new(client_key(), "POST", &method_url)
        .token(&access)
        .sign();
    // Past authentication, the service answers NOT_FOUND for an unknown document.
    let status = client.get(request(good)).await.expect_err("no document 1");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    let wrong_method = DpopProof::new(client_key(), "GET", &method_url)
        .token(&access)
        .sign();
    let status = client
        .get(request(wrong_method))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let challenge = status
        .metadata()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("challenge")
        .to_owned();
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
}

#[tokio::test]
async fn a_refused_proof_cannot_lock_another_clients_key_to_an_algorithm() {
    let server = start(
        builder(ec_key().key_set()).dpop(DpopOptions::new(DpopMode::Allowed).public_base_url(BASE)),
    )
    .await;
    let victim = TestKey::rsa().with_kid("victim");
    let victim_token = token(ec_key()).dpop_bound(&victim).sign();
    // The attacker's own bound token, and a proof carrying the victim's public key
    // pinned to PS256 (the victim signs RS256), with a signature that cannot verify.
    let attacker = TestKey::ec_p256();
    let attacker_token = token(ec_key()).dpop_bound(&attacker).sign();
    let mut pinned = victim.public_jwk();
    pinned["alg"] = json!("PS256");
    let poisoned = DpopProof::new(&attacker, "GET", &format!("{BASE}/documents"))
        .token(&attacker_token)
        .jwk(pinned)
        .sign();
    assert_eq!(
        send(&server, &attacker_token, &[poisoned]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let proof = DpopProof::new(&victim, "GET", &format!("{BASE}/documents"))
        .token(&victim_token)
        .sign();
    send(&server, &victim_token, &[proof]).await.assert_ok();
}

#[tokio::test]
async fn a_bound_token_without_its_proof_gets_401_not_a_403_that_says_it_is_valid() {
    let server = start(config(DpopMode::Allowed).require_permissions(["admin"])).await;
    let refused = server.bearer_at("/documents", &bound()).await;
    assert_token_refused(&refused, "token binding not satisfied");
    // With its proof, the token is the caller's: 403, with the error and the scope in
    // the DPoP challenge since the request used that scheme.
    let access = bound();
    let forbidden = send(&server, &access, &[proof_for(&access).sign()]).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN, "{forbidden:?}");
    let expected = format!(
        "Bearer, DPoP error=\"insufficient_scope\", error_description=\"insufficient permission\", scope=\"admin\", algs=\"{ALGS}\""
    );
    assert_eq!(forbidden.challenge.as_deref(), Some(expected.as_str()));
}

/// `/documents` as elsewhere, and `/transfers`: a single-use route any token may spend.
fn flood_app(layer: JwtAuthLayer) -> Router {
    use axum::routing::post;
    use tower_jwt_auth::guard::SingleUse;
    async fn created() -> (StatusCode, &'static str) {
        (StatusCode::CREATED, "created")
    }
    Router::new()
        .route("/documents", get(scheme).post(scheme))
        .route("/transfers", post(created).route_layer(SingleUse))
        .layer(layer)
}

/// A client holding one DPoP-bound token sends `n` requests, each with a fresh proof;
/// the statuses, by count.
async fn flood(server: &Server, n: usize) -> std::collections::BTreeMap<u16, usize> {
    let access = bound();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..n {
        let proof = proof_for(&access).sign();
        let status = send(server, &access, &[proof]).await.status.as_u16();
        *statuses.entry(status).or_default() += 1;
    }
    statuses
}

async fn transfer(server: &Server, token: &str) -> Answer {
    let response = server
        .client
        .post(server.url("/transfers"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    answer(response).await
}

#[tokio::test]
async fn a_dpop_client_flooding_fresh_proofs_cannot_deny_or_reopen_single_use_tokens() {
    use tower_jwt_auth::state::{MemoryReplayStore, StoreFailure};
    for failure in [StoreFailure::Closed, StoreFailure::Open] {
        // A single-use store of 160 keys: proofs recorded beside single-use tokens would
        // fill it ten times over.
        let config = config(DpopMode::Allowed)
            .replay_store(MemoryReplayStore::new(160))
            .store_failure(failure);
        let server = Server::start_router(flood_app(JwtAuthLayer::new(
            config.build().expect("config"),
        )))
        .await;
        let flooded = flood(&server, 400).await;
        assert_eq!(flooded.get(&200), Some(&400), "{failure:?}: {flooded:?}");
        let once = token(ec_key()).sign();
        let first = transfer(&server, &once).await;
        assert_eq!(first.status, StatusCode::CREATED, "{failure:?}: {first:?}");
        transfer(&server, &once)
            .await
            .assert_invalid_token("token already used");
    }
}

#[tokio::test]
async fn a_client_key_past_its_live_proof_limit_is_refused_alone() {
    let limited = dpop(DpopMode::Allowed).max_live_proofs_per_key(20);
    let server = start(builder(ec_key().key_set()).dpop(limited)).await;
    let flooded = flood(&server, 30).await;
    assert_eq!(flooded.get(&200), Some(&20), "{flooded:?}");
    assert_eq!(flooded.get(&401), Some(&10), "{flooded:?}");
    let access = bound();
    assert_proof_refused(
        &send(&server, &access, &[proof_for(&access).sign()]).await,
        "over the limit",
    );
    // Another client key is not affected.
    let other = TestKey::ec_p256().with_kid("other-client");
    let other_access = token(ec_key()).dpop_bound(&other).sign();
    let other_proof = DpopProof::new(&other, "GET", &format!("{BASE}/documents"))
        .token(&other_access)
        .sign();
    send(&server, &other_access, &[other_proof])
        .await
        .assert_ok();
}

#[tokio::test]
async fn with_nonces_a_client_key_past_its_limit_is_asked_for_a_fresh_nonce() {
    let secret = [9u8; 32];
    let limited = dpop(DpopMode::Allowed)
        .nonces(secret, Duration::from_secs(60))
        .max_live_proofs_per_key(3);
    let server = start(builder(ec_key().key_set()).dpop(limited)).await;
    let access = bound();
    let first = send(&server, &access, &[proof_for(&access).sign()]).await;
    let nonce = first.nonce.clone().expect("a DPoP-Nonce header");
    for _ in 0..3 {
        send(&server, &access, &[proof_for(&access).nonce(&nonce).sign()])
            .await
            .assert_ok();
    }
    let over = send(&server, &access, &[proof_for(&access).nonce(&nonce).sign()]).await;
    assert_eq!(over.status, StatusCode::UNAUTHORIZED, "{over:?}");
    assert_eq!(over.error_code().as_deref(), Some("use_dpop_nonce"));
    assert!(over.nonce.is_some(), "{over:?}");
}

#[tokio::test]
async fn a_full_proof_store_refuses_dpop_requests_only() {
    use tower_jwt_auth::state::StoreFailure;
    for failure in [StoreFailure::Closed, StoreFailure::Open] {
        full_proof_store_refuses_dpop_requests_only(failure).await;
    }
}

async fn full_proof_store_refuses_dpop_requests_only(failure: tower_jwt_auth::state::StoreFailure) {
    use tower_jwt_auth::state::MemoryProofStore;
    // One live proof per shard: the second client key in a shard finds it full.
    let config = config(DpopMode::Allowed)
        .proof_store(MemoryProofStore::new(16))
        .store_failure(failure);
    let server = Server::start_router(flood_app(JwtAuthLayer::new(
        config.build().expect("config"),
    )))
    .await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..64 {
        let key = TestKey::ec_p256().with_kid(format!("client-{i}"));
        let access = token(ec_key()).dpop_bound(&key).sign();
        let proof = DpopProof::new(&key, "GET", &format!("{BASE}/documents"))
            .token(&access)
            .sign();
        let status = send(&server, &access, &[proof]).await.status.as_u16();
        *statuses.entry(status).or_default() += 1;
    }
    assert!(
        statuses.get(&503).is_some_and(|n| *n >= 64 - 16),
        "{statuses:?}"
    );
    // Single use is not affected.
    let once = token(ec_key()).sign();
    assert_eq!(transfer(&server, &once).await.status, StatusCode::CREATED);
    transfer(&server, &once)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn on_redis_the_live_proof_limit_of_a_key_holds_across_replicas() {
    use tower_jwt_auth::state::{RedisConnection, RedisProofStore, RedisReplayStore};
    let redis = RedisServer::start().await;
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let connection = RedisConnection::open(&redis.url())
            .expect("url")
            .prefix("limit:");
        let config = config(DpopMode::Allowed)
            .dpop(dpop(DpopMode::Allowed).max_live_proofs_per_key(5))
            .replay_store(RedisReplayStore::new(connection.clone()))
            .proof_store(RedisProofStore::new(connection));
        replicas.push(start(config).await);
    }
    let first = flood(&replicas[0], 3).await;
    assert_eq!(first.get(&200), Some(&3), "{first:?}");
    let second = flood(&replicas[1], 3).await;
    assert_eq!(second.get(&200), Some(&2), "{second:?}");
    assert_eq!(second.get(&401), Some(&1), "{second:?}");
    // Proofs live under keys of their own, never beside single-use tokens.
    let keys = redis.command(&["KEYS", "*"]);
    assert!(
        keys.lines().all(|k| k.starts_with("limit:dpop:{")),
        "{keys}"
    );
    assert_eq!(
        keys.lines().count(),
        6,
        "five proofs and the key's count: {keys}"
    );
}
