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
    x.par_chunks_mut(CHUNK).for_each(|o| {
        for o in o.iter_mut() {
            let x = *o;
            let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
            *o = 0.5 * x * (1.0 + math::tanh(u));
        }
    });
}
