//! `jwt-auth gate` behind real proxies (nginx `auth_request`, Caddy `forward_auth`),
//! started from Debian's packages with the configurations the guide shows, in front of
//! an upstream that reports what reached it; and two gate replicas sharing one Redis.
//! `#[ignore]`d here: `scripts/test-services` installs the programs and runs them.

mod support;

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use support::gate::{Gate, ROUTES, client, trust};
use support::scratch;
use support::services::{self, Program};
use tower_jwt_auth::testing::MockIssuer;

/// The nginx configuration of the guide (inside `http`), for a gate and an upstream on
/// loopback.
fn nginx_server(gate: &str, upstream: &str) -> String {
    let gate = gate.trim_start_matches("http://");
    format!(
        r#"
  map $jwt_status $jwt_retry_after {{
    503 1;
    default "";
  }}

  upstream jwt_gate {{
    server {gate};
    keepalive 16;
  }}

  server {{
    listen 127.0.0.1:{{port}};

    location / {{
      auth_request /_jwt_gate;
      # The verified claims, from the gate's answer to the upstream. A client's own
      # copy is replaced, or removed when the answer's is empty.
      auth_request_set $jwt_sub $upstream_http_x_jwt_sub;
      auth_request_set $jwt_client_id $upstream_http_x_jwt_client_id;
      proxy_set_header X-Jwt-Sub $jwt_sub;
      proxy_set_header X-Jwt-Client-Id $jwt_client_id;
      # The refusal's status and headers, which nginx would otherwise lose.
      auth_request_set $jwt_status $upstream_status;
      auth_request_set $jwt_challenge $upstream_http_www_authenticate;
      auth_request_set $jwt_dpop_nonce $upstream_http_dpop_nonce;
      error_page 401 = @jwt_unauthorized;
      error_page 403 = @jwt_forbidden;
      error_page 500 = @jwt_error;
      proxy_pass {upstream};
    }}

    location = /_jwt_gate {{
      internal;
      proxy_pass http://jwt_gate;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
      # The gate reads X-Forwarded-* first: never let a client's copy through.
      proxy_set_header X-Forwarded-Method "";
      proxy_set_header X-Forwarded-Uri "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}

    location @jwt_unauthorized {{
      add_header WWW-Authenticate $jwt_challenge always;
      add_header DPoP-Nonce $jwt_dpop_nonce always;
      add_header Cache-Control no-store always;
      return 401;
    }}

    location @jwt_forbidden {{
      add_header WWW-Authenticate $jwt_challenge always;
      add_header Cache-Control no-store always;
      return 403;
    }}

    location @jwt_error {{
      add_header WWW-Authenticate $jwt_challenge always;
      add_header Cache-Control no-store always;
      add_header Retry-After $jwt_retry_after always;
      if ($jwt_status = 400) {{
        return 400;
      }}
      if ($jwt_status = 503) {{
        return 503;
      }}
      return 500;
    }}
  }}
"#
    )
}

/// The Caddy site of the guide.
fn caddy_site(gate: &str, upstream: &str) -> String {
    let gate = gate.trim_start_matches("http://");
    let upstream = upstream.trim_start_matches("http://");
    format!(
        r#"http://127.0.0.1:{{port}} {{
  route {{
    # A client's own X-Jwt-* never reaches the upstream.
    request_header -X-Jwt-*
    request_header -X_Jwt_*
    forward_auth {gate} {{
      uri /
      copy_headers X-Jwt-Sub X-Jwt-Client-Id
    }}
    reverse_proxy {upstream}
  }}
}}"#
    )
}

struct Setup {
    issuer: MockIssuer,
    _gate: Gate,
    _proxy: Program,
    proxy: String,
    _upstream: tokio::task::JoinHandle<()>,
}

async fn behind(name: &str, proxy: impl AsyncFnOnce(&Path, &str, &str) -> Program) -> Setup {
    let issuer = MockIssuer::start().await;
    let dir = scratch(name);
    let file = dir.join("gate.toml");
    std::fs::write(&file, format!("{}{ROUTES}", trust(&issuer))).unwrap();
    let gate = Gate::start(&file, false).await;
    let (upstream, task) = services::upstream().await;
    let program = proxy(&dir, &gate.url, &upstream).await;
    let proxy = format!("http://127.0.0.1:{}", program.port);
    Setup {
        issuer,
        _gate: gate,
        _proxy: program,
        proxy,
        _upstream: task,
    }
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// What every proxy must do with the gate's verdicts, 403's challenge included.
async fn verdicts_reach_the_client(setup: &Setup) {
    let http = client();
    let url = |path: &str| format!("{}{path}", setup.proxy);
    let read = setup
        .issuer
        .token()
        .subject("alice")
        .permissions(["read"])
        .sign();
    let bearer = format!("Bearer {read}");

    // A read token reaches the upstream on a read route, which sees the verified sub
    // and never the client's own.
    let allowed = http
        .get(url("/documents/7"))
        .header("authorization", &bearer)
        .header("x-jwt-sub", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let seen: Value = allowed.json().await.unwrap();
    assert_eq!(seen["path"], "/documents/7");
    assert_eq!(seen["x-jwt-sub"], serde_json::json!(["alice"]));

    // It cannot write: 403 with the permission it lacks.
    let refused = http
        .post(url("/documents"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let scope = challenge(&refused);
    assert!(scope.contains(r#"scope="write""#), "{scope}");

    // No token: 401 with the Bearer challenge; an expired one: invalid_token.
    let none = http.get(url("/documents")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenge(&none).starts_with("Bearer"),
        "{}",
        challenge(&none)
    );
    let expired = setup.issuer.token().permissions(["read"]).expired().sign();
    let stale = http
        .get(url("/documents"))
        .header("authorization", format!("Bearer {expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&stale).contains(r#"error="invalid_token""#));

    // A public route needs no token, and a client's own X-Jwt-Sub does not pass.
    let public = http
        .get(url("/public/logo.png"))
        .header("x-jwt-sub", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::OK);
    let seen: Value = public.json().await.unwrap();
    let subs = seen["x-jwt-sub"].as_array().unwrap();
    assert!(subs.iter().all(|sub| sub == ""), "{subs:?}");
}

#[tokio::test]
#[ignore = "needs nginx: scripts/test-services installs it (apt-get install nginx)"]
async fn nginx_auth_request_passes_on_the_gates_verdicts() {
    let setup = behind("proxy-nginx", async |dir, gate, upstream| {
        services::nginx(dir, &nginx_server(gate, upstream)).await
    })
    .await;
    verdicts_reach_the_client(&setup).await;
    let http = client();
    let url = |path: &str| format!("{}{path}", setup.proxy);

    // A client's X-Forwarded-Uri naming a public path changes nothing.
    let spoofed = http
        .get(url("/documents"))
        .header("x-forwarded-uri", "/public/x")
        .header("x-forwarded-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::UNAUTHORIZED);

    // 400 and its challenge survive nginx through the error_page mapping.
    let ambiguous = http
        .get(url("/public/..%2Fdocuments"))
        .send()
        .await
        .unwrap();
    assert_eq!(ambiguous.status(), StatusCode::BAD_REQUEST);
    assert!(challenge(&ambiguous).contains(r#"error="invalid_request""#));
}

#[tokio::test]
#[ignore = "needs caddy: scripts/test-services installs it (apt-get install caddy)"]
async fn caddy_forward_auth_passes_on_the_gates_verdicts() {
    let setup = behind("proxy-caddy", async |dir, gate, upstream| {
        services::caddy(dir, &caddy_site(gate, upstream)).await
    })
    .await;
    verdicts_reach_the_client(&setup).await;
}

#[tokio::test]
#[ignore = "needs redis-server: scripts/test-services installs it (apt-get install redis-server)"]
async fn a_single_use_route_refuses_the_second_use_on_another_replica() {
    let issuer = MockIssuer::start().await;
    let dir = scratch("proxy-replicas");
    let redis = services::redis(&dir).await;
    let file = dir.join("gate.toml");
    let text = format!(
        "{}[state]\nstore = \"redis://127.0.0.1:{}\"\n{ROUTES}\n[[gate.routes]]\npath = \"/transfers*\"\nrequire = [\"write\"]\nsingle_use = true\n",
        trust(&issuer),
        redis.port
    );
    std::fs::write(&file, text).unwrap();
    let (first, second) = (
        Gate::start(&file, false).await,
        Gate::start(&file, false).await,
    );
    let http = client();
    let token = issuer
        .token()
        .permissions(["write"])
        .claim("jti", "transfer-1")
        .sign();
    let check = async |gate: &Gate| {
        http.get(format!("{}/", gate.url))
            .header("x-forwarded-method", "POST")
            .header("x-forwarded-uri", "/transfers")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(check(&first).await.status(), StatusCode::OK);
    let replayed = check(&second).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&replayed).contains(r#"error="invalid_token""#));
    assert_eq!(check(&first).await.status(), StatusCode::UNAUTHORIZED);
    // A route that is not single use still takes the token on either replica.
    let read = http
        .get(format!("{}/", second.url))
        .header("x-forwarded-uri", "/elsewhere")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
}
