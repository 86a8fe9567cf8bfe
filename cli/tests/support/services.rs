//! Programs from outside the Rust toolchain (nginx, Caddy, redis-server), each started on
//! a free loopback port with its files in a scratch directory and killed when dropped,
//! and the upstream the proxies protect. The tests that use them are `#[ignore]`d with
//! the program they need; `scripts/test-services` installs it and runs them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, Method, Uri};

/// A child process, killed and reaped when dropped.
pub struct Program {
    child: Child,
    pub port: u16,
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free when asked (not reserved: a program that loses it to another
/// process exits, and the start is tried again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Starts `program` with `args` made for a port, until it answers on that port.
/// `package` names the Debian package in the message when it is missing.
async fn start(
    program: &str,
    package: &str,
    log: &Path,
    env: &[(&str, &Path)],
    args: impl Fn(u16) -> Vec<String>,
) -> Program {
    // nginx lives in /usr/sbin, which a user's PATH may lack.
    let sbin = Path::new("/usr/sbin").join(program);
    let program = if sbin.exists() {
        sbin.to_str().unwrap_or(program)
    } else {
        program
    };
    for _ in 0..5 {
        let port = free_port();
        let child = Command::new(program)
            .args(args(port))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).map_or_else(|_| Stdio::null(), Stdio::from))
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {program} ({error}). This test needs a real {program}: run \
                     `scripts/test-services`, which installs it, or install it yourself with \
                     `sudo apt-get install {package}`"
                )
            });
        let mut started = Program { child, port };
        if answering(&mut started).await {
            return started;
        }
    }
    panic!("{program} found no free loopback port in five tries");
}

/// Waits until the program accepts connections on its port; `false` when it exited.
async fn answering(program: &mut Program) -> bool {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if program.child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", program.port))
            .await
            .is_ok()
        {
            return true;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "nothing answered on port {} within 15 s",
            program.port
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// nginx in the foreground, one process, with `server` (its `{port}` replaced) as the
/// one server block and every file it writes under `dir`.
pub async fn nginx(dir: &Path, server: &str) -> Program {
    let dir = dir.to_owned();
    let server = server.to_owned();
    start(
        "nginx",
        "nginx",
        &dir.join("stderr.log"),
        &[],
        move |port| {
            let d = dir.display();
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{}\n}}\n",
                server.replace("{port}", &port.to_string())
            );
            let file = dir.join("nginx.conf");
            std::fs::write(&file, conf).expect("nginx.conf");
            vec![
                "-p".into(),
                d.to_string(),
                "-c".into(),
                file.display().to_string(),
                "-e".into(),
                format!("{d}/error.log"),
            ]
        },
    )
    .await
}

/// Caddy with `site` (its `{port}` replaced) as its Caddyfile's one site, no admin
/// endpoint, no automatic HTTPS, its data under `dir`.
pub async fn caddy(dir: &Path, site: &str) -> Program {
    let home = dir.to_owned();
    let dir = dir.to_owned();
    let site = site.to_owned();
    // Caddy keeps its state under HOME (XDG_DATA_HOME, XDG_CONFIG_HOME).
    let env = [
        ("HOME", &*home),
        ("XDG_DATA_HOME", &*home),
        ("XDG_CONFIG_HOME", &*home),
    ];
    start(
        "caddy",
        "caddy",
        &home.join("caddy.log"),
        &env,
        move |port| {
            let file = dir.join("Caddyfile");
            let text = format!(
                "{{\n  admin off\n  auto_https off\n  storage file_system {}\n}}\n{}\n",
                dir.join("data").display(),
                site.replace("{port}", &port.to_string())
            );
            std::fs::write(&file, text).expect("Caddyfile");
            vec![
                "run".into(),
                "--config".into(),
                file.display().to_string(),
                "--adapter".into(),
                "caddyfile".into(),
            ]
        },
    )
    .await
}

/// redis-server, persistence off, its log in `dir`.
pub async fn redis(dir: &Path) -> Program {
    start(
        "redis-server",
        "redis-server",
        &dir.join("redis.log"),
        &[],
        |port| {
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ]
            .map(str::to_owned)
            .to_vec()
        },
    )
    .await
}

/// The service behind the proxies: it answers every request with what reached it, the
/// method, the path and every `x-jwt-sub` header it got.
pub async fn upstream() -> (String, tokio::task::JoinHandle<()>) {
    async fn echo(method: Method, uri: Uri, headers: HeaderMap) -> Json<serde_json::Value> {
        let subs: Vec<&str> = headers
            .get_all("x-jwt-sub")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Json(serde_json::json!({
            "method": method.as_str(),
            "path": uri.path(),
            "x-jwt-sub": subs,
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(echo);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}
