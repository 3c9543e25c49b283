//! `gpt2 convert`: rewrite a checkpoint in the Hugging Face layout with another dtype
//! (e.g. f16 to halve a model's size on disk). What it writes, `transformers` loads.

use std::path::PathBuf;

use anyhow::Context;
use gpt2::checkpoint::SaveDtype;

use crate::common::load_model;

/// Storage dtype of the written weights.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Dtype {
    /// 32-bit floats.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    Bf16,
}

impl From<Dtype> for SaveDtype {
    fn from(d: Dtype) -> Self {
        match d {
            Dtype::F32 => SaveDtype::F32,
            Dtype::F16 => SaveDtype::F16,
            Dtype::Bf16 => SaveDtype::BF16,
        }
    }
}

/// Arguments of `gpt2 convert`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  gpt2 convert --model runs/small --out models/small-f16 --dtype f16"
)]
pub struct Args {
    /// Model folder or hub id to read.
    #[arg(long)]
    model: String,
    /// Output folder (config.json + model.safetensors; its parent must exist).
    #[arg(long)]
    out: PathBuf,
    /// Storage dtype.
    #[arg(long, value_enum, default_value = "f16")]
    dtype: Dtype,
}

/// Runs `gpt2 convert`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let model = load_model(Some(&args.model))?;
    gpt2::checkpoint::save(&model.f32_params(), &args.out, args.dtype.into())
        .with_context(|| format!("--out {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} parameters)",
        args.out.display(),
        model.config().num_params()
    );
    Ok(())
}
