//! Permissions and the axum integration over real HTTP, with the live MockIssuer:
//! every permission source, exact matching, all-of and any-of guards, 401 against 403,
//! 403 before 422, the typed extractor, optional claims, and the token endpoint.

use crate::support::{Answer, Server, answer, client, whoami_or_anonymous};
use axum::Router;
use axum::routing::{get, post};
use http::StatusCode;
use serde_json::{Value, json};
use tower_jwt_auth::axum::ClaimsRejection;
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::{
    Authentication, Claims, JwtAuthLayer, Permissions, RequirePermission, SharedClaims,
    StandardClaims,
};

tower_jwt_auth::permission! {
    /// The write permission, as a type.
    pub Write = "write";
}

async fn ok() -> &'static str {
    "ok"
}

async fn create(axum::Json(body): axum::Json<Value>) -> String {
    body.to_string()
}

async fn typed(_: RequirePermission<Write>, claims: Claims<StandardClaims>) -> String {
    claims.sub.clone().unwrap_or_default()
}

async fn list_permissions(permissions: Permissions) -> String {
    permissions.iter().collect::<Vec<_>>().join(",")
}

fn routes() -> Router {
    Router::new()
        .route("/read", get(ok).route_layer(RequirePermission("read")))
        .route(
            "/write",
            post(create).route_layer(RequirePermission("write")),
        )
        .route(
            "/all",
            get(ok).route_layer(RequirePermission::all(["read", "write"])),
        )
        .route(
            "/any",
            get(ok).route_layer(RequirePermission::any(["admin", "audit"])),
        )
        .route(
            "/stacked",
            get(ok)
                .route_layer(RequirePermission("read"))
                .route_layer(RequirePermission("write")),
        )
        .route("/typed", post(typed))
        .route("/permissions", get(list_permissions))
        .route("/optional", get(whoami_or_anonymous))
}

async fn start(
    issuer: &MockIssuer,
    configure: impl FnOnce(tower_jwt_auth::JwtAuthConfigBuilder) -> tower_jwt_auth::JwtAuthConfigBuilder,
) -> Server {
    let builder = crate::support::issuer_config(issuer);
    let cfg = configure(builder).build().expect("config");
    Server::start_router(routes().layer(JwtAuthLayer::new(cfg))).await
}

impl Server {
    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Answer {
        let mut request = self
            .client
            .request(method.parse().expect("method"), self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request.send().await.expect("request")).await
    }
}

fn assert_forbidden(answer: &Answer, scope: &str) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
    assert_eq!(
        answer.error_code().as_deref(),
        Some("insufficient_scope"),
        "{answer:?}"
    );
    let expected = format!("scope=\"{scope}\"");
    assert!(
        answer
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains(&expected)),
        "expected {expected} in {answer:?}"
    );
}

#[tokio::test]
async fn each_permission_source_grants() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| {
        b.permission_claim("realm_access.roles")
            .permission_claim_path(["resource_access", "my.api", "roles"])
            .permission_claim("app_metadata.authz.permissions")
    })
    .await;
    let tokens = [
        (
            "permissions array",
            issuer.token().permissions(["read"]).sign(),
        ),
        ("scope string", issuer.token().scope("profile read").sign()),
        (
            "scp string",
            issuer.token().claim("scp", "read email").sign(),
        ),
        (
            "scp array",
            issuer.token().claim("scp", json!(["read"])).sign(),
        ),
        (
            "keycloak realm roles",
            issuer
                .token()
                .claim("realm_access", json!({"roles": ["read"]}))
                .sign(),
        ),
        (
            "keycloak client roles",
            issuer
                .token()
                .claim(
                    "resource_access",
                    json!({"my.api": {"roles": ["read"]}, "other": {"roles": ["write"]}}),
                )
                .sign(),
        ),
        (
            "custom path",
            issuer
                .token()
                .claim("app_metadata", json!({"authz": {"permissions": ["read"]}}))
                .sign(),
        ),
    ];
    for (source, token) in tokens {
        let answer = server.call("GET", "/read", Some(&token), "").await;
        assert_eq!(answer.status, StatusCode::OK, "{source}: {answer:?}");
        assert_forbidden(
            &server.call("POST", "/write", Some(&token), "{}").await,
            "write",
        );
    }
}

#[tokio::test]
async fn roles_are_not_read_unless_configured() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b).await;
    let token = issuer.token().claim("roles", json!(["read"])).sign();
    assert_forbidden(&server.call("GET", "/read", Some(&token), "").await, "read");
    let server = start(&issuer, |b| b.permission_claim("roles")).await;
    assert_eq!(
        server.call("GET", "/read", Some(&token), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn matching_is_exact_writer_does_not_grant_write() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b).await;
    for near in ["writer", "writ", "Write", "write:all", " write"] {
        let token = issuer.token().permissions([near]).sign();
        assert_forbidden(
            &server.call("POST", "/write", Some(&token), "{}").await,
            "write",
        );
    }
    let token = issuer.token().scope("rewrite writes").sign();
    assert_forbidden(
        &server.call("POST", "/write", Some(&token), "{}").await,
        "write",
    );
}

#[tokio::test]
async fn all_of_and_any_of_guards() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b).await;
    let read = issuer.token().permissions(["read"]).sign();
    let both = issuer.token().permissions(["read", "write"]).sign();
    let audit = issuer.token().scope("audit").sign();
    assert_forbidden(
        &server.call("GET", "/all", Some(&read), "").await,
        "read write",
    );
    assert_eq!(
        server.call("GET", "/all", Some(&both), "").await.status,
        StatusCode::OK
    );
    let answer = server.call("GET", "/any", Some(&read), "").await;
    assert_forbidden(&answer, "admin audit");
    assert!(
        answer
            .challenge
            .as_deref()
            .is_some_and(|c| c.contains("one of the listed permissions is required"))
    );
    assert_eq!(
        server.call("GET", "/any", Some(&audit), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn guards_stack() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b).await;
    let read = issuer.token().permissions(["read"]).sign();
    let write = issuer.token().permissions(["write"]).sign();
    let both = issuer.token().permissions(["read", "write"]).sign();
    assert_forbidden(
        &server.call("GET", "/stacked", Some(&read), "").await,
        "write",
    );
    assert_forbidden(
        &server.call("GET", "/stacked", Some(&write), "").await,
        "read",
    );
    assert_eq!(
        server.call("GET", "/stacked", Some(&both), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn missing_token_is_401_and_missing_permission_is_403() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b).await;
    server
        .call("POST", "/write", None, "{}")
        .await
        .assert_no_token();
    let expired = issuer.token().permissions(["write"]).expired().sign();
    server
        .call("POST", "/write", Some(&expired), "{}")
        .await
        .assert_invalid_token("token expired");
    let read = issuer.token().permissions(["read"]).sign();
    assert_forbidden(
        &server.call("POST", "/write", Some(&read), "{}").await,
        "write",
    );
    let write = issuer.token().permissions(["write"]).sign();
    let answer = server
        .call("POST", "/write", Some(&write), r#"{"title":"x"}"#)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, r#"{"title":"x"}"#);
}

#[tokio::test]
async fn forbidden_comes_before_the_body_is_read() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b).await;
    let read = issuer.token().permissions(["read"]).sign();
    // Invalid JSON: with the permission this is 400/422, without it 403.
    assert_forbidden(
        &server
            .call("POST", "/write", Some(&read), "{not json")
            .await,
        "write",
    );
    assert_forbidden(
        &server
            .call("POST", "/typed", Some(&read), "{not json")
            .await,
        "write",
    );
    let write = issuer.token().permissions(["write"]).sign();
    let answer = server
        .call("POST", "/write", Some(&write), "{not json")
        .await;
    assert!(answer.status.is_client_error() && answer.status != StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn typed_extractor_names_the_permission() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b).await;
    let write = issuer
        .token()
        .subject("alice")
        .permissions(["write"])
        .sign();
    let answer = server.call("POST", "/typed", Some(&write), "").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "alice");
    let read = issuer.token().permissions(["read"]).sign();
    assert_forbidden(
        &server.call("POST", "/typed", Some(&read), "").await,
        "write",
    );
}

#[tokio::test]
async fn layer_wide_required_permissions_apply_to_every_route() {
    let issuer = MockIssuer::start().await;
    let server = start(&issuer, |b| b.require_permissions(["api:access"])).await;
    let without = issuer.token().permissions(["read"]).sign();
    assert_forbidden(
        &server.call("GET", "/read", Some(&without), "").await,
        "api:access",
    );
    assert_forbidden(
        &server.call("GET", "/permissions", Some(&without), "").await,
        "api:access",
    );
    let with = issuer.token().permissions(["read", "api:access"]).sign();
    assert_eq!(
        server.call("GET", "/read", Some(&with), "").await.status,
        StatusCode::OK
    );
    let answer = server.call("GET", "/permissions", Some(&with), "").await;
    assert_eq!(answer.body, "api:access,read");
}

#[tokio::test]
async fn optional_claims_with_and_without_a_token() {
    let issuer = MockIssuer::start().await;
    let cfg = crate::support::issuer_config(&issuer)
        .build()
        .expect("config");
    let server = Server::start_router(routes().layer(JwtAuthLayer::new(cfg).optional())).await;
    assert_eq!(
        server.call("GET", "/optional", None, "").await.body,
        "anonymous"
    );
    let token = issuer.token().subject("bob").sign();
    assert_eq!(
        server.call("GET", "/optional", Some(&token), "").await.body,
        "bob"
    );
    // Guards still need a verified token.
    server
        .call("GET", "/read", None, "")
        .await
        .assert_no_token();
}

/// A claims type the layer in these tests is not built for.
#[derive(Debug, Clone, serde::Deserialize)]
struct OtherClaims {
    sub: String,
}

#[tokio::test]
async fn claims_of_another_type_than_the_layers_are_a_500_naming_both() {
    async fn other(Claims(claims): Claims<OtherClaims>) -> String {
        claims.sub
    }
    async fn maybe_other(claims: Option<Claims<OtherClaims>>) -> String {
        claims.map_or_else(|| "anonymous".into(), |c| c.0.sub)
    }
    let issuer = MockIssuer::start().await;
    let cfg = crate::support::issuer_config(&issuer)
        .build()
        .expect("config");
    let router = Router::new()
        .route("/other", get(other))
        .route("/maybe-other", get(maybe_other))
        .layer(JwtAuthLayer::new(cfg).optional());
    let server = Server::start_router(router).await;
    let token = issuer.token().subject("gina").sign();
    for path in ["/other", "/maybe-other"] {
        for token in [Some(token.as_str()), None] {
            let answer = server.call("GET", path, token, "").await;
            assert_eq!(
                answer.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{path}: {answer:?}"
            );
            assert!(
                answer.body.contains("OtherClaims") && answer.body.contains("StandardClaims"),
                "{path}: {answer:?}"
            );
        }
    }
}

#[tokio::test]
async fn one_extension_serves_every_extractor() {
    async fn shared(SharedClaims(claims): SharedClaims<StandardClaims>) -> String {
        claims.sub.clone().unwrap_or_default()
    }
    async fn whole(auth: Authentication) -> String {
        format!(
            "{} {} {} {}",
            auth.is_authenticated(),
            auth.issuer().unwrap_or("-"),
            auth.token().map_or(0, |t| t.as_str().len()),
            auth.permissions().iter().collect::<Vec<_>>().join(","),
        )
    }
    async fn refused(claims: Result<Claims<StandardClaims>, ClaimsRejection>) -> String {
        match claims {
            Ok(_) => "ok".into(),
            Err(rejection) => format!(
                "{} {:?} {}",
                rejection.status().as_u16(),
                rejection.error_kind(),
                rejection.body_text()
            ),
        }
    }
    let issuer = MockIssuer::start().await;
    let cfg = crate::support::issuer_config(&issuer)
        .build()
        .expect("config");
    let router = Router::new()
        .route("/shared", get(shared))
        .route("/whole", get(whole))
        .route("/refused", get(refused))
        .layer(JwtAuthLayer::new(cfg).optional());
    let server = Server::start_router(router).await;
    let token = issuer.token().subject("hana").permissions(["read"]).sign();
    let answer = server.call("GET", "/shared", Some(&token), "").await;
    assert_eq!(answer.body, "hana");
    let answer = server.call("GET", "/whole", Some(&token), "").await;
    assert_eq!(
        answer.body,
        format!("true {} {} read", issuer.issuer(), token.len())
    );
    let answer = server.call("GET", "/whole", None, "").await;
    assert_eq!(answer.body, "false - 0 ");
    let answer = server.call("GET", "/refused", None, "").await;
    assert_eq!(answer.body, "401 Some(MissingToken) no bearer token");
    let unguarded = Server::start_router(Router::new().route("/refused", get(refused))).await;
    let answer = unguarded.call("GET", "/refused", None, "").await;
    assert!(answer.body.starts_with("500 None"), "{answer:?}");
}

#[tokio::test]
async fn guard_without_a_layer_is_a_500_naming_the_layer() {
    let server = Server::start_router(routes()).await;
    let answer = server.call("GET", "/read", None, "").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(answer.body.contains("JwtAuthLayer"), "{answer:?}");
}

// ---- the mock issuer's token endpoint ---------------------------------------------

/// A form, HTTP Basic credentials, and the expected status and `error`.
type ErrorCase<'a> = (
    &'a [(&'a str, &'a str)],
    Option<(&'a str, &'a str)>,
    StatusCode,
    &'a str,
);

async fn token_request(
    issuer: &MockIssuer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut request = client().post(issuer.token_url()).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("request");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn token_endpoint_grants_and_errors() {
    let issuer = MockIssuer::start().await;
    issuer.add_client("svc", "s3cret", ["read", "write"]);
    issuer.add_user("alice", "wonderland", ["read"]);
    let server = start(&issuer, |b| b).await;

    // client_credentials with the secret in the body, and with HTTP Basic.
    let (status, body) = token_request(
        &issuer,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "s3cret"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(
        server
            .call("POST", "/write", Some(token), "{}")
            .await
            .status,
        StatusCode::OK
    );

    let (status, body) = token_request(
        &issuer,
        &[("grant_type", "client_credentials"), ("scope", "read")],
        Some(("svc", "s3cret")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().expect("token");
    assert_forbidden(
        &server.call("POST", "/write", Some(token), "{}").await,
        "write",
    );

    // password grant.
    let (status, body) = token_request(
        &issuer,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().expect("token");
    assert_eq!(
        server.call("GET", "/read", Some(token), "").await.status,
        StatusCode::OK
    );

    // Errors (RFC 6749 section 5.2).
    let cases: [ErrorCase; 6] = [
        (
            &[("grant_type", "client_credentials")],
            Some(("svc", "wrong")),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_client",
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "wrong"),
            ],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            &[("grant_type", "authorization_code"), ("code", "x")],
            None,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            &[("client_id", "svc")],
            None,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            &[("grant_type", "client_credentials"), ("scope", "admin")],
            Some(("svc", "s3cret")),
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
    ];
    for (form, basic, want_status, want_error) in cases {
        let (status, body) = token_request(&issuer, form, basic).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (want_status, Some(want_error)),
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn discovery_advertises_the_token_endpoint() {
    let issuer = MockIssuer::start().await;
    let document: Value = client()
        .get(issuer.discovery_url())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(document["token_endpoint"], Value::from(issuer.token_url()));
    assert_eq!(document["issuer"], Value::from(issuer.issuer()));
}
