//! `gpt2 train` (not yet implemented).

/// Arguments of `gpt2 train`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gpt2 train` is not implemented yet")
}
