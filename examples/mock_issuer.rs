//! A mock identity provider for trying an API by hand with curl or Postman.
//!
//! ```sh
//! # Serve discovery, JWKS and a token endpoint on http://127.0.0.1:9000
//! cargo run --example mock_issuer -- serve --port 9000 \
//!     --client demo-client:demo-secret:read,write --user alice:wonderland:read
//!
//! # Get a token like any OAuth client would
//! curl -s http://127.0.0.1:9000/oauth/token -u demo-client:demo-secret \
//!     -d grant_type=client_credentials
//!
//! # Or mint one directly (signed with the keys `serve` saved), with any claims
//! cargo run --example mock_issuer -- mint --sub alice --permissions read,write \
//!     --audience https://api.example.com --expires-in 600 --alg ES256
//!
//! # A DPoP-bound token, and a proof for one request with it
//! TOKEN=$(cargo run -q --example mock_issuer -- mint --dpop-bound yes --permissions read)
//! cargo run -q --example mock_issuer -- proof --method GET \
//!     --url http://127.0.0.1:3000/documents --token "$TOKEN"
//! ```
//!
//! `serve` options: `--port` (9000), `--audience` (https://api.example.com), `--client
//! id:secret:perm,perm` and `--user name:password:perm,perm` (repeatable), `--accounts
//! FILE` (JSON: `{"clients":[{"id","secret","permissions":[..]}],"users":[{"name",
//! "password","permissions":[..]}]}`), `--key-file FILE`.
//! `mint` options: `--issuer` (http://127.0.0.1:9000), `--sub`, `--permissions a,b`,
//! `--scope "a b"`, `--audience`, `--expires-in SECONDS` (3600; negative for an expired
//! token), `--alg RS256|PS256|ES256|EdDSA`, `--key-file FILE`, `--dpop-bound yes` (bind
//! the token to the DPoP client key: `cnf.jkt`).
//! `proof` options: `--method` (GET), `--url` (required), `--token` (the access token the
//! proof goes with), `--nonce`; it prints a DPoP proof signed by the client key.
//! The DPoP client key (P-256) is kept in `--client-key-file` (default:
//! `tower-jwt-auth-mock-dpop-client.json` in the temporary directory), so that `mint` and
//! `proof` agree.
//!
//! The signing keys (RSA, P-256 and Ed25519, all published in the JWKS) are kept in
//! `--key-file` (default: `tower-jwt-auth-mock-issuer-keys.json` in the system's temporary
//! directory) so that `mint` signs with keys the running `serve` publishes, and tokens
//! stay valid across restarts. They are test keys: never use them for anything real.

#[path = "support/logs.rs"]
mod logs;

use std::error::Error;
use std::path::PathBuf;

use serde_json::{Value, json};
use tower_jwt_auth::Algorithm;
use tower_jwt_auth::testing::{DpopProof, MockIssuer, TestKey, TokenBuilder};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Command-line options: `--name value` pairs, repeatable.
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut pairs = Vec::new();
        let mut iter = args.iter();
        while let Some(flag) = iter.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("expected an option, got {flag:?}"))?;
            let value = iter
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            pairs.push((name.to_owned(), value.clone()));
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn key_file(options: &Options) -> PathBuf {
    options.get("key-file").map_or_else(
        || std::env::temp_dir().join("tower-jwt-auth-mock-issuer-keys.json"),
        PathBuf::from,
    )
}

/// Loads the saved keys, or makes and saves new ones.
fn load_or_create_keys(path: &PathBuf) -> Result<Vec<TestKey>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let saved: Value = serde_json::from_str(&text)?;
        let keys = saved["keys"].as_array().ok_or("key file has no keys")?;
        return keys
            .iter()
            .map(|k| TestKey::import_private(k).map_err(Into::into))
            .collect();
    }
    let keys = vec![
        TestKey::rsa().with_kid("mock-rsa"),
        TestKey::ec_p256().with_kid("mock-ec"),
        TestKey::ed25519().with_kid("mock-ed25519"),
    ];
    let saved: Vec<Value> = keys.iter().map(TestKey::export_private).collect();
    std::fs::write(path, json!({ "keys": saved }).to_string())?;
    Ok(keys)
}

/// `id:secret:perm,perm`.
fn account(spec: &str) -> Result<(String, String, Vec<String>)> {
    let mut parts = spec.splitn(3, ':');
    let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
        return Err(format!("expected name:secret:permissions, got {spec:?}").into());
    };
    let permissions = parts
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    Ok((id.to_owned(), secret.to_owned(), permissions))
}

fn list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The DPoP client key, made once and kept.
fn client_key(options: &Options) -> Result<TestKey> {
    let path = options.get("client-key-file").map_or_else(
        || std::env::temp_dir().join("tower-jwt-auth-mock-dpop-client.json"),
        PathBuf::from,
    );
    if let Ok(text) = std::fs::read_to_string(&path) {
        return TestKey::import_private(&serde_json::from_str(&text)?).map_err(Into::into);
    }
    let key = TestKey::ec_p256().with_kid("dpop-client");
    std::fs::write(&path, key.export_private().to_string())?;
    Ok(key)
}

/// A DPoP proof for one request, signed by the client key.
fn proof(options: &Options) -> Result<()> {
    let url = options.get("url").ok_or("proof needs --url")?;
    let method = options.get("method").unwrap_or("GET");
    let mut proof = DpopProof::new(&client_key(options)?, method, url);
    if let Some(token) = options.get("token") {
        proof = proof.token(token);
    }
    if let Some(nonce) = options.get("nonce") {
        proof = proof.nonce(nonce);
    }
    println!("{}", proof.sign());
    Ok(())
}

async fn serve(options: &Options) -> Result<()> {
    let port: u16 = options.get("port").unwrap_or("9000").parse()?;
    let audience = options.get("audience").unwrap_or("https://api.example.com");
    let keys = load_or_create_keys(&key_file(options))?;
    let issuer = MockIssuer::builder()
        .port(port)
        .audience(audience)
        .key(keys[0].clone())
        .start()
        .await;
    for key in &keys[1..] {
        issuer.add_key(key.clone());
    }
    for spec in options.all("client") {
        let (id, secret, permissions) = account(spec)?;
        issuer.add_client(&id, &secret, permissions);
    }
    for spec in options.all("user") {
        let (name, password, permissions) = account(spec)?;
        issuer.add_user(&name, &password, permissions);
    }
    if let Some(path) = options.get("accounts") {
        let accounts: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        for client in accounts["clients"].as_array().into_iter().flatten() {
            let id = client["id"].as_str().ok_or("client without id")?;
            let secret = client["secret"].as_str().unwrap_or("");
            issuer.add_client(id, secret, list(&client["permissions"]));
        }
        for user in accounts["users"].as_array().into_iter().flatten() {
            let name = user["name"].as_str().ok_or("user without name")?;
            let password = user["password"].as_str().unwrap_or("");
            issuer.add_user(name, password, list(&user["permissions"]));
        }
    }
    println!("mock issuer     {}", issuer.issuer());
    println!("discovery       {}", issuer.discovery_url());
    println!("JWKS            {}", issuer.jwks_url());
    println!("token endpoint  {}", issuer.token_url());
    println!("audience        {audience}");
    println!(
        "\ncurl -s {} -d grant_type=client_credentials -d client_id=ID -d client_secret=SECRET",
        issuer.token_url()
    );
    println!("\nCtrl-C stops it.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn mint(options: &Options) -> Result<()> {
    let path = key_file(options);
    let keys = load_or_create_keys(&path)?;
    let alg: Algorithm = options
        .get("alg")
        .unwrap_or("RS256")
        .parse()
        .map_err(|_| "unknown --alg")?;
    let key = keys
        .iter()
        .find(|k| {
            let own = k.algorithm();
            own == alg || (own == Algorithm::RS256 && alg.as_str().starts_with(['R', 'P']))
        })
        .ok_or("no key for that algorithm (RS*, PS*, ES256 and EdDSA are available)")?;
    if key.algorithm() != alg {
        // The JWKS publishes the key with its own `alg`, which pins it (RFC 7517 4.4).
        eprintln!(
            "note: the issuer publishes this key with \"alg\": \"{}\", so verifiers that \
             honour the JWK alg (this crate does) refuse a {alg} token with \"algorithm \
             not allowed\" or \"key does not match algorithm\"; use --alg {} for a token \
             they accept",
            key.algorithm(),
            key.algorithm()
        );
    }
    let expires_in: i64 = options.get("expires-in").unwrap_or("3600").parse()?;
    let mut token = TokenBuilder::new(key)
        .alg(alg)
        .issuer(options.get("issuer").unwrap_or("http://127.0.0.1:9000"))
        .audience(options.get("audience").unwrap_or("https://api.example.com"))
        .subject(options.get("sub").unwrap_or("test-user"))
        .expires_in_secs(expires_in);
    if let Some(permissions) = options.get("permissions") {
        token = token.permissions(permissions.split(',').filter(|p| !p.is_empty()));
    }
    if let Some(scope) = options.get("scope") {
        token = token.scope(scope);
    }
    if options.get("dpop-bound").is_some_and(|v| v != "no") {
        token = token.dpop_bound(&client_key(options)?);
    }
    println!("{}", token.sign());
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    logs::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!(
            "usage: mock_issuer serve [options] | mint [options] | proof [options]  (see the file's header)"
        );
        std::process::exit(2);
    };
    let options = Options::parse(rest)?;
    match command.as_str() {
        "serve" => serve(&options).await,
        "mint" => mint(&options),
        "proof" => proof(&options),
        other => Err(format!("unknown command {other:?}: use serve, mint or proof").into()),
    }
}
