//! Integer dot products for q8_0 and q4_0 weights, as llama.cpp computes them: the activations are
//! rounded to 8 bits per block of 32 ([`QAct`], the q8_0 rule with an f32 scale), and each block's
//! dot product is an exact sum of 32 int8 × int8 (or uint4 × int8) products, scaled by the two
//! block scales and accumulated in f32:
//!
//! ```text
//! out[r, j] = Σ_b  d_w[j, b] · d_x[r, b] · Σ_{i<32} q_w[j, 32b + i] · q_x[r, 32b + i]
//! ```
//!
//! Why: with f32 activations every weight must be widened to f32 before its multiply-add, and at
//! 1 or ½ byte per weight that widening, not memory, limits decoding. Integer products take 32
//! weights per instruction (`vpdpbusd` with AVX-512 VNNI, `vpmaddubsw` + `vpmaddwd` with AVX2).
//! The cost is the activations' rounding: a relative error of at most 1/254 of each block's
//! largest magnitude per element (`tests/quant_model.rs` and docs/quantization.md measure what that
//! does to log-probabilities).
//!
//! Two kernels (`qint_x86.rs`): a streaming one for decoding and small batches, which reads the
//! weights in their file layout 8 rows at a time, and a packed one for prefill (N ≥
//! [`PACKED_MIN_N`]), which repacks 16 rows at a time into an L1-resident panel so that each
//! weight register serves 4 activation rows. Both compute each output element in the same fixed
//! order (blocks in order, one fused multiply-add per block of the exact integer dot product), so
//! a result does not depend on which kernel ran, N, the tiling or the thread count: prefill,
//! batched and one-at-a-time decoding agree bitwise on one instruction set (the portable kernel
//! multiplies and adds separately, so it agrees with the x86 ones within rounding, not bitwise).
//!
//! Sources: llama.cpp's `quantize_row_q8_0` and `ggml_vec_dot_q8_0_q8_0` / `ggml_vec_dot_q4_0_q8_0`
//! (ggml-cpu/arch/x86/quants.c) for the arithmetic; the code is ours.

use rayon::prelude::*;

use super::isa::Isa;
use super::quant::{f16_bits_to_f32, q6_k_levels, QMat, QType, Q6_K_BYTES, QK, QK_K};

/// Activations rounded to 8 bits per block of 32: `x ≈ d[r, b] · qs[r, 32b + i]`.
///
/// `d = max|x| / 127` over the block (f32, not rounded to f16 as llama.cpp does), `qs =
/// round_half_even(x / d)` in −127..=127 (0 where the block is all zero), `sum[r, b] = Σ qs` over
/// the block (used by q4_0, whose weights carry an offset of 8).
#[derive(Debug, Clone)]
pub struct QAct {
    /// Activation rows N.
    pub n: usize,
    /// Columns K (a multiple of 32).
    pub k: usize,
    /// (N, K) rounded values.
    pub qs: Vec<i8>,
    /// (N, K/32) block scales.
    pub d: Vec<f32>,
    /// (N, K/32) block sums of `qs`.
    pub sum: Vec<i32>,
}

impl QAct {
    /// Rounds `x` (N, K) row-major. Panics if K is not a multiple of 32 or `x` is not N·K long
    /// (callers hold q8_0/q4_0 matrices, whose K always is).
    pub fn quantize(x: &[f32], n: usize, k: usize) -> QAct {
        assert!(
            k.is_multiple_of(QK) && x.len() == n * k,
            "QAct: x is not (N, K) with K % 32 == 0"
        );
        let nb = k / QK;
        let mut a = QAct {
            n,
            k,
            qs: vec![0; n * k],
            d: vec![0.0; n * nb],
            sum: vec![0; n * nb],
        };
        let isa = super::isa::isa();
        // whole rows per task, 16 rows at a time (decoding has one task)
        let rows_per = 16usize;
        a.qs.par_chunks_mut(rows_per * k)
            .zip(a.d.par_chunks_mut(rows_per * nb))
            .zip(a.sum.par_chunks_mut(rows_per * nb))
            .zip(x.par_chunks(rows_per * k))
            .for_each(|(((qs, d), sum), x)| quantize_dispatch(isa, x, qs, d, sum));
        a
    }

    /// The values the kernels multiply: `d · qs` (for tests and references).
    pub fn dequantize(&self) -> Vec<f32> {
        self.qs
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.d[i / QK])
            .collect()
    }
}

/// Rounds blocks of 32: `x` (M·32) into `qs`, `d`, `sum` (M each); the rule of [`QAct`].
#[inline(always)]
fn quantize_blocks(x: &[f32], qs: &mut [i8], d: &mut [f32], sum: &mut [i32]) {
    for (((xb, qb), db), sb) in x
        .chunks_exact(QK)
        .zip(qs.chunks_exact_mut(QK))
        .zip(d.iter_mut())
        .zip(sum.iter_mut())
    {
        // max |x| in 8 lanes (a select that compiles to vmaxps), then across them
        let mut l = [0f32; 8];
        for c in xb.chunks_exact(8) {
            for i in 0..8 {
                let v = c[i].abs();
                l[i] = if v > l[i] { v } else { l[i] };
            }
        }
        let amax = l.iter().fold(0f32, |m, &v| if v > m { v } else { m });
        let dd = amax / 127.0;
        let id = if dd > 0.0 { 1.0 / dd } else { 0.0 };
        let mut s = 0i32;
        for (q, &v) in qb.iter_mut().zip(xb) {
            // round half to even by the 1.5·2²³ trick (|v·id| ≤ 127), which vectorizes where
            // `round_ties_even` would be a library call on baseline x86-64
            const MAGIC: f32 = 12_582_912.0;
            let t = ((v * id).clamp(-127.0, 127.0) + MAGIC) - MAGIC;
            // NaN (from a NaN input) rounds to 0, as `as i32` would; `to_int_unchecked` keeps
            // the loop vectorized where `as` (saturating) compiles to scalar code
            let t = if t.is_nan() { 0.0 } else { t };
            // SAFETY: t is an integer in −127..=127, not NaN.
            let r: i32 = unsafe { t.to_int_unchecked() };
            *q = r as i8;
            s += r;
        }
        *db = dd;
        *sb = s;
    }
}

super::matmul::multiversion!(quantize_blocks, quantize_blocks_avx2, quantize_blocks_avx512,
    (x: &[f32], qs: &mut [i8], d: &mut [f32], sum: &mut [i32]));

fn quantize_dispatch(isa: Isa, x: &[f32], qs: &mut [i8], d: &mut [f32], sum: &mut [i32]) {
    match isa {
        // SAFETY: isa() only returns a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { quantize_blocks_avx512(x, qs, d, sum) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { quantize_blocks_avx2(x, qs, d, sum) },
        _ => quantize_blocks(x, qs, d, sum),
    }
}

/// Whether [`qint_forward`] handles this weight type.
pub fn is_int_type(t: QType) -> bool {
    matches!(t, QType::Q8_0 | QType::Q4_0 | QType::Q6_K)
}

/// out (N, R) = a (N, K) · Wᵀ + bias (R), W a q8_0, q4_0 or q6_K [`QMat`] (R, K), on the kernel
/// path `isa` (a path the CPU lacks runs the portable one).
///
/// Panics on another weight type or mismatched shapes (internal callers check).
pub fn qint_forward(isa: Isa, out: &mut [f32], a: &QAct, w: &QMat, bias: Option<&[f32]>) {
    let (n, r, k) = (a.n, w.rows, w.cols);
    assert!(
        is_int_type(w.qtype),
        "qint_forward: {} weights",
        w.qtype.name()
    );
    assert_eq!(a.k, k, "qint_forward: activations have K={} for K={k}", a.k);
    // the SIMD kernels index by these lengths: a hand-built QAct or QMat must not let them read
    // past the end
    let nb = k / QK;
    assert!(
        k.is_multiple_of(QK) && a.qs.len() == n * k && a.d.len() == n * nb && a.sum.len() == n * nb,
        "qint_forward: QAct buffers are not (N, K) / (N, K/32)"
    );
    assert!(
        w.qtype.row_bytes(k).map(|rb| rb * r) == Some(w.data.len()),
        "qint_forward: weight bytes are not R rows of K {} values",
        w.qtype.name()
    );
    assert_eq!(out.len(), n * r, "qint_forward: out is not (N, R)");
    if n == 0 || r == 0 {
        return;
    }
    // tasks own runs of whole 8-row (streaming) or 16-row (packed) weight groups: columns j0..j1
    // of every output row
    let threads = rayon::current_num_threads().max(1);
    // q6_K has the streaming kernel only (its rows are the lm_head, whose prefill needs the
    // last position's logits alone)
    let packed = n >= PACKED_MIN_N && w.qtype != QType::Q6_K;
    let chunk = if packed {
        r.div_ceil(threads * 4).next_multiple_of(16).max(16)
    } else {
        r.div_ceil(threads * 8).next_multiple_of(8).max(8)
    };
    let base = OutPtr(out.as_mut_ptr());
    (0..r.div_ceil(chunk)).into_par_iter().for_each(|c| {
        let o = OutCols {
            ptr: base.0,
            ld: r,
            n,
            j0: c * chunk,
            j1: ((c + 1) * chunk).min(r),
        };
        let _ = &base; // the closure captures the Sync wrapper, not the raw pointer
        rows_dispatch(isa, w, a, &o, packed)
    });
    if let Some(bias) = bias {
        assert_eq!(bias.len(), r, "qint_forward: bias is not (R)");
        for row in out.chunks_exact_mut(r) {
            for (o, &b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint column ranges of the buffer it points to (see OutCols).
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// Columns `j0..j1` of a row-major (N, ld) output that one task owns; the tasks of one
/// [`qint_forward`] own disjoint column ranges of the same `&mut` buffer, so their writes never
/// overlap, and the buffer outlives them (the parallel loop joins before `qint_forward` returns).
pub struct OutCols {
    ptr: *mut f32,
    /// Row stride (R).
    pub ld: usize,
    /// Rows (N).
    pub n: usize,
    /// First column owned.
    pub j0: usize,
    /// One past the last column owned.
    pub j1: usize,
}

/// Activation rows from which [`qint_forward`] packs weight panels (prefill) instead of streaming
/// the weights as stored; either way the results are the same, bit for bit.
pub const PACKED_MIN_N: usize = 16;

impl OutCols {
    /// A pointer to element (r, j), valid for `len` elements of that row.
    ///
    /// # Safety
    /// `r < n` and `j0 <= j`, `j + len <= j1`.
    #[inline(always)]
    pub unsafe fn ptr_at(&self, r: usize, j: usize, len: usize) -> *mut f32 {
        debug_assert!(r < self.n && self.j0 <= j && j + len <= self.j1);
        self.ptr.add(r * self.ld + j)
    }

    /// Writes element (r, j).
    ///
    /// # Safety
    /// `r < n` and `j0 <= j < j1`.
    #[inline(always)]
    pub unsafe fn set(&self, r: usize, j: usize, v: f32) {
        debug_assert!(r < self.n && self.j0 <= j && j < self.j1);
        *self.ptr.add(r * self.ld + j) = v;
    }
}

fn rows_dispatch(isa: Isa, w: &QMat, a: &QAct, out: &OutCols, packed: bool) {
    match isa {
        // SAFETY: Avx512/Avx2 only run when the CPU supports them (checked here).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.is_supported() && super::isa::has_vnni() => unsafe {
            super::qint_x86::rows_vnni(w, a, out, packed)
        },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 if Isa::Avx2.is_supported() => unsafe {
            super::qint_x86::rows_avx2(w, a, out, packed)
        },
        _ => rows_portable(w, a, out),
    }
}

/// Weight rows `out.j0..out.j1` against every activation row, plain Rust.
fn rows_portable(w: &QMat, a: &QAct, out: &OutCols) {
    let (n, nb) = (a.n, a.k / QK);
    // q6_K rows are decoded once per row: levels − 32, and the sub-scale of each group of 16
    let (mut lv, mut sc) = (Vec::new(), Vec::new());
    for j in out.j0..out.j1 {
        let row = w.row(j);
        if w.qtype == QType::Q6_K {
            lv.clear();
            sc.clear();
            let mut l6 = [0u8; QK_K];
            for blk in row.chunks_exact(Q6_K_BYTES) {
                q6_k_levels(blk, &mut l6);
                lv.extend(l6.iter().map(|&q| q as i32 - 32));
                sc.extend(blk[192..208].iter().map(|&s| s as i8 as i32));
            }
        }
        for r in 0..n {
            let mut acc = 0f32;
            for b in 0..nb {
                let x = &a.qs[(r * nb + b) * QK..][..QK];
                let (s, dw) = if w.qtype == QType::Q6_K {
                    let l = &lv[b * QK..][..QK];
                    let dot = |g: usize| -> i32 {
                        let (l, x) = (&l[16 * g..16 * g + 16], &x[16 * g..16 * g + 16]);
                        l.iter().zip(x).map(|(&q, &v)| q * v as i32).sum()
                    };
                    let blk = &row[(b / 8) * Q6_K_BYTES..][..Q6_K_BYTES];
                    let s = sc[2 * b] * dot(0) + sc[2 * b + 1] * dot(1);
                    (s, f16_bits_to_f32(u16::from_le_bytes([blk[208], blk[209]])))
                } else {
                    block_dot(w.qtype, row, b, x, a.sum[r * nb + b])
                };
                acc += s as f32 * (dw * a.d[r * nb + b]);
            }
            // SAFETY: r < n and j in j0..j1
            unsafe { out.set(r, j, acc) };
        }
    }
}

/// The exact integer dot product of block `b` (32 weights) of a q8_0 or q4_0 weight row with
/// 32 rounded activations `x` (whose sum is `xsum`), and the block's f32 weight scale: the terms
/// of [`qint_forward`]'s sum.
fn block_dot(t: QType, row: &[u8], b: usize, x: &[i8], xsum: i32) -> (i32, f32) {
    let bb = t.block_bytes();
    let blk = &row[b * bb..(b + 1) * bb];
    let s = if t == QType::Q8_0 {
        blk[2..]
            .iter()
            .zip(x)
            .map(|(&q, &v)| (q as i8) as i32 * v as i32)
            .sum()
    } else {
        let mut s = 0i32;
        for i in 0..QK / 2 {
            s += (blk[2 + i] & 15) as i32 * x[i] as i32;
            s += (blk[2 + i] >> 4) as i32 * x[i + QK / 2] as i32;
        }
        s - 8 * xsum
    };
    (s, f16_bits_to_f32(u16::from_le_bytes([blk[0], blk[1]])))
}

/// The f64 reference of [`qint_forward`]: exact block dot products of the same rounded
/// activations, for tests.
pub fn qint_forward_naive(out: &mut [f32], a: &QAct, w: &QMat, bias: Option<&[f32]>) {
    let wf = w.dequantize();
    let xf = a.dequantize();
    let (r, k) = (w.rows, w.cols);
    for i in 0..a.n {
        for j in 0..r {
            let mut s = bias.map_or(0.0, |b| b[j] as f64);
            for p in 0..k {
                s += xf[i * k + p] as f64 * wf[j * k + p] as f64;
            }
            out[i * r + j] = s as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::isa::supported;
    use crate::kernels::quant::quantize_matrix;
    use crate::rng::Rng;

    #[test]
    fn activation_rounding_follows_its_rule() {
        let mut x: Vec<f32> = (0..64).map(|i| (i as f32 - 20.0) * 0.25).collect();
        x[32..].fill(0.0);
        x[3] = 2.5 * (x[0].abs() / 127.0); // not the block max
        let a = QAct::quantize(&x, 1, 64);
        let d = x[..32].iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        assert_eq!(a.d[0], d);
        assert_eq!(a.d[1], 0.0);
        assert!(a.qs[32..].iter().all(|&q| q == 0));
        for (i, (&q, &v)) in a.qs.iter().zip(&x).take(32).enumerate() {
            assert_eq!(q as f32, (v / d).round_ties_even(), "{i}");
        }
        // the block's largest magnitude maps to ±127
        assert_eq!(a.qs.iter().map(|q| q.unsigned_abs()).max(), Some(127));
        assert_eq!(a.sum[0], a.qs[..32].iter().map(|&q| q as i32).sum::<i32>());
    }

    #[test]
    fn every_path_matches_the_exact_block_sums() {
        let mut rng = Rng::seed(21);
        // (N, R, K): decode, 8- and 16-row-group remainders, packed batches (N ≥ 16)
        let shapes = [
            (1, 37, 64),
            (2, 5, 96),
            (3, 64, 32),
            (5, 9, 128),
            (16, 33, 64),
            (40, 13, 96),
            (1, 19, 256),
            (3, 8, 512),
            (17, 11, 768),
        ];
        for t in [QType::Q8_0, QType::Q4_0, QType::Q6_K] {
            for &(n, r, k) in &shapes {
                if t.row_bytes(k).is_none() {
                    continue;
                }
                let wf: Vec<f32> = (0..r * k).map(|_| rng.normal()).collect();
                let bytes = quantize_matrix(t, &wf, r, k).unwrap();
                let w = QMat::new(t, r, k, &bytes).unwrap();
                let x: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
                let a = QAct::quantize(&x, n, k);
                let bias: Vec<f32> = (0..r).map(|_| rng.normal()).collect();
                let mut want = vec![0f32; n * r];
                qint_forward_naive(&mut want, &a, &w, Some(&bias));
                for isa in supported() {
                    let mut got = vec![0f32; n * r];
                    qint_forward(isa, &mut got, &a, &w, Some(&bias));
                    let worst = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                        .fold(0f32, f32::max);
                    assert!(
                        worst < 1e-5 * (k as f32).sqrt(),
                        "{} {} n{n} r{r} k{k}: {worst}",
                        t.name(),
                        isa.name()
                    );
                }
            }
        }
    }

    #[test]
    fn q8_0_weights_of_minus_128_are_exact() {
        // no quantizer writes −128, but a file may hold it; the sign trick must not wrap it
        let mut rng = Rng::seed(23);
        let (r, k) = (24, 64);
        let wf: Vec<f32> = (0..r * k).map(|_| rng.normal()).collect();
        let mut bytes = quantize_matrix(QType::Q8_0, &wf, r, k).unwrap();
        for blk in bytes.chunks_exact_mut(34) {
            blk[2] = 0x80;
            blk[20] = 0x80;
        }
        let w = QMat::new(QType::Q8_0, r, k, &bytes).unwrap();
        for n in [1, 20] {
            let x: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
            let a = QAct::quantize(&x, n, k);
            let mut want = vec![0f32; n * r];
            qint_forward_naive(&mut want, &a, &w, None);
            for isa in supported() {
                let mut got = vec![0f32; n * r];
                qint_forward(isa, &mut got, &a, &w, None);
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{} n{n} [{i}]: {g} vs {e}",
                        isa.name()
                    );
                }
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_its_batch_or_thread_count() {
        let mut rng = Rng::seed(22);
        // 21 rows take the packed kernel, each row alone the streaming one; 300 weight rows
        // leave short 8- and 16-row groups
        let (n, r, k) = (21, 300, 256);
        assert!(n >= PACKED_MIN_N);
        for t in [QType::Q8_0, QType::Q4_0, QType::Q6_K] {
            let wf: Vec<f32> = (0..r * k).map(|_| rng.normal()).collect();
            let bytes = quantize_matrix(t, &wf, r, k).unwrap();
            let w = QMat::new(t, r, k, &bytes).unwrap();
            let x: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
            for isa in supported() {
                let run = |threads: usize, rows: std::ops::Range<usize>| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let a = QAct::quantize(&x[rows.start * k..rows.end * k], rows.len(), k);
                    let mut out = vec![0f32; rows.len() * r];
                    pool.install(|| qint_forward(isa, &mut out, &a, &w, None));
                    out
                };
                let all = run(2, 0..n);
                assert_eq!(all, run(1, 0..n), "{}", isa.name());
                assert_eq!(all, run(5, 0..n), "{}", isa.name());
                for i in 0..n {
                    assert_eq!(
                        &all[i * r..(i + 1) * r],
                        &run(2, i..i + 1)[..],
                        "{} row {i}",
                        isa.name()
                    );
                }
            }
        }
    }
}
