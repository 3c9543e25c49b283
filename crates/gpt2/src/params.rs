//! The parameter table: one contiguous `f32` buffer with named views, in Hugging Face order.
//!
//! [`param_specs`] is the single table that drives buffer sizes, named views, checkpoint I/O,
//! AdamW (which tensors get weight decay), gradient-norm clipping and the tests (llm.c keeps four
//! hand-synced lists; we keep one). Keys are Hugging Face `GPT2Model` state-dict keys without the
//! `transformer.` prefix, so a key is a format string: `format!("h.{i}.mlp.c_fc.weight")`.
//!
//! Layouts are those of the checkpoint, unchanged: `wte (V, C)`, `wpe (maxT, C)`, and every Conv1D
//! weight stored `(in, out)` so that `y = x · W + b` (GPT-2's `Conv1D`, not `nn.Linear`).
//! The lm_head is tied to `wte` and has no entry of its own. A classification model
//! (`num_labels` set) appends `score.weight (num_labels, C)`, as `GPT2ForSequenceClassification`.

use crate::config::Gpt2Config;

/// One named tensor of the parameter buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// Hugging Face key without the `transformer.` prefix, e.g. `h.0.attn.c_attn.weight`.
    pub name: String,
    /// Shape as stored in the checkpoint, e.g. `[C, 3C]` for `attn.c_attn.weight`.
    pub shape: Vec<usize>,
    /// Offset in elements into the flat buffer.
    pub offset: usize,
}

impl ParamSpec {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// AdamW decays tensors of rank ≥ 2 (wte, wpe, the four weight matrices per block, score),
    /// never LayerNorm parameters or biases (as nanoGPT's `configure_optimizers`).
    pub fn decays(&self) -> bool {
        self.shape.len() >= 2
    }
    /// Whether this tensor belongs to the base `GPT2Model` (prefixed `transformer.` in HF files).
    pub fn in_transformer(&self) -> bool {
        !self.name.starts_with("score.")
    }
}

/// The names and shapes of one block's tensors, in Hugging Face order: (suffix, shape).
pub fn layer_tensor_shapes(c: usize) -> [(&'static str, Vec<usize>); 12] {
    [
        ("ln_1.weight", vec![c]),
        ("ln_1.bias", vec![c]),
        ("attn.c_attn.weight", vec![c, 3 * c]),
        ("attn.c_attn.bias", vec![3 * c]),
        ("attn.c_proj.weight", vec![c, c]),
        ("attn.c_proj.bias", vec![c]),
        ("ln_2.weight", vec![c]),
        ("ln_2.bias", vec![c]),
        ("mlp.c_fc.weight", vec![c, 4 * c]),
        ("mlp.c_fc.bias", vec![4 * c]),
        ("mlp.c_proj.weight", vec![4 * c, c]),
        ("mlp.c_proj.bias", vec![c]),
    ]
}

/// Elements in one decoder block: 12C² + 13C.
pub fn layer_numel(c: usize) -> usize {
    12 * c * c + 13 * c
}

/// The parameter table for `cfg`, in buffer order: wte, wpe, h.0.* … h.{L-1}.*, ln_f, \[score\].
pub fn param_specs(cfg: &Gpt2Config) -> Vec<ParamSpec> {
    let (v, c, t) = (cfg.vocab_size, cfg.n_embd, cfg.n_positions);
    let mut specs = Vec::with_capacity(4 + 12 * cfg.n_layer);
    let mut offset = 0;
    let mut push = |name: String, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        specs.push(ParamSpec {
            name,
            shape,
            offset,
        });
        offset += n;
    };
    push("wte.weight".into(), vec![v, c]);
    push("wpe.weight".into(), vec![t, c]);
    for i in 0..cfg.n_layer {
        for (suffix, shape) in layer_tensor_shapes(c) {
            push(format!("h.{i}.{suffix}"), shape);
        }
    }
    push("ln_f.weight".into(), vec![c]);
    push("ln_f.bias".into(), vec![c]);
    if let Some(n) = cfg.num_labels {
        push("score.weight".into(), vec![n, c]);
    }
    specs
}

/// Views of one decoder block's tensors, generic over `&[f32]` (parameters) and `&mut [f32]`
/// (gradients). Field names follow the Hugging Face keys (`attn.c_attn.weight` → `c_attn_w`).
#[derive(Debug)]
pub struct Layer<S> {
    /// `ln_1.weight` (C)
    pub ln_1_w: S,
    /// `ln_1.bias` (C)
    pub ln_1_b: S,
    /// `attn.c_attn.weight` (C, 3C): q | k | v along the output axis.
    pub c_attn_w: S,
    /// `attn.c_attn.bias` (3C)
    pub c_attn_b: S,
    /// `attn.c_proj.weight` (C, C)
    pub attn_proj_w: S,
    /// `attn.c_proj.bias` (C)
    pub attn_proj_b: S,
    /// `ln_2.weight` (C)
    pub ln_2_w: S,
    /// `ln_2.bias` (C)
    pub ln_2_b: S,
    /// `mlp.c_fc.weight` (C, 4C)
    pub c_fc_w: S,
    /// `mlp.c_fc.bias` (4C)
    pub c_fc_b: S,
    /// `mlp.c_proj.weight` (4C, C)
    pub mlp_proj_w: S,
    /// `mlp.c_proj.bias` (C)
    pub mlp_proj_b: S,
}

/// Views of the whole buffer: embeddings, blocks, final LayerNorm, optional score head.
#[derive(Debug)]
pub struct Views<S> {
    /// `wte.weight` (V, C); also the lm_head (tied).
    pub wte: S,
    /// `wpe.weight` (maxT, C)
    pub wpe: S,
    /// The L decoder blocks `h.{i}`.
    pub h: Vec<Layer<S>>,
    /// `ln_f.weight` (C)
    pub ln_f_w: S,
    /// `ln_f.bias` (C)
    pub ln_f_b: S,
    /// `score.weight` (num_labels, C), classification models only.
    pub score: Option<S>,
}

macro_rules! split_views {
    ($buf:expr, $cfg:expr, $split:ident) => {{
        let cfg = $cfg;
        let c = cfg.n_embd;
        let rest = $buf;
        let (wte, rest) = rest.$split(cfg.vocab_size * c);
        let (wpe, mut rest) = rest.$split(cfg.n_positions * c);
        let mut h = Vec::with_capacity(cfg.n_layer);
        for _ in 0..cfg.n_layer {
            let (ln_1_w, r) = rest.$split(c);
            let (ln_1_b, r) = r.$split(c);
            let (c_attn_w, r) = r.$split(3 * c * c);
            let (c_attn_b, r) = r.$split(3 * c);
            let (attn_proj_w, r) = r.$split(c * c);
            let (attn_proj_b, r) = r.$split(c);
            let (ln_2_w, r) = r.$split(c);
            let (ln_2_b, r) = r.$split(c);
            let (c_fc_w, r) = r.$split(4 * c * c);
            let (c_fc_b, r) = r.$split(4 * c);
            let (mlp_proj_w, r) = r.$split(4 * c * c);
            let (mlp_proj_b, r) = r.$split(c);
            rest = r;
            h.push(Layer {
                ln_1_w,
                ln_1_b,
                c_attn_w,
                c_attn_b,
                attn_proj_w,
                attn_proj_b,
                ln_2_w,
                ln_2_b,
                c_fc_w,
                c_fc_b,
                mlp_proj_w,
                mlp_proj_b,
            });
        }
        let (ln_f_w, rest) = rest.$split(c);
        let (ln_f_b, rest) = rest.$split(c);
        let score = cfg.num_labels.map(|n| rest.$split(n * c).0);
        Views {
            wte,
            wpe,
            h,
            ln_f_w,
            ln_f_b,
            score,
        }
    }};
}

/// A flat parameter (or gradient) buffer laid out by [`param_specs`].
#[derive(Debug, Clone)]
pub struct Params {
    /// The configuration the layout was made for.
    pub cfg: Gpt2Config,
    /// All tensors, concatenated in table order.
    pub data: Vec<f32>,
}

impl Params {
    /// A zero-filled buffer for `cfg` (also the layout of gradients and AdamW moments).
    pub fn zeros(cfg: &Gpt2Config) -> Self {
        let n = param_specs(cfg).iter().map(|s| s.numel()).sum();
        Self {
            cfg: cfg.clone(),
            data: vec![0.0; n],
        }
    }

    /// GPT-2's initialization (OpenAI's `model.py`, nanoGPT): weights N(0, 0.02), the two residual
    /// projections (`attn.c_proj`, `mlp.c_proj`) N(0, 0.02/√(2L)), biases 0, LayerNorm γ 1 β 0.
    /// Deterministic for a seed on every platform.
    pub fn init_gpt2(cfg: &Gpt2Config, rng: &mut crate::rng::Rng) -> Self {
        let mut p = Self::zeros(cfg);
        let proj_std = 0.02 / ((2 * cfg.n_layer) as f32).sqrt();
        for spec in param_specs(cfg) {
            let t = &mut p.data[spec.offset..spec.offset + spec.numel()];
            if spec.name.ends_with("ln_1.weight")
                || spec.name.ends_with("ln_2.weight")
                || spec.name == "ln_f.weight"
            {
                t.fill(1.0);
            } else if spec.shape.len() >= 2 {
                let std = if spec.name.ends_with("c_proj.weight") {
                    proj_std
                } else {
                    0.02
                };
                for x in t.iter_mut() {
                    *x = rng.normal() * std;
                }
            }
        }
        p
    }

    /// Read-only named views.
    pub fn views(&self) -> Views<&[f32]> {
        split_views!(&self.data[..], &self.cfg, split_at)
    }

    /// Mutable named views (e.g. of a gradient buffer).
    pub fn views_mut(&mut self) -> Views<&mut [f32]> {
        let cfg = self.cfg.clone();
        split_views!(&mut self.data[..], &cfg, split_at_mut)
    }

    /// The tensor named `name` (a [`ParamSpec::name`]), if it exists.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        param_specs(&self.cfg)
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| &self.data[s.offset..s.offset + s.numel()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_cover_the_table_in_order() {
        let cfg = Gpt2Config {
            n_layer: 2,
            n_head: 3,
            n_embd: 12,
            n_positions: 7,
            vocab_size: 11,
            num_labels: Some(3),
            ..Gpt2Config::gpt2()
        };
        let mut p = Params::zeros(&cfg);
        for (i, x) in p.data.iter_mut().enumerate() {
            *x = i as f32;
        }
        let specs = param_specs(&cfg);
        let v = p.views();
        let first = |s: &[f32]| s[0] as usize;
        let off = |name: &str| specs.iter().find(|s| s.name == name).unwrap().offset;
        assert_eq!(first(v.wpe), off("wpe.weight"));
        assert_eq!(first(v.h[1].c_attn_w), off("h.1.attn.c_attn.weight"));
        assert_eq!(first(v.h[1].mlp_proj_b), off("h.1.mlp.c_proj.bias"));
        assert_eq!(first(v.ln_f_b), off("ln_f.bias"));
        assert_eq!(first(v.score.unwrap()), off("score.weight"));
        let last = specs.last().unwrap();
        assert_eq!(last.offset + last.numel(), p.data.len());
        assert_eq!(
            layer_numel(12),
            specs[2..14].iter().map(|s| s.numel()).sum::<usize>()
        );
    }
}
