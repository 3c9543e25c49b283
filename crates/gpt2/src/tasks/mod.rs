//! Tasks on top of the GPT-2 trunk: sequence classification, prompt → completion fine-tuning and
//! sliding-window perplexity.
//!
//! - [`classify`]: a `score` head `(num_labels, C)` on the final hidden state (after `ln_f`) of the
//!   last non-padding token, as Hugging Face `GPT2ForSequenceClassification`; cross-entropy over
//!   the labels.
//! - [`sft`]: the language-model loss counted on the completion tokens only (and the closing
//!   `<|endoftext|>`), as PyTorch's cross-entropy with the prompt's labels set to −100.
//! - [`perplexity`]: windows of n_ctx tokens advanced by a stride; every token after the first is
//!   scored once with the longest context its window gives (the Hugging Face perplexity guide).
//!
//! All three reuse the training passes of [`crate::train`]: classification and fine-tuning through
//! the trunk hooks [`crate::train::forward_hidden`] / [`crate::train::backward_hidden`] (the
//! fine-tuning loss equals the per-token weighted loss of [`crate::train::backward_weighted`],
//! computed on the completion rows only), perplexity through [`crate::Model`]. [`records`] reads the example
//! files (TSV, CSV, JSONL) and [`ExampleLoader`] gives examples to the trainer in a seeded order.
//!
//! Non-goals: regression heads (`num_labels` 1), multi-label classification, token classification.

pub mod classify;
pub mod perplexity;
pub mod records;
pub mod sft;

use std::collections::HashMap;

use crate::config::Gpt2Config;
use crate::data::LoaderState;
use crate::rng::Rng;
use crate::train::Activations;

/// GPT-2 has no padding token: padded positions hold `<|endoftext|>` (50256), as the
/// `pad_token_id` Hugging Face checkpoints of GPT-2 classifiers use. Causal attention means a
/// padded position (after the sequence) changes nothing before it; heads and losses never read it.
pub const PAD_TOKEN_ID: u32 = crate::tokenizer::EOT;

/// Errors of the task data and heads. Every variant names the file (and line) at fault.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A malformed line, record or field.
    #[error("{path}:{line}: {msg}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line number (of the record's first line).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A file without a single example.
    #[error("{path}: no examples (the file is empty or has only a header)")]
    Empty {
        /// The file.
        path: String,
    },
    /// A header that lacks a needed column.
    #[error("{path}: no column {wanted} in the header (columns: {found}); {hint}")]
    MissingColumn {
        /// The file.
        path: String,
        /// The column(s) looked for, e.g. "`sentence` or `text`".
        wanted: String,
        /// The columns the header has.
        found: String,
        /// The flag that names the column.
        hint: String,
    },
    /// A label the model was not trained with.
    #[error("{path}:{line}: label `{label}` is not one of the model's labels ({known}); pass --unknown-label skip to skip such examples")]
    UnknownLabel {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The label.
        label: String,
        /// The labels the model knows, comma-separated.
        known: String,
    },
    /// Anything else that makes a task unusable (e.g. one label only, a model without a head).
    #[error("{0}")]
    Invalid(String),
}

/// Which end of a too-long sequence is cut (`--truncate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Truncate {
    /// Keep the first tokens (drop the end).
    #[default]
    Right,
    /// Keep the last tokens (drop the start).
    Left,
}

impl Truncate {
    /// Cuts `ids` to at most `max_len` tokens; returns whether anything was cut.
    pub fn apply(self, ids: &mut Vec<u32>, max_len: usize) -> bool {
        if ids.len() <= max_len {
            return false;
        }
        match self {
            Truncate::Right => ids.truncate(max_len),
            Truncate::Left => {
                ids.drain(..ids.len() - max_len);
            }
        }
        true
    }
}

/// The padded length of a batch whose longest sequence has `t` tokens: rounded up to a multiple
/// of 8 (so few distinct (B, T) shapes occur and their buffers can be reused), at most `max_t`.
pub fn padded_len(t: usize, max_t: usize) -> usize {
    t.div_ceil(8).saturating_mul(8).min(max_t).max(t)
}

/// Training buffers by (B, T), reused across batches of the same padded shape; at most `cap`
/// shapes are kept (all are dropped when a new one would exceed it).
#[derive(Debug)]
pub(crate) struct ActsCache {
    cap: usize,
    hidden_only: bool,
    map: HashMap<(usize, usize), Activations>,
}

impl ActsCache {
    /// `hidden_only`: buffers from [`Activations::new_hidden`] (no logits).
    pub(crate) fn new(cap: usize, hidden_only: bool) -> Self {
        Self {
            cap: cap.max(1),
            hidden_only,
            map: HashMap::new(),
        }
    }

    pub(crate) fn get(&mut self, cfg: &Gpt2Config, b: usize, t: usize) -> &mut Activations {
        if !self.map.contains_key(&(b, t)) && self.map.len() >= self.cap {
            self.map.clear();
        }
        let hidden_only = self.hidden_only;
        self.map.entry((b, t)).or_insert_with(|| {
            if hidden_only {
                Activations::new_hidden(cfg, b, t)
            } else {
                Activations::new(cfg, b, t)
            }
        })
    }
}

/// Gives batches of example indices `0..n`, in file order or in a seeded permutation redrawn
/// every epoch (Fisher–Yates from the back, as [`crate::data::DataLoader`]); a batch that crosses
/// the end of an epoch continues in the next. Its [`LoaderState`] is saved with checkpoints so a
/// resumed run reads exactly the batches the uninterrupted run would have read.
///
/// With [`ExampleLoader::bucketed`], each run of `bucket` consecutive indices of a shuffled epoch
/// is sorted by example length (stably), so a batch holds examples of similar length and little
/// padding is computed (length-bucketed sampling, as `transformers`' `group_by_length`).
#[derive(Debug, Clone)]
pub struct ExampleLoader {
    n: usize,
    shuffle: bool,
    /// (example lengths, bucket size) for length-bucketed shuffling.
    buckets: Option<(Vec<u32>, usize)>,
    perm: Vec<u32>,
    rng: Rng,
    state: LoaderState,
}

impl ExampleLoader {
    /// A loader over `n ≥ 1` examples; `seed: None` keeps the file order.
    pub fn new(n: usize, seed: Option<u64>) -> Self {
        Self::build(n, seed, None)
    }

    /// A shuffled loader whose epochs are sorted by `lengths` within runs of `bucket` examples
    /// (file order when `seed` is `None`).
    pub fn bucketed(lengths: Vec<u32>, bucket: usize, seed: Option<u64>) -> Self {
        Self::build(lengths.len(), seed, Some((lengths, bucket.max(1))))
    }

    fn build(n: usize, seed: Option<u64>, buckets: Option<(Vec<u32>, usize)>) -> Self {
        let mut l = Self {
            n,
            shuffle: seed.is_some(),
            buckets,
            perm: Vec::new(),
            rng: Rng::seed(seed.unwrap_or(0)),
            state: LoaderState {
                batches: 0,
                pos: 0,
                epoch: 0,
                rng: None,
            },
        };
        l.new_epoch();
        l
    }

    fn new_epoch(&mut self) {
        self.perm.clear();
        self.perm.extend(0..self.n as u32);
        if self.shuffle {
            self.state.rng = Some(self.rng.s);
            for i in (1..self.n).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                self.perm.swap(i, j);
            }
            if let Some((lengths, bucket)) = &self.buckets {
                for run in self.perm.chunks_mut(*bucket) {
                    run.sort_by_key(|&i| lengths[i as usize]);
                }
            }
        }
        self.state.pos = 0;
        self.state.epoch += 1;
    }

    /// The next `b` example indices.
    pub fn next_batch(&mut self, b: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(b);
        for _ in 0..b {
            if self.state.pos as usize == self.perm.len() {
                self.new_epoch();
            }
            out.push(self.perm[self.state.pos as usize] as usize);
            self.state.pos += 1;
        }
        self.state.batches += 1;
        out
    }

    /// Where the loader stands.
    pub fn state(&self) -> LoaderState {
        self.state.clone()
    }

    /// Moves to a position saved by [`ExampleLoader::state`] of a loader over as many examples
    /// with the same seed.
    ///
    /// Errors: [`TaskError::Invalid`] when the state cannot come from such a loader.
    pub fn restore(&mut self, state: &LoaderState) -> Result<(), TaskError> {
        if state.pos as usize > self.n || state.epoch == 0 {
            return Err(TaskError::Invalid(format!(
                "example {} of epoch {} does not exist in a set of {} examples",
                state.pos, state.epoch, self.n
            )));
        }
        if self.shuffle {
            let rng = state
                .rng
                .ok_or_else(|| TaskError::Invalid("the saved state has no shuffling RNG".into()))?;
            self.rng = Rng { s: rng };
        }
        self.state.epoch = state.epoch - 1;
        self.new_epoch();
        self.state = state.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_the_requested_end() {
        let mut a: Vec<u32> = (0..10).collect();
        assert!(Truncate::Right.apply(&mut a, 4));
        assert_eq!(a, [0, 1, 2, 3]);
        let mut b: Vec<u32> = (0..10).collect();
        assert!(Truncate::Left.apply(&mut b, 4));
        assert_eq!(b, [6, 7, 8, 9]);
        assert!(!Truncate::Left.apply(&mut b, 4));
    }

    #[test]
    fn loader_visits_every_example_once_per_epoch_and_resumes_exactly() {
        let mut l = ExampleLoader::new(7, Some(3));
        let first: Vec<usize> = (0..7).flat_map(|_| l.next_batch(1)).collect();
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>());
        assert_ne!(first, sorted, "a seeded order is shuffled");
        let mut a = ExampleLoader::new(7, Some(3));
        a.next_batch(5);
        let saved = a.state();
        let rest: Vec<usize> = (0..4).flat_map(|_| a.next_batch(3)).collect();
        let mut b = ExampleLoader::new(7, Some(3));
        b.restore(&saved).unwrap();
        let again: Vec<usize> = (0..4).flat_map(|_| b.next_batch(3)).collect();
        assert_eq!(rest, again);
        let mut seq = ExampleLoader::new(3, None);
        assert_eq!(seq.next_batch(4), [0, 1, 2, 0]);
        // bucketed: the same examples per run of 4, sorted by length within it
        let lengths: Vec<u32> = vec![5, 1, 4, 2, 8, 3, 7];
        let mut plain = ExampleLoader::new(7, Some(9));
        let mut buck = ExampleLoader::bucketed(lengths.clone(), 4, Some(9));
        let (p, q) = (plain.next_batch(7), buck.next_batch(7));
        for (a, b) in p.chunks(4).zip(q.chunks(4)) {
            let mut a = a.to_vec();
            a.sort_by_key(|&i| lengths[i]);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn padded_len_rounds_up_within_the_context() {
        assert_eq!(padded_len(1, 256), 8);
        assert_eq!(padded_len(17, 256), 24);
        assert_eq!(padded_len(250, 256), 256);
        assert_eq!(padded_len(30, 20), 30);
    }
}
