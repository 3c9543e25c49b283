//! `gpt2 tokenize` and `gpt2 detokenize` (in progress).

/// Arguments of `gpt2 tokenize`.
#[derive(clap::Args)]
pub struct TokenizeArgs {}
/// Arguments of `gpt2 detokenize`.
#[derive(clap::Args)]
pub struct DetokenizeArgs {}

/// Runs `gpt2 tokenize`.
pub fn run_tokenize(_args: TokenizeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
/// Runs `gpt2 detokenize`.
pub fn run_detokenize(_args: DetokenizeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
