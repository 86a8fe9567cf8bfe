//! An MCP server (Model Context Protocol, streamable HTTP transport, built with the
//! `rmcp` crate) protected by tower-jwt-auth, with per-tool permissions.
//!
//! ```sh
//! cargo run --example mcp_server
//! ```
//!
//! With no `JWT_ISSUER`, an embedded mock issuer starts and the program prints the MCP
//! endpoint, the metadata URL and tokens to connect with. The authorization follows the
//! MCP specification: the server publishes OAuth 2.0 Protected Resource Metadata
//! (RFC 9728) outside the auth layer, every 401 points at it with `resource_metadata`,
//! tokens must carry the server's URL as audience, and a tool call without the tool's
//! permission gets 403 `insufficient_scope` naming what to ask for (step-up).
//!
//! Tools: `read_document` needs `read`, `write_document` needs `write`. `initialize` and
//! `tools/list` need only a valid token. A session belongs to the subject (`sub`) whose
//! token created it: another token's requests on it get 404, as for an unknown session,
//! so a leaked session id is worth nothing without its owner's token. `LISTEN_ADDR` (default `127.0.0.1:3000`),
//! `JWT_ISSUER` and `JWT_AUDIENCE` (default: the MCP endpoint's URL) work as in the other
//! examples.

#[path = "support/logs.rs"]
mod logs;

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::Value;
use tower_jwt_auth::testing::MockIssuer;
use tower_jwt_auth::{
    Authentication, JwtAuthConfig, JwtAuthLayer, RequirePermission, StandardClaims,
};

/// The largest JSON-RPC body the tool guard reads.
const MAX_BODY: usize = 256 * 1024;

/// The permission each tool needs.
fn tool_permission(tool: &str) -> Option<&'static str> {
    match tool {
        "read_document" => Some("read"),
        "write_document" => Some("write"),
        _ => None,
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ReadArgs {
    /// The document's index, from 0.
    index: usize,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct WriteArgs {
    /// The document's text.
    text: String,
}

/// The MCP server: a shared list of documents.
#[derive(Clone)]
struct DocumentTools {
    documents: Arc<Mutex<Vec<String>>>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl DocumentTools {
    fn new(documents: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            documents,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Read a document by index (needs the `read` permission)")]
    async fn read_document(
        &self,
        Parameters(args): Parameters<ReadArgs>,
    ) -> Result<CallToolResult, McpError> {
        let documents = self
            .documents
            .lock()
            .map_err(|_| McpError::internal_error("poisoned", None))?;
        let text = documents
            .get(args.index)
            .cloned()
            .ok_or_else(|| McpError::invalid_params("no such document", None))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }

    #[tool(description = "Store a document (needs the `write` permission)")]
    async fn write_document(
        &self,
        Parameters(args): Parameters<WriteArgs>,
    ) -> Result<CallToolResult, McpError> {
        let mut documents = self
            .documents
            .lock()
            .map_err(|_| McpError::internal_error("poisoned", None))?;
        documents.push(args.text);
        let index = documents.len() - 1;
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "stored as {index}"
        ))]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DocumentTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tower-jwt-auth-mcp-example", "0.1.0"))
    }
}

/// Which subject owns each MCP session: the `sub` of the token that created it.
type Sessions = Arc<Mutex<HashMap<String, Option<String>>>>;

/// The `sub` of the request's verified token.
fn subject(parts: &http::request::Parts) -> Option<String> {
    parts
        .extensions
        .get::<Authentication>()?
        .claims::<StandardClaims>()?
        .sub
        .clone()
}

/// Keeps each session to the subject that created it, and checks the permission of each
/// `tools/call` in the body (a single message or a batch) before the MCP service sees it,
/// then hands the body on unchanged.
async fn guard(State(sessions): State<Sessions>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let caller = subject(&parts);
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(session) = &session {
        let owner = sessions.lock().ok().and_then(|s| s.get(session).cloned());
        if owner.is_some_and(|owner| owner != caller) {
            // As if the session did not exist: the client starts its own.
            return (http::StatusCode::NOT_FOUND, "session not found").into_response();
        }
    }
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )
            .into_response();
    };
    if let Ok(message) = serde_json::from_slice::<Value>(&bytes) {
        let messages = match &message {
            Value::Array(batch) => batch.iter().collect(),
            single => vec![single],
        };
        for message in messages {
            if message["method"] != "tools/call" {
                continue;
            }
            let tool = message["params"]["name"].as_str().unwrap_or_default();
            if let Some(permission) = tool_permission(tool)
                && let Err(rejection) = RequirePermission::all([permission]).check(&parts)
            {
                return rejection.map(Body::from);
            }
        }
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if session.is_none()
        && let Some(created) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        && let Ok(mut sessions) = sessions.lock()
    {
        sessions.insert(created.to_owned(), caller);
    }
    response
}

/// The application: metadata outside the auth layer, the MCP endpoint at `/mcp` inside.
pub(crate) fn app(cfg: JwtAuthConfig) -> Router {
    let documents = Arc::new(Mutex::new(vec!["welcome".to_owned()]));
    let mcp = StreamableHttpService::new(
        move || Ok(DocumentTools::new(Arc::clone(&documents))),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let mut router = Router::new().nest_service(
        "/mcp",
        tower::ServiceBuilder::new()
            .layer(JwtAuthLayer::new(cfg.clone()))
            .layer(middleware::from_fn_with_state(Sessions::default(), guard))
            .service(mcp),
    );
    if let Some(metadata) = cfg.protected_resource_metadata() {
        for path in metadata.paths() {
            router = router.route_service(path, metadata.clone());
        }
    }
    router
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    logs::init();
    let listen = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let resource = format!("http://{addr}/mcp");
    let audience = std::env::var("JWT_AUDIENCE").unwrap_or_else(|_| resource.clone());
    let mock = match std::env::var("JWT_ISSUER") {
        Ok(_) => None,
        Err(_) => Some(
            MockIssuer::builder()
                .audience(audience.clone())
                .start()
                .await,
        ),
    };
    let issuer = match (&mock, std::env::var("JWT_ISSUER")) {
        (Some(mock), _) => mock.issuer().to_owned(),
        (None, Ok(url)) => url,
        (None, Err(e)) => return Err(e.into()),
    };
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.clone())
        .audience(audience)
        .resource(resource.clone())
        .resource_name("tower-jwt-auth MCP example")
        .scopes_supported(["read", "write"])
        .build()?;
    let metadata = cfg
        .protected_resource_metadata()
        .map(|m| m.url().to_owned())
        .unwrap_or_default();
    println!("MCP endpoint       {resource}  (streamable HTTP)");
    println!("resource metadata  {metadata}");
    println!("issuer             {issuer}");
    if let Some(mock) = &mock {
        let reader = mock.token().subject("reader").scope("read").sign();
        let writer = mock.token().subject("writer").scope("read write").sign();
        println!("\nread-only token:  {reader}\nread-write token: {writer}\n");
        println!(
            "curl -i {resource} -H 'Authorization: Bearer {reader}' \\\n  -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n  -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'\n"
        );
        println!(
            "MCP clients (an inspector, an IDE) connect to {resource} with one of the tokens as a bearer token."
        );
    }
    axum::serve(listener, app(cfg))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
