//! `jwt-auth gate` started as a child process on a settings file, and the pieces its
//! tests share: a mock issuer, an upstream that shows what reached it, free ports.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tower_jwt_auth::testing::MockIssuer;

use super::BIN;

/// The `[gate]` table the tests share, as the guide writes it: reading documents needs
/// `read`, any other method `write`; `/public/` is public; `sub` and `client_id` are
/// forwarded; Envoy's prefix is `/check`.
pub const ROUTES: &str = r#"
[gate]
forward_claims = ["sub", "client_id"]
path_prefix = "/check"

[[gate.routes]]
path = "/documents*"
methods = ["GET"]
require = ["read"]

[[gate.routes]]
path = "/documents*"
require = ["write"]

[[gate.routes]]
path = "/public/*"
public = true
"#;

/// A running gate, killed when dropped.
pub struct Gate {
    pub child: Child,
    /// `http://127.0.0.1:<port>`, the decision endpoint.
    pub url: String,
    /// The operations listener, when started with it.
    pub ops: Option<String>,
    /// What it prints on standard error (its log), line by line.
    pub log: mpsc::UnboundedReceiver<String>,
}

impl Gate {
    /// `jwt-auth gate --config <config> --listen 127.0.0.1:0 [--ops-listen 127.0.0.1:0]`.
    pub async fn start(config: &Path, ops: bool) -> Self {
        Self::start_with_env(config, ops, &[]).await
    }

    /// [`start`](Self::start) with environment variables added.
    pub async fn start_with_env(config: &Path, ops: bool, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("gate")
            .arg("--config")
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if ops {
            command.args(["--ops-listen", "127.0.0.1:0"]);
        }
        let mut child = command.spawn().expect("jwt-auth gate");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut errors = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
        let (sender, log) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                let _ = sender.send(line);
            }
        });
        let (mut url, mut ops_url) = (String::new(), None);
        while url.is_empty() || (ops && ops_url.is_none()) {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the gate prints its addresses")
                .expect("read")
                .unwrap_or_else(|| panic!("the gate stopped before printing its address"));
            if let Some(address) = line.strip_prefix("gate on ") {
                url = address.trim().to_owned();
            } else if let Some(address) = line.strip_prefix("operations on ") {
                ops_url = Some(address.trim().to_owned());
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            url,
            ops: ops_url,
            log,
        }
    }

    /// The log lines printed so far.
    pub fn drain_log(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.log.try_recv() {
            lines.push(line);
        }
        lines
    }
}

/// The settings lines that trust `issuer`, for the top of a gate's file.
pub fn trust(issuer: &MockIssuer) -> String {
    format!(
        "[[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\n",
        issuer.issuer(),
        issuer.audience()
    )
}

/// A client that never goes through a proxy the environment names.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Polls `probe` every 20 ms until it says yes, for at most `bound`.
pub async fn eventually(bound: Duration, what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + bound;
    while !probe().await {
        assert!(
            tokio::time::Instant::now() < give_up,
            "not within {bound:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
