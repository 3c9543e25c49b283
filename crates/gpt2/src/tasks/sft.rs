//! Prompt → completion fine-tuning: the language-model loss counted on the completion only.
//!
//! Each example is the token sequence `prompt + completion + <|endoftext|>` (P + Q + 1 tokens).
//! Inputs are its first P + Q tokens and targets the same shifted by one, as for pre-training;
//! the loss is the mean cross-entropy over the targets that are completion tokens or the closing
//! `<|endoftext|>` — targets `P-1 … P+Q-1` of each row — taken over all such targets of the
//! batch. This is PyTorch's `F.cross_entropy(..., ignore_index=-100)` with the prompt's and the
//! padding's labels set to −100 (what `transformers` computes for `labels`), done here with the
//! per-token weights 1/count on kept targets, 0 elsewhere — the weights of
//! [`train::backward_weighted`]; [`Finetuner`] computes the lm_head on the kept rows only.
//!
//! An empty prompt starts from `<|endoftext|>`, as GPT-2 does. An example longer than `max_len`
//! loses the start of its prompt (truncation from the left), so the completion is always kept
//! whole. Batches are padded on the right; padded positions have weight 0 and, attention being
//! causal, change nothing before them.
//!
//! Non-goals: multi-turn chat templates, packing several examples into one row.

use std::path::Path;

use crate::data::LoaderState;
use crate::kernels::matmul::{matmul_backward_nt, matmul_forward_nt};
use crate::kernels::softmax::{crossentropy_forward, softmax_crossentropy_backward};
use crate::params::Params;
use crate::rng::Rng;
use crate::tokenizer::{Special, Tokenizer, EOT};
use crate::train;
use crate::trainer::{MicroStep, Objective, TrainError};

use super::records::{read_records, Column};
use super::{padded_len, ActsCache, ExampleLoader, TaskError};

/// One prompt/completion pair as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// 1-based line in the file.
    pub line: usize,
    /// The prompt text.
    pub prompt: String,
    /// The completion text.
    pub completion: String,
}

/// Reads `{"prompt": …, "completion": …}` lines (JSONL; TSV/CSV with those columns work too).
///
/// Errors: as [`read_records`] (a line that is not an object or lacks a field names its line).
pub fn read_pairs(path: &Path) -> Result<Vec<Pair>, TaskError> {
    let cols = [
        Column::new(&["prompt"], "a `prompt` field"),
        Column::new(&["completion"], "a `completion` field"),
    ];
    Ok(read_records(path, &cols)?
        .into_iter()
        .map(|r| {
            let [prompt, completion]: [String; 2] = r.values.try_into().expect("two columns");
            Pair {
                line: r.line,
                prompt,
                completion,
            }
        })
        .collect())
}

/// One tokenized example: `ids = prompt + completion + [EOT]`, the first `prompt_len` of them the
/// prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// 1-based line in the file.
    pub line: usize,
    /// The whole sequence, 2 ≤ len ≤ max_len.
    pub ids: Vec<u32>,
    /// Prompt tokens at its start (≥ 1).
    pub prompt_len: usize,
}

/// A tokenized pairs file.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Examples whose prompt was cut from the left to fit `max_len`.
    pub truncated: usize,
}

impl Dataset {
    /// Σ tokens over the examples.
    pub fn num_tokens(&self) -> u64 {
        self.examples.iter().map(|e| e.ids.len() as u64).sum()
    }
}

/// Tokenizes pairs (special tokens as plain text) and cuts prompts from the left to `max_len`.
///
/// Errors: [`TaskError::Format`] when the completion and `<|endoftext|>` leave no room for one
/// prompt token; [`TaskError::Empty`] for no pairs; [`TaskError::Invalid`] for `max_len` < 2.
pub fn encode(
    path: &str,
    pairs: &[Pair],
    tok: &Tokenizer,
    max_len: usize,
) -> Result<Dataset, TaskError> {
    if max_len < 2 {
        return Err(TaskError::Invalid("--max-len must be at least 2".into()));
    }
    if pairs.is_empty() {
        return Err(TaskError::Empty { path: path.into() });
    }
    let mut ds = Dataset {
        examples: Vec::with_capacity(pairs.len()),
        truncated: 0,
    };
    for p in pairs {
        let mut prompt = tok.encode(&p.prompt, Special::None);
        if prompt.is_empty() {
            prompt.push(EOT);
        }
        let mut completion = tok.encode(&p.completion, Special::None);
        completion.push(EOT);
        if completion.len() + 1 > max_len {
            return Err(TaskError::Format {
                path: path.into(),
                line: p.line,
                msg: format!(
                    "the completion has {} tokens (with <|endoftext|>): with a prompt it cannot fit in --max-len {max_len}",
                    completion.len()
                ),
            });
        }
        let room = max_len - completion.len();
        if prompt.len() > room {
            prompt.drain(..prompt.len() - room);
            ds.truncated += 1;
        }
        let prompt_len = prompt.len();
        prompt.extend_from_slice(&completion);
        ds.examples.push(Example {
            line: p.line,
            ids: prompt,
            prompt_len,
        });
    }
    Ok(ds)
}

/// A padded batch: inputs and targets (B, T), and the loss weight of every target.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Rows B.
    pub b: usize,
    /// Padded length T.
    pub t: usize,
    /// Token ids (B, T).
    pub inputs: Vec<u32>,
    /// Next tokens (B, T); 0 on padding.
    pub targets: Vec<u32>,
    /// 1/count on completion targets, 0 on prompt and padding targets (B, T).
    pub weights: Vec<f32>,
    /// Number of completion targets (count).
    pub count: usize,
}

impl Batch {
    /// Rows of `examples`, padded with `pad` to T = [`padded_len`] of the longest input (≤ `max_t`).
    pub fn new(examples: &[&Example], pad: u32, max_t: usize) -> Self {
        let longest = examples.iter().map(|e| e.ids.len() - 1).max().unwrap_or(1);
        let t = padded_len(longest, max_t);
        let b = examples.len();
        let mut inputs = vec![pad; b * t];
        let mut targets = vec![0; b * t];
        let mut weights = vec![0f32; b * t];
        let mut count = 0;
        for (r, e) in examples.iter().enumerate() {
            let n = e.ids.len() - 1;
            inputs[r * t..r * t + n].copy_from_slice(&e.ids[..n]);
            targets[r * t..r * t + n].copy_from_slice(&e.ids[1..]);
            // target i is token i + 1: a completion token when i + 1 ≥ prompt_len
            for w in &mut weights[r * t + e.prompt_len - 1..r * t + n] {
                *w = 1.0;
                count += 1;
            }
        }
        let inv = 1.0 / count.max(1) as f32;
        weights.iter_mut().for_each(|w| *w *= inv);
        Self {
            b,
            t,
            inputs,
            targets,
            weights,
            count,
        }
    }
}

/// Forward and backward of prompt → completion batches with their buffers.
///
/// The lm_head and the softmax are computed on the counted rows only (the completion targets):
/// the trunk runs on every position ([`train::forward_hidden`]), then the hidden states of the
/// R counted rows are gathered, `logits (R, V) = h · wteᵀ`, and the backward scatters their
/// gradient back ([`train::backward_hidden`]). With long prompts and short completions this skips
/// most of the (B·T, V) lm_head work; the result is that of [`train::forward`] +
/// [`train::backward_weighted`] with the batch's weights (both are checked against PyTorch).
#[derive(Debug)]
pub struct Finetuner {
    cache: ActsCache,
    /// (row in B·T, target id, weight) of each counted target (R)
    rows: Vec<(usize, u32, f32)>,
    /// gathered hidden states (R, C), logits (R, V), lse (R), losses (R)
    sel: Vec<f32>,
    logits: Vec<f32>,
    lse: Vec<f32>,
    losses: Vec<f32>,
}

impl Default for Finetuner {
    fn default() -> Self {
        Self::new()
    }
}

impl Finetuner {
    /// Empty buffers (allocated for each new batch shape; a few shapes are kept).
    pub fn new() -> Self {
        Self {
            cache: ActsCache::new(4, true),
            rows: Vec::new(),
            sel: Vec::new(),
            logits: Vec::new(),
            lse: Vec::new(),
            losses: Vec::new(),
        }
    }

    /// The completion loss of `batch`: Σ weights · per-token cross-entropy, i.e. the mean over
    /// its completion targets. `dropout` as [`train::forward`].
    pub fn forward(&mut self, params: &Params, batch: &Batch, dropout: Option<&mut Rng>) -> f32 {
        let cfg = &params.cfg;
        let (c, v) = (cfg.n_embd, cfg.vocab_size);
        let acts = self.cache.get(cfg, batch.b, batch.t);
        train::forward_hidden(params, acts, &batch.inputs, dropout);
        let hidden = acts.hidden();
        self.rows.clear();
        self.rows.extend(
            batch
                .weights
                .iter()
                .enumerate()
                .filter(|(_, &w)| w != 0.0)
                .map(|(i, &w)| (i, batch.targets[i], w)),
        );
        let r = self.rows.len();
        self.sel.resize(r * c, 0.0);
        for (dst, &(i, _, _)) in self.sel.chunks_exact_mut(c).zip(&self.rows) {
            dst.copy_from_slice(&hidden[i * c..(i + 1) * c]);
        }
        self.logits.resize(r * v, 0.0);
        matmul_forward_nt(&mut self.logits, &self.sel, params.views().wte, r, c, v);
        let targets: Vec<u32> = self.rows.iter().map(|&(_, y, _)| y).collect();
        self.lse.resize(r, 0.0);
        self.losses.resize(r, 0.0);
        crossentropy_forward(
            &mut self.losses,
            &mut self.lse,
            &self.logits,
            &targets,
            r,
            v,
        );
        let sum: f64 = self
            .losses
            .iter()
            .zip(&self.rows)
            .map(|(&l, &(_, _, w))| l as f64 * w as f64)
            .sum();
        sum as f32
    }

    /// Adds `∂(loss_scale · loss)/∂θ` of the last [`Finetuner::forward`] (same batch) into
    /// `grads`. Accumulates.
    pub fn backward(
        &mut self,
        params: &Params,
        grads: &mut Params,
        batch: &Batch,
        loss_scale: f32,
    ) {
        let cfg = &params.cfg;
        let (c, v, r) = (cfg.n_embd, cfg.vocab_size, self.rows.len());
        let targets: Vec<u32> = self.rows.iter().map(|&(_, y, _)| y).collect();
        let dlosses: Vec<f32> = self.rows.iter().map(|&(_, _, w)| w * loss_scale).collect();
        let mut dlogits = vec![0f32; r * v];
        softmax_crossentropy_backward(
            &mut dlogits,
            &self.logits,
            &self.lse,
            &targets,
            &dlosses,
            r,
            v,
        );
        let mut dsel = vec![0f32; r * c];
        let wte = params.views().wte;
        matmul_backward_nt(
            &mut dsel,
            grads.views_mut().wte,
            &dlogits,
            &self.sel,
            wte,
            r,
            c,
            v,
        );
        let mut dhidden = vec![0f32; batch.b * batch.t * c];
        for (src, &(i, _, _)) in dsel.chunks_exact(c).zip(&self.rows) {
            dhidden[i * c..(i + 1) * c].copy_from_slice(src);
        }
        let acts = self.cache.get(cfg, batch.b, batch.t);
        train::backward_hidden(params, grads, acts, &batch.inputs, &dhidden);
    }
}

/// The trainer's view of a prompt → completion run ([`crate::trainer::Objective`]).
#[derive(Debug)]
pub(crate) struct SftObjective {
    train: Dataset,
    val: Option<Dataset>,
    loader: ExampleLoader,
    ft: Finetuner,
    b: usize,
}

impl SftObjective {
    pub(crate) fn new(train: Dataset, val: Option<Dataset>, b: usize, seed: Option<u64>) -> Self {
        Self {
            loader: ExampleLoader::bucketed(
                train.examples.iter().map(|e| e.ids.len() as u32).collect(),
                b * super::classify::BUCKET_BATCHES,
                seed,
            ),
            train,
            val,
            ft: Finetuner::new(),
            b,
        }
    }
}

impl Objective for SftObjective {
    fn data_size(&self) -> u64 {
        self.train.num_tokens()
    }
    fn has_val(&self) -> bool {
        self.val.is_some()
    }
    fn prepare(&mut self, params: &Params, _eval: bool) -> Result<(), TrainError> {
        let cfg = &params.cfg;
        let sets = std::iter::once(("training", &self.train))
            .chain(self.val.as_ref().map(|v| ("validation", v)));
        for (set, e) in sets.flat_map(|(set, d)| d.examples.iter().map(move |e| (set, e))) {
            if e.ids.len() > cfg.n_positions + 1 {
                return Err(TrainError::Invalid(format!(
                    "{set} data, line {}: {} tokens, more than fit in the model's context (n_positions {} + 1)",
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
        let rows: Vec<&Example> = idx.iter().map(|&i| &self.train.examples[i]).collect();
        let batch = Batch::new(
            &rows,
            EOT.min(params.cfg.vocab_size as u32 - 1),
            params.cfg.n_positions,
        );
        let loss = self.ft.forward(params, &batch, dropout);
        if loss.is_finite() {
            // the summed loss: each counted target's weight 1/count times count
            self.ft.backward(params, grads, &batch, batch.count as f32);
        }
        MicroStep {
            loss,
            counted: batch.count,
            tokens: rows.iter().map(|e| e.ids.len() - 1).sum(),
        }
    }
    fn evaluate(&mut self, params: &Params, steps: usize) -> Option<(f32, Option<f32>)> {
        let val = self.val.as_ref()?;
        let n = val.examples.len().min(steps * self.b).max(1);
        let (mut sum, mut count) = (0f64, 0usize);
        for chunk in val.examples[..n].chunks(self.b) {
            let rows: Vec<&Example> = chunk.iter().collect();
            let batch = Batch::new(
                &rows,
                EOT.min(params.cfg.vocab_size as u32 - 1),
                params.cfg.n_positions,
            );
            sum += self.ft.forward(params, &batch, None) as f64 * batch.count as f64;
            count += batch.count;
        }
        Some(((sum / count.max(1) as f64) as f32, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_cover_the_completion_and_eot_only() {
        // prompt [1, 2, 3], completion [4, 5], EOT → ids [1 2 3 4 5 E]
        let e = Example {
            line: 1,
            ids: vec![1, 2, 3, 4, 5, EOT],
            prompt_len: 3,
        };
        let f = Example {
            line: 2,
            ids: vec![7, 8, EOT],
            prompt_len: 1,
        };
        let b = Batch::new(&[&e, &f], 0, 64);
        assert_eq!(b.t, 8);
        assert_eq!(&b.inputs[..5], [1, 2, 3, 4, 5]);
        assert_eq!(&b.targets[..5], [2, 3, 4, 5, EOT]);
        // targets 4, 5, E of row 0 and 8, E of row 1: 5 in all
        assert_eq!(b.count, 5);
        let w: Vec<f32> = b.weights[..6].to_vec();
        assert_eq!(w, [0.0, 0.0, 0.2, 0.2, 0.2, 0.0]);
        assert_eq!(&b.weights[8..11], [0.2, 0.2, 0.0]);
    }

    #[test]
    fn long_prompts_lose_their_start() {
        let tok = Tokenizer::gpt2().unwrap();
        let pairs = [Pair {
            line: 1,
            prompt: "one two three four five six".into(),
            completion: " seven".into(),
        }];
        let ds = encode("x", &pairs, &tok, 4).unwrap();
        let e = &ds.examples[0];
        assert_eq!(ds.truncated, 1);
        assert_eq!(e.ids.len(), 4);
        assert_eq!(e.prompt_len, 2);
        assert_eq!(tok.decode(&e.ids[..2]).unwrap(), " five six");
        let err = encode("x", &pairs, &tok, 2).unwrap_err().to_string();
        assert!(err.contains("x:1"), "{err}");
    }
}
