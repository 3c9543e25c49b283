//! Embeds the default model (models/gpt2-shakespeare) in the `gpt2` binary when it is present, so
//! every command works without `--model`, from any directory, with no network.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(default_model)");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/gpt2-shakespeare");
    let config = dir.join("config.json");
    let weights = dir.join("model.safetensors");
    println!("cargo::rerun-if-changed={}", config.display());
    println!("cargo::rerun-if-changed={}", weights.display());
    if config.exists() && weights.exists() {
        println!("cargo::rustc-cfg=default_model");
    }
}
