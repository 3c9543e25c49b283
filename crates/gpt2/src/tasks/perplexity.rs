//! Perplexity of a text longer than the context, with a sliding window (the method of the Hugging
//! Face guide "Perplexity of fixed-length models").
//!
//! The N tokens are read in windows of (at most) n_ctx tokens whose starts advance by a stride S:
//! window w covers tokens `[w·S, min(w·S + n_ctx, N))`. A window scores only the tokens the
//! previous windows did not reach (its other labels are −100 in the guide), so every token after
//! the first is scored exactly once, with the longest context its window gives (at least
//! n_ctx − S tokens once the first window is past). Token 0 has no context and is never scored.
//!
//! ```text
//! NLL         = Σ_scored −ln p(token_j | tokens_{begin(j)} … tokens_{j−1})     (nats)
//! mean NLL    = NLL / scored,     perplexity = e^{mean NLL}
//! bits / byte = NLL / ln 2 / (UTF-8 bytes of the text)
//! ```
//!
//! The guide weights each window's mean loss by "valid labels − 1", which counts one token too few
//! per window once S < n_ctx; we sum the exact per-token losses instead (the fixture checks the
//! sum against `transformers` run window by window).
//!
//! Non-goals: batching several texts, documents joined by `<|endoftext|>`.

use crate::error::{Error, Result};
use crate::kernels::softmax::log_prob;
use crate::model::{KvCache, Logits, Model};

/// One window: tokens `begin..end` are fed, tokens `score_from..end` are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First token fed.
    pub begin: usize,
    /// One past the last token fed.
    pub end: usize,
    /// First token scored (> begin).
    pub score_from: usize,
}

/// The windows over `n` tokens for a context of `n_ctx` and a stride of `stride` (see the module
/// doc). Empty when `n < 2`.
pub fn windows(n: usize, n_ctx: usize, stride: usize) -> Vec<Window> {
    let mut out = Vec::new();
    if n < 2 {
        return out;
    }
    let (mut begin, mut prev_end) = (0, 0);
    loop {
        let end = (begin + n_ctx).min(n);
        out.push(Window {
            begin,
            end,
            score_from: prev_end.max(begin + 1),
        });
        if end == n {
            break;
        }
        prev_end = end;
        begin += stride;
    }
    out
}

/// Summed negative log-likelihood of a text.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    /// Σ −ln p over the scored tokens (nats, summed in f64).
    pub nll: f64,
    /// Tokens scored (N − 1).
    pub tokens_scored: u64,
    /// UTF-8 bytes of the text.
    pub bytes: u64,
}

impl Totals {
    /// Mean NLL per scored token, nats.
    pub fn mean_nll(&self) -> f64 {
        self.nll / self.tokens_scored as f64
    }

    /// e^{mean NLL}.
    pub fn perplexity(&self) -> f64 {
        self.mean_nll().exp()
    }

    /// Total NLL in bits per UTF-8 byte of the text.
    pub fn bits_per_byte(&self) -> f64 {
        self.nll / std::f64::consts::LN_2 / self.bytes as f64
    }

    /// `{"nll","perplexity","tokens_scored","bits_per_byte"}` (nll: the mean, in nats).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "nll": self.mean_nll(),
            "perplexity": self.perplexity(),
            "tokens_scored": self.tokens_scored,
            "bits_per_byte": self.bits_per_byte(),
        })
    }
}

/// Scores `ids` (the tokens of a text of `bytes` UTF-8 bytes) with windows of `n_ctx` tokens
/// (≤ n_positions) advanced by `stride` (1 ≤ stride < n_ctx: windows must overlap, or the first
/// token of each would have no context). Windows are run `batch` at a time;
/// `on_windows(done, total)` reports progress.
///
/// Errors: [`Error::Invalid`] for fewer than 2 tokens, a bad `n_ctx` or `stride`; as
/// [`Model::forward`] for token ids.
pub fn sliding_window(
    model: &Model,
    ids: &[u32],
    bytes: u64,
    n_ctx: usize,
    stride: usize,
    batch: usize,
    on_windows: &mut dyn FnMut(usize, usize),
) -> Result<Totals> {
    let cfg = model.config();
    if ids.len() < 2 {
        return Err(Error::Invalid(format!(
            "the text has {} token(s): at least 2 are needed to score one",
            ids.len()
        )));
    }
    if n_ctx < 2 || n_ctx > cfg.n_positions {
        return Err(Error::Invalid(format!(
            "window of {n_ctx} tokens: it must be in 2..={} (n_positions)",
            cfg.n_positions
        )));
    }
    if stride == 0 || stride >= n_ctx {
        return Err(Error::Invalid(format!(
            "--stride {stride}: it must be in 1..{n_ctx} (less than the window), so windows \
             overlap and the first token of each has a context to be scored with"
        )));
    }
    let v = cfg.vocab_size;
    let all = windows(ids.len(), n_ctx, stride);
    let mut totals = Totals {
        bytes,
        ..Totals::default()
    };
    let batch = batch.max(1);
    let mut caches: Vec<KvCache> = (0..batch.min(all.len()))
        .map(|_| KvCache::new(cfg, n_ctx))
        .collect();
    let mut done = 0;
    for group in all.chunks(batch) {
        let seqs: Vec<&[u32]> = group.iter().map(|w| &ids[w.begin..w.end]).collect();
        let mut refs: Vec<&mut KvCache> = caches.iter_mut().take(group.len()).collect();
        refs.iter_mut().for_each(|c| c.clear());
        let logits = model.forward(&mut refs, &seqs, Logits::All)?;
        let mut row0 = 0;
        for w in group {
            // logits row (j − 1 − begin) predicts token j
            for (j, &id) in ids.iter().enumerate().take(w.end).skip(w.score_from) {
                let r = row0 + j - 1 - w.begin;
                totals.nll -= log_prob(&logits[r * v..(r + 1) * v], id as usize);
                totals.tokens_scored += 1;
            }
            row0 += w.end - w.begin;
        }
        done += group.len();
        on_windows(done, all.len());
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_after_the_first_is_scored_once() {
        for (n, ctx, stride) in [
            (10, 4, 2),
            (11, 4, 3),
            (5, 8, 4),
            (9, 4, 3),
            (23, 7, 5),
            (7, 3, 1),
        ] {
            let ws = windows(n, ctx, stride);
            let mut seen = vec![0; n];
            for w in &ws {
                assert!(w.end - w.begin <= ctx && w.begin < w.score_from);
                for s in &mut seen[w.score_from..w.end] {
                    *s += 1;
                }
            }
            assert_eq!(seen[0], 0);
            assert!(
                seen[1..].iter().all(|&s| s == 1),
                "{n} {ctx} {stride}: {seen:?}"
            );
            assert_eq!(ws.last().unwrap().end, n);
        }
        // the guide's example shape: context 4, stride 2 over 7 tokens
        assert_eq!(
            windows(7, 4, 2),
            [
                Window {
                    begin: 0,
                    end: 4,
                    score_from: 1
                },
                Window {
                    begin: 2,
                    end: 6,
                    score_from: 4
                },
                Window {
                    begin: 4,
                    end: 7,
                    score_from: 6
                },
            ]
        );
        assert!(windows(1, 4, 2).is_empty());
    }
}
