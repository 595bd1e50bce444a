//! `doto-bulk completions SHELL`: the shell's completion script for every command and flag, on
//! stdout (clap_complete, from the same command tree as `--help`).
use clap_complete::Shell;

use crate::exit;

/// Print a completion script for SHELL on stdout.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut crate::cli::command(), "doto-bulk", &mut out);
    out
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script(args.shell))?;
    stdout.flush()?;
    Ok(exit::OK)
}
