//! The x86 kernels of [`super::qint`]: q8_0 / q4_0 / q6_K weights times 8-bit activations.
//!
//! Both kernels compute every output element the same way, so that a result does not depend on
//! which of them ran (decoding or prefill), the batch, the tiling or the thread count:
//!
//! ```text
//! acc = 0;  for each block b in order:  acc = fma(f32(dot_b), d_w[b] · d_x[b], acc)
//! ```
//!
//! where `dot_b` is the exact integer `Σ_{i<32} q_w · q_x` of the block (at most 32·255·127 in
//! magnitude, so int32 never overflows) and `fma` is one rounding. Lanes of a result register are
//! 8 consecutive weight rows.
//!
//! - **Streaming kernel** ([`rows_vnni`], [`rows_avx2`]; decoding and small batches): the weights
//!   are read in their GGUF layout, one block of one row per register, 8 rows at a time. The 8
//!   registers of partial sums are reduced across lanes by a `vphaddd` tree into one register of
//!   8 row totals. `vpdpbusd`/`vpmaddubsw` want one unsigned operand. q4_0: nibbles are
//!   unsigned already, and the offset of 8 is removed with the activation block sum:
//!   `Σ (q − 8) x = Σ q x − 8 Σ x`. q8_0 with VNNI: the same with w + 128 (one `vpxor`):
//!   `Σ w x = Σ (w + 128) x − 128 Σ x`. q8_0 with AVX2, whose `vpmaddubsw` would saturate
//!   (w + 128)·x pairs: the sign of w moves onto x, `|w| · (x · sign w)` (llama.cpp's trick;
//!   |−128| = 128 still fits an unsigned byte).
//! - **Packed kernel** (the same entry points with `packed`; prefill, N ≥
//!   [`super::qint::PACKED_MIN_N`]): a task repacks 16 weight rows at a time into a buffer that
//!   stays in L1/L2, as GEMM libraries pack panels: per block, 8 registers of "4 bytes of each of
//!   8 rows". One `vpdpbusd` (or `vpmaddubsw` + `vpmaddwd`) of such a register with 4 bytes of an
//!   activation row broadcast adds 4 products to each of 8 rows, so after the block's 8 registers
//!   each lane already holds its row's total: no horizontal sums, and every weight register serves
//!   several activation rows. With VNNI the weights are stored offset to unsigned (q8_0: w + 128;
//!   q4_0: the nibble) and the offset is removed exactly by starting the block's integer
//!   accumulator at `−offset · Σx`; with AVX2, whose `vpmaddubsw` saturates 16-bit pairs, q8_0
//!   keeps the sign trick and q4_0 the nibble with `−8 · Σx`.

#![allow(unsafe_op_in_unsafe_fn, clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::qint::{OutCols, QAct};
use super::quant::{QMat, QType, Q6_K_BYTES, QK, QK_K};

const Q8: u8 = 0;
const Q4: u8 = 1;
/// q6_K: streaming only, super-blocks of 256 ([`tile8_q6`]).
const Q6: u8 = 2;

/// Bytes of one block.
const fn block_bytes(t: u8) -> usize {
    if t == Q8 {
        34
    } else {
        18
    }
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

/// The f16 scales of one block of 8 rows (`p[i]` points at row i's block), as f32.
#[inline(always)]
unsafe fn scales8(p: &[*const u8; 8]) -> __m256 {
    let h = |i: usize| p[i].cast::<i16>().read_unaligned();
    _mm256_cvtph_ps(_mm_setr_epi16(
        h(0),
        h(1),
        h(2),
        h(3),
        h(4),
        h(5),
        h(6),
        h(7),
    ))
}

/// Lane i of the result = the sum of the 8 lanes of `v[i]` (exact, int32).
#[inline(always)]
unsafe fn reduce8(v: &[__m256i; 8]) -> __m256i {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    // [v0 v1 v2 v3 (lanes 0..4) | v0 v1 v2 v3 (lanes 4..8)], the same for v4..v7
    let q0 = _mm256_hadd_epi32(h01, h23);
    let q1 = _mm256_hadd_epi32(h45, h67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256(q0, q1, 0x20),
        _mm256_permute2x128_si256(q0, q1, 0x31),
    )
}

/// Streaming tile: 8 weight rows (`rows`, GGUF layout) × activation rows `r0 .. r0 + R`; lane i of
/// `out[r]` is the result for row i. `VNNI` selects `vpdpbusd` over `vpmaddubsw` + `vpmaddwd`.
#[inline(always)]
unsafe fn tile8<const T: u8, const VNNI: bool, const R: usize>(
    rows: &[*const u8; 8],
    a: &QAct,
    r0: usize,
    out: &mut [__m256; R],
) {
    let nb = a.k / QK;
    let bb = block_bytes(T);
    let mut acc = [_mm256_setzero_ps(); R];
    let ones = _mm256_set1_epi16(1);
    let zero = _mm256_setzero_si256();
    let (qs, ds, sums) = (a.qs.as_ptr(), a.d.as_ptr(), a.sum.as_ptr());
    // the next 8-row group follows this one in memory: fetch it while this one computes (the
    // hardware prefetcher does not follow 8 interleaved streams well)
    let next = rows[7].wrapping_add(nb * bb);
    for b in 0..nb {
        let lines = (8 * bb).div_ceil(64);
        for l in 0..lines {
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(b * 8 * bb + l * 64).cast());
        }
        let p: [*const u8; 8] = std::array::from_fn(|i| rows[i].add(b * bb));
        let dw = scales8(&p);
        let wq: [__m256i; 8] = std::array::from_fn(|i| load_w::<T>(p[i]));
        // q8_0 with VNNI: w + 128 as unsigned bytes (the offset is removed below with the
        // activation block sum, as q4_0's); AVX2, whose vpmaddubsw would saturate that: |w| as
        // unsigned bytes (|−128| = 128 fits), its sign moved onto x
        let aw: [__m256i; 8] = std::array::from_fn(|i| match (T, VNNI) {
            (Q8, true) => _mm256_xor_si256(wq[i], _mm256_set1_epi8(-128)),
            (Q8, false) => _mm256_abs_epi8(wq[i]),
            _ => wq[i],
        });
        for r in 0..R {
            let i = (r0 + r) * nb + b;
            let x = _mm256_loadu_si256(qs.add(i * QK).cast());
            let dots: [__m256i; 8] = if T == Q8 && !VNNI {
                std::array::from_fn(|j| {
                    let sx = _mm256_sign_epi8(x, wq[j]);
                    _mm256_madd_epi16(_mm256_maddubs_epi16(aw[j], sx), ones)
                })
            } else if VNNI {
                std::array::from_fn(|j| _mm256_dpbusd_epi32(zero, aw[j], x))
            } else {
                std::array::from_fn(|j| _mm256_madd_epi16(_mm256_maddubs_epi16(wq[j], x), ones))
            };
            let mut t = reduce8(&dots);
            match (T, VNNI) {
                (Q4, _) => t = _mm256_sub_epi32(t, _mm256_set1_epi32(8 * *sums.add(i))),
                (Q8, true) => t = _mm256_sub_epi32(t, _mm256_set1_epi32(128 * *sums.add(i))),
                _ => {}
            }
            let dx = _mm256_set1_ps(*ds.add(i));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(dw, dx), acc[r]);
        }
    }
    *out = acc;
}

/// q4_0 streaming tile for AVX2, as [`tile8`] with the same results: each register holds the
/// nibbles of two rows (row 2k in the low 128 bits, 2k + 1 in the high), so one shift and two
/// masks unpack 2 × 32 weights: `lo` = elements 0..16 of both rows, `hi` = 16..32. The activation
/// block is broadcast as its two halves, `vpmaddubsw(lo, x₀..₁₆) + vpmaddubsw(hi, x₁₆..₃₂)` is
/// exact in int16 (|pair| ≤ 2·15·127, so the sum of two ≤ 7,620), and one `vpmaddwd` per two rows
/// widens it. Fewer unpacks, widenings and horizontal adds than one row per register, where this
/// CPU class is bound by instruction throughput, not memory.
#[inline(always)]
unsafe fn tile8_q4_avx2<const R: usize>(
    rows: &[*const u8; 8],
    a: &QAct,
    r0: usize,
    out: &mut [__m256; R],
) {
    let nb = a.k / QK;
    let bb = block_bytes(Q4);
    let mut acc = [_mm256_setzero_ps(); R];
    let ones = _mm256_set1_epi16(1);
    let m4 = _mm256_set1_epi8(15);
    // hadd of hadds leaves the rows as [0 2 4 6 | 1 3 5 7]
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let (qs, ds, sums) = (a.qs.as_ptr(), a.d.as_ptr(), a.sum.as_ptr());
    let next = rows[7].wrapping_add(nb * bb);
    for b in 0..nb {
        let lines = (8 * bb).div_ceil(64);
        for l in 0..lines {
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(b * 8 * bb + l * 64).cast());
        }
        let p = [
            rows[0].add(b * bb),
            rows[1].add(b * bb),
            rows[2].add(b * bb),
            rows[3].add(b * bb),
            rows[4].add(b * bb),
            rows[5].add(b * bb),
            rows[6].add(b * bb),
            rows[7].add(b * bb),
        ];
        let dw = scales8(&p);
        let mut lo = [_mm256_setzero_si256(); 4];
        let mut hi = [_mm256_setzero_si256(); 4];
        for k in 0..4 {
            let v = _mm256_loadu2_m128i(p[2 * k + 1].add(2).cast(), p[2 * k].add(2).cast());
            lo[k] = _mm256_and_si256(v, m4);
            hi[k] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            let i = (r0 + r) * nb + b;
            let xp = qs.add(i * QK);
            let x0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(xp.cast()));
            let x1 = _mm256_broadcastsi128_si256(_mm_loadu_si128(xp.add(16).cast()));
            let mut d = [_mm256_setzero_si256(); 4];
            for k in 0..4 {
                let s16 = _mm256_add_epi16(
                    _mm256_maddubs_epi16(lo[k], x0),
                    _mm256_maddubs_epi16(hi[k], x1),
                );
                d[k] = _mm256_madd_epi16(s16, ones);
            }
            let h = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
            let t = _mm256_sub_epi32(
                _mm256_permutevar8x32_epi32(h, order),
                _mm256_set1_epi32(8 * *sums.add(i)),
            );
            let dx = _mm256_set1_ps(*ds.add(i));
            *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(dw, dx), *acc);
        }
    }
    *out = acc;
}

/// Stores lanes `0..valid` of `v` as columns `j .. j + valid` of output row `r`.
#[inline(always)]
unsafe fn store8(out: &OutCols, r: usize, j: usize, v: __m256, valid: usize) {
    if valid >= 8 {
        _mm256_storeu_ps(out.ptr_at(r, j, 8), v);
    } else {
        let mut t = [0f32; 8];
        _mm256_storeu_ps(t.as_mut_ptr(), v);
        for (c, &x) in t.iter().enumerate().take(valid) {
            out.set(r, j + c, x);
        }
    }
}

/// Streaming kernel: weight rows `out.j0..out.j1` × every activation row, into `out`, up to
/// `MAXR` activation rows per tile.
#[inline(always)]
unsafe fn rows<const T: u8, const VNNI: bool, const MAXR: usize>(
    w: &QMat,
    a: &QAct,
    out: &OutCols,
) {
    let n = a.n;
    let mut j = out.j0;
    while j < out.j1 {
        let valid = (out.j1 - j).min(8);
        // a short last group repeats its last row (computed, not stored)
        let p: [*const u8; 8] = std::array::from_fn(|i| w.row(j + i.min(valid - 1)).as_ptr());
        let mut r0 = 0;
        while r0 < n {
            let m = (n - r0).min(MAXR);
            macro_rules! go {
                ($r:literal) => {{
                    let mut o = [_mm256_setzero_ps(); $r];
                    if T == Q6 {
                        tile8_q6::<VNNI, $r>(&p, a, r0, &mut o);
                    } else if T == Q4 && !VNNI {
                        tile8_q4_avx2::<$r>(&p, a, r0, &mut o);
                    } else {
                        tile8::<T, VNNI, $r>(&p, a, r0, &mut o);
                    }
                    for (r, &v) in o.iter().enumerate() {
                        store8(out, r0 + r, j, v, valid);
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
        j += 8;
    }
}

/// Bytes of one packed block of a 16-row panel: 2 groups × 8 registers × 32 bytes.
const PANEL_BLOCK: usize = 512;

/// Transposes 8 registers of 8 dwords: dword c of result i... result c holds dword c of every input.
#[inline(always)]
unsafe fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
    let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
    let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
    let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
    let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
    let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    let u0 = _mm256_unpacklo_epi64(t0, t2);
    let u1 = _mm256_unpackhi_epi64(t0, t2);
    let u2 = _mm256_unpacklo_epi64(t1, t3);
    let u3 = _mm256_unpackhi_epi64(t1, t3);
    let u4 = _mm256_unpacklo_epi64(t4, t6);
    let u5 = _mm256_unpackhi_epi64(t4, t6);
    let u6 = _mm256_unpacklo_epi64(t5, t7);
    let u7 = _mm256_unpackhi_epi64(t5, t7);
    [
        _mm256_permute2x128_si256(u0, u4, 0x20),
        _mm256_permute2x128_si256(u1, u5, 0x20),
        _mm256_permute2x128_si256(u2, u6, 0x20),
        _mm256_permute2x128_si256(u3, u7, 0x20),
        _mm256_permute2x128_si256(u0, u4, 0x31),
        _mm256_permute2x128_si256(u1, u5, 0x31),
        _mm256_permute2x128_si256(u2, u6, 0x31),
        _mm256_permute2x128_si256(u3, u7, 0x31),
    ]
}

/// Packs 16 weight rows (`rows`, GGUF layout, `nb` blocks) for [`packed_tile`]: `u` gets, per
/// block, group g (rows 8g..8g+8) and register c, the bytes `[row][4 elements 4c..4c+4]` (q8_0
/// offset to unsigned when `FLIP`); `s` gets per block the 16 scales as f32.
#[inline(always)]
unsafe fn pack16<const T: u8, const FLIP: bool>(
    rows: &[*const u8; 16],
    nb: usize,
    u: &mut [u8],
    s: &mut [f32],
) {
    let bb = block_bytes(T);
    debug_assert!(u.len() >= nb * PANEL_BLOCK && s.len() >= nb * 16);
    let flip = _mm256_set1_epi8(-128);
    for b in 0..nb {
        for g in 0..2 {
            let p: [*const u8; 8] = std::array::from_fn(|i| rows[8 * g + i].add(b * bb));
            _mm256_storeu_ps(s.as_mut_ptr().add(b * 16 + 8 * g), scales8(&p));
            let regs = transpose8(std::array::from_fn(|i| {
                let v = load_w::<T>(p[i]);
                if T == Q8 && FLIP {
                    _mm256_xor_si256(v, flip)
                } else {
                    v
                }
            }));
            let dst = u.as_mut_ptr().add(b * PANEL_BLOCK + 256 * g);
            for (c, v) in regs.iter().enumerate() {
                _mm256_storeu_si256(dst.add(32 * c).cast(), *v);
            }
        }
    }
}

/// Packed tile: a 16-row panel (from [`pack16`]) × activation rows `r0 .. r0 + R`; lane i of
/// `out[g][r]` is the result for panel row 8g + i.
#[inline(always)]
unsafe fn packed_tile<const T: u8, const VNNI: bool, const R: usize>(
    u: &[u8],
    s: &[f32],
    off: i32,
    a: &QAct,
    r0: usize,
    out: &mut [[__m256; R]; 2],
) {
    let nb = a.k / QK;
    let mut acc = [[_mm256_setzero_ps(); R]; 2];
    let (qs, ds, sums) = (a.qs.as_ptr(), a.d.as_ptr(), a.sum.as_ptr());
    let (up, sp) = (u.as_ptr(), s.as_ptr());
    let ones = _mm256_set1_epi16(1);
    for b in 0..nb {
        let mut it = [[_mm256_setzero_si256(); R]; 2];
        let mut xp = [qs; R];
        for r in 0..R {
            let i = (r0 + r) * nb + b;
            let init = _mm256_set1_epi32(-off * *sums.add(i));
            it[0][r] = init;
            it[1][r] = init;
            xp[r] = qs.add(i * QK);
        }
        let ub = up.add(b * PANEL_BLOCK);
        for c in 0..8 {
            let w = [
                _mm256_loadu_si256(ub.add(32 * c).cast()),
                _mm256_loadu_si256(ub.add(256 + 32 * c).cast()),
            ];
            // AVX2 q8_0: |w| unsigned, the sign of w onto x
            let aw = if T == Q8 && !VNNI {
                [_mm256_abs_epi8(w[0]), _mm256_abs_epi8(w[1])]
            } else {
                w
            };
            for r in 0..R {
                let xb = _mm256_set1_epi32(xp[r].add(4 * c).cast::<i32>().read_unaligned());
                for g in 0..2 {
                    it[g][r] = if VNNI {
                        _mm256_dpbusd_epi32(it[g][r], w[g], xb)
                    } else {
                        let xs = if T == Q8 {
                            _mm256_sign_epi8(xb, w[g])
                        } else {
                            xb
                        };
                        let p16 = _mm256_maddubs_epi16(aw[g], xs);
                        _mm256_add_epi32(it[g][r], _mm256_madd_epi16(p16, ones))
                    };
                }
            }
        }
        let dw0 = _mm256_loadu_ps(sp.add(b * 16));
        let dw1 = _mm256_loadu_ps(sp.add(b * 16 + 8));
        for r in 0..R {
            let dx = _mm256_set1_ps(*ds.add((r0 + r) * nb + b));
            acc[0][r] = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(it[0][r]),
                _mm256_mul_ps(dw0, dx),
                acc[0][r],
            );
            acc[1][r] = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(it[1][r]),
                _mm256_mul_ps(dw1, dx),
                acc[1][r],
            );
        }
    }
    *out = acc;
}

#[inline(always)]
unsafe fn rows_packed<const T: u8, const VNNI: bool, const MAXR: usize>(
    w: &QMat,
    a: &QAct,
    out: &OutCols,
) {
    let (n, nb) = (a.n, a.k / QK);
    // the offset the packed weights carry (AVX2 q8_0 keeps them signed)
    let off = match (T, VNNI) {
        (Q8, true) => 128,
        (Q8, false) => 0,
        _ => 8,
    };
    let mut u = vec![0u8; nb * PANEL_BLOCK];
    let mut s = vec![0f32; nb * 16];
    let mut j = out.j0;
    while j < out.j1 {
        let valid = (out.j1 - j).min(16);
        let p: [*const u8; 16] = std::array::from_fn(|i| w.row(j + i.min(valid - 1)).as_ptr());
        pack16::<T, VNNI>(&p, nb, &mut u, &mut s);
        let mut r0 = 0;
        while r0 < n {
            let m = (n - r0).min(MAXR);
            macro_rules! go {
                ($r:literal) => {{
                    let mut o = [[_mm256_setzero_ps(); $r]; 2];
                    packed_tile::<T, VNNI, $r>(&u, &s, off, a, r0, &mut o);
                    for r in 0..$r {
                        store8(out, r0 + r, j, o[0][r], valid);
                        if valid > 8 {
                            store8(out, r0 + r, j + 8, o[1][r], valid - 8);
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
        j += 16;
    }
}

/// The f16 at byte `off` of each of 8 blocks (`p[i]` points at row i's block), as f32.
#[inline(always)]
unsafe fn scales8_at(p: &[*const u8; 8], off: usize) -> __m256 {
    let mut q = *p;
    for x in &mut q {
        *x = x.add(off);
    }
    scales8(&q)
}

/// q6_K's 16 int8 sub-scales of 8 rows' super-blocks (`p[i]` points at row i's scales),
/// transposed: lane i of `out[g]` is row i's scale g, as int32 (unpacks of bytes, 16-bit and
/// 32-bit units, then sign extension).
#[inline(always)]
unsafe fn q6_scales_t(p: &[*const u8; 8]) -> [__m256i; 16] {
    let mut r = [_mm_setzero_si128(); 8];
    for i in 0..8 {
        r[i] = _mm_loadu_si128(p[i].cast());
    }
    // pairs of rows: [r0g0 r1g0 r0g1 r1g1 ...], groups 0..8 (lo) and 8..16 (hi)
    let mut u8s = [_mm_setzero_si128(); 8];
    for m in 0..4 {
        u8s[2 * m] = _mm_unpacklo_epi8(r[2 * m], r[2 * m + 1]);
        u8s[2 * m + 1] = _mm_unpackhi_epi8(r[2 * m], r[2 * m + 1]);
    }
    // quads of rows: 4 groups of 4 bytes; b[h][c] = rows 4h..4h+4, groups 4c..4c+4
    let mut q = [[_mm_setzero_si128(); 4]; 2];
    for h in 0..2 {
        let (x, y) = (&u8s[4 * h..4 * h + 2], &u8s[4 * h + 2..4 * h + 4]);
        q[h][0] = _mm_unpacklo_epi16(x[0], y[0]);
        q[h][1] = _mm_unpackhi_epi16(x[0], y[0]);
        q[h][2] = _mm_unpacklo_epi16(x[1], y[1]);
        q[h][3] = _mm_unpackhi_epi16(x[1], y[1]);
    }
    let mut out = [_mm256_setzero_si256(); 16];
    for c in 0..4 {
        // all 8 rows of groups 4c, 4c + 1 (lo) and 4c + 2, 4c + 3 (hi), 8 bytes each
        for (half, e) in [
            _mm_unpacklo_epi32(q[0][c], q[1][c]),
            _mm_unpackhi_epi32(q[0][c], q[1][c]),
        ]
        .into_iter()
        .enumerate()
        {
            out[4 * c + 2 * half] = _mm256_cvtepi8_epi32(e);
            out[4 * c + 2 * half + 1] = _mm256_cvtepi8_epi32(_mm_srli_si128(e, 8));
        }
    }
    out
}

/// Lane i of the results = the sums of lanes 0..4 (first) and 4..8 (second) of `v[i]`, exact.
#[inline(always)]
unsafe fn reduce8_halves(v: &[__m256i; 8]) -> (__m256i, __m256i) {
    let h01 = _mm256_hadd_epi32(v[0], v[1]);
    let h23 = _mm256_hadd_epi32(v[2], v[3]);
    let h45 = _mm256_hadd_epi32(v[4], v[5]);
    let h67 = _mm256_hadd_epi32(v[6], v[7]);
    // 128-bit half 0: lanes 0..4 of v0..v3; half 1: their lanes 4..8 (and v4..v7 in q1)
    let q0 = _mm256_hadd_epi32(h01, h23);
    let q1 = _mm256_hadd_epi32(h45, h67);
    (
        _mm256_permute2x128_si256(q0, q1, 0x20),
        _mm256_permute2x128_si256(q0, q1, 0x31),
    )
}

/// The 32 six-bit levels (0..64) of sub-block `k` (elements 32k..32k + 32) of the q6_K
/// super-block at `p`, as bytes in element order (layout: [`super::quant`]).
#[inline(always)]
unsafe fn q6_levels(p: *const u8, k: usize) -> __m256i {
    let (h, kk) = (k / 4, k % 4);
    let ql = _mm256_loadu_si256(p.add(64 * h + 32 * (kk % 2)).cast());
    let m4 = _mm256_set1_epi8(15);
    let lo = if kk < 2 {
        _mm256_and_si256(ql, m4)
    } else {
        _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4)
    };
    // bits 2kk..2kk+2 of qh to bits 4..6 (a 16-bit shift; the mask drops what crossed bytes)
    let qh = _mm256_loadu_si256(p.add(128 + 32 * h).cast());
    let hi = match kk {
        0 => _mm256_slli_epi16(qh, 4),
        1 => _mm256_slli_epi16(qh, 2),
        2 => qh,
        _ => _mm256_srli_epi16(qh, 2),
    };
    _mm256_or_si256(lo, _mm256_and_si256(hi, _mm256_set1_epi8(0x30)))
}

/// q6_K streaming tile: 8 weight rows × activation rows `r0 .. r0 + R`, as [`tile8`]. Per block
/// of 32 (a q6_K sub-block, two groups of 16 with their own scales) the exact integer
/// `Σ_g sc_g · Σ_{i∈g} (q_i − 32) · x_i`: the offset-free group sums per 4 lanes (VNNI:
/// `vpdpbusd` of the levels (≤ 63) with x, started at −32·Σx; AVX2: `vpmaddubsw` of the levels
/// less `vpmaddubsw` of 32, both exact int16 pairs, widened by `vpmaddwd`), summed per group
/// across lanes by [`reduce8_halves`] and multiplied by the rows' two scales; then the same one
/// fused multiply-add per block as every other type.
#[inline(always)]
unsafe fn tile8_q6<const VNNI: bool, const R: usize>(
    rows: &[*const u8; 8],
    a: &QAct,
    r0: usize,
    out: &mut [__m256; R],
) {
    let nb = a.k / QK;
    let ns = a.k / QK_K;
    let mut acc = [_mm256_setzero_ps(); R];
    let (qs, ds) = (a.qs.as_ptr(), a.d.as_ptr());
    let c32 = _mm256_set1_epi8(32);
    let ones = _mm256_set1_epi16(1);
    let zero = _mm256_setzero_si256();
    let next = rows[7].wrapping_add(ns * Q6_K_BYTES);
    for s in 0..ns {
        let lines = (8 * Q6_K_BYTES).div_ceil(64);
        for l in 0..lines {
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add(s * 8 * Q6_K_BYTES + l * 64).cast());
        }
        // plain loops, not array::from_fn: a closure that is not inlined loses the target
        // features, and every intrinsic in it becomes a call
        let mut p = [rows[0]; 8];
        let mut ps = [rows[0]; 8];
        for i in 0..8 {
            p[i] = rows[i].add(s * Q6_K_BYTES);
            ps[i] = p[i].add(192);
        }
        let dw = scales8_at(&p, 208);
        let sc = q6_scales_t(&ps);
        for k in 0..8 {
            let mut q = [zero; 8];
            for i in 0..8 {
                q[i] = q6_levels(p[i], k);
            }
            for r in 0..R {
                let i = (r0 + r) * nb + 8 * s + k;
                let x = _mm256_loadu_si256(qs.add(i * QK).cast());
                let mut dots = [zero; 8];
                if VNNI {
                    let neg = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, c32, x));
                    for j in 0..8 {
                        dots[j] = _mm256_dpbusd_epi32(neg, q[j], x);
                    }
                } else {
                    let off = _mm256_maddubs_epi16(c32, x);
                    for j in 0..8 {
                        let t = _mm256_sub_epi16(_mm256_maddubs_epi16(q[j], x), off);
                        dots[j] = _mm256_madd_epi16(t, ones);
                    }
                }
                let (g0, g1) = reduce8_halves(&dots);
                let t = _mm256_add_epi32(
                    _mm256_mullo_epi32(g0, sc[2 * k]),
                    _mm256_mullo_epi32(g1, sc[2 * k + 1]),
                );
                let dx = _mm256_set1_ps(*ds.add(i));
                acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), _mm256_mul_ps(dw, dx), acc[r]);
            }
        }
    }
    *out = acc;
}

/// The AVX-512 VNNI kernels (256-bit registers, `vpdpbusd`): packed when `packed` (prefill),
/// streaming otherwise; the same results either way, bit for bit.
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C. Panics unless `w` is q8_0,
/// q4_0 or q6_K and the shapes agree.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn rows_vnni(w: &QMat, a: &QAct, out: &OutCols, packed: bool) {
    assert!(w.cols == a.k && out.j1 <= w.rows && out.n == a.n);
    match (w.qtype, packed) {
        (QType::Q8_0, true) => rows_packed::<Q8, true, 4>(w, a, out),
        (QType::Q4_0, true) => rows_packed::<Q4, true, 4>(w, a, out),
        (QType::Q8_0, false) => rows::<Q8, true, 4>(w, a, out),
        (QType::Q4_0, false) => rows::<Q4, true, 4>(w, a, out),
        (QType::Q6_K, _) => rows::<Q6, true, 2>(w, a, out),
        (t, _) => panic!("qint: {} weights", t.name()),
    }
}

/// The AVX2 kernels (`vpmaddubsw` + `vpmaddwd`), as [`rows_vnni`].
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; as [`rows_vnni`] otherwise.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn rows_avx2(w: &QMat, a: &QAct, out: &OutCols, packed: bool) {
    assert!(w.cols == a.k && out.j1 <= w.rows && out.n == a.n);
    match (w.qtype, packed) {
        (QType::Q8_0, true) => rows_packed::<Q8, false, 2>(w, a, out),
        (QType::Q4_0, true) => rows_packed::<Q4, false, 2>(w, a, out),
        (QType::Q8_0, false) => rows::<Q8, false, 1>(w, a, out),
        (QType::Q4_0, false) => rows::<Q4, false, 1>(w, a, out),
        (QType::Q6_K, _) => rows::<Q6, false, 4>(w, a, out),
        (t, _) => panic!("qint: {} weights", t.name()),
    }
}
