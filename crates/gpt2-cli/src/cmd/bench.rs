//! `gpt2 bench` (in progress).

/// Arguments of `gpt2 bench`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gpt2 bench` is not implemented yet")
}
