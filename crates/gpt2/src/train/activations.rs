//! Every buffer a training step needs, allocated once for a given (B, T) (llm.c's
//! `ActivationTensors` + `grads_acts`, without its lazy allocation inside the forward).
//!
//! Kept per layer for backward: the block input's two LayerNorms (output, mean, rstd), `qkv`, the
//! attention probabilities `att`, the attention output `atty`, the mid-block residual `resid2`, the
//! MLP pre-activation `fc` and its GELU `fc_gelu`, and the block output `resid3`; then `ln_f`,
//! logits and the per-row log-sum-exp. Gradient scratch (one layer's worth, reused by every layer)
//! lives here too, so `backward` allocates nothing.
//!
//! Memory, in f32: per layer `N·(16C + 4) + B·NH·T²` with N = B·T, plus `N·(2V + 18C + 5) +
//! B·NH·T²` shared — for GPT-2 124M at B 4, T 64 about 265 MiB, of which 98 MiB are the two
//! `(N, V)` buffers, logits and their gradient ([`Activations::num_bytes`]; `gpt2 inspect`).

use crate::config::Gpt2Config;

use super::dropout::Dropout;

/// Activations of one decoder block `h.{l}` saved by the forward pass.
#[derive(Debug, Clone)]
pub(crate) struct LayerActs {
    /// ln_1 output (B, T, C)
    pub ln_1: Vec<f32>,
    /// ln_1 statistics (B, T)
    pub ln_1_mean: Vec<f32>,
    pub ln_1_rstd: Vec<f32>,
    /// attn.c_attn output, q | k | v (B, T, 3C)
    pub qkv: Vec<f32>,
    /// attention probabilities before dropout (B, T, NH, T)
    pub att: Vec<f32>,
    /// attention output, heads concatenated (B, T, C)
    pub atty: Vec<f32>,
    /// x + dropout(attn.c_proj(atty)) (B, T, C)
    pub resid2: Vec<f32>,
    /// ln_2 output (B, T, C) and statistics (B, T)
    pub ln_2: Vec<f32>,
    pub ln_2_mean: Vec<f32>,
    pub ln_2_rstd: Vec<f32>,
    /// mlp.c_fc output, the GELU pre-activation (B, T, 4C)
    pub fc: Vec<f32>,
    /// gelu(fc) (B, T, 4C)
    pub fc_gelu: Vec<f32>,
    /// resid2 + dropout(mlp.c_proj(fc_gelu)): the block output (B, T, C)
    pub resid3: Vec<f32>,
    /// dropout sites of this block in the last forward (None: eval or p = 0)
    pub attn_drop: Option<Dropout>,
    pub resid_attn_drop: Option<Dropout>,
    pub resid_mlp_drop: Option<Dropout>,
}

/// Every buffer forward and backward need for batches of B sequences of T tokens, allocated once
/// by [`Activations::new`] and reused by every step.
#[derive(Debug, Clone)]
pub struct Activations {
    pub(crate) cfg: Gpt2Config,
    pub(crate) b: usize,
    pub(crate) t: usize,
    /// dropout(wte[inputs] + wpe[0..T]): the input of block 0 (B, T, C)
    pub(crate) encoded: Vec<f32>,
    pub(crate) embd_drop: Option<Dropout>,
    pub(crate) layers: Vec<LayerActs>,
    /// ln_f output (B, T, C) and statistics (B, T)
    pub(crate) ln_f: Vec<f32>,
    pub(crate) ln_f_mean: Vec<f32>,
    pub(crate) ln_f_rstd: Vec<f32>,
    /// lm_head output (B, T, V)
    pub(crate) logits: Vec<f32>,
    /// log Σ e^{logits} per row (B, T), saved for the softmax backward
    pub(crate) lse: Vec<f32>,
    /// per-token cross-entropy (B, T)
    pub(crate) losses: Vec<f32>,
    // scratch, shared by all layers
    /// output of a c_proj before dropout and the residual add (B, T, C)
    pub(crate) proj: Vec<f32>,
    /// gradient of the residual stream at the current point of the backward (B, T, C)
    pub(crate) dresid: Vec<f32>,
    /// gradient of a LayerNorm output (B, T, C)
    pub(crate) dln: Vec<f32>,
    /// gradient of a c_proj output, after undoing its dropout (B, T, C)
    pub(crate) dproj: Vec<f32>,
    /// gradient of atty (B, T, C)
    pub(crate) datty: Vec<f32>,
    /// gradient of qkv (B, T, 3C)
    pub(crate) dqkv: Vec<f32>,
    /// gradient of the pre-softmax scores, attention backward scratch (B, T, NH, T)
    pub(crate) datt: Vec<f32>,
    /// gradients of fc and fc_gelu (B, T, 4C)
    pub(crate) dfc: Vec<f32>,
    pub(crate) dfc_gelu: Vec<f32>,
    /// gradient of the logits (B, T, V)
    pub(crate) dlogits: Vec<f32>,
    /// gradient of each per-token loss (B, T)
    pub(crate) dlosses: Vec<f32>,
}

impl Activations {
    /// Buffers for batches of `b` sequences of `t` tokens of a model with config `cfg`.
    /// Requires `b ≥ 1` and `1 ≤ t ≤ cfg.n_positions` (callers check; the forward indexes `wpe`
    /// with positions 0..t).
    pub fn new(cfg: &Gpt2Config, b: usize, t: usize) -> Self {
        debug_assert!(b >= 1 && t >= 1 && t <= cfg.n_positions);
        let (c, v, nh) = (cfg.n_embd, cfg.vocab_size, cfg.n_head);
        let n = b * t;
        let z = |len: usize| vec![0f32; len];
        let layer = || LayerActs {
            ln_1: z(n * c),
            ln_1_mean: z(n),
            ln_1_rstd: z(n),
            qkv: z(n * 3 * c),
            att: z(n * nh * t),
            atty: z(n * c),
            resid2: z(n * c),
            ln_2: z(n * c),
            ln_2_mean: z(n),
            ln_2_rstd: z(n),
            fc: z(n * 4 * c),
            fc_gelu: z(n * 4 * c),
            resid3: z(n * c),
            attn_drop: None,
            resid_attn_drop: None,
            resid_mlp_drop: None,
        };
        Self {
            cfg: cfg.clone(),
            b,
            t,
            encoded: z(n * c),
            embd_drop: None,
            layers: (0..cfg.n_layer).map(|_| layer()).collect(),
            ln_f: z(n * c),
            ln_f_mean: z(n),
            ln_f_rstd: z(n),
            logits: z(n * v),
            lse: z(n),
            losses: z(n),
            proj: z(n * c),
            dresid: z(n * c),
            dln: z(n * c),
            dproj: z(n * c),
            datty: z(n * c),
            dqkv: z(n * 3 * c),
            datt: z(n * nh * t),
            dfc: z(n * 4 * c),
            dfc_gelu: z(n * 4 * c),
            dlogits: z(n * v),
            dlosses: z(n),
        }
    }

    /// Buffers for [`super::passes::forward_hidden`] / [`super::passes::backward_hidden`] only
    /// (a task head on the hidden states): as [`Activations::new`] without the two (B, T, V)
    /// logits buffers, which dominate memory for small models. [`super::forward`] must not be
    /// given these.
    pub fn new_hidden(cfg: &Gpt2Config, b: usize, t: usize) -> Self {
        // built for a 1-token vocabulary, so the (B, T, V) buffers are never allocated
        let small = Gpt2Config {
            vocab_size: 1,
            ..cfg.clone()
        };
        let mut acts = Self::new(&small, b, t);
        acts.cfg = cfg.clone();
        acts.logits = Vec::new();
        acts.dlogits = Vec::new();
        acts
    }

    /// The ln_f output of the last forward: the final hidden states (B, T, C).
    pub fn hidden(&self) -> &[f32] {
        &self.ln_f
    }

    /// Batch size B.
    pub fn batch(&self) -> usize {
        self.b
    }

    /// Sequence length T.
    pub fn seq_len(&self) -> usize {
        self.t
    }

    /// The logits of the last forward: (B, T, V).
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// The per-token cross-entropy of the last forward (nats): (B, T). Their mean is the loss.
    pub fn losses(&self) -> &[f32] {
        &self.losses
    }

    /// The attention probabilities of block `layer` in the last forward, before dropout:
    /// (B, T, NH, T), row (b, i, h) holding query i's weights over keys 0..T (0 above the
    /// diagonal, each row summing to 1). `None` if `layer ≥ L`.
    pub fn attention(&self, layer: usize) -> Option<&[f32]> {
        self.layers.get(layer).map(|a| &a.att[..])
    }

    /// Bytes held by these buffers.
    pub fn num_bytes(&self) -> usize {
        let l = &self.layers;
        let per_layer: usize = l.first().map_or(0, |a| {
            [
                &a.ln_1,
                &a.ln_1_mean,
                &a.ln_1_rstd,
                &a.qkv,
                &a.att,
                &a.atty,
                &a.resid2,
                &a.ln_2,
                &a.ln_2_mean,
                &a.ln_2_rstd,
                &a.fc,
                &a.fc_gelu,
                &a.resid3,
            ]
            .iter()
            .map(|v| v.len())
            .sum()
        });
        let shared: usize = [
            &self.encoded,
            &self.ln_f,
            &self.ln_f_mean,
            &self.ln_f_rstd,
            &self.logits,
            &self.lse,
            &self.losses,
            &self.proj,
            &self.dresid,
            &self.dln,
            &self.dproj,
            &self.datty,
            &self.dqkv,
            &self.datt,
            &self.dfc,
            &self.dfc_gelu,
            &self.dlogits,
            &self.dlosses,
        ]
        .iter()
        .map(|v| v.len())
        .sum();
        4 * (per_layer * l.len() + shared)
    }
}
