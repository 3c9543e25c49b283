//! `gpt2 average`: the element-wise mean of the weights of several models of one shape — a
//! "model soup" (Wortsman et al. 2022, "Model soups: averaging weights of multiple fine-tuned
//! models improves accuracy without increasing inference time", uniform soup) or the average of a
//! run's last checkpoints. The result is one ordinary checkpoint in the Hugging Face layout.
//!
//! Averaging only makes sense for models fine-tuned from the same start (same pre-trained model,
//! different seeds or recipes, or checkpoints of one run); the command checks that the shapes,
//! and for classifiers the labels, agree — it cannot check the common start.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::convert::Dtype;
use crate::common::load_model;

/// Arguments of `gpt2 average`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  gpt2 average --model runs/sst2-seed1 --model runs/sst2-seed2 --model runs/sst2-seed3 --out runs/sst2-soup
  gpt2 average --model runs/ft/checkpoint-800 --model runs/ft/checkpoint-900 --model runs/ft --out runs/ft-avg")]
pub struct Args {
    /// A model folder or hub id; give it two or more times.
    #[arg(long = "model", required = true)]
    models: Vec<String>,
    /// Output folder (config.json + model.safetensors; its parent must exist; a folder that
    /// already holds a model is refused). Its config is the first model's.
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype of the average.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
}

/// Runs `gpt2 average`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.models.len() < 2 {
        bail!("--model: give two or more models to average");
    }
    // Never write over a model (one of the inputs, or a run's checkpoint with its optimizer state).
    for f in ["config.json", "model.safetensors", "trainer_state.json"] {
        if args.out.join(f).exists() {
            bail!(
                "--out {}: it already holds a model ({f}); choose a new folder",
                args.out.display()
            );
        }
    }
    // Everything that sets the parameter layout (param_specs) is in this description.
    let shape = |c: &gpt2::Gpt2Config| {
        format!(
            "n_layer {}, n_head {}, n_embd {}, n_positions {}, vocab_size {}, num_labels {}",
            c.n_layer,
            c.n_head,
            c.n_embd,
            c.n_positions,
            c.vocab_size,
            c.num_labels.map_or("none".into(), |k| k.to_string())
        )
    };
    let first = load_model(Some(&args.models[0]))?.into_params();
    let mut sum: Vec<f64> = first.data.iter().map(|&x| x as f64).collect();
    for m in &args.models[1..] {
        let p = load_model(Some(m))?.into_params();
        let (a, b) = (&first.cfg, &p.cfg);
        if shape(a) != shape(b) || p.data.len() != first.data.len() {
            bail!(
                "--model {m}: its shape ({}) differs from --model {}'s ({})",
                shape(b),
                args.models[0],
                shape(a)
            );
        }
        if a.id2label != b.id2label {
            bail!(
                "--model {m}: its labels (id2label) differ from --model {}'s",
                args.models[0]
            );
        }
        for (s, &x) in sum.iter_mut().zip(&p.data) {
            *s += x as f64;
        }
    }
    let n = args.models.len() as f64;
    let mut avg = first;
    for (x, s) in avg.data.iter_mut().zip(&sum) {
        *x = (s / n) as f32;
    }
    gpt2::checkpoint::save(&avg, &args.out, args.dtype.into())
        .with_context(|| format!("--out {}", args.out.display()))?;
    eprintln!(
        "wrote the mean of {} models to {}",
        args.models.len(),
        args.out.display()
    );
    Ok(())
}
