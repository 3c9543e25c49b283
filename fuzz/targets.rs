// Fuzz target bodies: one function per parser of outside bytes. Each must return normally for
// every input (an `Err` is fine: that is a clean refusal); a panic, an abort, a hang or an
// allocation far beyond the input's size is a bug. Included by `fuzz/src/lib.rs` and by
// `crates/gpt2/tests/fuzz_regressions.rs`.

/// The tiny architecture the safetensors target loads into: L 1, NH 1, C 4, V 8, maxT 4 (a
/// 1.6 KB file). GGUF files carry their own hyper-parameters.
pub fn tiny_config() -> gpt2::Gpt2Config {
    gpt2::Gpt2Config {
        n_layer: 1,
        n_head: 1,
        n_embd: 4,
        n_positions: 4,
        vocab_size: 8,
        ..gpt2::Gpt2Config::gpt2()
    }
}

/// `config.json` text: [`gpt2::Gpt2Config::from_json_str`].
pub fn config_json(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = gpt2::Gpt2Config::from_json_str(text) {
            // a config that validates must describe a parameter table without overflow
            let _ = cfg.head_size();
        }
    }
}

/// A `model.safetensors` for [`tiny_config`]: header, offsets, dtypes, shapes, data.
pub fn safetensors(data: &[u8]) {
    let cfg = tiny_config().to_hf_json();
    let _ = gpt2::checkpoint::load_from_memory(&cfg, data, "fuzz.safetensors");
}

/// `model.safetensors.index.json` text, in a folder holding one shard named `a.safetensors`.
pub fn shard_index(data: &[u8]) {
    thread_local! {
        static DIR: tempfile::TempDir = {
            let d = tempfile::tempdir().expect("temp dir");
            std::fs::write(d.path().join("a.safetensors"), b"").expect("write shard");
            d
        };
    }
    DIR.with(|d| {
        let index = d.path().join(gpt2::checkpoint::INDEX_FILE);
        std::fs::write(&index, data).expect("write index");
        let _ = gpt2::checkpoint::weight_files(d.path());
    });
}

/// A GGUF file: the container (header, metadata, tensor infos, alignment, data ranges), then
/// the GPT-2 reader on it (hyper-parameters, tokenizer metadata, tensor dims and types).
pub fn gguf(data: &[u8]) {
    if let Ok(f) = gpt2::gguf::GgufFile::from_bytes(data.to_vec(), "fuzz.gguf") {
        let _ = gpt2::gguf::model::load_file(&f);
    }
}

/// A token shard (`gpt2 prepare`'s format): header, length, ids against V 50257.
pub fn token_shard(data: &[u8]) {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("temp dir");
    }
    DIR.with(|d| {
        let path = d.path().join("shard.bin");
        std::fs::write(&path, data).expect("write shard");
        if let Ok(shard) = gpt2::data::Shard::open(&path, 50257) {
            for i in 0..shard.len().min(64) {
                let _ = shard.token(i);
            }
        }
    });
}

/// The tokenizer on arbitrary text: encode never panics and decode(encode(text)) == text, with
/// special tokens as text or allowed; arbitrary ids decode or are refused, never panic.
pub fn tokenizer(data: &[u8]) {
    thread_local! {
        static TOK: gpt2::tokenizer::Tokenizer =
            gpt2::tokenizer::Tokenizer::gpt2().expect("embedded tokenizer");
    }
    TOK.with(|tok| {
        let text = String::from_utf8_lossy(data);
        for special in [
            gpt2::tokenizer::Special::None,
            gpt2::tokenizer::Special::AllowEndOfText,
        ] {
            let ids = tok.encode(&text, special);
            let back = tok.decode(&ids).expect("ids from encode decode");
            assert_eq!(back, text, "decode(encode(text)) != text");
        }
        let ids: Vec<u32> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
            .collect();
        if let Ok(bytes) = tok.decode_bytes(&ids) {
            let _ = String::from_utf8_lossy(&bytes);
        }
    });
}
