//! Sequence classification, as Hugging Face `GPT2ForSequenceClassification`: a `score` head
//! (num_labels × C, no bias) on the final hidden state of the last non-padding token.
//!
//! ```text
//! h      = ln_f(trunk(inputs))            (B, T, C)   train::forward_hidden
//! last_b = h[b, len_b − 1, :]             (B, C)      gather
//! logits = last · scoreᵀ                  (B, K)      matmul_forward_nt
//! loss   = mean_b −log softmax(logits_b)[label_b]     crossentropy_forward
//! ```
//!
//! and backward in reverse: `softmax_crossentropy_backward` → `matmul_backward_nt` (into
//! `score.weight` and `dlast`) → scatter `dlast` into `dh` (zero elsewhere) →
//! [`crate::train::backward_hidden`]. K = num_labels; other dims as the crate legend.
//!
//! Batches are padded on the right to a common T with `pad_token_id` (50256 for GPT-2, which has
//! no padding token; [`super::PAD_TOKEN_ID`]). Attention is causal, so a padded position changes
//! nothing at or before `len_b − 1`: logits and gradients are those of the unpadded sequence. This
//! equals Hugging Face's choice of "the rightmost token that is not `pad_token_id`" whenever the
//! text does not end in that id — ours never does, since texts are encoded with special tokens as
//! plain text.
//!
//! Data: [`read_labeled`] reads a TSV/CSV/JSONL file ([`super::records`]); the label set of a new
//! head is read from the training file, sorted (numerically when every label is an integer);
//! [`encode`] tokenizes and truncates to `max_len`. [`Metrics`] gives accuracy, per-class
//! precision/recall/F1, macro-F1 and the confusion matrix.
//!
//! Non-goals: regression (`num_labels` 1), multi-label classification, left padding.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Gpt2Config;
use crate::data::LoaderState;
use crate::kernels::matmul::{matmul_backward_nt, matmul_forward_nt};
use crate::kernels::softmax::{crossentropy_forward, softmax_crossentropy_backward};
use crate::params::{param_specs, Params};
use crate::rng::Rng;
use crate::tokenizer::{Special, Tokenizer};
use crate::train;
use crate::trainer::{MicroStep, Objective, TrainError};

use super::records::{read_records, Column};
use super::{padded_len, ActsCache, ExampleLoader, TaskError, Truncate, PAD_TOKEN_ID};

/// The labels of a classification head, in index order (`id2label`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet {
    names: Vec<String>,
}

impl LabelSet {
    /// Labels in this index order.
    pub fn new(names: Vec<String>) -> Self {
        Self { names }
    }

    /// The distinct labels of a training file, sorted: numerically when every label is an
    /// integer (`2 < 10`), else as strings.
    ///
    /// Errors: [`TaskError::Invalid`] for fewer than two labels (`num_labels` 1 would be
    /// regression, which is out of scope).
    pub fn from_training<'a>(labels: impl IntoIterator<Item = &'a str>) -> Result<Self, TaskError> {
        let mut names: Vec<String> = labels.into_iter().map(str::to_string).collect();
        names.sort();
        names.dedup();
        if names.iter().all(|n| n.parse::<i64>().is_ok()) {
            names.sort_by_key(|n| n.parse::<i64>().unwrap_or(0));
        }
        if names.len() < 2 {
            return Err(TaskError::Invalid(format!(
                "the training data has {} label(s) ({}): classification needs at least 2 \
                 (num_labels 1 would be regression, which is not supported)",
                names.len(),
                names.join(", ")
            )));
        }
        Ok(Self { names })
    }

    /// The labels of a classification model's config: `id2label` by index, or `LABEL_k` when it
    /// has none (Hugging Face's default names).
    ///
    /// Errors: [`TaskError::Invalid`] when the model has no head (`num_labels` unset).
    pub fn from_config(cfg: &Gpt2Config) -> Result<Self, TaskError> {
        let k = cfg.num_labels.ok_or_else(|| {
            TaskError::Invalid(
                "the model has no classification head (no num_labels / score.weight); \
                 fine-tune one with `gpt2 train --task classify`"
                    .into(),
            )
        })?;
        let names = (0..k)
            .map(|i| {
                cfg.id2label
                    .as_ref()
                    .and_then(|m| m.get(&i.to_string()).cloned())
                    .unwrap_or_else(|| format!("LABEL_{i}"))
            })
            .collect();
        Ok(Self { names })
    }

    /// Label names by index.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Number of labels K.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when there is no label.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of `label`: its exact name, or `k` for an integer label `k` < K when no name is
    /// an integer (the Hugging Face convention that a dataset's integer labels are class ids:
    /// `0` is `id2label["0"]`, whether that is `LABEL_0` or `negative`). Labels that are
    /// integers themselves (`1, 3, 5`) match only exactly.
    pub fn index(&self, label: &str) -> Option<usize> {
        self.names.iter().position(|n| n == label).or_else(|| {
            let k: usize = label.parse().ok()?;
            let named = !self.names.iter().any(|n| n.parse::<i64>().is_ok());
            (named && k < self.names.len()).then_some(k)
        })
    }

    /// This label set with the names `names` (`--label-names`), for a training file whose
    /// labels are the class ids `0..K−1` (as SST-2's and AG News's are): class `k` is called
    /// `names[k]` in `id2label` and in every output, and files may give either the id or the
    /// name.
    ///
    /// Errors: [`TaskError::Invalid`] when the labels are not exactly `0..K−1`, when the number
    /// of names is not K, or for an empty or repeated name.
    pub fn renamed(&self, names: &[String]) -> Result<Self, TaskError> {
        let ids = (0..self.len()).map(|k| k.to_string());
        if !self.names.iter().cloned().eq(ids) {
            let what = if self.names.iter().all(|n| n.parse::<i64>().is_ok()) {
                "integers but not the ids 0..K-1"
            } else {
                "words, used as names already"
            };
            return Err(TaskError::Invalid(format!(
                "--label-names names the class ids 0..K-1, but the training labels ({}) are {what}",
                self.names.join(", ")
            )));
        }
        if names.iter().all(|n| n.trim().is_empty()) {
            return Err(TaskError::Invalid("--label-names is empty".into()));
        }
        for (i, n) in names.iter().enumerate() {
            if n.trim().is_empty() {
                return Err(TaskError::Invalid(format!(
                    "--label-names: name {} of {} is empty",
                    i + 1,
                    names.len()
                )));
            }
            if n.trim().parse::<i64>().is_ok() {
                return Err(TaskError::Invalid(format!(
                    "--label-names: `{n}` is an integer; names are words such as `negative`"
                )));
            }
            if names[..i].iter().any(|m| m.trim() == n.trim()) {
                return Err(TaskError::Invalid(format!(
                    "--label-names: `{n}` is repeated"
                )));
            }
        }
        if names.len() != self.len() {
            return Err(TaskError::Invalid(format!(
                "--label-names gives {} name(s) for {} labels ({})",
                names.len(),
                self.len(),
                self.names.join(", ")
            )));
        }
        Ok(Self {
            names: names.iter().map(|n| n.trim().to_string()).collect(),
        })
    }

    /// Writes `num_labels`, `id2label`, `label2id` and `pad_token_id` (50256, as there is no
    /// padding token in GPT-2) into `cfg`.
    pub fn write_config(&self, cfg: &mut Gpt2Config) {
        cfg.num_labels = Some(self.len());
        cfg.id2label = Some(
            self.names
                .iter()
                .enumerate()
                .map(|(i, n)| (i.to_string(), n.clone()))
                .collect::<BTreeMap<_, _>>(),
        );
        cfg.label2id = Some(
            self.names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i))
                .collect(),
        );
        cfg.pad_token_id = Some(PAD_TOKEN_ID);
    }
}

/// One row of a classification file, before tokenization.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledText {
    /// 1-based line in the file.
    pub line: usize,
    /// The text.
    pub text: String,
    /// The label as written.
    pub label: String,
}

/// Reads text and label of every row of a TSV, CSV or JSONL file. The text column is
/// `text_column`, or by default `sentence`, else `text`; the label column is `label_column`.
///
/// Errors: as [`read_records`]; [`TaskError::Format`] for an empty label.
pub fn read_labeled(
    path: &Path,
    text_column: Option<&str>,
    label_column: &str,
) -> Result<Vec<LabeledText>, TaskError> {
    let text = match text_column {
        Some(c) => Column::new(&[c], "--text-column"),
        None => Column::new(&["sentence", "text"], "--text-column"),
    };
    let label = Column::new(&[label_column], "--label-column");
    read_records(path, &[text, label])?
        .into_iter()
        .map(|r| {
            let [text, label]: [String; 2] = r.values.try_into().expect("two columns");
            let label = label.trim().to_string();
            if label.is_empty() {
                return Err(TaskError::Format {
                    path: path.display().to_string(),
                    line: r.line,
                    msg: "empty label".into(),
                });
            }
            Ok(LabeledText {
                line: r.line,
                text,
                label,
            })
        })
        .collect()
}

/// What to do with a label the model does not know (`--unknown-label`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownLabel {
    /// Stop with [`TaskError::UnknownLabel`] naming the line.
    #[default]
    Error,
    /// Leave the example out (counted in [`Dataset::skipped`]).
    Skip,
}

/// How texts become model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Longest sequence in tokens (`--max-len`, at most n_positions).
    pub max_len: usize,
    /// Which end of a longer text is cut (`--truncate`).
    pub truncate: Truncate,
    /// Labels outside the label set (`--unknown-label`).
    pub unknown_label: UnknownLabel,
}

/// One tokenized example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// 1-based line in the file.
    pub line: usize,
    /// Token ids, 1 ≤ len ≤ max_len.
    pub ids: Vec<u32>,
    /// Label index.
    pub label: usize,
}

/// A tokenized classification file.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Examples longer than `max_len` that were cut.
    pub truncated: usize,
    /// Examples left out for an unknown label ([`UnknownLabel::Skip`]).
    pub skipped: usize,
}

impl Dataset {
    /// Σ tokens over the examples.
    pub fn num_tokens(&self) -> u64 {
        self.examples.iter().map(|e| e.ids.len() as u64).sum()
    }
}

/// Tokenizes `rows` (special tokens as plain text), maps labels through `labels` and truncates.
///
/// Errors: [`TaskError::Format`] for a text with no tokens; [`TaskError::UnknownLabel`] (with
/// [`UnknownLabel::Error`]); [`TaskError::Empty`] when nothing is left; [`TaskError::Invalid`] for
/// `max_len` 0.
pub fn encode(
    path: &str,
    rows: &[LabeledText],
    labels: &LabelSet,
    tok: &Tokenizer,
    opts: &EncodeOptions,
) -> Result<Dataset, TaskError> {
    if opts.max_len == 0 {
        return Err(TaskError::Invalid("--max-len must be > 0".into()));
    }
    let mut ds = Dataset {
        examples: Vec::with_capacity(rows.len()),
        truncated: 0,
        skipped: 0,
    };
    for r in rows {
        let Some(label) = labels.index(&r.label) else {
            match opts.unknown_label {
                UnknownLabel::Skip => {
                    ds.skipped += 1;
                    continue;
                }
                UnknownLabel::Error => {
                    return Err(TaskError::UnknownLabel {
                        path: path.into(),
                        line: r.line,
                        label: r.label.clone(),
                        known: labels.names().join(", "),
                    })
                }
            }
        };
        let mut ids = tok.encode(&r.text, Special::None);
        if ids.is_empty() {
            return Err(TaskError::Format {
                path: path.into(),
                line: r.line,
                msg: "empty text".into(),
            });
        }
        if opts.truncate.apply(&mut ids, opts.max_len) {
            ds.truncated += 1;
        }
        ds.examples.push(Example {
            line: r.line,
            ids,
            label,
        });
    }
    if ds.examples.is_empty() {
        return Err(TaskError::Empty { path: path.into() });
    }
    Ok(ds)
}

/// `params` with a fresh `score.weight` for `labels` (N(0, 0.02), as `transformers` initializes
/// `nn.Linear`) and the labels in its config; the trunk is copied unchanged (a previous head is
/// replaced).
pub fn with_new_head(params: &Params, labels: &LabelSet, rng: &mut Rng) -> Params {
    let mut cfg = params.cfg.clone();
    labels.write_config(&mut cfg);
    let mut out = Params::zeros(&cfg);
    let specs = param_specs(&cfg);
    let score = specs.last().expect("score.weight is the last tensor");
    debug_assert_eq!(score.name, "score.weight");
    out.data[..score.offset].copy_from_slice(&params.data[..score.offset]);
    for w in &mut out.data[score.offset..] {
        *w = 0.02 * rng.normal();
    }
    out
}

/// A padded batch: inputs (B, T) with `lengths[b]` real tokens each, then padding; labels (B).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Rows B.
    pub b: usize,
    /// Padded length T.
    pub t: usize,
    /// Token ids (B, T).
    pub inputs: Vec<u32>,
    /// Real tokens per row (B), each in 1..=T.
    pub lengths: Vec<usize>,
    /// Label index per row (B); empty when unknown (prediction).
    pub labels: Vec<u32>,
}

impl Batch {
    /// Pads `seqs` on the right with `pad` to T = [`padded_len`] of the longest (≤ `max_t`).
    pub fn new(seqs: &[&[u32]], labels: Vec<u32>, pad: u32, max_t: usize) -> Self {
        let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(1);
        let t = padded_len(longest, max_t);
        let mut inputs = vec![pad; seqs.len() * t];
        for (row, s) in inputs.chunks_exact_mut(t).zip(seqs) {
            row[..s.len()].copy_from_slice(s);
        }
        Self {
            b: seqs.len(),
            t,
            inputs,
            lengths: seqs.iter().map(|s| s.len()).collect(),
            labels,
        }
    }
}

/// The padding id of a model: `pad_token_id` when it is a valid id, else 0 (any id will do:
/// padded positions are never read).
pub fn pad_id(cfg: &Gpt2Config) -> u32 {
    cfg.pad_token_id
        .filter(|&p| (p as usize) < cfg.vocab_size)
        .unwrap_or(0)
}

/// The classification forward and backward with every buffer they need, reused across batches.
#[derive(Debug)]
pub struct Classifier {
    cache: ActsCache,
    /// hidden state of each row's last token (B, C)
    last: Vec<f32>,
    /// score output (B, K)
    logits: Vec<f32>,
    /// log Σ e^logits (B), per-example loss (B)
    lse: Vec<f32>,
    losses: Vec<f32>,
}

impl Default for Classifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Classifier {
    /// Empty buffers (allocated at the first batch of each shape).
    pub fn new() -> Self {
        Self {
            cache: ActsCache::new(8, true),
            last: Vec::new(),
            logits: Vec::new(),
            lse: Vec::new(),
            losses: Vec::new(),
        }
    }

    /// Logits (B, K) of the last [`Classifier::forward`].
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Per-example cross-entropy (B) of the last [`Classifier::forward`] with labels.
    pub fn losses(&self) -> &[f32] {
        &self.losses
    }

    /// Logits of `batch` (kept, see [`Classifier::logits`]) and, when it has labels, the mean
    /// cross-entropy over its rows (NaN without labels). `dropout` as [`train::forward`].
    ///
    /// Panics if `params` has no score head or a length is 0 or over T (caller bugs).
    pub fn forward(&mut self, params: &Params, batch: &Batch, dropout: Option<&mut Rng>) -> f32 {
        let cfg = &params.cfg;
        let (b, t, c) = (batch.b, batch.t, cfg.n_embd);
        let k = cfg.num_labels.expect("a classification model");
        assert!(batch.lengths.iter().all(|&l| (1..=t).contains(&l)));
        let acts = self.cache.get(cfg, b, t);
        train::forward_hidden(params, acts, &batch.inputs, dropout);
        let hidden = acts.hidden();
        self.last.resize(b * c, 0.0);
        for (row, (dst, &len)) in self
            .last
            .chunks_exact_mut(c)
            .zip(&batch.lengths)
            .enumerate()
        {
            let at = (row * t + len - 1) * c;
            dst.copy_from_slice(&hidden[at..at + c]);
        }
        self.logits.resize(b * k, 0.0);
        let score = params.views().score.expect("score.weight");
        matmul_forward_nt(&mut self.logits, &self.last, score, b, c, k);
        if batch.labels.is_empty() {
            return f32::NAN;
        }
        self.lse.resize(b, 0.0);
        self.losses.resize(b, 0.0);
        crossentropy_forward(
            &mut self.losses,
            &mut self.lse,
            &self.logits,
            &batch.labels,
            b,
            k,
        );
        (self.losses.iter().map(|&l| l as f64).sum::<f64>() / b as f64) as f32
    }

    /// Adds `∂(loss_scale · loss)/∂θ` of the last [`Classifier::forward`] (same `batch`, with
    /// labels) into `grads`, `score.weight` included. Accumulates, like [`train::backward`].
    pub fn backward(
        &mut self,
        params: &Params,
        grads: &mut Params,
        batch: &Batch,
        loss_scale: f32,
    ) {
        let cfg = &params.cfg;
        let (b, t, c) = (batch.b, batch.t, cfg.n_embd);
        let k = cfg.num_labels.expect("a classification model");
        debug_assert_eq!(batch.labels.len(), b);
        let dlosses = vec![loss_scale / b as f32; b];
        let mut dlogits = vec![0f32; b * k];
        softmax_crossentropy_backward(
            &mut dlogits,
            &self.logits,
            &self.lse,
            &batch.labels,
            &dlosses,
            b,
            k,
        );
        let mut dlast = vec![0f32; b * c];
        {
            let dscore = grads.views_mut().score.expect("score.weight gradient");
            let score = params.views().score.expect("score.weight");
            matmul_backward_nt(&mut dlast, dscore, &dlogits, &self.last, score, b, c, k);
        }
        let mut dhidden = vec![0f32; b * t * c];
        for (row, (src, &len)) in dlast.chunks_exact(c).zip(&batch.lengths).enumerate() {
            let at = (row * t + len - 1) * c;
            dhidden[at..at + c].copy_from_slice(src);
        }
        let acts = self.cache.get(cfg, b, t);
        train::backward_hidden(params, grads, acts, &batch.inputs, &dhidden);
    }
}

/// Class probabilities (softmax of the logits) of each sequence, in the order given; batches of
/// `batch_size` sequences of similar length. Every sequence must have 1..=n_positions tokens.
///
/// Errors: [`TaskError::Invalid`] for a model without a head, an empty sequence, one longer
/// than the context or a token id ≥ vocab_size.
pub fn predict(
    params: &Params,
    seqs: &[Vec<u32>],
    batch_size: usize,
    on_batch: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>, TaskError> {
    let cfg = &params.cfg;
    let k = LabelSet::from_config(cfg)?.len();
    if let Some((i, s)) = seqs
        .iter()
        .enumerate()
        .find(|(_, s)| s.is_empty() || s.len() > cfg.n_positions)
    {
        return Err(TaskError::Invalid(format!(
            "sequence {} has {} tokens: 1 to {} (n_positions) are needed",
            i + 1,
            s.len(),
            cfg.n_positions
        )));
    }
    for (i, s) in seqs.iter().enumerate() {
        cfg.check_ids(s)
            .map_err(|e| TaskError::Invalid(format!("sequence {}: {e}", i + 1)))?;
    }
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| seqs[i].len());
    let mut clf = Classifier::new();
    let mut out = vec![Vec::new(); seqs.len()];
    let pad = pad_id(cfg);
    for chunk in order.chunks(batch_size.max(1)) {
        let rows: Vec<&[u32]> = chunk.iter().map(|&i| seqs[i].as_slice()).collect();
        let batch = Batch::new(&rows, Vec::new(), pad, cfg.n_positions);
        clf.forward(params, &batch, None);
        for (&i, logits) in chunk.iter().zip(clf.logits().chunks_exact(k)) {
            out[i] = softmax(logits);
        }
        on_batch(chunk.len());
    }
    Ok(out)
}

/// softmax of one row, in f64.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits.iter().map(|&l| ((l - m) as f64).exp()).collect();
    let z: f64 = e.iter().sum();
    e.iter().map(|&x| (x / z) as f32).collect()
}

/// The index of the largest value (the first of ties).
pub fn argmax(xs: &[f32]) -> usize {
    xs.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// Counts of (true label, predicted label) and the scores derived from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// `confusion[true][predicted]`, K × K.
    pub confusion: Vec<Vec<u64>>,
}

impl Metrics {
    /// The confusion matrix of (true, predicted) label pairs over K labels.
    pub fn new(k: usize, pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let mut confusion = vec![vec![0u64; k]; k];
        for (t, p) in pairs {
            confusion[t][p] += 1;
        }
        Self { confusion }
    }

    /// Number of examples.
    pub fn total(&self) -> u64 {
        self.confusion.iter().flatten().sum()
    }

    /// Fraction predicted right.
    pub fn accuracy(&self) -> f64 {
        let right: u64 = (0..self.confusion.len())
            .map(|i| self.confusion[i][i])
            .sum();
        right as f64 / self.total().max(1) as f64
    }

    /// Of the examples predicted `k`, the fraction that are `k` (0 when none is predicted `k`).
    pub fn precision(&self, k: usize) -> f64 {
        let predicted: u64 = self.confusion.iter().map(|row| row[k]).sum();
        ratio(self.confusion[k][k], predicted)
    }

    /// Of the examples labelled `k`, the fraction predicted `k` (0 when there are none).
    pub fn recall(&self, k: usize) -> f64 {
        ratio(self.confusion[k][k], self.confusion[k].iter().sum())
    }

    /// Harmonic mean of precision and recall (0 when both are 0).
    pub fn f1(&self, k: usize) -> f64 {
        let (p, r) = (self.precision(k), self.recall(k));
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Unweighted mean of the per-class F1 (scikit-learn's `f1_score(average="macro")`).
    pub fn macro_f1(&self) -> f64 {
        let k = self.confusion.len();
        (0..k).map(|i| self.f1(i)).sum::<f64>() / k.max(1) as f64
    }

    /// `{"accuracy","macro_f1","examples","labels","per_class":{label:{precision,recall,f1,support}},"confusion_matrix"}`;
    /// confusion rows are true labels, columns predictions, in `labels` order.
    pub fn to_json(&self, labels: &LabelSet) -> serde_json::Value {
        let per_class: serde_json::Map<String, serde_json::Value> = labels
            .names()
            .iter()
            .enumerate()
            .map(|(k, name)| {
                (
                    name.clone(),
                    serde_json::json!({
                        "precision": self.precision(k),
                        "recall": self.recall(k),
                        "f1": self.f1(k),
                        "support": self.confusion[k].iter().sum::<u64>(),
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "accuracy": self.accuracy(),
            "macro_f1": self.macro_f1(),
            "examples": self.total(),
            "labels": labels.names(),
            "per_class": per_class,
            "confusion_matrix": self.confusion,
        })
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Mean loss and accuracy of `params` on the first `max_examples` examples of `data` (no
/// dropout), in batches of `b`.
pub fn evaluate(
    params: &Params,
    clf: &mut Classifier,
    data: &Dataset,
    b: usize,
    max_examples: usize,
) -> (f32, f32) {
    let n = data.examples.len().min(max_examples).max(1);
    let k = params.cfg.num_labels.unwrap_or(1);
    let pad = pad_id(&params.cfg);
    let (mut loss, mut right) = (0f64, 0usize);
    for chunk in data.examples[..n].chunks(b.max(1)) {
        let rows: Vec<&[u32]> = chunk.iter().map(|e| e.ids.as_slice()).collect();
        let labels = chunk.iter().map(|e| e.label as u32).collect();
        let batch = Batch::new(&rows, labels, pad, params.cfg.n_positions);
        loss += clf.forward(params, &batch, None) as f64 * chunk.len() as f64;
        right += clf
            .logits()
            .chunks_exact(k)
            .zip(chunk)
            .filter(|(l, e)| argmax(l) == e.label)
            .count();
    }
    ((loss / n as f64) as f32, right as f32 / n as f32)
}

/// Training batches are drawn length-bucketed: runs of this many batches' worth of shuffled
/// examples are sorted by length ([`ExampleLoader::bucketed`]), so little padding is computed.
pub const BUCKET_BATCHES: usize = 16;

/// The trainer's view of a classification run ([`crate::trainer::Objective`]).
#[derive(Debug)]
pub(crate) struct ClassifyObjective {
    train: Dataset,
    val: Option<Dataset>,
    loader: ExampleLoader,
    clf: Classifier,
    b: usize,
}

impl ClassifyObjective {
    pub(crate) fn new(train: Dataset, val: Option<Dataset>, b: usize, seed: Option<u64>) -> Self {
        let lengths = train.examples.iter().map(|e| e.ids.len() as u32).collect();
        let loader = ExampleLoader::bucketed(lengths, b * BUCKET_BATCHES, seed);
        Self {
            train,
            val,
            loader,
            clf: Classifier::new(),
            b,
        }
    }
}

impl Objective for ClassifyObjective {
    fn data_size(&self) -> u64 {
        self.train.num_tokens()
    }
    fn has_val(&self) -> bool {
        self.val.is_some()
    }
    fn prepare(&mut self, params: &Params, _eval: bool) -> Result<(), TrainError> {
        let cfg = &params.cfg;
        let Some(k) = cfg.num_labels else {
            return Err(TrainError::Invalid(
                "the model has no classification head (score.weight)".into(),
            ));
        };
        let sets = std::iter::once(("training", &self.train))
            .chain(self.val.as_ref().map(|v| ("validation", v)));
        for (set, e) in sets.flat_map(|(set, d)| d.examples.iter().map(move |e| (set, e))) {
            if e.label >= k {
                return Err(TrainError::Invalid(format!(
                    "{set} data, line {}: label index {} but the model has {k} labels",
                    e.line, e.label
                )));
            }
            if e.ids.len() > cfg.n_positions {
                return Err(TrainError::Invalid(format!(
                    "{set} data, line {}: {} tokens, more than the model's context (n_positions {})",
                    e.line,
                    e.ids.len(),
                    cfg.n_positions
                )));
            }
            cfg.check_ids(&e.ids).map_err(|err| {
                TrainError::Invalid(format!("{set} data, line {}: {err}", e.line))
            })?;
        }
        Ok(())
    }
    fn loader_state(&self) -> LoaderState {
        self.loader.state()
    }
    fn restore(&mut self, state: &LoaderState) -> Result<(), TrainError> {
        self.loader
            .restore(state)
            .map_err(|e| TrainError::Invalid(format!("cannot restore the example order: {e}")))
    }
    fn micro_step(
        &mut self,
        params: &Params,
        grads: &mut Params,
        dropout: Option<&mut Rng>,
    ) -> MicroStep {
        let idx = self.loader.next_batch(self.b);
        let rows: Vec<&[u32]> = idx
            .iter()
            .map(|&i| self.train.examples[i].ids.as_slice())
            .collect();
        let labels = idx
            .iter()
            .map(|&i| self.train.examples[i].label as u32)
            .collect();
        let batch = Batch::new(&rows, labels, pad_id(&params.cfg), params.cfg.n_positions);
        let loss = self.clf.forward(params, &batch, dropout);
        if loss.is_finite() {
            // the summed loss: dloss per example loss_scale / B = 1
            self.clf.backward(params, grads, &batch, batch.b as f32);
        }
        MicroStep {
            loss,
            counted: batch.b,
            tokens: batch.lengths.iter().sum(),
        }
    }
    fn evaluate(&mut self, params: &Params, steps: usize) -> Option<(f32, Option<f32>)> {
        let val = self.val.as_ref()?;
        let (loss, acc) = evaluate(params, &mut self.clf, val, self.b, steps * self.b);
        Some((loss, Some(acc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_numerically_and_reject_one_class() {
        let l = LabelSet::from_training(["10", "2", "2", "1"]).unwrap();
        assert_eq!(l.names(), ["1", "2", "10"]);
        let s = LabelSet::from_training(["pos", "neg"]).unwrap();
        assert_eq!(s.names(), ["neg", "pos"]);
        assert_eq!(s.index("pos"), Some(1));
        // an integer label is a class id when the names are words (id2label["0"] = "neg")
        assert_eq!(s.index("0"), Some(0));
        assert_eq!(s.index("2"), None);
        let e = LabelSet::from_training(["a", "a"]).unwrap_err().to_string();
        assert!(e.contains("regression"), "{e}");
        let hf = LabelSet::new(vec!["LABEL_0".into(), "LABEL_1".into()]);
        assert_eq!(hf.index("1"), Some(1));
    }

    #[test]
    fn metrics_match_hand_counts() {
        // true/pred: (0,0) (0,1) (1,1) (1,1) (2,0)
        let m = Metrics::new(3, [(0, 0), (0, 1), (1, 1), (1, 1), (2, 0)]);
        assert_eq!(m.accuracy(), 0.6);
        assert_eq!(m.precision(1), 2.0 / 3.0);
        assert_eq!(m.recall(0), 0.5);
        assert_eq!(m.f1(2), 0.0);
        // sklearn f1_score([0,0,1,1,2], [0,1,1,1,0], average="macro") = (0.5 + 0.8 + 0) / 3
        assert!((m.macro_f1() - 1.3 / 3.0).abs() < 1e-12, "{}", m.macro_f1());
    }
}
