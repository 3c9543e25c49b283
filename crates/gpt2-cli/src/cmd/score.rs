//! `gpt2 score` (in progress).

/// Arguments of `gpt2 score`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gpt2 score` is not implemented yet")
}
