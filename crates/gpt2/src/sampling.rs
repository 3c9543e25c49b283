//! Next-token selection: a logits-processor pipeline and a seeded sampler.
//!
//! Follows Hugging Face `generate` (`transformers/generation/logits_process.py`), in its order:
//! `RepetitionPenaltyLogitsProcessor` → `TemperatureLogitsWarper` → `TopKLogitsWarper` →
//! `TopPLogitsWarper` → `softmax` + one categorical draw. Greedy (temperature 0) is argmax after the
//! repetition penalty, as HF's `do_sample=False`.
//!
//! The draw is one `Rng::uniform_f64()` per token, inverted through the CDF over the kept tokens in
//! id order, with sums in f64 in a fixed order: the same seed gives the same tokens on every
//! machine and thread count.
//!
//! Named deviations from HF (numerically equivalent, covered by tests):
//! - Temperature is applied inside the softmax as `exp((l - max) / T)` rather than by dividing the
//!   logits first, so a tiny `T` cannot overflow to `inf`. Top-k is unaffected (it is invariant to
//!   a positive scale) and top-p sees the same probabilities.
//! - Ties: greedy and the top-p sort break ties toward the lowest id (torch's order is unspecified).
//! - NaN logits are treated as `-inf` (never chosen).
//!
//! Dims legend: V = vocab_size (the length of `logits`).

use crate::{Error, Result, Rng};

/// How the next token is chosen. [`SamplingParams::default`] is plain sampling at temperature 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature T ≥ 0 (`--temperature`); 0 means greedy (argmax), 1 leaves the logits as
    /// they are, < 1 sharpens, > 1 flattens.
    pub temperature: f32,
    /// Keep only the k most likely tokens, k ≥ 1 (`--top-k`; ties at the k-th logit are all kept,
    /// as in HF). `None` keeps all.
    pub top_k: Option<usize>,
    /// Nucleus sampling, p in (0, 1] (`--top-p`): keep the smallest set of most likely tokens whose
    /// probability sums to ≥ p (always at least one). `None` or 1 keeps all.
    pub top_p: Option<f32>,
    /// CTRL repetition penalty θ > 0 (`--repetition-penalty`, Keskar et al. 2019): each token seen in
    /// `previous` has its logit divided by θ if positive, multiplied by θ if negative. 1 is off.
    pub repetition_penalty: f32,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            repetition_penalty: 1.0,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding: always the argmax (lowest id on ties).
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Checks every field's range.
    ///
    /// Errors: [`Error::Invalid`] naming the CLI flag: `--temperature` must be finite and ≥ 0,
    /// `--top-k` ≥ 1, `--top-p` in (0, 1], `--repetition-penalty` finite and > 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::Invalid(format!(
                "--temperature must be a finite number >= 0 (0 = greedy), got {}",
                self.temperature
            )));
        }
        if let Some(k) = self.top_k {
            if k < 1 {
                return Err(Error::Invalid(format!("--top-k must be >= 1, got {k}")));
            }
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::Invalid(format!(
                    "--top-p must be in (0, 1], got {p}"
                )));
            }
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return Err(Error::Invalid(format!(
                "--repetition-penalty must be a finite number > 0 (1 = off), got {}",
                self.repetition_penalty
            )));
        }
        Ok(())
    }

    /// True when the choice is deterministic (temperature 0).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// Chooses tokens from logits: [`SamplingParams`] plus the [`Rng`] that drives the draws and
/// reusable scratch buffers (sized to V on the first call, never reallocated for the same V).
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    /// Scratch (V): marks ids in `previous` so each is penalized once.
    seen: Vec<bool>,
    /// Scratch (V): logit copy for the top-k selection.
    vals: Vec<f32>,
    /// Scratch (V): candidate ids for the top-p sort.
    order: Vec<u32>,
}

impl Sampler {
    /// A sampler with validated `params`, drawing from `rng`.
    ///
    /// Errors: [`Error::Invalid`] from [`SamplingParams::validate`].
    pub fn new(params: SamplingParams, rng: Rng) -> Result<Self> {
        params.validate()?;
        Ok(Self {
            params,
            rng,
            seen: Vec::new(),
            vals: Vec::new(),
            order: Vec::new(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The generator's current state (e.g. to save it and resume the same stream later).
    pub fn rng(&self) -> &Rng {
        &self.rng
    }

    /// Picks the next token id from `logits` (V), given every id so far (`previous`: prompt and
    /// generated tokens, as HF's `input_ids`; ids ≥ V are ignored).
    ///
    /// `logits` is overwritten with the processed scores before the temperature: repetition
    /// penalty applied, tokens removed by top-k / top-p set to `-inf`, NaN set to `-inf`. Draws
    /// exactly one `rng.uniform_f64()` unless greedy. Returns an id < V; if no logit is finite
    /// and above `-inf` it returns the lowest id holding the maximum (0 for all `-inf`), and
    /// `0` for an empty `logits`.
    pub fn sample(&mut self, logits: &mut [f32], previous: &[u32]) -> u32 {
        let v = logits.len();
        if v == 0 {
            return 0;
        }
        for l in logits.iter_mut() {
            if l.is_nan() {
                *l = f32::NEG_INFINITY;
            }
        }
        if self.params.repetition_penalty != 1.0 {
            self.apply_repetition_penalty(logits, previous);
        }
        let best = argmax(logits);
        let max = logits[best];
        if self.params.is_greedy() || max == f32::INFINITY || max == f32::NEG_INFINITY {
            return best as u32;
        }
        if let Some(k) = self.params.top_k {
            self.apply_top_k(logits, k);
        }
        let inv_t = 1.0 / self.params.temperature as f64;
        if let Some(p) = self.params.top_p {
            if p < 1.0 {
                self.apply_top_p(logits, p as f64, max, inv_t);
            }
        }
        draw(logits, max, inv_t, self.rng.uniform_f64())
    }

    /// CTRL penalty on each distinct id in `previous` (HF gathers then scatters, so duplicates
    /// are penalized once). Adds nothing; overwrites `logits` (V) in place.
    fn apply_repetition_penalty(&mut self, logits: &mut [f32], previous: &[u32]) {
        let v = logits.len();
        if self.seen.len() != v {
            self.seen.clear();
            self.seen.resize(v, false);
        }
        let theta = self.params.repetition_penalty;
        for &id in previous {
            let i = id as usize;
            if i < v && !self.seen[i] {
                self.seen[i] = true;
                let l = logits[i];
                logits[i] = if l < 0.0 { l * theta } else { l / theta };
            }
        }
        for &id in previous {
            if let Some(s) = self.seen.get_mut(id as usize) {
                *s = false;
            }
        }
    }

    /// HF `TopKLogitsWarper`: removes (sets to `-inf`) every logit strictly below the k-th largest.
    fn apply_top_k(&mut self, logits: &mut [f32], k: usize) {
        let v = logits.len();
        if k >= v {
            return;
        }
        self.vals.clear();
        self.vals.extend_from_slice(logits);
        let (_, kth, _) = self
            .vals
            .select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        let threshold = *kth;
        for l in logits.iter_mut() {
            if *l < threshold {
                *l = f32::NEG_INFINITY;
            }
        }
    }

    /// HF `TopPLogitsWarper`: orders the remaining tokens by probability (descending, lowest id
    /// first on ties), keeps the shortest prefix whose cumulative probability reaches `p` (at least
    /// one token), removes the rest. `max` is the largest logit (V), `inv_t` = 1/T.
    ///
    /// Sorting all V = 50257 ids for every token costs milliseconds, so only a head of the order is
    /// sorted: the m best are found with `select_nth_unstable_by`, and m grows ×8 until their mass
    /// reaches `p`. The head of a total order is the same however it is found, so the result is
    /// exactly that of a full sort.
    fn apply_top_p(&mut self, logits: &mut [f32], p: f64, max: f32, inv_t: f64) {
        self.order.clear();
        let mut total = 0.0f64;
        for (i, &l) in logits.iter().enumerate() {
            if l > f32::NEG_INFINITY {
                self.order.push(i as u32);
                total += ((l as f64 - max as f64) * inv_t).exp();
            }
        }
        let target = p * total;
        let len = self.order.len();
        let keep = {
            let logits = &*logits;
            let most_likely_first = |a: &u32, b: &u32| {
                logits[*b as usize]
                    .total_cmp(&logits[*a as usize])
                    .then(a.cmp(b))
            };
            let mut m = len.min(64);
            loop {
                if m < len {
                    self.order.select_nth_unstable_by(m - 1, most_likely_first);
                }
                let head = &mut self.order[..m];
                head.sort_unstable_by(most_likely_first);
                let mut cum = 0.0f64;
                let reached = head.iter().position(|&id| {
                    cum += ((logits[id as usize] as f64 - max as f64) * inv_t).exp();
                    cum >= target
                });
                match reached {
                    Some(n) => break n + 1,
                    None if m == len => break len,
                    None => m = len.min(m * 8),
                }
            }
        };
        for &id in &self.order[keep..] {
            logits[id as usize] = f32::NEG_INFINITY;
        }
    }
}

/// Index of the largest value (lowest index on ties; `-inf`s and an all-`-inf` slice give 0).
fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// Inverse-CDF draw from softmax((logits - max) / T) over ids in increasing order, given one
/// uniform `u` in [0, 1). `max` is finite and the largest logit, so at least one term is 1.
fn draw(logits: &[f32], max: f32, inv_t: f64, u: f64) -> u32 {
    let total: f64 = logits
        .iter()
        .map(|&l| ((l as f64 - max as f64) * inv_t).exp())
        .sum();
    let target = u * total;
    let mut cum = 0.0f64;
    let mut last_kept = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l == f32::NEG_INFINITY {
            continue;
        }
        cum += ((l as f64 - max as f64) * inv_t).exp();
        if cum > target {
            return i as u32;
        }
        last_kept = i;
    }
    // Only reachable through rounding when u is within one ulp of 1.
    last_kept as u32
}

/// `out[i] = logits[i] - log Σ_j exp(logits[j])`, computed stably: the max is subtracted first and
/// the sum of exponentials accumulated in f64. logits, out: (V). An all-`-inf` input gives NaN.
pub fn log_softmax(logits: &[f32], out: &mut [f32]) {
    debug_assert_eq!(logits.len(), out.len());
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max as f64).exp()).sum();
    let log_z = max as f64 + sum.ln();
    for (o, &l) in out.iter_mut().zip(logits) {
        *o = (l as f64 - log_z) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(params: SamplingParams, seed: u64) -> Sampler {
        Sampler::new(params, Rng::seed(seed)).expect("valid params")
    }

    /// softmax(logits / t) in f64.
    fn softmax(logits: &[f32], t: f64) -> Vec<f64> {
        let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = logits.iter().map(|&l| ((l as f64 - m) / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| x / s).collect()
    }

    fn params(temperature: f32, top_k: Option<usize>, top_p: Option<f32>) -> SamplingParams {
        SamplingParams {
            temperature,
            top_k,
            top_p,
            repetition_penalty: 1.0,
        }
    }

    #[test]
    fn greedy_picks_argmax_lowest_id_on_ties() {
        let mut s = sampler(SamplingParams::greedy(), 0);
        assert_eq!(s.sample(&mut [0.1, 2.0, -1.0, 1.9], &[]), 1);
        assert_eq!(s.sample(&mut [0.1, 3.0, -1.0, 3.0], &[]), 1);
        assert_eq!(s.sample(&mut [f32::NAN, -5.0, -4.0], &[]), 2);
        // Greedy consumes no randomness.
        assert_eq!(s.rng(), &Rng::seed(0));
    }

    #[test]
    fn top_k_1_and_tiny_top_p_equal_greedy() {
        let mut rng = Rng::seed(3);
        let mut greedy = sampler(SamplingParams::greedy(), 0);
        let mut k1 = sampler(params(1.5, Some(1), None), 1);
        let mut p0 = sampler(params(1.5, None, Some(1e-6)), 2);
        for _ in 0..200 {
            let logits: Vec<f32> = (0..37).map(|_| rng.normal() * 3.0).collect();
            let want = greedy.sample(&mut logits.clone(), &[]);
            assert_eq!(k1.sample(&mut logits.clone(), &[]), want);
            assert_eq!(p0.sample(&mut logits.clone(), &[]), want);
        }
    }

    #[test]
    fn empirical_distribution_matches_softmax_over_temperature() {
        let logits = [1.0f32, 2.0, 0.5, -1.0];
        for t in [1.0f32, 0.7, 2.0] {
            let mut s = sampler(params(t, None, None), 42);
            let n = 20_000;
            let mut counts = [0usize; 4];
            for _ in 0..n {
                counts[s.sample(&mut logits.clone(), &[]) as usize] += 1;
            }
            let want = softmax(&logits, t as f64);
            for i in 0..4 {
                let got = counts[i] as f64 / n as f64;
                // 5 standard errors of a proportion over 20k draws (≤ 0.0035 each).
                let tol = 5.0 * (want[i] * (1.0 - want[i]) / n as f64).sqrt() + 1e-3;
                assert!(
                    (got - want[i]).abs() < tol,
                    "T={t} token {i}: got {got}, want {} ± {tol}",
                    want[i]
                );
            }
        }
    }

    #[test]
    fn top_k_truncation_hand_worked() {
        // logits [1, 4, 3, 4, 2], k = 2: the 2nd largest is 4, so ids 1 and 3 are kept.
        let mut s = sampler(params(1.0, Some(2), None), 5);
        let mut logits = [1.0f32, 4.0, 3.0, 4.0, 2.0];
        let id = s.sample(&mut logits, &[]);
        let ninf = f32::NEG_INFINITY;
        assert_eq!(logits, [ninf, 4.0, ninf, 4.0, ninf]);
        assert!(id == 1 || id == 3);
        // k = 3 with a tie at the threshold keeps all tied (HF: `scores < kth` are removed).
        let mut s = sampler(params(1.0, Some(3), None), 5);
        let mut logits = [3.0f32, 5.0, 3.0, 4.0, 1.0];
        s.sample(&mut logits, &[]);
        assert_eq!(logits, [3.0, 5.0, 3.0, 4.0, ninf]);
    }

    #[test]
    fn top_p_truncation_hand_worked() {
        // probs = [0.1, 0.5, 0.3, 0.1] (logits = ln probs). Sorted: 0.5 (id 1), 0.3 (id 2), then
        // 0.1, 0.1. p = 0.7: 0.5 < 0.7, 0.8 ≥ 0.7 → keep {1, 2}. p = 0.45 → {1}. p = 0.85 → {1, 2}
        // plus the first 0.1 on the lowest-id tie-break → {0, 1, 2}.
        let probs = [0.1f32, 0.5, 0.3, 0.1];
        let logits: Vec<f32> = probs.iter().map(|p| p.ln()).collect();
        let ninf = f32::NEG_INFINITY;
        let kept = |p: f32| {
            let mut s = sampler(params(1.0, None, Some(p)), 9);
            let mut l = logits.clone();
            s.sample(&mut l, &[]);
            l.iter().map(|&x| x > ninf).collect::<Vec<_>>()
        };
        assert_eq!(kept(0.7), [false, true, true, false]);
        assert_eq!(kept(0.45), [false, true, false, false]);
        assert_eq!(kept(0.85), [true, true, true, false]);
        assert_eq!(kept(1.0), [true, true, true, true]);
        // Temperature is applied before top-p: at T = 0.5 the probabilities are ∝ probs², i.e.
        // [1, 25, 9, 1] / 36, and 25/36 ≈ 0.694 ≥ 0.6 alone.
        let mut s = sampler(params(0.5, None, Some(0.6)), 9);
        let mut l = logits.clone();
        assert_eq!(s.sample(&mut l, &[]), 1);
        assert_eq!(l.iter().filter(|&&x| x > ninf).count(), 1);
    }

    #[test]
    fn top_p_head_selection_matches_full_sort() {
        // Reference: sort every id, keep the shortest prefix with mass >= p (here in f64 from the
        // same logits), on V = 50257 with ties and flat regions so the head grows past 64.
        let mut rng = Rng::seed(21);
        for (round, p) in [0.05f32, 0.5, 0.9, 0.99, 0.999].into_iter().enumerate() {
            let scale = if round % 2 == 0 { 0.3 } else { 3.0 };
            let logits: Vec<f32> = (0..50257)
                .map(|_| (rng.normal() * scale * 8.0).round() / 8.0)
                .collect();
            let t = 0.8f64;
            let mut ids: Vec<usize> = (0..logits.len()).collect();
            ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
            let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let w: Vec<f64> = ids
                .iter()
                .map(|&i| ((logits[i] as f64 - m) / t).exp())
                .collect();
            let total: f64 = w.iter().sum();
            let mut cum = 0.0;
            let keep = w
                .iter()
                .position(|x| {
                    cum += x;
                    cum >= p as f64 * total
                })
                .map_or(ids.len(), |n| n + 1);
            let mut want = vec![false; logits.len()];
            for &i in &ids[..keep] {
                want[i] = true;
            }
            let mut s = sampler(params(t as f32, None, Some(p)), 3);
            let mut got = logits.clone();
            s.sample(&mut got, &[]);
            let got: Vec<bool> = got.iter().map(|&x| x > f32::NEG_INFINITY).collect();
            assert_eq!(got, want, "p = {p}, scale {scale}: kept {keep}");
        }
    }

    #[test]
    fn top_k_then_top_p_renormalizes_over_kept() {
        // probs [0.4, 0.3, 0.2, 0.1], top-k 2 → renormalized [4/7, 3/7]; top-p 0.5 → only id 0
        // (4/7 ≈ 0.571 ≥ 0.5). Without top-k, 0.4 < 0.5 would keep ids 0 and 1.
        let logits: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|p| p.ln()).collect();
        let mut s = sampler(params(1.0, Some(2), Some(0.5)), 1);
        let mut l = logits.clone();
        assert_eq!(s.sample(&mut l, &[]), 0);
        assert_eq!(l.iter().filter(|x| x.is_finite()).count(), 1);
        let mut s = sampler(params(1.0, None, Some(0.5)), 1);
        let mut l = logits.clone();
        s.sample(&mut l, &[]);
        assert_eq!(l.iter().filter(|x| x.is_finite()).count(), 2);
    }

    #[test]
    fn repetition_penalty_hand_worked() {
        // torch: RepetitionPenaltyLogitsProcessor(2.0)(input_ids=[[1, 3, 3]], scores=[[2, 4, -1, -3, 0.5]])
        //   -> [[2, 2, -1, -6, 0.5]]  (id 1: 4/2; id 3: -3*2 once despite repeating)
        let mut s = sampler(
            SamplingParams {
                temperature: 0.0,
                repetition_penalty: 2.0,
                ..SamplingParams::default()
            },
            0,
        );
        let mut logits = [2.0f32, 4.0, -1.0, -3.0, 0.5];
        let id = s.sample(&mut logits, &[1, 3, 3, 99_999]);
        assert_eq!(logits, [2.0, 2.0, -1.0, -6.0, 0.5]);
        assert_eq!(
            id, 0,
            "after the penalty, 2.0 at id 0 ties 2.0 at id 1: lowest id"
        );
        // The scratch is cleared: a second call penalizes from scratch.
        let mut logits = [2.0f32, 4.0, -1.0, -3.0, 0.5];
        s.sample(&mut logits, &[3]);
        assert_eq!(logits, [2.0, 4.0, -1.0, -6.0, 0.5]);
    }

    #[test]
    fn same_seed_same_sequence_different_seed_differs() {
        let mut rng = Rng::seed(11);
        let logits: Vec<f32> = (0..1000).map(|_| rng.normal()).collect();
        let p = SamplingParams {
            temperature: 0.9,
            top_k: Some(200),
            top_p: Some(0.95),
            repetition_penalty: 1.3,
        };
        let run = |seed| {
            let mut s = sampler(p, seed);
            let mut ids = Vec::new();
            for _ in 0..100 {
                let id = s.sample(&mut logits.clone(), &ids);
                ids.push(id);
            }
            ids
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn tiny_temperature_does_not_overflow() {
        let mut s = sampler(params(1e-30, None, None), 4);
        for _ in 0..10 {
            assert_eq!(s.sample(&mut [1e30, 3e30, 2e30, -1e30], &[]), 1);
        }
    }

    #[test]
    fn invalid_params_name_the_flag() {
        let bad = [
            (params(-0.1, None, None), "--temperature"),
            (params(f32::NAN, None, None), "--temperature"),
            (params(1.0, Some(0), None), "--top-k"),
            (params(1.0, None, Some(0.0)), "--top-p"),
            (params(1.0, None, Some(1.5)), "--top-p"),
            (params(1.0, None, Some(f32::NAN)), "--top-p"),
            (
                SamplingParams {
                    repetition_penalty: 0.0,
                    ..SamplingParams::default()
                },
                "--repetition-penalty",
            ),
            (
                SamplingParams {
                    repetition_penalty: f32::INFINITY,
                    ..SamplingParams::default()
                },
                "--repetition-penalty",
            ),
        ];
        for (p, flag) in bad {
            let err = p.validate().expect_err("invalid");
            assert!(matches!(err, Error::Invalid(_)));
            assert!(err.to_string().contains(flag), "{err} lacks {flag}");
            assert!(Sampler::new(p, Rng::seed(0)).is_err());
        }
        assert!(params(0.0, Some(1), Some(1.0)).validate().is_ok());
        assert!(SamplingParams::default().validate().is_ok());
    }

    #[test]
    fn log_softmax_is_stable_and_normalized() {
        // torch: F.log_softmax(torch.tensor([1., 2., 3.]), 0) -> [-2.4076, -1.4076, -0.4076]
        let mut out = [0.0f32; 3];
        log_softmax(&[1.0, 2.0, 3.0], &mut out);
        for (o, w) in out.iter().zip([-2.407_606f32, -1.407_606, -0.407_606]) {
            assert!((o - w).abs() < 1e-5, "{o} vs {w}");
        }
        // Shift invariance with huge logits (a naive exp would overflow).
        let mut big = [0.0f32; 3];
        log_softmax(&[1001.0, 1002.0, 1003.0], &mut big);
        for (a, b) in big.iter().zip(&out) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        let mut rng = Rng::seed(8);
        let logits: Vec<f32> = (0..50257).map(|_| rng.normal() * 4.0).collect();
        let mut lp = vec![0.0f32; logits.len()];
        log_softmax(&logits, &mut lp);
        let total: f64 = lp.iter().map(|&x| (x as f64).exp()).sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        // -inf entries stay -inf and do not poison the rest.
        let mut o = [0.0f32; 2];
        log_softmax(&[f32::NEG_INFINITY, 0.0], &mut o);
        assert_eq!(o, [f32::NEG_INFINITY, 0.0]);
    }
}
