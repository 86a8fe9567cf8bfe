//! Policy over real HTTP and over tonic: claim rules, client allow-lists, the typed
//! validator, exemptions, claim forwarding and step-up (RFC 9470), each with a token
//! that passes and one that does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{
    Answer, Server, builder, ec_key, listener, token, unix_now, whoami_or_anonymous,
};
use crate::tonic_server::proto::documents_client::DocumentsClient;
use crate::tonic_server::proto::documents_server::{Documents, DocumentsServer};
use crate::tonic_server::proto::{CreateRequest, Document, GetRequest};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Server as GrpcServer};
use tonic::{Code, Request, Response, Status};
use tower_jwt_auth::rules::{Exemption, Expected};
use tower_jwt_auth::{Claims, JwtAuthConfigBuilder, JwtAuthLayer, StandardClaims, StepUp};

/// The headers the handler received, as JSON.
async fn headers(headers: HeaderMap) -> axum::Json<Value> {
    let map: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                Value::from(value.to_str().unwrap_or("<binary>")),
            )
        })
        .collect();
    axum::Json(Value::Object(map))
}

fn app(layer: JwtAuthLayer) -> Router {
    Router::new()
        .route("/", get(whoami_or_anonymous))
        .route(
            "/public/info",
            get(whoami_or_anonymous).post(whoami_or_anonymous),
        )
        .route("/health", get(whoami_or_anonymous))
        .route("/v1/{id}/status", get(whoami_or_anonymous))
        .route("/headers", get(headers))
        .route(
            "/security",
            get(whoami_or_anonymous)
                .route_layer(StepUp::new().acr(["mfa"]).max_age(Duration::from_secs(300))),
        )
        .route(
            "/acr-only",
            get(whoami_or_anonymous).route_layer(StepUp::new().acr(["mfa", "hwk"])),
        )
        .layer(layer)
}

async fn start(builder: JwtAuthConfigBuilder) -> Server {
    Server::start_router(app(JwtAuthLayer::new(builder.build().expect("config")))).await
}

fn config() -> JwtAuthConfigBuilder {
    builder(ec_key().key_set())
}

#[tokio::test]
async fn required_values_optional_checks_and_validators() {
    let server = start(
        config()
            .require_claim("email_verified", true)
            .claim_if_present("tenant", Expected::any_of(["acme", "globex"]))
            .validate_claim("amr", |amr| {
                amr.as_array().is_some_and(|m| m.iter().any(|m| m == "pwd"))
            })
            .validate_claim_if_present("level", |level| level.as_u64().is_some_and(|l| l >= 2))
            .validate_claims(|claims| {
                !claims
                    .get_str("sub")
                    .is_some_and(|sub| sub.starts_with("banned-"))
            }),
    )
    .await;
    let good = || {
        token(ec_key())
            .claim("email_verified", true)
            .claim("amr", json!(["pwd"]))
    };
    server.bearer(&good().sign()).await.assert_ok();
    server
        .bearer(&good().claim("tenant", "acme").claim("level", 3).sign())
        .await
        .assert_ok();

    let cases = [
        (
            good().without_claim("email_verified"),
            "required claim missing",
        ),
        (good().claim("email_verified", false), "claim not accepted"),
        (good().claim("email_verified", "true"), "claim not accepted"),
        (good().claim("tenant", "initech"), "claim not accepted"),
        (good().without_claim("amr"), "required claim missing"),
        (good().claim("amr", json!(["otp"])), "claim not accepted"),
        (good().claim("level", 1), "claim not accepted"),
        (good().subject("banned-42"), "claim not accepted"),
    ];
    for (case, description) in cases {
        server
            .bearer(&case.sign())
            .await
            .assert_invalid_token(description);
    }
}

#[tokio::test]
async fn only_allowed_clients_pass_by_client_id_then_azp() {
    let server = start(config().allowed_clients(["web-app", "mobile-app"])).await;
    let base = || token(ec_key()).without_claim("client_id");
    server
        .bearer(&base().claim("client_id", "web-app").sign())
        .await
        .assert_ok();
    server
        .bearer(&base().claim("azp", "mobile-app").sign())
        .await
        .assert_ok();
    for refused in [
        base().claim("client_id", "scraper").sign(),
        // client_id decides when both are there.
        base()
            .claim("client_id", "scraper")
            .claim("azp", "web-app")
            .sign(),
        base().sign(),
    ] {
        server
            .bearer(&refused)
            .await
            .assert_invalid_token("client not allowed");
    }
}

#[tokio::test]
async fn the_typed_validator_runs_on_every_request_cached_or_not() {
    #[derive(Debug, Clone, serde::Deserialize)]
    struct OrgClaims {
        org: String,
    }
    async fn org(Claims(claims): Claims<OrgClaims>) -> String {
        claims.org.clone()
    }
    let cfg = config()
        .cache(tower_jwt_auth::cache::CacheOptions::new())
        .build()
        .expect("config");
    let layer = JwtAuthLayer::with_claims::<OrgClaims>(cfg)
        .validate(|claims| claims.org.starts_with("org_"));
    let server = Server::start_router(Router::new().route("/", get(org)).layer(layer)).await;
    let good = token(ec_key()).claim("org", "org_1").sign();
    for _ in 0..2 {
        let answer = server.bearer(&good).await;
        answer.assert_ok();
        assert_eq!(answer.body, "org_1");
    }
    let bad = token(ec_key()).claim("org", "team_1").sign();
    for _ in 0..2 {
        server
            .bearer(&bad)
            .await
            .assert_invalid_token("claim not accepted");
    }
}

#[tokio::test]
async fn a_token_the_typed_validator_refuses_is_not_spent() {
    #[derive(Debug, Clone, serde::Deserialize)]
    struct OrgClaims {
        org: String,
    }
    async fn org(Claims(claims): Claims<OrgClaims>) -> String {
        claims.org.clone()
    }
    // The application's verdict changes between requests (an organisation onboarded in
    // the meantime); a refused single-use token must still be usable afterwards.
    let onboarded = Arc::new(AtomicBool::new(false));
    let open = Arc::clone(&onboarded);
    let cfg = config().single_use_tokens(true).build().expect("config");
    let layer =
        JwtAuthLayer::with_claims::<OrgClaims>(cfg).validate(move |_| open.load(Ordering::SeqCst));
    let server = Server::start_router(Router::new().route("/", get(org)).layer(layer)).await;
    let once = token(ec_key()).claim("org", "org_1").sign();
    server
        .bearer(&once)
        .await
        .assert_invalid_token("claim not accepted");
    onboarded.store(true, Ordering::SeqCst);
    let answer = server.bearer(&once).await;
    answer.assert_ok();
    assert_eq!(answer.body, "org_1");
    server
        .bearer(&once)
        .await
        .assert_invalid_token("token already used");
}

#[tokio::test]
async fn exemptions_pass_without_a_token_but_still_refuse_a_bad_one() {
    let server = start(
        config()
            .exempt(Exemption::path("/health"))
            .exempt(Exemption::prefix("/public/").method(Method::GET))
            .exempt(Exemption::glob("/v1/*/status"))
            .exempt_when(|head| head.headers().contains_key("x-synthetic-probe")),
    )
    .await;
    for path in ["/health", "/public/info", "/v1/orders/status"] {
        let anonymous = server.get(path, &[]).await;
        anonymous.assert_ok();
        assert_eq!(anonymous.body, "anonymous", "{path}");
        let known = server
            .bearer_at(path, &token(ec_key()).subject("ann").sign())
            .await;
        known.assert_ok();
        assert_eq!(known.body, "ann", "{path}");
        server
            .bearer_at(path, &token(ec_key()).expired().sign())
            .await
            .assert_invalid_token("token expired");
    }
    // Not exempt: another method, a deeper path, the protected root.
    let post = server
        .client
        .post(server.url("/public/info"))
        .send()
        .await
        .expect("post");
    crate::support::answer(post).await.assert_no_token();
    server.get("/v1/a/b/status", &[]).await.assert_no_token();
    server.get("/", &[]).await.assert_no_token();
    let probe = server.get("/", &[("x-synthetic-probe", "1")]).await;
    probe.assert_ok();
    assert_eq!(probe.body, "anonymous");
}

/// Sends `GET <path>` as written, byte for byte (an HTTP client would normalise it),
/// and returns the status and the `WWW-Authenticate` header.
async fn raw_get(server: &Server, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let challenge = text
        .lines()
        .find_map(|line| line.strip_prefix("www-authenticate: "))
        .unwrap_or_default()
        .to_owned();
    (status, challenge)
}

#[tokio::test]
async fn ambiguous_paths_get_400_before_the_exemptions_decide() {
    let server = start(config().exempt(Exemption::prefix("/public/"))).await;
    // The plain paths: the exemption passes, the rest needs a token.
    assert_eq!(raw_get(&server, "/public/info").await.0, 200);
    assert_eq!(raw_get(&server, "/private").await.0, 401);
    for path in [
        "/public/..%2Fprivate",
        "/public/%2fprivate",
        "/public/%5Cprivate",
        "/public/../private",
        "/public/./info",
        "/public/%2e%2e/private",
        "/public/info;jsessionid=1",
        "/public//info",
        "/public/%00",
    ] {
        let (status, challenge) = raw_get(&server, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            challenge.contains(r#"error="invalid_request""#),
            "{path}: {challenge}"
        );
    }
    // A rule that opts out: the same shape reaches the rules, which match it byte for
    // byte and let it through to the router (which has no such route).
    let lenient =
        start(config().exempt(Exemption::prefix("/public/").allow_ambiguous_paths())).await;
    assert_eq!(raw_get(&lenient, "/public/..%2Fprivate").await.0, 404);
    // A path no exemption matches needs a token as ever: ambiguous or not, nothing is
    // decided by it.
    assert_eq!(raw_get(&server, "/private%2Fx").await.0, 401);
    // A predicate decides by path too: what it lets through is checked the same way.
    let predicate = start(config().exempt_when(|head| head.path().starts_with("/open/"))).await;
    assert_eq!(raw_get(&predicate, "/open/x").await.0, 404);
    assert_eq!(raw_get(&predicate, "/open/..%2Fprivate").await.0, 400);
    // Without exemptions no decision is made by path, and nothing is refused for one.
    let plain = start(config()).await;
    assert_eq!(raw_get(&plain, "/public/..%2Fprivate").await.0, 401);
}

async fn received(server: &Server, token: Option<&str>, extra: &[(&str, &str)]) -> Value {
    let mut headers: Vec<(&str, String)> =
        extra.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
    if let Some(token) = token {
        headers.push(("authorization", format!("Bearer {token}")));
    }
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let answer: Answer = server.get("/headers", &borrowed).await;
    answer.assert_ok();
    serde_json::from_str(&answer.body).expect("json")
}

#[tokio::test]
async fn forwarded_claims_reach_the_inner_service_and_spoofed_ones_never_do() {
    let server = start(
        config()
            .forward_claim("sub", "x-jwt-sub")
            .forward_claim("tenant", "x-jwt-tenant")
            .forward_claim("roles", "x-jwt-roles")
            .forward_payload("x-jwt-payload")
            .remove_authorization(true)
            .exempt(Exemption::path("/headers").method(Method::GET)),
    )
    .await;
    // Underscore spellings too: CGI-style gateways (CGI, WSGI, Rack, PHP-FPM) read
    // `x_jwt_tenant` and `x-jwt-tenant` as one variable.
    let spoof = [
        ("x-jwt-sub", "admin"),
        ("x-jwt-tenant", "other"),
        ("x-jwt-payload", "e30"),
        ("x_jwt_tenant", "other"),
        ("x-jwt_sub", "admin"),
    ];
    let t = token(ec_key())
        .subject("zoe")
        .claim("tenant", "acme")
        .claim("roles", json!(["a", "b"]))
        .sign();
    let seen = received(&server, Some(&t), &spoof).await;
    assert_eq!(seen["x-jwt-sub"], "zoe");
    assert_eq!(seen["x-jwt-tenant"], "acme");
    assert_eq!(seen["x-jwt-roles"], r#"["a","b"]"#);
    let payload = URL_SAFE_NO_PAD
        .decode(seen["x-jwt-payload"].as_str().expect("payload"))
        .expect("base64url");
    let payload: Value = serde_json::from_slice(&payload).expect("json");
    assert_eq!(payload["sub"], "zoe");
    assert!(seen.get("authorization").is_none(), "{seen}");

    // A claim the token lacks is not forwarded; the client's header is still gone.
    let plain = token(ec_key()).subject("yan").sign();
    let seen = received(&server, Some(&plain), &spoof).await;
    assert_eq!(seen["x-jwt-sub"], "yan");
    for name in ["x-jwt-tenant", "x_jwt_tenant", "x-jwt_sub"] {
        assert!(seen.get(name).is_none(), "{name} in {seen}");
    }

    // Without a token (the route is exempt): nothing forwarded, nothing spoofed.
    let seen = received(&server, None, &spoof).await;
    for (name, _) in spoof {
        assert!(seen.get(name).is_none(), "{name} in {seen}");
    }
}

fn assert_step_up(answer: &Answer, acr_values: &str, max_age: Option<&str>) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    let challenge = answer.challenge.as_deref().expect("challenge");
    assert!(
        challenge
            .starts_with("Bearer error=\"insufficient_user_authentication\", error_description=\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("acr_values=\"{acr_values}\"")),
        "{challenge}"
    );
    match max_age {
        Some(age) => assert!(
            challenge.contains(&format!("max_age=\"{age}\"")),
            "{challenge}"
        ),
        None => assert!(!challenge.contains("max_age"), "{challenge}"),
    }
}

#[tokio::test]
async fn step_up_asks_for_the_acr_and_max_age_it_needs() {
    let server = start(config()).await;
    let now = unix_now();
    let strong = token(ec_key())
        .claim("acr", "mfa")
        .claim("auth_time", now - 10)
        .sign();
    server.bearer_at("/security", &strong).await.assert_ok();
    for weak in [
        token(ec_key())
            .claim("acr", "pwd")
            .claim("auth_time", now - 10),
        token(ec_key()).claim("auth_time", now - 10),
        token(ec_key())
            .claim("acr", "mfa")
            .claim("auth_time", now - 301),
        token(ec_key()).claim("acr", "mfa"),
        token(ec_key())
            .claim("acr", json!(["mfa"]))
            .claim("auth_time", now),
    ] {
        let answer = server.bearer_at("/security", &weak.sign()).await;
        assert_step_up(&answer, "mfa", Some("300"));
    }
    let hardware = token(ec_key()).claim("acr", "hwk").sign();
    server.bearer_at("/acr-only", &hardware).await.assert_ok();
    let answer = server
        .bearer_at("/acr-only", &token(ec_key()).claim("acr", "pwd").sign())
        .await;
    assert_step_up(&answer, "mfa hwk", None);
    // No token at all is an ordinary 401, not a step-up.
    server.get("/security", &[]).await.assert_no_token();
}

// ---- tonic -----------------------------------------------------------------------------

/// Answers `Get` with the forwarded `x-jwt-sub` as the title and the claims' `sub` (or
/// `anonymous`) as the owner.
struct Echo;

#[tonic::async_trait]
impl Documents for Echo {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Document>, Status> {
        use tower_jwt_auth::tonic::RequestExt as _;
        let forwarded = request
            .metadata()
            .get("x-jwt-sub")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let owner = request
            .claims::<StandardClaims>()
            .ok()
            .and_then(|c| c.sub.clone())
            .unwrap_or_else(|| "anonymous".into());
        Ok(Response::new(Document {
            id: request.get_ref().id.clone(),
            title: forwarded,
            owner,
        }))
    }

    async fn create(&self, request: Request<CreateRequest>) -> Result<Response<Document>, Status> {
        Ok(Response::new(Document {
            id: "1".into(),
            title: request.into_inner().title,
            owner: String::new(),
        }))
    }
}

async fn grpc(builder: JwtAuthConfigBuilder, step_up: Option<StepUp>) -> DocumentsClient<Channel> {
    let layer = JwtAuthLayer::new(builder.build().expect("config"));
    let listener = listener().await;
    let addr = listener.local_addr().expect("addr");
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    match step_up {
        Some(step_up) => tokio::spawn(
            GrpcServer::builder()
                .layer(layer)
                .layer(step_up)
                .add_service(DocumentsServer::new(Echo))
                .serve_with_incoming(incoming),
        ),
        None => tokio::spawn(
            GrpcServer::builder()
                .layer(layer)
                .add_service(DocumentsServer::new(Echo))
                .serve_with_incoming(incoming),
        ),
    };
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    DocumentsClient::new(channel)
}

fn get_with(token: Option<&str>, extra: &[(&'static str, &str)]) -> Request<GetRequest> {
    let mut request = Request::new(GetRequest { id: "1".into() });
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("metadata");
        request.metadata_mut().insert("authorization", value);
    }
    for (name, value) in extra {
        request
            .metadata_mut()
            .insert(*name, value.parse().expect("metadata"));
    }
    request
}

#[tokio::test]
async fn over_tonic_rules_clients_and_validators_are_unauthenticated_when_unmet() {
    let mut client = grpc(
        config()
            .require_claim("email_verified", true)
            .allowed_clients(["svc-a"]),
        None,
    )
    .await;
    let good = token(ec_key())
        .subject("svc")
        .claim("email_verified", true)
        .claim("client_id", "svc-a")
        .sign();
    let ok = client.get(get_with(Some(&good), &[])).await.expect("ok");
    assert_eq!(ok.into_inner().owner, "svc");
    for (bad, description) in [
        (
            token(ec_key())
                .claim("email_verified", false)
                .claim("client_id", "svc-a")
                .sign(),
            "claim not accepted",
        ),
        (
            token(ec_key())
                .claim("email_verified", true)
                .claim("client_id", "svc-b")
                .sign(),
            "client not allowed",
        ),
    ] {
        let status = client
            .get(get_with(Some(&bad), &[]))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_eq!(status.message(), description);
    }
}

#[tokio::test]
async fn over_tonic_exemptions_and_forwarding_work_per_method() {
    let mut client = grpc(
        config()
            .exempt(Exemption::glob("/documents.v1.Documents/G*"))
            .forward_claim("sub", "x-jwt-sub"),
        None,
    )
    .await;
    let spoof = [("x-jwt-sub", "mallory")];
    let anonymous = client
        .get(get_with(None, &spoof))
        .await
        .expect("exempt")
        .into_inner();
    assert_eq!(
        (anonymous.owner.as_str(), anonymous.title.as_str()),
        ("anonymous", "")
    );
    let t = token(ec_key()).subject("sam").sign();
    let known = client
        .get(get_with(Some(&t), &spoof))
        .await
        .expect("ok")
        .into_inner();
    assert_eq!((known.owner.as_str(), known.title.as_str()), ("sam", "sam"));
    let expired = token(ec_key()).expired().sign();
    let status = client
        .get(get_with(Some(&expired), &[]))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
    // Create is not exempt.
    let status = client
        .create(Request::new(CreateRequest { title: "t".into() }))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn over_tonic_step_up_carries_its_challenge() {
    let step_up = StepUp::new().acr(["mfa"]).max_age(Duration::from_secs(60));
    let mut client = grpc(config(), Some(step_up)).await;
    let strong = token(ec_key())
        .claim("acr", "mfa")
        .claim("auth_time", unix_now())
        .sign();
    client.get(get_with(Some(&strong), &[])).await.expect("ok");
    let weak = token(ec_key()).claim("acr", "pwd").sign();
    let status = client
        .get(get_with(Some(&weak), &[]))
        .await
        .expect_err("step-up");
    assert_eq!(status.code(), Code::Unauthenticated);
    let challenge = status
        .metadata()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("challenge in trailers")
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"")
            && challenge.contains("acr_values=\"mfa\"")
            && challenge.contains("max_age=\"60\""),
        "{challenge}"
    );
}
