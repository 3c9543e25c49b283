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

/// Up to this many rows use the streaming (GEMV-like) kernels. Measured (`gpt2 bench --preset gpt2
/// --batch B`, 2 AVX-512 cores, interleaved runs, median decode tok/s): at B = 5 streaming 187 vs
/// SGEMM 166; at B = 6 streaming 201 vs SGEMM 230; at B = 8 225 vs 251; at B = 9 245 vs 312 —
/// beyond 5 rows SGEMM's register blocking wins over reading the weights exactly once.
pub const STREAM_MAX_ROWS: usize = 5;
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
    let threads = rayon::current_num_threads();
    let par = threads > 1 && m * n * k > 64 * 64 * 64;
    sgemm_on(
        par, m, n, k, dst, dst_rs, dst_cs, accumulate, a, a_rs, a_cs, b, b_rs, b_cs,
    )
}

/// [`sgemm`] on the calling thread only (for callers that are already one of many parallel tasks).
#[allow(clippy::too_many_arguments)]
pub fn sgemm_serial(
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
    sgemm_on(
        false, m, n, k, dst, dst_rs, dst_cs, accumulate, a, a_rs, a_cs, b, b_rs, b_cs,
    )
}

#[allow(clippy::too_many_arguments)]
fn sgemm_on(
    par: bool,
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
    let par = if par {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
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
    let isa = super::isa::isa();
    let partials: Vec<Vec<f32>> = (0..blocks)
        .into_par_iter()
        .map(|blk| {
            let i0 = blk * rows_per;
            let i1 = ((blk + 1) * rows_per).min(ic);
            let mut acc = vec![0f32; n * oc];
            stream_block_dispatch(isa, &mut acc, inp, w, i0, i1, n, ic, oc);
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

/// acc (N, OC) += inp[:, i0..i1] · w[i0..i1, :], rows of W read in order (auto-vectorized; compiled
/// per instruction set, see [`stream_block_dispatch`]).
#[inline(always)]
fn stream_block(
    acc: &mut [f32],
    inp: &[f32],
    w: &[f32],
    i0: usize,
    i1: usize,
    n: usize,
    ic: usize,
    oc: usize,
) {
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
}

macro_rules! multiversion {
    ($body:ident, $avx2:ident, $avx512:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2($($arg: $ty),*) $(-> $ret)? {
            $body($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
        unsafe fn $avx512($($arg: $ty),*) $(-> $ret)? {
            $body($($arg),*)
        }
    };
}

pub(crate) use multiversion;

multiversion!(stream_block, stream_block_avx2, stream_block_avx512,
    (acc: &mut [f32], inp: &[f32], w: &[f32], i0: usize, i1: usize, n: usize, ic: usize, oc: usize));
multiversion!(dot_body, dot_avx2, dot_avx512, (a: &[f32], b: &[f32]) -> f32);

/// [`stream_block`] on the kernel path `isa` (same arithmetic on every path: no fused multiply-add).
fn stream_block_dispatch(
    isa: super::isa::Isa,
    acc: &mut [f32],
    inp: &[f32],
    w: &[f32],
    i0: usize,
    i1: usize,
    n: usize,
    ic: usize,
    oc: usize,
) {
    use super::isa::Isa;
    match isa {
        // SAFETY: isa() only returns a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { stream_block_avx512(acc, inp, w, i0, i1, n, ic, oc) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { stream_block_avx2(acc, inp, w, i0, i1, n, ic, oc) },
        _ => stream_block(acc, inp, w, i0, i1, n, ic, oc),
    }
}

/// Dot product with 16 independent lanes so it vectorizes; the summation order is fixed (the same
/// on every kernel path: no fused multiply-add).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    use super::isa::Isa;
    match super::isa::isa() {
        // SAFETY: isa() only returns a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { dot_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { dot_avx2(a, b) },
        _ => dot_body(a, b),
    }
}

#[inline(always)]
pub(crate) fn dot_body(a: &[f32], b: &[f32]) -> f32 {
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

/// Columns per task when summing the bias gradient (fixed: deterministic order per column).
const DBIAS_COLS: usize = 64;

/// Backward of [`matmul_forward`] (`y = x·W + b`). Accumulates (`+=`) into dinp, dweight and
/// dbias; callers zero gradients once per step.
///
/// dinp: (N, IC) += dout · Wᵀ; dweight: (IC, OC) += inpᵀ · dout; dbias: (OC) += Σ_rows dout;
/// dout: (N, OC); inp: (N, IC) the forward input; weight: (IC, OC).
/// Both products go through [`sgemm`] on transposed strided views (parallel inside `gemm`); the
/// bias sum is parallel over blocks of columns, each summed over rows in order.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    n: usize,
    ic: usize,
    oc: usize,
) {
    debug_assert_eq!(dinp.len(), n * ic);
    debug_assert_eq!(dweight.len(), ic * oc);
    debug_assert_eq!(dout.len(), n * oc);
    debug_assert_eq!(inp.len(), n * ic);
    debug_assert_eq!(weight.len(), ic * oc);
    // dinp (N, IC) += dout (N, OC) · Wᵀ (OC, IC)
    sgemm(n, ic, oc, dinp, ic, 1, true, dout, oc, 1, weight, 1, oc);
    // dW (IC, OC) += inpᵀ (IC, N) · dout (N, OC)
    sgemm(ic, oc, n, dweight, oc, 1, true, inp, 1, ic, dout, oc, 1);
    if let Some(dbias) = dbias {
        debug_assert_eq!(dbias.len(), oc);
        dbias
            .par_chunks_mut(DBIAS_COLS)
            .enumerate()
            .for_each(|(blk, db)| {
                let (j0, w) = (blk * DBIAS_COLS, db.len());
                for row in dout.chunks_exact(oc) {
                    for (g, &d) in db.iter_mut().zip(&row[j0..j0 + w]) {
                        *g += d;
                    }
                }
            });
    }
}

/// Backward of [`matmul_forward_nt`] (the tied lm_head, `logits = x·wteᵀ`). Accumulates.
///
/// dinp: (N, C) += dout · w; dw: (V, C) += doutᵀ · inp; dout: (N, V); inp: (N, C); w: (V, C).
/// dw is where the lm_head's share of the tied `wte` gradient lands.
pub fn matmul_backward_nt(
    dinp: &mut [f32],
    dw: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    w: &[f32],
    n: usize,
    c: usize,
    v: usize,
) {
    debug_assert_eq!(dinp.len(), n * c);
    debug_assert_eq!(dw.len(), v * c);
    debug_assert_eq!(dout.len(), n * v);
    debug_assert_eq!(inp.len(), n * c);
    debug_assert_eq!(w.len(), v * c);
    // dinp (N, C) += dout (N, V) · w (V, C)
    sgemm(n, c, v, dinp, c, 1, true, dout, v, 1, w, c, 1);
    // dw (V, C) += doutᵀ (V, N) · inp (N, C)
    sgemm(v, c, n, dw, c, 1, true, dout, 1, v, inp, c, 1);
}

/// Naive f64 reference of [`matmul_backward`], for tests. Accumulates like the fast kernel.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_naive(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: Option<&mut [f32]>,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    n: usize,
    ic: usize,
    oc: usize,
) {
    for r in 0..n {
        for i in 0..ic {
            let mut s = 0f64;
            for j in 0..oc {
                s += dout[r * oc + j] as f64 * weight[i * oc + j] as f64;
            }
            dinp[r * ic + i] += s as f32;
        }
    }
    for i in 0..ic {
        for j in 0..oc {
            let mut s = 0f64;
            for r in 0..n {
                s += inp[r * ic + i] as f64 * dout[r * oc + j] as f64;
            }
            dweight[i * oc + j] += s as f32;
        }
    }
    if let Some(dbias) = dbias {
        for j in 0..oc {
            dbias[j] += (0..n).map(|r| dout[r * oc + j] as f64).sum::<f64>() as f32;
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

    #[test]
    fn matmul_backward_matches_naive_and_finite_differences() {
        let mut rng = Rng::seed(6);
        // (N, IC, OC): B 2 × T 5 rows, C 12 → 3C; odd; big enough for the parallel gemm path
        for &(n, ic, oc) in &[(10, 12, 36), (7, 13, 5), (1, 3, 1), (74, 48, 200)] {
            let inp = randn(n * ic, &mut rng);
            let w = randn(ic * oc, &mut rng);
            let dout = randn(n * oc, &mut rng);
            // start from non-zero gradients: backward must accumulate
            let init = |len: usize| vec![0.5f32; len];
            let (mut di, mut dw, mut db) = (init(n * ic), init(ic * oc), init(oc));
            matmul_backward(&mut di, &mut dw, Some(&mut db), &dout, &inp, &w, n, ic, oc);
            let (mut ndi, mut ndw, mut ndb) = (init(n * ic), init(ic * oc), init(oc));
            matmul_backward_naive(
                &mut ndi,
                &mut ndw,
                Some(&mut ndb),
                &dout,
                &inp,
                &w,
                n,
                ic,
                oc,
            );
            let tol = 1e-5 * (n.max(ic).max(oc) as f32).sqrt() * 4.0;
            assert!(max_diff(&di, &ndi) < tol, "dinp {}", max_diff(&di, &ndi));
            assert!(max_diff(&dw, &ndw) < tol, "dw {}", max_diff(&dw, &ndw));
            assert!(max_diff(&db, &ndb) < tol, "db {}", max_diff(&db, &ndb));
            if n * ic * oc <= 10 * 12 * 36 {
                // L = Σ (x·W + b) ⊙ dout is linear: central differences in f64 are exact up to
                // rounding; check a stride of elements of every gradient
                let loss = |x: &[f64], w: &[f64], b: &[f64]| {
                    let mut l = 0.0;
                    for r in 0..n {
                        for j in 0..oc {
                            let mut y = b[j];
                            for i in 0..ic {
                                y += x[r * ic + i] * w[i * oc + j];
                            }
                            l += y * dout[r * oc + j] as f64;
                        }
                    }
                    l
                };
                let x64: Vec<f64> = inp.iter().map(|&v| v as f64).collect();
                let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
                let b64 = vec![0.0f64; oc];
                let h = 1e-3;
                for i in (0..n * ic).step_by(3) {
                    let (mut p, mut m) = (x64.clone(), x64.clone());
                    p[i] += h;
                    m[i] -= h;
                    let fd = (loss(&p, &w64, &b64) - loss(&m, &w64, &b64)) / (2.0 * h);
                    assert!((di[i] as f64 - 0.5 - fd).abs() < 1e-4, "dinp[{i}]");
                }
                for i in (0..ic * oc).step_by(5) {
                    let (mut p, mut m) = (w64.clone(), w64.clone());
                    p[i] += h;
                    m[i] -= h;
                    let fd = (loss(&x64, &p, &b64) - loss(&x64, &m, &b64)) / (2.0 * h);
                    assert!((dw[i] as f64 - 0.5 - fd).abs() < 1e-4, "dw[{i}]");
                }
                for j in 0..oc {
                    let (mut p, mut m) = (b64.clone(), b64.clone());
                    p[j] += h;
                    m[j] -= h;
                    let fd = (loss(&x64, &w64, &p) - loss(&x64, &w64, &m)) / (2.0 * h);
                    assert!((db[j] as f64 - 0.5 - fd).abs() < 1e-4, "db[{j}]");
                }
            }
        }
    }

    #[test]
    fn matmul_nt_backward_matches_naive_on_transposed_weight() {
        let mut rng = Rng::seed(7);
        for &(n, c, v) in &[(10, 12, 37), (3, 48, 513)] {
            let inp = randn(n * c, &mut rng);
            let w = randn(v * c, &mut rng);
            let dout = randn(n * v, &mut rng);
            let mut wt = vec![0.0; c * v];
            for i in 0..v {
                for j in 0..c {
                    wt[j * v + i] = w[i * c + j];
                }
            }
            let (mut di, mut dw) = (vec![0.5f32; n * c], vec![0.5f32; v * c]);
            matmul_backward_nt(&mut di, &mut dw, &dout, &inp, &w, n, c, v);
            // the same layer as a Conv1D with weight wᵀ (C, V): dW there is dwᵀ here
            let (mut ndi, mut ndwt) = (vec![0.5f32; n * c], vec![0.5f32; c * v]);
            matmul_backward_naive(&mut ndi, &mut ndwt, None, &dout, &inp, &wt, n, c, v);
            let mut ndw = vec![0.0; v * c];
            for i in 0..v {
                for j in 0..c {
                    ndw[i * c + j] = ndwt[j * v + i];
                }
            }
            assert!(max_diff(&di, &ndi) < 1e-4, "dinp {}", max_diff(&di, &ndi));
            assert!(max_diff(&dw, &ndw) < 1e-4, "dw {}", max_diff(&dw, &ndw));
        }
    }

    /// Every layout sgemm is called with (plain, transposed A, transposed B, transposed dst),
    /// odd sizes (tiny, prime, larger than a cache block), the
    /// parallel path, with and without accumulation; and the result independent of thread count.
    #[test]
    fn sgemm_matches_naive_on_every_layout() {
        let mut rng = Rng::seed(8);
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 47, 5),
            (9, 49, 257),
            (37, 100, 300),
            (200, 61, 513),
            (65, 530, 70),
        ] {
            let a = randn(m * k, &mut rng);
            let b = randn(k * n, &mut rng);
            let init = randn(m * n, &mut rng);
            let mut want = vec![0f64; m * n];
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] = (0..k)
                        .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                        .sum();
                }
            }
            // transposed copies
            let at: Vec<f32> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
            let bt: Vec<f32> = (0..n * k).map(|x| b[(x % k) * n + x / k]).collect();
            for (ta, tb, tc, acc) in [
                (false, false, false, false),
                (true, false, false, true),
                (false, true, false, false),
                (true, true, true, true),
                (false, false, true, false),
            ] {
                let (av, ars, acs) = if ta { (&at, 1, m) } else { (&a, k, 1) };
                let (bv, brs, bcs) = if tb { (&bt, 1, k) } else { (&b, n, 1) };
                let (crs, ccs) = if tc { (1, m) } else { (n, 1) };
                let mut c: Vec<f32> = (0..m * n)
                    .map(|x| {
                        if tc {
                            init[(x % m) * n + x / m]
                        } else {
                            init[x]
                        }
                    })
                    .collect();
                let run = |threads: usize, c: &mut Vec<f32>| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    pool.install(|| sgemm(m, n, k, c, crs, ccs, acc, av, ars, acs, bv, brs, bcs));
                };
                let mut c1 = c.clone();
                run(3, &mut c);
                run(1, &mut c1);
                assert_eq!(c, c1, "thread count changed the result");
                let mut worst = 0f64;
                for i in 0..m {
                    for j in 0..n {
                        let w = want[i * n + j] + if acc { init[i * n + j] as f64 } else { 0.0 };
                        worst = worst.max((c[i * crs + j * ccs] as f64 - w).abs());
                    }
                }
                let tol = 1e-5 * (k as f64).sqrt() * 4.0;
                assert!(
                    worst < tol,
                    "m{m} n{n} k{k} ta{ta} tb{tb} tc{tc} acc{acc}: {worst}"
                );
            }
        }
    }
}
