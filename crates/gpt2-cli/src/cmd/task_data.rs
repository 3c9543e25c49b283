//! Flags and file loading shared by the task commands: `gpt2 train --task classify|sft`,
//! `gpt2 eval --task classify` and `gpt2 classify`.
//!
//! Notes go to stderr once per file: how many texts were truncated to `--max-len` (and from which
//! end), how many examples were skipped for an unknown label.

use std::path::Path;

use anyhow::{bail, Context};
use clap::ValueEnum;
use gpt2::tasks::classify::{self, EncodeOptions, LabelSet, UnknownLabel};
use gpt2::tasks::{sft, Truncate};
use gpt2::tokenizer::Tokenizer;
use gpt2::trainer::{Start, TaskData};
use gpt2::{Gpt2Config, Rng};

use super::train::{Args as TrainArgs, Task};

/// `--truncate` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TruncateArg {
    /// Keep the first --max-len tokens.
    Right,
    /// Keep the last --max-len tokens.
    Left,
}

impl From<TruncateArg> for Truncate {
    fn from(t: TruncateArg) -> Self {
        match t {
            TruncateArg::Right => Truncate::Right,
            TruncateArg::Left => Truncate::Left,
        }
    }
}

/// `--unknown-label` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnknownLabelArg {
    /// Stop with an error naming the line.
    Error,
    /// Leave such examples out (and say how many on stderr).
    Skip,
}

/// How long texts are cut.
#[derive(clap::Args, Debug, Clone)]
pub struct LengthArgs {
    /// Longest text in tokens (default: the model's context, n_positions); longer texts are
    /// truncated (see --truncate) and a note on stderr says how many.
    #[arg(long)]
    pub max_len: Option<usize>,
    /// Which end of a longer text to cut: right keeps its start, left keeps its end.
    #[arg(long, value_enum, default_value_t = TruncateArg::Right)]
    pub truncate: TruncateArg,
}

/// `--label-column` when not given.
pub const DEFAULT_LABEL_COLUMN: &str = "label";

/// Columns of classification files, and length limits.
#[derive(clap::Args, Debug, Clone)]
pub struct ColumnArgs {
    /// Column (TSV/CSV header) or JSONL field holding the text (default: `sentence`, else `text`).
    #[arg(long)]
    pub text_column: Option<String>,
    /// Column or JSONL field holding the label (strings or integers).
    #[arg(long, default_value = DEFAULT_LABEL_COLUMN)]
    pub label_column: String,
    /// A label the model was not trained with (in --val-data or eval --data): stop with an error,
    /// or skip the example.
    #[arg(long, value_enum, default_value_t = UnknownLabelArg::Error)]
    pub unknown_label: UnknownLabelArg,
    #[command(flatten)]
    pub length: LengthArgs,
}

impl LengthArgs {
    /// `--max-len`, defaulting to and bounded by the model's context.
    pub fn max_len(&self, cfg: &Gpt2Config) -> anyhow::Result<usize> {
        let n = self.max_len.unwrap_or(cfg.n_positions);
        if n == 0 {
            bail!("--max-len must be > 0");
        }
        if n > cfg.n_positions {
            bail!(
                "--max-len {n} is longer than the model's context (n_positions {})",
                cfg.n_positions
            );
        }
        Ok(n)
    }
}

impl ColumnArgs {
    /// Encoding options for a model of config `cfg`.
    pub fn encode_options(&self, cfg: &Gpt2Config) -> anyhow::Result<EncodeOptions> {
        Ok(EncodeOptions {
            max_len: self.length.max_len(cfg)?,
            truncate: self.length.truncate.into(),
            unknown_label: match self.unknown_label {
                UnknownLabelArg::Error => UnknownLabel::Error,
                UnknownLabelArg::Skip => UnknownLabel::Skip,
            },
        })
    }
}

/// Prints the truncation note for `n` of `total` texts of `path`.
pub fn note_truncated(path: &Path, n: usize, total: usize, max_len: usize, how: Truncate) {
    if n > 0 {
        let end = match how {
            Truncate::Right => "their ends were cut (--truncate right)",
            Truncate::Left => "their starts were cut (--truncate left)",
        };
        eprintln!(
            "note: {n} of {total} texts in {} are longer than --max-len {max_len} tokens; {end}",
            path.display()
        );
    }
}

/// Reads and encodes a classification file against `labels`.
pub fn classify_file(
    path: &Path,
    flag: &str,
    cols: &ColumnArgs,
    labels: &LabelSet,
    tok: &Tokenizer,
    opts: &EncodeOptions,
) -> anyhow::Result<classify::Dataset> {
    let rows = classify::read_labeled(path, cols.text_column.as_deref(), &cols.label_column)
        .with_context(|| flag.to_string())?;
    let ds = classify::encode(&path.display().to_string(), &rows, labels, tok, opts)
        .with_context(|| flag.to_string())?;
    note_truncated(path, ds.truncated, rows.len(), opts.max_len, opts.truncate);
    if ds.skipped > 0 {
        eprintln!(
            "note: {} of {} examples in {} have a label the model does not know and were skipped",
            ds.skipped,
            rows.len(),
            path.display()
        );
    }
    Ok(ds)
}

/// The task data of `gpt2 train --task classify|sft`, the start adjusted for it (a classification
/// head added or replaced), and the longest sequence (the run's T).
pub fn load(args: &TrainArgs, start: Start) -> anyhow::Result<(Start, TaskData, usize)> {
    let tok = Tokenizer::gpt2()?;
    let cols = &args.columns;
    let cfg = match &start {
        Start::Fresh(p) => p.cfg.clone(),
        Start::Resume(ck) => ck.params.cfg.clone(),
    };
    let max_len = cols.length.max_len(&cfg)?;
    match args.task {
        Task::Lm => unreachable!("language-model data is read by cmd::train"),
        Task::Classify => {
            let rows =
                classify::read_labeled(&args.data, cols.text_column.as_deref(), &cols.label_column)
                    .context("--data")?;
            let (start, labels) = match start {
                Start::Resume(ck) => {
                    let labels = LabelSet::from_config(&ck.params.cfg)
                        .with_context(|| format!("--resume {}", ck.dir.display()))?;
                    if let Some(names) = &args.label_names {
                        if labels.names() != names.as_slice() {
                            bail!(
                                "--label-names {} differs from the resumed run's labels ({}); \
                                 resume with the same flags",
                                names.join(","),
                                labels.names().join(", ")
                            );
                        }
                    }
                    (Start::Resume(ck), labels)
                }
                Start::Fresh(p) => {
                    let mut labels = LabelSet::from_training(rows.iter().map(|r| r.label.as_str()))
                        .context("--data")?;
                    if let Some(names) = &args.label_names {
                        labels = labels.renamed(names)?;
                    }
                    if LabelSet::from_config(&p.cfg).is_ok_and(|l| l == labels) {
                        (Start::Fresh(p), labels)
                    } else {
                        if p.cfg.num_labels.is_some() {
                            eprintln!("note: the model's classification head has other labels; it is replaced by a new one");
                        }
                        let mut rng = Rng::seed(args.seed ^ 0x5C0E_0001);
                        let p = classify::with_new_head(&p, &labels, &mut rng);
                        (Start::Fresh(p), labels)
                    }
                }
            };
            let mut opts = cols.encode_options(&cfg)?;
            let val = match &args.val_data {
                Some(v) => Some(classify_file(v, "--val-data", cols, &labels, &tok, &opts)?),
                None => None,
            };
            opts.unknown_label = UnknownLabel::Error;
            let train = classify::encode(
                &args.data.display().to_string(),
                &rows,
                &labels,
                &tok,
                &opts,
            )
            .context("--data")?;
            note_truncated(
                &args.data,
                train.truncated,
                rows.len(),
                max_len,
                opts.truncate,
            );
            eprintln!(
                "classify: {} labels ({}), {} training texts{}",
                labels.len(),
                labels.names().join(", "),
                train.examples.len(),
                val.as_ref().map_or(String::new(), |v| format!(
                    ", {} validation texts",
                    v.examples.len()
                ))
            );
            Ok((start, TaskData::Classify { train, val }, max_len))
        }
        Task::Sft => {
            let read = |path: &Path, flag: &str| -> anyhow::Result<sft::Dataset> {
                let pairs = sft::read_pairs(path).with_context(|| flag.to_string())?;
                let ds = sft::encode(&path.display().to_string(), &pairs, &tok, max_len)
                    .with_context(|| flag.to_string())?;
                if ds.truncated > 0 {
                    eprintln!(
                        "note: {} of {} examples in {} are longer than --max-len {max_len} tokens; their prompts were cut from the left",
                        ds.truncated,
                        pairs.len(),
                        path.display()
                    );
                }
                Ok(ds)
            };
            let train = read(&args.data, "--data")?;
            let val = match &args.val_data {
                Some(v) => Some(read(v, "--val-data")?),
                None => None,
            };
            Ok((start, TaskData::Sft { train, val }, max_len))
        }
    }
}
