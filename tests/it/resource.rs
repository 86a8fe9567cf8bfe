//! RFC 9728 protected-resource metadata and step-up challenges over real HTTP.

use crate::support::{Server, client, issuer_config, param};
use axum::Router;
use axum::routing::get;
use http::StatusCode;
use serde_json::Value;
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer, RequirePermission};

async fn ok() -> &'static str {
    "ok"
}

/// The metadata outside the layer, guarded routes inside it.
async fn start(cfg: JwtAuthConfig) -> Server {
    let mut router = Router::new()
        .route("/read", get(ok).route_layer(RequirePermission("read")))
        .route("/write", get(ok).route_layer(RequirePermission("write")))
        .route(
            "/either",
            get(ok).route_layer(RequirePermission::any(["read", "audit"])),
        )
        .layer(JwtAuthLayer::new(cfg.clone()));
    if let Some(metadata) = cfg.protected_resource_metadata() {
        for path in metadata.paths() {
            router = router.route_service(path, metadata.clone());
        }
    }
    Server::start_router(router).await
}

#[tokio::test]
async fn metadata_document_contents_and_content_type_in_both_path_forms() {
    let issuer = MockIssuer::start().await;
    let cfg = issuer_config(&issuer)
        .resource("https://api.example.com/v1/mcp")
        .resource_name("Example MCP server")
        .resource_documentation("https://docs.example.com/mcp")
        .scopes_supported(["read", "write"])
        .build()
        .expect("config");
    let server = start(cfg).await;
    for path in [
        "/.well-known/oauth-protected-resource/v1/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let answer = server.get(path, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.content_type.as_deref(), Some("application/json"));
        let document: Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(document["resource"], "https://api.example.com/v1/mcp");
        assert_eq!(
            document["authorization_servers"],
            serde_json::json!([issuer.issuer()])
        );
        assert_eq!(
            document["scopes_supported"],
            serde_json::json!(["read", "write"])
        );
        assert_eq!(
            document["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(document["resource_name"], "Example MCP server");
        assert_eq!(
            document["resource_documentation"],
            "https://docs.example.com/mcp"
        );
        assert!(
            document.get("jwks_uri").is_none(),
            "the JWKS is the issuer's, not ours"
        );
    }
    let post = client()
        .post(server.url("/.well-known/oauth-protected-resource"))
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 405);
}

#[tokio::test]
async fn root_resource_has_one_metadata_path() {
    let issuer = MockIssuer::start().await;
    let cfg = issuer_config(&issuer)
        .resource("https://api.example.com")
        .build()
        .expect("config");
    let metadata = cfg.protected_resource_metadata().expect("metadata");
    assert_eq!(metadata.paths(), ["/.well-known/oauth-protected-resource"]);
    assert_eq!(
        metadata.url(),
        "https://api.example.com/.well-known/oauth-protected-resource"
    );
    let server = start(cfg).await;
    let answer = server
        .get("/.well-known/oauth-protected-resource", &[])
        .await;
    answer.assert_ok();
}

#[tokio::test]
async fn resource_metadata_is_in_401_and_403_when_configured() {
    let issuer = MockIssuer::start().await;
    let cfg = issuer_config(&issuer)
        .resource("https://api.example.com/v1/mcp")
        .realm("mcp")
        .build()
        .expect("config");
    let server = start(cfg).await;
    let url = "https://api.example.com/.well-known/oauth-protected-resource/v1/mcp";

    let no_token = server.get("/read", &[]).await;
    no_token.assert_no_token();
    let challenge = no_token.challenge.expect("challenge");
    assert_eq!(param(&challenge, "resource_metadata").as_deref(), Some(url));
    assert!(!challenge.contains("error="), "{challenge}");

    let expired = issuer.token().expired().sign();
    let invalid = server.bearer(&expired).await;
    assert_eq!(invalid.status, StatusCode::UNAUTHORIZED);
    let challenge = invalid.challenge.expect("challenge");
    assert_eq!(param(&challenge, "resource_metadata").as_deref(), Some(url));

    let reader = issuer.token().permissions(["read"]).sign();
    let forbidden = server
        .get("/write", &[("authorization", &format!("Bearer {reader}"))])
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let challenge = forbidden.challenge.expect("challenge");
    assert_eq!(param(&challenge, "resource_metadata").as_deref(), Some(url));
    assert_eq!(param(&challenge, "scope").as_deref(), Some("write"));
}

#[tokio::test]
async fn challenges_stay_rfc_6750_only_without_a_resource() {
    let issuer = MockIssuer::start().await;
    let server = start(issuer_config(&issuer).build().expect("config")).await;
    let challenge = server.get("/read", &[]).await.challenge.expect("challenge");
    assert_eq!(challenge, "Bearer");
    let reader = issuer.token().permissions(["read"]).sign();
    let forbidden = server
        .get("/write", &[("authorization", &format!("Bearer {reader}"))])
        .await;
    let challenge = forbidden.challenge.expect("challenge");
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
    assert_eq!(
        server
            .get("/.well-known/oauth-protected-resource", &[])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn step_up_403_names_every_permission_the_request_needs() {
    let issuer = MockIssuer::start().await;
    let cfg = issuer_config(&issuer)
        .resource("https://api.example.com")
        .require_permissions(["api:access"])
        .build()
        .expect("config");
    let server = start(cfg).await;
    let scope_of = |answer: crate::support::Answer| {
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
        param(&answer.challenge.expect("challenge"), "scope").expect("scope")
    };
    // Missing the layer-wide permission: it alone is named by the layer.
    let none = issuer.token().permissions(["write"]).sign();
    assert_eq!(
        scope_of(server.bearer_at("/write", &none).await),
        "api:access"
    );
    // Missing the route's: the full set for this request, layer-wide first.
    let partial = issuer.token().permissions(["api:access", "read"]).sign();
    assert_eq!(
        scope_of(server.bearer_at("/write", &partial).await),
        "api:access write"
    );
    assert_eq!(
        scope_of(
            server
                .bearer_at(
                    "/either",
                    &issuer.token().permissions(["api:access"]).sign()
                )
                .await
        ),
        "api:access read audit"
    );
    let full = issuer.token().permissions(["api:access", "write"]).sign();
    server.bearer_at("/write", &full).await.assert_ok();
}

#[test]
fn resource_must_be_an_https_url_without_fragment() {
    for bad in [
        "http://api.example.com",
        "https://api.example.com/#frag",
        "api.example.com",
        // A domain that only starts like a loopback address is a domain.
        "http://127.evil.example/mcp",
        "http://localhost.evil.example/mcp",
    ] {
        let err = JwtAuthConfig::builder()
            .issuer("https://idp.example.com/")
            .audience("a")
            .hmac_secret(vec![1u8; 32])
            .resource(bad)
            .build()
            .expect_err(bad);
        assert_eq!(
            err.kind(),
            tower_jwt_auth::ConfigErrorKind::InvalidUrl,
            "{bad}"
        );
    }
    for loopback in [
        "http://127.0.0.1:8080/mcp",
        "http://[::1]/mcp",
        "http://localhost/mcp",
    ] {
        JwtAuthConfig::builder()
            .issuer("https://idp.example.com/")
            .audience("a")
            .hmac_secret(vec![1u8; 32])
            .resource(loopback)
            .build()
            .expect(loopback);
    }
    let err = JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("a")
        .hmac_secret(vec![1u8; 32])
        .scopes_supported(["read"])
        .build()
        .expect_err("scopes without resource");
    assert_eq!(
        err.kind(),
        tower_jwt_auth::ConfigErrorKind::ResourceRequired
    );
}

#[test]
fn metadata_advertises_dpop_and_certificate_bound_tokens() {
    use tower_jwt_auth::Algorithm;
    use tower_jwt_auth::dpop::{DpopMode, DpopOptions};
    use tower_jwt_auth::mtls::MtlsMode;
    let document = |dpop: DpopMode, mtls: MtlsMode| -> Value {
        let config = crate::support::builder(crate::support::ec_key().key_set())
            .dpop(
                DpopOptions::new(dpop)
                    .public_base_url("https://api.example.test")
                    .algorithms([Algorithm::ES256, Algorithm::EdDSA]),
            )
            .mtls(mtls)
            .resource("https://api.example.test")
            .build()
            .expect("config");
        config
            .protected_resource_metadata()
            .expect("metadata")
            .document()
            .clone()
    };
    let required = document(DpopMode::Required, MtlsMode::Allowed);
    assert_eq!(
        required["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
    assert_eq!(required["dpop_bound_access_tokens_required"], true);
    assert_eq!(required["tls_client_certificate_bound_access_tokens"], true);
    let allowed = document(DpopMode::Allowed, MtlsMode::Off);
    assert_eq!(allowed["dpop_bound_access_tokens_required"], false);
    assert!(
        allowed
            .get("tls_client_certificate_bound_access_tokens")
            .is_none()
    );
    let off = document(DpopMode::Off, MtlsMode::Off);
    assert!(off.get("dpop_signing_alg_values_supported").is_none());
}
