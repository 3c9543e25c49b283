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

use std::borrow::Cow;

use crate::config::Gpt2Config;
use crate::error::{Error, Result};
use crate::kernels::attention::{attention_forward, HeadLayout};
use crate::kernels::qmatmul::qmatmul_forward;
use crate::kernels::quant::QMat;
use crate::kernels::{gelu, layernorm, matmul, residual};
use crate::params::Params;
use crate::weights::TypedWeights;

/// Steps of at most this many new tokens keep the pool's other workers warm ([`keep_warm`]):
/// decoding and small batches, whose steps are a few milliseconds of many short regions.
const WARM_MAX_ROWS: usize = 16;

/// Run by the pool's other workers during a short forward step: executes the step's forked work
/// as it appears (`rayon::yield_now`) and spins while there is none, until `done` (or
/// [`WARM_IDLE`] without work). A worker that is the step's own thread (`main`, which can pick
/// this job from its own queue while it waits in a join) returns at once, so the step can never
/// wait on itself.
fn keep_warm(done: &std::sync::atomic::AtomicBool, main: Option<usize>) {
    if rayon::current_thread_index() == main {
        return;
    }
    // a step's serial parts between two regions take microseconds; far longer without work
    // (another process holding the core, a long serial part) hands the thread back to rayon
    let mut idle_since = std::time::Instant::now();
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            idle_since = std::time::Instant::now();
        } else if idle_since.elapsed() > WARM_IDLE {
            return;
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Whether decoding steps keep the other workers warm: yes unless the environment sets
/// `GPT2_NO_SPIN` (for machines whose cores are shared with other busy processes, where a
/// spinning worker takes time from them; read once).
fn warm_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("GPT2_NO_SPIN").is_none())
}

/// How long a [`keep_warm`] worker spins without finding work before it returns.
const WARM_IDLE: std::time::Duration = std::time::Duration::from_micros(200);

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

/// Where the weights of a [`Model`] are and in which types.
#[derive(Debug, Clone)]
enum Engine {
    /// One f32 buffer in the training layout ([`crate::params::param_specs`], Conv1D `(in, out)`).
    Params(Params),
    /// Each matrix in its storage type, `(out, in)` rows (GGUF files, `gpt2 quantize`).
    Typed(TypedWeights),
}

/// A weight matrix as the forward pass sees it.
enum Mat<'a> {
    /// f32 `(in, out)` (GPT-2's Conv1D), from [`Params`].
    InOut(&'a [f32]),
    /// `(out, in)` rows in any storage type.
    Rows(QMat<'a>),
}

impl Mat<'_> {
    /// out (N, OC) = inp (N, IC) · W + bias.
    fn forward(&self, out: &mut [f32], inp: &[f32], bias: &[f32], n: usize, ic: usize, oc: usize) {
        match self {
            Mat::InOut(w) => matmul::matmul_forward(out, inp, w, Some(bias), n, ic, oc),
            Mat::Rows(w) => qmatmul_forward(out, inp, w, Some(bias), n),
        }
    }
}

/// One block's tensors, whatever the engine.
struct LayerRef<'a> {
    ln_1_w: &'a [f32],
    ln_1_b: &'a [f32],
    c_attn: Mat<'a>,
    c_attn_b: &'a [f32],
    attn_proj: Mat<'a>,
    attn_proj_b: &'a [f32],
    ln_2_w: &'a [f32],
    ln_2_b: &'a [f32],
    c_fc: Mat<'a>,
    c_fc_b: &'a [f32],
    mlp_proj: Mat<'a>,
    mlp_proj_b: &'a [f32],
}

/// The whole model's tensors, whatever the engine.
struct ModelRef<'a> {
    wte: QMat<'a>,
    wpe: QMat<'a>,
    h: Vec<LayerRef<'a>>,
    ln_f_w: &'a [f32],
    ln_f_b: &'a [f32],
    lm_head: QMat<'a>,
}

impl Engine {
    fn views(&self) -> ModelRef<'_> {
        match self {
            Engine::Params(p) => {
                let cfg = &p.cfg;
                let v = p.views();
                let wte = QMat::from_f32(cfg.vocab_size, cfg.n_embd, v.wte);
                ModelRef {
                    wte,
                    wpe: QMat::from_f32(cfg.n_positions, cfg.n_embd, v.wpe),
                    h: v.h
                        .into_iter()
                        .map(|l| LayerRef {
                            ln_1_w: l.ln_1_w,
                            ln_1_b: l.ln_1_b,
                            c_attn: Mat::InOut(l.c_attn_w),
                            c_attn_b: l.c_attn_b,
                            attn_proj: Mat::InOut(l.attn_proj_w),
                            attn_proj_b: l.attn_proj_b,
                            ln_2_w: l.ln_2_w,
                            ln_2_b: l.ln_2_b,
                            c_fc: Mat::InOut(l.c_fc_w),
                            c_fc_b: l.c_fc_b,
                            mlp_proj: Mat::InOut(l.mlp_proj_w),
                            mlp_proj_b: l.mlp_proj_b,
                        })
                        .collect(),
                    ln_f_w: v.ln_f_w,
                    ln_f_b: v.ln_f_b,
                    lm_head: wte,
                }
            }
            Engine::Typed(w) => ModelRef {
                wte: w.wte.view(),
                wpe: w.wpe.view(),
                h: w.h
                    .iter()
                    .map(|l| LayerRef {
                        ln_1_w: &l.ln_1_w,
                        ln_1_b: &l.ln_1_b,
                        c_attn: Mat::Rows(l.c_attn.view()),
                        c_attn_b: &l.c_attn_b,
                        attn_proj: Mat::Rows(l.attn_proj.view()),
                        attn_proj_b: &l.attn_proj_b,
                        ln_2_w: &l.ln_2_w,
                        ln_2_b: &l.ln_2_b,
                        c_fc: Mat::Rows(l.c_fc.view()),
                        c_fc_b: &l.c_fc_b,
                        mlp_proj: Mat::Rows(l.mlp_proj.view()),
                        mlp_proj_b: &l.mlp_proj_b,
                    })
                    .collect(),
                ln_f_w: &w.ln_f_w,
                ln_f_b: &w.ln_f_b,
                lm_head: w.lm_head.as_ref().unwrap_or(&w.wte).view(),
            },
        }
    }
}

/// A GPT-2 language model ready for inference: f32 [`Params`] (safetensors checkpoints, training)
/// or [`TypedWeights`] (GGUF files and quantized models, each matrix in its storage type).
#[derive(Debug)]
pub struct Model {
    engine: Engine,
    scratch: std::sync::Mutex<Scratch>,
}

impl Clone for Model {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            scratch: Default::default(),
        }
    }
}

impl Model {
    /// Wraps loaded or initialized f32 parameters.
    pub fn new(params: Params) -> Self {
        Self {
            engine: Engine::Params(params),
            scratch: Default::default(),
        }
    }

    /// Wraps weights in their storage types (from a GGUF file or [`TypedWeights::from_params`]);
    /// the matrices the process owns are put on huge pages ([`crate::hugepages`]), mapped ones stay
    /// as the page cache holds them.
    pub fn from_typed(weights: TypedWeights) -> Self {
        for (_, t) in weights.matrices() {
            if t.is_vec() {
                crate::hugepages::advise(t.bytes());
            }
        }
        Self {
            engine: Engine::Typed(weights),
            scratch: Default::default(),
        }
    }

    /// The model's configuration.
    pub fn config(&self) -> &Gpt2Config {
        match &self.engine {
            Engine::Params(p) => &p.cfg,
            Engine::Typed(w) => &w.cfg,
        }
    }

    /// The f32 parameters, when the model holds them (not for typed weights).
    pub fn params(&self) -> Option<&Params> {
        match &self.engine {
            Engine::Params(p) => Some(p),
            Engine::Typed(_) => None,
        }
    }

    /// The typed weights, when the model holds them.
    pub fn typed(&self) -> Option<&TypedWeights> {
        match &self.engine {
            Engine::Params(_) => None,
            Engine::Typed(w) => Some(w),
        }
    }

    /// f32 parameters in the training layout: borrowed, or dequantized from typed weights.
    pub fn f32_params(&self) -> Cow<'_, Params> {
        match &self.engine {
            Engine::Params(p) => Cow::Borrowed(p),
            Engine::Typed(w) => Cow::Owned(w.to_params()),
        }
    }

    /// f32 parameters by value (dequantized from typed weights).
    pub fn into_params(self) -> Params {
        match self.engine {
            Engine::Params(p) => p,
            Engine::Typed(w) => w.to_params(),
        }
    }

    /// A short description of the weight types, e.g. `f32` or `q4_0 (48 matrices), q8_0 (1 matrix), f32 (1 matrix)`.
    pub fn weight_types(&self) -> String {
        match &self.engine {
            Engine::Params(_) => "f32".into(),
            Engine::Typed(w) => w.type_summary(),
        }
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
        // The whole step runs on one of rayon's workers, so its ~100 parallel regions (four
        // matmuls and the attention of each layer) are forked from inside the pool instead of
        // each being handed to the pool and waited for by a sleeping caller. A decoding step
        // (a few rows) is short enough that the other workers would fall asleep between two
        // regions and be woken by a futex each time (about a tenth of a step); they are kept
        // warm instead, taking the step's work as it is forked (see `keep_warm`).
        let rows: usize = ids.iter().map(|s| s.len()).sum();
        let done = std::sync::atomic::AtomicBool::new(false);
        let done = &done;
        rayon::scope(|s| {
            let main = rayon::current_thread_index();
            if rows <= WARM_MAX_ROWS && warm_enabled() {
                for _ in 1..rayon::current_num_threads() {
                    s.spawn(move |_| keep_warm(done, main));
                }
            }
            struct Done<'a>(&'a std::sync::atomic::AtomicBool);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.store(true, std::sync::atomic::Ordering::Release);
                }
            }
            let _done = Done(done);
            self.forward_in_pool(caches, ids, logits)
        })
    }

    fn forward_in_pool(
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
            cfg.check_ids(seq)
                .map_err(|e| Error::Invalid(format!("sequence {s}: {e}")))?;
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
        let p = self.engine.views();

        // embeddings: x = wte[id] + wpe[pos] (rows decoded from their storage type)
        let x = grow(&mut sc.x, n * c);
        let mut r0 = 0;
        let mut pos_row = vec![0f32; c];
        for (cache, seq) in caches.iter().zip(ids) {
            for (i, &id) in seq.iter().enumerate() {
                let row = &mut x[(r0 + i) * c..(r0 + i + 1) * c];
                p.wte.dequantize_row_into(id as usize, row);
                p.wpe.dequantize_row_into(cache.len + i, &mut pos_row);
                for (a, b) in row.iter_mut().zip(&pos_row) {
                    *a += b;
                }
            }
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
            w.c_attn.forward(qkv, ln, w.c_attn_b, n, c, 3 * c);
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
            w.attn_proj.forward(proj, atty, w.attn_proj_b, n, c, c);
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
            w.c_fc.forward(fc, ln, w.c_fc_b, n, c, 4 * c);
            gelu::gelu_inplace(fc);
            w.mlp_proj.forward(proj, fc, w.mlp_proj_b, n, 4 * c, c);
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
        qmatmul_forward(&mut out, ln, &p.lm_head, None, r);
        Ok(out)
    }

    /// Logits of every position of one sequence from scratch: (T, V). A convenience over
    /// [`Model::forward`] with a fresh cache. Errors as [`Model::forward`].
    pub fn logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut cache = KvCache::new(self.config(), ids.len().max(1));
        self.forward(&mut [&mut cache], &[ids], Logits::All)
    }
}
