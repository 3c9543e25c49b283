//! Helpers shared by subcommands: model loading from `--model`, id lists, reading text files.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// Where the default model lives: `$GPT2_DEFAULT_MODEL`, else the repository's
/// `models/gpt2-shakespeare` (located from this binary's build-time source path).
pub fn default_model_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("GPT2_DEFAULT_MODEL") {
        return Some(PathBuf::from(p));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/gpt2-shakespeare");
    repo.join("config.json").exists().then_some(repo)
}

/// Loads the model named by `--model`: a local folder or a Hugging Face hub id; with no `--model`,
/// the default model that ships with the project.
pub fn load_model(model: Option<&str>) -> anyhow::Result<gpt2::Model> {
    let dir = match model {
        Some(m) => gpt2::hub::resolve(m, &gpt2::hub::HubOptions::default()).with_context(|| format!("--model {m}"))?,
        None => match default_model_dir() {
            Some(d) => d,
            None => bail!("no --model given and the default model (models/gpt2-shakespeare) was not found; pass --model FOLDER_OR_HUB_ID"),
        },
    };
    let params = gpt2::checkpoint::load(&dir)
        .with_context(|| format!("loading model from {}", dir.display()))?;
    Ok(gpt2::Model::new(params))
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
