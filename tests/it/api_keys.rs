//! API keys beside OAuth, over real HTTP: permissions and guards, keys never sent to the
//! JWT path nor to the inner service, expiry, revocation, the checks at build, the keys
//! file reloaded, and the example's `/whoami`. Logs, metrics and the audit hook without
//! the key are checked in `logs.rs`, with the other tests that install a subscriber.

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::get;
use tower_jwt_auth::api_key::{ApiKey, CredentialKind, NewApiKey};
use tower_jwt_auth::testing::{Endpoint, MockIssuer};
use tower_jwt_auth::{
    Authentication, Claims, JwtAuthConfig, JwtAuthConfigBuilder, JwtAuthLayer, RequirePermission,
    StandardClaims, StepUp,
};

use crate::support::{Server, issuer_config};

const PREFIX: &str = "sk_test_";

/// `/read` needs `read`, `/write` needs `write`, `/who` answers the kind and `sub`,
/// `/step-up` wants a recent MFA login, `/once` is single use.
fn routes(layer: JwtAuthLayer) -> Router {
    async fn who(auth: Authentication, Claims(claims): Claims<StandardClaims>) -> String {
        let kind = auth.kind().map_or("none", CredentialKind::as_str);
        format!(
            "{kind} {} {}",
            claims.sub.unwrap_or_default(),
            claims.scope.unwrap_or_default()
        )
    }
    async fn ok() -> &'static str {
        "ok"
    }
    #[derive(Clone, serde::Deserialize)]
    struct Tenant {
        tenant: String,
    }
    async fn tenant(Claims(_): Claims<Tenant>) -> &'static str {
        "tenant"
    }
    async fn raw(Claims(claims): Claims<serde_json::Value>) -> String {
        claims["sub"].as_str().unwrap_or_default().to_owned()
    }
    let custom = Router::new()
        .route("/tenant", get(tenant))
        .layer(JwtAuthLayer::with_claims::<Tenant>(
            layer.verifier().config().clone(),
        ));
    let validated = Router::new().route("/validated", get(ok)).layer(
        JwtAuthLayer::with_claims::<Tenant>(layer.verifier().config().clone())
            .validate(|claims| !claims.tenant.is_empty()),
    );
    let raw =
        Router::new().route("/raw", get(raw)).layer(
            JwtAuthLayer::with_claims::<serde_json::Value>(layer.verifier().config().clone()),
        );
    Router::new()
        .route("/read", get(ok).route_layer(RequirePermission("read")))
        .route("/write", get(ok).route_layer(RequirePermission("write")))
        .route("/who", get(who))
        .route("/step-up", get(ok).route_layer(StepUp::new().acr(["mfa"])))
        .route(
            "/once",
            get(ok).route_layer(RequirePermission("read").single_use()),
        )
        .layer(layer)
        .merge(custom)
        .merge(validated)
        .merge(raw)
}

fn with_key(
    builder: JwtAuthConfigBuilder,
    key: &NewApiKey,
    permissions: &[&str],
) -> JwtAuthConfigBuilder {
    builder
        .api_key_prefix(PREFIX)
        .api_key_header("X-API-Key")
        .api_key(ApiKey::new("partner-1", key.digest()).permissions(permissions.iter().copied()))
}

#[tokio::test]
async fn a_key_meets_guards_like_a_token_and_a_jwt_still_works_beside_it() {
    let issuer = MockIssuer::start().await;
    let key = NewApiKey::generate(PREFIX);
    let cfg = with_key(issuer_config(&issuer), &key, &["read"])
        .build()
        .expect("config");
    let server = Server::start_router(routes(JwtAuthLayer::new(cfg))).await;

    server.bearer_at("/read", key.key()).await.assert_ok();
    server
        .get("/read", &[("x-api-key", key.key())])
        .await
        .assert_ok();
    let write = server.bearer_at("/write", key.key()).await;
    assert_eq!(write.status, 403, "{write:?}");
    let challenge = write.challenge.as_deref().unwrap_or_default();
    assert_eq!(
        crate::support::param(challenge, "scope").as_deref(),
        Some("write")
    );

    // Layers of two claims types over one configuration, in turns: each has its record.
    for _ in 0..2 {
        let who = server.bearer_at("/who", key.key()).await;
        assert_eq!(who.body, "api_key partner-1 read");
        assert_eq!(server.bearer_at("/raw", key.key()).await.body, "partner-1");
    }
    let jwt = issuer
        .token()
        .subject("alice")
        .permissions(["write"])
        .sign();
    server.bearer_at("/write", &jwt).await.assert_ok();
    // The mock issuer puts permissions in a `permissions` array: no `scope`.
    assert_eq!(server.bearer_at("/who", &jwt).await.body, "jwt alice ");

    // A key in both places at once is ambiguous.
    let both = server
        .get(
            "/read",
            &[
                ("x-api-key", key.key()),
                ("authorization", &format!("Bearer {}", key.key())),
            ],
        )
        .await;
    both.assert_invalid_request();

    // No authentication event: step-up refuses a key; a key cannot be spent either.
    let step_up = server.bearer_at("/step-up", key.key()).await;
    assert_eq!(step_up.status, 401, "{step_up:?}");
    assert_eq!(
        step_up.error_code().as_deref(),
        Some("insufficient_user_authentication")
    );
    server
        .bearer_at("/once", key.key())
        .await
        .assert_invalid_token("required claim missing");

    // A claims type a key cannot fill is the route's mistake: 500 naming it.
    let custom = server.bearer_at("/tenant", key.key()).await;
    assert_eq!(custom.status, 500, "{custom:?}");
    assert!(custom.body.contains("GET /tenant"), "{}", custom.body);
    assert!(!custom.body.contains(key.key()));
    // A layer validator over such a type never sees the key: 401, invalid claim.
    server
        .bearer_at("/validated", key.key())
        .await
        .assert_invalid_token("invalid claim");
}

#[tokio::test]
async fn unknown_keys_never_reach_introspection_and_expired_keys_are_refused() {
    use tower_jwt_auth::introspection::{ClientAuth, Introspection};
    let issuer = MockIssuer::start().await;
    issuer.add_client("api", "s3cret", Vec::<String>::new());
    let key = NewApiKey::generate(PREFIX);
    let old = NewApiKey::generate(PREFIX);
    let cfg = with_key(issuer_config(&issuer), &key, &["read"])
        .introspection(Introspection::new(
            "api",
            ClientAuth::client_secret_basic("s3cret"),
        ))
        .api_key(
            ApiKey::new("retired", old.digest())
                .permissions(["read"])
                .expires_at(SystemTime::now() - Duration::from_secs(60)),
        )
        .build()
        .expect("config");
    let server = Server::start_router(routes(JwtAuthLayer::new(cfg))).await;
    // Keys loaded: a token verifies.
    let jwt = issuer.token().permissions(["read"]).sign();
    server.bearer_at("/read", &jwt).await.assert_ok();
    let introspected = || issuer.requests(Endpoint::Introspection);

    let unknown = NewApiKey::generate(PREFIX);
    server
        .bearer_at("/read", unknown.key())
        .await
        .assert_invalid_token("unknown API key");
    // A prefixed credential shaped like a token with an unknown `kid` is still a key.
    let kid_unknown = issuer.token().kid("never-published").sign();
    server
        .bearer_at("/read", &format!("{PREFIX}{kid_unknown}"))
        .await
        .assert_invalid_token("unknown API key");
    // Whatever comes in the key header is a key, a valid JWT included.
    server
        .get("/read", &[("x-api-key", &jwt)])
        .await
        .assert_invalid_token("unknown API key");
    server
        .get("/read", &[("x-api-key", "opaque-but-in-the-key-header")])
        .await
        .assert_invalid_token("unknown API key");
    // Not one of them was sent to the identity provider...
    assert_eq!(introspected(), 0);
    // ...where an opaque token without the prefix goes.
    let _ = server.bearer_at("/read", "an-opaque-token").await;
    assert_eq!(introspected(), 1);

    server
        .bearer_at("/read", old.key())
        .await
        .assert_invalid_token("token expired");
}

#[test]
fn keys_need_a_way_to_be_told_apart_and_cannot_be_single_use() {
    let key = NewApiKey::generate(PREFIX);
    let only = || JwtAuthConfig::builder().api_key(ApiKey::new("a", key.digest()));
    let error = only().build().expect_err("no prefix, no header");
    assert_eq!(error.path(), Some("api_keys_settings.prefix"));
    // A header alone would leave a key sent as a bearer token to the JWT path.
    let error = only()
        .api_key_header("X-API-Key")
        .build()
        .expect_err("a header without a prefix");
    assert_eq!(error.path(), Some("api_keys_settings.prefix"));
    for prefix in [
        "e",
        "ey",
        "eyJ",
        "eyJhbGci_",
        "ey_",
        "eyA",
        "ewo",
        "sk",
        "sk live_",
        "sk=",
        "sk_é_",
        "",
    ] {
        let error = only().api_key_prefix(prefix).build().expect_err(prefix);
        assert_eq!(error.path(), Some("api_keys_settings.prefix"), "{prefix:?}");
    }
    for prefix in ["ex_", "sk_", "key-", "a.b~c+d/"] {
        only().api_key_prefix(prefix).build().expect(prefix);
    }
    for header in ["Authorization", "cookie", "DPoP", "X-Token"] {
        let error = only()
            .api_key_prefix(PREFIX)
            .token_source(tower_jwt_auth::TokenSource::header("x-token"))
            .api_key_header(header)
            .build()
            .expect_err(header);
        assert_eq!(error.path(), Some("api_keys_settings.header"), "{header}");
    }
    let error = only()
        .api_key_prefix(PREFIX)
        .single_use_tokens(true)
        .build()
        .expect_err("single use with keys alone");
    assert_eq!(error.path(), Some("state.single_use"));
    let error = JwtAuthConfig::builder()
        .api_key_prefix(PREFIX)
        .api_key(ApiKey::new("a", "sha256:abc"))
        .build()
        .expect_err("bad digest");
    assert_eq!(error.path(), Some("api_keys[0].digest"));
    // Keys alone are a configuration.
    only().api_key_prefix(PREFIX).build().expect("key-only");
}

#[tokio::test]
async fn layer_wide_single_use_beside_tokens_spends_tokens_and_refuses_keys() {
    let issuer = MockIssuer::start().await;
    let key = NewApiKey::generate(PREFIX);
    let cfg = with_key(issuer_config(&issuer), &key, &["read"])
        .single_use_tokens(true)
        .build()
        .expect("single use beside an issuer");
    let server = Server::start_router(routes(JwtAuthLayer::new(cfg))).await;
    let jwt = issuer.token().permissions(["read"]).sign();
    server.bearer_at("/read", &jwt).await.assert_ok();
    server
        .bearer_at("/read", &jwt)
        .await
        .assert_invalid_token("token already used");
    server
        .bearer_at("/read", key.key())
        .await
        .assert_invalid_token("required claim missing");
}

#[test]
fn keys_cannot_be_configured_where_every_credential_must_be_bound() {
    use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
    use tower_jwt_auth::mtls::MtlsMode;
    let key = NewApiKey::generate(PREFIX);
    let keys = || {
        JwtAuthConfig::builder()
            .api_key_prefix(PREFIX)
            .api_key(ApiKey::new("a", key.digest()))
    };
    let dpop = |mode| DpopOptions::new(mode).public_base_url("https://api.example.com");
    let error = keys()
        .dpop(dpop(DpopMode::Required))
        .build()
        .expect_err("DPoP required");
    assert_eq!(error.path(), Some("dpop.mode"));
    let error = keys()
        .mtls(MtlsMode::Required)
        .build()
        .expect_err("mTLS required");
    assert_eq!(error.path(), Some("mtls"));
    keys()
        .dpop(dpop(DpopMode::Allowed))
        .build()
        .expect("allowed");
    keys().mtls(MtlsMode::Allowed).build().expect("allowed");
}

#[tokio::test]
async fn the_prefix_is_read_after_the_scheme_in_any_token_source_and_case_sensitively() {
    use tower_jwt_auth::TokenSource;
    let issuer = MockIssuer::start().await;
    let key = NewApiKey::generate(PREFIX);
    let cfg = with_key(issuer_config(&issuer), &key, &["read"])
        .token_source(TokenSource::bearer().or(TokenSource::cookie("session")))
        .build()
        .expect("config");
    let server = Server::start_router(routes(JwtAuthLayer::new(cfg))).await;
    // A key in the token cookie is a key.
    let cookie = format!("session={}", key.key());
    server
        .get("/read", &[("cookie", &cookie)])
        .await
        .assert_ok();
    let unknown = format!("session={PREFIX}nope");
    server
        .get("/read", &[("cookie", &unknown)])
        .await
        .assert_invalid_token("unknown API key");
    // The prefix is case-sensitive: another case is no key, and goes to the JWT path.
    let shouted = format!("{}{}", PREFIX.to_uppercase(), "nope");
    let answer = server.bearer_at("/read", &shouted).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    let challenge = answer.challenge.as_deref().unwrap_or_default();
    assert!(!challenge.contains("unknown API key"), "{answer:?}");
    // Without DPoP configured, the DPoP scheme is not read: no credential.
    server
        .get(
            "/read",
            &[("authorization", &format!("DPoP {}", key.key()))],
        )
        .await
        .assert_no_token();
    // With DPoP allowed, a key under the DPoP scheme is an unbound credential there.
    use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
    let cfg = with_key(issuer_config(&issuer), &key, &["read"])
        .dpop(DpopOptions::new(DpopMode::Allowed).public_base_url("https://api.example.com"))
        .build()
        .expect("config");
    let server = Server::start_router(routes(JwtAuthLayer::new(cfg))).await;
    server.bearer_at("/read", key.key()).await.assert_ok();
    let dpop = server
        .get(
            "/read",
            &[("authorization", &format!("DPoP {}", key.key()))],
        )
        .await;
    assert_eq!(dpop.status, 401, "{dpop:?}");
}

#[test]
fn permissions_ids_and_expiry_dates_that_cannot_be_written_are_refused_at_build() {
    let key = NewApiKey::generate(PREFIX);
    let build = |api_key: ApiKey| {
        JwtAuthConfig::builder()
            .api_key_prefix(PREFIX)
            .api_key(api_key)
            .build()
    };
    for permission in ["read write", "read\"", "a\\b", "é"] {
        let error =
            build(ApiKey::new("a", key.digest()).permissions([permission])).expect_err(permission);
        assert_eq!(
            error.path(),
            Some("api_keys[0].permissions"),
            "{permission}"
        );
    }
    build(ApiKey::new("a", key.digest()).permissions(["documents:read", "a!#[]~"]))
        .expect("scope tokens");
    for id in ["two words", "tab\t", "é", "new\nline"] {
        let error = build(ApiKey::new(id, key.digest())).expect_err(id);
        assert_eq!(error.path(), Some("api_keys[0].id"), "{id:?}");
    }
    // An instant RFC 3339 cannot write: a build error naming the key, no panic, and
    // never a key that does not expire.
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000 * 365 * 24 * 3600);
    let error =
        build(ApiKey::new("far-future", key.digest()).expires_at(far)).expect_err("out of range");
    assert_eq!(error.path(), Some("api_keys[0].expires_at"));
    assert!(error.to_string().contains("far-future"), "{error}");
    let late = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    build(ApiKey::new("late", key.digest()).expires_at(late)).expect("9999-12-31T23:59:59Z");
}

/// A keys file with one key per `(id, digest, permissions)`.
fn keys_file(keys: &[(&str, &str, &str)]) -> String {
    let mut text = format!("prefix = \"{PREFIX}\"\n");
    for (id, digest, permissions) in keys {
        text.push_str(&format!(
            "\n[[api_keys]]\nid = \"{id}\"\ndigest = \"{digest}\"\npermissions = [{permissions}]\n"
        ));
    }
    text
}

#[tokio::test]
async fn keys_added_to_the_keys_file_work_and_keys_removed_are_refused_after_a_reload() {
    let dir = std::env::temp_dir().join(format!("api-keys-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("keys.toml");
    let first = NewApiKey::generate(PREFIX);
    let second = NewApiKey::generate(PREFIX);
    std::fs::write(&path, keys_file(&[("first", first.digest(), "\"read\"")])).expect("write");
    let builder = || JwtAuthConfig::builder().api_keys_file(&path);
    let (layer, reload) = JwtAuthLayer::new(builder().build().expect("config")).reloadable();
    let server = Server::start_router(routes(layer)).await;
    server.bearer_at("/read", first.key()).await.assert_ok();
    server
        .bearer_at("/read", second.key())
        .await
        .assert_invalid_token("unknown API key");

    std::fs::write(
        &path,
        keys_file(&[
            ("first", first.digest(), "\"read\""),
            ("second", second.digest(), "\"read\", \"write\""),
        ]),
    )
    .expect("rewrite");
    reload.reload(builder()).await.expect("reload");
    server.bearer_at("/write", second.key()).await.assert_ok();
    server.bearer_at("/read", first.key()).await.assert_ok();

    // A broken file is refused with its option, and the keys in force stay.
    std::fs::write(
        &path,
        "prefix = \"sk_test_\"\n[[api_keys]]\nid = \"x\"\ndigest = \"md5:1\"\n",
    )
    .expect("break");
    let error = reload.reload(builder()).await.expect_err("bad digest");
    assert_eq!(error.path(), Some("api_keys_settings.file"));
    assert!(error.to_string().contains("api_keys[0].digest"), "{error}");
    server.bearer_at("/write", second.key()).await.assert_ok();

    // A key removed from the file is refused after the next reload.
    std::fs::write(
        &path,
        keys_file(&[("second", second.digest(), "\"read\", \"write\"")]),
    )
    .expect("remove first");
    reload.reload(builder()).await.expect("reload");
    server
        .bearer_at("/read", first.key())
        .await
        .assert_invalid_token("unknown API key");
    server.bearer_at("/write", second.key()).await.assert_ok();

    // A key pasted into the file by mistake: the error gives the line, never the text.
    let pasted = NewApiKey::generate(PREFIX);
    for (name, text) in [
        (
            "keys.toml",
            format!("{}\n{}\n", keys_file(&[]), pasted.key()),
        ),
        (
            "keys.yaml",
            format!("prefix: {PREFIX}\n{}: [\n", pasted.key()),
        ),
        (
            "keys.json",
            format!("{{\"prefix\": \"{PREFIX}\", {}}}", pasted.key()),
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("paste");
        let error = JwtAuthConfig::builder()
            .api_keys_file(&path)
            .build()
            .expect_err("not a keys file");
        assert_eq!(error.path(), Some("api_keys_settings.file"));
        let message = error.to_string();
        assert!(message.contains("line"), "{message}");
        let random = pasted.key().trim_start_matches(PREFIX);
        assert!(!message.contains(random), "the key in an error: {message}");
    }
    // A JSON key given twice is refused rather than the last one silently winning.
    let path = dir.join("twice.json");
    let digest = pasted.digest();
    let text = format!(
        "{{\"prefix\": \"{PREFIX}\", \"api_keys\": [{{\"id\": \"a\", \"id\": \"b\", \"digest\": \"{digest}\"}}]}}"
    );
    std::fs::write(&path, text).expect("keys file");
    let error = JwtAuthConfig::builder()
        .api_keys_file(&path)
        .build()
        .expect_err("a key given twice");
    assert!(
        error.to_string().contains("duplicate field `id`"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_revoked_key_id_is_refused_and_revocations_never_cross_between_keys_and_subjects() {
    use tower_jwt_auth::state::MemoryRevocationList;
    let issuer = MockIssuer::start().await;
    // A server taking `key` beside the issuer's tokens, with a revocation list of its own.
    let serve = async |key: &NewApiKey| {
        let cfg = with_key(issuer_config(&issuer), key, &["read"])
            .revocation_list(MemoryRevocationList::new(1000))
            .build()
            .expect("config");
        let revocations = cfg.revocations().expect("a revocation list");
        (
            Server::start_router(routes(JwtAuthLayer::new(cfg))).await,
            revocations,
        )
    };
    let key = NewApiKey::generate(PREFIX);
    let (server, revocations) = serve(&key).await;
    let jwt = issuer
        .token()
        .subject("partner-1")
        .permissions(["read"])
        .sign();
    server.bearer_at("/read", key.key()).await.assert_ok();
    server.bearer_at("/read", &jwt).await.assert_ok();

    // Revoking the key id leaves an issuer's subject of the same name alone.
    revocations
        .revoke_api_key("partner-1")
        .await
        .expect("revoked");
    server
        .bearer_at("/read", key.key())
        .await
        .assert_invalid_token("token revoked");
    server.bearer_at("/read", &jwt).await.assert_ok();

    // And no issuer's subject revocation, whatever the issuer's name, reaches a key.
    let other = NewApiKey::generate(PREFIX);
    let (server, revocations) = serve(&other).await;
    for name in [issuer.issuer(), "tower-jwt-auth:api-keys", ""] {
        revocations
            .revoke_subject(name, "partner-1")
            .await
            .expect("revoked");
    }
    server.bearer_at("/read", other.key()).await.assert_ok();
    server
        .bearer_at("/read", &jwt)
        .await
        .assert_invalid_token("token revoked");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test-services"]
async fn a_revoked_key_id_is_refused_on_every_replica_sharing_redis() {
    use tower_jwt_auth::state::{RedisConnection, RedisRevocationList};
    let redis = crate::support::redis::RedisServer::start().await;
    let key = NewApiKey::generate(PREFIX);
    let mut servers = Vec::new();
    let mut configs = Vec::new();
    for _ in 0..2 {
        let connection = RedisConnection::open(&redis.url())
            .expect("redis url")
            .prefix("keys:");
        let cfg = JwtAuthConfig::builder()
            .api_key_prefix(PREFIX)
            .api_key(ApiKey::new("partner-1", key.digest()).permissions(["read"]))
            .revocation_list(RedisRevocationList::new(connection))
            .build()
            .expect("config");
        configs.push(cfg.clone());
        servers.push(Server::start_router(routes(JwtAuthLayer::new(cfg))).await);
    }
    for server in &servers {
        server.bearer_at("/read", key.key()).await.assert_ok();
    }
    let revocations = configs[0].revocations().expect("a revocation list");
    revocations
        .revoke_api_key("partner-1")
        .await
        .expect("revoked");
    for server in &servers {
        server
            .bearer_at("/read", key.key())
            .await
            .assert_invalid_token("token revoked");
    }
}

#[tokio::test]
async fn the_example_whoami_names_both_kinds() {
    let issuer = MockIssuer::start().await;
    let dir = std::env::temp_dir().join(format!("api-keys-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("keys.toml");
    let key = NewApiKey::generate(PREFIX);
    std::fs::write(&path, keys_file(&[("reporting", key.digest(), "\"read\"")])).expect("write");
    let builder = crate::axum_server::api_keys(issuer_config(&issuer), Some(&path));
    let builder = crate::axum_server::policy(builder, None);
    let cfg = builder.build().expect("config");
    let server = Server::start_router(crate::axum_server::app(JwtAuthLayer::new(cfg))).await;

    let by_key = server.get("/whoami", &[("x-api-key", key.key())]).await;
    by_key.assert_ok();
    let body: serde_json::Value = serde_json::from_str(&by_key.body).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"kind": "api_key", "sub": "reporting"})
    );
    let jwt = issuer.token().subject("carol").sign();
    let by_jwt = server.bearer_at("/whoami", &jwt).await;
    let body: serde_json::Value = serde_json::from_str(&by_jwt.body).expect("json");
    assert_eq!(body, serde_json::json!({"kind": "jwt", "sub": "carol"}));
    server.bearer_at("/documents", key.key()).await.assert_ok();
    let write = server
        .client
        .post(server.url("/documents"))
        .header("x-api-key", key.key())
        .json(&serde_json::json!({"title": "t"}))
        .send()
        .await
        .expect("post");
    assert_eq!(write.status(), 403);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_inner_service_never_sees_the_key_and_it_is_never_offered_for_relay() {
    let issuer = MockIssuer::start().await;
    let key = NewApiKey::generate(PREFIX);
    /// The credentials the handler could read: the key header, `Authorization`, and
    /// the token offered for relaying.
    async fn seen(auth: Authentication, headers: axum::http::HeaderMap) -> String {
        let header = |name: &'static str| {
            if headers.contains_key(name) {
                name
            } else {
                "-"
            }
        };
        format!(
            "{} {} {}",
            header("x-api-key"),
            header("authorization"),
            auth.token().map_or("no-token", |_| "token")
        )
    }
    for remove_authorization in [false, true] {
        let cfg = with_key(issuer_config(&issuer), &key, &["read"])
            .remove_authorization(remove_authorization)
            .build()
            .expect("config");
        let server = Server::start_router(
            Router::new()
                .route("/", get(seen))
                .layer(JwtAuthLayer::new(cfg)),
        )
        .await;
        let by_header = server.get("/", &[("x-api-key", key.key())]).await;
        by_header.assert_ok();
        assert_eq!(by_header.body, "- - no-token");
        // A key is removed from `Authorization` whatever `remove_authorization` says.
        let by_bearer = server.bearer(key.key()).await;
        by_bearer.assert_ok();
        assert_eq!(by_bearer.body, "- - no-token");
        // A JWT is still offered for relaying, and kept unless told otherwise.
        let authorization = if remove_authorization {
            "-"
        } else {
            "authorization"
        };
        let jwt = issuer.token().sign();
        let by_jwt = server.bearer(&jwt).await;
        assert_eq!(by_jwt.body, format!("- {authorization} token"));
    }
}
