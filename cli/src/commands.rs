//! The commands. Each parses its own options, prints its own `--help`, and returns the
//! process exit code.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
use tower_jwt_auth::testing::{DpopProof, Endpoint, Fault, MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::{Algorithm, JwtAuthConfig, Verifier};

use crate::args::Args;
use crate::time::{relative, utc};

/// Why a command stopped.
pub(crate) enum Failure {
    /// Bad arguments (exit 2).
    Usage(String),
    /// Anything else that stops the command: I/O, network, the identity provider (exit 2).
    Other(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::Other(error.to_string())
    }
}

type Outcome = Result<ExitCode, Failure>;

fn help(text: &str) -> Outcome {
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// The token: the positional argument, or standard input for `-`.
async fn token(args: &Args) -> Result<String, Failure> {
    match args.positional.as_slice() {
        [dash] if dash == "-" => {
            let mut text = String::new();
            tokio::io::stdin().read_to_string(&mut text).await?;
            Ok(text.trim().to_owned())
        }
        [token] => Ok(token.trim().to_owned()),
        [] => Err(Failure::Usage(
            "give the token (or - to read it from standard input)".into(),
        )),
        _ => Err(Failure::Usage("one token at a time".into())),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn key_file(args: &Args) -> PathBuf {
    args.get("key-file").map_or_else(
        || std::env::temp_dir().join("tower-jwt-auth-mock-issuer-keys.json"),
        PathBuf::from,
    )
}

/// The signing keys, kept between runs so that `mint` signs with what `serve` publishes.
fn keys(args: &Args) -> Result<Vec<TestKey>, Failure> {
    let path = key_file(args);
    if let Some(text) = read_private(&path)? {
        let saved: Value = serde_json::from_str(&text)?;
        let keys = saved["keys"].as_array().ok_or("the key file has no keys")?;
        return keys
            .iter()
            .map(|k| TestKey::import_private(k).map_err(Failure::Other))
            .collect();
    }
    let keys = vec![
        TestKey::rsa().with_kid("mock-rsa"),
        TestKey::ec_p256().with_kid("mock-ec"),
        TestKey::ed25519().with_kid("mock-ed25519"),
    ];
    let saved: Vec<Value> = keys.iter().map(TestKey::export_private).collect();
    write_private(&path, &json!({ "keys": saved }).to_string())?;
    Ok(keys)
}

/// The DPoP client key, made once and kept.
fn client_key(args: &Args) -> Result<TestKey, Failure> {
    let path = args.get("client-key-file").map_or_else(
        || std::env::temp_dir().join("tower-jwt-auth-mock-dpop-client.json"),
        PathBuf::from,
    );
    if let Some(text) = read_private(&path)? {
        return TestKey::import_private(&serde_json::from_str(&text)?).map_err(Failure::Other);
    }
    let key = TestKey::ec_p256().with_kid("dpop-client");
    write_private(&path, &key.export_private().to_string())?;
    Ok(key)
}

/// A saved private key file's text, or `None` when there is none yet (any other failure
/// to read it is an error: a file that is there but unreadable is not ours to replace).
///
/// The default paths are in the shared temporary directory, and earlier versions saved
/// keys there readable by everyone: a file others may read is made private before its
/// keys are used, and one that cannot be (another user's) is refused, since anyone who
/// can read the keys can sign tokens as the mock issuer.
fn read_private(path: &Path) -> Result<Option<String>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Failure::Other(format!("{}: {error}", path.display()))),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let permissions = std::fs::metadata(path)?.permissions();
        if permissions.mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |error| {
                    Failure::Other(format!(
                        "{}: the key file is readable by other users and cannot be made \
                         private ({error}); remove it or choose another file",
                        path.display()
                    ))
                },
            )?;
        }
    }
    Ok(Some(text))
}

/// Saves private keys readable and writable by their owner only (0600).
fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let context = |error: std::io::Error| Failure::Other(format!("{}: {error}", path.display()));
    let mut file = options.open(path).map_err(context)?;
    // The mode above applies only to a file this call creates; one that was already
    // there is made private here, before any key is written into it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(context)?;
    }
    file.write_all(text.as_bytes()).map_err(context)?;
    Ok(())
}

/// `id:secret:perm,perm`.
fn account(spec: &str) -> Result<(String, String, Vec<String>), Failure> {
    let mut parts = spec.splitn(3, ':');
    let (Some(id), Some(secret)) = (parts.next(), parts.next()) else {
        return Err(Failure::Usage(format!(
            "expected name:secret:permissions, got {spec:?}"
        )));
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

const SERVE_HELP: &str = "\
jwt-auth serve: a mock OpenID Connect provider on 127.0.0.1

OPTIONS:
    --port N                  listen port (default 9000; 0 picks a free one)
    --audience AUD            audience of its tokens (default https://api.example.com)
    --client ID:SECRET:PERMS  a client for the client_credentials grant (repeatable)
    --user NAME:PASSWORD:PERMS  a user for the password grant (repeatable)
    --accounts FILE           clients and users from JSON: {\"clients\":[{\"id\",\"secret\",
                              \"permissions\":[..]}],\"users\":[{\"name\",\"password\",\"permissions\":[..]}]}
    --fault ENDPOINT=FAULT    discovery|jwks|token|introspection = down|garbage|slow:MS
    --key-file FILE           where the signing keys are kept between runs

Its browser console, at / of the same address, mints tokens and explains any token.
While it runs, type on standard input: `rotate` (a new signing key, the old one still
published), `faults off`, or `quit`.

EXAMPLE:
    jwt-auth serve --port 9000 --client demo:demo-secret:read,write
    curl -s http://127.0.0.1:9000/oauth/token -u demo:demo-secret -d grant_type=client_credentials
";

pub(crate) async fn serve(args: &[String]) -> Outcome {
    if args.iter().any(|a| a == "--help") {
        return help(SERVE_HELP);
    }
    let args = Args::parse(
        args,
        &[
            "port", "audience", "client", "user", "accounts", "fault", "key-file",
        ],
        &[],
    )?;
    let port: u16 = args
        .get("port")
        .unwrap_or("9000")
        .parse()
        .map_err(|_| Failure::Usage("--port takes a number".into()))?;
    let audience = args.get("audience").unwrap_or("https://api.example.com");
    let keys = keys(&args)?;
    let issuer = MockIssuer::builder()
        .port(port)
        .audience(audience)
        .key(keys[0].clone())
        .console(true)
        .start()
        .await;
    for key in &keys[1..] {
        issuer.add_key(key.clone());
    }
    for spec in args.all("client") {
        let (id, secret, permissions) = account(spec)?;
        issuer.add_client(&id, &secret, permissions);
    }
    for spec in args.all("user") {
        let (name, password, permissions) = account(spec)?;
        issuer.add_user(&name, &password, permissions);
    }
    if let Some(path) = args.get("accounts") {
        let accounts: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let list = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        for client in accounts["clients"].as_array().into_iter().flatten() {
            let id = client["id"].as_str().ok_or("a client without id")?;
            let secret = client["secret"].as_str().unwrap_or("");
            issuer.add_client(id, secret, list(&client["permissions"]));
        }
        for user in accounts["users"].as_array().into_iter().flatten() {
            let name = user["name"].as_str().ok_or("a user without name")?;
            let password = user["password"].as_str().unwrap_or("");
            issuer.add_user(name, password, list(&user["permissions"]));
        }
    }
    for spec in args.all("fault") {
        let (endpoint, fault) = fault(spec)?;
        issuer.set_fault(endpoint, fault);
    }
    println!("issuer          {}", issuer.issuer());
    println!("console         {}/", issuer.base_url());
    println!("discovery       {}", issuer.discovery_url());
    println!("JWKS            {}", issuer.jwks_url());
    println!("token endpoint  {}", issuer.token_url());
    println!("introspection   {}", issuer.introspection_url());
    println!("audience        {audience}");
    println!("\ncommands on standard input: rotate, faults off, quit");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => match line.trim() {
                    "rotate" => println!("now signing with {}", issuer.rotate().kid()),
                    "faults off" => {
                        issuer.clear_faults();
                        println!("faults cleared");
                    }
                    "quit" => return Ok(ExitCode::SUCCESS),
                    "" => {}
                    other => println!("unknown command {other:?}: rotate, faults off, quit"),
                },
                // Standard input closed (as under a supervisor): serve until Ctrl-C.
                None => {
                    tokio::signal::ctrl_c().await?;
                    return Ok(ExitCode::SUCCESS);
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn fault(spec: &str) -> Result<(Endpoint, Fault), Failure> {
    let bad = || {
        Failure::Usage(format!(
            "--fault {spec:?}: expected ENDPOINT=down|garbage|slow:MS"
        ))
    };
    let (endpoint, kind) = spec.split_once('=').ok_or_else(bad)?;
    let endpoint = match endpoint {
        "discovery" => Endpoint::Discovery,
        "jwks" => Endpoint::Jwks,
        "token" => Endpoint::Token,
        "introspection" => Endpoint::Introspection,
        _ => return Err(bad()),
    };
    let fault = match kind.split_once(':') {
        None if kind == "down" => Fault::Down,
        None if kind == "garbage" => Fault::Garbage,
        Some(("slow", ms)) => Fault::Slow(Duration::from_millis(ms.parse().map_err(|_| bad())?)),
        _ => return Err(bad()),
    };
    Ok((endpoint, fault))
}

const MINT_HELP: &str = "\
jwt-auth mint: sign a token with the keys `serve` publishes

OPTIONS:
    --issuer URL        iss (default http://127.0.0.1:9000)
    --audience AUD      aud (default https://api.example.com)
    --sub SUBJECT       sub (default test-user)
    --permissions A,B   a permissions array
    --scope \"A B\"       a scope string
    --expires-in SECS   lifetime (default 3600; negative: already expired)
    --alg ALG           RS256 (default), PS256, ES256 or EdDSA
    --kid KID           the header's kid (default: the key's)
    --claim NAME=JSON   any claim (repeatable; a value that is not JSON is a string)
    --dpop-bound        bind it to the DPoP client key (cnf.jkt)
    --curl URL          print a curl command for URL with the token
    --count N           N tokens, one per line, each with its own jti (load tests)
    --key-file FILE     where the signing keys are kept

EXAMPLES:
    jwt-auth mint --sub alice --permissions read,write
    jwt-auth mint --expires-in -60 --curl http://127.0.0.1:3000/documents
    jwt-auth mint --count 10000 > tokens.txt
";

pub(crate) fn mint(args: &[String]) -> Outcome {
    if args.iter().any(|a| a == "--help") {
        return help(MINT_HELP);
    }
    let args = Args::parse(
        args,
        &[
            "issuer",
            "audience",
            "sub",
            "permissions",
            "scope",
            "expires-in",
            "alg",
            "kid",
            "claim",
            "curl",
            "count",
            "key-file",
            "client-key-file",
        ],
        &["dpop-bound"],
    )?;
    let count: usize = args
        .get("count")
        .unwrap_or("1")
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Failure::Usage("--count takes a positive number".into()))?;
    let alg: Algorithm = args
        .get("alg")
        .unwrap_or("RS256")
        .parse()
        .map_err(|_| Failure::Usage("unknown --alg".into()))?;
    let keys = keys(&args)?;
    let key = keys
        .iter()
        .find(|k| {
            let own = k.algorithm();
            own == alg || (own == Algorithm::RS256 && alg.as_str().starts_with(['R', 'P']))
        })
        .ok_or_else(|| {
            Failure::Usage("no key for that algorithm (RS*, PS*, ES256, EdDSA)".into())
        })?;
    let expires_in: i64 = args
        .get("expires-in")
        .unwrap_or("3600")
        .parse()
        .map_err(|_| Failure::Usage("--expires-in takes seconds".into()))?;
    let mut token = TokenBuilder::new(key)
        .alg(alg)
        .issuer(args.get("issuer").unwrap_or("http://127.0.0.1:9000"))
        .audience(args.get("audience").unwrap_or("https://api.example.com"))
        .subject(args.get("sub").unwrap_or("test-user"))
        .expires_in_secs(expires_in);
    if let Some(kid) = args.get("kid") {
        token = token.kid(kid);
    }
    if let Some(permissions) = args.get("permissions") {
        token = token.permissions(permissions.split(',').filter(|p| !p.is_empty()));
    }
    if let Some(scope) = args.get("scope") {
        token = token.scope(scope);
    }
    for claim in args.all("claim") {
        let (name, value) = claim
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("--claim {claim:?}: expected NAME=VALUE")))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
        token = token.claim(name, value);
    }
    if args.flag("dpop-bound") {
        token = token.dpop_bound(&client_key(&args)?);
    }
    // The builder drew one random jti; the others get this run's prefix and a number.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run = URL_SAFE_NO_PAD.encode(run.to_le_bytes());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for n in 0..count {
        let token = if n == 0 {
            token.sign()
        } else {
            token.clone().claim("jti", format!("{run}-{n}")).sign()
        };
        match args.get("curl") {
            Some(url) => writeln!(out, "curl -i {url} -H 'Authorization: Bearer {token}'")?,
            None => writeln!(out, "{token}")?,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

const PROOF_HELP: &str = "\
jwt-auth proof: a DPoP proof (RFC 9449) for one request, signed by the DPoP client key

OPTIONS:
    --url URL            the request's URL (required)
    --method METHOD      the request's method (default GET)
    --token TOKEN        the access token it goes with (sets ath)
    --nonce NONCE        a server nonce from a DPoP-Nonce header
    --client-key-file F  where the client key is kept (mint --dpop-bound uses the same)

EXAMPLE:
    TOKEN=$(jwt-auth mint --dpop-bound)
    curl http://127.0.0.1:3000/documents -H \"Authorization: DPoP $TOKEN\" \\
        -H \"DPoP: $(jwt-auth proof --url http://127.0.0.1:3000/documents --token $TOKEN)\"
";

pub(crate) fn proof(args: &[String]) -> Outcome {
    if args.iter().any(|a| a == "--help") {
        return help(PROOF_HELP);
    }
    let args = Args::parse(
        args,
        &["url", "method", "token", "nonce", "client-key-file"],
        &[],
    )?;
    let url = args
        .get("url")
        .ok_or_else(|| Failure::Usage("--url is required".into()))?;
    let mut proof = DpopProof::new(
        &client_key(&args)?,
        args.get("method").unwrap_or("GET"),
        url,
    );
    if let Some(token) = args.get("token") {
        proof = proof.token(token);
    }
    if let Some(nonce) = args.get("nonce") {
        proof = proof.nonce(nonce);
    }
    println!("{}", proof.sign());
    Ok(ExitCode::SUCCESS)
}

const DECODE_HELP: &str = "\
jwt-auth decode TOKEN|-: a token's header and payload, never sent anywhere

OPTIONS:
    --json   one JSON object: header, payload, and the times in UTC and relative

EXAMPLE:
    jwt-auth mint | jwt-auth decode -
";

pub(crate) async fn decode(args: &[String]) -> Outcome {
    if args.iter().any(|a| a == "--help") {
        return help(DECODE_HELP);
    }
    let args = Args::parse(args, &[], &["json"])?;
    let token = token(&args).await?;
    let part = |segment: Option<&str>| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(segment?).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let mut segments = token.split('.');
    let (Some(header), Some(payload)) = (part(segments.next()), part(segments.next())) else {
        eprintln!("not a JWT: an opaque token (only its issuer can say what it means)");
        return Ok(ExitCode::from(1));
    };
    let now = now();
    let times: serde_json::Map<String, Value> = ["exp", "nbf", "iat", "auth_time"]
        .iter()
        .filter_map(|name| {
            let at = payload.get(*name)?.as_f64()? as i64;
            Some((
                (*name).to_owned(),
                json!({ "utc": utc(at), "relative": relative(at, now) }),
            ))
        })
        .collect();
    if args.flag("json") {
        let out = json!({ "header": header, "payload": payload, "times": times });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("header:\n{}\n", serde_json::to_string_pretty(&header)?);
    println!("payload:\n{}", serde_json::to_string_pretty(&payload)?);
    if !times.is_empty() {
        println!();
    }
    for (name, time) in &times {
        let when = &time["relative"];
        let note = match (name.as_str(), when.as_str()) {
            ("exp", Some(r)) if r.ends_with("ago") => format!("expired {r}"),
            ("exp", Some(r)) => format!("expires {r}"),
            (_, Some(r)) => r.to_owned(),
            _ => String::new(),
        };
        println!(
            "{name:<9} {}  ({note})",
            time["utc"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for the issuer's keys: until they load, or the first fetch fails (no point in
/// waiting for the retries), or 10 s.
async fn load_keys(config: &JwtAuthConfig) -> Result<(), Failure> {
    use tower_jwt_auth::jwks::KeysStatus;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let statuses: Vec<KeysStatus> = config.key_health().iter().map(|h| h.status()).collect();
        if statuses.iter().all(KeysStatus::is_ready) {
            return Ok(());
        }
        let failed: Vec<String> = statuses
            .iter()
            .filter_map(|s| match s {
                KeysStatus::NeverLoaded {
                    last_error: Some(e),
                } => Some(e.clone()),
                _ => None,
            })
            .collect();
        if !failed.is_empty() || tokio::time::Instant::now() > deadline {
            let why = if failed.is_empty() {
                "no answer within 10 s".to_owned()
            } else {
                failed.join("; ")
            };
            return Err(Failure::Other(format!(
                "the identity provider's keys did not load: {why}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const EXPLAIN_HELP: &str = "\
jwt-auth explain TOKEN|-: run the layer's checks and say why the token passes or fails

OPTIONS:
    --issuer URL      the trusted issuer (keys by OIDC discovery unless --jwks or --pem)
    --audience AUD    an accepted audience (repeatable)
    --jwks FILE       verify with this JWKS instead of fetching keys
    --pem FILE        verify with this PEM public key instead of fetching keys
    --json            the report as JSON

It runs the checks JwtAuthLayer itself runs, in its order, and stops where the layer
stops. A route's own permission guard (RequirePermission) is not part of it: a token
explain accepts can still get 403 on a route that needs a permission it lacks.

EXIT STATUS:
    0  the layer would accept the token
    1  it would refuse it (the failing check is named)
    2  usage, network or identity-provider errors

EXAMPLE:
    jwt-auth explain --issuer http://127.0.0.1:9000 --audience https://api.example.com \"$TOKEN\"
";

pub(crate) async fn explain(args: &[String]) -> Outcome {
    if args.iter().any(|a| a == "--help") {
        return help(EXPLAIN_HELP);
    }
    let args = Args::parse(args, &["issuer", "audience", "jwks", "pem"], &["json"])?;
    let token = token(&args).await?;
    let issuer = args
        .get("issuer")
        .ok_or_else(|| Failure::Usage("--issuer is required".into()))?;
    let mut builder = JwtAuthConfig::builder().issuer(issuer);
    let mut audiences = 0;
    for audience in args.all("audience") {
        builder = builder.audience(audience);
        audiences += 1;
    }
    if audiences == 0 {
        return Err(Failure::Usage("--audience is required".into()));
    }
    let remote = match (args.get("jwks"), args.get("pem")) {
        (Some(file), None) => {
            builder = builder.jwks(std::fs::read_to_string(file)?);
            false
        }
        (None, Some(file)) => {
            builder = builder.pem(std::fs::read_to_string(file)?);
            false
        }
        (None, None) => true,
        (Some(_), Some(_)) => return Err(Failure::Usage("give --jwks or --pem, not both".into())),
    };
    let config = builder.build()?;
    if remote {
        load_keys(&config).await?;
    }
    let report = Verifier::new(config).explain(&token).await;
    if args.flag("json") {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{report}");
    }
    Ok(if report.accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
