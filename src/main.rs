//! `doto-bulk`: parse the command line, run the command, map the result to an exit code.
use std::process::ExitCode;

fn main() -> ExitCode {
    doto_bulk::cli::main()
}
