//! The examples new users start from: the `axum_server` contract (README)
//! exercised end to end through the example's own router, and the Postman collection
//! checked for structure and then run, request by request, against that router and a
//! live MockIssuer.

use std::collections::HashMap;

use crate::support::{Server, client, client_credentials, unix_now};
use http::StatusCode;
use serde_json::Value;
use tower_jwt_auth::JwtAuthLayer;
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer};

async fn example_server(issuer: &MockIssuer) -> Server {
    example_server_with(issuer, None).await
}

/// The example app with `REPLAY_STORE` set to `store`.
async fn example_server_with(issuer: &MockIssuer, store: Option<&str>) -> Server {
    example_server_env(issuer, store, None).await
}

/// The example app with `REPLAY_STORE` and `JWT_ALLOWED_CLIENTS` as given.
async fn example_server_env(
    issuer: &MockIssuer,
    store: Option<&str>,
    allowed_clients: Option<&str>,
) -> Server {
    let builder = crate::support::issuer_config(issuer);
    let builder = crate::axum_server::shared_stores(store).expect("stores")(builder);
    let builder = crate::axum_server::policy(builder, allowed_clients);
    example_from(builder, None).await
}

/// The example's public URL in these tests, as a proxy in front of it would have it.
const PUBLIC_URL: &str = "https://api.example.test";

/// The example app from a builder, with `DPOP` as given and `PUBLIC_URL` above.
async fn example_from(builder: tower_jwt_auth::JwtAuthConfigBuilder, dpop: Option<&str>) -> Server {
    let cfg = crate::axum_server::sender_constraints(builder, dpop, PUBLIC_URL)
        .expect("DPOP")
        .build()
        .expect("config");
    Server::start_router(crate::axum_server::app(JwtAuthLayer::new(cfg))).await
}

#[tokio::test]
async fn jwt_introspection_client_turns_on_opaque_tokens() {
    let issuer = MockIssuer::start().await;
    issuer.add_client("api", "api-secret", Vec::<String>::new());
    let opaque = issuer.opaque(&issuer.token().subject("opal").permissions(["read"]));
    let builder = crate::axum_server::introspection(
        crate::support::issuer_config(&issuer),
        Some("api:api-secret"),
    )
    .expect("JWT_INTROSPECTION_CLIENT");
    let server = example_from(builder, None).await;
    server.bearer_at("/documents", &opaque).await.assert_ok();
    let me = server.bearer_at("/me", &opaque).await;
    me.assert_ok();
    assert!(me.body.contains("opal"), "{me:?}");
    // Without it, an opaque token is just malformed.
    let plain = example_server(&issuer).await;
    plain
        .bearer_at("/documents", &opaque)
        .await
        .assert_invalid_token("malformed token");
    let builder = tower_jwt_auth::JwtAuthConfig::builder();
    assert!(crate::axum_server::introspection(builder, Some("no-colon")).is_err());
}

#[tokio::test]
async fn dpop_follows_the_dpop_setting() {
    use tower_jwt_auth::testing::{DpopProof, TestKey};
    let issuer = MockIssuer::start().await;
    let client_key = TestKey::ec_p256();
    let bound = issuer
        .token()
        .permissions(["read"])
        .dpop_bound(&client_key)
        .sign();
    let plain = issuer.token().permissions(["read"]).sign();
    let with_proof = |server: &Server, access: &str| {
        let proof = DpopProof::new(&client_key, "GET", &format!("{PUBLIC_URL}/documents"))
            .token(access)
            .sign();
        let request = server
            .client
            .get(server.url("/documents"))
            .header("authorization", format!("DPoP {access}"))
            .header("dpop", proof);
        async move { crate::support::answer(request.send().await.expect("request")).await }
    };
    for (setting, bound_ok, bearer_ok) in [
        (None, true, true),
        (Some("allowed"), true, true),
        (Some("required"), true, false),
        (Some("off"), false, true),
    ] {
        let server = example_from(crate::support::issuer_config(&issuer), setting).await;
        let dpop = with_proof(&server, &bound).await;
        assert_eq!(
            dpop.status == StatusCode::OK,
            bound_ok,
            "{setting:?}: {dpop:?}"
        );
        let bearer = server.bearer_at("/documents", &plain).await;
        assert_eq!(
            bearer.status == StatusCode::OK,
            bearer_ok,
            "{setting:?}: {bearer:?}"
        );
    }
    let builder = tower_jwt_auth::JwtAuthConfig::builder();
    assert!(crate::axum_server::sender_constraints(builder, Some("maybe"), PUBLIC_URL).is_err());
}

#[tokio::test]
async fn the_example_policy_routes_behave_as_documented() {
    let issuer = MockIssuer::start().await;
    let server = example_server(&issuer).await;
    let json = |answer: &crate::support::Answer| -> Value {
        serde_json::from_str(&answer.body).expect("json body")
    };

    // /public/info: no token needed; a token fills `sub`; a bad token is refused.
    let anonymous = server.get("/public/info", &[]).await;
    anonymous.assert_ok();
    assert_eq!(json(&anonymous), serde_json::json!({"sub": null}));
    let known = server
        .bearer_at("/public/info", &issuer.token().subject("pia").sign())
        .await;
    known.assert_ok();
    assert_eq!(json(&known), serde_json::json!({"sub": "pia"}));
    server
        .bearer_at("/public/info", &issuer.token().expired().sign())
        .await
        .assert_invalid_token("token expired");

    // /account/security: acr mfa and auth_time at most 300 s old.
    let now = unix_now();
    let fresh_mfa = issuer
        .token()
        .claim("acr", "mfa")
        .claim("auth_time", now - 5)
        .sign();
    server
        .bearer_at("/account/security", &fresh_mfa)
        .await
        .assert_ok();
    for weak in [
        issuer.token().sign(),
        issuer
            .token()
            .claim("acr", "mfa")
            .claim("auth_time", now - 400)
            .sign(),
        issuer
            .token()
            .claim("acr", "pwd")
            .claim("auth_time", now)
            .sign(),
    ] {
        let refused = server.bearer_at("/account/security", &weak).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
        let challenge = refused.challenge.clone().unwrap_or_default();
        for part in [
            "error=\"insufficient_user_authentication\"",
            "acr_values=\"mfa\"",
            "max_age=\"300\"",
        ] {
            assert!(challenge.contains(part), "{part} in {challenge}");
        }
    }

    // /forwarded: x-jwt-sub comes from the token, never from the client.
    let forwarded = server
        .get(
            "/forwarded",
            &[
                (
                    "authorization",
                    &format!("Bearer {}", issuer.token().subject("fay").sign()),
                ),
                ("x-jwt-sub", "admin"),
            ],
        )
        .await;
    forwarded.assert_ok();
    assert_eq!(json(&forwarded), serde_json::json!({"x-jwt-sub": "fay"}));
}

#[tokio::test]
async fn jwt_allowed_clients_admits_only_the_listed_clients() {
    let issuer = MockIssuer::start().await;
    let server = example_server_env(&issuer, None, Some("web-app, cli")).await;
    let by_client = |client: &str| issuer.token().claim("client_id", client).sign();
    server
        .bearer_at("/me", &by_client("web-app"))
        .await
        .assert_ok();
    server.bearer_at("/me", &by_client("cli")).await.assert_ok();
    let azp_only = issuer.token().claim("azp", "cli").sign();
    server.bearer_at("/me", &azp_only).await.assert_ok();
    for refused in [by_client("other"), issuer.token().sign()] {
        server
            .bearer_at("/me", &refused)
            .await
            .assert_invalid_token("client not allowed");
    }
    // The token endpoint's tokens carry their client's id.
    issuer.add_client("web-app", "s3cret", ["read"]);
    let access = client_credentials(&issuer.token_url(), "web-app", "s3cret").await;
    server.bearer_at("/documents", &access).await.assert_ok();
}

/// `POST /transfers` accepts a token once, on every replica sharing the store;
/// `POST /admin/revoke` needs `admin` and refuses the revoked tokens at once.
async fn transfers_and_revocation(replicas: &[Server], issuer: &MockIssuer) {
    let post = |server: &Server, path: &str, token: &str, body: serde_json::Value| {
        let request = server
            .client
            .post(server.url(path))
            .bearer_auth(token)
            .json(&body);
        async move { crate::support::answer(request.send().await.expect("post")).await }
    };
    let [a, b] = replicas else {
        panic!("two replicas")
    };
    let amount = serde_json::json!({"amount": 1});
    let reader = issuer.token().permissions(["read"]).sign();
    let refused = post(a, "/transfers", &reader, amount.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");

    let writer = issuer
        .token()
        .subject("writer")
        .permissions(["read", "write"])
        .claim("jti", "transfer-1")
        .sign();
    let created = post(a, "/transfers", &writer, amount.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let body: Value = serde_json::from_str(&created.body).expect("json");
    assert_eq!(body["jti"], "transfer-1");
    assert_eq!(body["transfer"], amount);
    for server in [a, b] {
        post(server, "/transfers", &writer, amount.clone())
            .await
            .assert_invalid_token("token already used");
    }
    // Any JSON object; anything else is the handler's 4xx, after the guard.
    let other = issuer.token().permissions(["write"]).sign();
    let not_object = post(a, "/transfers", &other, serde_json::json!([1])).await;
    assert!(not_object.status.is_client_error(), "{not_object:?}");

    // Revocation: only admins; then refused on every replica.
    let admin = issuer.token().subject("root").permissions(["admin"]).sign();
    let revoke = serde_json::json!({"sub": "writer"});
    let not_admin = post(a, "/admin/revoke", &other, revoke.clone()).await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN, "{not_admin:?}");
    b.bearer_at("/documents", &writer).await.assert_ok();
    let done = post(a, "/admin/revoke", &admin, revoke).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{done:?}");
    for server in [a, b] {
        server
            .bearer_at("/documents", &writer)
            .await
            .assert_invalid_token("token revoked");
    }
    let reader_2 = issuer
        .token()
        .permissions(["read"])
        .claim("jti", "r-2")
        .sign();
    b.bearer_at("/documents", &reader_2).await.assert_ok();
    let done = post(
        b,
        "/admin/revoke",
        &admin,
        serde_json::json!({"jti": "r-2"}),
    )
    .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{done:?}");
    a.bearer_at("/documents", &reader_2)
        .await
        .assert_invalid_token("token revoked");
    let both = serde_json::json!({"jti": "x", "sub": "y"});
    let unclear = post(a, "/admin/revoke", &admin, both).await;
    assert_eq!(
        unclear.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{unclear:?}"
    );
}

#[tokio::test]
async fn transfers_are_single_use_and_admins_revoke_in_memory() {
    let issuer = MockIssuer::start().await;
    // One replica: the memory store is per process, so both "replicas" are one app.
    let server = example_server_with(&issuer, Some("memory")).await;
    let same = Server {
        addr: server.addr,
        client: client(),
    };
    transfers_and_revocation(&[server, same], &issuer).await;
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn transfers_are_single_use_and_admins_revoke_across_replicas_on_redis() {
    let redis = crate::support::redis::RedisServer::start().await;
    let issuer = MockIssuer::start().await;
    let a = example_server_with(&issuer, Some(&redis.url())).await;
    let b = example_server_with(&issuer, Some(&redis.url())).await;
    transfers_and_revocation(&[a, b], &issuer).await;
}

/// GET or POST (with a JSON body) under DPoP: the token and a fresh proof by `client`.
async fn dpop_call(
    server: &Server,
    client: &tower_jwt_auth::testing::TestKey,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> crate::support::Answer {
    let proof =
        tower_jwt_auth::testing::DpopProof::new(client, method, &format!("{PUBLIC_URL}{path}"))
            .token(token)
            .sign();
    let request = match body {
        Some(body) => server.client.post(server.url(path)).json(&body),
        None => server.client.get(server.url(path)),
    };
    let request = request
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof);
    crate::support::answer(request.send().await.expect("request")).await
}

#[tokio::test]
async fn jwt_profile_fapi2_runs_the_api_under_the_profile() {
    use tower_jwt_auth::testing::TestKey;
    let issuer = MockIssuer::builder().key(TestKey::rsa_pss()).start().await;
    // The API as main() makes it under JWT_PROFILE=fapi2, with a keys file it ignores.
    let keys = std::env::temp_dir().join(format!("fapi-keys-{}.toml", std::process::id()));
    let api_key = "sk_test_abcdefghijklmnopqrstuvwxyz";
    let digest = tower_jwt_auth::api_key::digest(api_key);
    let entry = format!("prefix = \"sk_test_\"\n[[api_keys]]\nid = \"k\"\ndigest = \"{digest}\"\n");
    std::fs::write(&keys, entry).expect("keys file");
    let mode = crate::axum_server::Mode {
        profile: Some("fapi2"),
        nonces: None,
        dpop: Some("off"),
        public_url: PUBLIC_URL,
    };
    let builder = crate::support::issuer_config(&issuer);
    let builder = crate::axum_server::shared_stores(Some("memory")).expect("stores")(builder);
    let builder = crate::axum_server::strict_policy(builder, None);
    let cfg = crate::axum_server::mounted(builder, &mode, Some(&keys))
        .expect("JWT_PROFILE")
        .build()
        .expect("the profile builds");
    let _ = std::fs::remove_file(&keys);
    let server = Server::start_router(crate::axum_server::app(JwtAuthLayer::new(cfg))).await;
    let client = TestKey::ec_p256();
    let token = |sub: &str, permissions: &[&str]| {
        issuer
            .token()
            .typ("at+jwt")
            .subject(sub)
            .claim("client_id", "demo-client")
            .permissions(permissions.iter().copied())
            .expires_in_secs(600)
            .dpop_bound(&client)
            .sign()
    };
    let reader = token("reader", &["read"]);
    dpop_call(&server, &client, "GET", "/documents", &reader, None)
        .await
        .assert_ok();
    // DPoP is required: the same token as a bearer token, an unbound one, are refused.
    server
        .bearer_at("/documents", &reader)
        .await
        .assert_invalid_token("token binding not satisfied");
    let unbound = issuer
        .token()
        .typ("at+jwt")
        .claim("client_id", "demo-client")
        .permissions(["read"])
        .sign();
    server
        .bearer_at("/documents", &unbound)
        .await
        .assert_invalid_token("token binding not satisfied");
    // What the profile forbids is not mounted: no API keys, no query tokens on /events,
    // no public route.
    let key = server.get("/whoami", &[("x-api-key", api_key)]).await;
    assert_eq!(key.status, StatusCode::UNAUTHORIZED, "{key:?}");
    let public = server.get("/public/info", &[]).await;
    assert_eq!(public.status, StatusCode::UNAUTHORIZED, "{public:?}");
    let query = server
        .get(&format!("/events?access_token={reader}"), &[])
        .await;
    assert_eq!(
        (query.status, query.error_code()),
        (StatusCode::UNAUTHORIZED, None),
        "{query:?}"
    );
    // The revocation list works.
    let admin = token("root", &["admin"]);
    let done = dpop_call(
        &server,
        &client,
        "POST",
        "/admin/revoke",
        &admin,
        Some(serde_json::json!({"sub": "reader"})),
    )
    .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{done:?}");
    dpop_call(&server, &client, "GET", "/documents", &reader, None)
        .await
        .assert_invalid_token("token revoked");
    // The profile's one-hour maximum lifetime.
    let long = issuer
        .token()
        .typ("at+jwt")
        .claim("client_id", "demo-client")
        .permissions(["read"])
        .expires_in_secs(2 * 3600)
        .dpop_bound(&client)
        .sign();
    dpop_call(&server, &client, "GET", "/documents", &long, None)
        .await
        .assert_invalid_token("token lifetime exceeds the maximum");
    // Nonces with DPOP_NONCE=on; nothing but fapi2 and on/off is taken.
    let builder = crate::support::issuer_config(&issuer);
    let builder = crate::axum_server::shared_stores(None).expect("stores")(builder);
    let nonced = crate::axum_server::fapi_profile(builder, "fapi2", Some("on"), PUBLIC_URL)
        .expect("nonces")
        .build()
        .expect("builds");
    let nonced = Server::start_router(crate::axum_server::app(JwtAuthLayer::new(nonced))).await;
    let first = dpop_call(
        &nonced,
        &client,
        "GET",
        "/documents",
        &token("reader-2", &["read"]),
        None,
    )
    .await;
    assert_eq!(
        first.error_code().as_deref(),
        Some("use_dpop_nonce"),
        "{first:?}"
    );
    assert!(first.nonce.is_some(), "{first:?}");
    let builder = || crate::support::issuer_config(&issuer);
    assert!(crate::axum_server::fapi_profile(builder(), "fapi3", None, PUBLIC_URL).is_err());
    assert!(crate::axum_server::fapi_profile(builder(), "fapi2", Some("yes"), PUBLIC_URL).is_err());
}

#[test]
fn replay_store_must_be_memory_or_a_redis_url() {
    assert!(crate::axum_server::shared_stores(Some("postgres://db")).is_err());
}

#[tokio::test]
async fn ready_follows_the_key_stores_and_metrics_count_outcomes() {
    let issuer = MockIssuer::start().await;
    issuer.set_fault(Endpoint::Discovery, Fault::Down);
    let server = example_server(&issuer).await;
    // Liveness stays 200; readiness is 503 while the issuer is down at startup.
    server.get("/health", &[]).await.assert_ok();
    let ready = server.get("/ready", &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{ready:?}");
    issuer.clear_faults();
    crate::support::eventually("ready once the issuer is back", async || {
        server.get("/ready", &[]).await.status == StatusCode::OK
    })
    .await;
    let token = issuer.token().permissions(["read"]).sign();
    server.bearer_at("/documents", &token).await.assert_ok();
    server.get("/documents", &[]).await.assert_no_token();
    let metrics = server.get("/metrics", &[]).await;
    metrics.assert_ok();
    for line in [
        "jwt_auth_requests_total{outcome=\"ok\"}",
        "jwt_auth_requests_total{outcome=\"missing\"}",
        "jwt_auth_jwks_fetches_total{issuer=",
        "jwt_auth_verify_seconds",
    ] {
        assert!(metrics.body.contains(line), "{line} in {}", metrics.body);
    }
    assert!(!metrics.body.contains(&token[..20]), "no token in metrics");
}

#[tokio::test]
async fn axum_server_contract() {
    let issuer = MockIssuer::start().await;
    let server = example_server(&issuer).await;
    let c = &server.client;

    // GET /health is public.
    let health = c.get(server.url("/health")).send().await.expect("health");
    assert_eq!(health.status(), 200);

    // GET /me: any valid token, the claims as JSON.
    server.get("/me", &[]).await.assert_no_token();
    let plain = issuer.token().subject("carol").sign();
    let me = server
        .get("/me", &[("authorization", &format!("Bearer {plain}"))])
        .await;
    me.assert_ok();
    let claims: Value = serde_json::from_str(&me.body).expect("json");
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["iss"], Value::from(issuer.issuer()));

    // GET /documents needs read (from `permissions` or `scope`).
    let documents = |token: &str| {
        let request = c.get(server.url("/documents")).bearer_auth(token);
        async move { crate::support::answer(request.send().await.expect("list")).await }
    };
    let forbidden = documents(&plain).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.error_code().as_deref(),
        Some("insufficient_scope")
    );
    documents(&issuer.token().permissions(["read"]).sign())
        .await
        .assert_ok();
    documents(&issuer.token().scope("read").sign())
        .await
        .assert_ok();

    // POST /documents needs write and answers 201 with the caller as owner.
    let create = |token: String| {
        let request = c
            .post(server.url("/documents"))
            .bearer_auth(token)
            .json(&serde_json::json!({"title": "minutes"}));
        async move { crate::support::answer(request.send().await.expect("create")).await }
    };
    let denied = create(issuer.token().scope("read").sign()).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let created = create(issuer.token().subject("dave").scope("read write").sign()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let document: Value = serde_json::from_str(&created.body).expect("json");
    assert_eq!(document["owner"], "dave");
    assert_eq!(document["title"], "minutes");
    let listed = documents(&issuer.token().permissions(["read"]).sign()).await;
    assert!(listed.body.contains("minutes"));
}

// ---- the Postman collection ---------------------------------------------------------

fn collection() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/postman/tower-jwt-auth.postman_collection.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("collection")).expect("JSON")
}

/// The requests of a collection, folders flattened, in order.
fn requests(items: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for item in items.as_array().expect("items") {
        if item.get("item").is_some() {
            out.extend(requests(&item["item"]));
        } else {
            out.push(item);
        }
    }
    out
}

fn substitute(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (key, value) in vars {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

#[test]
fn postman_collection_is_well_formed() {
    let c = collection();
    assert_eq!(
        c["info"]["schema"],
        "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    );
    let variables: Vec<&str> = c["variable"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| v["key"].as_str().expect("key"))
        .collect();
    let items = requests(&c["item"]);
    assert!(items.len() >= 7);
    // Every request runs with a fresh token from the token endpoint.
    let prerequest = c["event"][0]["script"]["exec"].to_string();
    assert_eq!(c["event"][0]["listen"], "prerequest");
    assert!(prerequest.contains("/oauth/token") && prerequest.contains("client_credentials"));
    for item in items {
        let request = &item["request"];
        let raw = request["url"]["raw"].as_str().expect("url");
        // Every URL starts with a collection variable, never a hard-coded host.
        let var = raw
            .strip_prefix("{{")
            .and_then(|r| r.split_once("}}"))
            .map(|(v, _)| v)
            .expect("URL starts with a variable");
        assert!(variables.contains(&var), "{raw}");
        // Every {{variable}} used anywhere in the item is defined.
        let text = item.to_string();
        for used in text
            .split("{{")
            .skip(1)
            .filter_map(|s| s.split_once("}}").map(|(v, _)| v))
        {
            assert!(variables.contains(&used), "undefined variable {used}");
        }
        // Every request asserts its status.
        let script = item["event"][0]["script"]["exec"].to_string();
        assert!(script.contains("have.status("), "{}", item["name"]);
    }
}

#[tokio::test]
async fn postman_collection_runs_against_the_example_api() {
    let issuer = MockIssuer::start().await;
    issuer.add_client("demo-client", "demo-secret", ["read", "write"]);
    let server = example_server(&issuer).await;
    let c = collection();
    let mut vars: HashMap<String, String> = c["variable"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| {
            (
                v["key"].as_str().expect("key").to_owned(),
                v["value"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    vars.insert("api_url".into(), format!("http://{}", server.addr));
    vars.insert("issuer_url".into(), issuer.base_url().to_owned());

    let http = client();
    for item in requests(&c["item"]) {
        // The collection's pre-request script: a fresh client-credentials token, from
        // the token URL the script builds.
        let fresh = client_credentials(
            &format!("{}/oauth/token", vars["issuer_url"]),
            &vars["client_id"],
            &vars["client_secret"],
        )
        .await;
        vars.insert("access_token".into(), fresh);
        let request = &item["request"];
        let method: reqwest::Method = request["method"]
            .as_str()
            .expect("method")
            .parse()
            .expect("method");
        let url = substitute(request["url"]["raw"].as_str().expect("url"), &vars);
        let mut builder = http.request(method, url);
        for header in request["header"].as_array().into_iter().flatten() {
            builder = builder.header(
                header["key"].as_str().expect("key"),
                substitute(header["value"].as_str().expect("value"), &vars),
            );
        }
        if request["auth"]["type"] == "bearer" {
            let token = substitute(
                request["auth"]["bearer"][0]["value"]
                    .as_str()
                    .expect("token"),
                &vars,
            );
            builder = builder.bearer_auth(token);
        }
        match request["body"]["mode"].as_str() {
            Some("urlencoded") => {
                let form: Vec<(String, String)> = request["body"]["urlencoded"]
                    .as_array()
                    .expect("form")
                    .iter()
                    .map(|f| {
                        (
                            f["key"].as_str().expect("key").to_owned(),
                            substitute(f["value"].as_str().expect("value"), &vars),
                        )
                    })
                    .collect();
                builder = builder.form(&form);
            }
            Some("raw") => {
                builder = builder.body(substitute(
                    request["body"]["raw"].as_str().expect("raw"),
                    &vars,
                ));
            }
            _ => {}
        }
        let response = builder.send().await.expect("request");
        let status = response.status().as_u16();
        let body = response.text().await.expect("body");
        let script = item["event"][0]["script"]["exec"].to_string();
        let expected: u16 = script
            .split("have.status(")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .and_then(|s| s.parse().ok())
            .expect("expected status in the test script");
        assert_eq!(status, expected, "{}: {body}", item["name"]);
        if script.contains("collectionVariables.set(\\\"single_use_token\\\"") {
            let used = vars["access_token"].clone();
            vars.insert("single_use_token".into(), used);
        }
    }
}

/// Writes `contents` to `path` the way editors save: a new file renamed over the old.
fn save(path: &std::path::Path, contents: &str) {
    let temporary = path.with_extension("toml.swp");
    std::fs::write(&temporary, contents).expect("write");
    std::fs::rename(&temporary, path).expect("rename");
}

/// The next count of the example's reloads, waiting up to 10 s for it to move.
async fn next_reloads(
    reloads: &mut tokio::sync::watch::Receiver<crate::axum_server::Reloads>,
) -> crate::axum_server::Reloads {
    tokio::time::timeout(std::time::Duration::from_secs(10), reloads.changed())
        .await
        .expect("a reload within 10 s")
        .expect("the watcher runs");
    *reloads.borrow_and_update()
}

// SIGHUP reaches every watcher of the process: the tests that hold one take turns.
#[tokio::test]
async fn jwt_config_files_are_checked_served_and_reloaded_once_per_change() {
    use crate::axum_server::Reloads;
    use crate::support::hang_up;
    let _turn = crate::support::watcher_lock().await;

    let issuer = MockIssuer::start().await;
    let dir = std::env::temp_dir().join(format!("tower-jwt-auth-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("api.toml");
    let file = |audiences: &str| {
        format!(
            "[[issuers]]\nissuer = \"{}\"\naudiences = [{audiences}]\n",
            issuer.issuer()
        )
    };
    save(&path, &file("\"api\""));
    assert_eq!(
        crate::axum_server::check_config(&path, false).await,
        std::process::ExitCode::SUCCESS
    );

    let watcher = tower_jwt_auth::settings::FileWatcher::new([&path])
        .expect("watch")
        .debounce(std::time::Duration::from_millis(20));
    let config = crate::axum_server::file_builder(&path)
        .expect("file")
        .build()
        .expect("config");
    let (layer, reload) = JwtAuthLayer::new(config).reloadable();
    let mut reloads = crate::axum_server::watch_config(watcher, path.clone(), reload.clone());
    let current: crate::axum_server::CurrentConfig = std::sync::Arc::new(move || reload.config());
    let server = Server::start_router(crate::axum_server::app_with(layer, current)).await;

    let v2 = issuer.token().audience("api-v2").sign();
    server
        .bearer_at("/me", &v2)
        .await
        .assert_invalid_token("audience not accepted");
    let good = file("\"api\", \"api-v2\"");
    save(&path, &good);
    let ok = Reloads {
        tried: 1,
        refused: 0,
    };
    assert_eq!(next_reloads(&mut reloads).await, ok);
    server.bearer_at("/me", &v2).await.assert_ok();

    // A broken file is tried once and refused; the last good configuration keeps serving.
    save(&path, "[[issuers]]\nissuer = \"\"\n");
    let broken = Reloads {
        tried: 2,
        refused: 1,
    };
    assert_eq!(next_reloads(&mut reloads).await, broken);
    server.bearer_at("/me", &v2).await.assert_ok();
    assert_eq!(
        crate::axum_server::check_config(&path, false).await,
        std::process::ExitCode::FAILURE
    );

    // SIGHUP reloads whatever the file holds, here still the broken one.
    hang_up();
    let hung_up = Reloads {
        tried: 3,
        refused: 2,
    };
    assert_eq!(next_reloads(&mut reloads).await, hung_up);

    // The good content again is a change from the broken one: one more reload, which takes.
    save(&path, &good);
    let restored = Reloads {
        tried: 4,
        refused: 2,
    };
    assert_eq!(next_reloads(&mut reloads).await, restored);
    server.bearer_at("/me", &v2).await.assert_ok();

    // Nothing changes any more: the reloads' own reads of the file must not start another.
    let idle = tokio::time::timeout(std::time::Duration::from_secs(1), reloads.changed()).await;
    assert!(
        idle.is_err(),
        "reloaded while idle: {:?}",
        *reloads.borrow()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn check_config_builds_a_redis_store_without_connecting() {
    let dir = std::env::temp_dir().join(format!("tower-jwt-auth-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("api.toml");
    save(
        &path,
        "[[issuers]]\nissuer = \"https://idp.example.com/\"\naudience = \"api\"\n[state]\nstore = \"redis://:hunter2@127.0.0.1:1\"\n",
    );
    assert_eq!(
        crate::axum_server::check_config(&path, false).await,
        std::process::ExitCode::SUCCESS
    );
    let _ = std::fs::remove_dir_all(&dir);
}
