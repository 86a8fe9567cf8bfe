//! A real `redis-server` on a free loopback port, persistence off, killed when dropped.
//!
//! The tests that use it are `#[ignore]`d with the reason, so that `cargo test` passes on
//! a machine with Rust alone; `scripts/test-services` installs `redis-server` and runs
//! them. Run without it, they fail and say how to get it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

/// How a launch on one port ended.
enum Launch {
    Answering(Child),
    /// The server exited at once: another process took the port meanwhile.
    PortTaken,
}

impl RedisServer {
    /// Starts a server on a port the OS has just handed out, and waits until it answers.
    /// The port is free when handed out but not reserved: if another process takes it
    /// before the server binds it, the server exits and another port is tried.
    pub async fn start() -> Self {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let mut server = Self { port, child: None };
            if let Launch::Answering(child) = server.launch().await {
                server.child = Some(child);
                return server;
            }
        }
        panic!("redis-server found no free loopback port in five tries");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (its clients know it), and waits until
    /// it answers.
    pub async fn restart(&mut self) {
        self.kill();
        match self.launch().await {
            Launch::Answering(child) => self.child = Some(child),
            Launch::PortTaken => panic!("port {} was taken while redis-server was down", self.port),
        }
    }

    async fn launch(&self) -> Launch {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}). This test needs a real Redis server: \
                     run `scripts/test-services`, which installs it, or install it yourself \
                     with `sudo apt-get install redis-server`"
                )
            });
        // A process that starts and loads can take longer than one wait usually allows.
        let answering = super::eventually_within(
            Duration::from_secs(10),
            &format!("redis-server answering on port {}", self.port),
            async || {
                // Our server exited: another process holds the port.
                if child.try_wait().ok().flatten().is_some() {
                    return Some(false);
                }
                // Whoever answers must be our server, not one a parallel test started on
                // a port it was handed just before us.
                let ours = format!("process_id:{}", child.id());
                let info = self.try_command(&["INFO", "server"]).unwrap_or_default();
                info.lines().any(|line| line.trim() == ours).then_some(true)
            },
        )
        .await;
        if answering {
            Launch::Answering(child)
        } else {
            // Already reaped by `try_wait`: this returns the status it kept.
            let _ = child.wait();
            Launch::PortTaken
        }
    }

    /// Sends one command and returns the reply as text (integers and simple strings
    /// as they are, nil as `(nil)`, arrays one element per line).
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args).expect("redis answers")
    }

    fn try_command(&self, args: &[&str]) -> Option<String> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut connection = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()?;
        let (name, rest) = args.split_first()?;
        match redis::cmd(name)
            .arg(rest)
            .query::<redis::Value>(&mut connection)
        {
            Ok(value) => Some(render(&value)),
            Err(error) => Some(format!("ERR {error}")),
        }
    }
}

/// A reply as text: integers and simple strings as they are, nil as `(nil)`, arrays
/// one element per line.
fn render(value: &redis::Value) -> String {
    use redis::Value;
    match value {
        Value::Nil => "(nil)".into(),
        Value::Int(n) => n.to_string(),
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(text) => text.clone(),
        Value::Okay => "OK".into(),
        Value::Array(items) | Value::Set(items) => {
            items.iter().map(render).collect::<Vec<_>>().join("\n")
        }
        other => format!("{other:?}"),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
