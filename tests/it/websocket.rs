//! Tokens for clients that cannot set headers: the `Sec-WebSocket-Protocol` entry of a
//! WebSocket handshake, and a query parameter on the paths that opt in. Through the
//! example's own router (`GET /ws`, `GET /events`) and routers of the tests' own, over
//! real HTTP with a WebSocket client.

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{HeaderMap, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tower_jwt_auth::testing::{Endpoint, Fault, MockIssuer};
use tower_jwt_auth::{JwtAuthConfigBuilder, JwtAuthLayer, TokenSource};
use tracing_subscriber::fmt::format::FmtSpan;

use crate::support::{Server, capture, issuer_config};

/// The example API with the token sources it reads when no file configures it.
async fn example(issuer: &MockIssuer) -> Server {
    let builder = crate::axum_server::policy(issuer_config(issuer), None);
    let config = crate::axum_server::token_sources(builder)
        .build()
        .expect("config");
    Server::start_router(crate::axum_server::app(JwtAuthLayer::new(config))).await
}

/// A WebSocket handshake to `/ws` offering `protocols` (none: no header).
async fn handshake(
    server: &Server,
    protocols: Option<&str>,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
        tungstenite::handshake::client::Response,
    ),
    tungstenite::Error,
> {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .expect("request");
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            protocols.parse().expect("header value"),
        );
    }
    tokio_tungstenite::connect_async(request).await
}

/// The response a refused handshake got.
fn refused(
    result: Result<impl Sized, tungstenite::Error>,
) -> tungstenite::http::Response<Option<Vec<u8>>> {
    match result {
        Err(tungstenite::Error::Http(response)) => *response,
        Err(other) => panic!("not an HTTP refusal: {other}"),
        Ok(_) => panic!("upgraded without a valid token"),
    }
}

#[tokio::test]
async fn a_websocket_client_with_the_token_as_a_subprotocol_upgrades_and_gets_chat() {
    let issuer = MockIssuer::start().await;
    let server = example(&issuer).await;
    let token = issuer.token().subject("reader").sign();

    let (mut socket, response) = handshake(&server, Some(&format!("chat, bearer.{token}")))
        .await
        .expect("upgrade");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(response.headers()["sec-websocket-protocol"], "chat");
    socket
        .send(Message::text("hello"))
        .await
        .expect("send a message");
    let echoed = socket.next().await.expect("an answer").expect("a message");
    assert_eq!(echoed, Message::text("hello"));
    socket.close(None).await.expect("close");

    // The token entry alone: the application is offered nothing it knows, so the 101
    // selects nothing (a browser would then fail the handshake; this client too).
    let alone = handshake(&server, Some(&format!("bearer.{token}"))).await;
    assert!(
        matches!(alone, Err(tungstenite::Error::Protocol(_))),
        "{alone:?}"
    );
}

#[tokio::test]
async fn an_upgrade_without_a_valid_token_is_refused_before_any_101() {
    let issuer = MockIssuer::start().await;
    let server = example(&issuer).await;

    let none = refused(handshake(&server, Some("chat")).await);
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let none = refused(handshake(&server, None).await);
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);

    let expired = issuer.token().expired().sign();
    let bad = refused(handshake(&server, Some(&format!("chat, bearer.{expired}"))).await);
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let challenge = bad.headers()["www-authenticate"].to_str().expect("ascii");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // Two token entries are ambiguous.
    let token = issuer.token().sign();
    let two = refused(
        handshake(
            &server,
            Some(&format!("chat, bearer.{token}, bearer.{token}")),
        )
        .await,
    );
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn server_sent_events_take_the_token_in_the_query_on_their_path_only() {
    let issuer = MockIssuer::start().await;
    let server = example(&issuer).await;
    let token = issuer.token().subject("reader").sign();

    let events = server
        .client
        .get(server.url(&format!("/events?access_token={token}")))
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    // axum's `no-cache` lets a shared cache store it; `private` keeps it out.
    let cache_control: Vec<_> = events.headers().get_all("cache-control").iter().collect();
    assert_eq!(cache_control, ["no-cache", "private"]);
    let body = events.text().await.expect("the stream ends");
    assert_eq!(body, "data: {\"sub\":\"reader\"}\n\n");

    // Elsewhere the parameter is no token at all.
    let elsewhere = server.get(&format!("/me?access_token={token}"), &[]).await;
    elsewhere.assert_no_token();
    // Nor on the events path by another method.
    let posted = server
        .client
        .post(server.url(&format!("/events?access_token={token}")))
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), StatusCode::UNAUTHORIZED);

    // Beside a header token it is ambiguous.
    let both = server
        .get(
            &format!("/events?access_token={token}"),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    both.assert_invalid_request();
}

/// What a handler sees of the request: the URI, axum's `OriginalUri`, and the
/// subprotocols offered.
async fn seen(uri: Uri, OriginalUri(original): OriginalUri, headers: HeaderMap) -> String {
    let protocols = headers
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    serde_json::json!({
        "uri": uri.to_string(),
        "original": original.to_string(),
        "protocols": protocols,
    })
    .to_string()
}

fn sources(issuer: &MockIssuer) -> JwtAuthConfigBuilder {
    issuer_config(issuer)
        .token_source(
            TokenSource::bearer()
                .or(TokenSource::websocket_protocol("bearer."))
                .or(TokenSource::query("access_token")),
        )
        .query_token_paths(["/events*"])
}

async fn seen_json(server: &Server, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let answer = server.get(path, headers).await;
    answer.assert_ok();
    serde_json::from_str(&answer.body).expect("json")
}

#[tokio::test]
async fn what_the_sources_read_is_gone_from_the_request_the_application_sees() {
    let (captured, _guard) = capture(FmtSpan::NONE);
    let issuer = MockIssuer::start().await;
    let token = issuer.token().subject("reader").sign();
    let path = format!("/events/7?since=3&access_token={token}&x");

    // As a `Router::layer`: the URI handlers read has no token, but the router recorded
    // `OriginalUri` before the layer ran.
    let layered = Router::new()
        .route("/{*rest}", get(seen))
        .route(
            "/events/stored",
            get(|| async { ([("cache-control", "max-age=60")], "stored") }),
        )
        .route(
            "/events/never",
            get(|| async { ([("cache-control", "no-store")], "never") }),
        )
        .layer(JwtAuthLayer::new(sources(&issuer).build().expect("config")));
    let server = Server::start_router(layered).await;
    // RFC 6750 section 2.3: a success for a token in the URI is `private` to caches,
    // unless the application says who may store it; one for a header token is left
    // alone.
    let private = server.get(&path, &[]).await;
    assert_eq!(private.cache_control.as_deref(), Some("private"));
    let header = server
        .get(
            "/events/7",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(header.cache_control, None);
    let cache_control = |path: &'static str| {
        let server = &server;
        let url = server.url(&format!("{path}?access_token={token}"));
        async move {
            let response = server.client.get(url).send().await.expect("request");
            assert_eq!(response.status(), StatusCode::OK);
            let values = response.headers().get_all("cache-control").iter();
            values
                .map(|v| v.to_str().expect("ascii").to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        cache_control("/events/stored").await,
        ["max-age=60", "private"]
    );
    assert_eq!(cache_control("/events/never").await, ["no-store"]);
    let answer = seen_json(&server, &path, &[]).await;
    assert_eq!(answer["uri"], "/events/7?since=3&x");
    assert!(
        answer["original"]
            .as_str()
            .is_some_and(|original| original.contains(&token)),
        "{answer}"
    );
    // The subprotocol entry is gone, the rest of the offer stays; on a handshake, and on
    // any other request, where it is no token.
    let answer = seen_json(
        &server,
        "/socket",
        &[
            (
                "sec-websocket-protocol",
                &format!("chat, bearer.{token}, v2"),
            ),
            ("upgrade", "websocket"),
        ],
    )
    .await;
    assert_eq!(answer["protocols"], "chat, v2");
    let answer = seen_json(
        &server,
        "/socket",
        &[
            ("sec-websocket-protocol", &format!("bearer.{token}")),
            ("authorization", &format!("Bearer {token}")),
        ],
    )
    .await;
    assert_eq!(answer["protocols"], serde_json::Value::Null);
    server
        .get(
            "/socket",
            &[("sec-websocket-protocol", &format!("bearer.{token}"))],
        )
        .await
        .assert_no_token();

    // Around the whole router, as a tower service: no trace of it anywhere.
    let router = Router::new().route("/{*rest}", get(seen));
    let whole = tower::ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(JwtAuthLayer::new(sources(&issuer).build().expect("config")))
        .service(router);
    let listener = crate::support::listener().await;
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service(whole),
        )
        .await;
    });
    let server = Server {
        addr,
        client: crate::support::client(),
    };
    let answer = seen_json(&server, &path, &[]).await;
    assert_eq!(answer["uri"], "/events/7?since=3&x");
    assert_eq!(answer["original"], "/events/7?since=3&x");

    // Refusals and acceptances alike log no token.
    let _ = server
        .get(&format!("/events?access_token={token}x"), &[])
        .await;
    let _ = server
        .get(
            &format!("/events?access_token={token}&access_token={token}"),
            &[],
        )
        .await;
    let logs = captured.text();
    assert!(
        logs.contains("request rejected"),
        "the capture works: {logs}"
    );
    let signature = token.rsplit('.').next().expect("signature");
    assert!(!logs.contains(signature), "a token in the logs: {logs}");
}

#[tokio::test]
async fn a_query_token_is_private_whether_the_keys_were_waited_for_or_not() {
    // A span is opened when the layer takes the request.
    let (captured, _guard) = capture(FmtSpan::NEW);
    let issuer = MockIssuer::start().await;
    // The first request waits for keys held at the issuer; the second finds them.
    issuer.set_fault(Endpoint::Jwks, Fault::Hold);
    let config = sources(&issuer).build().expect("config");
    let layered = Router::new()
        .route("/{*rest}", get(seen))
        .layer(JwtAuthLayer::new(config.clone()));
    let server = Server::start_router(layered).await;
    let token = issuer.token().sign();
    let path = format!("/events?access_token={token}");
    let waiting = {
        let (client, url) = (server.client.clone(), server.url(&path));
        tokio::spawn(async move { client.get(url).send().await.expect("request") })
    };
    crate::support::eventually("the request in the layer", async || {
        captured.text().contains("jwt_auth")
    })
    .await;
    assert!(!config.key_health().iter().all(|h| h.status().is_ready()));
    issuer.release();
    let waited = crate::support::answer(waiting.await.expect("task")).await;
    waited.assert_ok();
    assert_eq!(waited.cache_control.as_deref(), Some("private"));
    let found = server.get(&path, &[]).await;
    assert_eq!(found.cache_control.as_deref(), Some("private"));
    let seen: serde_json::Value = serde_json::from_str(&found.body).expect("json");
    assert_eq!(seen["uri"], "/events");
}
