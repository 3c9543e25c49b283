//! Token + position embedding: `out[b, t, :] = wte[ids[b, t], :] + wpe[pos0 + t, :]` (GPT-2 §2.3,
//! `GPT2Model.forward`: `inputs_embeds + position_embeds`).

/// out: (B, T, C); ids: (B, T) token ids < V (checked by callers); wte: (V, C); wpe: (maxT, C);
/// `pos0` is the position of the first of the T tokens (non-zero when decoding with a KV cache).
pub fn encoder_forward(
    out: &mut [f32],
    ids: &[u32],
    wte: &[f32],
    wpe: &[f32],
    pos0: usize,
    b: usize,
    t: usize,
    c: usize,
) {
    debug_assert_eq!(out.len(), b * t * c);
    debug_assert_eq!(ids.len(), b * t);
    for (row, (o, &id)) in out.chunks_exact_mut(c).zip(ids).enumerate() {
        let pos = pos0 + row % t;
        let tok = &wte[id as usize * c..(id as usize + 1) * c];
        let p = &wpe[pos * c..(pos + 1) * c];
        for ((o, &x), &y) in o.iter_mut().zip(tok).zip(p) {
            *o = x + y;
        }
    }
}

/// Backward of [`encoder_forward`] (with pos0 = 0): adds `dout[b, t, :]` into `dwte[ids[b, t], :]`
/// and `dwpe[t, :]`. dwte: (V, C), dwpe: (maxT, C), dout: (B, T, C), ids: (B, T). Accumulates.
pub fn encoder_backward(
    dwte: &mut [f32],
    dwpe: &mut [f32],
    dout: &[f32],
    ids: &[u32],
    b: usize,
    t: usize,
    c: usize,
) {
    debug_assert_eq!(dout.len(), b * t * c);
    for (row, (d, &id)) in dout.chunks_exact(c).zip(ids).enumerate() {
        let pos = row % t;
        let dt = &mut dwte[id as usize * c..(id as usize + 1) * c];
        for (g, &x) in dt.iter_mut().zip(d) {
            *g += x;
        }
        let dp = &mut dwpe[pos * c..(pos + 1) * c];
        for (g, &x) in dp.iter_mut().zip(d) {
            *g += x;
        }
    }
}
