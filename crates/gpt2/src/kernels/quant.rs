//! Weight storage types and their block layouts: f32, f16, bf16, q8_0, q4_0 (GGUF / ggml).
//!
//! A weight matrix is stored row by row, `(rows, cols)` = (outputs, inputs), each row split into
//! blocks along the input axis, exactly as llama.cpp's GGUF files hold it (`ne[0]` = cols). The
//! layouts and the rounding of the reference quantizers are ggml's (`ggml-common.h`,
//! `quantize_row_q8_0_ref`, `quantize_row_q4_0_ref` in `ggml-quants.c`), mirrored in numpy by the
//! `gguf` Python package's `quants` module; `tests/fixtures/quant/blocks.json` checks them byte for
//! byte.
//!
//! | type | block | bytes/block | bits/weight | one block |
//! | --- | --- | --- | --- | --- |
//! | f32  | 1  | 4  | 32  | IEEE binary32 |
//! | f16  | 1  | 2  | 16  | IEEE binary16 (round to nearest even) |
//! | bf16 | 1  | 2  | 16  | upper half of binary32 (round to nearest even) |
//! | q8_0 | 32 | 34 | 8.5 | `d: f16`, `qs: [i8; 32]`; w = d·q |
//! | q4_0 | 32 | 18 | 4.5 | `d: f16`, `qs: [u8; 16]`; w_j = d·((qs_j & 15) − 8), w_{j+16} = d·((qs_j >> 4) − 8) |
//! | q6_K | 256 | 210 | 6.5625 | `ql: [u8; 128]`, `qh: [u8; 64]`, `scales: [i8; 16]`, `d: f16`; w = d·sc[e/16]·(q − 32), q 6 bits |
//!
//! q6_K's 6-bit value q of element e of a super-block: with half h = e / 128, sub-block
//! k = (e % 128) / 32 and l = e % 32, the low 4 bits are nibble (k / 2) of `ql[64h + 32(k % 2) + l]`
//! and the high 2 bits are bits 2k..2k+2 of `qh[32h + l]` (`dequantize_row_q6_K`).
//!
//! q6_K is not a conversion target of its own ([`QType::ALL`]): it is the type llama-quantize
//! gives the tied `token_embd`/lm_head of q4_0 files, computed natively when a file holds it, and
//! written by our q4_0 conversion for the same tensor ([`crate::weights::policy`]).
//!
//! Non-goals: quantizing with an importance matrix; the other K-quants (they are dequantized at
//! load, see [`crate::kernels::kquants`]).

use half::{bf16, f16};

/// Elements per q8_0 / q4_0 block (ggml `QK8_0`, `QK4_0`).
pub const QK: usize = 32;

/// Elements per K-quant super-block (ggml `QK_K`).
pub const QK_K: usize = 256;

/// Bytes of one q6_K super-block: `ql` 128, `qh` 64, `scales` 16, `d` 2.
pub const Q6_K_BYTES: usize = 210;

/// A storage type the kernels multiply natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// bfloat16.
    BF16,
    /// 8-bit blocks of 32 with an f16 scale.
    Q8_0,
    /// 4-bit blocks of 32 with an f16 scale, offset 8.
    Q4_0,
    /// 6-bit super-blocks of 256: an f16 scale, 16 int8 sub-scales, offset 32.
    #[allow(non_camel_case_types)]
    Q6_K,
}

impl QType {
    /// Every type a model can be converted to (`--dtype`, `gpt2 quantize --type`), in the order
    /// reports list them. [`QType::Q6_K`] is computed too but is not a target of its own.
    pub const ALL: [QType; 5] = [
        QType::F32,
        QType::F16,
        QType::BF16,
        QType::Q8_0,
        QType::Q4_0,
    ];

    /// ggml's name: `f32`, `f16`, `bf16`, `q8_0`, `q4_0`, `q6_K`.
    pub fn name(self) -> &'static str {
        match self {
            QType::F32 => "f32",
            QType::F16 => "f16",
            QType::BF16 => "bf16",
            QType::Q8_0 => "q8_0",
            QType::Q4_0 => "q4_0",
            QType::Q6_K => "q6_K",
        }
    }

    /// Parses the [`QType::name`] of a conversion target ([`QType::ALL`]), case-insensitive.
    pub fn from_name(s: &str) -> Option<QType> {
        QType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Elements per block.
    pub fn block_size(self) -> usize {
        match self {
            QType::F32 | QType::F16 | QType::BF16 => 1,
            QType::Q8_0 | QType::Q4_0 => QK,
            QType::Q6_K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            QType::F32 => 4,
            QType::F16 | QType::BF16 => 2,
            QType::Q8_0 => 2 + QK,
            QType::Q4_0 => 2 + QK / 2,
            QType::Q6_K => Q6_K_BYTES,
        }
    }

    /// Bytes of a row of `cols` elements, `None` when `cols` is not a multiple of the block size.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        cols.is_multiple_of(self.block_size())
            .then(|| cols / self.block_size() * self.block_bytes())
    }

    /// Storage bits per weight (8.5 for q8_0, 4.5 for q4_0).
    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / self.block_size() as f64
    }
}

/// ggml's fp32 → fp16: round to nearest even (`GGML_FP32_TO_FP16`, F16C `vcvtps2ph` mode 0).
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// fp16 → fp32, exact.
#[inline]
pub fn f16_bits_to_f32(b: u16) -> f32 {
    f16::from_bits(b).to_f32()
}

/// ggml's fp32 → bf16 (`ggml_compute_fp32_to_bf16`): round to nearest even; NaN stays NaN (quiet).
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        return ((u >> 16) | 64) as u16;
    }
    ((u + (0x7fff + ((u >> 16) & 1))) >> 16) as u16
}

/// bf16 → fp32, exact.
#[inline]
pub fn bf16_bits_to_f32(b: u16) -> f32 {
    bf16::from_bits(b).to_f32()
}

/// Quantizes one block of 32 to q8_0 (`quantize_row_q8_0_ref`): d = max|x| / 127,
/// q = round(x / d) with halves away from zero; d stored as f16.
pub fn quantize_block_q8_0(x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(x.len(), QK);
    debug_assert_eq!(out.len(), 2 + QK);
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f32_to_f16_bits(d).to_le_bytes());
    for (q, &v) in out[2..].iter_mut().zip(x) {
        // f32::round is C's roundf: halves away from zero
        *q = ((v * id).round() as i8) as u8;
    }
}

/// Quantizes one block of 32 to q4_0 (`quantize_row_q4_0_ref`): the signed value of largest
/// magnitude m (the first one on ties) gives d = m / −8; q = min(15, trunc(x/d + 8.5)); d as f16.
pub fn quantize_block_q4_0(x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(x.len(), QK);
    debug_assert_eq!(out.len(), 2 + QK / 2);
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out[..2].copy_from_slice(&f32_to_f16_bits(d).to_le_bytes());
    let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    for j in 0..QK / 2 {
        out[2 + j] = q(x[j]) | (q(x[j + QK / 2]) << 4);
    }
}

/// ggml's `nearest_int`: x rounded half to even by adding 1.5·2²³ and reading the mantissa
/// (exact for |x| ≤ 2²²; larger values give what ggml's gives, without undefined behaviour).
#[inline]
fn nearest_int(x: f32) -> i32 {
    let t = x + 12_582_912.0;
    (t.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below it quantizes to zero.
const GROUP_MAX_EPS: f32 = 1e-15;

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights: the scale of a group
/// that minimises Σ x²·(x − scale·l)² over 19 candidate rounding scales, levels `l + nmax` in
/// `0..2·nmax` written to `levels`. Operation for operation as ggml's C (same f32 products, no
/// fused multiply-add), so that the bytes match `llama-quantize`'s.
fn make_qx_quants(x: &[f32], nmax: i32, levels: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let l = level(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let mut iscale = -(nmax as f32) / max;
    for (o, &v) in levels.iter_mut().zip(x) {
        *o = (level(iscale, v) + nmax) as i8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&i| i != 0) {
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (o, &v) in levels.iter_mut().zip(x) {
                *o = (level(iscale, v) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Quantizes one super-block of 256 to q6_K (`quantize_row_q6_K_ref`): each group of 16 gets
/// its best scale (`make_qx_quants`, 6-bit levels), the group scale of largest magnitude m
/// gives d = m / −128 (f16), the sub-scales are `min(127, nearest(−128 · scale / m))`, and every
/// element is rounded again against its final scale `d · sc`, to −32..=31 stored offset by 32.
/// `x`: [`QK_K`] values; `out`: [`Q6_K_BYTES`] bytes (other lengths are a caller bug: checked in
/// debug builds, a panic or a partial block otherwise).
pub fn quantize_block_q6_k(x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(x.len(), QK_K);
    debug_assert_eq!(out.len(), Q6_K_BYTES);
    let mut levels = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
    for (g, (xg, lg)) in x
        .chunks_exact(16)
        .zip(levels.chunks_exact_mut(16))
        .enumerate()
    {
        let s = make_qx_quants(xg, 32, lg);
        scales[g] = s;
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    out.fill(0);
    if max_abs_scale < GROUP_MAX_EPS {
        return;
    }
    let iscale = -128.0 / max_scale;
    let d = f32_to_f16_bits(1.0 / iscale);
    out[208..210].copy_from_slice(&d.to_le_bytes());
    let d = f16_bits_to_f32(d);
    for (g, &s) in scales.iter().enumerate() {
        let sc = nearest_int(iscale * s).min(127) as i8;
        out[192 + g] = sc as u8;
        let dg = d * sc as f32;
        if dg == 0.0 {
            continue; // the group keeps make_qx_quants' levels, as ggml's does
        }
        for (o, &v) in levels[16 * g..16 * g + 16].iter_mut().zip(&x[16 * g..]) {
            *o = (nearest_int(v / dg).clamp(-32, 31) + 32) as i8;
        }
    }
    for h in 0..2 {
        let l6 = |e: usize| levels[128 * h + e] as u8;
        for l in 0..32 {
            out[64 * h + l] = (l6(l) & 15) | ((l6(l + 64) & 15) << 4);
            out[64 * h + 32 + l] = (l6(l + 32) & 15) | ((l6(l + 96) & 15) << 4);
            out[128 + 32 * h + l] = (l6(l) >> 4)
                | ((l6(l + 32) >> 4) << 2)
                | ((l6(l + 64) >> 4) << 4)
                | ((l6(l + 96) >> 4) << 6);
        }
    }
}

/// Decodes one q6_K super-block (`dequantize_row_q6_K`, the same f32 products): `b`
/// [`Q6_K_BYTES`] bytes into `y`, [`QK_K`] values (lengths as [`quantize_block_q6_k`]).
pub fn dequantize_block_q6_k(b: &[u8], y: &mut [f32]) {
    debug_assert_eq!(b.len(), Q6_K_BYTES);
    debug_assert_eq!(y.len(), QK_K);
    let d = f16_bits_to_f32(u16::from_le_bytes([b[208], b[209]]));
    let mut lv = [0u8; QK_K];
    q6_k_levels(b, &mut lv);
    for (e, (o, &q)) in y.iter_mut().zip(&lv).enumerate() {
        *o = d * (b[192 + e / 16] as i8) as f32 * (q as i32 - 32) as f32;
    }
}

/// The stored 6-bit levels (0..64) of the 256 elements of a q6_K super-block, in element order:
/// element 128h + 32k + l takes nibble k / 2 of `ql[64h + 32(k % 2) + l]` and bits 2k..2k + 2 of
/// `qh[32h + l]`. Panics if `b` is shorter than the 192 bytes of `ql` and `qh`.
#[inline]
pub fn q6_k_levels(b: &[u8], out: &mut [u8; QK_K]) {
    for h in 0..2 {
        let (ql, qh) = (&b[64 * h..64 * h + 64], &b[128 + 32 * h..160 + 32 * h]);
        for k in 0..4 {
            let lo = &ql[32 * (k % 2)..32 * (k % 2) + 32];
            let o = &mut out[128 * h + 32 * k..128 * h + 32 * k + 32];
            for l in 0..32 {
                o[l] = ((lo[l] >> (4 * (k / 2))) & 15) | (((qh[l] >> (2 * k)) & 3) << 4);
            }
        }
    }
}

/// Encodes a row of `x.len()` values as `t` into `out` (exactly [`QType::row_bytes`] long).
/// Panics (debug) if the row length is not a multiple of the block size; callers check first.
pub fn quantize_row(t: QType, x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(Some(out.len()), t.row_bytes(x.len()));
    match t {
        QType::F32 => {
            for (o, v) in out.chunks_exact_mut(4).zip(x) {
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        QType::F16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&f32_to_f16_bits(v).to_le_bytes());
            }
        }
        QType::BF16 => {
            for (o, &v) in out.chunks_exact_mut(2).zip(x) {
                o.copy_from_slice(&f32_to_bf16_bits(v).to_le_bytes());
            }
        }
        QType::Q8_0 => {
            for (o, b) in out
                .chunks_exact_mut(t.block_bytes())
                .zip(x.chunks_exact(QK))
            {
                quantize_block_q8_0(b, o);
            }
        }
        QType::Q4_0 => {
            for (o, b) in out
                .chunks_exact_mut(t.block_bytes())
                .zip(x.chunks_exact(QK))
            {
                quantize_block_q4_0(b, o);
            }
        }
        QType::Q6_K => {
            for (o, b) in out.chunks_exact_mut(Q6_K_BYTES).zip(x.chunks_exact(QK_K)) {
                quantize_block_q6_k(b, o);
            }
        }
    }
}

/// Decodes a row stored as `t` into `out` (the reference: plain scalar code, exact as ggml's
/// `dequantize_row_*`). The fast kernels in [`crate::kernels::qmatmul`] compute the same values.
pub fn dequantize_row(t: QType, bytes: &[u8], out: &mut [f32]) {
    debug_assert_eq!(Some(bytes.len()), t.row_bytes(out.len()));
    match t {
        QType::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        QType::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        QType::BF16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        QType::Q8_0 => {
            for (o, b) in out
                .chunks_exact_mut(QK)
                .zip(bytes.chunks_exact(t.block_bytes()))
            {
                let d = f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
                for (w, &q) in o.iter_mut().zip(&b[2..]) {
                    *w = (q as i8) as f32 * d;
                }
            }
        }
        QType::Q4_0 => {
            for (o, b) in out
                .chunks_exact_mut(QK)
                .zip(bytes.chunks_exact(t.block_bytes()))
            {
                let d = f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
                for j in 0..QK / 2 {
                    o[j] = ((b[2 + j] & 15) as i32 - 8) as f32 * d;
                    o[j + QK / 2] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        QType::Q6_K => {
            for (o, b) in out
                .chunks_exact_mut(QK_K)
                .zip(bytes.chunks_exact(Q6_K_BYTES))
            {
                dequantize_block_q6_k(b, o);
            }
        }
    }
}

/// A weight matrix in its storage type: `rows` rows of `cols` elements, row-major, each row
/// [`QType::row_bytes`] long. For a layer `y = x·Wᵀ + b`, rows = outputs and cols = inputs.
#[derive(Debug, Clone, Copy)]
pub struct QMat<'a> {
    /// Storage type.
    pub qtype: QType,
    /// Rows (outputs).
    pub rows: usize,
    /// Elements per row (inputs).
    pub cols: usize,
    /// rows × row_bytes(cols) bytes.
    pub data: &'a [u8],
}

impl<'a> QMat<'a> {
    /// Wraps `data`; `None` if its length does not match `(rows, cols)` in `qtype`.
    pub fn new(qtype: QType, rows: usize, cols: usize, data: &'a [u8]) -> Option<Self> {
        let rb = qtype.row_bytes(cols)?;
        (rows.checked_mul(rb)? == data.len()).then_some(Self {
            qtype,
            rows,
            cols,
            data,
        })
    }

    /// An f32 matrix viewed as bytes (no copy).
    pub fn from_f32(rows: usize, cols: usize, data: &'a [f32]) -> Self {
        assert_eq!(data.len(), rows * cols, "QMat::from_f32: shape");
        // SAFETY: any f32 bit pattern is valid bytes; the byte slice covers exactly `data`.
        let bytes =
            unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), data.len() * 4) };
        Self {
            qtype: QType::F32,
            rows,
            cols,
            data: bytes,
        }
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.data.len() / self.rows.max(1)
    }

    /// The bytes of row `r`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }

    /// Row `r` decoded into `out` (cols).
    pub fn dequantize_row_into(&self, r: usize, out: &mut [f32]) {
        dequantize_row(self.qtype, self.row(r), out);
    }

    /// The whole matrix decoded: (rows, cols) f32.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for (r, o) in out.chunks_exact_mut(self.cols.max(1)).enumerate() {
            self.dequantize_row_into(r, o);
        }
        out
    }
}

/// Quantizes a (rows, cols) f32 matrix as `t`: rows × row_bytes bytes. `None` if cols is not a
/// multiple of the block size.
pub fn quantize_matrix(t: QType, x: &[f32], rows: usize, cols: usize) -> Option<Vec<u8>> {
    use rayon::prelude::*;
    let rb = t.row_bytes(cols)?;
    debug_assert_eq!(x.len(), rows * cols);
    let mut out = vec![0u8; rows * rb];
    if rb > 0 {
        out.par_chunks_mut(rb)
            .zip(x.par_chunks(cols.max(1)))
            .for_each(|(o, row)| quantize_row(t, row, o));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_hand_worked_block() {
        // max |x| = 127 → d = 1; 0.5 rounds away from zero to 1, −2.5 to −3
        let mut x = [0f32; QK];
        x[0] = 127.0;
        x[1] = 0.5;
        x[2] = -2.5;
        x[3] = -127.0;
        let mut b = [0u8; 34];
        quantize_block_q8_0(&x, &mut b);
        let d = f16_bits_to_f32(u16::from_le_bytes([b[0], b[1]]));
        assert_eq!(d, 1.0);
        assert_eq!(b[2] as i8, 127);
        assert_eq!(b[3] as i8, 1);
        assert_eq!(b[4] as i8, -3);
        assert_eq!(b[5] as i8, -127);
        assert_eq!(b[6], 0);
    }

    #[test]
    fn q4_0_uses_the_signed_extreme() {
        // the largest magnitude is −4 → d = 0.5; x = −4 → q = trunc(−8 + 8.5) = 0 → w = −4;
        // x = +3 → q = trunc(6 + 8.5) = 14 → w = 3; x = 4 would clamp to 15 → 3.5
        let mut x = [0f32; QK];
        x[0] = -4.0;
        x[1] = 3.0;
        x[17] = 1.0;
        let mut b = [0u8; 18];
        quantize_block_q4_0(&x, &mut b);
        let mut w = [0f32; QK];
        dequantize_row(QType::Q4_0, &b, &mut w);
        assert_eq!(w[0], -4.0);
        assert_eq!(w[1], 3.0);
        assert_eq!(w[17], 1.0);
        assert_eq!(w[5], 0.0);
        assert_eq!(b[2] & 15, 0);
    }

    #[test]
    fn zero_block_quantizes_to_zero_scale() {
        let x = [0f32; QK];
        for t in [QType::Q8_0, QType::Q4_0] {
            let mut b = vec![0xffu8; t.block_bytes()];
            quantize_row(t, &x, &mut b);
            let mut w = [1f32; QK];
            dequantize_row(t, &b, &mut w);
            assert!(w.iter().all(|&v| v == 0.0), "{}", t.name());
        }
    }

    #[test]
    fn row_bytes_rejects_partial_blocks() {
        assert_eq!(QType::Q8_0.row_bytes(64), Some(68));
        assert_eq!(QType::Q4_0.row_bytes(768), Some(432));
        assert_eq!(QType::Q4_0.row_bytes(48), None);
        assert_eq!(QType::F16.row_bytes(48), Some(96));
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        // 1 + 2^-8 is halfway between two bf16 values: ties to the even one (1.0)
        assert_eq!(f32_to_bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert!(bf16_bits_to_f32(f32_to_bf16_bits(f32::NAN)).is_nan());
    }
}
