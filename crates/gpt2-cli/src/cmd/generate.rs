//! `gpt2 generate`: text streams to stdout as it is generated.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use gpt2::generate::{generate, FinishReason, GenerateOptions};
use gpt2::sampling::SamplingParams;
use gpt2::tokenizer::{Special, Tokenizer};
use serde_json::json;

use crate::common::{load_model, parse_ids, read_text};

/// Arguments of `gpt2 generate`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gpt2 generate --prompt \"ROMEO:\"\n  gpt2 generate --model gpt2 --prompt \"The meaning of life is\" --temperature 0.8 --top-k 40 --seed 1\n  gpt2 generate --prompt-ids 464,3290 --temperature 0 --max-new-tokens 20 --json"
)]
pub struct Args {
    /// Model folder (config.json + model.safetensors), Hugging Face hub id (gpt2, owner/name) or
    /// llama.cpp GGUF file (`.gguf`: f32, f16, bf16, q8_0, q4_0; K-quants converted at load).
    /// Default: the small model shipped with the project.
    #[arg(long)]
    model: Option<String>,
    /// The prompt text. An empty prompt starts from <|endoftext|>, as GPT-2 does.
    #[arg(long, group = "input")]
    prompt: Option<String>,
    /// Read the prompt from a UTF-8 file.
    #[arg(long, group = "input")]
    prompt_file: Option<PathBuf>,
    /// The prompt as comma-separated token ids.
    #[arg(long, group = "input")]
    prompt_ids: Option<String>,
    /// New tokens at most.
    #[arg(long, default_value_t = 100)]
    max_new_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    temperature: f32,
    /// Keep only the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Nucleus sampling: keep the most likely tokens up to this total probability, in (0, 1].
    #[arg(long, allow_negative_numbers = true)]
    top_p: Option<f32>,
    /// Repetition penalty (CTRL): > 1 discourages repeating tokens; 1 is off.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    repetition_penalty: f32,
    /// RNG seed: the same seed gives the same text on any machine and thread count.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Do not stop at <|endoftext|>.
    #[arg(long)]
    ignore_eos: bool,
    /// Stop when this string appears (repeatable); the text is cut before it.
    #[arg(long)]
    stop: Vec<String>,
    /// Number of samples, generated together as one batch.
    #[arg(long, default_value_t = 1)]
    num_samples: usize,
    /// One JSON object per sample per line: prompt_tokens, tokens, text, finish_reason.
    #[arg(long)]
    json: bool,
    /// Treat <|endoftext|> in the prompt text as the special token 50256.
    #[arg(long)]
    allow_special: bool,
}

/// Runs `gpt2 generate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.num_samples == 0 {
        bail!("--num-samples must be at least 1");
    }
    let sampling = SamplingParams {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        repetition_penalty: args.repetition_penalty,
    };
    sampling.validate()?;
    let tok = Tokenizer::gpt2()?;
    let special = if args.allow_special {
        Special::AllowEndOfText
    } else {
        Special::None
    };
    let prompt: Vec<u32> = match (&args.prompt, &args.prompt_file, &args.prompt_ids) {
        (Some(p), _, _) => tok.encode(p, special),
        (_, Some(f), _) => tok.encode(&read_text(f, "--prompt-file")?, special),
        (_, _, Some(ids)) => {
            let ids = parse_ids(ids, "--prompt-ids")?;
            if ids.is_empty() {
                bail!("--prompt-ids: no ids given");
            }
            ids
        }
        _ => Vec::new(),
    };
    let model = load_model(args.model.as_deref())?;
    let opts = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling,
        seed: args.seed,
        ignore_eos: args.ignore_eos,
        stop: args.stop.clone(),
        top_logprobs: 0,
    };
    let mut gen = generate(&model, &tok, &prompt, &opts, args.num_samples)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stream = !args.json && args.num_samples == 1;
    if stream {
        if let Some(p) = &args.prompt {
            write!(out, "{p}")?;
            out.flush()?;
        }
    }
    let n_ctx = model.config().n_positions;
    for ev in gen.by_ref() {
        let ev = ev?;
        if stream {
            write!(out, "{}", ev.token.text)?;
            out.flush()?;
        }
        if let Some(f) = ev.token.finished {
            if f.context_full {
                eprintln!("\nnote: sample {} reached the model's context of {n_ctx} tokens (finish reason \"length\")", ev.sample);
            }
        }
    }
    if stream {
        writeln!(out)?;
    }
    for (i, s) in gen.sequences().iter().enumerate() {
        let reason = s.finished().map_or(FinishReason::Length, |f| f.reason);
        if args.json {
            let obj = json!({
                "prompt_tokens": s.prompt(),
                "tokens": s.generated(),
                "text": s.text(),
                "finish_reason": reason.as_str(),
            });
            writeln!(out, "{}", serde_json::to_string(&obj).context("json")?)?;
        } else if !stream {
            writeln!(
                out,
                "=== sample {i} (finish reason: {}) ===",
                reason.as_str()
            )?;
            if let Some(p) = &args.prompt {
                write!(out, "{p}")?;
            }
            writeln!(out, "{}", s.text())?;
        }
    }
    Ok(())
}
