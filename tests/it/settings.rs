//! Configuration from files and the environment: every option reachable from a file (in
//! TOML, YAML and JSON), a table of bad files with the exact path of the bad field, the
//! environment with `*_FILE` secrets, and a file-built layer over real HTTP.

use std::path::PathBuf;

use crate::support::{Server, ec_key, rsa_key, rsa_key_2, token};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tower_jwt_auth::settings::{Format, Settings};
use tower_jwt_auth::{ConfigErrorKind, JwtAuthLayer};

/// A scratch directory for files these tests write; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tower-jwt-auth-settings-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The configuration `text` describes, built.
fn built(
    text: &str,
    format: Format,
) -> Result<tower_jwt_auth::JwtAuthConfig, tower_jwt_auth::ConfigError> {
    Settings::parse(text, format)
        .and_then(Settings::builder)
        .and_then(tower_jwt_auth::JwtAuthConfigBuilder::build)
}

/// Every section and field of the model, in TOML.
fn full_toml(pem_file: &str, secret_file: &str) -> String {
    format!(
        r#"
audiences = ["https://api.example.com"]
leeway = "30s"
max_lifetime = "6h"
algorithms = ["ES256"]
typ = "lenient"
required_claims = ["sub"]
max_token_len = 16384
realm = "api"
permission_claims = ["realm_access.roles"]
required_permissions = []
allowed_clients = ["web-app"]
mtls = "allowed"

[[issuers]]
issuer = "https://idp.example.com/"
audiences = ["https://api.example.com", "https://other.example.com"]
algorithms = ["ES256"]
pem_file = "{pem_file}"

[token]
bearer = true
cookie = "access_token"
websocket_protocol = "bearer."
query = "access_token"
query_paths = ["/events"]

[cache]
max_entries = 1000
max_bytes = 1048576
ttl = "5m"

[resource]
resource = "https://api.example.com"
name = "Example API"
documentation = "https://docs.example.com"
scopes = ["read", "write"]

[remote]
refresh_interval = "10m"
fetch_timeout = "3s"
unknown_kid_cooldown = "20s"
max_staleness = "1d"

[claims.require]
email_verified = true
[claims.if_present]
tier = ["gold", "platinum"]

[[exempt]]
path = "/health"
[[exempt]]
prefix = "/public/"
method = "GET"
[[exempt]]
glob = "/grpc.health.v1.Health/*"

[forward]
claims = {{ sub = "x-jwt-sub" }}
payload = "x-jwt-payload"
remove_authorization = false

[telemetry]
subject = "hashed"

[client_cert]
secret_header = "x-proxy-secret"
secret_file = "{secret_file}"
trusted_peers = ["10.0.0.5", "fd00::5"]

[state]
single_use = false
revocation = true
store = "memory"
revocation_retention = "12h"
failure = "closed"

[dpop]
mode = "allowed"
algorithms = ["ES256", "EdDSA"]
iat_window = "30s"
public_base_url = "https://api.example.com"
nonce_secret_file = "{secret_file}"
nonce_lifetime = "2m"
max_live_proofs_per_key = 500

[introspection]
client_id = "api"
client_secret_file = "{secret_file}"
auth = "client_secret_post"
endpoint = "https://idp.example.com/introspect"
cache_ttl = "30s"
negative_ttl = "2s"
max_entries = 500
rate_limit = 20
timeout = "1s"
always = false
audience_optional = false
signed_answers = false
opaque_token_prefixes = ["ory_at_"]
opaque_token_min_length = 40
opaque_token_max_length = 512
"#
    )
}

#[test]
fn every_option_is_reachable_from_a_file_in_each_format() {
    let scratch = Scratch::new("full");
    let pem = scratch.write("issuer.pem", &ec_key().public_pem().expect("pem"));
    let secret = scratch.write("secret", &format!("{}\n", "s".repeat(40)));
    let text = full_toml(&pem.display().to_string(), &secret.display().to_string());
    let toml_path = scratch.write("config.toml", &text);
    let from_toml = Settings::from_file(&toml_path).expect("toml parses");
    let config = from_toml.clone().builder().expect("applies").build();
    let config = config.expect("builds");
    assert_eq!(config.issuers().count(), 1);
    let metadata = config.protected_resource_metadata().expect("resource");
    assert_eq!(metadata.document()["resource_name"], "Example API");
    assert_eq!(
        metadata.document()["dpop_bound_access_tokens_required"],
        false
    );

    // The same settings in JSON and YAML parse to the same model.
    let value: toml::Value = toml::from_str(&text).expect("toml value");
    let json = serde_json::to_string(&value).expect("json");
    let from_json = Settings::parse(&json, Format::Json).expect("json parses");
    assert_eq!(format!("{from_json:?}"), format!("{from_toml:?}"));
    let yaml = json_to_yaml(&serde_json::from_str(&json).expect("json value"), 0);
    let from_yaml = Settings::parse(&yaml, Format::Yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    assert_eq!(format!("{from_yaml:?}"), format!("{from_toml:?}"));
}

#[test]
fn max_token_lifetime_is_read_as_the_revocation_retention() {
    let settings = Settings::parse(
        "[state]\nrevocation = true\nmax_token_lifetime = \"12h\"\n",
        Format::Toml,
    )
    .expect("the former name parses");
    assert_eq!(effective(&settings)["state"]["revocation_retention"], "12h");
}

/// The settings with every default filled in, as JSON.
fn effective(settings: &Settings) -> serde_json::Value {
    let text = settings.render(Format::Json).expect("renders");
    serde_json::from_str(&text).expect("JSON")
}

/// A block-style YAML rendering of a JSON value (strings quoted as JSON, which YAML reads).
fn json_to_yaml(value: &serde_json::Value, indent: usize) -> String {
    use serde_json::Value;
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Object(m) if !m.is_empty() => {
                    format!("{pad}{k}:\n{}", json_to_yaml(v, indent + 2))
                }
                Value::Array(a) if !a.is_empty() => {
                    format!("{pad}{k}:\n{}", json_to_yaml(v, indent + 2))
                }
                _ => format!("{pad}{k}: {}\n", scalar(v)),
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(_) => {
                    let inner = json_to_yaml(item, indent + 2);
                    format!("{pad}- {}", inner.trim_start())
                }
                _ => format!("{pad}- {}\n", scalar(item)),
            })
            .collect(),
        other => format!("{pad}{}\n", scalar(other)),
    }
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(m) if m.is_empty() => "{}".into(),
        serde_json::Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

#[test]
fn bad_files_name_the_path_and_line_of_the_bad_field() {
    // Shape errors are found when the file is read, the rest when the options are
    // compiled: both name the field's path and its line.
    let cases: [(&str, &str, usize); 10] = [
        (
            "[[issuers]]\nissuer = \"https://idp.example.com/\"\naudiance = [\"x\"]\n",
            "issuers[0].audiance",
            3,
        ),
        (
            "leeway = 60\n[[issuers]]\nissuer = \"https://idp.example.com/\"\n",
            "leeway",
            1,
        ),
        (
            "leeway = \"60 seconds\"\n[[issuers]]\nissuer = \"https://idp.example.com/\"\n",
            "leeway",
            1,
        ),
        (
            "[[issuers]]\nissuer = \"https://a.example.com/\"\naudiences = [\"x\"]\n[[issuers]]\nissuer = \"\"\n",
            "issuers[1].issuer",
            5,
        ),
        (
            "[[issuers]]\nissuer = \"http://idp.example.com/\"\naudiences = [\"x\"]\n",
            "issuers[0].issuer",
            2,
        ),
        (
            "[[issuers]]\nissuer = \"https://idp.example.com/\"\naudiences = [\"x\", \"\"]\n",
            "issuers[0].audiences[1]",
            3,
        ),
        (
            "algorithms = [\"ES256\", \"HS257\"]\n[[issuers]]\nissuer = \"https://idp.example.com/\"\naudiences = [\"x\"]\n",
            "algorithms[1]",
            1,
        ),
        (
            "[dpop]\nmode = \"sometimes\"\n[[issuers]]\nissuer = \"https://idp.example.com/\"\n",
            "dpop.mode",
            2,
        ),
        (
            "[token]\nquery = \"access_token\"\nquery_paths = [\"/events\", \"events/*\"]\n[[issuers]]\nissuer = \"https://idp.example.com/\"\naudiences = [\"x\"]\n",
            "token.query_paths[1]",
            3,
        ),
        (
            "[token]\nquery = \"access_token\"\n[[issuers]]\nissuer = \"https://idp.example.com/\"\naudiences = [\"x\"]\n",
            "token.query",
            2,
        ),
    ];
    for (text, path, line) in cases {
        let error = built(text, Format::Toml).expect_err(path);
        assert_eq!(error.path(), Some(path), "{error}");
        assert_eq!(error.line(), Some(line), "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("{path} (line {line}): ")),
            "{error}"
        );
    }
    // JSON gives lines too.
    let error = Settings::parse("{\n  \"issuers\": [],\n  \"leeway\": 5\n}", Format::Json)
        .expect_err("wrong type");
    assert_eq!(
        (error.path(), error.line()),
        (Some("leeway"), Some(3)),
        "{error}"
    );
    // YAML names the path.
    let error = Settings::parse("issuers:\n  - issuer: x\n    bogus: 1\n", Format::Yaml)
        .expect_err("unknown field");
    assert!(
        error.path().is_some_and(|p| p.starts_with("issuers[0]")),
        "{error}"
    );
    // And an unknown extension is refused.
    let error = Settings::from_file("config.ini").expect_err("extension");
    assert_eq!(error.kind(), ConfigErrorKind::InvalidSettings);
}

#[test]
fn the_environment_covers_the_single_issuer_case_with_secrets_from_files() {
    let scratch = Scratch::new("env");
    let secret = scratch.write("hmac", &format!("{}\n", "k".repeat(48)));
    let vars = [
        ("JWT_ISSUER", "https://idp.example.com/"),
        ("JWT_AUDIENCE", "api-1, api-2"),
        ("JWT_LEEWAY", "15s"),
        ("JWT_ALGORITHMS", "HS256"),
        ("JWT_HMAC_SECRET_FILE", secret.to_str().expect("utf-8")),
        ("JWT_ALLOWED_CLIENTS", "web"),
        ("OTHER_VARIABLE", "ignored"),
    ];
    let settings = Settings::from_vars("JWT_", vars).expect("reads");
    let seen = effective(&settings);
    assert_eq!(seen["issuers"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        seen["issuers"][0]["audiences"],
        serde_json::json!(["api-1", "api-2"])
    );
    assert_eq!(seen["leeway"], "15s");
    let config = settings
        .builder()
        .expect("applies")
        .build()
        .expect("builds");
    assert_eq!(config.algorithms(), [tower_jwt_auth::Algorithm::HS256]);

    // JWT_PUBLIC_URL alone overrides the public URL a file gives DPoP.
    let file = Settings::parse(
        "audiences = [\"x\"]\n[[issuers]]\nissuer = \"https://idp.example.com/\"\n[dpop]\nmode = \"allowed\"\npublic_base_url = \"https://old.example.com\"\n",
        Format::Toml,
    )
    .expect("parses");
    let env = Settings::from_vars("JWT_", [("JWT_PUBLIC_URL", "https://api.example.com")])
        .expect("reads");
    let builder = env
        .apply(file.builder().expect("applies"))
        .expect("applies");
    let shown = format!("{builder:?}");
    assert!(shown.contains("https://api.example.com"), "{shown}");
    assert!(!shown.contains("old.example.com"), "{shown}");

    for (vars, variable) in [
        (vec![("JWT_LEEWAY", "soon")], "JWT_LEEWAY"),
        (vec![("JWT_ISSUR", "https://x/")], "JWT_ISSUR"),
        // What an application reads under the prefix is its own to filter out.
        (vec![("JWT_CONFIG", "api.toml")], "JWT_CONFIG"),
        (vec![("JWT_HMAC_SECRET", "inline")], "JWT_HMAC_SECRET"),
        (
            vec![("JWT_REPLAY_STORE_FILE", "/no/such/file")],
            "JWT_REPLAY_STORE_FILE",
        ),
        (vec![("JWT_DPOP", "maybe")], "JWT_DPOP"),
    ] {
        let error = Settings::from_vars("JWT_", vars).expect_err(variable);
        assert_eq!(error.path(), Some(variable), "{error}");
    }
}

async fn headers(headers: HeaderMap) -> String {
    headers
        .get("x-jwt-sub")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

#[tokio::test]
async fn a_layer_built_from_a_file_enforces_it_over_http() {
    let scratch = Scratch::new("http");
    let pem = scratch.write("issuer.pem", &ec_key().public_pem().expect("pem"));
    let text = format!(
        r#"
[[issuers]]
issuer = "{issuer}"
audiences = ["{audience}"]
pem_file = "{pem}"

[claims.require]
email_verified = true

[[exempt]]
path = "/health"

[forward]
claims = {{ sub = "x-jwt-sub" }}
"#,
        issuer = crate::support::ISSUER,
        audience = crate::support::AUDIENCE,
        pem = pem.display()
    );
    let path = scratch.write("api.toml", &text);
    let config = Settings::from_file(&path)
        .expect("parses")
        .builder()
        .expect("applies")
        .build()
        .expect("builds");
    let app = Router::new()
        .route("/", get(headers))
        .route("/health", get(|| async { "ok" }))
        .layer(JwtAuthLayer::new(config));
    let server = Server::start_router(app).await;
    let good = token(ec_key())
        .subject("file")
        .claim("email_verified", true)
        .sign();
    let answer = server.bearer(&good).await;
    answer.assert_ok();
    assert_eq!(answer.body, "file");
    server
        .bearer(&token(ec_key()).sign())
        .await
        .assert_invalid_token("required claim missing");
    server.get("/health", &[]).await.assert_ok();
    server.get("/", &[]).await.assert_no_token();
}

#[tokio::test]
async fn an_issuer_pinned_to_its_own_algorithms_refuses_the_builders() {
    const SECOND: &str = "https://second.example.com/";
    let scratch = Scratch::new("pinned");
    let pem = scratch.write("second.pem", &rsa_key_2().public_pem().expect("pem"));
    let jwks = serde_json::json!({ "keys": [rsa_key().public_jwk(), ec_key().public_jwk()] });
    let text = format!(
        r#"
algorithms = ["RS256"]
audiences = ["{audience}"]

[[issuers]]
issuer = "{issuer}"
jwks = '{jwks}'
algorithms = ["ES256"]

[[issuers]]
issuer = "{SECOND}"
pem_file = "{pem}"
"#,
        issuer = crate::support::ISSUER,
        audience = crate::support::AUDIENCE,
        pem = pem.display()
    );
    let config = built(&text, Format::Toml).expect("builds");
    let app = Router::new()
        .route("/", get(headers))
        .layer(JwtAuthLayer::new(config));
    let server = Server::start_router(app).await;
    server.bearer(&token(ec_key()).sign()).await.assert_ok();
    // RS256 is the top-level list and the issuer holds an RSA key, but it is pinned.
    server
        .bearer(&token(rsa_key()).sign())
        .await
        .assert_invalid_token("algorithm not allowed");
    // The other issuer keeps the top-level list.
    server
        .bearer(&token(rsa_key_2()).issuer(SECOND).sign())
        .await
        .assert_ok();
    // A pinned algorithm no key of the issuer verifies names the issuer's own field.
    let wrong = text.replace(r#"algorithms = ["ES256"]"#, r#"algorithms = ["EdDSA"]"#);
    let error = built(&wrong, Format::Toml).expect_err("no EdDSA key");
    assert_eq!(error.kind(), ConfigErrorKind::AlgorithmNotSupported);
    assert_eq!(
        (error.path(), error.line()),
        (Some("issuers[0].algorithms[0]"), Some(8)),
        "{error}"
    );
}

#[test]
fn the_minimal_shape_works_as_written() {
    let settings = Settings::parse(
        "[[issuers]]\nissuer = \"https://idp.example.com/\"\naudiences = [\"https://api.example.com\"]\n",
        Format::Toml,
    )
    .expect("parses");
    let config = settings
        .builder()
        .expect("applies")
        .build()
        .expect("builds");
    assert_eq!(
        config.issuers().collect::<Vec<_>>(),
        ["https://idp.example.com/"]
    );
    // A tenant template with its allow-list, keys by discovery (nothing is fetched).
    let template = Settings::parse(
        "[[issuers]]\nissuer = \"https://login.example.com/{tenant}/v2.0\"\ntenants = [\"acme\"]\naudiences = [\"api\"]\n",
        Format::Toml,
    )
    .expect("parses");
    template
        .builder()
        .expect("applies")
        .build()
        .expect("builds");
}

#[test]
fn the_guides_toml_example_parses() {
    let chapter = include_str!("../../docs/configuration.md");
    let start = chapter
        .find("```toml\n# api.toml")
        .expect("the configuration chapter's TOML example")
        + 8;
    let end = start + chapter[start..].find("```").expect("its end");
    let settings = Settings::parse(&chapter[start..end], Format::Toml).expect("parses");
    assert_eq!(
        effective(&settings)["issuers"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn a_file_changes_only_what_it_names() {
    // Single use set in code stays on under a [state] section that does not name it.
    let settings = Settings::parse(
        &format!(
            "[[issuers]]\nissuer = \"{}\"\naudiences = [\"{}\"]\npem_file = \"{}\"\n[state]\nstore = \"memory\"\n[[exempt]]\npath = \"/x\"\nmethod = \"get\"\n",
            crate::support::ISSUER,
            crate::support::AUDIENCE,
            {
                let scratch = Scratch::new("code");
                let pem = scratch.write("k.pem", &ec_key().public_pem().expect("pem"));
                std::mem::forget(scratch);
                pem.display().to_string()
            }
        ),
        Format::Toml,
    )
    .expect("parses");
    let config = settings
        .apply(tower_jwt_auth::JwtAuthConfig::builder().single_use_tokens(true))
        .expect("applies")
        .build()
        .expect("builds");
    let verifier = tower_jwt_auth::Verifier::new(config);
    let once = token(ec_key()).sign();
    verifier
        .verify_async::<serde_json::Value>(&once)
        .await
        .expect("first use");
    let again = verifier
        .verify_async::<serde_json::Value>(&once)
        .await
        .expect_err("second use");
    assert_eq!(again.kind(), tower_jwt_auth::ErrorKind::TokenReplayed);
    // JSON with text after the object is refused.
    let error = Settings::parse("{\"issuers\": []} {}", Format::Json).expect_err("trailing");
    assert_eq!(error.kind(), ConfigErrorKind::InvalidSettings);
}

#[test]
fn an_issuer_table_takes_one_audience_as_audience() {
    let settings = Settings::parse(
        "[[issuers]]\nissuer = \"https://idp.example.com/\"\naudience = \"https://api.example.com\"\n",
        Format::Toml,
    )
    .expect("the singular parses");
    assert_eq!(
        effective(&settings)["issuers"][0]["audiences"],
        serde_json::json!(["https://api.example.com"])
    );
    let both = Settings::parse(
        "[[issuers]]\nissuer = \"i\"\naudience = \"a\"\naudiences = [\"b\"]\n",
        Format::Toml,
    )
    .expect_err("one key, spelled twice");
    assert!(both.to_string().contains("audience"), "{both}");
}

#[test]
fn the_same_options_from_code_and_from_a_file_compile_to_the_same_policy() {
    use std::time::Duration;
    use tower_jwt_auth::JwtAuthConfig;
    use tower_jwt_auth::cache::CacheOptions;
    let scratch = Scratch::new("same");
    let secret = "k".repeat(48);
    let file = scratch.write("hmac", &format!("{secret}\n"));
    let text = format!(
        r#"
leeway = "30s"
max_lifetime = "1h"
required_claims = ["sub", "jti"]
required_permissions = ["read"]
allowed_clients = ["web"]
max_token_len = 4096
realm = "api"
typ = "access_token"

[[issuers]]
issuer = "https://idp.example.com/"
audience = "https://api.example.com"
hmac_secret_file = "{}"

[token]
websocket_protocol = "bearer."
query = "access_token"
query_paths = ["/events", "/streams/*"]

[cache]
max_entries = 100

[claims.require]
tenant = ["acme", "globex"]

[state]
single_use = true
revocation = true
revocation_retention = "2h"

[[exempt]]
prefix = "/public/"
method = "GET"

[forward]
claims = {{ sub = "x-jwt-sub" }}
remove_authorization = true

[resource]
resource = "https://api.example.com"
scopes = ["read"]

[telemetry]
subject = "hashed"

[dpop]
mode = "allowed"
public_base_url = "https://api.example.com"
"#,
        file.display()
    );
    let from_file = built(&text, Format::Toml).expect("the file builds");
    let from_code = JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .hmac_secret(secret.into_bytes())
        .leeway(Duration::from_secs(30))
        .max_lifetime(Duration::from_secs(3600))
        .require_claims_present(["sub", "jti"])
        .require_permissions(["read"])
        .allowed_clients(["web"])
        .max_token_len(4096)
        .realm("api")
        .typ_policy(tower_jwt_auth::TypPolicy::AccessToken)
        .token_source(
            tower_jwt_auth::TokenSource::bearer()
                .or(tower_jwt_auth::TokenSource::websocket_protocol("bearer."))
                .or(tower_jwt_auth::TokenSource::query("access_token")),
        )
        .query_token_paths(["/events", "/streams/*"])
        .cache(CacheOptions::new().max_entries(100))
        .require_claim(
            "tenant",
            tower_jwt_auth::rules::Expected::any_of(["acme", "globex"]),
        )
        .single_use_tokens(true)
        .revocation_list(tower_jwt_auth::state::MemoryRevocationList::default())
        .revocation_retention(Duration::from_secs(7200))
        .exempt(tower_jwt_auth::rules::Exemption::prefix("/public/").method(http::Method::GET))
        .forward_claim("sub", "x-jwt-sub")
        .remove_authorization(true)
        .resource("https://api.example.com")
        .scopes_supported(["read"])
        .subject_logging(tower_jwt_auth::telemetry::SubjectLogging::Hashed)
        .dpop(
            tower_jwt_auth::dpop::DpopOptions::new(tower_jwt_auth::dpop::DpopMode::Allowed)
                .public_base_url("https://api.example.com"),
        )
        .build()
        .expect("the code builds");
    assert_eq!(format!("{from_file:?}"), format!("{from_code:?}"));
    assert_eq!(from_file.algorithms(), from_code.algorithms());

    // The same mistake names the same path: with its line from a file, without from code.
    let error = JwtAuthConfig::builder()
        .issuer("https://idp.example.com/")
        .audience("https://api.example.com")
        .audience("")
        .build()
        .expect_err("an empty audience");
    assert_eq!((error.path(), error.line()), (Some("audiences[1]"), None));
    let error = built(
        "audiences = [\"https://api.example.com\",\n  \"\"]\n[[issuers]]\nissuer = \"https://idp.example.com/\"\n",
        Format::Toml,
    )
    .expect_err("an empty audience");
    assert_eq!(
        (error.path(), error.line()),
        (Some("audiences[1]"), Some(2))
    );
}

#[test]
fn render_prints_every_default_and_hides_secrets() {
    let settings = Settings::parse(
        "[[issuers]]\nissuer = \"https://idp.example.com/\"\naudience = \"api\"\n[state]\nstore = \"redis://:hunter2@127.0.0.1:6379\"\n[introspection]\nclient_id = \"api\"\nclient_secret = \"s3cret\"\n",
        Format::Toml,
    )
    .expect("parses");
    let toml = settings.render(Format::Toml).expect("renders");
    for default in [
        "leeway = \"1m\"",
        "max_token_len = 8192",
        "bearer = true",
        "refresh_interval = \"5m\"",
    ] {
        assert!(toml.contains(default), "{default} in\n{toml}");
    }
    for secret in ["hunter2", "s3cret"] {
        assert!(!toml.contains(secret), "{secret} in\n{toml}");
        assert!(!format!("{settings:?}").contains(secret));
    }
    // What is printed reads back as the same options.
    let again = Settings::parse(&toml, Format::Toml).expect("reads back");
    assert_eq!(
        again.render(Format::Toml).expect("renders"),
        toml,
        "rendering is stable"
    );
    let yaml = settings.render(Format::Yaml).expect("renders YAML");
    Settings::parse(&yaml, Format::Yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
}

#[test]
fn a_file_replaces_restricting_lists_and_its_nulls_remove_nothing() {
    use tower_jwt_auth::{Algorithm, JwtAuthConfig};
    let code = || {
        JwtAuthConfig::builder()
            .algorithms([Algorithm::ES256])
            .realm("api")
    };
    let file = Settings::parse(
        "{\"algorithms\": [\"ES384\"], \"realm\": null, \"issuers\": [{\"issuer\": \"https://idp.example.com/\", \"audiences\": [\"api\"]}]}",
        Format::Json,
    )
    .expect("parses");
    let config = file
        .apply(code())
        .expect("applies")
        .build()
        .expect("builds");
    assert_eq!(
        config.algorithms(),
        [Algorithm::ES384],
        "replaced, not widened"
    );
}

#[test]
fn a_redis_store_outside_a_runtime_is_an_error_not_a_panic() {
    let error = built(
        "[[issuers]]\nissuer = \"https://idp.example.com/\"\naudience = \"api\"\n[state]\nstore = \"redis://127.0.0.1:6379\"\n",
        Format::Toml,
    )
    .expect_err("no runtime to run the connection on");
    assert_eq!((error.path(), error.line()), (Some("state.store"), Some(5)));
    assert!(error.to_string().contains("Tokio runtime"), "{error}");
}

#[test]
fn an_inline_jwks_never_shows_in_debug_output() {
    let k = URL_SAFE_NO_PAD.encode(b"an inline symmetric key of 32+ bytes!!");
    let jwks = serde_json::json!({ "keys": [{ "kty": "oct", "alg": "HS256", "k": k }] });
    let text = format!(
        "audiences = [\"x\"]\n[[issuers]]\nissuer = \"https://idp.example.com/\"\njwks = '{jwks}'\n"
    );
    let builder = Settings::parse(&text, Format::Toml)
        .and_then(Settings::builder)
        .expect("applies");
    let shown = format!("{builder:?}");
    assert!(shown.contains("jwks: Some(<redacted>)"), "{shown}");
    assert!(!shown.contains(&k), "{shown}");
    // And the refusal of a symmetric key from a JWKS does not quote it either.
    let error = builder
        .build()
        .expect_err("symmetric keys come from hmac_secret_file");
    assert!(!error.to_string().contains(&k), "{error}");
}

/// An application's own table beside the options: read into its type, every other key
/// still checked against the model, errors in either named with path and line.
#[test]
fn an_applications_own_section_is_read_beside_the_options() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Server {
        workers: u32,
        #[serde(default)]
        name: String,
    }
    let text = "leeway = \"5s\"\n\n[server]\nworkers = 4\n\n[[issuers]]\nissuer = \"https://idp.example.com/\"\naudiences = [\"api\"]\n";
    let (settings, server) = Settings::parse_with::<Server>(text, Format::Toml, "server").unwrap();
    assert_eq!(
        server,
        Some(Server {
            workers: 4,
            name: String::new()
        })
    );
    let shown = settings.render(Format::Toml).unwrap();
    assert!(
        shown.contains("leeway = \"5s\"") && !shown.contains("workers"),
        "{shown}"
    );
    let config = settings.builder().unwrap().hmac_secret(vec![7; 32]).build();
    assert!(config.is_ok(), "{config:?}");

    // Without the table: none, and the options as ever.
    let (_, none) =
        Settings::parse_with::<Server>("leeway = \"5s\"\n", Format::Toml, "server").unwrap();
    assert_eq!(none, None);

    // A bad value in the table, an unknown key beside it: path and line.
    let bad_own = "leeway = \"5s\"\n[server]\nworkers = \"four\"\n";
    let error = Settings::parse_with::<Server>(bad_own, Format::Toml, "server").unwrap_err();
    assert_eq!(error.path(), Some("server.workers"));
    assert_eq!(error.line(), Some(3));
    let unknown = "leeway = \"5s\"\nleway = \"6s\"\n[server]\nworkers = 1\n";
    let error = Settings::parse_with::<Server>(unknown, Format::Toml, "server").unwrap_err();
    assert_eq!(error.line(), Some(2), "{error}");
    assert!(error.to_string().contains("leway"), "{error}");
    let json = r#"{"server": {"workers": 2, "extra": 1}}"#;
    let error = Settings::parse_with::<Server>(json, Format::Json, "server").unwrap_err();
    assert_eq!(error.path(), Some("server.extra"), "{error}");
    assert!(error.to_string().contains("extra"), "{error}");
    let yaml = "leeway: 5s\nserver:\n  workers: 3\n";
    let (_, server) = Settings::parse_with::<Server>(yaml, Format::Yaml, "server").unwrap();
    assert_eq!(server.map(|s| s.workers), Some(3));
}

/// A JSON key given twice is refused in the application's table as among the options,
/// rather than the last one silently winning.
#[test]
fn a_json_key_twice_is_refused_beside_an_applications_table() {
    #[derive(serde::Deserialize, Debug)]
    struct Server {
        #[allow(dead_code)]
        workers: u32,
    }
    for text in [
        r#"{"server": {"workers": 1}, "server": {"workers": 2}}"#,
        r#"{"server": {"workers": 1, "workers": 2}}"#,
        "{\"leeway\": \"5s\",\n \"leeway\": \"6s\"}",
    ] {
        let error = Settings::parse_with::<Server>(text, Format::Json, "server").unwrap_err();
        assert!(
            error.to_string().contains("duplicate field"),
            "{text}: {error}"
        );
    }
}
