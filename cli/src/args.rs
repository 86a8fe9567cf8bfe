//! The command line: every command and option with its help text, declared for clap.
//! Values with a shape of their own (accounts, faults, claims, algorithms) are parsed
//! here, so that a bad one is a usage error naming its option before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::styling::Styles;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueHint};
use serde_json::Value;
use tower_jwt_auth::Algorithm;
use tower_jwt_auth::testing::{DEFAULT_AUDIENCE, Endpoint, Fault};

#[derive(Parser)]
#[command(
    name = "jwt-auth",
    version,
    about = "Mint, decode and explain JWT access tokens; run a mock identity provider",
    after_help = section(
        "Notes",
        "  Tokens are read from arguments or standard input and never sent anywhere but where\n  \
           a command says: explain fetches the issuer's keys, never the token.",
    ) + "\n\n" + &section(
        "Exit status",
        "  0  done; for explain: the layer would accept the token\n  \
           1  explain: the layer would refuse the token; decode: not a JWT\n  \
           2  usage, network or identity-provider errors",
    ) + "\n\n`jwt-auth <COMMAND> --help` shows each command's options and examples.",
    arg_required_else_help = true,
    // Options given twice keep their last value, as they always have in this tool.
    args_override_self = true,
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// A mock OpenID Connect provider: discovery, JWKS, token endpoint, browser console
    Serve(Serve),
    /// Sign a token with any claims, algorithm, kid and lifetime
    Mint(Mint),
    /// Show a token's header and payload, times in UTC and relative
    Decode(Decode),
    /// Run the layer's checks on a token and say why it passes or fails
    Explain(Explain),
    /// Sign a DPoP proof (RFC 9449) for one request
    Proof(Proof),
    /// Answer a proxy's auth subrequests (nginx, Caddy, Traefik, Envoy) with the layer's verdicts
    Gate(Gate),
    /// Make API keys: a new key, printed once, and its configuration entry
    #[command(subcommand)]
    Apikey(Apikey),
    /// Print a completion script for a shell
    Completions(Completions),
}

/// A help section after the options, its title styled as clap styles its own.
fn section(title: &str, body: &str) -> String {
    let header = Styles::styled().get_header().to_owned();
    format!("{header}{title}:{header:#}\n{body}")
}

#[derive(Args)]
#[command(after_help = section(
    "Notes",
    "  Its browser console, at / of the same address, mints tokens and explains any token.\n  \
       While it runs, type on standard input: rotate (a new signing key, the old one still\n  \
       published; the key file is updated, so mint signs with the new key), faults off, or quit.\n\n  \
       --accounts reads {\"clients\": [{\"id\", \"secret\", \"permissions\": [..]}],\n  \
       \x20                 \"users\": [{\"name\", \"password\", \"permissions\": [..]}]}\n\n  \
       --fault ENDPOINT=FAULT: ENDPOINT is discovery, jwks, token or introspection; FAULT is\n  \
       down (503), garbage (an HTML page) or slow:MS (answers after MS milliseconds).",
) + "\n\n" + &section(
    "Example",
    "  jwt-auth serve --port 9000 --client demo:demo-secret:read,write\n  \
       curl -s http://127.0.0.1:9000/oauth/token -u demo:demo-secret -d grant_type=client_credentials",
))]
pub(crate) struct Serve {
    /// Listen port on 127.0.0.1 (0 picks a free one)
    #[arg(long, value_name = "N", default_value_t = 9000)]
    pub(crate) port: u16,
    /// Audience of its tokens
    #[arg(long, value_name = "AUD", default_value = DEFAULT_AUDIENCE)]
    pub(crate) audience: String,
    /// A client for the client_credentials grant (repeatable)
    #[arg(long = "client", value_name = "ID:SECRET:PERMS", value_parser = account)]
    pub(crate) clients: Vec<Account>,
    /// A user for the password grant (repeatable)
    #[arg(long = "user", value_name = "NAME:PASSWORD:PERMS", value_parser = account)]
    pub(crate) users: Vec<Account>,
    /// Clients and users from a JSON file (its shape is below)
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) accounts: Option<PathBuf>,
    /// Make an endpoint fail (repeatable; see below)
    #[arg(long = "fault", value_name = "ENDPOINT=FAULT", value_parser = fault)]
    pub(crate) faults: Vec<(Endpoint, Fault)>,
    #[command(flatten)]
    pub(crate) keys: KeyFile,
}

#[derive(Args)]
#[command(after_help = section(
    "Notes",
    "  Every path is a decision endpoint. The original request is read from X-Forwarded-Method\n  \
       and X-Forwarded-Uri (Traefik, Caddy), else X-Original-Method and X-Original-URI (nginx),\n  \
       else the request's own method and path (Envoy ext_authz, [gate] path_prefix stripped).\n  \
       200 with the x-jwt-* claim headers allows; anything else is the layer's refusal.\n  \
       The gate trusts those headers: let only the proxy reach it (loopback or a private network).\n\n  \
       The file is the library's settings file (TOML, YAML or JSON; JWT_* variables too) with a\n  \
       [gate] table: forward_claims, path_prefix and [[gate.routes]] (path, methods, require,\n  \
       public, single_use). SIGHUP or a change of the file's content reloads it.",
) + "\n\n" + &section(
    "Example",
    "  jwt-auth gate --config gate.toml --listen 127.0.0.1:9091 --ops-listen 127.0.0.1:9092",
))]
pub(crate) struct Gate {
    /// The settings file: the library's options and the gate's own table
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) config: PathBuf,
    /// Address of the decision endpoint (port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9091")]
    pub(crate) listen: std::net::SocketAddr,
    /// Address of /metrics (Prometheus text), /ready and /health; off unless given
    #[arg(long, value_name = "ADDR")]
    pub(crate) ops_listen: Option<std::net::SocketAddr>,
    /// Check the file (nothing is fetched), print a summary and exit: 0 valid, 2 not
    #[arg(long)]
    pub(crate) check_config: bool,
}

/// The signing keys `serve` publishes and `mint` signs with.
#[derive(Args)]
pub(crate) struct KeyFile {
    /// The signing keys' file [default: in the temporary directory]
    #[arg(id = "key_file", long = "key-file", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) path: Option<PathBuf>,
}

/// The DPoP client key `mint --dpop-bound` binds tokens to and `proof` signs with.
#[derive(Args)]
pub(crate) struct ClientKeyFile {
    /// The DPoP client key's file [default: in the temporary directory]
    #[arg(id = "client_key_file", long = "client-key-file", value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) path: Option<PathBuf>,
}

#[derive(Args)]
#[command(after_help = section(
    "Notes",
    "  --alg RS256, RS384, RS512, PS256, PS384, PS512, ES256 and EdDSA sign with the keys\n  \
       serve publishes. HS256, HS384 and HS512 sign with a shared secret: the one in the file\n  \
       --hmac-secret-file names (a new random one when the file does not exist yet), or else\n  \
       a new random one in a new private file. Standard error names the file; explain\n  \
       --hmac-secret-file verifies such tokens. --hmac-secret-file alone means HS256.",
) + "\n\n" + &section(
    "Examples",
    "  jwt-auth mint --sub alice --permissions read,write\n  \
       jwt-auth mint --expires-in -60 --curl http://127.0.0.1:3000/documents\n  \
       jwt-auth mint --count 10000 > tokens.txt\n  \
       jwt-auth mint --alg HS256 --hmac-secret-file dev.secret",
))]
pub(crate) struct Mint {
    /// The token's iss
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9000", value_hint = ValueHint::Url)]
    pub(crate) issuer: String,
    /// The token's aud
    #[arg(long, value_name = "AUD", default_value = DEFAULT_AUDIENCE)]
    pub(crate) audience: String,
    /// The token's sub
    #[arg(long, value_name = "SUBJECT", default_value = "test-user")]
    pub(crate) sub: String,
    /// A permissions array, comma-separated
    #[arg(long, value_name = "A,B")]
    pub(crate) permissions: Option<String>,
    /// A scope string, space-separated
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: Option<String>,
    /// Lifetime in seconds (negative: already expired)
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 3600,
        allow_negative_numbers = true
    )]
    pub(crate) expires_in: i64,
    /// The signing algorithm, see below [default: RS256]
    #[arg(
        long,
        value_name = "ALG",
        value_parser = algorithm(),
        ignore_case = true,
        hide_possible_values = true
    )]
    pub(crate) alg: Option<Algorithm>,
    /// The header's kid [default: the key's; none for HS*]
    #[arg(long, value_name = "KID")]
    pub(crate) kid: Option<String>,
    /// The header's typ (at+jwt: an RFC 9068 access token) [default: JWT]
    #[arg(long, value_name = "TYP")]
    pub(crate) typ: Option<String>,
    /// Any claim (repeatable; a value that is not JSON is a string)
    #[arg(long = "claim", value_name = "NAME=JSON", value_parser = claim)]
    pub(crate) claims: Vec<(String, Value)>,
    /// Bind it to the DPoP client key (cnf.jkt)
    #[arg(long)]
    pub(crate) dpop_bound: bool,
    /// Print a curl command that sends the token to URL
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub(crate) curl: Option<String>,
    /// N tokens, one a line, each with its own jti
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) count: u64,
    /// The shared secret for HS256, HS384 and HS512, see below
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) hmac_secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) keys: KeyFile,
    #[command(flatten)]
    pub(crate) client_key: ClientKeyFile,
}

#[derive(Args)]
#[command(after_help = section(
    "Example",
    "  TOKEN=$(jwt-auth mint --dpop-bound)\n  \
       curl http://127.0.0.1:3000/documents -H \"Authorization: DPoP $TOKEN\" \\\n      \
           -H \"DPoP: $(jwt-auth proof --url http://127.0.0.1:3000/documents --token $TOKEN)\"",
))]
pub(crate) struct Proof {
    /// The request's URL (htu)
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub(crate) url: String,
    /// The request's method (htm)
    #[arg(long, value_name = "METHOD", default_value = "GET")]
    pub(crate) method: String,
    /// The access token it goes with (sets ath)
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// A server nonce from a DPoP-Nonce header
    #[arg(long, value_name = "NONCE")]
    pub(crate) nonce: Option<String>,
    #[command(flatten)]
    pub(crate) client_key: ClientKeyFile,
}

/// The token a command reads.
#[derive(Args)]
pub(crate) struct TokenArg {
    /// The token, or a pasted Authorization value (Bearer or DPoP); - reads standard input
    #[arg(value_name = "TOKEN")]
    pub(crate) token: String,
}

#[derive(Args)]
#[command(after_help = section(
    "Notes",
    "  The token is only decoded, never verified and never sent anywhere.",
) + "\n\n" + &section(
    "Example",
    "  jwt-auth mint | jwt-auth decode -",
))]
pub(crate) struct Decode {
    #[command(flatten)]
    pub(crate) token: TokenArg,
    /// One JSON object: header, payload, and the times in UTC and relative
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Args)]
#[command(
    group(ArgGroup::new("keys").args(["jwks", "pem", "hmac_secret_file"])),
    after_help = section(
        "Notes",
        "  It runs the checks JwtAuthLayer itself runs, in its order, and stops where the layer\n  \
           stops. A route's own permission guard (RequirePermission) is not part of it: a token\n  \
           explain accepts can still get 403 on a route that needs a permission it lacks.\n\n  \
           Keys come from the issuer by OIDC discovery, unless --jwks, --pem or\n  \
           --hmac-secret-file gives them (a secret file as mint writes it: its bytes, less\n  \
           trailing line breaks).\n\n  \
           Without --issuer, the token's own iss is trusted for this run: it is read unverified,\n  \
           only to know where to fetch keys, so the issuer check proves nothing then.",
    ) + "\n\n" + &section(
        "Exit status",
        "  0  the layer would accept the token\n  \
           1  it would refuse it (the failing check is named)\n  \
           2  usage, network or identity-provider errors",
    ) + "\n\n" + &section(
        "Examples",
        "  jwt-auth explain --issuer http://127.0.0.1:9000 --audience https://api.example.com \"$TOKEN\"\n  \
           jwt-auth explain --audience https://api.example.com --hmac-secret-file dev.secret \"$TOKEN\"",
    ),
)]
pub(crate) struct Explain {
    #[command(flatten)]
    pub(crate) token: TokenArg,
    /// The trusted issuer [default: the token's iss, see below]
    #[arg(long, value_name = "URL", value_hint = ValueHint::Url)]
    pub(crate) issuer: Option<String>,
    /// An accepted audience (repeatable)
    #[arg(long = "audience", value_name = "AUD", required = true)]
    pub(crate) audiences: Vec<String>,
    /// Verify with the keys of this JWKS document
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) jwks: Option<PathBuf>,
    /// Verify with this PEM public key
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) pem: Option<PathBuf>,
    /// Verify HS256, HS384 and HS512 with this shared secret
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub(crate) hmac_secret_file: Option<PathBuf>,
    /// The report as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

/// What `jwt-auth apikey` does.
#[derive(Subcommand)]
#[command(after_help = section(
    "Examples",
    "  jwt-auth apikey new --id billing-export --permissions read --prefix sk_live_",
))]
pub(crate) enum Apikey {
    /// A new key (32 random bytes, base64url, after the prefix), printed once on standard
    /// error, and the `[[api_keys]]` entry with its digest on standard output
    New(ApikeyNew),
}

#[derive(Args)]
#[command(after_help = section(
    "Examples",
    "  jwt-auth apikey new --id billing-export --permissions read\n  \
       jwt-auth apikey new --id partner-7 --permissions read,write --prefix sk_test_\n\n\
     The key goes to standard error, shown once; standard output holds only the entry\n\
     for the settings file or the API keys file (the digest, never the key), so\n\
     `jwt-auth apikey new --id billing-export >> keys.toml` appends the entry alone.",
))]
pub(crate) struct ApikeyNew {
    /// The key's id: the principal (`sub`) handlers see, and what revocation names
    #[arg(long, value_name = "ID")]
    pub(crate) id: String,
    /// The permissions the key grants, comma-separated
    #[arg(
        long,
        value_name = "PERMISSIONS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub(crate) permissions: Vec<String>,
    /// The prefix that tells keys from tokens: 3 characters or more of letters, digits
    /// and -._~+/, and not one a JWT could start with (eyJ)
    #[arg(long, value_name = "PREFIX", default_value = "sk_live_")]
    pub(crate) prefix: String,
}

#[derive(Args)]
#[command(after_help = section(
    "Examples",
    "  jwt-auth completions bash > ~/.local/share/bash-completion/completions/jwt-auth\n  \
       jwt-auth completions zsh > ~/.zfunc/_jwt-auth      (with ~/.zfunc in $fpath)\n  \
       jwt-auth completions fish > ~/.config/fish/completions/jwt-auth.fish\n  \
       jwt-auth completions powershell | Out-String | Invoke-Expression\n  \
       eval (jwt-auth completions elvish | slurp)",
))]
pub(crate) struct Completions {
    /// The shell to complete for
    #[arg(value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

/// A client or user of the mock provider: name, secret, permissions.
#[derive(Clone)]
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) secret: String,
    pub(crate) permissions: Vec<String>,
}

/// `name:secret:perm,perm` (the permissions may be left out).
fn account(spec: &str) -> Result<Account, String> {
    let mut parts = spec.splitn(3, ':');
    let (Some(name), Some(secret)) = (parts.next(), parts.next()) else {
        return Err("expected NAME:SECRET:PERMISSIONS".into());
    };
    let permissions = parts
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Account {
        name: name.to_owned(),
        secret: secret.to_owned(),
        permissions,
    })
}

/// `endpoint=down|garbage|slow:MS`.
fn fault(spec: &str) -> Result<(Endpoint, Fault), String> {
    let bad = || {
        "expected ENDPOINT=down|garbage|slow:MS, ENDPOINT one of discovery, jwks, token, introspection".to_owned()
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

/// `name=value`, the value as JSON when it is JSON and as a string otherwise.
fn claim(spec: &str) -> Result<(String, Value), String> {
    let (name, value) = spec
        .split_once('=')
        .ok_or_else(|| "expected NAME=VALUE".to_owned())?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
    Ok((name.to_owned(), value))
}

/// The algorithms `mint` can sign with. Any case is taken here, since the token's header
/// gets the exact JWS name whatever was typed (the layer matches names exactly). ES384 is
/// left out: `serve` has no P-384 key.
fn algorithm() -> impl TypedValueParser<Value = Algorithm> {
    const NAMES: [&str; 11] = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA", "HS256", "HS384",
        "HS512",
    ];
    PossibleValuesParser::new(NAMES).try_map(|name| {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(&name))
            .ok_or("not a JWS algorithm")
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_option_is_documented() {
        let cli = Cli::command();
        for command in cli.get_subcommands() {
            let name = command.get_name();
            assert!(command.get_about().is_some(), "{name}");
            assert!(
                command.get_after_help().is_some(),
                "{name}: notes or examples"
            );
            for arg in command.get_arguments() {
                assert!(arg.get_help().is_some(), "{name} {}", arg.get_id());
            }
        }
    }
}
