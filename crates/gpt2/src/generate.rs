//! Text generation: prompt → KV-cache prefill → sample → feed back, one token at a time.
//!
//! [`Sequence`] is one generation in progress (its cache, sampler, stop rules and streaming text);
//! [`step`] advances any set of sequences by one token with a single batched forward pass, so the
//! CLI's `--num-samples N` and the server's continuous batching share one engine. [`generate`]
//! wraps both into an iterator of [`Event`]s for the common case.
//!
//! Stopping follows Hugging Face `generate`: `max_new_tokens`; `<|endoftext|>` unless ignored;
//! stop strings (the text is cut before the stop string); and the context: prompt + generated never
//! exceeds maxT (finish reason `length`, with [`Finished::context_full`] set).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::kernels::softmax::log_prob;
use crate::model::{KvCache, Logits, Model};
use crate::rng::Rng;
use crate::sampling::{Sampler, SamplingParams};
use crate::tokenizer::{StreamDecoder, Tokenizer, EOT};

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_new_tokens` reached, or the context (maxT) is full.
    Length,
    /// The model produced `<|endoftext|>`.
    Eos,
    /// A stop string appeared in the text.
    Stop,
}

impl FinishReason {
    /// The OpenAI / CLI spelling: `length`, `eos`, `stop`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Length => "length",
            Self::Eos => "eos",
            Self::Stop => "stop",
        }
    }
}

/// How to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// New tokens at most.
    pub max_new_tokens: usize,
    /// Logits processing and sampling.
    pub sampling: SamplingParams,
    /// Seed of the sampler's RNG; sample `i` of a batch uses [`sample_seed`]`(seed, i)`.
    pub seed: u64,
    /// Keep going after `<|endoftext|>` (it is then emitted as text).
    pub ignore_eos: bool,
    /// Stop strings: generation stops when one appears; the text is cut before it.
    pub stop: Vec<String>,
    /// Also return the top-k log-probabilities of each step (OpenAI `logprobs`).
    pub top_logprobs: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 64,
            sampling: SamplingParams::default(),
            seed: 0,
            ignore_eos: false,
            stop: Vec::new(),
            top_logprobs: 0,
        }
    }
}

/// The seed of sample `i` of a batch: `seed` itself for sample 0, decorrelated for the others.
pub fn sample_seed(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// OpenAI's additive penalties (`presence_penalty`, `frequency_penalty`), on tokens generated so
/// far (not the prompt), as the OpenAI API describes them:
/// `logit[j] -= count[j] · frequency + (count[j] > 0) · presence`.
/// Applied after the raw log-probabilities are taken (so [`TokenOut::logprob`] stays the model's)
/// and before the [`SamplingParams`] pipeline. Both 0 (the default) is off.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Penalties {
    /// Subtracted once from every token that has appeared, in [-2, 2].
    pub presence: f32,
    /// Subtracted once per appearance, in [-2, 2].
    pub frequency: f32,
}

impl Penalties {
    /// Errors ([`Error::Invalid`]) naming the OpenAI field when a value is not finite or outside [-2, 2].
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("presence_penalty", self.presence),
            ("frequency_penalty", self.frequency),
        ] {
            if !(v.is_finite() && (-2.0..=2.0).contains(&v)) {
                return Err(Error::Invalid(format!(
                    "{name} must be in [-2, 2], got {v}"
                )));
            }
        }
        Ok(())
    }

    fn is_off(&self) -> bool {
        self.presence == 0.0 && self.frequency == 0.0
    }

    /// Subtracts the penalties from `logits` (V) for the ids in `generated`. `scratch` is reused.
    fn apply(&self, logits: &mut [f32], generated: &[u32], scratch: &mut Vec<u32>) {
        scratch.clear();
        scratch.extend_from_slice(generated);
        scratch.sort_unstable();
        for run in scratch.chunk_by(|a, b| a == b) {
            if let Some(l) = logits.get_mut(run[0] as usize) {
                *l -= run.len() as f32 * self.frequency + self.presence;
            }
        }
    }
}

/// A finished sequence's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Why it stopped.
    pub reason: FinishReason,
    /// True when it stopped because prompt + generated reached maxT.
    pub context_full: bool,
}

/// One generated token.
#[derive(Debug, Clone)]
pub struct TokenOut {
    /// The token id.
    pub id: u32,
    /// Text now safe to show: complete UTF-8, not part of a possible stop string (may be empty).
    pub text: String,
    /// log p(id | context) under the model's raw distribution (before temperature etc.), nats.
    pub logprob: f32,
    /// The `top_logprobs` most likely ids and their log-probabilities, most likely first.
    pub top: Vec<(u32, f32)>,
    /// Set on the sequence's last token (or on an empty token when stopping without one).
    pub finished: Option<Finished>,
}

/// One generation in progress.
#[derive(Debug)]
pub struct Sequence {
    cache: KvCache,
    sampler: Sampler,
    opts: GenerateOptions,
    prompt: Vec<u32>,
    generated: Vec<u32>,
    /// Tokens not yet fed to the model (the prompt at first, then the last sampled token).
    pending: Vec<u32>,
    decoder: StreamDecoder,
    /// Text decoded so far but held back (a possible stop-string prefix).
    held: String,
    /// All text emitted so far.
    emitted: String,
    finished: Option<Finished>,
    max_t: usize,
    lp_scratch: Vec<f32>,
    /// Prompt + generated ids, rebuilt in place each step for the sampler's repetition penalty.
    context: Vec<u32>,
    /// The unprocessed logits of the current step (V), for the reported log-probability.
    raw: Vec<f32>,
    penalties: Penalties,
    penalty_scratch: Vec<u32>,
}

impl Sequence {
    /// Starts a generation from `prompt` ids (an empty prompt starts from `<|endoftext|>`, as
    /// GPT-2 does).
    ///
    /// Errors ([`Error::Invalid`]): invalid sampling parameters; an id ≥ V; a prompt longer than
    /// maxT, or exactly maxT long with `max_new_tokens` > 0, which leaves no room for a token
    /// (the message names both lengths): a generation never ends empty without saying why.
    pub fn new(model: &Model, prompt: &[u32], opts: &GenerateOptions, seed: u64) -> Result<Self> {
        opts.sampling.validate()?;
        let cfg = model.config();
        let empty = prompt.is_empty();
        let prompt: Vec<u32> = if empty { vec![EOT] } else { prompt.to_vec() };
        cfg.check_ids(&prompt).map_err(|e| {
            Error::Invalid(if empty {
                format!("an empty prompt starts from <|endoftext|> ({EOT}), but {e}: give a prompt")
            } else {
                format!("prompt: {e}")
            })
        })?;
        if prompt.len() > cfg.n_positions {
            return Err(Error::Invalid(format!(
                "prompt is {} tokens, longer than the model's context of {} tokens (n_positions)",
                prompt.len(),
                cfg.n_positions
            )));
        }
        if prompt.len() == cfg.n_positions && opts.max_new_tokens > 0 {
            return Err(Error::Invalid(format!(
                "prompt is {} tokens: it fills the model's context of {} tokens (n_positions), \
                 leaving no room to generate (prompt + generated tokens <= n_positions); shorten it",
                prompt.len(),
                cfg.n_positions
            )));
        }
        let cap = (prompt.len() + opts.max_new_tokens).min(cfg.n_positions);
        let mut seq = Self {
            cache: KvCache::new(cfg, cap),
            sampler: Sampler::new(opts.sampling, Rng::seed(seed))?,
            opts: opts.clone(),
            pending: prompt.clone(),
            prompt,
            generated: Vec::new(),
            decoder: StreamDecoder::new(),
            held: String::new(),
            emitted: String::new(),
            finished: None,
            max_t: cfg.n_positions,
            lp_scratch: Vec::new(),
            context: Vec::new(),
            raw: Vec::new(),
            penalties: Penalties::default(),
            penalty_scratch: Vec::new(),
        };
        if opts.max_new_tokens == 0 {
            seq.finished = Some(Finished {
                reason: FinishReason::Length,
                context_full: false,
            });
        }
        Ok(seq)
    }

    /// Sets OpenAI's presence / frequency penalties (see [`Penalties`]).
    ///
    /// Errors ([`Error::Invalid`]): a penalty outside [-2, 2] (see [`Penalties::validate`]).
    pub fn with_penalties(mut self, penalties: Penalties) -> Result<Self> {
        penalties.validate()?;
        self.penalties = penalties;
        Ok(self)
    }

    /// The prompt ids (with the `<|endoftext|>` start token if the prompt was empty).
    pub fn prompt(&self) -> &[u32] {
        &self.prompt
    }
    /// The ids generated so far (an `<|endoftext|>` that stopped generation is not included).
    pub fn generated(&self) -> &[u32] {
        &self.generated
    }
    /// The text emitted so far (cut before a stop string).
    pub fn text(&self) -> &str {
        &self.emitted
    }
    /// `Some` once the sequence has stopped.
    pub fn finished(&self) -> Option<Finished> {
        self.finished
    }

    /// Takes the sampled logits of this sequence's last position, chooses the next token and
    /// applies the stop rules. `logits`: (V), modified in place.
    fn accept(&mut self, logits: &mut [f32], tok: &Tokenizer) -> Result<TokenOut> {
        let top = if self.opts.top_logprobs > 0 {
            top_logprobs(logits, self.opts.top_logprobs, &mut self.lp_scratch)
        } else {
            Vec::new()
        };
        // reused buffers: no allocation per decoded token once they have grown
        self.context.clear();
        self.context.extend_from_slice(&self.prompt);
        self.context.extend_from_slice(&self.generated);
        self.raw.clear();
        self.raw.extend_from_slice(logits);
        if !self.penalties.is_off() {
            self.penalties
                .apply(logits, &self.generated, &mut self.penalty_scratch);
        }
        let id = self.sampler.sample(logits, &self.context);
        let lp = log_prob(&self.raw, id as usize) as f32;
        let mut out = TokenOut {
            id,
            text: String::new(),
            logprob: lp,
            top,
            finished: None,
        };
        let total = self.prompt.len() + self.generated.len() + 1;
        if id == EOT && !self.opts.ignore_eos {
            out.text = self.flush(tok);
            self.finish(FinishReason::Eos, false, &mut out);
            return Ok(out);
        }
        self.generated.push(id);
        let piece = self.decoder.push(tok, id)?;
        self.held.push_str(&piece);
        // stop strings
        if let Some(cut) = self.find_stop() {
            out.text = self.held[..cut].to_string();
            self.emitted.push_str(&out.text);
            self.held.clear();
            self.finish(FinishReason::Stop, false, &mut out);
            return Ok(out);
        }
        let keep = self.stop_prefix_len();
        let emit_to = self.held.len() - keep;
        out.text = self.held[..emit_to].to_string();
        self.emitted.push_str(&out.text);
        self.held.drain(..emit_to);
        if self.generated.len() >= self.opts.max_new_tokens {
            out.text.push_str(&self.flush(tok));
            self.finish(FinishReason::Length, false, &mut out);
        } else if total >= self.max_t {
            out.text.push_str(&self.flush(tok));
            self.finish(FinishReason::Length, true, &mut out);
        } else {
            self.pending = vec![id];
        }
        Ok(out)
    }

    fn finish(&mut self, reason: FinishReason, context_full: bool, out: &mut TokenOut) {
        let f = Finished {
            reason,
            context_full,
        };
        self.finished = Some(f);
        out.finished = Some(f);
        self.pending.clear();
    }

    /// Emits everything still held (incomplete UTF-8 becomes U+FFFD).
    fn flush(&mut self, _tok: &Tokenizer) -> String {
        self.held.push_str(&self.decoder.finish());
        let s = std::mem::take(&mut self.held);
        self.emitted.push_str(&s);
        s
    }

    /// Byte offset in `held` where the earliest stop string starts, searching emitted + held.
    fn find_stop(&self) -> Option<usize> {
        let mut best: Option<usize> = None;
        for s in self.opts.stop.iter().filter(|s| !s.is_empty()) {
            // a stop string may straddle emitted text only if we emitted part of it, which
            // stop_prefix_len prevents; so searching `held` is enough
            if let Some(i) = self.held.find(s.as_str()) {
                best = Some(best.map_or(i, |b: usize| b.min(i)));
            }
        }
        best
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    fn stop_prefix_len(&self) -> usize {
        let mut keep = 0;
        for s in self.opts.stop.iter().filter(|s| !s.is_empty()) {
            for (i, _) in s.char_indices().skip(1) {
                if self.held.ends_with(&s[..i]) {
                    keep = keep.max(i);
                }
            }
        }
        keep
    }
}

fn top_logprobs(logits: &[f32], k: usize, scratch: &mut Vec<f32>) -> Vec<(u32, f32)> {
    scratch.resize(logits.len(), 0.0);
    crate::kernels::softmax::log_softmax_forward(scratch, logits, logits.len());
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    idx.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| {
        scratch[b as usize]
            .total_cmp(&scratch[a as usize])
            .then(a.cmp(&b))
    });
    let mut top: Vec<(u32, f32)> = idx[..k].iter().map(|&i| (i, scratch[i as usize])).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    top
}

/// Advances every unfinished sequence in `seqs` by one token with one batched forward pass.
///
/// Returns `(index into seqs, token)` for each sequence that produced a token this step.
/// Errors: model errors (see [`Model::forward`]) and tokenizer errors.
pub fn step(
    model: &Model,
    tok: &Tokenizer,
    seqs: &mut [&mut Sequence],
) -> Result<Vec<(usize, TokenOut)>> {
    let active: Vec<usize> = (0..seqs.len())
        .filter(|&i| seqs[i].finished.is_none())
        .collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let inputs: Vec<Vec<u32>> = active.iter().map(|&i| seqs[i].pending.clone()).collect();
    let mut logits = {
        let mut caches: Vec<&mut KvCache> = Vec::with_capacity(active.len());
        let mut rest: &mut [&mut Sequence] = seqs;
        let mut base = 0;
        for &i in &active {
            let (_, tail) = rest.split_at_mut(i - base);
            let (head, tail2) = tail.split_first_mut().expect("index in range");
            caches.push(&mut head.cache);
            rest = tail2;
            base = i + 1;
        }
        let ids: Vec<&[u32]> = inputs.iter().map(|v| v.as_slice()).collect();
        model.forward(&mut caches, &ids, Logits::Last)?
    };
    let v = model.config().vocab_size;
    // Sampling is independent per sequence (own RNG, own logits row), so the rows are processed in
    // parallel: at batch 16 on GPT-2's V = 50257 the softmax/log-prob work is ~10% of a step.
    let rows: Vec<(usize, &mut Sequence)> = seqs
        .iter_mut()
        .enumerate()
        .filter(|(_, s)| s.finished.is_none())
        .map(|(i, s)| (i, &mut **s))
        .collect();
    rows.into_par_iter()
        .zip(logits.par_chunks_mut(v))
        .map(|((i, seq), row)| seq.accept(row, tok).map(|out| (i, out)))
        .collect()
}

/// A generation event for streaming consumers.
#[derive(Debug, Clone)]
pub struct Event {
    /// Which sample (0..num_samples).
    pub sample: usize,
    /// The token and its text.
    pub token: TokenOut,
}

/// Generates `num_samples` continuations of one prompt as one batch, as an iterator of events.
///
/// The prompt is prefilled once and its cache copied to every sample. Errors as [`Sequence::new`].
pub fn generate<'a>(
    model: &'a Model,
    tok: &'a Tokenizer,
    prompt: &[u32],
    opts: &GenerateOptions,
    num_samples: usize,
) -> Result<Generation<'a>> {
    let mut seqs = Vec::with_capacity(num_samples);
    for i in 0..num_samples.max(1) {
        seqs.push(Sequence::new(
            model,
            prompt,
            opts,
            sample_seed(opts.seed, i),
        )?);
    }
    Ok(Generation {
        model,
        tok,
        seqs,
        queue: std::collections::VecDeque::new(),
        failed: false,
    })
}

/// The iterator returned by [`generate`].
#[derive(Debug)]
pub struct Generation<'a> {
    model: &'a Model,
    tok: &'a Tokenizer,
    seqs: Vec<Sequence>,
    queue: std::collections::VecDeque<Event>,
    failed: bool,
}

impl Generation<'_> {
    /// The sequences (prompt, generated ids, text, finish reason), e.g. after the iterator ends.
    pub fn sequences(&self) -> &[Sequence] {
        &self.seqs
    }

    /// Shares the prompt's prefill among all samples: runs it for sample 0 and copies the cache.
    fn prefill_shared(&mut self) -> Result<()> {
        let n = self.seqs.len();
        if n < 2 || self.seqs[0].finished.is_some() || !self.seqs[0].cache.is_empty() {
            return Ok(());
        }
        let prompt = self.seqs[0].prompt.clone();
        let (first, rest) = self.seqs.split_first_mut().expect("n ≥ 2");
        let mut logits = self
            .model
            .forward(&mut [&mut first.cache], &[&prompt], Logits::Last)?;
        for s in rest.iter_mut() {
            s.cache = first.cache.clone();
        }
        let v = self.model.config().vocab_size;
        let raw = logits.clone();
        let out = first.accept(&mut logits[..v], self.tok)?;
        self.queue.push_back(Event {
            sample: 0,
            token: out,
        });
        for (i, s) in rest.iter_mut().enumerate() {
            let mut l = raw.clone();
            let out = s.accept(&mut l[..v], self.tok)?;
            self.queue.push_back(Event {
                sample: i + 1,
                token: out,
            });
        }
        Ok(())
    }
}

impl Iterator for Generation<'_> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.queue.is_empty() {
            if let Err(e) = self.prefill_shared() {
                self.failed = true;
                return Some(Err(e));
            }
        }
        if self.queue.is_empty() {
            let mut refs: Vec<&mut Sequence> = self.seqs.iter_mut().collect();
            match step(self.model, self.tok, &mut refs) {
                Ok(outs) => self.queue.extend(
                    outs.into_iter()
                        .map(|(sample, token)| Event { sample, token }),
                ),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.queue.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_hand_worked() {
        // generated [2, 0, 2]: id 2 seen twice, id 0 once, id 1 never.
        // presence 0.5, frequency 0.25: id 0 -= 0.25 + 0.5; id 2 -= 2·0.25 + 0.5.
        let p = Penalties {
            presence: 0.5,
            frequency: 0.25,
        };
        let mut logits = [1.0f32, 1.0, 1.0, 1.0];
        p.apply(&mut logits, &[2, 0, 2, 99], &mut Vec::new());
        assert_eq!(logits, [0.25, 1.0, 0.0, 1.0]);
        assert!(Penalties {
            presence: 2.5,
            frequency: 0.0
        }
        .validate()
        .is_err());
        assert!(Penalties {
            presence: 0.0,
            frequency: f32::NAN
        }
        .validate()
        .is_err());
        assert!(Penalties {
            presence: -2.0,
            frequency: 2.0
        }
        .validate()
        .is_ok());
    }
}
