//! `gpt2 generate` (in progress).

/// Arguments of `gpt2 generate`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gpt2 generate` is not implemented yet")
}
