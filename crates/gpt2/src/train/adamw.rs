//! AdamW (Loshchilov & Hutter 2019), exactly as `torch.optim.AdamW` (single-tensor path):
//!
//! ```text
//! θ ← θ − lr·wd·θ                     (decoupled decay; tensors with ParamSpec::decays() only)
//! m ← β₁m + (1 − β₁)g,  v ← β₂v + (1 − β₂)g²
//! θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! One fused pass over the flat parameter buffer, parallel over fixed chunks; which ranges decay
//! comes from the parameter table ([`crate::params::param_specs`]), so nothing is listed twice.

use rayon::prelude::*;

use crate::params::{param_specs, Params};

/// Elements per parallel task.
const CHUNK: usize = 1 << 16;

/// AdamW hyper-parameters (torch defaults: β (0.9, 0.999), ε 1e-8, weight decay 0.01; GPT-2
/// training recipes use β₂ 0.95 and weight decay 0.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// β₁, decay of the first moment.
    pub beta1: f32,
    /// β₂, decay of the second moment.
    pub beta2: f32,
    /// ε added to the bias-corrected √v.
    pub eps: f32,
    /// Decoupled weight decay λ, applied as θ ← θ(1 − lr·λ) to tensors of rank ≥ 2.
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    /// nanoGPT's GPT-2 recipe: β (0.9, 0.95), ε 1e-8, weight decay 0.1.
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        }
    }
}

/// AdamW state: first and second moments in the parameter layout, and the step count.
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    /// First moment m, one per parameter.
    pub m: Vec<f32>,
    /// Second moment v, one per parameter.
    pub v: Vec<f32>,
    /// Steps taken so far (the bias corrections use t + 1 on the next step).
    pub t: u64,
}

impl AdamW {
    /// Zero moments for `num_params` parameters (`params.data.len()`), t = 0.
    pub fn new(num_params: usize) -> Self {
        Self {
            m: vec![0.0; num_params],
            v: vec![0.0; num_params],
            t: 0,
        }
    }

    /// One AdamW step at learning rate `lr`: updates `params` from `grads` (same layout; the
    /// moments must have `params.data.len()` elements) and increments `t`. Allocates only the
    /// small decay-range table.
    pub fn step(&mut self, params: &mut Params, grads: &Params, lr: f32, cfg: &AdamWConfig) {
        debug_assert_eq!(self.m.len(), params.data.len());
        debug_assert_eq!(self.v.len(), params.data.len());
        debug_assert_eq!(grads.data.len(), params.data.len());
        self.t += 1;
        // bias corrections as torch: 1 − β^t, computed in f64 then rounded
        let bc1 = 1.0 - (cfg.beta1 as f64).powi(self.t as i32);
        let bc2 = 1.0 - (cfg.beta2 as f64).powi(self.t as i32);
        let step_size = (lr as f64 / bc1) as f32;
        let bc2_sqrt = bc2.sqrt() as f32;
        let (b1, b2, eps) = (cfg.beta1, cfg.beta2, cfg.eps);
        // (end offset, decay factor) of each tensor, in buffer order
        let ranges: Vec<(usize, f32)> = param_specs(&params.cfg)
            .iter()
            .map(|s| {
                let wd = if s.decays() { cfg.weight_decay } else { 0.0 };
                (s.offset + s.numel(), 1.0 - lr * wd)
            })
            .collect();
        params
            .data
            .par_chunks_mut(CHUNK)
            .zip(grads.data.par_chunks(CHUNK))
            .zip(self.m.par_chunks_mut(CHUNK))
            .zip(self.v.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(ci, (((p, g), m), v))| {
                let o0 = ci * CHUNK;
                // the tensor holding element o0, then walk the tensors this chunk overlaps
                let mut k = ranges.partition_point(|&(end, _)| end <= o0);
                let mut i = 0;
                while i < p.len() {
                    let (end, decay) = ranges.get(k).copied().unwrap_or((usize::MAX, 1.0));
                    let j = (end - o0).min(p.len());
                    for (((p, &g), m), v) in p[i..j]
                        .iter_mut()
                        .zip(&g[i..j])
                        .zip(&mut m[i..j])
                        .zip(&mut v[i..j])
                    {
                        *p *= decay;
                        *m = b1 * *m + (1.0 - b1) * g;
                        *v = b2 * *v + (1.0 - b2) * g * g;
                        let denom = v.sqrt() / bc2_sqrt + eps;
                        *p -= step_size * *m / denom;
                    }
                    i = j;
                    k += 1;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Gpt2Config;

    /// The torch formula, in f64, one element at a time.
    fn reference(p: f64, g: &[f64], lr: f64, wd: f64, b1: f64, b2: f64, eps: f64) -> f64 {
        let (mut p, mut m, mut v) = (p, 0.0, 0.0);
        for (t, &g) in g.iter().enumerate() {
            let t = t as i32 + 1;
            p *= 1.0 - lr * wd;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let denom = v.sqrt() / (1.0 - b2.powi(t)).sqrt() + eps;
            p -= lr / (1.0 - b1.powi(t)) * m / denom;
        }
        p
    }

    #[test]
    fn adamw_matches_the_torch_formula_and_decays_only_matrices() {
        let cfg = Gpt2Config {
            n_layer: 1,
            n_head: 3,
            n_embd: 12,
            n_positions: 5,
            vocab_size: 7,
            ..Gpt2Config::gpt2()
        };
        let mut params = Params::zeros(&cfg);
        for (i, x) in params.data.iter_mut().enumerate() {
            *x = 0.5 + (i % 13) as f32 * 0.1;
        }
        let start = params.clone();
        let grad_at = |step: usize, i: usize| ((i * 7 + step * 3) % 11) as f32 * 0.01 - 0.05;
        let ocfg = AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = AdamW::new(params.data.len());
        let mut grads = Params::zeros(&cfg);
        for step in 0..3 {
            for (i, g) in grads.data.iter_mut().enumerate() {
                *g = grad_at(step, i);
            }
            opt.step(&mut params, &grads, 1e-2, &ocfg);
        }
        assert_eq!(opt.t, 3);
        for spec in param_specs(&cfg) {
            let wd = if spec.decays() { 0.1 } else { 0.0 };
            for i in spec.offset..spec.offset + spec.numel() {
                let g: Vec<f64> = (0..3).map(|s| grad_at(s, i) as f64).collect();
                let want = reference(start.data[i] as f64, &g, 1e-2, wd, 0.9, 0.95, 1e-8);
                let got = params.data[i] as f64;
                assert!(
                    (got - want).abs() < 1e-6,
                    "{} [{i}]: {got} vs {want}",
                    spec.name
                );
            }
        }
    }
}
