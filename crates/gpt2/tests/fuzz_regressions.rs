//! Replays every committed fuzz input through its target on the stable toolchain: the seed
//! corpora (`fuzz/corpus/<target>/`) and each input a fuzzer ever crashed on
//! (`fuzz/regressions/<target>/`, named for what it found). The targets are the same functions
//! the libFuzzer binaries run (`fuzz/targets.rs`); each must return for every input, so a
//! regression shows here as a panic. `scripts/fuzz.sh` runs the fuzzers themselves.

use std::path::Path;

#[allow(dead_code)]
mod targets {
    include!("../../../fuzz/targets.rs");
}

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).unwrap();
            eprintln!("{target}: {}", path.display());
            run(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no inputs for fuzz target {target}");
}

#[test]
fn config_json() {
    replay("config_json", targets::config_json);
}

#[test]
fn safetensors() {
    replay("safetensors", targets::safetensors);
}

#[test]
fn shard_index() {
    replay("shard_index", targets::shard_index);
}

#[test]
fn gguf() {
    replay("gguf", targets::gguf);
}

#[test]
fn token_shard() {
    replay("token_shard", targets::token_shard);
}

#[test]
fn tokenizer() {
    replay("tokenizer", targets::tokenizer);
}
