//! `doto-bulk sandbox`: run the emulator until Ctrl-C.
use crate::cli::GlobalArgs;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _global: &GlobalArgs) -> anyhow::Result<u8> {
    anyhow::bail!("not built yet")
}
