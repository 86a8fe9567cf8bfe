//! A real `redis-server` on a free loopback port, persistence off, killed when dropped.
//!
//! The tests that use it never skip: without the Debian package `redis-server` they
//! fail and say how to get it (`.ci/run` installs it).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a port the OS has just handed out, and waits until it answers.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = Self { port, child: None };
        server.restart();
        server
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

    /// Starts the server again on the same port, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
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
                    "cannot start redis-server ({e}). These tests need a real Redis server: \
                     install the Debian package with `apt-get install redis-server` \
                     (CI's .ci/run does), or put a redis-server binary on PATH"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.try_command(&["PING"]).as_deref() == Some("PONG") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on port {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends one command and returns the reply as text (integers and simple strings
    /// as they are, nil as `(nil)`, arrays one element per line).
    pub fn command(&self, args: &[&str]) -> String {
        self.try_command(args).expect("redis answers")
    }

    fn try_command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        read_reply(&mut reader)
    }
}

fn read_reply(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let line = line.trim_end();
    let (kind, rest) = line.split_at_checked(1)?;
    match kind {
        "+" | ":" => Some(rest.to_owned()),
        "-" => Some(format!("ERR {rest}")),
        "$" => {
            let len: i64 = rest.parse().ok()?;
            if len < 0 {
                return Some("(nil)".into());
            }
            let mut buf = vec![0u8; usize::try_from(len).ok()? + 2];
            reader.read_exact(&mut buf).ok()?;
            buf.truncate(buf.len() - 2);
            String::from_utf8(buf).ok()
        }
        "*" => {
            let n: i64 = rest.parse().ok()?;
            let mut items = Vec::new();
            for _ in 0..n.max(0) {
                items.push(read_reply(reader)?);
            }
            Some(items.join("\n"))
        }
        _ => None,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
