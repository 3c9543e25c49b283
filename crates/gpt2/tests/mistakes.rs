//! The common mistakes of GPT-2 write-ups (docs/common-mistakes.md), each caught by a test.
//!
//! The harness is a plain f64 GPT-2 forward written here from the paper, [`reference`], that can
//! be switched to one [`Mistake`] at a time. Without a mistake it must match the `transformers`
//! fixture (`tests/fixtures/tiny`, float64 log-probabilities) within [`TOL`], as our [`Model`]
//! must; with each mistake the log-probabilities must move by more than [`TOL`] — so every
//! mistake would fail `tests/parity.rs` had we made it. Properties that a parity check on one
//! input could miss (causality, positions in the KV cache, no dropout at inference, the tied
//! lm_head's gradient, the GELU form, the LayerNorm axis) get a focused test on our own code.
//!
//! Fixture: L 2, NH 3, C 48 (HS 16), V 1000, maxT 37; two random rows of 37 tokens.

use std::path::PathBuf;
use std::sync::OnceLock;

use gpt2::kernels::gelu::gelu_forward;
use gpt2::kernels::layernorm::layernorm_forward;
use gpt2::train::{backward, forward, Activations};
use gpt2::{Gpt2Config, KvCache, Logits, Model, Params, Rng};
use safetensors::SafeTensors;

/// Parity tolerance on log-probabilities, as `tests/parity.rs`.
const TOL: f64 = 1e-4;

/// One mistake at a time (or none) in the reference forward.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mistake {
    None,
    /// LayerNorm written as `mean(x) − mean(x)/std(x)` (then γ, β).
    LayerNormMeanMinusMeanOverStd,
    /// LayerNorm with the unbiased variance (÷ (C − 1), `torch.var`'s default).
    LayerNormUnbiasedVariance,
    /// LayerNorm statistics over the time axis instead of the channels.
    LayerNormOverTime,
    /// ReLU instead of GELU in the MLP.
    Relu,
    /// The exact (erf) GELU instead of GPT-2's tanh form.
    GeluErf,
    /// Attention scores scaled by 1/HS instead of 1/√HS.
    ScaleByD,
    /// No causal mask: every position attends to the future too.
    NoCausalMask,
    /// Post-norm blocks `x ← ln(x + f(x))` (the 2017 Transformer, GPT-1) instead of pre-norm.
    PostNorm,
    /// Conv1D weights (in, out) read as `nn.Linear` weights (out, in), i.e. not transposed.
    NoConv1dTranspose,
    /// An lm_head of its own (freshly initialized) instead of the tied `wte`.
    UntiedLmHead,
    /// Dropout (p = 0.1) left on at inference.
    DropoutAtInference,
    /// Positions restarting at 0 for every decoded token after a 5-token prompt (KV cache).
    PositionsRestartInCache,
    /// Heads split as (HS, NH) instead of (NH, HS): head h reads channels h, h + NH, ...
    WrongHeadSplit,
    /// The final LayerNorm `ln_f` left out.
    NoFinalLayerNorm,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The tiny model, its two reference rows of tokens and their float64 log-probabilities (T, V).
struct Fixture {
    params: Params,
    rows: Vec<Vec<u32>>,
    logprobs: Vec<Vec<f32>>,
}

fn tiny() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let params = gpt2::checkpoint::load(&fixture("tiny")).expect("tiny fixture loads");
        let bytes = std::fs::read(fixture("tiny").join("reference.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tok = st.tensor("tokens").unwrap();
        let (b, t) = (tok.shape()[0], tok.shape()[1]);
        let ids: Vec<u32> = tok
            .data()
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as u32)
            .collect();
        let lp: Vec<f32> = st
            .tensor("logprobs")
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let v = params.cfg.vocab_size;
        Fixture {
            rows: ids.chunks(t).map(|r| r.to_vec()).collect(),
            logprobs: lp.chunks(t * v).map(|r| r.to_vec()).take(b).collect(),
            params,
        }
    })
}

/// Largest |a − b| over two equal-length slices.
fn max_diff(a: &[f64], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, &y)| (x - y as f64).abs())
        .fold(0.0, f64::max)
}

fn to64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Row-wise LayerNorm of x (T, C) with γ, β, ε = cfg's, or a mistaken variant.
fn layernorm(x: &[f64], g: &[f32], b: &[f32], t: usize, c: usize, m: Mistake) -> Vec<f64> {
    let eps = 1e-5;
    let mut out = vec![0.0; t * c];
    if m == Mistake::LayerNormOverTime {
        for j in 0..c {
            let col: Vec<f64> = (0..t).map(|i| x[i * c + j]).collect();
            let mu = col.iter().sum::<f64>() / t as f64;
            let var = col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / t as f64;
            for i in 0..t {
                out[i * c + j] =
                    (x[i * c + j] - mu) / (var + eps).sqrt() * g[j] as f64 + b[j] as f64;
            }
        }
        return out;
    }
    for i in 0..t {
        let row = &x[i * c..(i + 1) * c];
        let mu = row.iter().sum::<f64>() / c as f64;
        let ss = row.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>();
        let var = if m == Mistake::LayerNormUnbiasedVariance {
            ss / (c - 1) as f64
        } else {
            ss / c as f64
        };
        for j in 0..c {
            let xhat = if m == Mistake::LayerNormMeanMinusMeanOverStd {
                mu - mu / var.sqrt()
            } else {
                (row[j] - mu) / (var + eps).sqrt()
            };
            out[i * c + j] = xhat * g[j] as f64 + b[j] as f64;
        }
    }
    out
}

/// y (T, OC) = x (T, IC) · W + bias with W stored (IC, OC) as GPT-2's Conv1D — or, for
/// [`Mistake::NoConv1dTranspose`], the same numbers read as an `nn.Linear` weight (OC, IC).
fn conv1d(
    x: &[f64],
    w: &[f32],
    bias: &[f32],
    t: usize,
    ic: usize,
    oc: usize,
    m: Mistake,
) -> Vec<f64> {
    let mut y = vec![0.0; t * oc];
    for i in 0..t {
        for o in 0..oc {
            let mut acc = bias[o] as f64;
            for k in 0..ic {
                let wv = if m == Mistake::NoConv1dTranspose {
                    w[o * ic + k]
                } else {
                    w[k * oc + o]
                };
                acc += x[i * ic + k] * wv as f64;
            }
            y[i * oc + o] = acc;
        }
    }
    y
}

/// erf by its Taylor series for |x| ≤ 3 (to ~1e-15) and the asymptotic series of erfc beyond
/// (error < 1e-7); Rust's standard library has no erf.
fn erf(x: f64) -> f64 {
    if x.abs() > 3.0 {
        // erfc(x) ≈ e^{−x²}/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶)), |x| > 3: error < 1e-7
        let a = x.abs();
        let a2 = a * a;
        let tail = (-a2).exp() / (a * std::f64::consts::PI.sqrt())
            * (1.0 - 0.5 / a2 + 0.75 / (a2 * a2) - 1.875 / (a2 * a2 * a2));
        return x.signum() * (1.0 - tail);
    }
    // erf(x) = 2/√π Σ (−1)^n x^{2n+1} / (n! (2n+1))
    let mut sum = 0.0;
    let mut term = x; // (−1)^n x^{2n+1} / n!
    for n in 0..200 {
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
        term *= -x * x / (n + 1) as f64;
    }
    2.0 / std::f64::consts::PI.sqrt() * sum
}

fn gelu_tanh(x: f64) -> f64 {
    let s = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (s * (x + 0.044715 * x * x * x)).tanh())
}

fn gelu_erf(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// Inverted dropout with p = 0.1 from a fixed stream (the mistake: leaving it on at inference).
fn dropout(x: &mut [f64], rng: &mut Rng) {
    for v in x.iter_mut() {
        *v = if rng.uniform() < 0.1 { 0.0 } else { *v / 0.9 };
    }
}

/// GPT-2's forward in f64, straight from the paper (pre-LN blocks, causal attention with 1/√HS,
/// GELU-tanh MLP of width 4C, ln_f, tied lm_head), or with one [`Mistake`]. Returns the
/// log-probabilities (T, V).
fn reference(p: &Params, ids: &[u32], m: Mistake) -> Vec<f64> {
    let cfg = &p.cfg;
    let (t, c, nh, v) = (ids.len(), cfg.n_embd, cfg.n_head, cfg.vocab_size);
    let hs = c / nh;
    let w = p.views();
    let mut rng = Rng::seed(7);
    // embeddings: x[i] = wte[ids[i]] + wpe[pos(i)]
    let mut x = vec![0.0; t * c];
    for (i, &id) in ids.iter().enumerate() {
        let pos = if m == Mistake::PositionsRestartInCache && i >= 5 {
            0
        } else {
            i
        };
        for j in 0..c {
            x[i * c + j] = w.wte[id as usize * c + j] as f64 + w.wpe[pos * c + j] as f64;
        }
    }
    if m == Mistake::DropoutAtInference {
        dropout(&mut x, &mut rng);
    }
    for l in &w.h {
        // attention sub-block
        let a_in = if m == Mistake::PostNorm {
            x.clone()
        } else {
            layernorm(&x, l.ln_1_w, l.ln_1_b, t, c, m)
        };
        let qkv = conv1d(&a_in, l.c_attn_w, l.c_attn_b, t, c, 3 * c, m);
        // channel of head h, dimension d
        let ch = |h: usize, d: usize| {
            if m == Mistake::WrongHeadSplit {
                d * nh + h
            } else {
                h * hs + d
            }
        };
        let scale = if m == Mistake::ScaleByD {
            1.0 / hs as f64
        } else {
            1.0 / (hs as f64).sqrt()
        };
        let mut y = vec![0.0; t * c];
        for h in 0..nh {
            for i in 0..t {
                let keys = if m == Mistake::NoCausalMask { t } else { i + 1 };
                let mut s: Vec<f64> = (0..keys)
                    .map(|j| {
                        (0..hs)
                            .map(|d| qkv[i * 3 * c + ch(h, d)] * qkv[j * 3 * c + c + ch(h, d)])
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s
                    .iter_mut()
                    .map(|e| {
                        *e = (*e - mx).exp();
                        *e
                    })
                    .sum();
                for e in s.iter_mut() {
                    *e /= z;
                }
                if m == Mistake::DropoutAtInference {
                    dropout(&mut s, &mut rng);
                }
                for d in 0..hs {
                    y[i * c + ch(h, d)] = (0..keys)
                        .map(|j| s[j] * qkv[j * 3 * c + 2 * c + ch(h, d)])
                        .sum();
                }
            }
        }
        let mut proj = conv1d(&y, l.attn_proj_w, l.attn_proj_b, t, c, c, m);
        if m == Mistake::DropoutAtInference {
            dropout(&mut proj, &mut rng);
        }
        for (a, b) in x.iter_mut().zip(&proj) {
            *a += b;
        }
        if m == Mistake::PostNorm {
            x = layernorm(&x, l.ln_1_w, l.ln_1_b, t, c, m);
        }
        // MLP sub-block
        let m_in = if m == Mistake::PostNorm {
            x.clone()
        } else {
            layernorm(&x, l.ln_2_w, l.ln_2_b, t, c, m)
        };
        let mut fc = conv1d(&m_in, l.c_fc_w, l.c_fc_b, t, c, 4 * c, m);
        for f in fc.iter_mut() {
            *f = match m {
                Mistake::Relu => f.max(0.0),
                Mistake::GeluErf => gelu_erf(*f),
                _ => gelu_tanh(*f),
            };
        }
        let mut proj = conv1d(&fc, l.mlp_proj_w, l.mlp_proj_b, t, 4 * c, c, m);
        if m == Mistake::DropoutAtInference {
            dropout(&mut proj, &mut rng);
        }
        for (a, b) in x.iter_mut().zip(&proj) {
            *a += b;
        }
        if m == Mistake::PostNorm {
            x = layernorm(&x, l.ln_2_w, l.ln_2_b, t, c, m);
        }
    }
    let hfin = if m == Mistake::NoFinalLayerNorm {
        x
    } else {
        layernorm(&x, w.ln_f_w, w.ln_f_b, t, c, m)
    };
    // lm_head: tied to wte (V, C), or a fresh N(0, 0.02) matrix when untied
    let head: Vec<f32> = if m == Mistake::UntiedLmHead {
        let mut r = Rng::seed(11);
        (0..v * c).map(|_| 0.02 * r.normal()).collect()
    } else {
        w.wte.to_vec()
    };
    let mut out = vec![0.0; t * v];
    for i in 0..t {
        let row = &mut out[i * v..(i + 1) * v];
        for (k, o) in row.iter_mut().enumerate() {
            *o = (0..c)
                .map(|j| hfin[i * c + j] * head[k * c + j] as f64)
                .sum();
        }
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lz = mx + row.iter().map(|l| (l - mx).exp()).sum::<f64>().ln();
        for o in row.iter_mut() {
            *o -= lz;
        }
    }
    out
}

/// Max |Δ log-probability| of the reference with mistake `m` against the fixture, over both rows.
fn deviation(m: Mistake) -> f64 {
    let f = tiny();
    f.rows
        .iter()
        .zip(&f.logprobs)
        .map(|(ids, want)| max_diff(&reference(&f.params, ids, m), want))
        .fold(0.0, f64::max)
}

/// Our [`Model`] against the fixture (the real parity check; computed once).
fn our_deviation() -> f64 {
    static D: OnceLock<f64> = OnceLock::new();
    *D.get_or_init(|| {
        let f = tiny();
        let model = Model::new(f.params.clone());
        let v = f.params.cfg.vocab_size;
        let mut worst = 0f64;
        for (ids, want) in f.rows.iter().zip(&f.logprobs) {
            let logits = model.logits(ids).unwrap();
            let mut lp = vec![0f32; logits.len()];
            gpt2::kernels::softmax::log_softmax_forward(&mut lp, &logits, v);
            worst = worst.max(max_diff(&to64(&lp), want));
        }
        worst
    })
}

/// The check behind every `mistake_*` test: our model matches `transformers`, the harness
/// without a mistake matches too, and the mistake moves the output by more than the tolerance.
fn assert_caught(m: Mistake) {
    let ours = our_deviation();
    assert!(ours < TOL, "our model vs transformers: {ours:e}");
    let clean = deviation(Mistake::None);
    assert!(
        clean < TOL,
        "the f64 reference itself vs transformers: {clean:e}"
    );
    let d = deviation(m);
    assert!(
        d > TOL,
        "{m:?} moves log-probabilities by only {d:e}: parity would not catch it"
    );
    eprintln!("{m:?}: max |Δ log p| = {d:.3e} (tolerance {TOL:e})");
}

#[test]
fn reference_without_mistakes_matches_transformers() {
    let d = deviation(Mistake::None);
    assert!(d < TOL, "{d:e}");
    assert!(our_deviation() < TOL);
}

#[test]
fn mistake_layernorm_mean_minus_mean_over_std() {
    assert_caught(Mistake::LayerNormMeanMinusMeanOverStd);
}

#[test]
fn mistake_layernorm_unbiased_variance() {
    assert_caught(Mistake::LayerNormUnbiasedVariance);
}

#[test]
fn mistake_layernorm_over_the_time_axis() {
    assert_caught(Mistake::LayerNormOverTime);
}

#[test]
fn mistake_relu_instead_of_gelu_tanh() {
    assert_caught(Mistake::Relu);
}

#[test]
fn mistake_erf_gelu_instead_of_tanh_gelu() {
    assert_caught(Mistake::GeluErf);
}

#[test]
fn mistake_scale_by_one_over_d_instead_of_one_over_sqrt_d() {
    assert_caught(Mistake::ScaleByD);
}

#[test]
fn mistake_no_causal_mask() {
    assert_caught(Mistake::NoCausalMask);
}

#[test]
fn mistake_post_norm_instead_of_pre_norm() {
    assert_caught(Mistake::PostNorm);
}

#[test]
fn mistake_conv1d_weights_not_transposed() {
    assert_caught(Mistake::NoConv1dTranspose);
}

#[test]
fn mistake_untied_lm_head() {
    assert_caught(Mistake::UntiedLmHead);
}

#[test]
fn mistake_dropout_at_inference() {
    assert_caught(Mistake::DropoutAtInference);
}

#[test]
fn mistake_positions_restart_in_the_kv_cache() {
    assert_caught(Mistake::PositionsRestartInCache);
}

#[test]
fn mistake_heads_split_along_the_wrong_axis() {
    assert_caught(Mistake::WrongHeadSplit);
}

#[test]
fn mistake_no_final_layernorm() {
    assert_caught(Mistake::NoFinalLayerNorm);
}

// ---- focused tests on our own code ----------------------------------------------------------

/// Causal mask: changing token k leaves the logits of positions < k bit-for-bit unchanged, and
/// changes position k's.
#[test]
fn our_model_is_causal() {
    let f = tiny();
    let model = Model::new(f.params.clone());
    let v = f.params.cfg.vocab_size;
    let ids = f.rows[0].clone();
    let base = model.logits(&ids).unwrap();
    for k in [1, 17, 36] {
        let mut changed = ids.clone();
        changed[k] = (changed[k] + 1) % v as u32;
        let got = model.logits(&changed).unwrap();
        assert_eq!(
            got[..k * v],
            base[..k * v],
            "a change at {k} leaked backwards"
        );
        assert_ne!(got[k * v..(k + 1) * v], base[k * v..(k + 1) * v]);
    }
}

/// KV cache: a 5-token prefill then one token at a time (positions continue at the cache's
/// length) gives the full-sequence logits; restarting positions would not (see
/// [`mistake_positions_restart_in_the_kv_cache`]).
#[test]
fn our_kv_cache_continues_positions() {
    let f = tiny();
    let model = Model::new(f.params.clone());
    let ids = &f.rows[1];
    let full = model.logits(ids).unwrap();
    let mut cache = KvCache::new(model.config(), ids.len());
    let mut inc = model
        .forward(&mut [&mut cache], &[&ids[..5]], Logits::All)
        .unwrap();
    for p in 5..ids.len() {
        assert_eq!(cache.len(), p, "the cache holds the positions so far");
        inc.extend(
            model
                .forward(&mut [&mut cache], &[&ids[p..p + 1]], Logits::All)
                .unwrap(),
        );
    }
    let d = inc
        .iter()
        .zip(&full)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d < 1e-4, "incremental vs full logits: {d}");
}

/// No dropout at inference: a model whose config asks for dropout 0.5 everywhere gives exactly
/// the same loss as one without, in [`Model`] and in the training forward in evaluation mode.
#[test]
fn our_inference_has_no_dropout() {
    let f = tiny();
    let mut noisy = f.params.clone();
    noisy.cfg.embd_pdrop = 0.5;
    noisy.cfg.attn_pdrop = 0.5;
    noisy.cfg.resid_pdrop = 0.5;
    let ids = &f.rows[0];
    assert_eq!(
        Model::new(noisy.clone()).logits(ids).unwrap(),
        Model::new(f.params.clone()).logits(ids).unwrap()
    );
    let (x, y) = (&ids[..36], &ids[1..]);
    let loss = |p: &Params| {
        let mut acts = Activations::new(&p.cfg, 1, 36);
        forward(p, &mut acts, x, y, None)
    };
    assert_eq!(loss(&noisy), loss(&f.params));
    // ...while in training mode (an RNG given) it does drop
    let mut acts = Activations::new(&noisy.cfg, 1, 36);
    let train_loss = forward(&noisy, &mut acts, x, y, Some(&mut Rng::seed(1)));
    assert_ne!(train_loss, loss(&noisy));
}

/// Tied lm_head: `wte` gets the lm_head's gradient too, so the row of a token that never
/// appears in the inputs still has a non-zero gradient (an untied head would leave it 0).
#[test]
fn our_lm_head_is_tied_to_wte_in_the_gradient() {
    let f = tiny();
    let p = &f.params;
    let c = p.cfg.n_embd;
    let ids = &f.rows[0];
    let (x, y) = (&ids[..36], &ids[1..]);
    let unused = (0..p.cfg.vocab_size as u32)
        .find(|i| !x.contains(i))
        .unwrap();
    let mut acts = Activations::new(&p.cfg, 1, 36);
    forward(p, &mut acts, x, y, None);
    let mut grads = Params::zeros(&p.cfg);
    backward(p, &mut grads, &mut acts, x, y, 1.0);
    let row = &grads.views().wte[unused as usize * c..(unused as usize + 1) * c];
    let norm: f32 = row.iter().map(|g| g * g).sum::<f32>().sqrt();
    assert!(
        norm > 1e-6,
        "wte row {unused} (not an input) has gradient norm {norm}"
    );
}

/// GELU: our kernel is the tanh form to 1e-6, and differs from the erf form and from ReLU by far
/// more than that where GPT-2's activations live.
#[test]
fn our_gelu_is_the_tanh_form() {
    let xs: Vec<f32> = (0..=800).map(|i| -4.0 + i as f32 * 0.01).collect();
    let mut out = vec![0f32; xs.len()];
    gelu_forward(&mut out, &xs);
    let (mut to_tanh, mut to_erf, mut to_relu) = (0f64, 0f64, 0f64);
    for (&x, &y) in xs.iter().zip(&out) {
        let (x, y) = (x as f64, y as f64);
        to_tanh = to_tanh.max((y - gelu_tanh(x)).abs());
        to_erf = to_erf.max((y - gelu_erf(x)).abs());
        to_relu = to_relu.max((y - x.max(0.0)).abs());
    }
    assert!(to_tanh < 1e-6, "vs tanh form: {to_tanh:e}");
    assert!(to_erf > 1e-4, "vs erf form: {to_erf:e}");
    assert!(to_relu > 0.1, "vs ReLU: {to_relu:e}");
}

/// LayerNorm axis: our kernel normalizes each row (token) over its C channels — with γ = 1 and
/// β = 0 every output row has mean 0 and variance 1 — and rows do not influence each other.
#[test]
fn our_layernorm_normalizes_each_token_over_its_channels() {
    let (n, c) = (5, 48);
    let mut rng = Rng::seed(3);
    let x: Vec<f32> = (0..n * c)
        .map(|i| 3.0 * rng.normal() + (i / c) as f32)
        .collect();
    let (g, b) = (vec![1f32; c], vec![0f32; c]);
    let run = |x: &[f32]| {
        let (mut out, mut mean, mut rstd) = (vec![0f32; n * c], vec![0f32; n], vec![0f32; n]);
        layernorm_forward(&mut out, &mut mean, &mut rstd, x, &g, &b, n, c, 1e-5);
        out
    };
    let out = run(&x);
    for row in out.chunks(c) {
        let mu = row.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
        let var = row.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / c as f64;
        assert!(
            mu.abs() < 1e-6 && (var - 1.0).abs() < 1e-4,
            "mean {mu} var {var}"
        );
    }
    let mut x2 = x.clone();
    for v in &mut x2[2 * c..3 * c] {
        *v *= 10.0;
    }
    let out2 = run(&x2);
    assert_eq!(out2[..2 * c], out[..2 * c]);
    assert_eq!(out2[3 * c..], out[3 * c..]);
}

/// The presets: GPT-2 small's published shapes (a d×d feed-forward or another width would not
/// load its checkpoint: see `tests/checkpoint.rs`, `a_misshapen_tensor_names_the_key_and_both_shapes`).
#[test]
fn our_mlp_is_four_times_wider_than_the_residual_stream() {
    let cfg = Gpt2Config::gpt2();
    let specs = gpt2::params::param_specs(&cfg);
    let shape = |name: &str| specs.iter().find(|s| s.name == name).unwrap().shape.clone();
    assert_eq!(shape("h.0.mlp.c_fc.weight"), vec![768, 3072]);
    assert_eq!(shape("h.0.mlp.c_proj.weight"), vec![3072, 768]);
    assert_eq!(shape("h.0.attn.c_attn.weight"), vec![768, 2304]);
}
