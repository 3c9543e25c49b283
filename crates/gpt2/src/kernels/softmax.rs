//! Softmax and log-softmax over the vocabulary, and the fused softmax + cross-entropy used by the
//! loss (`F.cross_entropy(logits, targets)` with mean reduction).

use rayon::prelude::*;

/// out: (N, V) = log_softmax(logits) row by row; sums in f64 for parity with float64 references.
pub fn log_softmax_forward(out: &mut [f32], logits: &[f32], v: usize) {
    debug_assert_eq!(out.len(), logits.len());
    out.par_chunks_mut(v)
        .zip(logits.par_chunks(v))
        .for_each(|(o, x)| {
            let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = x.iter().map(|&l| ((l - m) as f64).exp()).sum();
            let lz = m as f64 + z.ln();
            for (o, &l) in o.iter_mut().zip(x) {
                *o = (l as f64 - lz) as f32;
            }
        });
}

/// The log-probability of `target` under `softmax(logits)` for one row of V logits.
pub fn log_prob(logits: &[f32], target: usize) -> f64 {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = logits.iter().map(|&l| ((l - m) as f64).exp()).sum();
    (logits[target] - m) as f64 - z.ln()
}

/// Fused softmax + cross-entropy forward (llm.c `softmax_forward` + `crossentropy_forward`,
/// without materializing the probabilities): per row, `lse = log Σ_j e^{logit_j}` (with max
/// subtraction; exponentials in f32 through [`super::math::exp`], summed in f64) and
/// `loss = lse − logit[target]` = `−log softmax(logits)[target]`.
///
/// losses: (N); lse: (N) saved for backward; logits: (N, V); targets: (N) ids < V (caller-checked).
pub fn crossentropy_forward(
    losses: &mut [f32],
    lse: &mut [f32],
    logits: &[f32],
    targets: &[u32],
    n: usize,
    v: usize,
) {
    debug_assert!(losses.len() == n && lse.len() == n && targets.len() == n);
    debug_assert_eq!(logits.len(), n * v);
    losses
        .par_iter_mut()
        .zip(lse.par_iter_mut())
        .zip(logits.par_chunks(v))
        .zip(targets.par_iter())
        .for_each(|(((loss, lse), x), &tgt)| {
            let m = x.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = x.iter().map(|&l| super::math::exp(l - m) as f64).sum();
            let lz = m as f64 + z.ln();
            *lse = lz as f32;
            *loss = (lz - x[tgt as usize] as f64) as f32;
        });
}

/// Backward of [`crossentropy_forward`] through the softmax (llm.c
/// `crossentropy_softmax_backward`): `dlogits[r, :] += dlosses[r] · (softmax(logits[r]) − onehot(target[r]))`,
/// with `softmax = e^{logit − lse}` from the saved lse. Accumulates into dlogits.
///
/// dlogits: (N, V); logits: (N, V); lse: (N) saved; targets: (N); dlosses: (N) — e.g. all
/// `loss_scale / N` for a mean loss, or 0 on rows a task masks out.
pub fn softmax_crossentropy_backward(
    dlogits: &mut [f32],
    logits: &[f32],
    lse: &[f32],
    targets: &[u32],
    dlosses: &[f32],
    n: usize,
    v: usize,
) {
    debug_assert!(lse.len() == n && targets.len() == n && dlosses.len() == n);
    debug_assert!(dlogits.len() == n * v && logits.len() == n * v);
    dlogits
        .par_chunks_mut(v)
        .zip(logits.par_chunks(v))
        .enumerate()
        .for_each(|(r, (d, x))| {
            let (s, dl) = (lse[r], dlosses[r]);
            if dl == 0.0 {
                return;
            }
            for (d, &l) in d.iter_mut().zip(x) {
                *d += dl * super::math::exp(l - s);
            }
            d[targets[r] as usize] -= dl;
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn crossentropy_matches_f64_and_its_backward_matches_finite_differences() {
        // N = B 2 × T 5 rows, V 37; logits spread wide enough that max subtraction matters
        let (n, v) = (10, 37);
        let mut rng = Rng::seed(12);
        let logits: Vec<f32> = (0..n * v).map(|_| 4.0 * rng.normal() + 50.0).collect();
        let targets: Vec<u32> = (0..n).map(|_| rng.below(v as u64) as u32).collect();
        let dlosses: Vec<f32> = (0..n)
            .map(|r| if r == 3 { 0.0 } else { 0.1 + r as f32 * 0.05 })
            .collect();
        let (mut losses, mut lse) = (vec![0.0; n], vec![0.0; n]);
        crossentropy_forward(&mut losses, &mut lse, &logits, &targets, n, v);
        let loss64 = |x: &[f64], r: usize| -> f64 {
            let row = &x[r * v..(r + 1) * v];
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|l| (l - m).exp()).sum();
            m + z.ln() - row[targets[r] as usize]
        };
        let x64: Vec<f64> = logits.iter().map(|&l| l as f64).collect();
        for r in 0..n {
            let want = loss64(&x64, r);
            assert!(
                (losses[r] as f64 - want).abs() < 1e-5 * want.max(1.0),
                "loss[{r}]"
            );
            assert!(
                (log_prob(&logits[r * v..(r + 1) * v], targets[r] as usize) + want).abs() < 1e-5
            );
        }
        let mut dlogits = vec![0.5f32; n * v]; // accumulates
        softmax_crossentropy_backward(&mut dlogits, &logits, &lse, &targets, &dlosses, n, v);
        let h = 1e-5;
        for i in 0..n * v {
            let r = i / v;
            let (mut p, mut m) = (x64.clone(), x64.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (loss64(&p, r) - loss64(&m, r)) / (2.0 * h) * dlosses[r] as f64;
            assert!(
                (dlogits[i] as f64 - 0.5 - fd).abs() < 1e-6,
                "dlogits[{i}] {} vs {fd}",
                dlogits[i] - 0.5
            );
        }
    }
}
