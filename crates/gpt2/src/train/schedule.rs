//! Learning-rate schedules: constant, or linear warm-up then cosine decay to a floor (nanoGPT's
//! `get_lr`, GPT-3 paper §B).

/// How the learning rate varies with the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrSchedule {
    /// The base learning rate at every step.
    Constant,
    /// `lr·(s+1)/warmup` for the first `warmup` steps, then a half cosine from `lr` down to
    /// `min_lr` at the last step.
    Cosine {
        /// Number of warm-up steps.
        warmup: usize,
        /// The floor reached at `total_steps`.
        min_lr: f32,
    },
}

/// The learning rate of step `step` (counted from 0) of `total_steps`, for base rate `lr`:
///
/// - constant ([`LrSchedule::Constant`]): `lr`;
/// - cosine ([`LrSchedule::Cosine`]): `s < warmup → lr·(s+1)/warmup`; else
///   `min_lr + ½(1 + cos(π·(s − warmup)/(total − warmup)))·(lr − min_lr)`, with the progress
///   clamped to 1 (steps past the end stay at `min_lr`). Computed in f64.
pub fn lr_at(schedule: &LrSchedule, lr: f32, step: usize, total_steps: usize) -> f32 {
    match *schedule {
        LrSchedule::Constant => lr,
        LrSchedule::Cosine { warmup, min_lr } => {
            let (lr, min_lr) = (lr as f64, min_lr as f64);
            if step < warmup {
                return (lr * (step + 1) as f64 / warmup as f64) as f32;
            }
            let span = total_steps.saturating_sub(warmup).max(1) as f64;
            let progress = ((step - warmup) as f64 / span).min(1.0);
            let coeff = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            (min_lr + coeff * (lr - min_lr)) as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_warms_up_linearly_then_decays_to_min() {
        let s = LrSchedule::Cosine {
            warmup: 2,
            min_lr: 1e-4,
        };
        let lrs: Vec<f32> = (0..7).map(|i| lr_at(&s, 1e-3, i, 6)).collect();
        // hand-worked: 5e-4, 1e-3, then 1e-4 + ½(1 + cos(πk/4))·9e-4 for k = 0..4
        let want = [5e-4, 1e-3, 1e-3, 8.681_981e-4, 5.5e-4, 2.318_019e-4, 1e-4];
        for (g, w) in lrs.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{lrs:?}");
        }
        assert_eq!(lr_at(&s, 1e-3, 100, 6), 1e-4);
        assert_eq!(lr_at(&LrSchedule::Constant, 3e-4, 5, 6), 3e-4);
    }
}
