//! Global gradient-norm clipping, exactly `torch.nn.utils.clip_grad_norm_` (L2, error_if_nonfinite
//! false): `total = ‖all grads‖₂`; `coef = max_norm / (total + 1e-6)`; if `coef < 1`, every
//! gradient is multiplied by `coef`.

use rayon::prelude::*;

use crate::params::Params;

/// Elements per partial sum; fixed so the sum's order does not depend on the thread count.
const CHUNK: usize = 1 << 16;

/// The global L2 norm of every gradient, `√Σ g²`, accumulated in f64 over fixed chunks whose
/// partial sums are added in order (deterministic).
pub fn grad_norm(grads: &Params) -> f32 {
    let partial: Vec<f64> = grads
        .data
        .par_chunks(CHUNK)
        .map(|c| c.iter().map(|&g| g as f64 * g as f64).sum::<f64>())
        .collect();
    partial.iter().sum::<f64>().sqrt() as f32
}

/// Clips the global norm to `max_norm` as `torch.nn.utils.clip_grad_norm_` and returns the norm
/// before clipping: grads are scaled by `max_norm / (norm + 1e-6)` when that is < 1 (i.e. when
/// norm > max_norm, up to the 1e-6). A non-finite norm scales by NaN, as torch does.
pub fn clip_grad_norm(grads: &mut Params, max_norm: f32) -> f32 {
    let norm = grad_norm(grads);
    let coef = (max_norm as f64 / (norm as f64 + 1e-6)) as f32;
    if coef < 1.0 || !coef.is_finite() {
        grads.data.par_chunks_mut(CHUNK).for_each(|c| {
            for g in c {
                *g *= coef;
            }
        });
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Gpt2Config;

    #[test]
    fn clip_scales_only_above_max_norm() {
        let cfg = Gpt2Config {
            n_layer: 1,
            n_head: 1,
            n_embd: 4,
            n_positions: 3,
            vocab_size: 5,
            ..Gpt2Config::gpt2()
        };
        let mut g = Params::zeros(&cfg);
        g.data[0] = 3.0;
        g.data[7] = 4.0;
        assert_eq!(grad_norm(&g), 5.0);
        let mut same = g.clone();
        assert_eq!(clip_grad_norm(&mut same, 10.0), 5.0);
        assert_eq!(same.data, g.data);
        assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
        let scale = (1.0 / (5.0 + 1e-6f64)) as f32;
        assert_eq!(g.data[0], 3.0 * scale);
        assert_eq!(g.data[7], 4.0 * scale);
        assert!((grad_norm(&g) - 1.0).abs() < 1e-6);
    }
}
