//! `gpt2 tokenize` and `gpt2 detokenize`: GPT-2's byte-level BPE from the command line.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use gpt2::tokenizer::{Special, Tokenizer};

use crate::common::{parse_ids, read_text};

/// Arguments of `gpt2 tokenize`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  gpt2 tokenize \"Hello world\"        # 15496,995\n  gpt2 tokenize --json --file notes.txt\n  gpt2 tokenize --explain --merges \"Hello world\""
)]
pub struct TokenizeArgs {
    /// The text to tokenize.
    text: Option<String>,
    /// Read the text from a UTF-8 file instead.
    #[arg(long, conflicts_with = "text")]
    file: Option<PathBuf>,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
    /// Encode `<|endoftext|>` in the text as the special token 50256 (otherwise it is plain text).
    #[arg(long)]
    allow_special: bool,
    /// Show the steps: the pre-tokenizer's pieces, then each token's id, bytes and vocab.json string.
    #[arg(long)]
    explain: bool,
    /// With --explain: also the BPE merges that turn each piece's bytes into its tokens.
    #[arg(long, requires = "explain")]
    merges: bool,
}

/// Arguments of `gpt2 detokenize`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  gpt2 detokenize 15496,995           # Hello world")]
pub struct DetokenizeArgs {
    /// Comma-separated token ids, e.g. 15496,995.
    ids: String,
}

/// Runs `gpt2 tokenize`.
pub fn run_tokenize(args: TokenizeArgs) -> anyhow::Result<()> {
    let text = match (&args.text, &args.file) {
        (Some(t), None) => t.clone(),
        (None, Some(f)) => read_text(f, "--file")?,
        _ => bail!("give the text to tokenize, or --file FILE"),
    };
    let tok = Tokenizer::gpt2()?;
    let special = if args.allow_special {
        Special::AllowEndOfText
    } else {
        Special::None
    };
    if args.explain {
        return super::tokenize_explain::run(&tok, &text, special, args.json, args.merges);
    }
    let ids = tok.encode(&text, special);
    let out = if args.json {
        serde_json::to_string(&ids)?
    } else {
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    writeln!(std::io::stdout(), "{out}")?;
    Ok(())
}

/// Runs `gpt2 detokenize`.
pub fn run_detokenize(args: DetokenizeArgs) -> anyhow::Result<()> {
    let ids = parse_ids(&args.ids, "ids")?;
    let tok = Tokenizer::gpt2()?;
    let text = tok.decode(&ids)?;
    let mut out = std::io::stdout();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}
