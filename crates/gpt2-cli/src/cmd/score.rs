//! `gpt2 score`: the log-probability of each token given the ones before it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;
use gpt2::kernels::softmax::log_prob;
use gpt2::tokenizer::{Special, Tokenizer};
use serde_json::json;

use crate::common::{load_model, parse_ids, read_text};

/// Arguments of `gpt2 score`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  gpt2 score --text \"To be, or not to be\" --json")]
pub struct Args {
    /// Model folder, hub id or `.gguf` file (default: the shipped model).
    #[arg(long)]
    model: Option<String>,
    /// The text to score.
    #[arg(long, group = "input")]
    text: Option<String>,
    /// Read the text from a UTF-8 file.
    #[arg(long, group = "input")]
    file: Option<PathBuf>,
    /// Comma-separated token ids to score.
    #[arg(long, group = "input")]
    ids: Option<String>,
    /// Print {"tokens","logprobs","nll","perplexity"}.
    #[arg(long)]
    json: bool,
    /// Treat <|endoftext|> in the text as the special token 50256.
    #[arg(long)]
    allow_special: bool,
}

/// Runs `gpt2 score`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let tok = Tokenizer::gpt2()?;
    let special = if args.allow_special {
        Special::AllowEndOfText
    } else {
        Special::None
    };
    let ids = match (&args.text, &args.file, &args.ids) {
        (Some(t), _, _) => tok.encode(t, special),
        (_, Some(f), _) => tok.encode(&read_text(f, "--file")?, special),
        (_, _, Some(s)) => parse_ids(s, "--ids")?,
        _ => bail!("give --text, --file or --ids"),
    };
    if ids.len() < 2 {
        bail!(
            "need at least 2 tokens to score (got {}): the first token has no context",
            ids.len()
        );
    }
    let model = load_model(args.model.as_deref())?;
    let v = model.config().vocab_size;
    let logits = model.logits(&ids)?;
    let logprobs: Vec<f64> = (0..ids.len() - 1)
        .map(|i| log_prob(&logits[i * v..(i + 1) * v], ids[i + 1] as usize))
        .collect();
    let nll = -logprobs.iter().sum::<f64>() / logprobs.len() as f64;
    let ppl = nll.exp();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            json!({"tokens": ids, "logprobs": logprobs, "nll": nll, "perplexity": ppl})
        )?;
    } else {
        writeln!(out, "{:>6}  {:>8}  {:>10}  token", "pos", "id", "logprob")?;
        for (i, lp) in logprobs.iter().enumerate() {
            let piece = tok.decode(&ids[i + 1..i + 2])?;
            writeln!(
                out,
                "{:>6}  {:>8}  {:>10.4}  {:?}",
                i + 1,
                ids[i + 1],
                lp,
                piece
            )?;
        }
        writeln!(
            out,
            "tokens {}  nll {nll:.4} nats/token  perplexity {ppl:.3}",
            ids.len()
        )?;
    }
    Ok(())
}
