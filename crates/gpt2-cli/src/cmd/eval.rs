//! `gpt2 eval`: mean next-token loss and perplexity of a model on a token shard.
//!
//! The shard is cut into consecutive non-overlapping windows of T tokens: window j predicts tokens
//! `jT + 1 … jT + T` from tokens `jT … jT + T − 1` (each window starts with an empty context). A
//! last, shorter window covers what remains, so every token after the first is predicted once:
//! `tokens = N − 1`. loss = mean of −log p(target) in nats, perplexity = e^loss.
//!
//! Structure: [`run`] picks an evaluation by its input: `--data`, a token shard, gives a
//! [`Totals`] that [`report`] prints; `--file`, a text, gives the sliding-window perplexity of
//! [`gpt2::tasks::perplexity`] (windows of `--seq-len` tokens advanced by `--stride`);
//! `--task classify --data FILE` gives accuracy, macro-F1, per-class precision and recall and the
//! confusion matrix of a classifier ([`gpt2::tasks::classify::Metrics`]).

use std::path::PathBuf;

use anyhow::{bail, Context};
use gpt2::data::Shard;
use gpt2::{KvCache, Logits, Model};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

/// Arguments of `gpt2 eval`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gpt2 eval --model gpt2 --data data/shakespeare/val.bin --seq-len 1024 --json\n  gpt2 eval --file wiki.test.txt --stride 128 --json\n  gpt2 eval --task classify --model runs/sst2 --data sst2/dev.tsv --json"
)]
pub struct Args {
    /// Model folder (config.json + model.safetensors), Hugging Face id (e.g. gpt2) or `.gguf` file; default: the
    /// model that ships with the project.
    #[arg(long)]
    pub model: Option<String>,
    /// Token shard to evaluate on (e.g. val.bin from `gpt2 prepare`); with --task classify, a
    /// TSV, CSV or JSONL file of texts and labels.
    #[arg(long, required_unless_present = "file")]
    pub data: Option<PathBuf>,
    /// A UTF-8 text file: perplexity with a sliding window (every token after the first scored
    /// once); reports mean NLL, perplexity, tokens scored and bits per byte.
    #[arg(long, conflicts_with = "data")]
    pub file: Option<PathBuf>,
    /// Window length T in tokens (default: the model's context, n_positions).
    #[arg(long)]
    pub seq_len: Option<usize>,
    /// With --file: tokens each window advances by (default: half the window); smaller is slower
    /// and gives every token more context.
    #[arg(long, requires = "file")]
    pub stride: Option<usize>,
    /// What to evaluate: next-token loss (lm) or a classifier's accuracy (classify).
    #[arg(long, value_enum, default_value_t = EvalTask::Lm)]
    pub task: EvalTask,
    #[command(flatten)]
    pub columns: crate::cmd::task_data::ColumnArgs,
    /// Print one JSON object instead of text: `{"loss","perplexity","tokens"}` for a shard,
    /// `{"nll","perplexity","tokens_scored","bits_per_byte"}` for --file, `{"accuracy",
    /// "macro_f1","examples","labels","per_class","confusion_matrix"}` for --task classify.
    #[arg(long)]
    pub json: bool,
}

/// `gpt2 eval --task` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EvalTask {
    /// Next-token loss and perplexity.
    Lm,
    /// Classification accuracy, macro-F1, per-class precision/recall, confusion matrix.
    Classify,
}

/// Summed negative log-likelihood over a number of predicted tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Σ −log p(target), nats, summed in f64.
    pub nll: f64,
    /// Number of predicted tokens.
    pub tokens: u64,
}

impl Totals {
    /// Mean loss in nats per token.
    pub fn loss(&self) -> f64 {
        self.nll / self.tokens as f64
    }
}

/// Σ −log softmax(logits)\[target\] over the rows of `logits` (R, V) with `targets` (R).
fn nll_sum(logits: &[f32], targets: &[u32], v: usize) -> f64 {
    logits
        .par_chunks(v)
        .zip(targets.par_iter())
        .map(|(row, &y)| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|&l| ((l - max) as f64).exp()).sum();
            max as f64 + sum.ln() - row[y as usize] as f64
        })
        .sum()
}

/// Evaluates `model` on consecutive non-overlapping windows of `t` tokens of `shard` (see the
/// module doc). `on_window` is called after each window.
pub fn eval_shard(
    model: &Model,
    shard: &Shard,
    t: usize,
    on_window: &mut dyn FnMut(),
) -> anyhow::Result<Totals> {
    let v = model.config().vocab_size;
    let n = shard.len();
    let mut cache = KvCache::new(model.config(), t);
    let mut window = vec![0u32; t + 1];
    let mut totals = Totals::default();
    let mut start = 0;
    while start + 1 < n {
        let len = t.min(n - 1 - start);
        let w = &mut window[..len + 1];
        for (i, x) in w.iter_mut().enumerate() {
            *x = shard.token(start + i);
        }
        cache.clear();
        let logits = model.forward(&mut [&mut cache], &[&w[..len]], Logits::All)?;
        totals.nll += nll_sum(&logits, &w[1..], v);
        totals.tokens += len as u64;
        start += len;
        on_window();
    }
    Ok(totals)
}

/// Prints `totals` as text or JSON.
pub fn report(totals: &Totals, json: bool) {
    let loss = totals.loss();
    let ppl = loss.exp();
    if json {
        println!(
            "{}",
            serde_json::json!({"loss": loss, "perplexity": ppl, "tokens": totals.tokens})
        );
    } else {
        println!(
            "loss {loss:.4}  perplexity {ppl:.3}  tokens {}",
            totals.tokens
        );
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(file) = &args.file {
        if args.task == EvalTask::Classify {
            bail!("--file measures perplexity; evaluate a classifier with --task classify --data FILE");
        }
        return crate::cmd::eval_tasks::perplexity(&args, file);
    }
    let data = args.data.clone().context("--data or --file is required")?;
    if args.task == EvalTask::Classify {
        return crate::cmd::eval_tasks::classify(&args, &data);
    }
    let model = crate::common::load_model(args.model.as_deref())?;
    let cfg = model.config();
    let t = args.seq_len.unwrap_or(cfg.n_positions);
    if t == 0 {
        bail!("--seq-len must be > 0");
    }
    if t > cfg.n_positions {
        bail!(
            "--seq-len {t} is longer than the model's context (n_positions {})",
            cfg.n_positions
        );
    }
    let shard =
        Shard::open(&data, cfg.vocab_size).with_context(|| format!("--data {}", data.display()))?;
    if shard.len() < 2 {
        bail!(
            "--data {}: {} token(s): at least 2 are needed to predict one",
            data.display(),
            shard.len()
        );
    }
    let windows = (shard.len() - 1).div_ceil(t);
    let bar = ProgressBar::new(windows as u64).with_style(
        ProgressStyle::with_template("eval [{bar:30}] {pos}/{len} windows {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let totals = eval_shard(&model, &shard, t, &mut || bar.inc(1))?;
    bar.finish_and_clear();
    report(&totals, args.json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nll_of_uniform_logits_is_log_v() {
        let v = 7;
        let logits = vec![0.5f32; 2 * v];
        let got = nll_sum(&logits, &[3, 6], v);
        assert!((got - 2.0 * (v as f64).ln()).abs() < 1e-9, "{got}");
    }
}
