//! Matrix multiplies of GPT-2's `Conv1D` layers (`y = x·W + b`, W stored (in, out)) and of the tied
//! lm_head (`logits = x·wteᵀ`).
//!
//! Two paths with identical math: for many rows (prefill, training) a cache-blocked SGEMM from the
//! `gemm` crate; for a few rows (decoding, where the weights are read once per token and memory
//! bandwidth is the limit) our own streaming kernel that reads W exactly once, contiguously.
//! The streaming kernel splits the input axis into a *fixed* number of blocks whose partial sums are
//! added in a fixed order, so results do not depend on the thread count.
//! A naive reference (`matmul_forward_naive`) sits beside them for the tests.

use rayon::prelude::*;

/// Up to this many rows use the streaming (GEMV-like) kernels.
pub const STREAM_MAX_ROWS: usize = 8;
/// Blocks of the input axis in the streaming kernel (fixed: determinism across thread counts).
const STREAM_BLOCKS: usize = 16;

/// A general f32 GEMM through the `gemm` crate on strided row-major views:
/// `dst (m, n) = [dst +] a (m, k) · b (k, n)`, with element (i, j) of each at `i·rs + j·cs`.
/// `accumulate` adds into dst instead of overwriting it. Panics (debug) if a view is out of bounds.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &[f32],
    b_rs: usize,
    b_cs: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        last(m, n, dst_rs, dst_cs) < dst.len(),
        "sgemm: dst too small"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * dst_rs + j * dst_cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(last(m, k, a_rs, a_cs) < a.len(), "sgemm: a too small");
    assert!(last(k, n, b_rs, b_cs) < b.len(), "sgemm: b too small");
    let threads = rayon::current_num_threads();
    let par = if threads > 1 && m * n * k > 64 * 64 * 64 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every accessed element inside the slices; dst does not alias
    // a or b (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// out: (N, OC) = inp (N, IC) · w (IC, OC) + bias (OC). `Conv1D.forward` in transformers.
pub fn matmul_forward(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    ic: usize,
    oc: usize,
) {
    debug_assert_eq!(out.len(), n * oc);
    debug_assert_eq!(inp.len(), n * ic);
    debug_assert_eq!(w.len(), ic * oc);
    if n <= STREAM_MAX_ROWS {
        stream_forward(out, inp, w, n, ic, oc);
    } else {
        sgemm(n, oc, ic, out, oc, 1, false, inp, ic, 1, w, oc, 1);
    }
    if let Some(bias) = bias {
        debug_assert_eq!(bias.len(), oc);
        for row in out.chunks_exact_mut(oc) {
            for (o, &b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

/// The streaming path of [`matmul_forward`] (no bias): W is read once, in order, split into
/// [`STREAM_BLOCKS`] row blocks whose partial sums are reduced in block order.
fn stream_forward(out: &mut [f32], inp: &[f32], w: &[f32], n: usize, ic: usize, oc: usize) {
    let blocks = STREAM_BLOCKS.min(ic);
    let rows_per = ic.div_ceil(blocks);
    let partials: Vec<Vec<f32>> = (0..blocks)
        .into_par_iter()
        .map(|blk| {
            let i0 = blk * rows_per;
            let i1 = ((blk + 1) * rows_per).min(ic);
            let mut acc = vec![0f32; n * oc];
            for r in 0..n {
                let x = &inp[r * ic..(r + 1) * ic];
                let acc = &mut acc[r * oc..(r + 1) * oc];
                let mut i = i0;
                while i + 4 <= i1 {
                    let (x0, x1, x2, x3) = (x[i], x[i + 1], x[i + 2], x[i + 3]);
                    let w0 = &w[i * oc..(i + 1) * oc];
                    let w1 = &w[(i + 1) * oc..(i + 2) * oc];
                    let w2 = &w[(i + 2) * oc..(i + 3) * oc];
                    let w3 = &w[(i + 3) * oc..(i + 4) * oc];
                    for j in 0..oc {
                        acc[j] += x0 * w0[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j];
                    }
                    i += 4;
                }
                while i < i1 {
                    let xi = x[i];
                    for (a, &wv) in acc.iter_mut().zip(&w[i * oc..(i + 1) * oc]) {
                        *a += xi * wv;
                    }
                    i += 1;
                }
            }
            acc
        })
        .collect();
    out.fill(0.0);
    for p in &partials {
        for (o, &v) in out.iter_mut().zip(p) {
            *o += v;
        }
    }
}

/// Dot product with 16 independent lanes so it vectorizes; the summation order is fixed.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    for l in (0..16).step_by(2) {
        s += acc[l] + acc[l + 1];
    }
    s
}

/// out: (N, V) = inp (N, C) · wᵀ with w: (V, C) — the tied lm_head (`lm_head.weight` = `wte`).
pub fn matmul_forward_nt(out: &mut [f32], inp: &[f32], w: &[f32], n: usize, c: usize, v: usize) {
    debug_assert_eq!(out.len(), n * v);
    debug_assert_eq!(inp.len(), n * c);
    debug_assert_eq!(w.len(), v * c);
    if n <= STREAM_MAX_ROWS {
        // parallel over vocabulary rows: each row of w is read once for all n inputs
        const VB: usize = 256;
        let nblocks = v.div_ceil(VB);
        let partial: Vec<Vec<f32>> = (0..nblocks)
            .into_par_iter()
            .map(|blk| {
                let v0 = blk * VB;
                let v1 = (v0 + VB).min(v);
                let mut res = vec![0f32; n * (v1 - v0)];
                for vi in v0..v1 {
                    let wr = &w[vi * c..(vi + 1) * c];
                    for r in 0..n {
                        res[r * (v1 - v0) + vi - v0] = dot(&inp[r * c..(r + 1) * c], wr);
                    }
                }
                res
            })
            .collect();
        for (blk, res) in partial.iter().enumerate() {
            let v0 = blk * VB;
            let width = res.len() / n;
            for r in 0..n {
                out[r * v + v0..r * v + v0 + width]
                    .copy_from_slice(&res[r * width..(r + 1) * width]);
            }
        }
    } else {
        sgemm(n, v, c, out, v, 1, false, inp, c, 1, w, 1, c);
    }
}

/// The naive reference of [`matmul_forward`], in f64: for tests.
pub fn matmul_forward_naive(
    out: &mut [f32],
    inp: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    ic: usize,
    oc: usize,
) {
    for r in 0..n {
        for j in 0..oc {
            let mut s = bias.map_or(0.0, |b| b[j] as f64);
            for i in 0..ic {
                s += inp[r * ic + i] as f64 * w[i * oc + j] as f64;
            }
            out[r * oc + j] = s as f32;
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

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn matmul_matches_naive_on_odd_shapes() {
        let mut rng = Rng::seed(3);
        for &(n, ic, oc) in &[
            (1, 48, 144),
            (3, 37, 5),
            (7, 50, 200),
            (9, 48, 192),
            (74, 48, 37),
            (1, 3, 1),
        ] {
            let inp = randn(n * ic, &mut rng);
            let w = randn(ic * oc, &mut rng);
            let bias = randn(oc, &mut rng);
            let mut got = vec![0.0; n * oc];
            let mut want = vec![0.0; n * oc];
            matmul_forward(&mut got, &inp, &w, Some(&bias), n, ic, oc);
            matmul_forward_naive(&mut want, &inp, &w, Some(&bias), n, ic, oc);
            assert!(
                max_diff(&got, &want) < 1e-4,
                "n{n} ic{ic} oc{oc}: {}",
                max_diff(&got, &want)
            );
        }
    }

    #[test]
    fn matmul_nt_matches_naive() {
        let mut rng = Rng::seed(4);
        for &(n, c, v) in &[(1, 48, 1000), (2, 20, 513), (11, 48, 300)] {
            let inp = randn(n * c, &mut rng);
            let w = randn(v * c, &mut rng);
            let mut wt = vec![0.0; c * v];
            for i in 0..v {
                for j in 0..c {
                    wt[j * v + i] = w[i * c + j];
                }
            }
            let mut got = vec![0.0; n * v];
            let mut want = vec![0.0; n * v];
            matmul_forward_nt(&mut got, &inp, &w, n, c, v);
            matmul_forward_naive(&mut want, &inp, &wt, None, n, c, v);
            assert!(max_diff(&got, &want) < 1e-4, "{}", max_diff(&got, &want));
        }
    }

    #[test]
    fn streaming_result_does_not_depend_on_thread_count() {
        let mut rng = Rng::seed(5);
        let (n, ic, oc) = (2, 768, 300);
        let inp = randn(n * ic, &mut rng);
        let w = randn(ic * oc, &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0.0; n * oc];
            pool.install(|| matmul_forward(&mut out, &inp, &w, None, n, ic, oc));
            out
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
    }
}
