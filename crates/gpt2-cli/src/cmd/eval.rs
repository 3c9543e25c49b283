//! `gpt2 eval` (not yet implemented).

/// Arguments of `gpt2 eval`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gpt2 eval` is not implemented yet")
}
