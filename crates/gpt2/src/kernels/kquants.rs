//! Dequantization of ggml types we do not compute natively: q4_1, q5_0, q5_1 and the K-quant
//! q4_K that llama.cpp's `Q4_K_M` files contain (q6_K, which they contain too, is computed
//! natively: [`crate::kernels::quant`]; it is decoded here as well, for 1-D tensors).
//!
//! They are decoded once, at load, and stored again in a native type
//! ([`crate::gguf::model`]). The code follows ggml's reference `dequantize_row_*` in
//! `ggml-quants.c` operation for operation (same f32 products, no fused multiply-add), so the
//! values are bit-identical to gguf-py's (`tests/fixtures/quant/blocks.json`).
//!
//! Block layouts (`ggml-common.h`), little-endian:
//! - q4_1 (32, 20 B): `d: f16, m: f16, qs: [u8; 16]`; y = q·d + m.
//! - q5_0 (32, 22 B): `d: f16, qh: u32, qs: [u8; 16]`; 5th bit of element j is bit j of qh; y = (q − 16)·d.
//! - q5_1 (32, 24 B): `d: f16, m: f16, qh: u32, qs: [u8; 16]`; y = q·d + m.
//! - q4_K (256, 144 B): `d: f16, dmin: f16, scales: [u8; 12]` (8 pairs of 6-bit scale/min),
//!   `qs: [u8; 128]`; y = d·sc·q − dmin·m per 32 elements.

use crate::gguf::GgmlType;

fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// ggml's `get_scale_min_k4`: the j-th 6-bit (scale, min) pair of a q4_K/q5_K block.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

fn q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16(b, 0), f16(b, 2));
    for j in 0..16 {
        y[j] = (b[4 + j] & 0xF) as f32 * d + m;
        y[j + 16] = (b[4 + j] >> 4) as f32 * d + m;
    }
}

fn q5(b: &[u8], y: &mut [f32], with_min: bool) {
    let d = f16(b, 0);
    let (m, o) = if with_min { (f16(b, 2), 4) } else { (0.0, 2) };
    let qh = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let qs = &b[o + 4..o + 20];
    for j in 0..16 {
        let h0 = (((qh >> j) << 4) & 0x10) as u8;
        let h1 = ((qh >> (j + 12)) & 0x10) as u8;
        let x0 = ((qs[j] & 0x0F) | h0) as i32;
        let x1 = ((qs[j] >> 4) | h1) as i32;
        if with_min {
            y[j] = x0 as f32 * d + m;
            y[j + 16] = x1 as f32 * d + m;
        } else {
            y[j] = (x0 - 16) as f32 * d;
            y[j + 16] = (x1 - 16) as f32 * d;
        }
    }
}

fn q4_k(b: &[u8], y: &mut [f32]) {
    let (d, min) = (f16(b, 0), f16(b, 2));
    let scales = &b[4..16];
    let mut q = &b[16..144];
    let mut is = 0;
    for j in (0..256).step_by(64) {
        let (sc, m) = scale_min_k4(is, scales);
        let (d1, m1) = (d * sc as f32, min * m as f32);
        let (sc, m) = scale_min_k4(is + 1, scales);
        let (d2, m2) = (d * sc as f32, min * m as f32);
        for l in 0..32 {
            y[j + l] = d1 * (q[l] & 0xF) as f32 - m1;
            y[j + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
        }
        q = &q[32..];
        is += 2;
    }
}

/// Decodes `bytes` of type `t` into `out` (whole blocks). Errors (a message for the caller to put
/// in context) for a type not handled here or a length that is not whole blocks of `out.len()`.
pub fn dequantize(t: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
    type Block = fn(&[u8], &mut [f32]);
    let f: Block = match t {
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => |b, y| q5(b, y, false),
        GgmlType::Q5_1 => |b, y| q5(b, y, true),
        GgmlType::Q4_K => q4_k,
        GgmlType::Q6_K => crate::kernels::quant::dequantize_block_q6_k,
        other => {
            return Err(format!(
                "type {} is not supported (gpt2 reads f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, \
                 q5_1, q4_K and q6_K); re-quantize the file with llama-quantize to one of those",
                other.name()
            ))
        }
    };
    let (bs, ts) = (t.block_size(), t.type_size());
    if !out.len().is_multiple_of(bs) || bytes.len() != out.len() / bs * ts {
        return Err(format!(
            "{} bytes do not hold {} {} values",
            bytes.len(),
            out.len(),
            t.name()
        ));
    }
    for (b, y) in bytes.chunks_exact(ts).zip(out.chunks_exact_mut(bs)) {
        f(b, y);
    }
    Ok(())
}
