//! The inference engine: GPT-2's forward pass with a KV cache, for one or many sequences at once.
//!
//! Per block (pre-LayerNorm, GPT-2 §2.3 and `GPT2Block.forward`):
//! `x ← x + c_proj(attn(ln_1(x)))`, `x ← x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))`;
//! then `logits = ln_f(x) · wteᵀ` (lm_head tied to wte).
//!
//! Each sequence owns a [`KvCache`]; a call to [`Model::forward`] appends any number of new tokens
//! to any number of sequences (prefill of a prompt, one decode step for a batch, or a mix — what
//! continuous batching needs). The matrix multiplies see all new tokens of all sequences as one
//! `(N, C)` matrix, so weights are streamed once per step however many sequences decode together.

use crate::config::Gpt2Config;
use crate::error::{Error, Result};
use crate::kernels::attention::{attention_forward, HeadLayout};
use crate::kernels::{encoder, gelu, layernorm, matmul, residual};
use crate::params::Params;

/// Keys and values of every past position of one sequence, for every layer.
///
/// k, v: (L, NH, maxT, HS) each. `len` positions are filled.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<f32>,
    v: Vec<f32>,
    len: usize,
    /// Capacity in positions (≤ maxT).
    cap: usize,
}

impl KvCache {
    /// An empty cache for a sequence of up to `cap` positions (clamped to maxT). Memory:
    /// 2·L·C·cap f32 (e.g. 72 MiB for GPT-2 124M at 1024 positions; `gpt2 inspect`).
    pub fn new(cfg: &Gpt2Config, cap: usize) -> Self {
        let cap = cap.min(cfg.n_positions).max(1);
        let n = cfg.n_layer * cfg.n_embd * cap;
        Self {
            k: vec![0.0; n],
            v: vec![0.0; n],
            len: 0,
            cap,
        }
    }
    /// Number of positions already processed.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when no position has been processed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Capacity in positions.
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Forgets every position (keeps the memory).
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// Drops positions after `len` (e.g. to fork a prompt's cache).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Which rows of the new tokens get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last new token of each sequence (generation).
    Last,
    /// Every new token (scoring).
    All,
}

/// Scratch buffers reused across calls (grown on demand, never shrunk).
#[derive(Debug, Default)]
struct Scratch {
    x: Vec<f32>,
    ln: Vec<f32>,
    qkv: Vec<f32>,
    atty: Vec<f32>,
    proj: Vec<f32>,
    fc: Vec<f32>,
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    &mut v[..n]
}

/// A GPT-2 language model ready for inference.
#[derive(Debug)]
pub struct Model {
    /// The weights, in the layout of [`crate::params::param_specs`].
    pub params: Params,
    scratch: std::sync::Mutex<Scratch>,
}

impl Clone for Model {
    fn clone(&self) -> Self {
        Self::new(self.params.clone())
    }
}

impl Model {
    /// Wraps loaded or initialized parameters.
    pub fn new(params: Params) -> Self {
        Self {
            params,
            scratch: Default::default(),
        }
    }

    /// The model's configuration.
    pub fn config(&self) -> &Gpt2Config {
        &self.params.cfg
    }

    /// A KV cache sized for the full context of this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.config(), self.config().n_positions)
    }

    /// Appends `ids[s]` to sequence `s` (whose past is `caches[s]`) for every s, and returns logits.
    ///
    /// - caches: one per sequence; ids: the new tokens of each sequence (any lengths ≥ 1);
    /// - returns (R, V) row-major logits, R = number of sequences with [`Logits::Last`], or the total
    ///   number of new tokens with [`Logits::All`] (sequence-major).
    ///
    /// Errors ([`Error::Invalid`]): a token id ≥ V; a sequence that would exceed its cache capacity or
    /// maxT (the message names both lengths); an empty `ids[s]`; `caches.len() != ids.len()`.
    pub fn forward(
        &self,
        caches: &mut [&mut KvCache],
        ids: &[&[u32]],
        logits: Logits,
    ) -> Result<Vec<f32>> {
        let cfg = self.config();
        let (c, v, nh) = (cfg.n_embd, cfg.vocab_size, cfg.n_head);
        let hs = c / nh;
        if caches.len() != ids.len() {
            return Err(Error::Invalid(format!(
                "{} caches for {} sequences",
                caches.len(),
                ids.len()
            )));
        }
        for (s, (cache, seq)) in caches.iter().zip(ids).enumerate() {
            if seq.is_empty() {
                return Err(Error::Invalid(format!("sequence {s} has no tokens")));
            }
            if let Some(&bad) = seq.iter().find(|&&t| t as usize >= v) {
                return Err(Error::Invalid(format!(
                    "token id {bad} is out of range: vocab_size is {v}"
                )));
            }
            let need = cache.len + seq.len();
            if need > cache.cap {
                return Err(Error::Invalid(format!(
                    "sequence of {need} tokens is longer than the context of {} tokens (n_positions {})",
                    cache.cap, cfg.n_positions
                )));
            }
        }
        let n: usize = ids.iter().map(|s| s.len()).sum();
        let mut guard = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let sc = &mut *guard;
        let p = self.params.views();

        // embeddings
        let x = grow(&mut sc.x, n * c);
        let mut r0 = 0;
        for (cache, seq) in caches.iter().zip(ids) {
            encoder::encoder_forward(
                &mut x[r0 * c..(r0 + seq.len()) * c],
                seq,
                p.wte,
                p.wpe,
                cache.len,
                1,
                seq.len(),
                c,
            );
            r0 += seq.len();
        }
        grow(&mut sc.ln, n * c);
        grow(&mut sc.qkv, n * 3 * c);
        grow(&mut sc.atty, n * c);
        grow(&mut sc.proj, n * c);
        grow(&mut sc.fc, n * 4 * c);
        grow(&mut sc.mean, n);
        grow(&mut sc.rstd, n);
        let eps = cfg.layer_norm_epsilon;
        let max_t_cache: Vec<usize> = caches.iter().map(|k| k.cap).collect();
        for (l, w) in p.h.iter().enumerate() {
            let x = &mut sc.x[..n * c];
            let ln = &mut sc.ln[..n * c];
            let qkv = &mut sc.qkv[..n * 3 * c];
            let atty = &mut sc.atty[..n * c];
            let proj = &mut sc.proj[..n * c];
            let fc = &mut sc.fc[..n * 4 * c];
            layernorm::layernorm_forward(
                ln,
                &mut sc.mean[..n],
                &mut sc.rstd[..n],
                x,
                w.ln_1_w,
                w.ln_1_b,
                n,
                c,
                eps,
            );
            matmul::matmul_forward(qkv, ln, w.c_attn_w, Some(w.c_attn_b), n, c, 3 * c);
            // store new keys and values, then attend, sequence by sequence
            let mut r0 = 0;
            for (s, (cache, seq)) in caches.iter_mut().zip(ids).enumerate() {
                let t = seq.len();
                let cap = max_t_cache[s];
                let layer_off = l * nh * cap * hs;
                let cl = HeadLayout::cache(nh, cap, hs);
                for i in 0..t {
                    let row = &qkv[(r0 + i) * 3 * c..(r0 + i + 1) * 3 * c];
                    let pos = cache.len + i;
                    for h in 0..nh {
                        let dst = layer_off + h * cap * hs + pos * hs;
                        cache.k[dst..dst + hs].copy_from_slice(&row[c + h * hs..c + (h + 1) * hs]);
                        cache.v[dst..dst + hs]
                            .copy_from_slice(&row[2 * c + h * hs..2 * c + (h + 1) * hs]);
                    }
                }
                let layer_len = nh * cap * hs;
                let kc = &cache.k[layer_off..layer_off + layer_len];
                let vc = &cache.v[layer_off..layer_off + layer_len];
                let ql = HeadLayout {
                    sb: 0,
                    st: 3 * c,
                    sh: hs,
                };
                attention_forward(
                    &mut atty[r0 * c..(r0 + t) * c],
                    None,
                    &qkv[r0 * 3 * c..(r0 + t) * 3 * c],
                    ql,
                    kc,
                    cl,
                    vc,
                    cl,
                    1,
                    t,
                    cache.len,
                    nh,
                    hs,
                );
                r0 += t;
            }
            matmul::matmul_forward(proj, atty, w.attn_proj_w, Some(w.attn_proj_b), n, c, c);
            residual::residual_add(x, proj);
            layernorm::layernorm_forward(
                ln,
                &mut sc.mean[..n],
                &mut sc.rstd[..n],
                x,
                w.ln_2_w,
                w.ln_2_b,
                n,
                c,
                eps,
            );
            matmul::matmul_forward(fc, ln, w.c_fc_w, Some(w.c_fc_b), n, c, 4 * c);
            gelu::gelu_inplace(fc);
            matmul::matmul_forward(proj, fc, w.mlp_proj_w, Some(w.mlp_proj_b), n, 4 * c, c);
            residual::residual_add(x, proj);
        }
        for (cache, seq) in caches.iter_mut().zip(ids) {
            cache.len += seq.len();
        }
        // final LayerNorm on the rows that need logits, then the tied lm_head
        let rows: Vec<usize> = match logits {
            Logits::All => (0..n).collect(),
            Logits::Last => {
                let mut end = 0;
                ids.iter()
                    .map(|s| {
                        end += s.len();
                        end - 1
                    })
                    .collect()
            }
        };
        let r = rows.len();
        let sel = &mut sc.proj[..r * c];
        for (dst, &row) in sel.chunks_exact_mut(c).zip(&rows) {
            dst.copy_from_slice(&sc.x[row * c..(row + 1) * c]);
        }
        let ln = &mut sc.ln[..r * c];
        layernorm::layernorm_forward(
            ln,
            &mut sc.mean[..r],
            &mut sc.rstd[..r],
            sel,
            p.ln_f_w,
            p.ln_f_b,
            r,
            c,
            eps,
        );
        let mut out = vec![0f32; r * v];
        matmul::matmul_forward_nt(&mut out, ln, p.wte, r, c, v);
        Ok(out)
    }

    /// Logits of every position of one sequence from scratch: (T, V). A convenience over
    /// [`Model::forward`] with a fresh cache. Errors as [`Model::forward`].
    pub fn logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut cache = KvCache::new(self.config(), ids.len().max(1));
        self.forward(&mut [&mut cache], &[ids], Logits::All)
    }
}
