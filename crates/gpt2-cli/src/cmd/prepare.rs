//! `gpt2 prepare`: text files → `train.bin` / `val.bin` token shards (llm.c layout, see
//! [`gpt2::data`]).
//!
//! Each input file is one document; documents are tokenized in parallel (large ones in BPE-safe
//! pieces, [`gpt2::data::encode_documents`]) and joined by `<|endoftext|>`. The last
//! `--val-fraction` of the tokens becomes `val.bin`, the rest `train.bin`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gpt2::data::{encode_documents, write_shard};
use gpt2::tokenizer::Tokenizer;
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `gpt2 prepare`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  gpt2 prepare --input ../shared/data/tinyshakespeare.txt --out data/shakespeare\n  gpt2 train --data data/shakespeare --preset gpt2 --out runs/shakespeare"
)]
pub struct Args {
    /// Text files or folders to tokenize (UTF-8). Each file is one document; a folder means the
    /// files directly in it (not hidden ones, not subfolders), in name order.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Folder to write `train.bin` and `val.bin` into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Fraction of the tokens, taken from the end, that goes to `val.bin`, in [0, 1).
    /// 0 writes no `val.bin` (and removes a stale one).
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
}

/// The files named by `--input`, folders expanded.
fn input_files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta =
            std::fs::metadata(input).with_context(|| format!("--input {}", input.display()))?;
        if meta.is_dir() {
            let mut inside = Vec::new();
            for entry in
                std::fs::read_dir(input).with_context(|| format!("--input {}", input.display()))?
            {
                let path = entry
                    .with_context(|| format!("--input {}", input.display()))?
                    .path();
                let hidden = path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if path.is_file() && !hidden {
                    inside.push(path);
                }
            }
            inside.sort();
            files.extend(inside);
        } else {
            files.push(input.clone());
        }
    }
    Ok(files)
}

/// Number of validation tokens for `n` tokens: the rounded fraction, at least 1 when the fraction
/// is positive.
fn val_count(n: usize, fraction: f64) -> usize {
    if fraction <= 0.0 {
        return 0;
    }
    ((n as f64 * fraction).round() as usize).clamp(1, n)
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&args.val_fraction) {
        bail!(
            "--val-fraction must be in [0, 1), got {}",
            args.val_fraction
        );
    }
    let files = input_files(&args.input)?;
    if files.is_empty() {
        bail!("no input files: the --input folders hold no files");
    }
    let texts: Vec<String> = files
        .iter()
        .map(|f| crate::common::read_text(f, "--input"))
        .collect::<anyhow::Result<_>>()?;
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    if bytes == 0 {
        bail!(
            "the input is empty: {} file(s), 0 bytes of text",
            files.len()
        );
    }
    let tok = Tokenizer::gpt2()?;
    let bar = ProgressBar::new(bytes as u64).with_style(
        ProgressStyle::with_template(
            "tokenizing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let docs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = encode_documents(&tok, &docs, &|n| bar.inc(n as u64));
    bar.finish_and_clear();

    let n_val = val_count(ids.len(), args.val_fraction);
    let n_train = ids.len() - n_val;
    if n_train == 0 {
        bail!(
            "{} tokens leave none for train.bin with --val-fraction {}",
            ids.len(),
            args.val_fraction
        );
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let train_path = args.out.join("train.bin");
    let val_path = args.out.join("val.bin");
    write_shard(&train_path, &ids[..n_train])?;
    if n_val > 0 {
        write_shard(&val_path, &ids[n_train..])?;
    } else {
        remove_stale(&val_path)?;
    }
    println!(
        "documents {}  tokens {} (train {n_train}, val {n_val})  bytes {bytes}  -> {}{}",
        files.len(),
        ids.len(),
        train_path.display(),
        if n_val > 0 {
            format!(", {}", val_path.display())
        } else {
            String::new()
        }
    );
    Ok(())
}

fn remove_stale(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove stale {}", path.display()))
        }
        _ => Ok(()),
    }
}
