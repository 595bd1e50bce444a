//! `doto-bulk validate FILE -m MAPPING`: offline read, map, normalise, check; writes the run directory.
use crate::cli::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _global: &GlobalArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not built yet")
}
