//! Residual connections: `x ← x + f(x)` (GPT-2's pre-LN block, `hidden_states = residual + ...`).

/// out: (N·C) = inp1 + inp2, elementwise.
pub fn residual_forward(out: &mut [f32], inp1: &[f32], inp2: &[f32]) {
    debug_assert!(out.len() == inp1.len() && out.len() == inp2.len());
    for ((o, &a), &b) in out.iter_mut().zip(inp1).zip(inp2) {
        *o = a + b;
    }
}

/// In place: x += y (the inference engine keeps one residual stream).
pub fn residual_add(x: &mut [f32], y: &[f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// Backward of [`residual_forward`]: dinp1 += dout, dinp2 += dout. Accumulates.
pub fn residual_backward(dinp1: &mut [f32], dinp2: &mut [f32], dout: &[f32]) {
    for ((a, b), &d) in dinp1.iter_mut().zip(dinp2.iter_mut()).zip(dout) {
        *a += d;
        *b += d;
    }
}
