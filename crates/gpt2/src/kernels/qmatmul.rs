//! Matrix multiply with weights in their storage type: `out (N, R) = inp (N, K) · Wᵀ + b`, W a
//! [`QMat`] of R rows × K columns in f32, f16, bf16, q8_0 or q4_0 (llama.cpp's layout, nn.Linear's
//! `(out, in)`).
//!
//! For q8_0 and q4_0 weights the activations are rounded to 8 bits per block and the products are
//! integer ([`super::qint`], as llama.cpp does); for f32, f16 and bf16 they stay f32 and the only
//! error is the weights' own rounding.
//!
//! For f32, f16 and bf16, two paths with the same math:
//! - **few rows** (decoding, N ≤ [`QSTREAM_MAX_ROWS`]): every weight row is read once, decoded
//!   32 values at a time into registers and multiplied with all N activation rows. Decode is bound by
//!   memory bandwidth, so its speed follows bytes per weight (4 or 2).
//! - **many rows** (prefill, scoring): slices of W are decoded to f32 and multiplied by the `gemm`
//!   crate's SGEMM; the decoding costs one pass over W, small beside the N·R·K multiply-adds.
//!
//! Each output element is computed by one task in a fixed order (32 lanes per row, summed in lane
//! order), so results do not depend on the thread count. Kernels are compiled for each
//! [`Isa`] and chosen at run time ([`crate::kernels::isa`]); [`qmatmul_forward_naive`] is the f64
//! reference the tests compare every path with.

use rayon::prelude::*;

use super::isa::Isa;
use super::matmul::sgemm;
use super::quant::{QMat, QType, QK};

/// Up to this many activation rows use the streaming kernel (f32, f16, bf16); more decode slices
/// of the weights to f32 for an SGEMM (at 16 rows the streaming kernel was still ≈ 4× faster than
/// decoding every matrix to f32 per step, measured on q8_0 before it moved to [`super::qint`]).
pub const QSTREAM_MAX_ROWS: usize = 16;
/// Activation rows multiplied per pass over a weight row (accumulators held in registers).
const ROWS_PER_PASS: usize = 4;
/// f32 elements decoded per SGEMM slice in the many-rows path (bounds its scratch to 16 MiB).
const SLICE_ELEMS: usize = 4 << 20;

// ---------------------------------------------------------------------------------------------
// Decoding 32 weights, written once and compiled per instruction set.

const P: u8 = 0; // portable
const A2: u8 = 1; // AVX2 + FMA + F16C
const A5: u8 = 2; // AVX-512

const T_F32: u8 = 0;
const T_F16: u8 = 1;
const T_BF16: u8 = 2;

const fn qtype_of(t: u8) -> QType {
    match t {
        T_F32 => QType::F32,
        T_F16 => QType::F16,
        T_BF16 => QType::BF16,
        _ => panic!("q8_0/q4_0 weights take qint"),
    }
}

/// Decodes block `blk` of a row (32 consecutive weights) into `w`; `T` is the storage type as a
/// constant, so each (type, instruction set) pair compiles to its own loop.
#[inline(always)]
fn decode32<const ISA: u8, const T: u8>(row: &[u8], blk: usize, w: &mut [f32; QK]) {
    match qtype_of(T) {
        QType::F32 => {
            let b = &row[blk * 128..blk * 128 + 128];
            for (j, o) in w.iter_mut().enumerate() {
                *o = f32::from_le_bytes([b[4 * j], b[4 * j + 1], b[4 * j + 2], b[4 * j + 3]]);
            }
        }
        QType::F16 => {
            let b = &row[blk * 64..blk * 64 + 64];
            #[cfg(target_arch = "x86_64")]
            if ISA == A5 {
                use std::arch::x86_64::*;
                // SAFETY: only reached from the AVX-512 instantiation (avx512f enabled); b holds
                // 64 bytes = 2 × 16 halves; unaligned loads/stores.
                unsafe {
                    let lo = _mm512_cvtph_ps(_mm256_loadu_si256(b.as_ptr().cast()));
                    let hi = _mm512_cvtph_ps(_mm256_loadu_si256(b.as_ptr().add(32).cast()));
                    _mm512_storeu_ps(w.as_mut_ptr(), lo);
                    _mm512_storeu_ps(w.as_mut_ptr().add(16), hi);
                }
                return;
            } else if ISA == A2 {
                use std::arch::x86_64::*;
                // SAFETY: only reached from the AVX2 instantiation (f16c enabled); 4 × 8 halves.
                unsafe {
                    for q in 0..4 {
                        let v = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(16 * q).cast()));
                        _mm256_storeu_ps(w.as_mut_ptr().add(8 * q), v);
                    }
                }
                return;
            }
            for (j, o) in w.iter_mut().enumerate() {
                *o = half::f16::from_bits(u16::from_le_bytes([b[2 * j], b[2 * j + 1]])).to_f32();
            }
        }
        QType::BF16 => {
            let b = &row[blk * 64..blk * 64 + 64];
            for (j, o) in w.iter_mut().enumerate() {
                *o = f32::from_bits((u16::from_le_bytes([b[2 * j], b[2 * j + 1]]) as u32) << 16);
            }
        }
        QType::Q8_0 | QType::Q4_0 | QType::Q6_K => unreachable!("q8_0/q4_0/q6_K weights take qint"),
    }
}

#[inline(always)]
fn madd<const ISA: u8>(a: f32, b: f32, c: f32) -> f32 {
    if ISA == P {
        a * b + c
    } else {
        a.mul_add(b, c)
    }
}

/// `out[r] = row · x[r]` for `R` activation rows `x[r] = xs[r·k ..][..k]`.
#[inline(always)]
fn dot_rows<const ISA: u8, const T: u8, const R: usize>(
    row: &[u8],
    xs: &[f32],
    k: usize,
    out: &mut [f32],
) {
    let t = qtype_of(T);
    let nblk = k / QK;
    let mut acc = [[0f32; QK]; R];
    let mut w = [0f32; QK];
    for blk in 0..nblk {
        decode32::<ISA, T>(row, blk, &mut w);
        for (r, a) in acc.iter_mut().enumerate() {
            let x = &xs[r * k + blk * QK..r * k + blk * QK + QK];
            for j in 0..QK {
                a[j] = madd::<ISA>(w[j], x[j], a[j]);
            }
        }
    }
    // the last partial block (f32, f16, bf16 rows whose length is not a multiple of 32)
    let tail = nblk * QK;
    let mut tw = [0f32; QK];
    if tail < k {
        super::quant::dequantize_row(
            t,
            &row[t.row_bytes(tail).unwrap_or(0)..],
            &mut tw[..k - tail],
        );
    }
    for (r, a) in acc.iter().enumerate() {
        let mut s = 0f32;
        for (j, &wv) in tw[..k - tail].iter().enumerate() {
            s = madd::<ISA>(wv, xs[r * k + tail + j], s);
        }
        // fixed pairwise order over the 32 lanes
        let mut l = *a;
        let mut width = QK;
        while width > 1 {
            width /= 2;
            for j in 0..width {
                l[j] += l[j + width];
            }
        }
        out[r] = l[0] + s;
    }
}

/// For weight rows `j0..j0 + out_t.len() / n`: `out_t[(j - j0)·n + r] = W[j] · inp[r]`.
#[inline(always)]
fn rows_kernel<const ISA: u8>(w: &QMat, inp: &[f32], n: usize, j0: usize, out_t: &mut [f32]) {
    match w.qtype {
        QType::F32 => rows_typed::<ISA, T_F32>(w, inp, n, j0, out_t),
        QType::F16 => rows_typed::<ISA, T_F16>(w, inp, n, j0, out_t),
        QType::BF16 => rows_typed::<ISA, T_BF16>(w, inp, n, j0, out_t),
        QType::Q8_0 | QType::Q4_0 | QType::Q6_K => unreachable!("q8_0/q4_0/q6_K weights take qint"),
    }
}

#[inline(always)]
fn rows_typed<const ISA: u8, const T: u8>(
    w: &QMat,
    inp: &[f32],
    n: usize,
    j0: usize,
    out_t: &mut [f32],
) {
    let k = w.cols;
    for (jj, o) in out_t.chunks_exact_mut(n).enumerate() {
        let row = w.row(j0 + jj);
        let mut r0 = 0;
        while r0 < n {
            let xs = &inp[r0 * k..];
            let o = &mut o[r0..];
            match (n - r0).min(ROWS_PER_PASS) {
                4 => dot_rows::<ISA, T, 4>(row, xs, k, o),
                3 => dot_rows::<ISA, T, 3>(row, xs, k, o),
                2 => dot_rows::<ISA, T, 2>(row, xs, k, o),
                _ => dot_rows::<ISA, T, 1>(row, xs, k, o),
            }
            r0 += ROWS_PER_PASS;
        }
    }
}

/// Decodes weight rows `j0..j0 + out.len() / cols` into `out` (f32, row-major).
#[inline(always)]
fn decode_kernel<const ISA: u8>(w: &QMat, j0: usize, out: &mut [f32]) {
    match w.qtype {
        QType::F32 => decode_typed::<ISA, T_F32>(w, j0, out),
        QType::F16 => decode_typed::<ISA, T_F16>(w, j0, out),
        QType::BF16 => decode_typed::<ISA, T_BF16>(w, j0, out),
        QType::Q8_0 | QType::Q4_0 | QType::Q6_K => unreachable!("q8_0/q4_0/q6_K weights take qint"),
    }
}

#[inline(always)]
fn decode_typed<const ISA: u8, const T: u8>(w: &QMat, j0: usize, out: &mut [f32]) {
    let k = w.cols;
    let nblk = k / QK;
    let mut buf = [0f32; QK];
    for (jj, o) in out.chunks_exact_mut(k).enumerate() {
        let row = w.row(j0 + jj);
        for blk in 0..nblk {
            decode32::<ISA, T>(row, blk, &mut buf);
            o[blk * QK..blk * QK + QK].copy_from_slice(&buf);
        }
        if nblk * QK < k {
            let tail = nblk * QK;
            super::quant::dequantize_row(
                w.qtype,
                &row[w.qtype.row_bytes(tail).unwrap_or(0)..],
                &mut o[tail..],
            );
        }
    }
}

fn rows_portable(w: &QMat, inp: &[f32], n: usize, j0: usize, out_t: &mut [f32]) {
    rows_kernel::<P>(w, inp, n, j0, out_t)
}
fn decode_portable(w: &QMat, j0: usize, out: &mut [f32]) {
    decode_kernel::<P>(w, j0, out)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::*;
    pub(super) use crate::kernels::qdot_x86::{rows_avx2, rows_avx512};
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn decode_avx2(w: &QMat, j0: usize, out: &mut [f32]) {
        decode_kernel::<A2>(w, j0, out)
    }
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    pub(super) unsafe fn decode_avx512(w: &QMat, j0: usize, out: &mut [f32]) {
        decode_kernel::<A5>(w, j0, out)
    }
}

fn rows_dispatch(isa: Isa, w: &QMat, inp: &[f32], n: usize, j0: usize, out_t: &mut [f32]) {
    match isa {
        // SAFETY: `isa` is only Avx2/Avx512 when the CPU supports it (checked below).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.is_supported() => unsafe { x86::rows_avx512(w, inp, n, j0, out_t) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if isa.is_supported() => unsafe { x86::rows_avx2(w, inp, n, j0, out_t) },
        _ => rows_portable(w, inp, n, j0, out_t),
    }
}

fn decode_dispatch(isa: Isa, w: &QMat, j0: usize, out: &mut [f32]) {
    match isa {
        // SAFETY: as in rows_dispatch.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.is_supported() => unsafe { x86::decode_avx512(w, j0, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if isa.is_supported() => unsafe { x86::decode_avx2(w, j0, out) },
        _ => decode_portable(w, j0, out),
    }
}

// ---------------------------------------------------------------------------------------------

/// out: (N, R) = inp (N, K) · Wᵀ + bias (R), W: (R, K) in any [`QType`]; the kernel path of
/// [`crate::kernels::isa::isa`].
pub fn qmatmul_forward(out: &mut [f32], inp: &[f32], w: &QMat, bias: Option<&[f32]>, n: usize) {
    qmatmul_forward_isa(super::isa::isa(), out, inp, w, bias, n)
}

/// [`qmatmul_forward`] on an explicit kernel path (tests run each one). A path the CPU does not
/// support runs the portable one.
pub fn qmatmul_forward_isa(
    isa: Isa,
    out: &mut [f32],
    inp: &[f32],
    w: &QMat,
    bias: Option<&[f32]>,
    n: usize,
) {
    let (r, k) = (w.rows, w.cols);
    assert_eq!(out.len(), n * r, "qmatmul: out is not (N, R)");
    assert_eq!(inp.len(), n * k, "qmatmul: inp is not (N, K)");
    if n == 0 || r == 0 {
        return;
    }
    if super::qint::is_int_type(w.qtype) {
        let a = super::qint::QAct::quantize(inp, n, k);
        super::qint::qint_forward(isa, out, &a, w, bias);
        return;
    }
    if n <= QSTREAM_MAX_ROWS {
        // out_t (R, N): tasks own disjoint runs of weight rows
        let threads = rayon::current_num_threads().max(1);
        let chunk = r.div_ceil(threads * 8).max(4);
        let mut out_t = vec![0f32; r * n];
        out_t
            .par_chunks_mut(chunk * n)
            .enumerate()
            .for_each(|(c, o)| rows_dispatch(isa, w, inp, n, c * chunk, o));
        for (i, row) in out.chunks_exact_mut(r).enumerate() {
            for (j, o) in row.iter_mut().enumerate() {
                *o = out_t[j * n + i];
            }
        }
    } else if w.qtype == QType::F32 && w.data.as_ptr().align_offset(4) == 0 {
        // SAFETY: 4-aligned (checked), length r·k·4 (QMat invariant); f32 accepts any bits.
        let wf = unsafe { std::slice::from_raw_parts(w.data.as_ptr().cast::<f32>(), r * k) };
        sgemm(n, r, k, out, r, 1, false, inp, k, 1, wf, 1, k);
    } else {
        let rows_per = (SLICE_ELEMS / k.max(1)).clamp(1, r);
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let need = rows_per * k;
            if s.len() < need {
                s.resize(need, 0.0);
            }
            let mut j0 = 0;
            while j0 < r {
                let j1 = (j0 + rows_per).min(r);
                let buf = &mut s[..(j1 - j0) * k];
                let per_task = (j1 - j0)
                    .div_ceil(rayon::current_num_threads().max(1) * 4)
                    .max(1);
                buf.par_chunks_mut(per_task * k)
                    .enumerate()
                    .for_each(|(c, o)| decode_dispatch(isa, w, j0 + c * per_task, o));
                // out[:, j0..j1] = inp · bufᵀ
                sgemm(
                    n,
                    j1 - j0,
                    k,
                    &mut out[j0..],
                    r,
                    1,
                    false,
                    inp,
                    k,
                    1,
                    buf,
                    1,
                    k,
                );
                j0 = j1;
            }
        });
    }
    if let Some(bias) = bias {
        assert_eq!(bias.len(), r, "qmatmul: bias is not (R)");
        for row in out.chunks_exact_mut(r) {
            for (o, &b) in row.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

/// The f64 reference of [`qmatmul_forward`] on the reference decoding
/// ([`QMat::dequantize`]), with the activations rounded to 8 bits first for q8_0 and q4_0
/// weights, as the kernels do ([`super::qint`]): for tests.
pub fn qmatmul_forward_naive(
    out: &mut [f32],
    inp: &[f32],
    w: &QMat,
    bias: Option<&[f32]>,
    n: usize,
) {
    let (r, k) = (w.rows, w.cols);
    if super::qint::is_int_type(w.qtype) {
        let a = super::qint::QAct::quantize(inp, n, k);
        return super::qint::qint_forward_naive(out, &a, w, bias);
    }
    let wf = w.dequantize();
    for i in 0..n {
        for j in 0..r {
            let mut s = bias.map_or(0.0, |b| b[j] as f64);
            for p in 0..k {
                s += inp[i * k + p] as f64 * wf[j * k + p] as f64;
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
    fn every_type_and_path_matches_naive_on_odd_shapes() {
        let mut rng = Rng::seed(11);
        // (N, R, K): decode rows 1..8 with remainders of the 4-row passes, prefill rows, K with
        // a partial block for the 16-bit types
        let shapes = [
            (1, 37, 64),
            (3, 5, 96),
            (5, 64, 32),
            (8, 33, 128),
            (9, 70, 64),
            (40, 19, 160),
        ];
        for t in QType::ALL {
            for &(n, r, k0) in &shapes {
                for k in [k0, k0 + 7] {
                    let Some(bytes) = ({
                        let w: Vec<f32> = (0..r * k).map(|_| rng.normal()).collect();
                        quantize_matrix(t, &w, r, k)
                    }) else {
                        continue; // q8_0 / q4_0 need whole blocks
                    };
                    let w = QMat::new(t, r, k, &bytes).unwrap();
                    let inp: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
                    let bias: Vec<f32> = (0..r).map(|_| rng.normal()).collect();
                    let mut want = vec![0f32; n * r];
                    qmatmul_forward_naive(&mut want, &inp, &w, Some(&bias), n);
                    for isa in supported() {
                        let mut got = vec![0f32; n * r];
                        qmatmul_forward_isa(isa, &mut got, &inp, &w, Some(&bias), n);
                        let worst = got
                            .iter()
                            .zip(&want)
                            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                            .fold(0f32, f32::max);
                        assert!(
                            worst < 2e-5 * (k as f32).sqrt(),
                            "{} {} n{n} r{r} k{k}: {worst}",
                            t.name(),
                            isa.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_thread_count() {
        let mut rng = Rng::seed(12);
        let (n, r, k) = (3, 300, 256);
        let w: Vec<f32> = (0..r * k).map(|_| rng.normal()).collect();
        let bytes = quantize_matrix(QType::Q4_0, &w, r, k).unwrap();
        let w = QMat::new(QType::Q4_0, r, k, &bytes).unwrap();
        let inp: Vec<f32> = (0..n * k).map(|_| rng.normal()).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0f32; n * r];
            pool.install(|| qmatmul_forward(&mut out, &inp, &w, None, n));
            out
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(7));
    }
}
