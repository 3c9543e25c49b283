//! Causal multi-head self-attention (Vaswani et al. 2017 §3.2; GPT-2's `GPT2Attention._attn`):
//! for each head, `softmax(q·kᵀ/√HS + mask)·v`, where query position p sees keys 0..=p.
//!
//! Queries, keys and values are read through strided views ([`HeadLayout`]) so that one kernel
//! serves training (q, k, v interleaved in the `c_attn` output `(B, T, 3C)`) and decoding with a
//! KV cache (keys and values in `(B, NH, maxT, HS)` cache buffers).

use rayon::prelude::*;

use super::math;
use super::matmul::{dot, dot_body, multiversion};

/// Where element (b, t, h, d) of a q, k or v tensor lives: `b·sb + t·st + h·sh + d`.
#[derive(Debug, Clone, Copy)]
pub struct HeadLayout {
    /// Stride between batch rows.
    pub sb: usize,
    /// Stride between time steps.
    pub st: usize,
    /// Stride between heads.
    pub sh: usize,
}

impl HeadLayout {
    /// The layout of q, k or v inside the `c_attn` output `(B, T, 3C)`; slice the buffer at 0, C
    /// or 2C to pick q, k or v.
    pub fn qkv(t: usize, c: usize, hs: usize) -> Self {
        Self {
            sb: t * 3 * c,
            st: 3 * c,
            sh: hs,
        }
    }
    /// The layout of a KV-cache buffer `(B, NH, maxT, HS)`.
    pub fn cache(nh: usize, max_t: usize, hs: usize) -> Self {
        Self {
            sb: nh * max_t * hs,
            st: hs,
            sh: max_t * hs,
        }
    }
    #[inline]
    fn at(&self, b: usize, t: usize, h: usize) -> usize {
        b * self.sb + t * self.st + h * self.sh
    }
}

/// Attention forward.
///
/// - out: (B, Tq, C) — heads concatenated along C, as before `attn.c_proj`;
/// - att: optional (B, Tq, NH, Tk) — the softmax probabilities, saved for backward (masked entries 0);
/// - q, k, v with their layouts; queries are the Tq positions `pos0..pos0+Tq`, keys and values cover
///   positions `0..Tk` with `Tk = pos0 + Tq`.
///
/// Scale 1/√HS; softmax in f32 with max subtraction.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    out: &mut [f32],
    att: Option<&mut [f32]>,
    q: &[f32],
    ql: HeadLayout,
    k: &[f32],
    kl: HeadLayout,
    v: &[f32],
    vl: HeadLayout,
    b: usize,
    tq: usize,
    pos0: usize,
    nh: usize,
    hs: usize,
) {
    let c = nh * hs;
    let tk = pos0 + tq;
    debug_assert_eq!(out.len(), b * tq * c);
    let scale = 1.0 / (hs as f32).sqrt();
    // one task per (row, head): decoding has a single row, and its heads are the parallelism
    let isa = super::isa::isa();
    let head = |idx: usize, oh: &mut [f32], scores: &mut [f32]| {
        // scores: (Tk) scratch or saved probabilities for this (b, i, h)
        let (row, h) = (idx / nh, idx % nh);
        let (bi, i) = (row / tq, row % tq);
        let qv = &q[ql.at(bi, i, h)..ql.at(bi, i, h) + hs];
        let hd = HeadData {
            k,
            kl,
            v,
            vl,
            bi,
            h,
            scale,
        };
        head_dispatch(isa, oh, scores, qv, &hd, pos0 + i);
    };
    match att {
        Some(att) => {
            debug_assert_eq!(att.len(), b * tq * nh * tk);
            out.par_chunks_mut(hs)
                .zip(att.par_chunks_mut(tk))
                .enumerate()
                .for_each(|(idx, (o, a))| head(idx, o, a));
        }
        None if tq >= BLOCKED_MIN_TQ => {
            attention_blocked(out, q, ql, k, kl, v, vl, b, tq, pos0, nh, hs)
        }
        None => {
            out.par_chunks_mut(hs)
                .enumerate()
                .for_each_init(|| vec![0f32; tk], |scratch, (idx, o)| head(idx, o, scratch));
        }
    }
}

/// `row[..=p] = softmax(scale · row[..=p])`, `row[p + 1..] = 0`: one masked row of scores.
///
/// The max and the sum run in 16 lanes (combined in a fixed order at the end), so that the loops
/// vectorize: a single running sum is a serial chain the compiler may not reorder.
#[inline(always)]
fn softmax_row(row: &mut [f32], p: usize, scale: f32) {
    const L: usize = 16;
    let (s, rest) = row.split_at_mut(p + 1);
    let mut m = [f32::NEG_INFINITY; L];
    let mut chunks = s.chunks_exact_mut(L);
    for c in &mut chunks {
        for i in 0..L {
            c[i] *= scale;
            // a select, which compiles to vmaxps (f32::max has NaN rules that do not vectorize)
            m[i] = if c[i] > m[i] { c[i] } else { m[i] };
        }
    }
    for (i, x) in chunks.into_remainder().iter_mut().enumerate() {
        *x *= scale;
        m[i] = if *x > m[i] { *x } else { m[i] };
    }
    let maxv = m
        .iter()
        .fold(f32::NEG_INFINITY, |a, &v| if v > a { v } else { a });
    let mut l = [0f32; L];
    let mut chunks = s.chunks_exact_mut(L);
    for c in &mut chunks {
        for i in 0..L {
            c[i] = math::exp(c[i] - maxv);
            l[i] += c[i];
        }
    }
    for (i, x) in chunks.into_remainder().iter_mut().enumerate() {
        *x = math::exp(*x - maxv);
        l[i] += *x;
    }
    // pairwise, in a fixed order
    let mut w = L;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            l[i] += l[i + w];
        }
    }
    let inv = 1.0 / l[0];
    for x in s.iter_mut() {
        *x *= inv;
    }
    rest.fill(0.0);
}

multiversion!(softmax_row, softmax_row_avx2, softmax_row_avx512,
    (row: &mut [f32], p: usize, scale: f32));

fn softmax_dispatch(isa: super::isa::Isa, row: &mut [f32], p: usize, scale: f32) {
    use super::isa::Isa;
    match isa {
        // SAFETY: isa() only returns a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { softmax_row_avx512(row, p, scale) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { softmax_row_avx2(row, p, scale) },
        _ => softmax_row(row, p, scale),
    }
}

/// Query rows per task of [`attention_blocked`].
const QTILE: usize = 64;
/// Sequences with at least this many new query rows (prefill, scoring) take the blocked path when
/// no probabilities are saved.
pub const BLOCKED_MIN_TQ: usize = 16;

/// Inference attention for many query rows, as matrix products: for each (batch row, head, tile of
/// [`QTILE`] queries) `S = q kᵀ · scale` over the keys the tile can see (one SGEMM), the causal
/// mask and softmax row by row, then `out = P v` (a second SGEMM). Same maths as the row-by-row
/// path, summed in another order (the tests bound the difference).
#[allow(clippy::too_many_arguments)]
fn attention_blocked(
    out: &mut [f32],
    q: &[f32],
    ql: HeadLayout,
    k: &[f32],
    kl: HeadLayout,
    v: &[f32],
    vl: HeadLayout,
    b: usize,
    tq: usize,
    pos0: usize,
    nh: usize,
    hs: usize,
) {
    use super::matmul::sgemm_serial;
    let isa = super::isa::isa();
    let c = nh * hs;
    let scale = 1.0 / (hs as f32).sqrt();
    let tiles = tq.div_ceil(QTILE);
    let results: Vec<(usize, Vec<f32>)> = (0..b * nh * tiles)
        .into_par_iter()
        .map_init(Vec::new, |s: &mut Vec<f32>, task| {
            let (bi, rest) = (task / (nh * tiles), task % (nh * tiles));
            let (h, ti) = (rest / tiles, rest % tiles);
            let (i0, i1) = (ti * QTILE, (ti * QTILE + QTILE).min(tq));
            let (m, kend) = (i1 - i0, pos0 + i1);
            s.clear();
            s.resize(m * kend, 0.0);
            // S (m, kend) = q[i0..i1] (m, hs) · kᵀ (hs, kend)
            sgemm_serial(
                m,
                kend,
                hs,
                s,
                kend,
                1,
                false,
                &q[ql.at(bi, i0, h)..],
                ql.st,
                1,
                &k[kl.at(bi, 0, h)..],
                1,
                kl.st,
            );
            for (ii, row) in s.chunks_exact_mut(kend).enumerate() {
                // keys 0..=p are visible
                softmax_dispatch(isa, row, pos0 + i0 + ii, scale);
            }
            // o (m, hs) = P (m, kend) · v (kend, hs)
            let mut o = vec![0f32; m * hs];
            sgemm_serial(
                m,
                hs,
                kend,
                &mut o,
                hs,
                1,
                false,
                s,
                kend,
                1,
                &v[vl.at(bi, 0, h)..],
                vl.st,
                1,
            );
            (task, o)
        })
        .collect();
    for (task, o) in results {
        let (bi, rest) = (task / (nh * tiles), task % (nh * tiles));
        let (h, ti) = (rest / tiles, rest % tiles);
        for (ii, src) in o.chunks_exact(hs).enumerate() {
            let row = bi * tq + ti * QTILE + ii;
            out[row * c + h * hs..row * c + (h + 1) * hs].copy_from_slice(src);
        }
    }
}

/// The keys and values one head attends over.
struct HeadData<'a> {
    k: &'a [f32],
    kl: HeadLayout,
    v: &'a [f32],
    vl: HeadLayout,
    bi: usize,
    h: usize,
    scale: f32,
}

/// One query row of one head at position `p`: scores over keys 0..=p, softmax, then the mix of
/// values into `oh` (HS). Compiled per kernel path with the same arithmetic (no fused
/// multiply-add), so every path gives the same bits.
#[inline(always)]
fn head_body(oh: &mut [f32], scores: &mut [f32], qv: &[f32], d: &HeadData, p: usize) {
    let hs = qv.len();
    for (j, s) in scores[..=p].iter_mut().enumerate() {
        let o = d.kl.at(d.bi, j, d.h);
        *s = dot_body(qv, &d.k[o..o + hs]);
    }
    softmax_row(scores, p, d.scale);
    oh.fill(0.0);
    for (j, &pj) in scores[..=p].iter().enumerate() {
        let o = d.vl.at(d.bi, j, d.h);
        for (o, &x) in oh.iter_mut().zip(&d.v[o..o + hs]) {
            *o += pj * x;
        }
    }
}

multiversion!(head_body, head_avx2, head_avx512,
    (oh: &mut [f32], scores: &mut [f32], qv: &[f32], d: &HeadData, p: usize));

fn head_dispatch(
    isa: super::isa::Isa,
    oh: &mut [f32],
    scores: &mut [f32],
    qv: &[f32],
    d: &HeadData,
    p: usize,
) {
    use super::isa::Isa;
    match isa {
        // SAFETY: isa() only returns a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { head_avx512(oh, scores, qv, d, p) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { head_avx2(oh, scores, qv, d, p) },
        _ => head_body(oh, scores, qv, d, p),
    }
}

/// Naive f64 reference of [`attention_forward`] on a `(B, T, 3C)` qkv buffer, for tests.
pub fn attention_forward_naive(
    out: &mut [f32],
    qkv: &[f32],
    b: usize,
    t: usize,
    nh: usize,
    hs: usize,
) {
    let c = nh * hs;
    for bi in 0..b {
        for h in 0..nh {
            for i in 0..t {
                let qi = &qkv[(bi * t + i) * 3 * c + h * hs..][..hs];
                let mut s: Vec<f64> = (0..=i)
                    .map(|j| {
                        let kj = &qkv[(bi * t + j) * 3 * c + c + h * hs..][..hs];
                        qi.iter()
                            .zip(kj)
                            .map(|(&x, &y)| x as f64 * y as f64)
                            .sum::<f64>()
                            / (hs as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s
                    .iter_mut()
                    .map(|x| {
                        *x = (*x - m).exp();
                        *x
                    })
                    .sum();
                for d in 0..hs {
                    let mut acc = 0f64;
                    for (j, &sj) in s.iter().enumerate() {
                        acc += sj / z * qkv[(bi * t + j) * 3 * c + 2 * c + h * hs + d] as f64;
                    }
                    out[(bi * t + i) * c + h * hs + d] = acc as f32;
                }
            }
        }
    }
}

/// Attention forward for training, with dropout on the attention probabilities
/// (`GPT2Attention.attn_dropout`): on a `(B, T, 3C)` qkv buffer, runs [`attention_forward`] to save
/// the probabilities `att`, then recomputes `out = (att ⊙ S)·v` where `S[idx] = scale(idx)` for
/// each element index `idx` of att — 0 for a dropped weight, 1/(1−p) for a kept one
/// (inverted dropout). att stays the undropped softmax, which the backward needs.
///
/// out: (B, T, C); att: (B, T, NH, T) saved; qkv: (B, T, 3C). Without dropout call
/// [`attention_forward`] directly (this recomputes P·v once more).
#[allow(clippy::too_many_arguments)]
pub fn attention_forward_dropout<F: Fn(usize) -> f32 + Sync>(
    out: &mut [f32],
    att: &mut [f32],
    qkv: &[f32],
    b: usize,
    t: usize,
    nh: usize,
    hs: usize,
    scale: F,
) {
    let c = nh * hs;
    debug_assert_eq!(qkv.len(), b * t * 3 * c);
    debug_assert_eq!(att.len(), b * t * nh * t);
    let l = HeadLayout::qkv(t, c, hs);
    attention_forward(
        out,
        Some(&mut *att),
        qkv,
        l,
        &qkv[c..],
        l,
        &qkv[2 * c..],
        l,
        b,
        t,
        0,
        nh,
        hs,
    );
    let att = &*att;
    out.par_chunks_mut(c).enumerate().for_each(|(row, o)| {
        let (bi, i) = (row / t, row % t);
        o.fill(0.0);
        for h in 0..nh {
            let a0 = (row * nh + h) * t;
            let oh = &mut o[h * hs..(h + 1) * hs];
            for j in 0..=i {
                let pj = att[a0 + j] * scale(a0 + j);
                let vv = &qkv[l.at(bi, j, h) + 2 * c..][..hs];
                for (o, &x) in oh.iter_mut().zip(vv) {
                    *o += pj * x;
                }
            }
        }
    });
}

/// Backward of [`attention_forward`] on a `(B, T, 3C)` qkv buffer (no dropout): see
/// [`attention_backward_dropout`], of which this is the case `scale ≡ 1`.
///
/// dqkv: (B, T, 3C) accumulated (`+=`); datt: (B, T, NH, T) scratch, overwritten; dout: (B, T, C);
/// qkv: (B, T, 3C); att: (B, T, NH, T) the saved probabilities.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dqkv: &mut [f32],
    datt: &mut [f32],
    dout: &[f32],
    qkv: &[f32],
    att: &[f32],
    b: usize,
    t: usize,
    nh: usize,
    hs: usize,
) {
    attention_backward_dropout(dqkv, datt, dout, qkv, att, b, t, nh, hs, |_| 1.0);
}

/// Backward of [`attention_forward_dropout`] (llm.c `attention_backward`, plus dropout): with
/// `P = att`, `Pd = P ⊙ S` (S from `scale`, as in the forward), `A = q·kᵀ/√HS` masked:
///
/// - `dPd = dout·vᵀ`, `dv += Pdᵀ·dout`;
/// - `dP = dPd ⊙ S`; softmax backward `dA = P ⊙ (dP − Σ_j P_j dP_j)` per row;
/// - `dq += dA·k/√HS`, `dk += dAᵀ·q/√HS`.
///
/// Two passes, each parallel over rows of dqkv so every task writes only its own row: pass 1 over
/// query rows (b, i) writes `dA` into datt and dq; pass 2 over key rows (b, j) reads datt and
/// writes dk, dv.
///
/// dqkv: (B, T, 3C) accumulated (`+=`); datt: (B, T, NH, T) scratch, overwritten with dA (0 above
/// the diagonal); dout: (B, T, C); qkv: (B, T, 3C); att: (B, T, NH, T) saved probabilities.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_dropout<F: Fn(usize) -> f32 + Sync>(
    dqkv: &mut [f32],
    datt: &mut [f32],
    dout: &[f32],
    qkv: &[f32],
    att: &[f32],
    b: usize,
    t: usize,
    nh: usize,
    hs: usize,
    scale: F,
) {
    let c = nh * hs;
    debug_assert_eq!(dqkv.len(), b * t * 3 * c);
    debug_assert_eq!(qkv.len(), b * t * 3 * c);
    debug_assert_eq!(dout.len(), b * t * c);
    debug_assert_eq!(att.len(), b * t * nh * t);
    debug_assert_eq!(datt.len(), b * t * nh * t);
    let l = HeadLayout::qkv(t, c, hs);
    let inv_sqrt = 1.0 / (hs as f32).sqrt();
    // pass 1: query rows (b, i): dA into datt, dq
    dqkv.par_chunks_mut(3 * c)
        .zip(datt.par_chunks_mut(nh * t))
        .enumerate()
        .for_each(|(row, (dq_row, da_row))| {
            let (bi, i) = (row / t, row % t);
            for h in 0..nh {
                let a0 = (row * nh + h) * t;
                let p = &att[a0..a0 + t];
                let da = &mut da_row[h * t..(h + 1) * t];
                let dy = &dout[row * c + h * hs..][..hs];
                // dP_j = (dout · v_j) ⊙ S_j
                let mut sum = 0f32;
                for j in 0..=i {
                    let vv = &qkv[l.at(bi, j, h) + 2 * c..][..hs];
                    da[j] = dot(dy, vv) * scale(a0 + j);
                    sum += p[j] * da[j];
                }
                // softmax backward
                for j in 0..=i {
                    da[j] = p[j] * (da[j] - sum);
                }
                da[i + 1..].fill(0.0);
                // dq += dA·k/√HS
                let dq = &mut dq_row[h * hs..(h + 1) * hs];
                for j in 0..=i {
                    let kv = &qkv[l.at(bi, j, h) + c..][..hs];
                    let g = da[j] * inv_sqrt;
                    for (d, &x) in dq.iter_mut().zip(kv) {
                        *d += g * x;
                    }
                }
            }
        });
    let datt = &*datt;
    // pass 2: key/value rows (b, j): dk, dv
    dqkv.par_chunks_mut(3 * c)
        .enumerate()
        .for_each(|(row, dkv_row)| {
            let (bi, j) = (row / t, row % t);
            let (dk_row, dv_row) = dkv_row[c..].split_at_mut(c);
            for h in 0..nh {
                let dk = &mut dk_row[h * hs..(h + 1) * hs];
                let dv = &mut dv_row[h * hs..(h + 1) * hs];
                for i in j..t {
                    let a = ((bi * t + i) * nh + h) * t + j;
                    let qi = &qkv[l.at(bi, i, h)..][..hs];
                    let dy = &dout[(bi * t + i) * c + h * hs..][..hs];
                    let g = datt[a] * inv_sqrt;
                    let pd = att[a] * scale(a);
                    for (((dk, dv), &q), &y) in dk.iter_mut().zip(dv.iter_mut()).zip(qi).zip(dy) {
                        *dk += g * q;
                        *dv += pd * y;
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn blocked_prefill_path_matches_the_row_path() {
        // 2 sequences, 20 cached positions then 70 new queries (two tiles, the second partial)
        let (b, nh, hs, pos0, tq, max_t) = (2, 3, 16, 20, 70, 96);
        let c = nh * hs;
        let mut rng = Rng::seed(19);
        let cl = HeadLayout::cache(nh, max_t, hs);
        let kc: Vec<f32> = (0..b * nh * max_t * hs).map(|_| rng.normal()).collect();
        let vc: Vec<f32> = (0..b * nh * max_t * hs).map(|_| rng.normal()).collect();
        let q: Vec<f32> = (0..b * tq * 3 * c).map(|_| rng.normal()).collect();
        let ql = HeadLayout::qkv(tq, c, hs);
        let run = |att: Option<&mut [f32]>| {
            let mut out = vec![0f32; b * tq * c];
            attention_forward(&mut out, att, &q, ql, &kc, cl, &vc, cl, b, tq, pos0, nh, hs);
            out
        };
        let mut att = vec![0f32; b * tq * nh * (pos0 + tq)];
        let rows = run(Some(&mut att));
        let blocked = run(None);
        let d = rows
            .iter()
            .zip(&blocked)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "{d}");
        assert!(
            rows != blocked || tq < BLOCKED_MIN_TQ,
            "the blocked path did not run"
        );
    }

    #[test]
    fn attention_matches_naive_and_cache_layout_agrees() {
        let (b, t, nh, hs) = (2, 13, 3, 16);
        let c = nh * hs;
        let mut rng = Rng::seed(9);
        let qkv: Vec<f32> = (0..b * t * 3 * c).map(|_| rng.normal()).collect();
        let mut want = vec![0.0; b * t * c];
        attention_forward_naive(&mut want, &qkv, b, t, nh, hs);
        let l = HeadLayout::qkv(t, c, hs);
        let mut got = vec![0.0; b * t * c];
        let mut att = vec![0.0; b * t * nh * t];
        attention_forward(
            &mut got,
            Some(&mut att),
            &qkv,
            l,
            &qkv[c..],
            l,
            &qkv[2 * c..],
            l,
            b,
            t,
            0,
            nh,
            hs,
        );
        let d = got
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "{d}");
        // probabilities sum to one and are zero above the diagonal
        for (idx, row) in att.chunks(t).enumerate() {
            let i = (idx / nh) % t;
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row[i + 1..].iter().all(|&x| x == 0.0));
        }
        // the same keys/values copied to a cache layout, last query only (decode step)
        let max_t = 20;
        let cl = HeadLayout::cache(nh, max_t, hs);
        let mut kc = vec![0.0; b * nh * max_t * hs];
        let mut vc = vec![0.0; b * nh * max_t * hs];
        for bi in 0..b {
            for j in 0..t {
                for h in 0..nh {
                    for d in 0..hs {
                        kc[cl.at(bi, j, h) + d] = qkv[l.at(bi, j, h) + c + d];
                        vc[cl.at(bi, j, h) + d] = qkv[l.at(bi, j, h) + 2 * c + d];
                    }
                }
            }
        }
        let mut q_last = vec![0.0; b * c];
        for bi in 0..b {
            q_last[bi * c..(bi + 1) * c]
                .copy_from_slice(&qkv[l.at(bi, t - 1, 0)..l.at(bi, t - 1, 0) + c]);
        }
        let ql = HeadLayout {
            sb: c,
            st: c,
            sh: hs,
        };
        let mut one = vec![0.0; b * c];
        attention_forward(
            &mut one,
            None,
            &q_last,
            ql,
            &kc,
            cl,
            &vc,
            cl,
            b,
            1,
            t - 1,
            nh,
            hs,
        );
        for bi in 0..b {
            let w = &want[(bi * t + t - 1) * c..(bi * t + t) * c];
            let d = one[bi * c..(bi + 1) * c]
                .iter()
                .zip(w)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(d < 1e-5, "{d}");
        }
    }

    /// f64 attention with a dropout scale per att element (B, T, NH, T), on a (B, T, 3C) qkv.
    fn attention64(qkv: &[f64], s: &[f64], b: usize, t: usize, nh: usize, hs: usize) -> Vec<f64> {
        let c = nh * hs;
        let mut out = vec![0.0; b * t * c];
        for bi in 0..b {
            for i in 0..t {
                for h in 0..nh {
                    let q = |d: usize| qkv[(bi * t + i) * 3 * c + h * hs + d];
                    let mut a: Vec<f64> = (0..=i)
                        .map(|j| {
                            (0..hs)
                                .map(|d| q(d) * qkv[(bi * t + j) * 3 * c + c + h * hs + d])
                                .sum::<f64>()
                                / (hs as f64).sqrt()
                        })
                        .collect();
                    let m = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = a.iter().map(|x| (x - m).exp()).sum();
                    for x in a.iter_mut() {
                        *x = (*x - m).exp() / z;
                    }
                    for (j, &p) in a.iter().enumerate() {
                        let sj = s[((bi * t + i) * nh + h) * t + j];
                        for d in 0..hs {
                            out[(bi * t + i) * c + h * hs + d] +=
                                p * sj * qkv[(bi * t + j) * 3 * c + 2 * c + h * hs + d];
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn attention_backward_matches_finite_differences_with_and_without_dropout() {
        // B 2, T 5, NH 3, HS 4 (C 12)
        let (b, t, nh, hs) = (2, 5, 3, 4);
        let c = nh * hs;
        let mut rng = Rng::seed(10);
        let qkv: Vec<f32> = (0..b * t * 3 * c).map(|_| rng.normal()).collect();
        let dout: Vec<f32> = (0..b * t * c).map(|_| rng.normal()).collect();
        // a fixed dropout pattern with p = 0.3 (scale 0 or 1/0.7)
        let mask: Vec<f32> = (0..b * t * nh * t)
            .map(|_| if rng.uniform() < 0.3 { 0.0 } else { 1.0 / 0.7 })
            .collect();
        let ones = vec![1.0f32; mask.len()];
        for (name, s) in [("no dropout", &ones), ("dropout", &mask)] {
            let mut out = vec![0.0; b * t * c];
            let mut att = vec![0.0; b * t * nh * t];
            attention_forward_dropout(&mut out, &mut att, &qkv, b, t, nh, hs, |i| s[i]);
            let q64: Vec<f64> = qkv.iter().map(|&x| x as f64).collect();
            let s64: Vec<f64> = s.iter().map(|&x| x as f64).collect();
            let want = attention64(&q64, &s64, b, t, nh, hs);
            for (g, w) in out.iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{name} forward {g} vs {w}");
            }
            let mut dqkv = vec![0.25f32; qkv.len()]; // accumulates
            let mut datt = vec![7.0f32; att.len()]; // scratch: overwritten
            if name == "no dropout" {
                attention_backward(&mut dqkv, &mut datt, &dout, &qkv, &att, b, t, nh, hs);
            } else {
                attention_backward_dropout(
                    &mut dqkv,
                    &mut datt,
                    &dout,
                    &qkv,
                    &att,
                    b,
                    t,
                    nh,
                    hs,
                    |i| s[i],
                );
            }
            let loss = |x: &[f64]| -> f64 {
                attention64(x, &s64, b, t, nh, hs)
                    .iter()
                    .zip(&dout)
                    .map(|(o, &d)| o * d as f64)
                    .sum()
            };
            let h = 1e-6;
            for idx in 0..qkv.len() {
                let (mut p, mut m) = (q64.clone(), q64.clone());
                p[idx] += h;
                m[idx] -= h;
                let fd = (loss(&p) - loss(&m)) / (2.0 * h);
                let err = (dqkv[idx] as f64 - 0.25 - fd).abs();
                assert!(
                    err < 1e-4,
                    "{name}: dqkv[{idx}] {} vs {fd}",
                    dqkv[idx] - 0.25
                );
            }
        }
    }
}
