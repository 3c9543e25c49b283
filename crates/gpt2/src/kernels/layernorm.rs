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
    #[allow(clippy::type_complexity)]
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

/// Rows per block in [`layernorm_backward`]; fixed so the dweight/dbias reduction order (and so
/// the result) does not depend on the thread count.
const LN_BWD_ROWS: usize = 32;

/// Backward of [`layernorm_forward`] (llm.c `layernorm_backward`). Accumulates (`+=`) into dinp,
/// dweight and dbias; callers zero gradients once per step.
///
/// dinp: (N, C); dweight, dbias: (C); dout: (N, C); inp: (N, C) the forward input; weight: (C);
/// mean, rstd: (N) saved by the forward.
///
/// With `x̂ = (x − mean)·rstd` and `g = γ ⊙ dout`:
/// `dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))`, `dγ = Σ_rows dout ⊙ x̂`, `dβ = Σ_rows dout`.
/// Rows are processed in parallel blocks of 32; each block's dγ/dβ partials are added in block
/// order (deterministic).
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    mean: &[f32],
    rstd: &[f32],
    n: usize,
    c: usize,
) {
    debug_assert_eq!(dinp.len(), n * c);
    debug_assert_eq!(dout.len(), n * c);
    debug_assert_eq!(inp.len(), n * c);
    debug_assert!(dweight.len() == c && dbias.len() == c && weight.len() == c);
    debug_assert!(mean.len() == n && rstd.len() == n);
    let block = |blk: usize, dinp: &mut [f32]| -> Vec<f32> {
        // partial (dweight | dbias) of this block of rows: (2C)
        let mut part = vec![0f32; 2 * c];
        let r0 = blk * LN_BWD_ROWS;
        for (ri, di) in dinp.chunks_exact_mut(c).enumerate() {
            let r = r0 + ri;
            let x = &inp[r * c..(r + 1) * c];
            let d = &dout[r * c..(r + 1) * c];
            let (mu, s) = (mean[r], rstd[r]);
            // the two row means, in f32 like llm.c (C ≤ a few thousand terms)
            let mut g_mean = 0f32;
            let mut gx_mean = 0f32;
            for ((&xv, &dv), &w) in x.iter().zip(d).zip(weight) {
                let xhat = (xv - mu) * s;
                let g = w * dv;
                g_mean += g;
                gx_mean += g * xhat;
            }
            g_mean /= c as f32;
            gx_mean /= c as f32;
            let (dw, db) = part.split_at_mut(c);
            for (j, ((&xv, &dv), &w)) in x.iter().zip(d).zip(weight).enumerate() {
                let xhat = (xv - mu) * s;
                dw[j] += dv * xhat;
                db[j] += dv;
                di[j] += s * (w * dv - g_mean - xhat * gx_mean);
            }
        }
        part
    };
    let parts: Vec<Vec<f32>> = if n > LN_BWD_ROWS {
        dinp.par_chunks_mut(LN_BWD_ROWS * c)
            .enumerate()
            .map(|(blk, di)| block(blk, di))
            .collect()
    } else {
        vec![block(0, dinp)]
    };
    for part in &parts {
        for (g, &p) in dweight.iter_mut().zip(&part[..c]) {
            *g += p;
        }
        for (g, &p) in dbias.iter_mut().zip(&part[c..]) {
            *g += p;
        }
    }
}

/// Naive f64 reference of [`layernorm_backward`] (recomputes the statistics), for tests.
/// Accumulates like the fast kernel.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward_naive(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    n: usize,
    c: usize,
    eps: f32,
) {
    for r in 0..n {
        let x: Vec<f64> = inp[r * c..(r + 1) * c].iter().map(|&v| v as f64).collect();
        let d = &dout[r * c..(r + 1) * c];
        let mu = x.iter().sum::<f64>() / c as f64;
        let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
        let s = 1.0 / (var + eps as f64).sqrt();
        let xhat: Vec<f64> = x.iter().map(|v| (v - mu) * s).collect();
        let g: Vec<f64> = (0..c).map(|j| weight[j] as f64 * d[j] as f64).collect();
        let gm = g.iter().sum::<f64>() / c as f64;
        let gxm = g.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / c as f64;
        for j in 0..c {
            dinp[r * c + j] += (s * (g[j] - gm - xhat[j] * gxm)) as f32;
            dweight[j] += (d[j] as f64 * xhat[j]) as f32;
            dbias[j] += d[j];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn randn(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.normal()).collect()
    }

    /// f64 LayerNorm forward for the finite-difference check: L = Σ out ⊙ dout.
    fn loss64(inp: &[f64], w: &[f64], b: &[f64], dout: &[f32], n: usize, c: usize) -> f64 {
        let mut l = 0.0;
        for r in 0..n {
            let x = &inp[r * c..(r + 1) * c];
            let mu = x.iter().sum::<f64>() / c as f64;
            let var = x.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / c as f64;
            let s = 1.0 / (var + 1e-5).sqrt();
            for j in 0..c {
                l += ((x[j] - mu) * s * w[j] + b[j]) * dout[r * c + j] as f64;
            }
        }
        l
    }

    #[test]
    fn layernorm_backward_matches_finite_differences_and_naive() {
        // B 2, T 5 (N 10 rows, not a multiple of the 32-row block), C 12; then N 75 (3 blocks)
        for &(n, c) in &[(10usize, 12usize), (75, 13)] {
            let mut rng = Rng::seed(21);
            let inp = randn(n * c, &mut rng);
            let w: Vec<f32> = (0..c).map(|_| 1.0 + 0.3 * rng.normal()).collect();
            let bias = randn(c, &mut rng);
            let dout = randn(n * c, &mut rng);
            let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
            layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, &w, &bias, n, c, 1e-5);
            // start from non-zero gradients to check accumulation
            let (mut dinp, mut dw, mut db) = (vec![0.5; n * c], vec![0.25; c], vec![-1.0; c]);
            layernorm_backward(
                &mut dinp, &mut dw, &mut db, &dout, &inp, &w, &mean, &rstd, n, c,
            );
            let (mut ndinp, mut ndw, mut ndb) = (vec![0.5; n * c], vec![0.25; c], vec![-1.0; c]);
            layernorm_backward_naive(&mut ndinp, &mut ndw, &mut ndb, &dout, &inp, &w, n, c, 1e-5);
            for (name, got, want) in [
                ("dinp", &dinp, &ndinp),
                ("dw", &dw, &ndw),
                ("db", &db, &ndb),
            ] {
                let d = got
                    .iter()
                    .zip(want.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(d < 2e-5, "{name} vs naive: {d}");
            }
            // central differences in f64 on every input, weight and bias element
            let x64: Vec<f64> = inp.iter().map(|&v| v as f64).collect();
            let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            let b64: Vec<f64> = bias.iter().map(|&v| v as f64).collect();
            let h = 1e-6;
            let fd = |which: usize, i: usize| {
                let (mut xp, mut wp, mut bp) = (x64.clone(), w64.clone(), b64.clone());
                let (mut xm, mut wm, mut bm) = (x64.clone(), w64.clone(), b64.clone());
                match which {
                    0 => {
                        xp[i] += h;
                        xm[i] -= h
                    }
                    1 => {
                        wp[i] += h;
                        wm[i] -= h
                    }
                    _ => {
                        bp[i] += h;
                        bm[i] -= h
                    }
                }
                (loss64(&xp, &wp, &bp, &dout, n, c) - loss64(&xm, &wm, &bm, &dout, n, c))
                    / (2.0 * h)
            };
            for (i, &got) in dinp.iter().enumerate() {
                let want = 0.5 + fd(0, i);
                assert!(
                    (got as f64 - want).abs() < 1e-4,
                    "dinp[{i}] {got} vs {want}"
                );
            }
            for j in 0..c {
                let want = 0.25 + fd(1, j);
                assert!(
                    (dw[j] as f64 - want).abs() < 1e-4,
                    "dw[{j}] {} vs {want}",
                    dw[j]
                );
                let want = -1.0 + fd(2, j);
                assert!(
                    (db[j] as f64 - want).abs() < 1e-4,
                    "db[{j}] {} vs {want}",
                    db[j]
                );
            }
        }
    }
}
