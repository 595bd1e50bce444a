//! The command line: clap derive structs whose doc comments are the `--help` text, and the
//! top-level dispatch. Each command's own flags live beside its code in `src/cmd/`.
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::api::TokenHeader;
use crate::cmd;
use crate::exit;
use crate::normalise::Region;

/// Move contacts in and out of a Doto account in bulk.
#[derive(Debug, Parser)]
#[command(
    name = "doto-bulk",
    version,
    about,
    propagate_version = true,
    after_help = cmd::examples::TOP
)]
struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// No progress bars or summary chatter on stderr; stdout gets the run directory (or the
    /// output file) alone, for scripts.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail on stderr: `-v` logs every request (method, path, status, time, attempt) and
    /// every retry with its reason; `-vv` adds the bodies' sizes. Never the token.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print one JSON document on stdout at the end: the run's summary.json plus `run_dir` (an
    /// error as `{"error": ..., "exit_code": 1}`); the human output stays on stderr.
    #[arg(long, global = true)]
    pub json: bool,
}

// The flag's values: clap stays on this side, the API's type knows nothing of it.
impl clap::ValueEnum for TokenHeader {
    fn value_variants<'a>() -> &'a [Self] {
        &[TokenHeader::Underscore, TokenHeader::Dash]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let (name, help) = match self {
            TokenHeader::Underscore => ("underscore", "`api_access_token`"),
            TokenHeader::Dash => ("dash", "`api-access-token`"),
        };
        Some(clap::builder::PossibleValue::new(name).help(help))
    }
}

/// `--phone-region CC`: a country as an ISO code (`GB`) or an English name, as in a mapping's
/// `defaults.phone_region`; anything else is a usage error naming the value.
pub fn parse_phone_region(s: &str) -> Result<Region, String> {
    Region::parse(s).ok_or_else(|| {
        format!(
            "{s:?} is not a country: give an ISO 3166 code such as GB, DE or US, or an English name"
        )
    })
}

/// The whole command tree, as clap builds it (help, completions, the man page).
pub fn command() -> clap::Command {
    Cli::command()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offline: read, map, normalise and check a file; no account needed.
    #[command(after_help = cmd::examples::VALIDATE)]
    Validate(cmd::validate::Args),
    /// Validate, dedupe against the account, then create/update contacts.
    #[command(after_help = cmd::examples::IMPORT)]
    Import(cmd::import::Args),
    /// Every contact to .csv / .jsonl / .xlsx / .parquet.
    #[command(after_help = cmd::examples::EXPORT)]
    Export(cmd::export::Args),
    /// Undo an import from its run directory.
    #[command(after_help = cmd::examples::REVERT)]
    Revert(cmd::revert::Args),
    /// Mapping file helpers.
    #[command(subcommand, after_help = cmd::examples::MAPPING)]
    Mapping(cmd::mapping::MappingCommand),
    /// Run the local emulator of the Doto contacts API.
    #[command(after_help = cmd::examples::SANDBOX)]
    Sandbox(cmd::sandbox::Args),
    /// Print a shell completion script on stdout.
    #[command(after_help = cmd::examples::COMPLETIONS)]
    Completions(cmd::completions::Args),
    /// Write the man pages (or print the main one on stdout).
    #[command(after_help = cmd::examples::MAN)]
    Man(cmd::man::Args),
}

/// Parse the command line and run; errors are printed once, here, with their causes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::logging::init(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    let json = cli.global.json;
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            if json {
                cmd::emit::error(&format!("{err:#}"), exit::FATAL);
            }
            ExitCode::from(exit::FATAL)
        }
    }
}

/// Dispatch to the command; returns the exit code.
async fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = cli.global;
    match cli.command {
        Command::Validate(a) => cmd::validate::run(a, &g).await,
        Command::Import(a) => cmd::import::run(a, &g).await,
        Command::Export(a) => cmd::export::run(a, &g).await,
        Command::Revert(a) => cmd::revert::run(a, &g).await,
        Command::Mapping(c) => cmd::mapping::run(c, &g).await,
        Command::Sandbox(a) => cmd::sandbox::run(a, &g).await,
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man(a) => cmd::man::run(a),
    }
}
