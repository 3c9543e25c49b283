//! Inverted dropout (Srivastava et al. 2014; `torch.nn.Dropout` in training mode) with masks that
//! are *regenerated*, not stored.
//!
//! A [`Dropout`] is a seed and a probability p. Element `idx` of the tensor it applies to is kept
//! iff a counter-based hash of `(seed, idx)` (SplitMix64's finalizer) is ≥ p, and kept elements are
//! scaled by 1/(1−p). Backward recomputes the same mask from the same seed, so the mask costs no
//! memory (the attention-probability masks alone would be L·B·NH·T² bytes), is independent of the
//! thread count and of how the work is split, and is reproducible from the seeds the forward drew
//! from the caller's [`crate::Rng`].
//!
//! Non-goal: bit-identical masks to PyTorch's Philox generator (no framework shares those).

use rayon::prelude::*;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// One dropout site of one forward pass: the mask is a pure function of `(seed, index)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// Seed of this site, drawn from the training RNG by the forward pass.
    pub seed: u64,
    /// Drop probability p in (0, 1).
    pub p: f32,
}

impl Dropout {
    /// The multiplier of element `idx`: 0 (dropped, probability ≈ p) or 1/(1−p) (kept).
    #[inline(always)]
    pub fn scale(&self, idx: usize) -> f32 {
        // SplitMix64 over the counter: a full-avalanche hash of (seed, idx)
        let mut z = self.seed.wrapping_add(
            (idx as u64)
                .wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // uniform in [0, 1) with 24 bits, as Rng::uniform
        let u = (z >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
        if u < self.p {
            0.0
        } else {
            1.0 / (1.0 - self.p)
        }
    }
}

/// In place: `x[i] ← x[i] · scale(i)`; `None` (eval, or p = 0) leaves x unchanged. x: (N).
pub fn dropout_forward(x: &mut [f32], drop: Option<Dropout>) {
    let Some(d) = drop else { return };
    x.par_chunks_mut(CHUNK).enumerate().for_each(|(ci, xs)| {
        for (i, x) in xs.iter_mut().enumerate() {
            *x *= d.scale(ci * CHUNK + i);
        }
    });
}

/// Backward of [`dropout_forward`]: `dinp[i] += dout[i] · scale(i)` (identity for `None`).
/// Accumulates. dinp, dout: (N).
pub fn dropout_backward(dinp: &mut [f32], dout: &[f32], drop: Option<Dropout>) {
    debug_assert_eq!(dinp.len(), dout.len());
    dinp.par_chunks_mut(CHUNK)
        .zip(dout.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(ci, (di, d))| match drop {
            None => {
                for (g, &x) in di.iter_mut().zip(d) {
                    *g += x;
                }
            }
            Some(m) => {
                for (i, (g, &x)) in di.iter_mut().zip(d).enumerate() {
                    *g += x * m.scale(ci * CHUNK + i);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_rate_scale_and_backward_agree() {
        let n = 200_001;
        let d = Dropout { seed: 99, p: 0.25 };
        let mut x = vec![1.0f32; n];
        dropout_forward(&mut x, Some(d));
        let dropped = x.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
        assert!((dropped - 0.25).abs() < 0.005, "drop rate {dropped}");
        assert!(x.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01, "E[x] {mean}");
        // backward applies exactly the forward's mask, and accumulates
        let mut g = vec![2.0f32; n];
        dropout_backward(&mut g, &vec![1.0; n], Some(d));
        for (gi, xi) in g.iter().zip(&x) {
            assert_eq!(*gi, 2.0 + xi);
        }
        // another seed, another mask
        let mut y = vec![1.0f32; n];
        dropout_forward(&mut y, Some(Dropout { seed: 100, p: 0.25 }));
        assert_ne!(x, y);
        // None is the identity
        let mut z = vec![3.0f32; 5];
        dropout_forward(&mut z, None);
        assert_eq!(z, vec![3.0; 5]);
    }
}
