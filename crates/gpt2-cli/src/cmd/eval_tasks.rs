//! The task evaluations of `gpt2 eval`: sliding-window perplexity of a text (`--file`) and the
//! scores of a classifier (`--task classify --data FILE`). The arithmetic lives in
//! [`gpt2::tasks`]; this module reads files, draws progress and prints.

use std::path::Path;

use anyhow::{bail, Context};
use gpt2::tasks::classify::{self, argmax, LabelSet, Metrics};
use gpt2::tasks::perplexity;
use gpt2::tokenizer::{Special, Tokenizer};
use indicatif::{ProgressBar, ProgressStyle};

use super::eval::Args;
use super::task_data::classify_file;

fn bar(len: usize, unit: &str) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!(
            "eval [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    )
}

/// `gpt2 eval --file TEXT [--seq-len T] [--stride S]`.
pub fn perplexity(args: &Args, file: &Path) -> anyhow::Result<()> {
    let model = crate::common::load_model(args.model.as_deref())?;
    let cfg = model.config();
    let n_ctx = args.seq_len.unwrap_or(cfg.n_positions);
    if n_ctx < 2 || n_ctx > cfg.n_positions {
        bail!(
            "--seq-len {n_ctx}: the window must be 2 to {} tokens (n_positions)",
            cfg.n_positions
        );
    }
    let stride = args.stride.unwrap_or(n_ctx / 2);
    let text = crate::common::read_text(file, "--file")?;
    let tok = Tokenizer::gpt2()?;
    let ids = tok.encode(&text, Special::None);
    if ids.len() < 2 {
        bail!(
            "--file {}: {} token(s): at least 2 are needed to score one",
            file.display(),
            ids.len()
        );
    }
    let windows = perplexity::windows(ids.len(), n_ctx, stride).len();
    let pb = bar(windows, "windows");
    let totals = perplexity::sliding_window(
        &model,
        &ids,
        text.len() as u64,
        n_ctx,
        stride,
        4,
        &mut |done, _| pb.set_position(done as u64),
    )
    .with_context(|| format!("--file {}", file.display()))?;
    pb.finish_and_clear();
    if args.json {
        println!("{}", totals.to_json());
    } else {
        println!(
            "nll {:.4}  perplexity {:.3}  bits/byte {:.4}  tokens scored {}  (window {n_ctx}, stride {stride}, {windows} windows)",
            totals.mean_nll(),
            totals.perplexity(),
            totals.bits_per_byte(),
            totals.tokens_scored
        );
    }
    Ok(())
}

/// `gpt2 eval --task classify --data FILE`.
pub fn classify(args: &Args, data: &Path) -> anyhow::Result<()> {
    let model = crate::common::load_model(args.model.as_deref())?;
    let params = &*model.f32_params();
    let labels = LabelSet::from_config(&params.cfg).context("--model")?;
    let tok = Tokenizer::gpt2()?;
    let opts = args.columns.encode_options(&params.cfg)?;
    let ds = classify_file(data, "--data", &args.columns, &labels, &tok, &opts)?;
    for e in &ds.examples {
        params
            .cfg
            .check_ids(&e.ids)
            .with_context(|| format!("--data {}:{}", data.display(), e.line))?;
    }
    let seqs: Vec<Vec<u32>> = ds.examples.iter().map(|e| e.ids.clone()).collect();
    let pb = bar(seqs.len(), "texts");
    let probs = classify::predict(params, &seqs, 32, &mut |n| pb.inc(n as u64))?;
    pb.finish_and_clear();
    let m = Metrics::new(
        labels.len(),
        ds.examples
            .iter()
            .zip(&probs)
            .map(|(e, p)| (e.label, argmax(p))),
    );
    if args.json {
        println!("{}", m.to_json(&labels));
        return Ok(());
    }
    println!(
        "accuracy {:.4}  macro-F1 {:.4}  examples {}",
        m.accuracy(),
        m.macro_f1(),
        m.total()
    );
    let w = labels
        .names()
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<w$}  precision  recall  f1      support", "label");
    for (k, name) in labels.names().iter().enumerate() {
        println!(
            "{name:<w$}  {:<9.4}  {:<6.4}  {:<6.4}  {}",
            m.precision(k),
            m.recall(k),
            m.f1(k),
            m.confusion[k].iter().sum::<u64>()
        );
    }
    println!("confusion matrix (rows: true label, columns: predicted)");
    let cw = m
        .confusion
        .iter()
        .flatten()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1)
        .max(w);
    print!("{:<w$}", "");
    for name in labels.names() {
        print!("  {name:>cw$}");
    }
    println!();
    for (k, name) in labels.names().iter().enumerate() {
        print!("{name:<w$}");
        for c in &m.confusion[k] {
            print!("  {c:>cw$}");
        }
        println!();
    }
    Ok(())
}
