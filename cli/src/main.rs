//! `jwt-auth`: a mock identity provider, minting, decoding and explaining of JWT access
//! tokens, and a decision service for proxies, on the public API of tower-jwt-auth. Tokens are read from arguments or
//! standard input and never sent anywhere but where a command says (`explain` fetches
//! keys, never the token).

mod args;
mod commands;
mod console;
mod gate;
mod time;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::args::{Cli, Command};
use crate::commands::Failure;

#[tokio::main]
async fn main() -> ExitCode {
    // clap answers --help, --version and usage errors itself: 0 for the first two, 2
    // for the last, as this tool always has.
    let matches = Cli::command().get_matches();
    let name = matches.subcommand_name().unwrap_or_default().to_owned();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let result = match cli.command {
        Command::Serve(args) => commands::serve(args).await,
        Command::Mint(args) => commands::mint(&args),
        Command::Decode(args) => commands::decode(&args).await,
        Command::Explain(args) => commands::explain(&args).await,
        Command::Proof(args) => commands::proof(&args),
        Command::Gate(args) => gate::run(args).await,
        Command::Apikey(args::Apikey::New(args)) => commands::apikey_new(&args),
        Command::Completions(args) => commands::completions(&args),
    };
    match result {
        Ok(code) => code,
        Err(Failure::Usage(message)) => usage_error(&name, message),
        Err(Failure::Other(message)) => {
            eprintln!("jwt-auth {name}: {message}");
            ExitCode::from(2)
        }
    }
}

/// A usage mistake only a command can see (options that do not fit together, a token
/// that names no issuer), told as clap tells its own: with the command's usage line
/// and exit status 2.
fn usage_error(name: &str, message: String) -> ! {
    let mut cli = Cli::command();
    // Building gives subcommands their full names ("jwt-auth explain") for the usage.
    cli.build();
    let command = cli.get_subcommands_mut().find(|c| c.get_name() == name);
    match command {
        Some(command) => command.error(ErrorKind::ArgumentConflict, message).exit(),
        None => Cli::command()
            .error(ErrorKind::ArgumentConflict, message)
            .exit(),
    }
}
