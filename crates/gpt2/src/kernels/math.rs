//! Vectorizable scalar helpers shared by the kernels: `exp` and `tanh` without libm calls.
//!
//! The standard library's `f32::exp`/`tanh` call libm and block auto-vectorization; these use
//! Cody–Waite range reduction and a degree-6 polynomial (Cephes `expf`), relative error < 2e-7 on
//! the ranges GPT-2 produces, which keeps the 1e-4 parity budget untouched.

/// e^x for f32, branch-free so loops over it vectorize. Inputs below −87.3 give 0 (well, ~1e-38);
/// above 88.3 are clamped.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // NaN stays NaN through `x` (and so through r and the result) ...
    let x = x.clamp(-87.3, 88.3);
    // ... but not through `xn`, whose integer part must be in range: selects map NaN to −87.3
    let xn = if x > -87.3 { x } else { -87.3 };
    let xn = if xn < 88.3 { xn } else { 88.3 };
    // x = n·ln2 + r, |r| ≤ ln2/2
    // round half away from zero without a library call, and truncate without `as`, whose
    // saturating semantics compile to scalar code with NaN branches (so loops over exp vectorize)
    let y = xn * std::f32::consts::LOG2_E;
    // SAFETY: |y + 0.5| < 128 and y is not NaN (xn is clamped by selects), so the truncation is
    // in range.
    let ni: i32 = unsafe { (y + 0.5f32.copysign(y)).to_int_unchecked() };
    let n = ni as f32;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    // Cephes expf polynomial
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // scale by 2^n through the exponent bits
    let bits = ((ni + 127) as u32) << 23;
    y * f32::from_bits(bits)
}

/// tanh(x) = 1 − 2 / (e^{2x} + 1), branch-free; |error| < 3e-7.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // for |x| < 0.004 the subtraction loses digits; use x − x³/3 there
    let e = exp(2.0 * x);
    let t = 1.0 - 2.0 / (e + 1.0);
    if x.abs() < 0.004 {
        x - x * x * x * (1.0 / 3.0)
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_and_tanh_match_libm() {
        let mut worst_e = 0f64;
        let mut worst_t = 0f64;
        let mut x = -30.0f32;
        while x < 30.0 {
            let e = super::exp(x) as f64;
            let want = (x as f64).exp();
            worst_e = worst_e.max(((e - want) / want).abs());
            let t = super::tanh(x) as f64;
            worst_t = worst_t.max((t - (x as f64).tanh()).abs());
            x += 0.000_731;
        }
        assert!(worst_e < 4e-7, "exp rel err {worst_e}");
        assert!(worst_t < 4e-7, "tanh abs err {worst_t}");
    }

    #[test]
    fn exp_keeps_nan_and_clamps_the_ends() {
        assert!(super::exp(f32::NAN).is_nan());
        assert!(super::tanh(f32::NAN).is_nan());
        assert_eq!(super::exp(f32::NEG_INFINITY), super::exp(-87.3));
        assert!(super::exp(-87.3) < 1e-37);
        assert_eq!(super::exp(f32::INFINITY), super::exp(88.3));
        assert!(super::exp(88.3).is_finite());
        assert_eq!(super::tanh(100.0), 1.0);
        assert_eq!(super::tanh(-100.0), -1.0);
    }
}
