//! Training parity with PyTorch: loss, every parameter gradient, 3 AdamW steps with gradient
//! accumulation and weight decay, 6 steps of warm-up + cosine + clipping, on the tiny model.
//!
//! Fixtures: `tests/fixtures/train/` from `scripts/make_fixtures.py` (`build_train`), computed by
//! `transformers`' `GPT2LMHeadModel` in float64 from the float32 weights of `fixtures/tiny/`.
//! We compute in f32, so tolerances are relative per tensor, `‖x − x_ref‖ / ‖x_ref‖`:
//!
//! - gradients: 1e-4 (f32 rounding through 2 layers is ~1e-6; a wrong term is ≥ 1e-2);
//! - parameters after AdamW: 1e-4 relative to the parameter *and* relative to the update
//!   `θ − θ₀` (3e-4, measured ≤ 4e-5), which is what AdamW actually computed;
//! - except the key third of every `attn.c_attn.bias`, whose exact gradient is identically zero
//!   (see [`key_bias_is_rounding_noise`]): it is checked against Adam's step bound instead.

// step and element indices address several parallel arrays (ours and the fixture's)
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gpt2::params::param_specs;
use gpt2::train::{
    backward, clip_grad_norm, forward, lr_at, zero_grad, Activations, AdamW, AdamWConfig,
    LrSchedule,
};
use gpt2::Params;

/// Per-tensor relative tolerance for gradients and parameters.
const TOL: f64 = 1e-4;
/// Per-tensor relative tolerance for the AdamW update θ − θ₀.
const UPDATE_TOL: f64 = 3e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// All tensors of a safetensors file as f64, by name.
fn read_tensors(path: &Path) -> HashMap<String, Vec<f64>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view.data();
            let vals: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, vals)
        })
        .collect()
}

/// The llm.c shard: 256 × i32 LE header (magic 20240520, version 1, count), then u16 tokens.
fn read_shard(path: &Path) -> Vec<u32> {
    let bytes = std::fs::read(path).unwrap();
    let word = |i: usize| i32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    assert_eq!(word(0), 20240520, "magic");
    assert_eq!(word(1), 1, "version");
    let n = word(2) as usize;
    let toks: Vec<u32> = bytes[1024..]
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
        .collect();
    assert_eq!(toks.len(), n);
    toks
}

struct Setup {
    params: Params,
    toks: Vec<u32>,
    b: usize,
    t: usize,
    conf: serde_json::Value,
}

fn setup() -> Setup {
    let params = gpt2::checkpoint::load(&fixtures().join("tiny")).expect("tiny checkpoint");
    let dir = fixtures().join("train");
    let conf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("train_config.json")).unwrap())
            .unwrap();
    let toks = read_shard(&dir.join(conf["shard"]["file"].as_str().unwrap()));
    let b = conf["B"].as_u64().unwrap() as usize;
    let t = conf["T"].as_u64().unwrap() as usize;
    Setup {
        params,
        toks,
        b,
        t,
        conf,
    }
}

/// Micro-batch k: tokens [k·B·T, k·B·T + B·T + 1) of the shard (wrapping); inputs row b are
/// tokens k·B·T + b·T .. + T − 1, targets the same shifted by one.
fn micro_batch(toks: &[u32], k: usize, b: usize, t: usize) -> (Vec<u32>, Vec<u32>) {
    let buf: Vec<u32> = (0..b * t + 1)
        .map(|i| toks[(k * b * t + i) % toks.len()])
        .collect();
    (buf[..b * t].to_vec(), buf[1..].to_vec())
}

fn rel(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).powi(2))
        .sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Compares every tensor of `got` with `{prefix}{name}` of the fixture; returns the worst
/// (relative error, name) and panics listing every tensor over `tol`.
fn check_tensors(
    what: &str,
    got: &Params,
    fix: &HashMap<String, Vec<f64>>,
    prefix: &str,
    tol: f64,
) -> (f64, String) {
    let mut errs: Vec<(f64, String)> = param_specs(&got.cfg)
        .iter()
        .map(|s| {
            let key = format!("{prefix}{}", s.name);
            let want = fix
                .get(&key)
                .unwrap_or_else(|| panic!("fixture lacks {key}"));
            (
                rel(&got.data[s.offset..s.offset + s.numel()], want),
                s.name.clone(),
            )
        })
        .collect();
    errs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let bad: Vec<String> = errs
        .iter()
        .filter(|(e, _)| e.is_nan() || *e > tol)
        .map(|(e, n)| format!("{n}: {e:.2e}"))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} tensors over {tol:e} (worst first): {}",
        bad.len(),
        bad.join(", ")
    );
    eprintln!("{what}: worst {} {:.2e}", errs[0].1, errs[0].0);
    errs.swap_remove(0)
}

/// Compares θ − θ₀ with θ_ref − θ₀ per tensor.
fn check_updates(what: &str, got: &Params, start: &Params, fix: &HashMap<String, Vec<f64>>) {
    let mut worst = (0.0, String::new());
    for s in param_specs(&got.cfg) {
        let r = s.offset..s.offset + s.numel();
        let d: Vec<f32> = got.data[r.clone()]
            .iter()
            .zip(&start.data[r.clone()])
            .map(|(a, b)| a - b)
            .collect();
        let want: Vec<f64> = fix[&format!("param.{}", s.name)]
            .iter()
            .zip(&start.data[r])
            .map(|(a, &b)| a - b as f64)
            .collect();
        let e = rel(&d, &want);
        assert!(
            e <= UPDATE_TOL,
            "{what}: update of {} off by {e:.2e} relative",
            s.name
        );
        if e > worst.0 {
            worst = (e, s.name.clone());
        }
    }
    eprintln!("{what}: worst update {} {:.2e}", worst.1, worst.0);
}

/// The key bias `attn.c_attn.bias[C..2C]` has an identically zero gradient: it adds `q_i·b` to
/// every score of row i, and the softmax is invariant to that shift (also with the causal mask and
/// attention dropout). Its computed gradient is rounding noise — ~1e-17 in torch's float64, ~1e-9
/// in our f32 (PyTorch in f32 gives the same) — and Adam divides m by √v: torch's noise is ≪ ε so
/// it leaves the key bias unmoved, while f32 noise ≈ ε moves it by up to lr per step. So for those
/// elements we assert Adam's bound `|Δθ| ≤ Σ lr_s·(1 + |θ|·wd)` and then take the reference values,
/// so that the per-tensor checks measure everything else.
fn key_bias_is_rounding_noise(
    got: &mut Params,
    start: &Params,
    fix: &HashMap<String, Vec<f64>>,
    lr_sum: f64,
) {
    let c = got.cfg.n_embd;
    for s in param_specs(&got.cfg) {
        if !s.name.ends_with("attn.c_attn.bias") {
            continue;
        }
        let want = &fix[&format!("param.{}", s.name)];
        for j in c..2 * c {
            let i = s.offset + j;
            let moved = (got.data[i] - start.data[i]).abs() as f64;
            let bound = lr_sum * (1.0 + start.data[i].abs() as f64 * 0.1) * 1.001;
            assert!(
                moved <= bound,
                "{}[{j}] moved {moved:e} > {bound:e}",
                s.name
            );
            assert!(
                (want[j] - start.data[i] as f64).abs() < 1e-6,
                "torch moved {}[{j}]",
                s.name
            );
            got.data[i] = want[j] as f32;
        }
    }
}

fn adamw_config(section: &serde_json::Value) -> AdamWConfig {
    AdamWConfig {
        beta1: section["betas"][0].as_f64().unwrap() as f32,
        beta2: section["betas"][1].as_f64().unwrap() as f32,
        eps: section["eps"].as_f64().unwrap() as f32,
        weight_decay: section["weight_decay"].as_f64().unwrap() as f32,
    }
}

#[test]
fn loss_and_every_gradient_match_pytorch() {
    let s = setup();
    let fix = read_tensors(&fixtures().join("train/grads.safetensors"));
    let (x, y) = micro_batch(&s.toks, 0, s.b, s.t);
    let mut acts = Activations::new(&s.params.cfg, s.b, s.t);
    let loss = forward(&s.params, &mut acts, &x, &y, None);
    let want = fix["loss"][0];
    let err = ((loss as f64 - want) / want).abs();
    assert!(err < 1e-6, "loss {loss} vs torch {want}");
    eprintln!("loss: {loss} vs {want}, rel {err:.1e}");
    let mut grads = Params::zeros(&s.params.cfg);
    backward(&s.params, &mut grads, &mut acts, &x, &y, 1.0);
    check_tensors("grads", &grads, &fix, "grad.", TOL);
    // accumulation: a second backward of the same forward at scale ½ adds half again
    backward(&s.params, &mut grads, &mut acts, &x, &y, 0.5);
    let mut scaled = fix.clone();
    for v in scaled.values_mut() {
        v.iter_mut().for_each(|g| *g *= 1.5);
    }
    check_tensors("grads ×1.5", &grads, &scaled, "grad.", TOL);
}

#[test]
fn three_adamw_steps_with_accumulation_match_pytorch() {
    let s = setup();
    let sec = &s.conf["adamw3"];
    let fix = read_tensors(&fixtures().join("train/adamw3.safetensors"));
    let steps = sec["steps"].as_u64().unwrap() as usize;
    let accum = sec["accumulation"].as_u64().unwrap() as usize;
    let lr = sec["lr"].as_f64().unwrap() as f32;
    assert_eq!(sec["schedule"], "constant");
    assert!(sec["clip"].is_null());
    let ocfg = adamw_config(sec);
    let mut params = s.params.clone();
    let mut grads = Params::zeros(&params.cfg);
    let mut acts = Activations::new(&params.cfg, s.b, s.t);
    let mut opt = AdamW::new(params.data.len());
    let mut k = 0;
    let mut worst_loss = 0f64;
    for step in 0..steps {
        zero_grad(&mut grads);
        let mut total = 0.0f64;
        for _ in 0..accum {
            let (x, y) = micro_batch(&s.toks, k, s.b, s.t);
            k += 1;
            total += forward(&params, &mut acts, &x, &y, None) as f64;
            backward(&params, &mut grads, &mut acts, &x, &y, 1.0 / accum as f32);
        }
        let loss = total / accum as f64;
        let want = fix["losses"][step];
        worst_loss = worst_loss.max(((loss - want) / want).abs());
        assert!(
            ((loss - want) / want).abs() < 1e-6,
            "step {step}: loss {loss} vs {want}"
        );
        let lr_s = lr_at(&LrSchedule::Constant, lr, step, steps);
        opt.step(&mut params, &grads, lr_s, &ocfg);
    }
    assert_eq!(opt.t, steps as u64);
    eprintln!("adamw3: worst loss rel {worst_loss:.1e}");
    key_bias_is_rounding_noise(&mut params, &s.params, &fix, (steps as f64) * lr as f64);
    check_tensors("adamw3 params", &params, &fix, "param.", TOL);
    check_updates("adamw3", &params, &s.params, &fix);
}

#[test]
fn six_steps_of_warmup_cosine_and_clipping_match_pytorch() {
    let s = setup();
    let sec = &s.conf["cosine6"];
    let fix = read_tensors(&fixtures().join("train/cosine6.safetensors"));
    let steps = sec["steps"].as_u64().unwrap() as usize;
    assert_eq!(sec["accumulation"], 1);
    let lr = sec["lr"].as_f64().unwrap() as f32;
    let schedule = LrSchedule::Cosine {
        warmup: sec["warmup"].as_u64().unwrap() as usize,
        min_lr: sec["min_lr"].as_f64().unwrap() as f32,
    };
    let clip = sec["clip"].as_f64().unwrap() as f32;
    let ocfg = adamw_config(sec);
    let mut params = s.params.clone();
    let mut grads = Params::zeros(&params.cfg);
    let mut acts = Activations::new(&params.cfg, s.b, s.t);
    let mut opt = AdamW::new(params.data.len());
    let mut clipped = 0;
    let mut lr_sum = 0.0;
    let mut worst = [0f64; 3];
    for step in 0..steps {
        let (x, y) = micro_batch(&s.toks, step, s.b, s.t);
        zero_grad(&mut grads);
        let loss = forward(&params, &mut acts, &x, &y, None) as f64;
        backward(&params, &mut grads, &mut acts, &x, &y, 1.0);
        let norm = clip_grad_norm(&mut grads, clip) as f64;
        clipped += (norm > clip as f64) as usize;
        let lr_s = lr_at(&schedule, lr, step, steps);
        lr_sum += lr_s as f64;
        opt.step(&mut params, &grads, lr_s, &ocfg);
        let (wl, wn, wlr) = (
            fix["losses"][step],
            fix["grad_norms"][step],
            fix["lrs"][step],
        );
        worst[0] = worst[0].max(((loss - wl) / wl).abs());
        worst[1] = worst[1].max(((norm - wn) / wn).abs());
        worst[2] = worst[2].max(((lr_s as f64 - wlr) / wlr).abs());
        assert!(
            ((loss - wl) / wl).abs() < 1e-6,
            "step {step}: loss {loss} vs {wl}"
        );
        assert!(
            ((norm - wn) / wn).abs() < 1e-5,
            "step {step}: grad norm {norm} vs {wn}"
        );
        assert!(
            ((lr_s as f64 - wlr) / wlr).abs() < 1e-6,
            "step {step}: lr {lr_s} vs {wlr}"
        );
    }
    assert!(clipped > 0, "the fixture's clip never bit");
    eprintln!(
        "cosine6: worst rel loss {:.1e}, grad norm {:.1e}, lr {:.1e}; clipped {clipped}/{steps}",
        worst[0], worst[1], worst[2]
    );
    key_bias_is_rounding_noise(&mut params, &s.params, &fix, lr_sum);
    check_tensors("cosine6 params", &params, &fix, "param.", TOL);
    check_updates("cosine6", &params, &s.params, &fix);
}

/// CPU seconds used by this process so far (user + system, all threads; Linux, 10 ms ticks).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f[11].parse::<f64>().ok()? + f[12].parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB; 0 where unavailable.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// GPT-2 124M, B 4, T 64: time of forward, backward and AdamW per step (PyTorch on this 2-core
/// machine: 2.3 s/step). A measurement, not a timed test:
/// `cargo test --release -p gpt2 --test train_parity -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: run by hand in release mode"]
fn bench_gpt2_124m_train_step_b4_t64() {
    use std::time::Instant;
    let cfg = gpt2::Gpt2Config::gpt2();
    let (b, t) = (4, 64);
    let mut rng = gpt2::Rng::seed(1);
    let mut params = Params::init_gpt2(&cfg, &mut rng);
    let mut grads = Params::zeros(&cfg);
    let mut acts = Activations::new(&cfg, b, t);
    let mut opt = AdamW::new(params.data.len());
    let ocfg = AdamWConfig::default();
    let ids: Vec<u32> = (0..b * t + 1).map(|_| rng.below(50257) as u32).collect();
    let (x, y) = (&ids[..b * t], &ids[1..]);
    let mut drop_rng = gpt2::Rng::seed(2);
    let steps = 6;
    // wall and CPU seconds of: forward, backward, clip + AdamW, whole step (steps 1.., mean)
    let mut wall = [0f64; 4];
    let mut cpu = [0f64; 4];
    for step in 0..steps {
        let (t0, c0) = (Instant::now(), cpu_seconds());
        zero_grad(&mut grads);
        let loss = forward(&params, &mut acts, x, y, Some(&mut drop_rng));
        let (t1, c1) = (Instant::now(), cpu_seconds());
        backward(&params, &mut grads, &mut acts, x, y, 1.0);
        let (t2, c2) = (Instant::now(), cpu_seconds());
        let norm = clip_grad_norm(&mut grads, 1.0);
        opt.step(&mut params, &grads, 6e-4, &ocfg);
        let (t3, c3) = (Instant::now(), cpu_seconds());
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        let w = [ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t0, t3)];
        let c = [c1 - c0, c2 - c1, c3 - c2, c3 - c0].map(|s| s * 1e3);
        eprintln!(
            "step {step}: loss {loss:.4} norm {norm:.3} | fwd {:.0} ms, bwd {:.0} ms, \
             clip+adamw {:.0} ms, total {:.0} ms (CPU {:.0} ms)",
            w[0], w[1], w[2], w[3], c[3]
        );
        if step > 0 {
            for i in 0..4 {
                wall[i] += w[i] / (steps - 1) as f64;
                cpu[i] += c[i] / (steps - 1) as f64;
            }
        }
    }
    eprintln!(
        "mean of steps 1..{steps}: wall fwd {:.0} / bwd {:.0} / clip+adamw {:.0} / step {:.0} ms; \
         CPU fwd {:.0} / bwd {:.0} / clip+adamw {:.0} / step {:.0} ms; activations {:.0} MiB; \
         peak RSS {:.0} MiB; threads {}",
        wall[0],
        wall[1],
        wall[2],
        wall[3],
        cpu[0],
        cpu[1],
        cpu[2],
        cpu[3],
        acts.num_bytes() as f64 / (1 << 20) as f64,
        peak_rss_mib(),
        rayon::current_num_threads()
    );
}

/// GFLOP/s of [`gpt2::kernels::matmul::sgemm`] on the GEMMs of a GPT-2 124M step at B 4, T 64
/// (wall, and per CPU-second, which stays meaningful on a shared machine). Run by hand:
/// `cargo test --release -p gpt2 --test train_parity -- --ignored --nocapture bench_sgemm`.
#[test]
#[ignore = "benchmark: run by hand in release mode"]
fn bench_sgemm_gpt2_124m_shapes() {
    use gpt2::kernels::matmul::sgemm;
    use std::time::Instant;
    let (n, v, c) = (256usize, 50257usize, 768usize);
    let x = vec![0.01f32; n * c];
    let w = vec![0.02f32; v * c];
    let dl = vec![0.03f32; n * v];
    let mut out = vec![0f32; n * v];
    let mut dw = vec![0f32; v * c];
    let time = |name: &str, f: &mut dyn FnMut()| {
        f();
        let t0 = Instant::now();
        let c0 = cpu_seconds();
        for _ in 0..3 {
            f();
        }
        let s = t0.elapsed().as_secs_f64() / 3.0;
        let cs = (cpu_seconds() - c0) / 3.0;
        let gf = 2.0 * (n * v * c) as f64 / 1e9;
        eprintln!(
            "{name}: {:.1} ms, {:.1} GFLOP/s wall, {:.1} GFLOP per CPU-s",
            s * 1e3,
            gf / s,
            gf / cs
        );
    };
    time("lm a: m=N n=V, b=wteT", &mut || {
        sgemm(n, v, c, &mut out, v, 1, false, &x, c, 1, &w, 1, c)
    });
    time("lm b: m=V n=N, dst T", &mut || {
        sgemm(v, n, c, &mut out, 1, v, false, &w, c, 1, &x, 1, c)
    });
    time("dwte a: m=V n=C k=N, a=dlT", &mut || {
        sgemm(v, c, n, &mut dw, c, 1, true, &dl, 1, v, &x, c, 1)
    });
    time("dwte b: m=C n=V k=N, dst T", &mut || {
        sgemm(c, v, n, &mut dw, 1, c, true, &x, 1, c, &dl, v, 1)
    });
    for &(m, nn, k, ta, tb, name) in &[
        (n, 2304, 768, false, false, "fwd qkv"),
        (n, 3072, 768, false, false, "fwd fc"),
        (n, 768, 3072, false, false, "fwd fcproj"),
        (n, 768, 3072, false, true, "bwd dinp fc"),
        (768, 3072, n, true, false, "bwd dW fc"),
        (n, 768, 50257, false, false, "bwd dx lm"),
    ] {
        let a = vec![0.01f32; m * k];
        let b = vec![0.02f32; k * nn];
        let mut c = vec![0f32; m * nn];
        let (ars, acs) = if ta { (1, m) } else { (k, 1) };
        let (brs, bcs) = if tb { (1, k) } else { (nn, 1) };
        let mut run = || sgemm(m, nn, k, &mut c, nn, 1, true, &a, ars, acs, &b, brs, bcs);
        run();
        let t0 = Instant::now();
        let c0 = cpu_seconds();
        for _ in 0..20 {
            run();
        }
        let s = t0.elapsed().as_secs_f64() / 20.0;
        let cs = (cpu_seconds() - c0) / 20.0;
        let gf = 2.0 * (m * nn * k) as f64 / 1e9;
        eprintln!(
            "{name}: {:.1} ms, {:.1} GFLOP/s wall, {:.1} GFLOP per CPU-s",
            s * 1e3,
            gf / s,
            gf / cs
        );
    }
}
