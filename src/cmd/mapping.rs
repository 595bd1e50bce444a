//! `doto-bulk mapping …`: not built yet (see the open issues).
use std::path::PathBuf;

use crate::cli::GlobalArgs;

#[derive(Debug, clap::Subcommand)]
pub enum MappingCommand {
    /// Draft a mapping from a file's headers.
    Init {
        /// CSV or XLSX file to read the headers from.
        file: PathBuf,
        /// Where to write the mapping (default: stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub async fn run(_cmd: MappingCommand, _global: &GlobalArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`doto-bulk mapping init` is not available in this version yet")
}
