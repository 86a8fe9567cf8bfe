//! The MCP example over real HTTP with raw JSON-RPC: initialize and `tools/list` with a
//! valid token, per-tool permissions with step-up challenges, and RFC 9728 metadata.

use crate::support::{Server, client, param};
use http::StatusCode;
use serde_json::{Value, json};
use tower_jwt_auth::JwtAuthConfig;
use tower_jwt_auth::testing::MockIssuer;

struct Mcp {
    server: Server,
    issuer: MockIssuer,
    resource: String,
}

async fn start() -> Mcp {
    let listener = crate::support::listener().await;
    let addr = listener.local_addr().expect("addr");
    let resource = format!("http://{addr}/mcp");
    let issuer = MockIssuer::builder()
        .audience(resource.clone())
        .start()
        .await;
    let cfg = JwtAuthConfig::builder()
        .issuer(issuer.issuer())
        .audience(resource.clone())
        .resource(resource.clone())
        .scopes_supported(["read", "write"])
        .http_client(client())
        .build()
        .expect("config");
    let router = crate::mcp_server::app(cfg);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Mcp {
        server: Server {
            addr,
            client: client(),
        },
        issuer,
        resource,
    }
}

/// A JSON-RPC answer: the status, headers of interest, and the message (from a JSON
/// body or from the `data:` line of an event stream).
struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    session: Option<String>,
    message: Option<Value>,
}

impl Mcp {
    async fn post(&self, token: Option<&str>, session: Option<&str>, body: Value) -> Reply {
        let mut request = self
            .server
            .client
            .post(&self.resource)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let response = request.send().await.expect("request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let challenge = header("www-authenticate");
        let session = header("mcp-session-id");
        let text = response.text().await.expect("body");
        let message = serde_json::from_str(&text).ok().or_else(|| {
            text.lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .find_map(|data| serde_json::from_str(data.trim()).ok())
        });
        Reply {
            status,
            challenge,
            session,
            message,
        }
    }

    /// initialize + notifications/initialized; returns the session id.
    async fn initialize(&self, token: &str) -> Option<String> {
        let reply = self
            .post(
                Some(token),
                None,
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}
                }}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "initialize: {:?}",
            reply.message
        );
        let message = reply.message.expect("initialize result");
        assert_eq!(
            message["result"]["serverInfo"]["name"],
            "tower-jwt-auth-mcp-example"
        );
        let session = reply.session;
        let done = self
            .post(
                Some(token),
                session.as_deref(),
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert!(done.status.is_success(), "{:?}", done.status);
        session
    }

    async fn call_tool(
        &self,
        token: &str,
        session: Option<&str>,
        name: &str,
        arguments: Value,
    ) -> Reply {
        self.post(
            Some(token),
            session,
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                   "params": {"name": name, "arguments": arguments}}),
        )
        .await
    }
}

#[tokio::test]
async fn initialize_and_tools_list_with_a_valid_token() {
    let mcp = start().await;
    let token = mcp.issuer.token().scope("read").sign();
    let session = mcp.initialize(&token).await;
    let reply = mcp
        .post(
            Some(&token),
            session.as_deref(),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let message = reply.message.expect("tools/list result");
    let names: Vec<&str> = message["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"read_document") && names.contains(&"write_document"),
        "{names:?}"
    );
    let reply = mcp
        .call_tool(
            &token,
            session.as_deref(),
            "read_document",
            json!({"index": 0}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.message.expect("result")["result"]["content"][0]["text"],
        "welcome"
    );
}

#[tokio::test]
async fn write_tool_with_a_read_only_token_gets_403_with_the_step_up_challenge() {
    let mcp = start().await;
    let reader = mcp.issuer.token().scope("read").sign();
    let session = mcp.initialize(&reader).await;
    let reply = mcp
        .call_tool(
            &reader,
            session.as_deref(),
            "write_document",
            json!({"text": "x"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let challenge = reply.challenge.expect("challenge");
    assert_eq!(
        param(&challenge, "error").as_deref(),
        Some("insufficient_scope")
    );
    assert_eq!(param(&challenge, "scope").as_deref(), Some("write"));
    let metadata_url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        mcp.server.addr
    );
    assert_eq!(
        param(&challenge, "resource_metadata").as_deref(),
        Some(metadata_url.as_str())
    );

    // After step-up, the same call passes.
    let writer = mcp.issuer.token().scope("read write").sign();
    let session = mcp.initialize(&writer).await;
    let reply = mcp
        .call_tool(
            &writer,
            session.as_deref(),
            "write_document",
            json!({"text": "x"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.message.expect("result")["result"]["content"][0]["text"],
        "stored as 1"
    );
}

#[tokio::test]
async fn no_token_gets_401_pointing_at_the_metadata_which_names_the_issuer() {
    let mcp = start().await;
    let reply = mcp
        .post(
            None,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let challenge = reply.challenge.expect("challenge");
    assert!(!challenge.contains("error="), "{challenge}");
    let metadata_url = param(&challenge, "resource_metadata").expect("resource_metadata");
    let document: Value = client()
        .get(&metadata_url)
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("json");
    assert_eq!(document["resource"], Value::from(mcp.resource.clone()));
    assert_eq!(
        document["authorization_servers"],
        json!([mcp.issuer.issuer()])
    );
    assert_eq!(document["scopes_supported"], json!(["read", "write"]));
    // A token for another audience (another MCP server) is refused.
    let other = mcp
        .issuer
        .token()
        .audience("http://127.0.0.1:1/mcp")
        .scope("read")
        .sign();
    let reply = mcp
        .post(
            Some(&other),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        param(&reply.challenge.expect("challenge"), "error_description").as_deref(),
        Some("audience not accepted")
    );
}

#[tokio::test]
async fn a_session_belongs_to_the_subject_that_created_it() {
    let mcp = start().await;
    let alice = mcp.issuer.token().subject("alice").scope("read").sign();
    let mallory = mcp.issuer.token().subject("mallory").scope("read").sign();
    let session = mcp.initialize(&alice).await;
    assert!(session.is_some(), "the transport keeps sessions");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let stolen = mcp
        .post(Some(&mallory), session.as_deref(), list.clone())
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    let owner = mcp.post(Some(&alice), session.as_deref(), list).await;
    assert_eq!(owner.status, StatusCode::OK);
}
