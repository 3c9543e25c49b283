//! GELU in its tanh form, as GPT-2 (`gelu_new` in transformers; Hendrycks & Gimpel 2016, eq. for
//! the tanh approximation): `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.

use rayon::prelude::*;

use super::math;

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const CHUNK: usize = 1 << 14;

/// out: (N) = gelu(inp), elementwise, parallel over chunks.
pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    debug_assert_eq!(out.len(), inp.len());
    out.par_chunks_mut(CHUNK)
        .zip(inp.par_chunks(CHUNK))
        .for_each(|(o, i)| {
            for (o, &x) in o.iter_mut().zip(i) {
                let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
                *o = 0.5 * x * (1.0 + math::tanh(u));
            }
        });
}

/// In place: x ← gelu(x) (inference, where the pre-activation is not kept).
pub fn gelu_inplace(x: &mut [f32]) {
    let isa = super::isa::isa();
    x.par_chunks_mut(CHUNK).for_each(|o| match isa {
        // SAFETY: isa() only returns a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        super::isa::Isa::Avx512 => unsafe { gelu_chunk_avx512(o) },
        #[cfg(target_arch = "x86_64")]
        super::isa::Isa::Avx2 => unsafe { gelu_chunk_avx2(o) },
        _ => gelu_chunk(o),
    });
}

/// The tanh-form GELU of a chunk, in place; compiled per kernel path with the same arithmetic.
#[inline(always)]
fn gelu_chunk(o: &mut [f32]) {
    for o in o.iter_mut() {
        let x = *o;
        let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        *o = 0.5 * x * (1.0 + math::tanh(u));
    }
}

super::matmul::multiversion!(gelu_chunk, gelu_chunk_avx2, gelu_chunk_avx512, (o: &mut [f32]));

/// Backward of [`gelu_forward`]: `dinp += gelu'(inp) ⊙ dout`, elementwise, parallel over chunks.
/// Accumulates into dinp. dinp, inp (the saved pre-activation), dout: (N).
///
/// With `u = √(2/π)(x + 0.044715x³)`, `t = tanh u`: the exact derivative of the tanh form,
/// `gelu'(x) = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)`, evaluated through
/// `σ = sigmoid(2u)` (`½(1 + t) = σ`, `½(1 − t²) = 2σ(1 − σ)`) so the tails keep their relative
/// precision instead of cancelling in `1 + t`.
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    debug_assert!(dinp.len() == inp.len() && dinp.len() == dout.len());
    dinp.par_chunks_mut(CHUNK)
        .zip(inp.par_chunks(CHUNK))
        .zip(dout.par_chunks(CHUNK))
        .for_each(|((di, i), d)| {
            for ((di, &x), &dv) in di.iter_mut().zip(i).zip(d) {
                let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
                let e = math::exp(-2.0 * u);
                let sig = 1.0 / (1.0 + e); // ½(1 + tanh u)
                let sig_c = e / (1.0 + e); // 1 − sig
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
                let grad = sig + 2.0 * x * sig * sig_c * du;
                *di += grad * dv;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: f64 = 0.797_884_560_802_865_4; // √(2/π)

    fn gelu64(x: f64) -> f64 {
        0.5 * x * (1.0 + (S * (x + 0.044715 * x * x * x)).tanh())
    }

    /// The analytic derivative in f64, `½(1 + t) + ½x(1 − t²)u'`, with `½(1 + t)` and `1 − t²`
    /// written through e^{−2u} so that f64 itself does not cancel in the tails. Also returns the
    /// sum of the two terms' magnitudes: the scale of f32 rounding where they cancel (x ≈ −0.75).
    fn dgelu64(x: f64) -> (f64, f64) {
        let u = S * (x + 0.044715 * x * x * x);
        let e = (-2.0 * u).exp();
        let half_1p_t = 1.0 / (1.0 + e);
        let one_m_t2 = 4.0 * e / ((1.0 + e) * (1.0 + e));
        let second = 0.5 * x * one_m_t2 * S * (1.0 + 3.0 * 0.044715 * x * x);
        (half_1p_t + second, half_1p_t.abs() + second.abs())
    }

    #[test]
    fn gelu_forward_and_backward_match_f64_and_finite_differences() {
        // odd length, covering both tails and the |u| < 0.004 branch of math::tanh
        let n = 40_001;
        let inp: Vec<f32> = (0..n)
            .map(|i| -8.0 + 16.0 * i as f32 / (n - 1) as f32)
            .collect();
        let dout: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32 * 0.25).collect();
        let mut out = vec![0.0; n];
        gelu_forward(&mut out, &inp);
        let mut dinp = vec![0.0; n];
        gelu_backward(&mut dinp, &inp, &dout);
        let h = 1e-6;
        for i in 0..n {
            let x = inp[i] as f64;
            assert!((out[i] as f64 - gelu64(x)).abs() < 1e-6, "gelu({x})");
            // relative to the analytic f64 derivative, tails included (1e-5: at x = −8, f32
            // rounding of u ≈ −25 moves e^{−2u} by ~3e-6 relative) ...
            let (d, mag) = dgelu64(x);
            let want = d * dout[i] as f64;
            let tol = 1e-5 * want.abs() + 1e-6 * mag * dout[i] as f64;
            assert!(
                (dinp[i] as f64 - want).abs() <= tol,
                "gelu'({x}): {} vs {want}",
                dinp[i]
            );
            // ... and that derivative against central differences of the forward
            let fd = (gelu64(x + h) - gelu64(x - h)) / (2.0 * h) * dout[i] as f64;
            assert!((want - fd).abs() < 1e-8, "fd at {x}");
        }
        // accumulation: a second call adds the same again
        let before = dinp.clone();
        gelu_backward(&mut dinp, &inp, &dout);
        for (a, b) in dinp.iter().zip(&before) {
            assert_eq!(*a, 2.0 * b);
        }
    }
}
