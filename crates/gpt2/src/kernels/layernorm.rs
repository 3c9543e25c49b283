//! LayerNorm over the channel axis (Ba et al. 2016; `torch.nn.LayerNorm(C, eps)`):
//! `out = (x − mean) · rstd · γ + β`, `rstd = 1/√(var + ε)`, biased variance over C.

use rayon::prelude::*;

/// out: (N, C); mean, rstd: (N) saved for backward; inp: (N, C); weight γ, bias β: (C).
/// Statistics are accumulated in f64 for parity with float64 references.
pub fn layernorm_forward(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    n: usize,
    c: usize,
    eps: f32,
) {
    debug_assert_eq!(out.len(), n * c);
    debug_assert_eq!(inp.len(), n * c);
    debug_assert!(mean.len() == n && rstd.len() == n);
    let work = |((o, x), (m, r)): ((&mut [f32], &[f32]), (&mut f32, &mut f32))| {
        let mu = x.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = x
            .iter()
            .map(|&v| (v as f64 - mu) * (v as f64 - mu))
            .sum::<f64>()
            / c as f64;
        let s = 1.0 / (var + eps as f64).sqrt();
        let (mu32, s32) = (mu as f32, s as f32);
        for (((o, &v), &w), &b) in o.iter_mut().zip(x).zip(weight).zip(bias) {
            *o = (v - mu32) * s32 * w + b;
        }
        *m = mu32;
        *r = s32;
    };
    if n >= 8 {
        out.par_chunks_mut(c)
            .zip(inp.par_chunks(c))
            .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
            .for_each(work);
    } else {
        out.chunks_mut(c)
            .zip(inp.chunks(c))
            .zip(mean.iter_mut().zip(rstd.iter_mut()))
            .for_each(work);
    }
}
