//! Shared by the CLI tests: `jwt-auth serve` started as a child process.
#![allow(dead_code)]

pub mod gate;
pub mod services;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

pub const BIN: &str = env!("CARGO_BIN_EXE_jwt-auth");

/// A fresh directory for one test's files, under the target directory.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// `jwt-auth serve --port 0` with these extra arguments, killed when dropped, and the
/// issuer and console URLs it prints.
pub async fn serve(extra: &[&str]) -> (Child, String, String) {
    let (child, issuer, console, _) = serve_with_output(extra).await;
    (child, issuer, console)
}

/// [`serve`], and the lines it prints after its addresses, for tests that talk to it on
/// standard input and wait for its answers.
pub async fn serve_with_output(
    extra: &[&str],
) -> (Child, String, String, mpsc::UnboundedReceiver<String>) {
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
    // Keep draining its output, whether or not anyone still listens, so that it never
    // blocks on a full pipe.
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = sender.send(line);
        }
    });
    (child, issuer, console, receiver)
}

/// The next line `serve` prints that starts with `prefix`, waiting at most 10 s.
pub async fn line_starting(output: &mut mpsc::UnboundedReceiver<String>, prefix: &str) -> String {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = output.recv().await {
            if line.starts_with(prefix) {
                return line;
            }
        }
        panic!("serve ended before printing {prefix:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("serve printed no line starting with {prefix:?}"))
}

/// Sends `rotate` to `serve` and waits for its answer: the `kid` it now signs with.
pub async fn rotate(
    stdin: &mut ChildStdin,
    output: &mut mpsc::UnboundedReceiver<String>,
) -> String {
    stdin.write_all(b"rotate\n").await.expect("rotate");
    let line = line_starting(output, "now signing with").await;
    line.trim_start_matches("now signing with ")
        .split(' ')
        .next()
        .expect("a kid")
        .to_owned()
}
