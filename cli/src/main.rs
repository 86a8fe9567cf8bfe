//! `jwt-auth`: a mock identity provider, and minting, decoding and explaining of JWT
//! access tokens, on the public API of tower-jwt-auth. Tokens are read from arguments or
//! standard input and never sent anywhere but where a command says (`explain --issuer`
//! fetches keys, never the token).

mod args;
mod commands;
mod time;

use std::process::ExitCode;

const USAGE: &str = "\
jwt-auth: mint, decode and explain JWT access tokens; run a mock identity provider

USAGE:
    jwt-auth <COMMAND> [OPTIONS]

COMMANDS:
    serve     a mock OpenID Connect provider: discovery, JWKS, token endpoint
    mint      sign a token with any claims, algorithm, kid and lifetime
    decode    show a token's header and payload, times in UTC and relative
    explain   run the layer's checks on a token and say why it passes or fails
    proof     sign a DPoP proof for one request

`jwt-auth <COMMAND> --help` shows each command's options and examples.
";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "serve" => commands::serve(rest).await,
        "mint" => commands::mint(rest),
        "decode" => commands::decode(rest).await,
        "explain" => commands::explain(rest).await,
        "proof" => commands::proof(rest),
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(commands::Failure::Usage(format!(
            "unknown command {other:?}"
        ))),
    };
    match result {
        Ok(code) => code,
        Err(commands::Failure::Usage(message)) => {
            eprintln!("jwt-auth {command}: {message}\n(see jwt-auth {command} --help)");
            ExitCode::from(2)
        }
        Err(commands::Failure::Other(message)) => {
            eprintln!("jwt-auth {command}: {message}");
            ExitCode::from(2)
        }
    }
}
