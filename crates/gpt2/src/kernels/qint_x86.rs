//! The x86 kernels of [`super::qint`]: q8_0 / q4_0 weights times 8-bit activations, one block of
//! 32 per 256-bit register.
//!
//! Per block and (weight row, activation row) pair:
//! - q8_0: both operands are signed, and `vpdpbusd` / `vpmaddubsw` want one unsigned, so the sign
//!   of x moves onto w: `|x| · (w · sign x)` (llama.cpp's trick). Weights of −128, which no
//!   quantizer writes, would wrap here; the portable kernel would not.
//! - q4_0: the nibbles are unsigned 0..15 already, so `q · x` is summed directly and the offset
//!   is removed exactly with the precomputed block sum: `Σ (q − 8) x = Σ q x − 8 Σ x`.
//!
//! The 8 int32 lanes become f32 and are accumulated as `acc += lanes · (d_w · d_x)`; the 8 lanes
//! are summed once, at the end of the row. Tiles are 4 weight rows × 1..=4 activation rows
//! (AVX2, with 16 registers: 1..=2).

#![allow(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::qint::{OutCols, QAct};
use super::quant::{QMat, QType, QK};

const Q8: u8 = 0;
const Q4: u8 = 1;

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// The 32 weights of a block as bytes in element order: q8_0 as signed, q4_0 as nibbles 0..15.
#[inline(always)]
unsafe fn load_w<const T: u8>(p: *const u8) -> __m256i {
    if T == Q8 {
        _mm256_loadu_si256(p.add(2).cast())
    } else {
        let q = _mm_loadu_si128(p.add(2).cast());
        let both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
        _mm256_and_si256(both, _mm256_set1_epi8(15))
    }
}

/// One tile: weight rows `rows` (W of them) × activation rows `r0 .. r0 + R`, written to
/// `out[w][r]`. `VNNI` selects `vpdpbusd` (AVX-512 VNNI + VL) over `vpmaddubsw` + `vpmaddwd`.
#[inline(always)]
unsafe fn tile<const T: u8, const VNNI: bool, const W: usize, const R: usize>(
    rows: [*const u8; W],
    a: &QAct,
    r0: usize,
    out: &mut [[f32; R]; W],
) {
    let nb = a.k / QK;
    let bb = if T == Q8 { 34 } else { 18 };
    let mut acc = [[_mm256_setzero_ps(); R]; W];
    let ones = _mm256_set1_epi16(1);
    let (qs, ds, sums) = (a.qs.as_ptr(), a.d.as_ptr(), a.sum.as_ptr());
    for b in 0..nb {
        let mut x = [_mm256_setzero_si256(); R];
        // q8_0: |x|; q4_0: −8·Σx in lane 0 (the accumulator's start)
        let mut ux = [_mm256_setzero_si256(); R];
        let mut neg = [0 as __mmask32; R];
        let mut dx = [_mm256_setzero_ps(); R];
        for r in 0..R {
            let i = (r0 + r) * nb + b;
            x[r] = _mm256_loadu_si256(qs.add(i * QK).cast());
            dx[r] = _mm256_set1_ps(*ds.add(i));
            if T == Q8 {
                if VNNI {
                    ux[r] = _mm256_abs_epi8(x[r]);
                    neg[r] = _mm256_movepi8_mask(x[r]);
                } else {
                    ux[r] = _mm256_sign_epi8(x[r], x[r]);
                }
            } else {
                ux[r] = _mm256_setr_epi32(-8 * *sums.add(i), 0, 0, 0, 0, 0, 0, 0);
            }
        }
        if W == 4 {
            // the next 4-row group follows this one in memory: fetch it while this one computes
            // (the hardware prefetcher does not follow 4 interleaved streams well)
            let next = rows[3].wrapping_add(nb * bb + b * 4 * bb);
            _mm_prefetch::<_MM_HINT_T0>(next.cast());
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(64).cast());
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(128).cast());
        }
        for w in 0..W {
            let p = rows[w].add(b * bb);
            let wq = load_w::<T>(p);
            // the f16 scale broadcast to 8 halves, then widened: d_w in every lane
            let dw = _mm256_cvtph_ps(_mm_set1_epi16(p.cast::<i16>().read_unaligned()));
            for r in 0..R {
                let dot = if T == Q8 {
                    if VNNI {
                        let sw = _mm256_mask_sub_epi8(wq, neg[r], _mm256_setzero_si256(), wq);
                        _mm256_dpbusd_epi32(_mm256_setzero_si256(), ux[r], sw)
                    } else {
                        let sw = _mm256_sign_epi8(wq, x[r]);
                        _mm256_madd_epi16(_mm256_maddubs_epi16(ux[r], sw), ones)
                    }
                } else if VNNI {
                    _mm256_dpbusd_epi32(ux[r], wq, x[r])
                } else {
                    let p16 = _mm256_maddubs_epi16(wq, x[r]);
                    _mm256_add_epi32(_mm256_madd_epi16(p16, ones), ux[r])
                };
                acc[w][r] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(dw, dx[r]), acc[w][r]);
            }
        }
    }
    for w in 0..W {
        for r in 0..R {
            out[w][r] = hsum(acc[w][r]);
        }
    }
}

/// Weight rows `out.j0..out.j1` × every activation row, into `out`.
#[inline(always)]
unsafe fn rows<const T: u8, const VNNI: bool, const MAXR: usize>(
    w: &QMat,
    a: &QAct,
    out: &OutCols,
) {
    let n = a.n;
    let rb = w.row_bytes();
    let mut j = out.j0;
    while j < out.j1 {
        if out.j1 - j >= 4 {
            let r0p = w.row(j).as_ptr();
            let p = [r0p, r0p.add(rb), r0p.add(2 * rb), r0p.add(3 * rb)];
            let mut r0 = 0;
            while r0 < n {
                let m = (n - r0).min(MAXR);
                macro_rules! go {
                    ($r:literal) => {{
                        let mut o = [[0f32; $r]; 4];
                        tile::<T, VNNI, 4, $r>(p, a, r0, &mut o);
                        for (i, oi) in o.iter().enumerate() {
                            for (r, &v) in oi.iter().enumerate() {
                                out.set(r0 + r, j + i, v);
                            }
                        }
                    }};
                }
                match m {
                    1 => go!(1),
                    2 => go!(2),
                    3 => go!(3),
                    _ => go!(4),
                }
                r0 += m;
            }
            j += 4;
        } else {
            let p = [w.row(j).as_ptr()];
            for r0 in 0..n {
                let mut o = [[0f32; 1]; 1];
                tile::<T, VNNI, 1, 1>(p, a, r0, &mut o);
                out.set(r0, j, o[0][0]);
            }
            j += 1;
        }
    }
}

/// The AVX-512 VNNI kernel (256-bit registers, `vpdpbusd`).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C; `w` is q8_0 or q4_0.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn rows_vnni(w: &QMat, a: &QAct, out: &OutCols) {
    assert!(w.cols == a.k && out.j1 <= w.rows && out.n == a.n);
    match w.qtype {
        QType::Q8_0 => rows::<Q8, true, 4>(w, a, out),
        _ => rows::<Q4, true, 4>(w, a, out),
    }
}

/// The AVX2 kernel (`vpmaddubsw` + `vpmaddwd`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; as [`rows_vnni`] otherwise.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_avx2(w: &QMat, a: &QAct, out: &OutCols) {
    assert!(w.cols == a.k && out.j1 <= w.rows && out.n == a.n);
    match w.qtype {
        QType::Q8_0 => rows::<Q8, false, 2>(w, a, out),
        _ => rows::<Q4, false, 2>(w, a, out),
    }
}
