//! `jwt-auth gate` over real HTTP: the check requests of each proxy convention, sent
//! straight to the gate, against a mock issuer on loopback. The proxies themselves run
//! in `proxies.rs`.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use support::gate::{Gate, ROUTES, client, eventually, trust};
use support::scratch;
use tower_jwt_auth::testing::{DpopProof, Endpoint, MockIssuer, TestKey};

async fn gate_with(issuer: &MockIssuer, name: &str, extra: &str) -> (Gate, std::path::PathBuf) {
    let dir = scratch(name);
    let file = dir.join("gate.toml");
    std::fs::write(&file, format!("{}{extra}{ROUTES}", trust(issuer))).unwrap();
    (Gate::start(&file, true).await, file)
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn each_proxy_convention_gets_the_layers_verdicts() {
    let issuer = MockIssuer::start().await;
    let (gate, _) = gate_with(&issuer, "gate-conventions", "").await;
    let http = client();
    let read = issuer.token().subject("alice").permissions(["read"]).sign();
    let bearer = format!("Bearer {read}");

    // Traefik and Caddy: X-Forwarded-Method and X-Forwarded-Uri; the query is dropped.
    let allowed = http
        .get(format!("{}/", gate.url))
        .header("x-forwarded-method", "GET")
        .header("x-forwarded-uri", "/documents/7?fields=title")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(header(&allowed, "x-jwt-sub"), "alice");
    assert_eq!(header(&allowed, "cache-control"), "no-store");

    // nginx: X-Original-Method and X-Original-URI. A read token cannot POST.
    let refused = http
        .get(format!("{}/auth", gate.url))
        .header("x-original-method", "POST")
        .header("x-original-uri", "/documents")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let challenge = header(&refused, "www-authenticate");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="write""#), "{challenge}");
    assert!(header(&refused, "x-jwt-sub").is_empty());

    // Envoy's ext_authz: the check request's own method and path, prefix stripped.
    let envoy_get = http
        .get(format!("{}/check/documents/7", gate.url))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy_get.status(), StatusCode::OK);
    assert_eq!(header(&envoy_get, "x-jwt-sub"), "alice");
    let envoy_post = http
        .post(format!("{}/check/documents", gate.url))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(envoy_post.status(), StatusCode::FORBIDDEN);

    // No token: 401 with the Bearer challenge; an expired one: invalid_token.
    let none = http
        .get(format!("{}/check/documents", gate.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&none, "www-authenticate").starts_with("Bearer"));
    assert_eq!(header(&none, "cache-control"), "no-store");
    let expired = issuer.token().permissions(["read"]).expired().sign();
    let stale = http
        .get(format!("{}/check/documents", gate.url))
        .header("authorization", format!("Bearer {expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&stale, "www-authenticate").contains(r#"error="invalid_token""#));

    // A path no route names needs a valid token and nothing more.
    let other = |token: Option<&str>| {
        let request = http
            .get(format!("{}/", gate.url))
            .header("x-forwarded-uri", "/elsewhere");
        match token {
            Some(token) => request.header("authorization", format!("Bearer {token}")),
            None => request,
        }
    };
    let no_permissions = issuer.token().subject("bob").sign();
    assert_eq!(
        other(Some(&no_permissions)).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        other(None).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn public_routes_pass_without_a_token_but_never_with_a_bad_one() {
    let issuer = MockIssuer::start().await;
    let (gate, _) = gate_with(&issuer, "gate-public", "").await;
    let http = client();
    let public = |token: Option<String>, client_sub: Option<&str>| {
        let mut request = http
            .get(format!("{}/", gate.url))
            .header("x-forwarded-uri", "/public/logo.png");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(sub) = client_sub {
            request = request.header("x-jwt-sub", sub);
        }
        request.send()
    };
    // A client's own x-jwt-sub is never answered back as if it were verified.
    let anonymous = public(None, Some("admin")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    let subs: Vec<_> = anonymous.headers().get_all("x-jwt-sub").iter().collect();
    assert_eq!(subs, [""], "answered empty, never the client's");
    let token = issuer.token().subject("carol").sign();
    let known = public(Some(token), Some("admin")).await.unwrap();
    assert_eq!(known.status(), StatusCode::OK);
    let subs: Vec<_> = known.headers().get_all("x-jwt-sub").iter().collect();
    assert_eq!(subs, ["carol"]);
    let bad = public(Some(issuer.token().tampered().sign()), None)
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&bad, "www-authenticate").contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn paths_that_can_be_read_two_ways_and_doubled_headers_get_400() {
    let issuer = MockIssuer::start().await;
    let (gate, _) = gate_with(&issuer, "gate-ambiguous", "").await;
    let http = client();
    let read = format!("Bearer {}", issuer.token().permissions(["read"]).sign());
    for path in [
        "/public/..%2Fadmin",
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public;x/admin",
        "/public//admin",
        "/public\\admin",
        "/%64ocuments/7",
        "/public/%c0%afadmin",
    ] {
        for token in [None, Some(&read)] {
            let mut request = http
                .get(format!("{}/", gate.url))
                .header("x-forwarded-uri", path);
            if let Some(token) = token {
                request = request.header("authorization", token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            assert!(
                header(&response, "www-authenticate").contains(r#"error="invalid_request""#),
                "{path}"
            );
        }
    }
    // The plain forms pass.
    for (path, token) in [("/public/admin", None), ("/documents/7", Some(&read))] {
        let mut request = http
            .get(format!("{}/", gate.url))
            .header("x-forwarded-uri", path);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // A client's X-Forwarded-Uri beside the proxy's: which one is meant cannot be told.
    let doubled = http
        .get(format!("{}/", gate.url))
        .header("x-forwarded-uri", "/public/x")
        .header("x-forwarded-uri", "/documents")
        .send()
        .await
        .unwrap();
    assert_eq!(doubled.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dpop_proofs_are_checked_against_the_public_url_and_the_forwarded_uri() {
    let issuer = MockIssuer::start().await;
    let dpop = "[dpop]\nmode = \"required\"\npublic_base_url = \"https://api.example.com\"\n";
    let (gate, _) = gate_with(&issuer, "gate-dpop", dpop).await;
    let http = client();
    let client_key = TestKey::ec_p256();
    let token = issuer
        .token()
        .subject("dora")
        .permissions(["read"])
        .dpop_bound(&client_key)
        .sign();
    let check = |proof: String| {
        http.get(format!("{}/", gate.url))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/documents/7?page=2")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
    };
    let right = DpopProof::new(&client_key, "GET", "https://api.example.com/documents/7")
        .token(&token)
        .sign();
    let allowed = check(right).send().await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert_eq!(header(&allowed, "x-jwt-sub"), "dora");
    // A proof for another path, or for the gate's own address, is refused.
    for url in [
        "https://api.example.com/documents/8".to_owned(),
        format!("{}/", gate.url),
    ] {
        let wrong = DpopProof::new(&client_key, "GET", &url)
            .token(&token)
            .sign();
        let refused = check(wrong).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{url}");
        assert!(header(&refused, "www-authenticate").contains("invalid_dpop_proof"));
    }
}

#[tokio::test]
async fn the_file_reloads_on_change_and_a_broken_one_keeps_the_last() {
    let issuer = MockIssuer::start().await;
    let (mut gate, file) = gate_with(&issuer, "gate-reload", "").await;
    let http = client();
    let token = format!("Bearer {}", issuer.token().permissions(["read"]).sign());
    let url = gate.url.clone();
    let status = async || {
        http.get(format!("{url}/"))
            .header("x-forwarded-uri", "/reports/1")
            .header("authorization", &token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(status().await, StatusCode::OK);
    let stricter = format!(
        "{}{ROUTES}\n[[gate.routes]]\npath = \"/reports*\"\nrequire = [\"audit\"]\n",
        trust(&issuer)
    );
    std::fs::write(&file, stricter).unwrap();
    eventually(
        Duration::from_secs(10),
        "the new route in force",
        async || status().await == StatusCode::FORBIDDEN,
    )
    .await;
    // A file that does not build changes nothing, and the log says why.
    std::fs::write(
        &file,
        format!(
            "{}[gate]\nroutes = [{{ path = \"reports\" }}]\n",
            trust(&issuer)
        ),
    )
    .unwrap();
    let mut refused = false;
    eventually(
        Duration::from_secs(10),
        "the reload refused in the log",
        async || {
            refused |= gate
                .drain_log()
                .iter()
                .any(|line| line.contains("reload refused") && line.contains("gate.routes[0]"));
            refused
        },
    )
    .await;
    assert_eq!(status().await, StatusCode::FORBIDDEN);
    // The token never reaches the log, at any level.
    let log = gate.drain_log().join("\n");
    assert!(
        !log.contains(token.trim_start_matches("Bearer ")),
        "the token was logged"
    );
}

async fn check_config(file: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(support::BIN)
        .args(["gate", "--check-config", "--config"])
        .arg(file)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn check_config_names_the_bad_field_and_its_line() {
    let issuer = MockIssuer::start().await;
    let dir = scratch("gate-check-config");
    let good = dir.join("good.toml");
    std::fs::write(&good, format!("{}{ROUTES}", trust(&issuer))).unwrap();
    let output = check_config(&good).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("valid") && stdout.contains("3 route(s)"),
        "{stdout}"
    );
    // Nothing was fetched: checking reads the file only.
    assert_eq!(issuer.requests(Endpoint::Jwks), 0);
    assert_eq!(issuer.requests(Endpoint::Discovery), 0);

    let bad = dir.join("bad.toml");
    let text = format!(
        "{}[gate]\n\n[[gate.routes]]\npath = \"/a\"\npublic = true\nrequire = [\"x\"]\n",
        trust(&issuer)
    );
    std::fs::write(&bad, &text).unwrap();
    let output = check_config(&bad).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("gate.routes[0]"), "{stderr}");
    assert!(stderr.contains("cannot require permissions"), "{stderr}");
    assert!(stderr.contains("(line 6)"), "{stderr}");

    // An option the gate cannot honour is refused by name.
    let extension = dir.join("extension.toml");
    let text = format!(
        "{}[dpop]\nmode = \"allowed\"\ntrusted_url_extension = true\n",
        trust(&issuer)
    );
    std::fs::write(&extension, &text).unwrap();
    let output = check_config(&extension).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("dpop.trusted_url_extension"), "{stderr}");

    // A public route under a profile, which needs a token on every request.
    let profiled = dir.join("profiled.toml");
    let text = format!(
        "profile = \"rfc9068_strict\"\n{}[gate]\n\n[[gate.routes]]\npath = \"/health\"\npublic = true\n",
        trust(&issuer)
    );
    std::fs::write(&profiled, &text).unwrap();
    let output = check_config(&profiled).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("gate.routes[0]"), "{stderr}");
    assert!(stderr.contains("profile rfc9068_strict"), "{stderr}");

    // So are token sources whose token the proxy would send on upstream.
    for (source, table) in [
        (
            "token.query",
            "query = \"access_token\"\nquery_paths = [\"/events\"]\n",
        ),
        (
            "token.websocket_protocol",
            "websocket_protocol = \"bearer.\"\n",
        ),
    ] {
        let file = dir.join("sources.toml");
        std::fs::write(&file, format!("{}[token]\n{table}", trust(&issuer))).unwrap();
        let output = check_config(&file).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(source), "{stderr}");
    }
}

#[tokio::test]
async fn the_operations_listener_reports_health_readiness_and_metrics() {
    let issuer = MockIssuer::start().await;
    let (gate, _) = gate_with(&issuer, "gate-ops", "").await;
    let http = client();
    let ops = gate.ops.clone().expect("the operations listener");
    let get = async |path: &str| http.get(format!("{ops}{path}")).send().await.unwrap();
    assert_eq!(get("/health").await.status(), StatusCode::OK);
    let token = issuer.token().permissions(["read"]).sign();
    let checked = http
        .get(format!("{}/check/documents", gate.url))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), StatusCode::OK);
    assert_eq!(get("/ready").await.status(), StatusCode::OK);
    let metrics = get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"jwt_auth_requests_total{outcome="ok"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains(&token), "the token reached the metrics");
}

#[tokio::test]
async fn methods_and_targets_an_upstream_reads_otherwise_get_the_same_decision() {
    let issuer = MockIssuer::start().await;
    let (gate, _) = gate_with(&issuer, "gate-methods", "").await;
    let http = client();
    let read = issuer
        .token()
        .subject("erin")
        .permissions(["read"])
        .claim("client_id", "reports-app")
        .sign();
    let check = |method: &str, uri: &str| {
        http.get(format!("{}/", gate.url))
            .header("x-forwarded-method", method)
            .header("x-forwarded-uri", uri)
            .header("authorization", format!("Bearer {read}"))
            .header("x-jwt-client-id", "spoofed")
            .send()
    };
    // A method no route lists falls to the write route; HEAD is read as GET.
    assert_eq!(
        check("PATCH", "/documents/7").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let head = check("HEAD", "/documents/7").await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    // `client_id` is answered as x-jwt-client-id, the client's copy never.
    let ids: Vec<_> = head.headers().get_all("x-jwt-client-id").iter().collect();
    assert_eq!(ids, ["reports-app"]);
    // A method in lower case (which frameworks read as POST) and a fragment (which the
    // upstream would get whole) cannot be decided one way.
    for (method, uri) in [
        ("post", "/documents"),
        ("GET", "/public/x#/../../documents"),
    ] {
        let response = check(method, uri).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{method} {uri}");
    }
    // Envoy's check path must carry the configured prefix.
    let unprefixed = http
        .get(format!("{}/documents", gate.url))
        .header("authorization", format!("Bearer {read}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unprefixed.status(), StatusCode::BAD_REQUEST);
}
