//! The `gpt2` binary end to end: tokenize, detokenize, generate, score and bench, against the
//! transformers fixtures in crates/gpt2/tests/fixtures and random models made here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::SafeTensors;
use serde_json::Value;

fn gpt2(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpt2"))
        .args(args)
        .output()
        .expect("run gpt2")
}

fn ok(args: &[&str]) -> String {
    let out = gpt2(args);
    assert!(
        out.status.success(),
        "gpt2 {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr, which must be one clear line, no panic.
fn fails(args: &[&str]) -> String {
    let out = gpt2(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "gpt2 {args:?} should fail");
    assert!(!err.contains("panicked"), "gpt2 {args:?} panicked: {err}");
    assert!(err.starts_with("error:"), "gpt2 {args:?}: {err}");
    err
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gpt2/tests/fixtures")
        .join(name)
}

fn tiny() -> String {
    fixture("tiny").display().to_string()
}

fn reference_i32(name: &str, key: &str) -> Vec<u32> {
    let bytes = std::fs::read(fixture(name).join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensor(key)
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as u32)
        .collect()
}

fn ids_arg(ids: &[u32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A random model with GPT-2's full vocabulary, so any text can be a prompt.
fn random_model(dir: &Path) -> String {
    let cfg = gpt2::Gpt2Config {
        n_layer: 2,
        n_head: 2,
        n_embd: 32,
        n_positions: 64,
        ..gpt2::Gpt2Config::gpt2()
    };
    let p = gpt2::Params::init_gpt2(&cfg, &mut gpt2::Rng::seed(7));
    gpt2::checkpoint::save(&p, dir, gpt2::checkpoint::SaveDtype::F32).unwrap();
    dir.display().to_string()
}

#[test]
fn tokenize_and_detokenize() {
    assert_eq!(ok(&["tokenize", "Hello world"]).trim(), "15496,995");
    assert_eq!(
        ok(&["tokenize", "--json", "Hello world"]).trim(),
        "[15496,995]"
    );
    assert_eq!(
        ok(&["detokenize", "15496,995"]).trim_end_matches('\n'),
        "Hello world"
    );
    // <|endoftext|> is plain text unless allowed
    let plain: Vec<u32> =
        serde_json::from_str(&ok(&["tokenize", "--json", "a<|endoftext|>"])).unwrap();
    assert!(!plain.contains(&50256) && plain.len() > 2, "{plain:?}");
    assert_eq!(
        ok(&["tokenize", "--json", "--allow-special", "a<|endoftext|>"]).trim(),
        "[64,50256]"
    );
    let err = fails(&["detokenize", "1,99999"]);
    assert!(err.contains("99999"), "{err}");
    let err = fails(&["detokenize", "1,x"]);
    assert!(err.contains("`x`"), "{err}");
}

#[test]
fn greedy_generation_matches_transformers() {
    let prompt = reference_i32("tiny", "greedy_prompt");
    let want = reference_i32("tiny", "greedy_tokens");
    let n = want.len().to_string();
    let out = ok(&[
        "generate",
        "--model",
        &tiny(),
        "--prompt-ids",
        &ids_arg(&prompt),
        "--temperature",
        "0",
        "--max-new-tokens",
        &n,
        "--ignore-eos",
        "--json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let got: Vec<u32> = serde_json::from_value(v["tokens"].clone()).unwrap();
    assert_eq!(got, want);
    let prompt_tokens: Vec<u32> = serde_json::from_value(v["prompt_tokens"].clone()).unwrap();
    assert_eq!(prompt_tokens, prompt);
    assert_eq!(v["finish_reason"], "length");
}

#[test]
fn sampling_is_reproducible_across_thread_counts_and_batches() {
    let args = |threads: &str, n: &str| {
        ok(&[
            "generate",
            "--threads",
            threads,
            "--model",
            &tiny(),
            "--prompt-ids",
            "5,6,7",
            "--temperature",
            "0.9",
            "--top-k",
            "50",
            "--top-p",
            "0.95",
            "--seed",
            "42",
            "--max-new-tokens",
            "20",
            "--ignore-eos",
            "--num-samples",
            n,
            "--json",
        ])
    };
    let one = args("1", "3");
    assert_eq!(one, args("2", "3"));
    let lines: Vec<Value> = one
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_ne!(
        lines[0]["tokens"], lines[1]["tokens"],
        "samples of a batch differ"
    );
    // sample 0 of a batch is the same as a single run with that seed
    let single: Value = serde_json::from_str(args("2", "1").trim()).unwrap();
    assert_eq!(single["tokens"], lines[0]["tokens"]);
    let other = ok(&[
        "generate",
        "--model",
        &tiny(),
        "--prompt-ids",
        "5,6,7",
        "--seed",
        "43",
        "--max-new-tokens",
        "20",
        "--ignore-eos",
        "--json",
    ]);
    assert_ne!(
        serde_json::from_str::<Value>(other.trim()).unwrap()["tokens"],
        single["tokens"]
    );
}

#[test]
fn generation_stops_at_the_context_and_says_so() {
    let prompt: Vec<u32> = (0..30).collect();
    let out = gpt2(&[
        "generate",
        "--model",
        &tiny(),
        "--prompt-ids",
        &ids_arg(&prompt),
        "--max-new-tokens",
        "20",
        "--ignore-eos",
        "--json",
    ]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["tokens"].as_array().unwrap().len(),
        7,
        "30 + 7 = n_positions 37"
    );
    assert_eq!(v["finish_reason"], "length");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("context of 37 tokens"), "{err}");

    // The edges of the window, n_ctx - 1, n_ctx and n_ctx + 1 prompt tokens: one token, then a
    // clear error for each prompt that leaves no room, never an empty success.
    let run = |n: u32| {
        gpt2(&[
            "generate",
            "--model",
            &tiny(),
            "--prompt-ids",
            &ids_arg(&(0..n).collect::<Vec<_>>()),
            "--max-new-tokens",
            "5",
            "--ignore-eos",
            "--json",
        ])
    };
    let out = run(36);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tokens"].as_array().unwrap().len(), 1, "36 + 1 = 37");
    assert_eq!(v["finish_reason"], "length");
    for (n, needle) in [
        (37, "fills the model's context of 37"),
        (38, "longer than the model's context of 37"),
    ] {
        let out = run(n);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && out.stdout.is_empty(),
            "{n} tokens: {err}"
        );
        assert!(
            err.contains(needle) && err.contains(&format!("{n} tokens")),
            "{err}"
        );
    }
}

#[test]
fn stop_strings_and_streaming_text() {
    let tmp = tempfile::tempdir().unwrap();
    let model = random_model(tmp.path());
    let base = [
        "generate",
        "--model",
        &model,
        "--prompt",
        "The cat",
        "--temperature",
        "0",
        "--max-new-tokens",
        "12",
        "--ignore-eos",
    ];
    let full: Value = serde_json::from_str(ok(&[&base[..], &["--json"]].concat()).trim()).unwrap();
    let text = full["text"].as_str().unwrap().to_string();
    let toks: Vec<u32> = serde_json::from_value(full["tokens"].clone()).unwrap();
    assert_eq!(toks.len(), 12);
    // the streamed (non-JSON) output is the prompt followed by the same text
    let streamed = ok(&base);
    assert_eq!(streamed, format!("The cat{text}\n"));
    // stop at a string taken from the middle of the greedy text
    let chars: Vec<char> = text.chars().collect();
    assert!(chars.len() >= 6, "{text:?}");
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let cut = text.find(&stop).unwrap();
    let v: Value =
        serde_json::from_str(ok(&[&base[..], &["--json", "--stop", &stop]].concat()).trim())
            .unwrap();
    assert_eq!(v["finish_reason"], "stop");
    assert_eq!(v["text"].as_str().unwrap(), &text[..cut]);
}

#[test]
fn empty_prompt_starts_from_endoftext() {
    let tmp = tempfile::tempdir().unwrap();
    let model = random_model(tmp.path());
    let v: Value = serde_json::from_str(
        ok(&[
            "generate",
            "--model",
            &model,
            "--max-new-tokens",
            "3",
            "--ignore-eos",
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    assert_eq!(v["prompt_tokens"], serde_json::json!([50256]));
}

#[test]
fn score_matches_transformers_logprobs() {
    let tokens = reference_i32("tiny", "tokens");
    let t = 37;
    let ids = &tokens[..t];
    let out = ok(&[
        "score",
        "--model",
        &tiny(),
        "--ids",
        &ids_arg(ids),
        "--json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let lps: Vec<f64> = serde_json::from_value(v["logprobs"].clone()).unwrap();
    assert_eq!(lps.len(), t - 1);
    let bytes = std::fs::read(fixture("tiny").join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let refl: Vec<f32> = st
        .tensor("logprobs")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let vocab = 1000;
    for i in 0..t - 1 {
        let want = refl[i * vocab + ids[i + 1] as usize] as f64;
        assert!(
            (lps[i] - want).abs() < 1e-4,
            "position {i}: {} vs {want}",
            lps[i]
        );
    }
    let nll = -lps.iter().sum::<f64>() / lps.len() as f64;
    assert!((v["nll"].as_f64().unwrap() - nll).abs() < 1e-9);
    assert!((v["perplexity"].as_f64().unwrap() - nll.exp()).abs() < 1e-6);
}

#[test]
fn bad_input_is_one_clear_error() {
    let t = tiny();
    let g = |extra: &[&str]| {
        fails(
            &[
                &["generate", "--model", &t, "--prompt-ids", "1,2"][..],
                extra,
            ]
            .concat(),
        )
    };
    assert!(g(&["--temperature", "-1"]).contains("--temperature"));
    assert!(g(&["--top-p", "0"]).contains("--top-p"));
    assert!(g(&["--top-p", "1.5"]).contains("--top-p"));
    assert!(g(&["--top-k", "0"]).contains("--top-k"));
    let err = fails(&["generate", "--model", &t, "--prompt-ids", "1,1000"]);
    assert!(err.contains("1000"), "{err}");
    let long: Vec<u32> = vec![1; 38];
    let err = fails(&["generate", "--model", &t, "--prompt-ids", &ids_arg(&long)]);
    assert!(err.contains("38") && err.contains("37"), "{err}");
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, [0x66, 0xff, 0xfe]).unwrap();
    let err = fails(&[
        "generate",
        "--model",
        &t,
        "--prompt-file",
        bad.to_str().unwrap(),
    ]);
    assert!(err.contains("UTF-8") && err.contains("bad.txt"), "{err}");
    let err = fails(&[
        "generate",
        "--model",
        tmp.path().join("nope").to_str().unwrap(),
        "--prompt-ids",
        "1",
    ]);
    assert!(err.contains("nope"), "{err}");
    // a truncated checkpoint
    let trunc = tmp.path().join("trunc");
    std::fs::create_dir(&trunc).unwrap();
    std::fs::copy(
        fixture("tiny").join("config.json"),
        trunc.join("config.json"),
    )
    .unwrap();
    let bytes = std::fs::read(fixture("tiny").join("model.safetensors")).unwrap();
    std::fs::write(trunc.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["score", "--model", trunc.to_str().unwrap(), "--ids", "1,2"]);
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn bench_prints_json() {
    let out = ok(&[
        "bench",
        "--model",
        &tiny(),
        "--prompt-len",
        "8",
        "--new-tokens",
        "8",
        "--repeats",
        "1",
        "--json",
    ]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    for k in ["prefill_tok_s", "decode_tok_s", "peak_rss_mib"] {
        assert!(v[k].as_f64().unwrap() > 0.0, "{k}: {v}");
    }
}

#[test]
fn average_is_the_elementwise_mean_and_refuses_other_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = gpt2::Gpt2Config {
        n_layer: 2,
        n_head: 2,
        n_embd: 32,
        n_positions: 64,
        ..gpt2::Gpt2Config::gpt2()
    };
    let models: Vec<gpt2::Params> = (0..3)
        .map(|seed| gpt2::Params::init_gpt2(&cfg, &mut gpt2::Rng::seed(seed)))
        .collect();
    let paths: Vec<String> = models
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = dir.path().join(format!("m{i}"));
            gpt2::checkpoint::save(p, &d, gpt2::checkpoint::SaveDtype::F32).unwrap();
            d.display().to_string()
        })
        .collect();
    let out = dir.path().join("soup");
    ok(&[
        "average",
        "--model",
        &paths[0],
        "--model",
        &paths[1],
        "--model",
        &paths[2],
        "--out",
        out.to_str().unwrap(),
    ]);
    let got = gpt2::checkpoint::load(&out).unwrap();
    assert_eq!(got.cfg.n_layer, 2);
    for (i, g) in got.data.iter().enumerate() {
        let want = models.iter().map(|p| p.data[i] as f64).sum::<f64>() / 3.0;
        assert_eq!(*g, want as f32, "element {i}");
    }
    // one model, or models of other shapes, are errors naming the flag
    let err = fails(&["average", "--model", &paths[0], "--out", "x"]);
    assert!(err.contains("two or more"), "{err}");
    let wide = gpt2::Params::init_gpt2(
        &gpt2::Gpt2Config {
            n_embd: 48,
            ..cfg.clone()
        },
        &mut gpt2::Rng::seed(1),
    );
    let wide_dir = dir.path().join("wide");
    gpt2::checkpoint::save(&wide, &wide_dir, gpt2::checkpoint::SaveDtype::F32).unwrap();
    let err = fails(&[
        "average",
        "--model",
        &paths[0],
        "--model",
        wide_dir.to_str().unwrap(),
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert!(
        err.contains("n_embd 48") && err.contains("differs"),
        "{err}"
    );
    assert!(!dir.path().join("bad").exists());
    // a folder that holds a model (here one of the inputs) is never written over
    let before = std::fs::read(Path::new(&paths[1]).join("model.safetensors")).unwrap();
    let err = fails(&[
        "average", "--model", &paths[0], "--model", &paths[1], "--out", &paths[1],
    ]);
    assert!(err.contains("already holds a model"), "{err}");
    let after = std::fs::read(Path::new(&paths[1]).join("model.safetensors")).unwrap();
    assert!(before == after);
    // each cause is said once
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let err = fails(&[
        "average",
        "--model",
        &paths[0],
        "--model",
        &paths[1],
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        err.matches("exists and is not a folder").count(),
        1,
        "{err}"
    );
}
