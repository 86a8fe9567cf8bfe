//! A tonic gRPC server protected by tower-jwt-auth.
//!
//! ```sh
//! # Against your identity provider:
//! JWT_ISSUER=https://your-tenant.eu.auth0.com/ JWT_AUDIENCE=https://api.example.com \
//!     cargo run --example tonic_server
//!
//! # With no JWT_ISSUER, an embedded mock issuer starts and a grpcurl command with a
//! # token is printed:
//! cargo run --example tonic_server
//! ```
//!
//! `LISTEN_ADDR` sets the address (default `127.0.0.1:3000`). The service is
//! `documents.v1.Documents` (`examples/proto/documents.proto`): `Get` needs `read`,
//! `Create` needs `write` and records the token's `sub` as the owner. Rejections are gRPC
//! statuses: `UNAUTHENTICATED` without a valid token, `PERMISSION_DENIED` without the
//! permission. The server also accepts HTTP/1.1, where the same layer answers with HTTP
//! statuses.

#[path = "support/logs.rs"]
mod logs;

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tower_jwt_auth::guard::MethodPermissions;
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::tonic::RequestExt;
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer, RequirePermission, StandardClaims};

/// The code generated from `examples/proto/documents.proto`.
pub(crate) mod proto {
    #![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    include!("proto/documents.v1.rs");
}

use proto::documents_server::{Documents, DocumentsServer};
use proto::{CreateRequest, Document, GetRequest};

/// The document service: an in-memory list.
#[derive(Default)]
struct DocumentService {
    documents: Mutex<Vec<Document>>,
}

#[tonic::async_trait]
impl Documents for DocumentService {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<Document>, Status> {
        let id = &request.get_ref().id;
        let documents = self
            .documents
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        documents
            .iter()
            .find(|d| d.id == *id)
            .cloned()
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no document {id}")))
    }

    async fn create(&self, request: Request<CreateRequest>) -> Result<Response<Document>, Status> {
        let owner = request
            .claims::<StandardClaims>()?
            .sub
            .clone()
            .unwrap_or_default();
        let mut documents = self
            .documents
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        let document = Document {
            id: (documents.len() + 1).to_string(),
            title: request.into_inner().title,
            owner,
        };
        documents.push(document.clone());
        Ok(Response::new(document))
    }
}

/// Serves the protected service on `listener` until `shutdown` resolves.
pub(crate) async fn serve(
    listener: TcpListener,
    cfg: JwtAuthConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let per_method = MethodPermissions::new()
        .method("/documents.v1.Documents/Get", RequirePermission("read"))
        .method("/documents.v1.Documents/Create", RequirePermission("write"));
    Server::builder()
        .accept_http1(true)
        .layer(JwtAuthLayer::new(cfg))
        .add_service(tower::Layer::layer(
            &per_method,
            DocumentsServer::new(DocumentService::default()),
        ))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    logs::init();
    let listen: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()?;
    let audience =
        std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| "https://api.example.com".into());
    let mock = match std::env::var("JWT_ISSUER") {
        Ok(_) => None,
        Err(_) => Some(
            MockIssuer::builder()
                .audience(audience.clone())
                .start()
                .await,
        ),
    };
    let issuer_url = match (&mock, std::env::var("JWT_ISSUER")) {
        (Some(mock), _) => mock.issuer().to_owned(),
        (None, Ok(url)) => url,
        (None, Err(e)) => return Err(e.into()),
    };
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer_url.clone())
        .audience(audience)
        .build()?;
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    println!("gRPC documents.v1.Documents on {addr} (issuer {issuer_url})");
    if let Some(mock) = &mock {
        let token = mock
            .token()
            .subject("grpc-user")
            .permissions(["read", "write"])
            .sign();
        println!("\ngrpcurl -plaintext -import-path examples/proto -proto documents.proto \\");
        println!("  -H 'authorization: Bearer {token}' \\");
        println!("  -d '{{\"title\":\"hello\"}}' {addr} documents.v1.Documents/Create\n");
    }
    serve(listener, cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
