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
