//! `gpt2 bench`: prefill and decode speed (or training step time) and peak memory.

use std::io::Write;
use std::time::Instant;

use anyhow::bail;
use gpt2::{Gpt2Config, KvCache, Logits, Model, Params, Rng};
use serde_json::json;

use crate::common::{current_rss_mib, load_model, peak_rss_mib};

/// Arguments of `gpt2 bench`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gpt2 bench --preset gpt2                      # decode, batch 1\n  gpt2 bench --preset gpt2 --prompt-len 512 --new-tokens 16\n  gpt2 bench --train --preset gpt2 --batch 4 --seq-len 64"
)]
pub struct Args {
    /// Random weights of a preset shape: gpt2, gpt2-medium, gpt2-large, gpt2-xl.
    #[arg(long, conflicts_with = "model")]
    preset: Option<String>,
    /// A real model (folder, hub id or .gguf file) instead of random weights.
    #[arg(long)]
    model: Option<String>,
    /// Storage type of the matrices: f32, f16, bf16, q8_0, q4_0 (random weights quantized in
    /// memory as `gpt2 quantize` would; with --model, the model is converted the same way).
    #[arg(long, value_parser = crate::cmd::quantize::parse_qtype)]
    dtype: Option<gpt2::kernels::quant::QType>,
    /// Prompt tokens (prefill).
    #[arg(long, default_value_t = 16)]
    prompt_len: usize,
    /// Tokens to decode after the prompt.
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// Sequences decoded together.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Repeats; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Benchmark a training step (forward, backward, AdamW) instead.
    #[arg(long)]
    train: bool,
    /// Sequence length of a training step.
    #[arg(long, default_value_t = 64)]
    seq_len: usize,
    /// Print {"prefill_tok_s","decode_tok_s","peak_rss_mib"} (or {"train_ms_per_step","peak_rss_mib"}).
    #[arg(long)]
    json: bool,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Runs `gpt2 bench`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.repeats == 0 || args.batch == 0 {
        bail!("--repeats and --batch must be at least 1");
    }
    if args.train {
        let preset = args.preset.as_deref().unwrap_or("gpt2");
        let (ms, rss) =
            crate::cmd::train::bench_train(preset, args.batch, args.seq_len, args.repeats.max(3))?;
        if args.json {
            println!("{}", json!({"train_ms_per_step": ms, "peak_rss_mib": rss}));
        } else {
            println!("train step ({preset}, B={}, T={}): {ms:.0} ms/step (median), peak RSS {rss:.0} MiB, {} threads", args.batch, args.seq_len, rayon::current_num_threads());
        }
        return Ok(());
    }
    let t_load = Instant::now();
    let mut model = match (&args.preset, &args.model) {
        (_, Some(m)) => load_model(Some(m))?,
        (p, None) => {
            let cfg = Gpt2Config::preset(p.as_deref().unwrap_or("gpt2"))?;
            Model::new(Params::init_gpt2(&cfg, &mut Rng::seed(0)))
        }
    };
    if let Some(t) = args.dtype {
        model = Model::from_typed(gpt2::weights::TypedWeights::from_params(
            &model.f32_params(),
            t,
        )?);
    }
    let load_s = t_load.elapsed().as_secs_f64();
    let rss_loaded = current_rss_mib();
    let cfg = model.config().clone();
    if args.prompt_len == 0 || args.prompt_len + args.new_tokens > cfg.n_positions {
        bail!(
            "--prompt-len {} + --new-tokens {} must be in 1..={} (n_positions)",
            args.prompt_len,
            args.new_tokens,
            cfg.n_positions
        );
    }
    let mut rng = Rng::seed(1);
    let prompts: Vec<Vec<u32>> = (0..args.batch)
        .map(|_| {
            (0..args.prompt_len)
                .map(|_| rng.below(cfg.vocab_size as u64) as u32)
                .collect()
        })
        .collect();
    let (mut pre, mut dec) = (Vec::new(), Vec::new());
    for _ in 0..args.repeats {
        let mut caches: Vec<KvCache> = (0..args.batch)
            .map(|_| KvCache::new(&cfg, args.prompt_len + args.new_tokens))
            .collect();
        let t0 = Instant::now();
        {
            let mut refs: Vec<&mut KvCache> = caches.iter_mut().collect();
            let ids: Vec<&[u32]> = prompts.iter().map(|p| p.as_slice()).collect();
            model.forward(&mut refs, &ids, Logits::Last)?;
        }
        pre.push((args.batch * args.prompt_len) as f64 / t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        for step in 0..args.new_tokens {
            let toks: Vec<[u32; 1]> = (0..args.batch)
                .map(|b| [((step * 31 + b * 7) % cfg.vocab_size) as u32])
                .collect();
            let mut refs: Vec<&mut KvCache> = caches.iter_mut().collect();
            let ids: Vec<&[u32]> = toks.iter().map(|t| t.as_slice()).collect();
            model.forward(&mut refs, &ids, Logits::Last)?;
        }
        if args.new_tokens > 0 {
            dec.push((args.batch * args.new_tokens) as f64 / t1.elapsed().as_secs_f64());
        }
    }
    let prefill = median(pre);
    let decode = if dec.is_empty() { 0.0 } else { median(dec) };
    let rss = peak_rss_mib();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            json!({"prefill_tok_s": prefill, "decode_tok_s": decode, "peak_rss_mib": rss,
                   "load_s": load_s, "rss_after_load_mib": rss_loaded, "weights": model.weight_types(),
                   "kernel": gpt2::kernels::isa::isa().name()})
        )?;
    } else {
        // --dtype converts f32 weights built (or loaded) first: the peak holds both
        let peak_why = if args.dtype.is_some() {
            " (includes the f32 weights --dtype converted)"
        } else {
            ""
        };
        writeln!(
            out,
            "{} params, weights {}, kernels {}, batch {}, prompt {}, new {}, {} threads\nload {load_s:.2} s, RSS after load {rss_loaded:.0} MiB\nprefill {prefill:.1} tok/s\ndecode  {decode:.1} tok/s\npeak RSS {rss:.0} MiB{peak_why}",
            cfg.num_params(), model.weight_types(), gpt2::kernels::isa::isa().name(), args.batch, args.prompt_len, args.new_tokens, rayon::current_num_threads()
        )?;
    }
    Ok(())
}
