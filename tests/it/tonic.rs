//! gRPC over real HTTP/2: the example's tonic server on 127.0.0.1:0, a real tonic client,
//! and the live MockIssuer. Rejections must be gRPC statuses, not HTTP errors.

use std::time::Duration;

use crate::support::eventually;
use crate::tonic_server::proto::documents_client::DocumentsClient;
use crate::tonic_server::proto::{CreateRequest, GetRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tower_jwt_auth::jwks::RemoteOptions;
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer};

struct Grpc {
    addr: std::net::SocketAddr,
    channel: Channel,
    client: DocumentsClient<Channel>,
}

fn options() -> RemoteOptions {
    RemoteOptions::new()
        .http_client(crate::support::client())
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
}

async fn start(issuer: &MockIssuer) -> Grpc {
    let cfg = crate::support::issuer_config(issuer)
        .remote_options(options())
        .build()
        .expect("config");
    let (addr, channel) = crate::support::grpc(cfg).await;
    Grpc {
        addr,
        client: DocumentsClient::new(channel.clone()),
        channel,
    }
}

fn with_token<T>(message: T, authorization: Option<String>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(value) = authorization {
        let value: MetadataValue<_> = value.parse().expect("metadata");
        request.metadata_mut().insert("authorization", value);
    }
    request
}

impl Grpc {
    async fn create(&mut self, authorization: Option<String>) -> Result<String, tonic::Status> {
        let request = with_token(
            CreateRequest {
                title: "memo".into(),
            },
            authorization,
        );
        self.client
            .create(request)
            .await
            .map(|r| r.into_inner().owner)
    }

    async fn get(&mut self, authorization: Option<String>) -> Result<String, tonic::Status> {
        let request = with_token(GetRequest { id: "1".into() }, authorization);
        self.client.get(request).await.map(|r| r.into_inner().title)
    }
}

/// A claims type no layer or interceptor in these tests is built for.
#[derive(Debug, Clone, serde::Deserialize)]
struct OtherClaims {}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

#[tokio::test]
async fn valid_token_reaches_the_handler_with_its_claims() {
    let issuer = MockIssuer::start().await;
    let mut grpc = start(&issuer).await;
    let writer = issuer
        .token()
        .subject("erin")
        .permissions(["read", "write"])
        .sign();
    assert_eq!(grpc.create(bearer(&writer)).await.expect("create"), "erin");
    assert_eq!(grpc.get(bearer(&writer)).await.expect("get"), "memo");
}

#[tokio::test]
async fn invalid_tokens_are_unauthenticated() {
    let issuer = MockIssuer::start().await;
    let mut grpc = start(&issuer).await;
    let cases = [
        ("no token", None),
        (
            "expired",
            bearer(&issuer.token().permissions(["read"]).expired().sign()),
        ),
        (
            "wrong audience",
            bearer(&issuer.token().permissions(["read"]).wrong_audience().sign()),
        ),
        (
            "bad signature",
            bearer(
                &issuer
                    .token()
                    .permissions(["read"])
                    .signed_by_foreign_key()
                    .sign(),
            ),
        ),
        ("malformed credentials", Some("Bearer".to_owned())),
    ];
    for (what, authorization) in cases {
        let status = grpc.get(authorization).await.expect_err(what);
        assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
        assert!(
            !status.message().contains("eyJ"),
            "no token content in {status:?}"
        );
    }
    let status = grpc
        .get(bearer(
            &issuer.token().permissions(["read"]).expired().sign(),
        ))
        .await
        .expect_err("expired");
    assert_eq!(status.message(), "token expired");
}

#[tokio::test]
async fn lowercase_bearer_is_accepted() {
    let issuer = MockIssuer::start().await;
    let mut grpc = start(&issuer).await;
    let token = issuer.token().permissions(["write"]).sign();
    grpc.create(Some(format!("bearer {token}")))
        .await
        .expect("create");
}

#[tokio::test]
async fn read_token_on_the_write_method_is_permission_denied() {
    let issuer = MockIssuer::start().await;
    let mut grpc = start(&issuer).await;
    let reader = issuer.token().permissions(["read"]).sign();
    let status = grpc.create(bearer(&reader)).await.expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(status.message(), "insufficient permission");
    // The read method is fine with it (NOT_FOUND: the document does not exist).
    let status = grpc.get(bearer(&reader)).await.expect_err("no document");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn idp_down_at_startup_is_unavailable_then_ok() {
    let issuer = MockIssuer::start().await;
    issuer.set_fault(Endpoint::Discovery, Fault::Down);
    let mut grpc = start(&issuer).await;
    let writer = issuer.token().permissions(["write"]).sign();
    let status = grpc.create(bearer(&writer)).await.expect_err("unavailable");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    issuer.clear_faults();
    eventually("accepted once the issuer is back", async || {
        match grpc.create(bearer(&writer)).await {
            Ok(_) => true,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                false
            }
        }
    })
    .await;
}

#[tokio::test]
async fn unknown_method_is_unimplemented_with_a_token_and_unauthenticated_without() {
    let issuer = MockIssuer::start().await;
    let grpc = start(&issuer).await;
    let mut raw = tonic::client::Grpc::new(grpc.channel.clone());
    let path = http::uri::PathAndQuery::from_static("/documents.v1.Documents/Delete");
    for (authorization, expected) in [
        (bearer(&issuer.token().sign()), Code::Unimplemented),
        (None, Code::Unauthenticated),
    ] {
        raw.ready().await.expect("ready");
        let request = with_token(GetRequest { id: "1".into() }, authorization);
        let codec = tonic_prost::ProstCodec::<GetRequest, GetRequest>::default();
        let status = raw
            .unary(request, path.clone(), codec)
            .await
            .expect_err("no such method");
        assert_eq!(status.code(), expected, "{status:?}");
    }
}

#[tokio::test]
async fn plain_http_requests_on_the_same_layer_get_http_statuses() {
    let issuer = MockIssuer::start().await;
    let grpc = start(&issuer).await;
    let url = format!("http://{}/documents.v1.Documents/Get", grpc.addr);
    let answer = crate::support::answer(
        crate::support::client()
            .post(&url)
            .send()
            .await
            .expect("http"),
    )
    .await;
    answer.assert_no_token();
    let expired = issuer.token().expired().sign();
    let answer = crate::support::answer(
        crate::support::client()
            .post(&url)
            .bearer_auth(expired)
            .send()
            .await
            .expect("http"),
    )
    .await;
    answer.assert_invalid_token("token expired");
}

#[tokio::test]
async fn grpc_refusals_are_not_stored_by_caches() {
    let issuer = MockIssuer::start().await;
    let mut grpc = start(&issuer).await;
    let status = grpc.get(None).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let metadata = status.metadata();
    assert_eq!(
        metadata
            .get("cache-control")
            .map(|v| v.to_str().expect("ascii")),
        Some("no-store"),
        "{status:?}"
    );
    assert!(metadata.get("www-authenticate").is_some(), "{status:?}");
}

#[tokio::test]
async fn http1_with_a_grpc_content_type_gets_an_http_answer() {
    let issuer = MockIssuer::start().await;
    let grpc = start(&issuer).await;
    let url = format!("http://{}/documents.v1.Documents/Get", grpc.addr);
    let response = crate::support::client()
        .post(&url)
        .header("content-type", "application/grpc")
        .send()
        .await
        .expect("http/1.1");
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert!(
        response.headers().get("grpc-status").is_none(),
        "{response:?}"
    );
    let answer = crate::support::answer(response).await;
    answer.assert_no_token();
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
}

#[tokio::test]
async fn interceptor_checks_tokens_with_loaded_keys() {
    use tonic::service::Interceptor;
    use tower_jwt_auth::StandardClaims;
    use tower_jwt_auth::tonic::{JwtInterceptor, RequestExt};

    let issuer = MockIssuer::start().await;
    // The first load is held open: a synchronous check cannot wait for it.
    issuer.set_fault(Endpoint::Discovery, Fault::Hold);
    let cfg = crate::support::issuer_config(&issuer)
        .remote_options(options())
        .build()
        .expect("config");
    let mut interceptor = JwtInterceptor::new(cfg.clone());
    let token = issuer.token().subject("frank").permissions(["read"]).sign();
    let status = interceptor
        .call(with_token((), bearer(&token)))
        .expect_err("not loaded");
    assert_eq!(status.code(), Code::Unavailable);
    issuer.clear_faults();
    issuer.release();
    assert!(cfg.wait_until_ready(Duration::from_secs(5)).await);
    let request = interceptor
        .call(with_token((), bearer(&token)))
        .expect("verified");
    assert_eq!(
        request
            .claims::<StandardClaims>()
            .expect("claims")
            .sub
            .as_deref(),
        Some("frank")
    );
    request.require_permission("read").expect("read");
    // Asking for another claims type than the interceptor's is a wiring mistake.
    let status = request
        .claims::<OtherClaims>()
        .expect_err("another claims type");
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("OtherClaims") && status.message().contains("StandardClaims"),
        "{status:?}"
    );
    assert_eq!(
        request
            .require_permission("write")
            .expect_err("no write")
            .code(),
        Code::PermissionDenied
    );
    let status = interceptor
        .call(with_token((), None))
        .expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    // A rotated key: refused once, refetched in the background, then accepted.
    issuer.rotate();
    let rotated = issuer.token().sign();
    let status = interceptor
        .call(with_token((), bearer(&rotated)))
        .expect_err("unknown kid");
    assert_eq!(status.code(), Code::Unauthenticated);
    eventually("the rotated key refetched", async || {
        interceptor.call(with_token((), bearer(&rotated))).is_ok()
    })
    .await;
}

#[tokio::test]
async fn the_interceptor_replaces_client_sent_forwarded_metadata_with_verified_claims() {
    use tonic::service::Interceptor;
    use tower_jwt_auth::tonic::JwtInterceptor;

    let cfg = crate::support::builder(crate::support::ec_key().key_set())
        .forward_claim("sub", "x-jwt-sub")
        .build()
        .expect("config");
    let mut interceptor = JwtInterceptor::new(cfg);
    let forged = |authorization: Option<String>| {
        let mut request = with_token((), authorization);
        for name in ["x-jwt-sub", "x_jwt_sub"] {
            request
                .metadata_mut()
                .insert(name, MetadataValue::from_static("admin"));
        }
        request
    };
    let token = crate::support::token(crate::support::ec_key())
        .subject("frank")
        .sign();
    let request = interceptor.call(forged(bearer(&token))).expect("verified");
    let metadata = request.metadata();
    assert_eq!(
        metadata.get("x-jwt-sub").and_then(|v| v.to_str().ok()),
        Some("frank")
    );
    assert!(metadata.get("x_jwt_sub").is_none(), "{metadata:?}");
    assert!(metadata.get("authorization").is_some());
}
