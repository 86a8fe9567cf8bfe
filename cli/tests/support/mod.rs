//! Shared by the CLI tests: `jwt-auth serve` started as a child process.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_jwt-auth");

/// `jwt-auth serve --port 0` with these extra arguments, killed when dropped, and the
/// issuer and console URLs it prints.
pub async fn serve(extra: &[&str]) -> (Child, String, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("serve");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut issuer, mut console) = (String::new(), String::new());
    while issuer.is_empty() || console.is_empty() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("serve prints its addresses")
            .expect("read")
            .expect("a line");
        if let Some(url) = line.strip_prefix("issuer") {
            issuer = url.trim().to_owned();
        } else if let Some(url) = line.strip_prefix("console") {
            console = url.trim().to_owned();
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, issuer, console)
}
