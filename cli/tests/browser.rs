//! The console page of `jwt-auth serve` in a real headless browser: Debian's chromium,
//! driven through chromedriver with fantoccini. A token minted through the form is read
//! from the page and used on a protected server; an expired token pasted into the explain
//! box is explained as expired. Screenshots go to the test's output folder.
//!
//! Ignored by a plain `cargo test`, since most machines have no browser; run it with
//! `cargo test --all-features -p jwt-auth-cli --test browser -- --ignored`. Without
//! chromium and chromedriver it fails and prints the command that installs them.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};

mod support;

use support::BIN;

const INSTALL: &str = "apt-get install chromium chromium-driver";

/// How often chromedriver gets a fresh port before the test gives up on it.
const DRIVER_ATTEMPTS: usize = 5;

/// The executable `name` as found on `PATH`, or a failure that says how to install it.
fn installed(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not on PATH: this test needs Debian's chromium and chromedriver; \
                 install them with `{INSTALL}`"
            )
        })
}

/// A port that was free a moment ago; someone else may take it before chromedriver
/// binds it, which `Driver::start` survives by trying again.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// chromedriver listening on a loopback port of its own; dropping it stops chromedriver
/// and any browser it still runs.
struct Driver {
    port: u16,
    url: String,
    _process: Child,
}

impl Driver {
    async fn start(program: &Path) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut failures = Vec::new();
        for _ in 0..DRIVER_ATTEMPTS {
            let port = free_port();
            let mut process = Command::new(program)
                .arg(format!("--port={port}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {} ({e}); install it with `{INSTALL}`",
                        program.display()
                    )
                });
            let url = format!("http://127.0.0.1:{port}");
            match Self::listening(&mut process, port, &http, &url).await {
                Ok(()) => {
                    return Self {
                        port,
                        url,
                        _process: process,
                    };
                }
                Err(why) => {
                    failures.push(format!("port {port}: {why}"));
                    let _ = process.kill().await;
                }
            }
        }
        panic!("chromedriver never came up: {}", failures.join("; "));
    }

    /// Whether this very process bound `port` and answers `/status` there. The line it
    /// prints once bound tells it apart from whatever else may have taken the port: a
    /// chromedriver that loses the port exits instead of printing it.
    async fn listening(
        process: &mut Child,
        port: u16,
        http: &reqwest::Client,
        url: &str,
    ) -> Result<(), String> {
        let stdout = process.stdout.take().expect("stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let started = format!("started successfully on port {port}");
        let bound = async {
            // Its last words say why it gave up, such as a port already in use.
            let mut last = String::new();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) if line.contains(&started) => return Ok(()),
                    Ok(Some(line)) => last = line,
                    Ok(None) => return Err(format!("it exited before listening: {last}")),
                    Err(e) => return Err(format!("its output: {e}")),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), bound)
            .await
            .map_err(|_| "it did not listen within 20 s".to_owned())??;
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let status: Value = http
            .get(format!("{url}/status"))
            .send()
            .await
            .map_err(|e| format!("/status: {e}"))?
            .json()
            .await
            .map_err(|e| format!("/status: {e}"))?;
        if status["value"]["ready"] == true {
            Ok(())
        } else {
            Err(format!("/status says it is not ready: {status}"))
        }
    }
}

impl Drop for Driver {
    /// Killing chromedriver alone would leave its chromium running, holding the profile,
    /// whenever a failure ends the test before the session: its shutdown command closes
    /// the browsers first and answers once they are gone. Drop cannot await, so this is a
    /// plain blocking request; the process is killed afterwards in any case.
    fn drop(&mut self) {
        let shutdown = || -> std::io::Result<()> {
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
            let mut stream =
                std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
            stream.set_write_timeout(Some(Duration::from_secs(2)))?;
            stream.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(
                stream,
                "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                self.port
            )?;
            std::io::copy(&mut stream, &mut std::io::sink())?;
            Ok(())
        };
        let _ = shutdown();
    }
}

/// A WebDriver session in headless chromium, on a chromedriver of its own; dropping it
/// stops both.
struct Browser {
    client: Client,
    _driver: Driver,
}

impl Browser {
    async fn start(profile: &Path) -> Self {
        let chromium = installed("chromium");
        let driver = Driver::start(&installed("chromedriver")).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1200,1600",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| {
                panic!("no browser session ({e}); chromium comes with `{INSTALL}`")
            });
        Self {
            client,
            _driver: driver,
        }
    }

    async fn go(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element, once the page has it; the page fills itself in by script.
    async fn element(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.element(css).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn click(&self, css: &str) {
        self.element(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn text(&self, css: &str) -> String {
        self.element(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// The element's text once it satisfies `done`, for up to 10 s: the page answers
    /// after a request of its own, so there is nothing to wait on but the text itself.
    async fn wait_for(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text(css).await;
            if done(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{css} never became ready: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, path: &Path) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, png).expect("screenshot");
    }

    /// Ends the session, which closes chromium and lets go of its profile.
    async fn quit(self) {
        self.client.close().await.expect("end the session");
    }
}

async fn whoami(claims: tower_jwt_auth::Claims<tower_jwt_auth::StandardClaims>) -> String {
    claims.sub.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromedriver: run scripts/test-services"]
async fn mint_in_the_page_use_the_token_and_explain_an_expired_one() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&out).expect("output folder");
    let keys = out.join("keys.json");
    let (mut serve, issuer, console) =
        support::serve(&["--key-file", keys.to_str().expect("utf-8")]).await;

    // A protected API trusting the issuer, keys by discovery.
    let config = JwtAuthConfig::builder()
        .issuer(issuer.clone())
        .audience("https://api.example.com")
        .build()
        .expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let api = format!("http://{}/", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/", get(whoami))
        .layer(JwtAuthLayer::new(config));
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A fresh profile: a browser left over from an interrupted run may hold an old one.
    let profile = out.join(format!("profile-{}", std::process::id()));
    let browser = Browser::start(&profile).await;
    browser.go(&console).await;
    browser.fill("#sub", "carol").await;
    browser.fill("#permissions", "read,write").await;
    browser.fill("#url", &api).await;
    browser.click("#mint-button").await;
    let token = browser.wait_for("#token", |t| t.starts_with("ey")).await;
    let curl = browser.text("#curl").await;
    assert!(curl.contains(&api), "{curl}");
    browser.screenshot(&out.join("console-minted.png")).await;

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let answer = http
        .get(&api)
        .bearer_auth(&token)
        .send()
        .await
        .expect("api");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "carol");

    // An expired token, minted by the CLI with the same keys, explained in the page.
    let expired = Command::new(BIN)
        .args([
            "mint",
            "--issuer",
            &issuer,
            "--expires-in",
            "-600",
            "--key-file",
            keys.to_str().expect("utf-8"),
        ])
        .output()
        .await
        .expect("mint");
    let expired = String::from_utf8(expired.stdout).expect("utf-8");
    browser.fill("#pasted", expired.trim()).await;
    browser.click("#explain-button").await;
    let verdict = browser.wait_for("#verdict", |t| !t.is_empty()).await;
    assert!(verdict.contains("refused: token expired"), "{verdict}");
    let report = browser.text("#report").await;
    assert!(report.contains("failed · expiry"), "{report}");
    browser.screenshot(&out.join("console-explained.png")).await;
    browser.quit().await;
    let _ = serve.kill().await;
    let _ = std::fs::remove_dir_all(&profile);
}
