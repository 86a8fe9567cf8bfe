//! The `jwt-auth` binary end to end: spawned, on real loopback, against the crate's own
//! mock identity provider.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tower_jwt_auth::testing::{MockIssuer, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, Verifier};

mod support;

use support::BIN;

/// Runs the binary with `args` (and `stdin`), returning exit code and stdout.
async fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn jwt-auth");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write stdin");
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("jwt-auth finishes")
        .expect("output");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `explain --json` against the mock issuer.
async fn explain(issuer: &MockIssuer, token: &str) -> (i32, Value) {
    let (code, out, err) = run(
        &[
            "explain",
            "--issuer",
            issuer.issuer(),
            "--audience",
            issuer.audience(),
            "--json",
            token,
        ],
        None,
    )
    .await;
    let report = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, report)
}

#[tokio::test]
async fn explain_names_each_refusal_and_agrees_with_the_layer() {
    let issuer = MockIssuer::start().await;
    let verifier = Verifier::new(
        JwtAuthConfig::builder()
            .issuer(issuer.issuer())
            .audience(issuer.audience())
            .build()
            .expect("config"),
    );
    let cases: [(&str, TokenBuilder, Option<&str>); 7] = [
        ("valid", issuer.token(), None),
        ("expired", issuer.token().expired(), Some("expiry")),
        (
            "wrong audience",
            issuer.token().wrong_audience(),
            Some("audience"),
        ),
        (
            "wrong issuer",
            issuer.token().wrong_issuer(),
            Some("issuer"),
        ),
        ("unknown kid", issuer.token().unknown_kid(), Some("key")),
        (
            "bad signature",
            issuer.token().tampered(),
            Some("signature"),
        ),
        ("alg none", issuer.token().alg_none(), Some("algorithm")),
    ];
    for (case, token, failing) in cases {
        let token = token.sign();
        let (code, report) = explain(&issuer, &token).await;
        let layer = verifier
            .verify_async::<serde_json::Value>(&token)
            .await
            .err()
            .map(|e| format!("{:?}", e.kind()));
        assert_eq!(
            report["error"].as_str().map(str::to_owned),
            layer,
            "{case}: {report}"
        );
        match failing {
            None => {
                assert_eq!(code, 0, "{case}: {report}");
                assert_eq!(report["accepted"], true);
                assert_eq!(report["status"], 200);
            }
            Some(check) => {
                assert_eq!(code, 1, "{case}: {report}");
                let failed: Vec<&Value> = report["checks"]
                    .as_array()
                    .expect("checks")
                    .iter()
                    .filter(|c| c["status"] == "failed")
                    .collect();
                assert_eq!(failed.len(), 1, "{case}: {report}");
                assert_eq!(failed[0]["name"], check, "{case}: {report}");
                assert_eq!(report["status"], 401, "{case}");
                assert!(
                    report["www_authenticate"]
                        .as_str()
                        .is_some_and(|c| c.contains("invalid_token")),
                    "{case}: {report}"
                );
            }
        }
    }
    // Plain text names the failure in words; the token can come on standard input.
    let (code, out, _) = run(
        &[
            "explain",
            "--issuer",
            issuer.issuer(),
            "--audience",
            issuer.audience(),
            "-",
        ],
        Some(&issuer.token().expired().sign()),
    )
    .await;
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  expiry"), "{out}");
    assert!(
        out.contains("refused: token expired (Expired), HTTP 401"),
        "{out}"
    );
}

#[tokio::test]
async fn explain_exits_2_on_usage_and_identity_provider_errors() {
    let (code, _, err) = run(&["explain", "--audience", "a", "x.y.z"], None).await;
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["explain", "--issuer", "https://idp.example.com/"], None).await;
    assert_eq!(code, 2, "{err}");
    // Nothing listens on the issuer's port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let (code, _, err) = run(
        &[
            "explain",
            "--issuer",
            &format!("http://127.0.0.1:{port}"),
            "--audience",
            "a",
            "x.y.z",
        ],
        None,
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did not load"), "{err}");
    let (code, _, _) = run(&["frobnicate"], None).await;
    assert_eq!(code, 2);
}

#[tokio::test]
async fn serve_mint_and_explain_work_together_with_saved_keys() {
    let dir = std::env::temp_dir().join(format!("jwt-auth-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let keys = dir.join("keys.json");
    let keys = keys.to_str().expect("utf-8");
    let accounts = dir.join("accounts.json");
    std::fs::write(
        &accounts,
        r#"{"clients":[{"id":"file-client","secret":"fs","permissions":["read"]}]}"#,
    )
    .expect("accounts");
    let accounts = accounts.to_str().expect("utf-8");
    let (mut serve, issuer, _) = support::serve(&[
        "--key-file",
        keys,
        "--client",
        "demo:pw:read",
        "--accounts",
        accounts,
    ])
    .await;
    // Both the flag's client and the file's get tokens.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (id, secret) in [("demo", "pw"), ("file-client", "fs")] {
        let answer = http
            .post(format!("{issuer}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .expect("token endpoint");
        assert_eq!(answer.status(), 200, "{id}");
    }
    for alg in ["RS256", "ES256", "EdDSA"] {
        let (code, token, err) = run(
            &[
                "mint",
                "--issuer",
                &issuer,
                "--alg",
                alg,
                "--key-file",
                keys,
                "--permissions",
                "read",
            ],
            None,
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = run(
            &[
                "explain",
                "--issuer",
                &issuer,
                "--audience",
                "https://api.example.com",
                token.trim(),
            ],
            None,
        )
        .await;
        assert_eq!(code, 0, "{alg}: {out} {err}");
        assert!(out.contains("accepted"), "{out}");
    }
    // --curl prints a ready command; an expired token decodes with "expired … ago".
    let (_, curl, _) = run(
        &[
            "mint",
            "--key-file",
            keys,
            "--curl",
            "http://127.0.0.1:3000/me",
        ],
        None,
    )
    .await;
    assert!(
        curl.starts_with("curl -i http://127.0.0.1:3000/me -H 'Authorization: Bearer ey"),
        "{curl}"
    );
    // --count gives tokens one per line, each with its own jti, each accepted.
    let (code, many, _) = run(
        &[
            "mint",
            "--key-file",
            keys,
            "--issuer",
            &issuer,
            "--count",
            "3",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let many: Vec<&str> = many.lines().collect();
    assert_eq!(many.len(), 3);
    let mut jtis = std::collections::HashSet::new();
    for token in &many {
        let (code, out, _) = run(&["decode", "--json", token], None).await;
        assert_eq!(code, 0);
        let decoded: Value = serde_json::from_str(&out).expect("json");
        jtis.insert(decoded["payload"]["jti"].to_string());
        let audience = "https://api.example.com";
        let args = [
            "explain",
            "--issuer",
            &issuer,
            "--audience",
            audience,
            token,
        ];
        assert_eq!(run(&args, None).await.0, 0, "{token}");
    }
    assert_eq!(jtis.len(), 3, "{many:?}");
    let (code, _, err) = run(&["mint", "--key-file", keys, "--count", "0"], None).await;
    assert_eq!(code, 2, "{err}");
    let (_, expired, _) = run(&["mint", "--key-file", keys, "--expires-in", "-600"], None).await;
    let (code, out, _) = run(&["decode", expired.trim()], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("(expired 10 min ago)"), "{out}");
    let (code, out, _) = run(&["decode", "--json", "-"], Some(expired.trim())).await;
    assert_eq!(code, 0);
    let decoded: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(decoded["payload"]["sub"], "test-user");
    assert_eq!(decoded["times"]["exp"]["relative"], "10 min ago");
    let (code, _, _) = run(&["decode", "an-opaque-token"], None).await;
    assert_eq!(code, 1);

    let mut stdin = serve.stdin.take().expect("stdin");
    stdin.write_all(b"rotate\nquit\n").await.expect("commands");
    let status = tokio::time::timeout(Duration::from_secs(10), serve.wait())
        .await
        .expect("serve quits")
        .expect("status");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn every_command_has_help() {
    for command in ["serve", "mint", "decode", "explain", "proof"] {
        let (code, out, _) = run(&[command, "--help"], None).await;
        assert_eq!(code, 0, "{command}");
        assert!(out.contains("EXAMPLE"), "{command}: {out}");
    }
    let (code, out, _) = run(&["--help"], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("COMMANDS"), "{out}");
}

#[cfg(unix)]
#[tokio::test]
async fn saved_private_keys_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path).expect("saved").permissions().mode() & 0o777
    };
    let dir = std::env::temp_dir().join(format!("jwt-auth-cli-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let keys = dir.join("keys.json");
    let keys_arg = keys.to_str().expect("utf-8");

    // `serve` saves its signing keys before it prints its addresses.
    let (serve, _, _) = support::serve(&["--key-file", keys_arg]).await;
    drop(serve);
    assert_eq!(mode(&keys), 0o600, "signing keys saved by serve");

    // A key file left readable to all is made private before its keys are used.
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, _, err) = run(&["mint", "--key-file", keys_arg], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&keys), 0o600, "signing keys read by mint");

    let client = dir.join("client.json");
    let client_arg = client.to_str().expect("utf-8");
    let args = [
        "mint",
        "--key-file",
        keys_arg,
        "--dpop-bound",
        "--client-key-file",
        client_arg,
    ];
    let (code, _, err) = run(&args, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(mode(&client), 0o600, "DPoP client key saved by mint");
    let _ = std::fs::remove_dir_all(&dir);
}
