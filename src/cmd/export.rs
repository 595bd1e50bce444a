//! `doto-bulk export`: not built yet (see the open issues).
use crate::cli::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _global: &GlobalArgs) -> anyhow::Result<u8> {
    anyhow::bail!("`doto-bulk export` is not available in this version yet")
}
