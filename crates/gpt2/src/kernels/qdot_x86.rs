//! The streaming (decode) kernels of [`super::qmatmul`] for f32, f16 and bf16 weights, written with
//! x86 intrinsics for AVX-512 and for AVX2 + FMA + F16C: one weight row against up to 4 activation
//! rows, 32 weights (one block) at a time, widened in registers and multiplied with f32 fused
//! multiply-adds (q8_0 and q4_0 take the integer kernels of [`super::qint`]).
//!
//! Per block: AVX-512 holds the 32 decoded weights in 2 registers, AVX2 in 4; each activation row
//! keeps 2 accumulators (AVX2 alternates them over its 4 registers), reduced in a fixed order at
//! the end, so results do not depend on thread count or on how rows are grouped. The portable
//! kernel in `qmatmul.rs` computes the same sums in another order (tests bound the difference).

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::quant::{dequantize_row, QMat, QType, QK};

const T_F32: u8 = 0;
const T_F16: u8 = 1;
const T_BF16: u8 = 2;

/// 32 weights of block `blk` of `row` as 2 × 16 f32.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
#[inline]
unsafe fn load512<const T: u8>(row: *const u8, blk: usize) -> (__m512, __m512) {
    match T {
        T_F32 => {
            let p = row.add(blk * 128).cast::<f32>();
            (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)))
        }
        T_F16 => {
            let p = row.add(blk * 64);
            (
                _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())),
                _mm512_cvtph_ps(_mm256_loadu_si256(p.add(32).cast())),
            )
        }
        T_BF16 => {
            let p = row.add(blk * 64);
            let lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p.cast()));
            let hi = _mm512_cvtepu16_epi32(_mm256_loadu_si256(p.add(32).cast()));
            (
                _mm512_castsi512_ps(_mm512_slli_epi32(lo, 16)),
                _mm512_castsi512_ps(_mm512_slli_epi32(hi, 16)),
            )
        }
        _ => unreachable!("q8_0/q4_0 weights take the integer kernels (qint)"),
    }
}

/// 32 weights of block `blk` of `row` as 4 × 8 f32.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn load256<const T: u8>(row: *const u8, blk: usize) -> [__m256; 4] {
    match T {
        T_F32 => {
            let p = row.add(blk * 128).cast::<f32>();
            [
                _mm256_loadu_ps(p),
                _mm256_loadu_ps(p.add(8)),
                _mm256_loadu_ps(p.add(16)),
                _mm256_loadu_ps(p.add(24)),
            ]
        }
        T_F16 => {
            let p = row.add(blk * 64);
            let h = |o: usize| _mm256_cvtph_ps(_mm_loadu_si128(p.add(o).cast()));
            [h(0), h(16), h(32), h(48)]
        }
        T_BF16 => {
            let p = row.add(blk * 64);
            let h = |o: usize| {
                let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(o).cast()));
                _mm256_castsi256_ps(_mm256_slli_epi32(v, 16))
            };
            [h(0), h(16), h(32), h(48)]
        }
        _ => unreachable!("q8_0/q4_0 weights take the integer kernels (qint)"),
    }
}

/// Σ over the last `k % 32` elements (f32/f16/bf16 rows only), scalar.
#[inline(always)]
fn tail(t: QType, row: &[u8], xs: &[f32], k: usize, r: usize) -> f32 {
    let t0 = k / QK * QK;
    if t0 == k {
        return 0.0;
    }
    let mut w = [0f32; QK];
    dequantize_row(t, &row[t.row_bytes(t0).unwrap_or(0)..], &mut w[..k - t0]);
    let mut s = 0f32;
    for (j, &wv) in w[..k - t0].iter().enumerate() {
        s = wv.mul_add(xs[r * k + t0 + j], s);
    }
    s
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
#[inline]
unsafe fn dot512<const T: u8, const R: usize>(
    t: QType,
    row: &[u8],
    xs: &[f32],
    k: usize,
    out: &mut [f32],
) {
    debug_assert!(xs.len() >= R * k && out.len() >= R);
    let nblk = k / QK;
    let mut a0 = [_mm512_setzero_ps(); R];
    let mut a1 = [_mm512_setzero_ps(); R];
    let (rp, xp) = (row.as_ptr(), xs.as_ptr());
    for blk in 0..nblk {
        let (w0, w1) = load512::<T>(rp, blk);
        for r in 0..R {
            let x = xp.add(r * k + blk * QK);
            a0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x.add(16)), a1[r]);
        }
    }
    for r in 0..R {
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r])) + tail(t, row, xs, k, r);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn dot256<const T: u8, const R: usize>(
    t: QType,
    row: &[u8],
    xs: &[f32],
    k: usize,
    out: &mut [f32],
) {
    debug_assert!(xs.len() >= R * k && out.len() >= R);
    let nblk = k / QK;
    let mut a0 = [_mm256_setzero_ps(); R];
    let mut a1 = [_mm256_setzero_ps(); R];
    let (rp, xp) = (row.as_ptr(), xs.as_ptr());
    for blk in 0..nblk {
        let w = load256::<T>(rp, blk);
        for r in 0..R {
            let x = xp.add(r * k + blk * QK);
            a0[r] = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(x), a0[r]);
            a1[r] = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(x.add(8)), a1[r]);
            a0[r] = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(x.add(16)), a0[r]);
            a1[r] = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(x.add(24)), a1[r]);
        }
    }
    for r in 0..R {
        out[r] = hsum256(_mm256_add_ps(a0[r], a1[r])) + tail(t, row, xs, k, r);
    }
}

macro_rules! rows_fn {
    ($name:ident, $dot:ident, $feat:literal) => {
        #[target_feature(enable = $feat)]
        unsafe fn $name<const T: u8>(
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
                    match n - r0 {
                        1 => $dot::<T, 1>(w.qtype, row, xs, k, o),
                        2 => $dot::<T, 2>(w.qtype, row, xs, k, o),
                        3 => $dot::<T, 3>(w.qtype, row, xs, k, o),
                        _ => $dot::<T, 4>(w.qtype, row, xs, k, o),
                    }
                    r0 += 4;
                }
            }
        }
    };
}

rows_fn!(rows512, dot512, "avx512f,avx512bw,avx512vl,avx2,fma,f16c");
rows_fn!(rows256, dot256, "avx2,fma,f16c");

/// The AVX-512 streaming kernel: `out_t[(j − j0)·n + r] = W[j] · inp[r]` for the rows of out_t.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL, AVX2, FMA and F16C; `inp` holds n × w.cols values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn rows_avx512(w: &QMat, inp: &[f32], n: usize, j0: usize, out_t: &mut [f32]) {
    assert!(inp.len() >= n * w.cols);
    match w.qtype {
        QType::F32 => rows512::<T_F32>(w, inp, n, j0, out_t),
        QType::F16 => rows512::<T_F16>(w, inp, n, j0, out_t),
        QType::BF16 => rows512::<T_BF16>(w, inp, n, j0, out_t),
        QType::Q8_0 | QType::Q4_0 | QType::Q6_K => unreachable!("q8_0/q4_0/q6_K weights take qint"),
    }
}

/// The AVX2 streaming kernel, as [`rows_avx512`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `inp` holds n × w.cols values.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_avx2(w: &QMat, inp: &[f32], n: usize, j0: usize, out_t: &mut [f32]) {
    assert!(inp.len() >= n * w.cols);
    match w.qtype {
        QType::F32 => rows256::<T_F32>(w, inp, n, j0, out_t),
        QType::F16 => rows256::<T_F16>(w, inp, n, j0, out_t),
        QType::BF16 => rows256::<T_BF16>(w, inp, n, j0, out_t),
        QType::Q8_0 | QType::Q4_0 | QType::Q6_K => unreachable!("q8_0/q4_0/q6_K weights take qint"),
    }
}
