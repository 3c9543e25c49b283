//! `gpt2 prepare` (not yet implemented).

/// Arguments of `gpt2 prepare`.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`gpt2 prepare` is not implemented yet")
}
