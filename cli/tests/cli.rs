//! The `jwt-auth` binary end to end: spawned, on real loopback, against the crate's own
//! mock identity provider.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tower_jwt_auth::testing::{MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::{JwtAuthConfig, Verifier};

mod support;

use support::{BIN, scratch};

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

/// Plain `explain` of a token `serve` signed, for the audience its tokens carry.
async fn explain_served(issuer: &str, token: &str) -> (i32, String, String) {
    let args = [
        "explain",
        "--issuer",
        issuer,
        "--audience",
        "https://api.example.com",
        token,
    ];
    run(&args, None).await
}

/// `client_credentials` at `serve`'s token endpoint, the secret in the body.
async fn token_request(issuer: &str, id: &str, secret: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{issuer}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .expect("token endpoint")
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
    for (id, secret) in [("demo", "pw"), ("file-client", "fs")] {
        let answer = token_request(&issuer, id, secret).await;
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
        let (code, out, err) = explain_served(&issuer, token.trim()).await;
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
        assert_eq!(explain_served(&issuer, token).await.0, 0, "{token}");
    }
    assert_eq!(jtis.len(), 3, "{many:?}");
    // --typ names the header's type, as RFC 9068 access tokens need.
    let (code, typed, _) = run(
        &[
            "mint",
            "--key-file",
            keys,
            "--alg",
            "ES256",
            "--typ",
            "at+jwt",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let (_, out, _) = run(&["decode", "--json", typed.trim()], None).await;
    let decoded: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(decoded["header"]["typ"], "at+jwt", "{decoded}");
    assert_eq!(decoded["header"]["alg"], "ES256", "{decoded}");
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
    for command in ["serve", "mint", "decode", "explain", "proof", "completions"] {
        let (code, out, _) = run(&[command, "--help"], None).await;
        assert_eq!(code, 0, "{command}");
        assert!(
            out.starts_with(char::is_uppercase),
            "{command}: a summary first: {out}"
        );
        assert!(
            out.contains(&format!("Usage: jwt-auth {command}")),
            "{command}: {out}"
        );
        assert!(out.contains("Example"), "{command}: {out}");
        // One line break at the end, as a terminal prompt expects: no missing, no extra.
        assert!(
            out.ends_with('\n') && !out.ends_with("\n\n"),
            "{command}: {out:?}"
        );
        for line in out.lines() {
            assert!(
                line.len() <= 100,
                "{command}: a line past 100 columns: {line}"
            );
        }
    }
    let (code, out, _) = run(&["--help"], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("Usage: jwt-auth <COMMAND>"), "{out}");
    let commands = out
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("Options:").next())
        .unwrap_or_else(|| panic!("a command list: {out}"));
    for command in ["serve", "mint", "decode", "explain", "proof", "completions"] {
        assert!(
            commands
                .lines()
                .any(|l| l.trim_start().starts_with(command)),
            "{command} listed: {out}"
        );
    }
    assert!(out.ends_with('\n') && !out.ends_with("\n\n"), "{out:?}");
    // No command: the help on standard error, and the usage-error status.
    let (code, out, err) = run(&[], None).await;
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("Usage: jwt-auth <COMMAND>"), "{err}");
}

#[tokio::test]
async fn version_completions_and_suggestions_come_from_clap() {
    let (code, out, _) = run(&["--version"], None).await;
    assert_eq!(code, 0);
    assert_eq!(out, format!("jwt-auth {}\n", env!("CARGO_PKG_VERSION")));

    // Each script names the program, its commands and their options, in its shell's
    // own registration form.
    for (shell, registration) in [
        ("bash", "complete -F _jwt__auth"),
        ("zsh", "#compdef jwt-auth"),
        ("fish", "complete -c jwt-auth"),
        (
            "powershell",
            "Register-ArgumentCompleter -Native -CommandName 'jwt-auth'",
        ),
        ("elvish", "set edit:completion:arg-completer[jwt-auth]"),
    ] {
        let (code, out, err) = run(&["completions", shell], None).await;
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains(registration), "{shell}: {out}");
        for word in ["explain", "hmac-secret-file", "dpop-bound"] {
            assert!(out.contains(word), "{shell} completes {word}");
        }
    }
    let (code, _, err) = run(&["completions", "tcsh"], None).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("possible values"), "{err}");

    // Misspelt commands and options get exit 2 and the right spelling.
    let (code, out, err) = run(&["mitn"], None).await;
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("similar subcommand exists: 'mint'"), "{err}");
    let (code, _, err) = run(&["mint", "--isuer", "https://idp.example.com"], None).await;
    assert_eq!(code, 2);
    assert!(err.contains("similar argument exists: '--issuer'"), "{err}");
    let (code, _, err) = run(
        &[
            "explain",
            "--audience",
            "a",
            "--jwks",
            "k",
            "--pem",
            "p",
            "t",
        ],
        None,
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

/// Bash loads the script and registers it for the program.
#[cfg(unix)]
#[tokio::test]
async fn the_bash_completion_script_loads() {
    let (_, script, _) = run(&["completions", "bash"], None).await;
    let output = Command::new("bash")
        .args([
            "--norc",
            "-c",
            "eval \"$1\" && complete -p jwt-auth",
            "bash",
            &script,
        ])
        .output()
        .await
        .expect("bash");
    let registered = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(registered.contains("-F _jwt__auth"), "{registered}");
    assert!(registered.trim_end().ends_with(" jwt-auth"), "{registered}");
}

/// `decode --json` of a token: its header and payload.
async fn decoded(token: &str) -> Value {
    let (code, out, err) = run(&["decode", "--json", token], None).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("json")
}

#[tokio::test]
async fn decode_and_explain_take_a_pasted_header_value() {
    let dir = scratch("pasted");
    let keys = dir.join("keys.json");
    let keys = keys.to_str().expect("utf-8");
    let (_serve, issuer, _) = support::serve(&["--key-file", keys]).await;
    let (code, token, err) = run(
        &[
            "mint",
            "--key-file",
            keys,
            "--issuer",
            &issuer,
            "--sub",
            "pasted",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let token = token.trim();
    for pasted in [
        format!("Bearer {token}"),
        format!("  bearer   {token}\n"),
        format!("DPoP {token}"),
        format!("dpop\t{token}"),
    ] {
        let (code, out, err) = run(&["decode", "--json", &pasted], None).await;
        assert_eq!(code, 0, "{pasted:?}: {err}");
        let decoded: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(decoded["payload"]["sub"], "pasted", "{pasted:?}");
        let (code, out, err) = run(&["decode", "-"], Some(&pasted)).await;
        assert_eq!(code, 0, "{pasted:?} on standard input: {err}");
        assert!(out.contains("\"sub\": \"pasted\""), "{out}");
    }
    let args = [
        "explain",
        "--issuer",
        &issuer,
        "--audience",
        "https://api.example.com",
    ];
    let pasted = format!("Bearer {token}");
    let (code, out, err) = run(&[&args[..], &[pasted.as_str()]].concat(), None).await;
    assert_eq!(code, 0, "{out} {err}");
    let (code, out, err) = run(
        &[&args[..], &["-"]].concat(),
        Some(&format!("DPoP {token}\n")),
    )
    .await;
    assert_eq!(code, 0, "{out} {err}");
    // Another scheme is not taken off: that text is no token.
    let (code, _, _) = run(&["decode", &format!("Basic {token}")], None).await;
    assert_eq!(code, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The file `mint` names on standard error as its HMAC secret.
fn secret_file(stderr: &str) -> std::path::PathBuf {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("HMAC secret"))
        .unwrap_or_else(|| panic!("mint names its secret: {stderr}"));
    let path = line
        .split_once(" in ")
        .or_else(|| line.split_once(" from "))
        .map(|(_, rest)| rest.split(" (").next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("a file in {line:?}"));
    std::path::PathBuf::from(path)
}

#[tokio::test]
async fn mint_signs_hs256_with_a_secret_file_that_explain_verifies() {
    let dir = scratch("hmac");
    let audience = "https://api.example.com";
    let issuer = "https://idp.example.com";
    let (code, token, err) = run(&["mint", "--alg", "HS256", "--issuer", issuer], None).await;
    assert_eq!(code, 0, "{err}");
    let token = token.trim();
    let secret = secret_file(&err);
    assert!(err.contains("a new one"), "{err}");
    assert!(secret.is_file(), "{}", secret.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&secret)
            .expect("secret")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", secret.display());
    }
    let header = &decoded(token).await["header"];
    assert_eq!(header["alg"], "HS256");
    assert!(header.get("kid").is_none(), "{header}");

    let explain = |secret: std::path::PathBuf, token: String| async move {
        let secret = secret.to_str().expect("utf-8").to_owned();
        let args = [
            "explain",
            "--issuer",
            issuer,
            "--audience",
            audience,
            "--hmac-secret-file",
            &secret,
            "--json",
            &token,
        ];
        let (code, out, err) = run(&args, None).await;
        let report: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (code, report)
    };
    let (code, report) = explain(secret.clone(), token.to_owned()).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["accepted"], true);
    // Another secret of the same length: the signature check names the refusal.
    let wrong = dir.join("wrong.secret");
    std::fs::write(&wrong, "x".repeat(86)).expect("wrong secret");
    let (code, report) = explain(wrong, token.to_owned()).await;
    assert_eq!(code, 1, "{report}");
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["name"], "signature", "{report}");
    let _ = std::fs::remove_file(&secret);

    // A named file that is not there yet gets a new secret, which later runs reuse;
    // the secret file alone means HMAC.
    let named = dir.join("dev.secret");
    let named_arg = named.to_str().expect("utf-8");
    let mint = ["mint", "--issuer", issuer, "--hmac-secret-file", named_arg];
    let (code, first, err) = run(&[&mint[..], &["--alg", "HS512"]].concat(), None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(secret_file(&err), named, "{err}");
    assert!(err.contains("a new one"), "{err}");
    let (code, second, err) = run(&mint, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(secret_file(&err), named, "{err}");
    assert!(!err.contains("a new one"), "the file is reused: {err}");
    assert_eq!(decoded(second.trim()).await["header"]["alg"], "HS256");
    for token in [first.trim(), second.trim()] {
        let (code, report) = explain(named.clone(), token.to_owned()).await;
        assert_eq!(code, 0, "{report}");
    }
    // A secret is for HMAC only.
    let (code, _, err) = run(&[&mint[..], &["--alg", "ES256"]].concat(), None).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--hmac-secret-file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn explain_takes_the_issuer_from_the_token_when_not_given_one() {
    let dir = scratch("issuer");
    let keys = dir.join("keys.json");
    let keys = keys.to_str().expect("utf-8");
    let (_serve, issuer, _) = support::serve(&["--key-file", keys]).await;
    let (code, token, err) = run(&["mint", "--key-file", keys, "--issuer", &issuer], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &[
            "explain",
            "--audience",
            "https://api.example.com",
            token.trim(),
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("accepted"), "{out}");
    assert!(
        err.contains(&format!("issuer taken from the token: {issuer}")),
        "{err}"
    );
    // A token that names no issuer, and no --issuer: a usage error that names the option.
    let anonymous = TokenBuilder::new(&TestKey::ec_p256()).sign();
    let (code, out, err) = run(&["explain", "--audience", "a", &anonymous], None).await;
    assert_eq!(code, 2, "{out} {err}");
    assert!(err.contains("--issuer"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn after_rotate_mint_signs_with_the_key_serve_now_signs_with() {
    let dir = scratch("rotate");
    let keys = dir.join("keys.json");
    let keys_arg = keys.to_str().expect("utf-8");
    let (mut serve, issuer, _, mut output) =
        support::serve_with_output(&["--key-file", keys_arg, "--client", "demo:pw:read"]).await;
    let mint = ["mint", "--key-file", keys_arg, "--issuer", &issuer];
    let (code, before, err) = run(&mint, None).await;
    assert_eq!(code, 0, "{err}");
    let old_kid = decoded(before.trim()).await["header"]["kid"].clone();

    let mut stdin = serve.stdin.take().expect("stdin");
    let new_kid = support::rotate(&mut stdin, &mut output).await;
    assert_ne!(Value::from(new_kid.as_str()), old_kid, "{new_kid}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&keys).expect("keys").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the saved keys stay private");
    }

    let (code, after, err) = run(&mint, None).await;
    assert_eq!(code, 0, "{err}");
    let after = after.trim();
    assert_eq!(decoded(after).await["header"]["kid"], new_kid.as_str());
    // serve signs with the same key, and publishes it.
    let answer: Value = token_request(&issuer, "demo", "pw")
        .await
        .json()
        .await
        .expect("json");
    let served = answer["access_token"].as_str().expect("a token");
    assert_eq!(decoded(served).await["header"]["kid"], new_kid.as_str());
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let jwks: Value = http
        .get(format!("{issuer}/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert!(
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["kid"] == new_kid.as_str()),
        "{jwks}"
    );
    let (code, out, err) = explain_served(&issuer, after).await;
    assert_eq!(code, 0, "{out} {err}");
    // Tokens signed before the rotation still verify: the old key stays published.
    let (code, out, err) = explain_served(&issuer, before.trim()).await;
    assert_eq!(code, 0, "{out} {err}");

    stdin.write_all(b"quit\n").await.expect("quit");
    let status = tokio::time::timeout(Duration::from_secs(10), serve.wait())
        .await
        .expect("serve quits")
        .expect("status");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
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

/// A POST of JSON to one of the console's calls: the status and the JSON answer.
async fn console_call(console: &str, call: &str, body: &Value) -> (u16, Value) {
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("{console}console/{call}"))
        .json(body)
        .send()
        .await
        .expect("console");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("json"))
}

#[tokio::test]
async fn the_console_mints_and_explains_with_the_keys_serve_signs_with() {
    let dir = scratch("console");
    let keys = dir.join("keys.json");
    let (mut serve, issuer, console, mut output) =
        support::serve_with_output(&["--key-file", keys.to_str().expect("utf-8")]).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");

    let page = http.get(&console).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let content_type = page.headers()["content-type"].to_str().expect("ascii");
    assert_eq!(content_type, "text/html; charset=utf-8");
    let page = page.text().await.expect("body");
    assert!(page.contains(&format!("<code id=\"issuer\">{issuer}</code>")));
    assert!(page.contains("<option>RS256</option><option>ES256</option><option>EdDSA</option>"));

    let form = serde_json::json!({
        "sub": "carol",
        "permissions": "read,write",
        "alg": "ES256",
        "claims": { "tenant": "t1" },
        "url": "http://127.0.0.1:9/",
    });
    let (status, minted) = console_call(&console, "mint", &form).await;
    assert_eq!(status, 200, "{minted}");
    let token = minted["token"].as_str().expect("a token");
    assert_eq!(minted["header"]["alg"], "ES256");
    assert_eq!(minted["payload"]["iss"], issuer.as_str());
    assert_eq!(minted["payload"]["aud"], "https://api.example.com");
    assert_eq!(minted["payload"]["sub"], "carol");
    assert_eq!(minted["payload"]["tenant"], "t1");
    assert_eq!(
        minted["curl"],
        format!("curl -i http://127.0.0.1:9/ -H 'Authorization: Bearer {token}'")
    );

    let (status, report) =
        console_call(&console, "explain", &serde_json::json!({ "token": token })).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], true, "{report}");
    let other = serde_json::json!({ "token": token, "audience": "https://other.example" });
    let (status, report) = console_call(&console, "explain", &other).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["accepted"], false, "{report}");

    // What the console cannot do is a 400 with the reason.
    for (form, error) in [
        (
            serde_json::json!({ "alg": "HS256" }),
            "this issuer publishes no HS256 key",
        ),
        (
            serde_json::json!({ "alg": "XS1" }),
            "unknown algorithm \"XS1\"",
        ),
        (
            serde_json::json!({ "claims": [1] }),
            "extra claims must be a JSON object",
        ),
    ] {
        let (status, answer) = console_call(&console, "mint", &form).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)));
    }
    let (status, answer) = console_call(&console, "explain", &serde_json::json!({})).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .expect("an error")
            .contains("token"),
        "{answer}"
    );
    let missing = http
        .get(format!("{console}console/other"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text().await.expect("body"), "not found");

    // After a rotation the console signs with the new key.
    let mut stdin = serve.stdin.take().expect("stdin");
    let kid = support::rotate(&mut stdin, &mut output).await;
    let (status, minted) = console_call(&console, "mint", &serde_json::json!({})).await;
    assert_eq!(status, 200, "{minted}");
    assert_eq!(minted["header"]["kid"], kid);
    assert_eq!(minted["header"]["alg"], "RS256");
    let _ = serve.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn apikey_new_prints_a_key_once_and_an_entry_that_makes_it_work() {
    use tower_jwt_auth::{JwtAuthConfig, StandardClaims, Verifier};
    let (code, out, err) = run(
        &[
            "apikey",
            "new",
            "--id",
            "partner-7",
            "--permissions",
            "read,write",
            "--prefix",
            "sk_test_",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    // The key on standard error after its note, the entry alone on standard output.
    let key = err.lines().nth(1).expect("the key after the note").trim();
    assert!(err.contains("shown once"), "{err}");
    assert!(key.starts_with("sk_test_") && key.len() >= 8 + 43, "{key}");
    let entry = out.as_str();
    assert!(entry.starts_with("[[api_keys]]"), "{entry}");
    assert!(
        !entry.contains("sk_test_"),
        "the entry holds the digest, never the key"
    );
    assert!(
        entry.contains("permissions = [\"read\", \"write\"]"),
        "{entry}"
    );

    let dir = std::env::temp_dir().join(format!("jwt-auth-apikey-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("keys.toml");
    std::fs::write(&path, format!("prefix = \"sk_test_\"\n\n{entry}")).expect("write");
    let config = JwtAuthConfig::builder()
        .api_keys_file(&path)
        .build()
        .expect("the printed entry builds");
    let verifier = Verifier::new(config);
    let verified = verifier
        .verify_token::<StandardClaims>(key)
        .expect("the printed key works");
    assert_eq!(verified.claims.sub.as_deref(), Some("partner-7"));
    assert!(verified.permissions().contains("write"));
    assert!(verifier.verify::<StandardClaims>("sk_test_other").is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn apikey_new_refuses_a_prefix_the_layer_would_refuse() {
    for prefix in ["eyJ", "sk", "sk live"] {
        let (code, out, err) = run(&["apikey", "new", "--id", "a", "--prefix", prefix], None).await;
        assert_ne!(code, 0, "{prefix}: {out}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("--prefix"), "{err}");
    }
}
