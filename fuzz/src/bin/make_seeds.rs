//! Writes the seed corpus of each fuzz target into `fuzz/corpus/<target>/`: small valid inputs
//! the fuzzer mutates (a few KB each, committed). Run from the repository root:
//! `cargo +nightly run --manifest-path fuzz/Cargo.toml --bin make_seeds`.

use std::path::Path;

use gpt2::kernels::quant::QType;
use gpt2::weights::TypedWeights;

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
    eprintln!("{target}/{name}: {} bytes", bytes.len());
}

fn main() {
    let cfg = gpt2_fuzz::tiny_config();
    let params = gpt2::Params::init_gpt2(&cfg, &mut gpt2::Rng::seed(1));
    let tmp = tempfile::tempdir().expect("temp dir");

    put("config_json", "tiny.json", cfg.to_hf_json().as_bytes());
    put(
        "config_json",
        "classifier.json",
        br#"{"n_layer":2,"n_head":3,"n_embd":48,"n_ctx":37,"vocab_size":1000,"model_type":"gpt2","num_labels":2,"id2label":{"0":"neg","1":"pos"},"pad_token_id":7,"activation_function":"gelu_new","n_inner":null}"#,
    );

    gpt2::checkpoint::save(&params, tmp.path(), Default::default()).expect("save");
    let st = std::fs::read(tmp.path().join("model.safetensors")).expect("read");
    put("safetensors", "tiny-f32.safetensors", &st);

    put(
        "shard_index",
        "index.json",
        br#"{"metadata":{"total_size":1},"weight_map":{"wte.weight":"a.safetensors","h.0.ln_1.weight":"a.safetensors"}}"#,
    );

    // GGUF: C 32, so the block types (32 values a block) fit
    let wide = gpt2::Gpt2Config {
        n_embd: 32,
        ..cfg.clone()
    };
    let wide = gpt2::Params::init_gpt2(&wide, &mut gpt2::Rng::seed(1));
    for q in [QType::Q8_0, QType::Q4_0] {
        let w = TypedWeights::from_params(&wide, q).expect("typed weights");
        let path = tmp.path().join(format!("tiny-{}.gguf", q.name()));
        gpt2::gguf::model::save(&w, q, "tiny", &path).expect("save gguf");
        put(
            "gguf",
            &format!("tiny-{}.gguf", q.name()),
            &std::fs::read(&path).expect("read"),
        );
    }

    let shard = tmp.path().join("shard.bin");
    gpt2::data::write_shard(&shard, &[50256, 464, 3290, 318, 13, 50256]).expect("write shard");
    put(
        "token_shard",
        "six.bin",
        &std::fs::read(&shard).expect("read"),
    );

    put(
        "tokenizer",
        "hello.txt",
        "Hello, my dog is cute <|endoftext|> 's  \u{1F600}\n\t".as_bytes(),
    );
    put(
        "tokenizer",
        "mixed.txt",
        "naïve café — 日本語 123 4567 ''' \r\n  x".as_bytes(),
    );
}
