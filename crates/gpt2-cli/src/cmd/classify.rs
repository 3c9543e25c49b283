//! `gpt2 classify`: the label and class probabilities of texts under a classification model
//! (a `GPT2ForSequenceClassification` checkpoint, e.g. one made by `gpt2 train --task classify`).
//!
//! Output, one line per text: `LABEL<TAB>p(label)<TAB>name=p name=p …`; with `--json`,
//! `{"label": "positive", "probabilities": {"negative": 0.1, "positive": 0.9}}`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use gpt2::tasks::classify::{self, argmax, LabelSet};
use gpt2::tokenizer::{Special, Tokenizer};

use super::task_data::{note_truncated, LengthArgs};

/// Arguments of `gpt2 classify`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["text", "file"])))]
#[command(after_help = "Examples:
  gpt2 classify --model runs/sst2 --text \"a charming and often affecting journey\"
  gpt2 classify --model runs/sst2 --file reviews.txt --json")]
pub struct Args {
    /// A classification model: folder (config.json with num_labels / id2label, model.safetensors
    /// with score.weight) or Hugging Face id.
    #[arg(long)]
    pub model: String,
    /// The text to classify.
    #[arg(long)]
    pub text: Option<String>,
    /// A UTF-8 file with one text per line (blank lines are skipped).
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub length: LengthArgs,
    /// Texts per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// One JSON object per text: {"label": …, "probabilities": {label: p, …}}.
    #[arg(long)]
    pub json: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be > 0");
    }
    let texts: Vec<String> = match (&args.text, &args.file) {
        (Some(t), _) => vec![t.clone()],
        (None, Some(f)) => {
            let all = crate::common::read_text(f, "--file")?;
            let lines: Vec<String> = all
                .lines()
                .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
                .filter(|l| !l.trim().is_empty())
                .collect();
            if lines.is_empty() {
                bail!("--file {}: no text (the file is empty)", f.display());
            }
            lines
        }
        (None, None) => bail!("one of --text or --file is required"),
    };
    let model = crate::common::load_model(Some(&args.model))?;
    let params = &*model.f32_params();
    let labels =
        LabelSet::from_config(&params.cfg).with_context(|| format!("--model {}", args.model))?;
    let max_len = args.length.max_len(&params.cfg)?;
    let how = args.length.truncate.into();
    let tok = Tokenizer::gpt2()?;
    let mut truncated = 0;
    let mut seqs = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        let mut ids = tok.encode(t, Special::None);
        if ids.is_empty() {
            bail!("text {} is empty", i + 1);
        }
        if gpt2::tasks::Truncate::apply(how, &mut ids, max_len) {
            truncated += 1;
        }
        if let Err(e) = params.cfg.check_ids(&ids) {
            let which = match &args.file {
                Some(f) => format!("{} text {}", f.display(), i + 1),
                None => "--text".to_string(),
            };
            bail!(
                "{which}: {e}: this model's vocabulary is smaller than GPT-2's tokenizer ({} ids)",
                tok.vocab_size()
            );
        }
        seqs.push(ids);
    }
    let source = args.file.clone().unwrap_or_else(|| PathBuf::from("--text"));
    note_truncated(&source, truncated, texts.len(), max_len, how);
    let probs = classify::predict(params, &seqs, args.batch_size, &mut |_| {})?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for p in &probs {
        let best = argmax(p);
        if args.json {
            let probabilities: serde_json::Map<String, serde_json::Value> = labels
                .names()
                .iter()
                .zip(p)
                // the shortest decimal that reads back as the same f32 (0.0078122918, not
                // 0.0078122918494045734, the f64 widening of it)
                .map(|(n, &x)| {
                    let x: f64 = x.to_string().parse().unwrap_or(x as f64);
                    (n.clone(), serde_json::Value::from(x))
                })
                .collect();
            let obj =
                serde_json::json!({"label": labels.names()[best], "probabilities": probabilities});
            writeln!(out, "{obj}")?;
        } else {
            let all: Vec<String> = labels
                .names()
                .iter()
                .zip(p)
                .map(|(n, x)| format!("{n}={x:.4}"))
                .collect();
            writeln!(
                out,
                "{}\t{:.4}\t{}",
                labels.names()[best],
                p[best],
                all.join(" ")
            )?;
        }
    }
    Ok(())
}
