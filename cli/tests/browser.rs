//! The console page of `jwt-auth serve` in a real headless browser: Debian's chromium,
//! driven through chromedriver over the WebDriver protocol. A token minted through the
//! form is read from the page and used on a protected server; an expired token pasted
//! into the explain box is explained as expired. Screenshots go to the test's output
//! folder. Without chromium and chromedriver the test fails and says how to get them
//! (`.ci/run` installs them).

use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tower_jwt_auth::{JwtAuthConfig, JwtAuthLayer};

mod support;

use support::BIN;
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A WebDriver session on a chromedriver of its own; both end when dropped.
struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Child,
}

impl Browser {
    async fn start(profile: &std::path::Path) -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install Debian's chromium and chromium-driver \
                     (apt-get install chromium chromium-driver); .ci/run does"
                )
            });
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1200,1600",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let session: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        Self {
            http,
            base: format!("{base}/session/{id}"),
            _driver: driver,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The element, waiting up to 10 s for the page to have it.
    async fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({ "using": "css selector", "value": css })),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {found}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the element's text satisfies `done`, for up to 10 s.
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

    async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("png");
        std::fs::write(path, bytes).expect("screenshot");
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

async fn whoami(claims: tower_jwt_auth::Claims<tower_jwt_auth::StandardClaims>) -> String {
    claims.sub.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_in_the_page_use_the_token_and_explain_an_expired_one() {
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
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
