//! The commands, each given its parsed options and returning the process exit code.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::CommandFactory as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
use tower_jwt_auth::api_key::{NewApiKey, check_prefix};
use tower_jwt_auth::testing::{DpopProof, MockIssuer, TestKey, TokenBuilder};
use tower_jwt_auth::{Algorithm, JwtAuthConfig, Verifier};

use crate::args::{
    ApikeyNew, Cli, ClientKeyFile, Completions, Decode, Explain, KeyFile, Mint, Proof, Serve,
    TokenArg,
};
use crate::console;
use crate::time::{relative, utc};

/// Why a command stopped.
pub(crate) enum Failure {
    /// Options that do not fit together, which clap cannot see (exit 2).
    Usage(String),
    /// Anything else that stops the command: I/O, network, the identity provider (exit 2).
    Other(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::Other(error.to_string())
    }
}

pub(crate) type Outcome = Result<ExitCode, Failure>;

/// The token: the argument, or standard input for `-`; either may be a pasted
/// `Authorization` value, whose scheme is dropped.
async fn token(arg: &TokenArg) -> Result<String, Failure> {
    if arg.token == "-" {
        let mut text = String::new();
        tokio::io::stdin().read_to_string(&mut text).await?;
        return Ok(bare_token(&text).to_owned());
    }
    Ok(bare_token(&arg.token).to_owned())
}

/// `Bearer eyJ..` or `DPoP eyJ..` (any case, as HTTP schemes are) without the scheme;
/// anything else trimmed and otherwise as it is.
fn bare_token(text: &str) -> &str {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop") =>
        {
            rest.trim_start()
        }
        _ => text,
    }
}

/// One base64url JSON segment of a compact JWS, or `None` if it is not one.
pub(crate) fn segment(segment: Option<&str>) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn key_file(keys: &KeyFile) -> PathBuf {
    keys.path
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("tower-jwt-auth-mock-issuer-keys.json"))
}

/// The signing keys, kept between runs so that `mint` signs with what `serve` publishes.
/// The first key of each type is the one that signs.
fn keys(path: &Path) -> Result<Vec<TestKey>, Failure> {
    if let Some(bytes) = read_private(path)? {
        let saved: Value = serde_json::from_slice(&bytes)?;
        let keys = saved["keys"].as_array().ok_or("the key file has no keys")?;
        let keys = keys
            .iter()
            .map(|k| TestKey::import_private(k).map_err(Failure::Other))
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(Failure::Other(format!(
                "{}: the key file has no keys",
                path.display()
            )));
        }
        return Ok(keys);
    }
    let keys = vec![
        TestKey::rsa().with_kid("mock-rsa"),
        TestKey::ec_p256().with_kid("mock-ec"),
        TestKey::ed25519().with_kid("mock-ed25519"),
    ];
    write_private(path, keys_json(&keys).as_bytes())?;
    Ok(keys)
}

fn keys_json(keys: &[TestKey]) -> String {
    let saved: Vec<Value> = keys.iter().map(TestKey::export_private).collect();
    json!({ "keys": saved }).to_string()
}

/// The DPoP client key, made once and kept.
fn client_key(file: &ClientKeyFile) -> Result<TestKey, Failure> {
    let path = file
        .path
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("tower-jwt-auth-mock-dpop-client.json"));
    if let Some(bytes) = read_private(&path)? {
        return TestKey::import_private(&serde_json::from_slice(&bytes)?).map_err(Failure::Other);
    }
    let key = TestKey::ec_p256().with_kid("dpop-client");
    write_private(&path, key.export_private().to_string().as_bytes())?;
    Ok(key)
}

/// The shared secret `mint` signs HS256/384/512 tokens with, and where it is kept.
///
/// A named file that is there is used as it is; one that is not gets a new random
/// secret. Without a name, each run gets a new secret in a new file, created so that it
/// cannot be a file someone else put there first. The secret is the file's bytes less
/// trailing line breaks, as the library's `hmac_secret_file` setting reads it, so the
/// same file configures a layer; a made one is 86 base64url characters (64 random
/// bytes), long enough for HS512.
fn hmac_secret(file: Option<&Path>) -> Result<TestKey, Failure> {
    if let Some(path) = file
        && let Some(bytes) = read_private(path)?
    {
        eprintln!("HMAC secret from {}", path.display());
        return Ok(TestKey::hmac_secret(without_line_breaks(bytes)));
    }
    // The library's random source, through the only door the public API opens to it.
    let random = || {
        TestKey::hmac()
            .secret()
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let secret = URL_SAFE_NO_PAD.encode(random());
    let path = match file {
        Some(path) => {
            write_private(path, secret.as_bytes())?;
            path.to_owned()
        }
        None => {
            let name: String = random()
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect();
            let path = std::env::temp_dir().join(format!("jwt-auth-hmac-{name}.secret"));
            create_private(&path, secret.as_bytes())?;
            path
        }
    };
    eprintln!(
        "HMAC secret: a new one in {} (give it to mint and explain with --hmac-secret-file)",
        path.display()
    );
    Ok(TestKey::hmac_secret(secret))
}

fn without_line_breaks(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        bytes.pop();
    }
    bytes
}

/// A saved key or secret file's bytes, or `None` when there is none yet (any other
/// failure to read it is an error: a file that is there but unreadable is not ours to
/// replace).
///
/// The default paths are in the shared temporary directory, and earlier versions saved
/// keys there readable by everyone: a file others may read is made private before its
/// keys are used, and one that cannot be (another user's) is refused, since anyone who
/// can read the keys can sign tokens as the mock issuer.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    let text = match std::fs::read(path) {
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
                        "{}: the file is readable by other users and cannot be made \
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
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    write_with(&options, path, bytes)
}

/// Saves a secret in a file this call creates (0600), refusing one that is already
/// there: in a shared directory, that one may be someone else's, or a link to elsewhere.
fn create_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    write_with(&options, path, bytes)
}

/// Replaces a file's content at once: a `mint` reading it meanwhile sees the old keys or
/// the new ones, never half a file. The new content goes to a file of its own first,
/// created as [`create_private`] creates one, then takes the old one's name.
fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.new", std::process::id()));
    let next = PathBuf::from(name);
    let _ = std::fs::remove_file(&next);
    create_private(&next, bytes)?;
    std::fs::rename(&next, path).map_err(|error| {
        let _ = std::fs::remove_file(&next);
        Failure::Other(format!("{}: {error}", path.display()))
    })
}

fn write_with(options: &std::fs::OpenOptions, path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut options = options.clone();
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
    file.write_all(bytes).map_err(context)?;
    Ok(())
}

pub(crate) async fn serve(args: Serve) -> Outcome {
    let key_file = key_file(&args.keys);
    let keys = keys(&key_file)?;
    let issuer = MockIssuer::builder()
        .port(args.port)
        .audience(&args.audience)
        .key(keys[0].clone())
        .fallback(console::answer)
        .start()
        .await;
    for key in &keys[1..] {
        issuer.add_key(key.clone());
    }
    for client in args.clients {
        issuer.add_client(&client.name, &client.secret, client.permissions);
    }
    for user in args.users {
        issuer.add_user(&user.name, &user.secret, user.permissions);
    }
    if let Some(path) = &args.accounts {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::Other(format!("{}: {error}", path.display())))?;
        let accounts: Value = serde_json::from_str(&text)
            .map_err(|error| Failure::Other(format!("{}: {error}", path.display())))?;
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
    for (endpoint, fault) in args.faults {
        issuer.set_fault(endpoint, fault);
    }
    println!("issuer          {}", issuer.issuer());
    println!("console         {}/", issuer.base_url());
    println!("discovery       {}", issuer.discovery_url());
    println!("JWKS            {}", issuer.jwks_url());
    println!("token endpoint  {}", issuer.token_url());
    println!("introspection   {}", issuer.introspection_url());
    println!("audience        {}", args.audience);
    println!("\ncommands on standard input: rotate, faults off, quit");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => match line.trim() {
                    "rotate" => rotate(&issuer, &key_file),
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

/// A new signing key, saved before it is announced so that a `mint` started on the
/// announcement signs with it: the key file lists it first, then every key still
/// published (tokens signed by the old one keep verifying, as after a real rotation).
fn rotate(issuer: &MockIssuer, key_file: &Path) {
    let active = issuer.rotate();
    let mut keys = vec![active.clone()];
    keys.extend(
        issuer
            .keys()
            .into_iter()
            .filter(|k| k.kid() != active.kid()),
    );
    match replace_private(key_file, keys_json(&keys).as_bytes()) {
        Ok(()) => println!(
            "now signing with {} (saved in {})",
            active.kid(),
            key_file.display()
        ),
        // Serving goes on: only later runs lose the new key.
        Err(Failure::Other(error) | Failure::Usage(error)) => {
            println!("now signing with {}", active.kid());
            eprintln!("the new key could not be saved, mint will not sign with it: {error}");
        }
    }
}

pub(crate) fn mint(args: &Mint) -> Outcome {
    let alg = match (args.alg, &args.hmac_secret_file) {
        (Some(alg), Some(_)) if !alg.is_hmac() => {
            return Err(Failure::Usage(format!(
                "--hmac-secret-file is for HS256, HS384 and HS512, not {alg}"
            )));
        }
        (Some(alg), _) => alg,
        (None, Some(_)) => Algorithm::HS256,
        (None, None) => Algorithm::RS256,
    };
    let key = if alg.is_hmac() {
        hmac_secret(args.hmac_secret_file.as_deref())?
    } else {
        let path = key_file(&args.keys);
        keys(&path)?
            .into_iter()
            .find(|k| {
                let own = k.algorithm();
                own == alg || (own == Algorithm::RS256 && alg.as_str().starts_with(['R', 'P']))
            })
            .ok_or_else(|| Failure::Other(format!("{}: no key for {alg}", path.display())))?
    };
    let mut token = TokenBuilder::new(&key)
        .alg(alg)
        .issuer(&args.issuer)
        .audience(&args.audience)
        .subject(&args.sub)
        .expires_in_secs(args.expires_in);
    // A shared secret is not published, so there is no key set for a kid to pick from.
    if alg.is_hmac() {
        token = token.no_kid();
    }
    if let Some(typ) = &args.typ {
        token = token.typ(typ);
    }
    if let Some(kid) = &args.kid {
        token = token.kid(kid);
    }
    if let Some(permissions) = &args.permissions {
        token = token.permissions(permissions.split(',').filter(|p| !p.is_empty()));
    }
    if let Some(scope) = &args.scope {
        token = token.scope(scope);
    }
    for (name, value) in &args.claims {
        token = token.claim(name, value.clone());
    }
    if args.dpop_bound {
        token = token.dpop_bound(&client_key(&args.client_key)?);
    }
    // The builder drew one random jti; the others get this run's prefix and a number.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let run = URL_SAFE_NO_PAD.encode(run.to_le_bytes());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for n in 0..args.count {
        let token = if n == 0 {
            token.sign()
        } else {
            token.clone().claim("jti", format!("{run}-{n}")).sign()
        };
        match &args.curl {
            Some(url) => writeln!(out, "curl -i {url} -H 'Authorization: Bearer {token}'")?,
            None => writeln!(out, "{token}")?,
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn proof(args: &Proof) -> Outcome {
    let mut proof = DpopProof::new(&client_key(&args.client_key)?, &args.method, &args.url);
    if let Some(token) = &args.token {
        proof = proof.token(token);
    }
    if let Some(nonce) = &args.nonce {
        proof = proof.nonce(nonce);
    }
    println!("{}", proof.sign());
    Ok(ExitCode::SUCCESS)
}

/// A new API key on standard error, shown this once and kept nowhere, and its
/// `[[api_keys]]` entry (the digest, never the key) alone on standard output, so
/// `>> keys.toml` appends the entry and never the secret.
pub(crate) fn apikey_new(args: &ApikeyNew) -> Outcome {
    // The layer's own rule: a key of another prefix would be refused at build.
    check_prefix(&args.prefix).map_err(|e| Failure::Usage(format!("--prefix: {e}")))?;
    let new = NewApiKey::generate(&args.prefix);
    let permissions: Vec<&str> = args
        .permissions
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    let quoted = |text: &str| serde_json::Value::from(text).to_string();
    eprintln!(
        "The API key, shown once (hand it to its holder now; standard output has only its digest):"
    );
    eprintln!("{}", new.key());
    println!("[[api_keys]]");
    println!("id = {}", quoted(&args.id));
    println!("digest = {}", quoted(new.digest()));
    let list: Vec<String> = permissions.iter().map(|p| quoted(p)).collect();
    println!("permissions = [{}]", list.join(", "));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn completions(args: &Completions) -> Outcome {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    // Written whole afterwards: the generator panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn decode(args: &Decode) -> Outcome {
    let token = token(&args.token).await?;
    let mut segments = token.split('.');
    let (Some(header), Some(payload)) = (segment(segments.next()), segment(segments.next())) else {
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
    if args.json {
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

pub(crate) async fn explain(args: &Explain) -> Outcome {
    let token = token(&args.token).await?;
    let issuer = match &args.issuer {
        Some(issuer) => issuer.clone(),
        None => {
            let iss = segment(token.split('.').nth(1))
                .and_then(|payload| payload.get("iss")?.as_str().map(str::to_owned))
                .ok_or_else(|| {
                    Failure::Usage("the token names no issuer (iss): give --issuer".into())
                })?;
            eprintln!("issuer taken from the token: {iss}");
            iss
        }
    };
    let mut builder = JwtAuthConfig::builder().issuer(issuer);
    for audience in &args.audiences {
        builder = builder.audience(audience);
    }
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| Failure::Other(format!("{}: {error}", path.display())))
    };
    let text = |path: &Path| -> Result<String, Failure> {
        String::from_utf8(read(path)?)
            .map_err(|_| Failure::Other(format!("{}: not UTF-8 text", path.display())))
    };
    let remote = if let Some(path) = &args.jwks {
        builder = builder.jwks(text(path)?);
        false
    } else if let Some(path) = &args.pem {
        builder = builder.pem(text(path)?);
        false
    } else if let Some(path) = &args.hmac_secret_file {
        builder = builder.hmac_secret(without_line_breaks(read(path)?));
        false
    } else {
        true
    };
    let config = builder.build()?;
    if remote {
        load_keys(&config).await?;
    }
    let report = Verifier::new(config).explain(&token).await;
    if args.json {
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
