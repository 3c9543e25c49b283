//! The training forward and backward passes of GPT-2 (llm.c `gpt2_forward` / `gpt2_backward`),
//! built from the kernels; `backward` is `forward` read bottom-up, line for line.
//!
//! forward:  encoder → \[dropout\] → L × (ln_1 → c_attn → attention \[dropout on P\] → c_proj →
//!           \[dropout\] → +res → ln_2 → c_fc → gelu → c_proj → \[dropout\] → +res) → ln_f →
//!           lm_head (x·wteᵀ) → softmax + cross-entropy (mean over the B·T targets).
//!
//! Dropout as Hugging Face's `GPT2LMHeadModel` in training mode: `embd_pdrop` on the embedding
//! sum, `attn_pdrop` on the attention probabilities, `resid_pdrop` on each residual branch after
//! its `c_proj`. Masks come from seeds drawn from the caller's RNG (see [`super::dropout`]).
//!
//! Dims legend: B batch, T time, C = n_embd, NH = n_head, HS = C/NH, V = vocab_size, N = B·T.

use crate::kernels::attention::{
    attention_backward, attention_backward_dropout, attention_forward, attention_forward_dropout,
    HeadLayout,
};
use crate::kernels::encoder::{encoder_backward, encoder_forward};
use crate::kernels::gelu::{gelu_backward, gelu_forward};
use crate::kernels::layernorm::{layernorm_backward, layernorm_forward};
use crate::kernels::matmul::{
    matmul_backward, matmul_backward_nt, matmul_forward, matmul_forward_nt,
};
use crate::kernels::residual::residual_forward;
use crate::kernels::softmax::{crossentropy_forward, softmax_crossentropy_backward};
use crate::params::Params;
use crate::rng::Rng;

use super::activations::{Activations, LayerActs};
use super::dropout::{dropout_backward, dropout_forward, Dropout};

/// Mean token cross-entropy over the B·T targets (nats), keeping in `acts` everything
/// [`backward`] needs.
///
/// - params: the model (its `cfg` must be the one `acts` was made for);
/// - inputs, targets: (B, T) token ids < V, with B, T those of `acts` (caller-checked);
/// - dropout: `Some(rng)` applies inverted dropout with p = `cfg.embd_pdrop` (after wte + wpe),
///   `cfg.attn_pdrop` (attention probabilities) and `cfg.resid_pdrop` (each residual branch, after
///   `attn.c_proj` and after `mlp.c_proj`), as GPT-2 in training mode; `1 + 3L` seeds are drawn
///   from `rng` and kept for the backward. `None` (evaluation) draws nothing and drops nothing;
///   a site with p = 0 is skipped, so p = 0 everywhere gives exactly the `None` result.
pub fn forward(
    params: &Params,
    acts: &mut Activations,
    inputs: &[u32],
    targets: &[u32],
    dropout: Option<&mut Rng>,
) -> f32 {
    forward_hidden(params, acts, inputs, dropout);
    let (c, v) = (params.cfg.n_embd, params.cfg.vocab_size);
    let n = acts.b * acts.t;
    debug_assert!(targets.len() == n && targets.iter().all(|&id| (id as usize) < v));
    debug_assert!(
        acts.logits.len() == n * v,
        "activations without logits (new_hidden)"
    );
    let Activations {
        ln_f,
        logits,
        lse,
        losses,
        ..
    } = acts;
    matmul_forward_nt(logits, ln_f, params.views().wte, n, c, v);
    crossentropy_forward(losses, lse, logits, targets, n, v);
    (losses.iter().map(|&l| l as f64).sum::<f64>() / n as f64) as f32
}

/// The trunk of [`forward`], without the lm_head and the loss: encoder → blocks → `ln_f`, whose
/// output (B, T, C) [`Activations::hidden`] then returns (the hidden states a task head reads).
/// Same arguments and dropout as [`forward`]; works on [`Activations::new_hidden`] buffers.
pub fn forward_hidden(
    params: &Params,
    acts: &mut Activations,
    inputs: &[u32],
    mut dropout: Option<&mut Rng>,
) {
    let cfg = &params.cfg;
    debug_assert!(acts.cfg == *cfg, "activations were made for another config");
    let (b, t) = (acts.b, acts.t);
    let (c, v, nh) = (cfg.n_embd, cfg.vocab_size, cfg.n_head);
    let (n, hs, eps) = (b * t, c / nh, cfg.layer_norm_epsilon);
    debug_assert!(inputs.len() == n);
    debug_assert!(inputs.iter().all(|&id| (id as usize) < v));
    let mut site = |p: f32| -> Option<Dropout> {
        let seed = dropout.as_mut()?.next_u64();
        (p > 0.0).then_some(Dropout { seed, p })
    };
    let p = params.views();
    let Activations {
        encoded,
        embd_drop,
        layers,
        ln_f,
        ln_f_mean,
        ln_f_rstd,
        proj,
        ..
    } = acts;

    encoder_forward(encoded, inputs, p.wte, p.wpe, 0, b, t, c);
    *embd_drop = site(cfg.embd_pdrop);
    dropout_forward(encoded, *embd_drop);
    for (l, w) in p.h.iter().enumerate() {
        let (done, rest) = layers.split_at_mut(l);
        let x: &[f32] = done.last().map_or(&encoded[..], |prev| &prev.resid3);
        let LayerActs {
            ln_1,
            ln_1_mean,
            ln_1_rstd,
            qkv,
            att,
            atty,
            resid2,
            ln_2,
            ln_2_mean,
            ln_2_rstd,
            fc,
            fc_gelu,
            resid3,
            attn_drop,
            resid_attn_drop,
            resid_mlp_drop,
        } = &mut rest[0];
        layernorm_forward(ln_1, ln_1_mean, ln_1_rstd, x, w.ln_1_w, w.ln_1_b, n, c, eps);
        matmul_forward(qkv, ln_1, w.c_attn_w, Some(w.c_attn_b), n, c, 3 * c);
        *attn_drop = site(cfg.attn_pdrop);
        match *attn_drop {
            None => {
                let hl = HeadLayout::qkv(t, c, hs);
                let (q, k, vv) = (&qkv[..], &qkv[c..], &qkv[2 * c..]);
                attention_forward(atty, Some(att), q, hl, k, hl, vv, hl, b, t, 0, nh, hs);
            }
            Some(d) => attention_forward_dropout(atty, att, qkv, b, t, nh, hs, |i| d.scale(i)),
        }
        matmul_forward(proj, atty, w.attn_proj_w, Some(w.attn_proj_b), n, c, c);
        *resid_attn_drop = site(cfg.resid_pdrop);
        dropout_forward(proj, *resid_attn_drop);
        residual_forward(resid2, x, proj);
        layernorm_forward(
            ln_2, ln_2_mean, ln_2_rstd, resid2, w.ln_2_w, w.ln_2_b, n, c, eps,
        );
        matmul_forward(fc, ln_2, w.c_fc_w, Some(w.c_fc_b), n, c, 4 * c);
        gelu_forward(fc_gelu, fc);
        matmul_forward(proj, fc_gelu, w.mlp_proj_w, Some(w.mlp_proj_b), n, 4 * c, c);
        *resid_mlp_drop = site(cfg.resid_pdrop);
        dropout_forward(proj, *resid_mlp_drop);
        residual_forward(resid3, resid2, proj);
    }
    let x: &[f32] = layers.last().map_or(&encoded[..], |a| &a.resid3);
    layernorm_forward(ln_f, ln_f_mean, ln_f_rstd, x, p.ln_f_w, p.ln_f_b, n, c, eps);
}

/// Adds `∂(loss_scale · loss)/∂θ` for the last [`forward`] into `grads` (same layout as `params`),
/// `loss` being the mean over the B·T targets. The trainer passes `loss_scale = B·T` (the gradient
/// of the summed loss) and divides the step's sum by its total count
/// ([`super::average_and_clip`]); `1/grad_accum` gives the same for equal micro-batches.
/// Accumulates: zero `grads` once per optimizer step (e.g. [`super::zero_grad`]).
///
/// The tied `wte` receives both the lm_head gradient and the embedding gradient. inputs and
/// targets must be those of the forward. Allocates nothing but small rayon scratch.
pub fn backward(
    params: &Params,
    grads: &mut Params,
    acts: &mut Activations,
    inputs: &[u32],
    targets: &[u32],
    loss_scale: f32,
) {
    // loss = mean of the N token losses
    let n = acts.b * acts.t;
    acts.dlosses.fill(loss_scale / n as f32);
    backward_from_dlosses(params, grads, acts, inputs, targets);
}

/// [`backward`] for the weighted loss `Σ_i weights[i] · loss_i` over the (B, T) per-token losses
/// of the last [`forward`] ([`Activations::losses`]): a weight 0 masks a target out (PyTorch's
/// label −100), `1/count` on the kept ones gives their mean. [`backward`] is the case
/// `weights[i] = loss_scale / (B·T)`. Accumulates into `grads` like [`backward`].
///
/// weights: (B, T).
pub fn backward_weighted(
    params: &Params,
    grads: &mut Params,
    acts: &mut Activations,
    inputs: &[u32],
    targets: &[u32],
    weights: &[f32],
) {
    debug_assert_eq!(weights.len(), acts.b * acts.t);
    acts.dlosses.copy_from_slice(weights);
    backward_from_dlosses(params, grads, acts, inputs, targets);
}

/// The lm_head and softmax backward from the per-token loss gradients in `acts.dlosses`, then
/// the trunk.
fn backward_from_dlosses(
    params: &Params,
    grads: &mut Params,
    acts: &mut Activations,
    inputs: &[u32],
    targets: &[u32],
) {
    let cfg = &params.cfg;
    let (n, c, v) = (acts.b * acts.t, cfg.n_embd, cfg.vocab_size);
    debug_assert!(inputs.len() == n && targets.len() == n);
    let Activations {
        ln_f,
        logits,
        lse,
        dln,
        dlogits,
        dlosses,
        ..
    } = acts;
    dlogits.fill(0.0);
    softmax_crossentropy_backward(dlogits, logits, lse, targets, dlosses, n, v);
    dln.fill(0.0);
    matmul_backward_nt(
        dln,
        grads.views_mut().wte,
        dlogits,
        ln_f,
        params.views().wte,
        n,
        c,
        v,
    );
    backward_trunk(params, grads, acts, inputs);
}

/// Adds the gradient of the trunk ([`forward_hidden`]) given `dhidden` = ∂loss/∂(ln_f output)
/// (B, T, C), the hook a task head uses (rows the head did not read are 0). Accumulates into
/// `grads` like [`backward`]; inputs must be those of the forward.
pub fn backward_hidden(
    params: &Params,
    grads: &mut Params,
    acts: &mut Activations,
    inputs: &[u32],
    dhidden: &[f32],
) {
    debug_assert_eq!(dhidden.len(), acts.dln.len());
    acts.dln.copy_from_slice(dhidden);
    backward_trunk(params, grads, acts, inputs);
}

/// Backward from ∂loss/∂(ln_f output) in `acts.dln` down to the embeddings.
fn backward_trunk(params: &Params, grads: &mut Params, acts: &mut Activations, inputs: &[u32]) {
    let cfg = &params.cfg;
    debug_assert!(acts.cfg == *cfg && grads.cfg == *cfg);
    let (b, t) = (acts.b, acts.t);
    let (c, nh) = (cfg.n_embd, cfg.n_head);
    let (n, hs) = (b * t, c / nh);
    debug_assert!(inputs.len() == n);
    let p = params.views();
    let mut g = grads.views_mut();
    let Activations {
        encoded,
        embd_drop,
        layers,
        ln_f_mean,
        ln_f_rstd,
        dresid,
        dln,
        dproj,
        datty,
        dqkv,
        datt,
        dfc,
        dfc_gelu,
        ..
    } = acts;

    let x: &[f32] = layers.last().map_or(&encoded[..], |a| &a.resid3);
    dresid.fill(0.0);
    layernorm_backward(
        dresid, g.ln_f_w, g.ln_f_b, dln, x, p.ln_f_w, ln_f_mean, ln_f_rstd, n, c,
    );
    for l in (0..cfg.n_layer).rev() {
        let (w, gw) = (&p.h[l], &mut g.h[l]);
        let la = &layers[l];
        let x: &[f32] = if l == 0 {
            encoded
        } else {
            &layers[l - 1].resid3
        };
        // resid3 = resid2 + dropout(proj): dresid passes through unchanged as d resid2
        dproj.fill(0.0);
        dropout_backward(dproj, dresid, la.resid_mlp_drop);
        dfc_gelu.fill(0.0);
        let (dw, db) = (&mut *gw.mlp_proj_w, Some(&mut *gw.mlp_proj_b));
        matmul_backward(
            dfc_gelu,
            dw,
            db,
            dproj,
            &la.fc_gelu,
            w.mlp_proj_w,
            n,
            4 * c,
            c,
        );
        dfc.fill(0.0);
        gelu_backward(dfc, &la.fc, dfc_gelu);
        dln.fill(0.0);
        matmul_backward(
            dln,
            gw.c_fc_w,
            Some(gw.c_fc_b),
            dfc,
            &la.ln_2,
            w.c_fc_w,
            n,
            c,
            4 * c,
        );
        let (m, r) = (&la.ln_2_mean, &la.ln_2_rstd);
        layernorm_backward(
            dresid, gw.ln_2_w, gw.ln_2_b, dln, &la.resid2, w.ln_2_w, m, r, n, c,
        );
        // resid2 = x + dropout(proj): dresid passes through unchanged as d x
        dproj.fill(0.0);
        dropout_backward(dproj, dresid, la.resid_attn_drop);
        datty.fill(0.0);
        let (dw, db) = (&mut *gw.attn_proj_w, Some(&mut *gw.attn_proj_b));
        matmul_backward(datty, dw, db, dproj, &la.atty, w.attn_proj_w, n, c, c);
        dqkv.fill(0.0);
        let (qkv, att) = (&la.qkv, &la.att);
        match la.attn_drop {
            None => attention_backward(dqkv, datt, datty, qkv, att, b, t, nh, hs),
            Some(d) => {
                let scale = |i: usize| d.scale(i);
                attention_backward_dropout(dqkv, datt, datty, qkv, att, b, t, nh, hs, scale);
            }
        }
        dln.fill(0.0);
        let (dw, db) = (&mut *gw.c_attn_w, Some(&mut *gw.c_attn_b));
        matmul_backward(dln, dw, db, dqkv, &la.ln_1, w.c_attn_w, n, c, 3 * c);
        let (m, r) = (&la.ln_1_mean, &la.ln_1_rstd);
        layernorm_backward(dresid, gw.ln_1_w, gw.ln_1_b, dln, x, w.ln_1_w, m, r, n, c);
    }
    // encoded = dropout(wte[inputs] + wpe[0..T])
    dproj.fill(0.0);
    dropout_backward(dproj, dresid, *embd_drop);
    encoder_backward(g.wte, g.wpe, dproj, inputs, b, t, c);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Gpt2Config;
    use crate::params::param_specs;

    /// L 2, NH 3, C 12, V 37, maxT 7; batches of B 2 × T 5.
    fn tiny(pdrop: f32) -> (Params, Vec<u32>, Vec<u32>) {
        let cfg = Gpt2Config {
            n_layer: 2,
            n_head: 3,
            n_embd: 12,
            n_positions: 7,
            vocab_size: 37,
            embd_pdrop: pdrop,
            attn_pdrop: pdrop,
            resid_pdrop: pdrop,
            ..Gpt2Config::gpt2()
        };
        let mut rng = Rng::seed(5);
        let mut params = Params::init_gpt2(&cfg, &mut rng);
        // larger than GPT-2's 0.02 init and non-trivial LayerNorms, so every path matters
        for x in params.data.iter_mut() {
            *x = *x * 3.0 + 0.1 * rng.normal();
        }
        let ids: Vec<u32> = (0..11).map(|_| rng.below(37) as u32).collect();
        (params, ids[..10].to_vec(), ids[1..].to_vec())
    }

    fn run(params: &Params, x: &[u32], y: &[u32], seed: Option<u64>) -> (f32, Params) {
        let mut acts = Activations::new(&params.cfg, 2, 5);
        let mut rng = seed.map(Rng::seed);
        let loss = forward(params, &mut acts, x, y, rng.as_mut());
        let mut grads = Params::zeros(&params.cfg);
        backward(params, &mut grads, &mut acts, x, y, 1.0);
        (loss, grads)
    }

    /// For each tensor, the directional derivative along its own gradient, by central differences
    /// of the f32 forward (same dropout seed, so the same masks), against ‖g_tensor‖ (measured
    /// ≤ 1e-3 relative with h 3e-3; a missing mask or term gives ≥ 1e-2).
    fn check_directional(pdrop: f32) {
        let (params, x, y) = tiny(pdrop);
        let seed = Some(77);
        let (_, grads) = run(&params, &x, &y, seed);
        for s in param_specs(&params.cfg) {
            let r = s.offset..s.offset + s.numel();
            let g = &grads.data[r.clone()];
            let norm = g.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
            if s.name == "wpe.weight" {
                // rows ≥ T get no gradient; the rest must
                assert!(g[5 * 12..].iter().all(|&v| v == 0.0));
            }
            assert!(norm > 1e-4, "{}: gradient norm {norm}", s.name);
            let loss_at = |sign: f64, h: f64| {
                let mut p = params.clone();
                for (w, &gv) in p.data[r.clone()].iter_mut().zip(g) {
                    *w += (sign * h * gv as f64 / norm) as f32;
                }
                run(&p, &x, &y, seed).0 as f64
            };
            let h = 3e-3;
            let fd = (loss_at(1.0, h) - loss_at(-1.0, h)) / (2.0 * h);
            let err = (fd - norm).abs() / norm;
            assert!(
                err < 5e-3,
                "p {pdrop} {}: fd {fd} vs ‖g‖ {norm} ({err:.1e})",
                s.name
            );
        }
    }

    #[test]
    fn gradients_match_directional_finite_differences_without_dropout() {
        check_directional(0.0);
    }

    #[test]
    fn gradients_match_directional_finite_differences_with_dropout() {
        check_directional(0.2);
    }

    #[test]
    fn dropout_is_seeded_and_p0_equals_eval() {
        let (params, x, y) = tiny(0.3);
        let (l1, g1) = run(&params, &x, &y, Some(1));
        let (l1b, g1b) = run(&params, &x, &y, Some(1));
        let (l2, g2) = run(&params, &x, &y, Some(2));
        let (le, _) = run(&params, &x, &y, None);
        assert_eq!(l1, l1b);
        assert_eq!(g1.data, g1b.data);
        assert!(l1 != l2 && g1.data != g2.data);
        assert!(l1 != le && l2 != le);
        // p = 0 on every site with an RNG is exactly evaluation mode
        let (mut p0, x, y) = tiny(0.0);
        let (la, ga) = run(&p0, &x, &y, Some(3));
        let (lb, gb) = run(&p0, &x, &y, None);
        assert_eq!(la, lb);
        assert_eq!(ga.data, gb.data);
        // and a p > 0 model in eval mode is the same model
        p0.cfg.embd_pdrop = 0.3;
        assert_eq!(run(&p0, &x, &y, None).0, lb);
    }

    #[test]
    fn embedding_dropout_drops_p_and_keeps_the_expected_value() {
        let (mut params, x, y) = tiny(0.0);
        params.cfg.embd_pdrop = 0.5;
        let mut acts = Activations::new(&params.cfg, 2, 5);
        forward(&params, &mut acts, &x, &y, None);
        let clean = acts.encoded.clone();
        let mut sum = vec![0f64; clean.len()];
        let (mut zeros, runs) = (0usize, 400);
        let mut rng = Rng::seed(11);
        for _ in 0..runs {
            forward(&params, &mut acts, &x, &y, Some(&mut rng));
            for (s, &e) in sum.iter_mut().zip(&acts.encoded) {
                *s += e as f64;
            }
            zeros += acts.encoded.iter().filter(|&&e| e == 0.0).count();
        }
        let rate = zeros as f64 / (runs * clean.len()) as f64;
        assert!((rate - 0.5).abs() < 0.02, "drop rate {rate}");
        // E[dropout(x)] = x: the mean over 400 masks is within a few standard errors
        let num: f64 = sum
            .iter()
            .zip(&clean)
            .map(|(s, &c)| (s / runs as f64 - c as f64).powi(2))
            .sum();
        let den: f64 = clean.iter().map(|&c| (c as f64).powi(2)).sum();
        let rel = (num / den).sqrt();
        assert!(rel < 0.1, "mean of dropped embeddings off by {rel}");
    }
}
