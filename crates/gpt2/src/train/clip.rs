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
    if let Some(coef) = clip_coef(norm, max_norm) {
        scale_all(grads, coef);
    }
    norm
}

/// torch's clipping coefficient `max_norm / (norm + 1e-6)` when it applies (< 1, or not finite).
fn clip_coef(norm: f32, max_norm: f32) -> Option<f32> {
    let coef = (max_norm as f64 / (norm as f64 + 1e-6)) as f32;
    (coef < 1.0 || !coef.is_finite()).then_some(coef)
}

/// Multiplies every gradient by `s`.
fn scale_all(grads: &mut Params, s: f32) {
    grads.data.par_chunks_mut(CHUNK).for_each(|c| {
        for g in c {
            *g *= s;
        }
    });
}

/// Turns the gradients of a step's *summed* loss into those of its mean loss and clips them, in
/// one pass: every gradient is multiplied by `coef / count`, where `coef` is
/// [`clip_grad_norm`]'s coefficient for the averaged gradients (1 when `max_norm` ≤ 0 or the
/// norm is within it). Returns the norm of the averaged gradients before clipping, `‖g‖₂ / count`.
///
/// `count` is the number of targets the summed loss counts over all micro-batches of the step
/// (tokens for language modelling and SFT, examples for classification), so a step's gradient is
/// that of the mean loss over all of them, however they were split into micro-batches
/// (token-weighted accumulation). `count` 0 is taken as 1.
pub fn average_and_clip(grads: &mut Params, count: usize, max_norm: f32) -> f32 {
    let n = count.max(1) as f64;
    let norm = (grad_norm(grads) as f64 / n) as f32;
    let coef = if max_norm > 0.0 {
        clip_coef(norm, max_norm).unwrap_or(1.0)
    } else {
        1.0
    };
    let scale = (coef as f64 / n) as f32;
    if scale != 1.0 {
        scale_all(grads, scale);
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Gpt2Config;

    /// Zero gradients of a 1-layer C 4 model (a few hundred values).
    fn tiny_grads() -> Params {
        Params::zeros(&Gpt2Config {
            n_layer: 1,
            n_head: 1,
            n_embd: 4,
            n_positions: 3,
            vocab_size: 5,
            ..Gpt2Config::gpt2()
        })
    }

    #[test]
    fn clip_scales_only_above_max_norm() {
        let mut g = tiny_grads();
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

    #[test]
    fn average_then_clip_divides_by_the_count() {
        let mut g = tiny_grads();
        g.data[0] = 30.0;
        g.data[7] = 40.0;
        let mut plain = g.clone();
        assert_eq!(average_and_clip(&mut plain, 10, 0.0), 5.0);
        assert_eq!((plain.data[0], plain.data[7]), (3.0, 4.0));
        assert_eq!(average_and_clip(&mut g, 10, 1.0), 5.0);
        assert!((grad_norm(&g) - 1.0).abs() < 1e-6);
    }
}
