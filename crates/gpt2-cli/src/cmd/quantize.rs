//! `gpt2 quantize`: write a model as a GGUF file (llama.cpp's format) whose matrices are f32,
//! f16, bf16, q8_0 or q4_0. llama.cpp loads and runs what it writes; its q8_0 and q4_0 blocks are
//! byte-identical to `llama-quantize`'s from the same f32 weights (ggml's reference rounding).
//! Which tensor gets which type is `gpt2::weights::policy`; the types used are printed.

use std::path::PathBuf;

use anyhow::{bail, Context};
use gpt2::kernels::quant::QType;
use gpt2::weights::TypedWeights;

use crate::common::load_model;

/// Arguments of `gpt2 quantize`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gpt2 quantize --model gpt2 --type q8_0 --out gpt2-q8_0.gguf\n  gpt2 quantize --model runs/ft --type q4_0 --out ft-q4_0.gguf\n\nTypes: f32, f16, bf16, q8_0 (8.5 bits per weight), q4_0 (4.5). LayerNorm parameters, biases\nand position embeddings stay f32; with q4_0 the tied embedding / lm_head is q6_K, as\nllama-quantize makes it. A row length that does not fit the block falls back as llama-quantize\ndoes: q6_K (256 per block) to q8_0, q8_0 and q4_0 (32) to f16; the summary says which types\nwere used."
)]
pub struct Args {
    /// Model to read: folder, hub id or .gguf file. Default: the built-in model.
    #[arg(long)]
    model: Option<String>,
    /// Random weights of a preset shape instead (gpt2 … gpt2-xl, GPT-2's initialization, seed 0),
    /// e.g. to measure load time and memory.
    #[arg(long, conflicts_with = "model")]
    preset: Option<String>,
    /// Storage type of the matrices: f32, f16, bf16, q8_0, q4_0.
    #[arg(long = "type", value_parser = parse_qtype)]
    qtype: QType,
    /// Output file (.gguf), written atomically.
    #[arg(long)]
    out: PathBuf,
}

/// Parses a `--type` value.
pub fn parse_qtype(s: &str) -> Result<QType, String> {
    QType::from_name(s).ok_or_else(|| format!("`{s}`: expected one of f32, f16, bf16, q8_0, q4_0"))
}

/// Runs `gpt2 quantize`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args
        .out
        .extension()
        .is_none_or(|e| !e.eq_ignore_ascii_case("gguf"))
    {
        bail!(
            "--out {}: the file name must end in .gguf",
            args.out.display()
        );
    }
    let model = match &args.preset {
        Some(p) => gpt2::Model::new(gpt2::Params::init_gpt2(
            &gpt2::Gpt2Config::preset(p)?,
            &mut gpt2::Rng::seed(0),
        )),
        None => load_model(args.model.as_deref())?,
    };
    if model.config().num_labels.is_some() {
        bail!("--model: a classification model (score head) has no GGUF layout in llama.cpp; quantize language models only");
    }
    let t0 = std::time::Instant::now();
    let weights = TypedWeights::from_params(&model.f32_params(), args.qtype)?;
    let name = args
        .model
        .as_deref()
        .or(args.preset.as_deref())
        .unwrap_or(crate::common::DEFAULT_MODEL_NAME)
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("gpt2")
        .trim_end_matches(".gguf")
        .to_string();
    gpt2::gguf::model::save(&weights, args.qtype, &name, &args.out)
        .with_context(|| format!("--out {}", args.out.display()))?;
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({:.1} MiB, {:.1} s): matrices {}; vectors f32",
        args.out.display(),
        bytes as f64 / (1 << 20) as f64,
        t0.elapsed().as_secs_f64(),
        weights.type_summary()
    );
    Ok(())
}
