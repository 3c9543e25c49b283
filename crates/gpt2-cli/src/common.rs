//! Helpers shared by subcommands: model loading from `--model`, id lists, reading text files.

use std::path::Path;

use anyhow::{bail, Context};

/// The name the default model is known by in messages and in `/v1/models`.
pub const DEFAULT_MODEL_NAME: &str = "gpt2-shakespeare";

/// The default model's config.json and model.safetensors, embedded at build time from
/// `models/gpt2-shakespeare` (see build.rs).
#[cfg(default_model)]
const DEFAULT_MODEL: Option<(&str, &[u8])> = Some((
    include_str!("../../../models/gpt2-shakespeare/config.json"),
    include_bytes!("../../../models/gpt2-shakespeare/model.safetensors"),
));
#[cfg(not(default_model))]
const DEFAULT_MODEL: Option<(&str, &[u8])> = None;

/// The default model's folder on disk, if there is one: `$GPT2_DEFAULT_MODEL`, else the
/// repository's `models/gpt2-shakespeare` (located from this binary's build-time source path).
/// [`load_model`] does not need it (the model is embedded); it is for commands that want files.
pub fn default_model_dir() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("GPT2_DEFAULT_MODEL") {
        return Some(p.into());
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/gpt2-shakespeare");
    repo.join("config.json").exists().then_some(repo)
}

/// Loads the model named by `--model`: a local folder or a Hugging Face hub id. With no `--model`:
/// the folder in `$GPT2_DEFAULT_MODEL` if set, else the small Shakespeare model embedded in this
/// binary (so it works from any directory, offline).
pub fn load_model(model: Option<&str>) -> anyhow::Result<gpt2::Model> {
    let model = match model {
        Some(m) => Some(m.to_string()),
        None => std::env::var("GPT2_DEFAULT_MODEL").ok(),
    };
    if let Some(m) = model.as_deref().filter(|m| is_gguf(m)) {
        return load_gguf(m);
    }
    let params = match model {
        Some(m) => {
            let dir = gpt2::hub::resolve(&m, &gpt2::hub::HubOptions::default()).with_context(|| format!("--model {m}"))?;
            gpt2::checkpoint::load(&dir).with_context(|| format!("loading model from {}", dir.display()))?
        }
        None => match DEFAULT_MODEL {
            Some((config, weights)) => gpt2::checkpoint::load_from_memory(config, weights, "embedded models/gpt2-shakespeare")?,
            None => bail!("no --model given and this binary was built without the default model (models/gpt2-shakespeare); pass --model FOLDER_OR_HUB_ID"),
        },
    };
    Ok(gpt2::Model::new(params))
}

/// Whether `--model` names a GGUF file (by its extension).
pub fn is_gguf(model: &str) -> bool {
    Path::new(model)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// `--no-mmap` (global): GGUF tensors are copied into memory instead of mapped.
pub static NO_MMAP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Loads a GGUF file (llama.cpp's format) with every matrix in its stored type, mapped from the
/// file (copied with `--no-mmap`); conversions at load (K-quants) are said on stderr.
pub fn load_gguf(path: &str) -> anyhow::Result<gpt2::Model> {
    let loaded =
        gpt2::gguf::model::load(Path::new(path)).with_context(|| format!("--model {path}"))?;
    for note in &loaded.notes {
        eprintln!("note: {note}");
    }
    let mut weights = loaded.weights;
    if NO_MMAP.load(std::sync::atomic::Ordering::Relaxed) {
        weights = weights
            .into_owned()
            .with_context(|| format!("--no-mmap: copying {path} into memory"))?;
    }
    Ok(gpt2::Model::from_typed(weights))
}

/// f32 parameters for fine-tuning from `--init-from`: a folder, a hub id, or a GGUF file
/// (dequantized into f32 master weights, said on stderr).
pub fn load_init_params(model: &str) -> anyhow::Result<gpt2::Params> {
    if is_gguf(model) {
        let p = gpt2::gguf::model::load_params(Path::new(model))
            .with_context(|| format!("--init-from {model}"))?;
        eprintln!("note: --init-from {model}: GGUF weights dequantized into f32 master weights");
        return Ok(p);
    }
    let dir = gpt2::hub::resolve(model, &gpt2::hub::HubOptions::default())
        .with_context(|| format!("--init-from {model}"))?;
    gpt2::checkpoint::load(&dir).with_context(|| format!("--init-from {model}"))
}

/// Parses `1,2,3` (spaces and brackets tolerated) into ids; `flag` names the flag in errors.
pub fn parse_ids(s: &str, flag: &str) -> anyhow::Result<Vec<u32>> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u32>().with_context(|| {
                format!("{flag}: `{p}` is not a token id (a non-negative integer)")
            })
        })
        .collect()
}

/// Reads a UTF-8 text file; errors name the file (and say when it is not UTF-8).
pub fn read_text(path: &Path, flag: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {}: not valid UTF-8 (first bad byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Resident memory of this process now in MiB (Linux `VmRSS`: mapped file pages that were
/// touched count too), 0 where unavailable.
pub fn current_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`), 0 where unavailable.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
