//! `gpt2 quantize` and GGUF files through the binary: written, read back by score / generate /
//! bench, log-probabilities equal to transformers' on the dequantized weights, fallbacks said,
//! bad files one clear error, every kernel path forced by GPT2_KERNEL giving the same numbers.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn gpt2_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gpt2"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run gpt2")
}

fn ok_env(args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let out = gpt2_env(args, env);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "gpt2 {args:?} failed: {err}");
    (String::from_utf8(out.stdout).unwrap(), err)
}

fn ok(args: &[&str]) -> (String, String) {
    ok_env(args, &[])
}

fn fails_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = gpt2_env(args, env);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "gpt2 {args:?} should fail");
    assert!(!err.contains("panicked"), "gpt2 {args:?} panicked: {err}");
    assert!(err.starts_with("error:"), "gpt2 {args:?}: {err}");
    err
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../gpt2/tests/fixtures")
}

fn tiny_q() -> String {
    fixtures().join("quant/tiny-q").display().to_string()
}

fn reference() -> Value {
    let p = fixtures().join("quant/tiny-q/quant_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn score(model: &str, ids: &[u64], env: &[(&str, &str)]) -> Vec<f64> {
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let (out, _) = ok_env(
        &["score", "--model", model, "--ids", &ids.join(","), "--json"],
        env,
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    serde_json::from_value(v["logprobs"].clone()).unwrap()
}

#[test]
fn quantized_files_score_like_transformers_on_their_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let r = reference();
    let seqs: Vec<Vec<u64>> = r["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        })
        .collect();
    for ty in ["f16", "bf16", "q8_0", "q4_0"] {
        // the longest sequence whose reference met no 8-bit rounding near a half-way point
        // (tests/quant_model.rs explains), against the reference of what the kernels compute
        let near = r["types"][ty]["int8_act_near_ties"].as_array().unwrap();
        let s = (0..seqs.len())
            .filter(|&s| near[s].as_u64() == Some(0) && seqs[s].len() >= 2)
            .max_by_key(|&s| seqs[s].len())
            .expect("a sequence without near ties");
        let seq = &seqs[s];
        let key = if ty.starts_with('q') {
            "token_logprobs_int8_act"
        } else {
            "token_logprobs"
        };
        let out = tmp.path().join(format!("m-{ty}.gguf"));
        let out_s = out.display().to_string();
        let (_, err) = ok(&[
            "quantize",
            "--model",
            &tiny_q(),
            "--type",
            ty,
            "--out",
            &out_s,
        ]);
        assert!(err.contains(ty), "quantize says the types it used: {err}");
        let got = score(&out_s, seq, &[]);
        let want = r["types"][ty][key][s].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let w = w.as_f64().unwrap();
            assert!((g - w).abs() < 1e-4, "{ty} position {i}: {g} vs {w}");
        }
    }
}

#[test]
fn every_kernel_path_gives_the_same_logprobs_and_a_bad_path_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q4.gguf").display().to_string();
    ok(&[
        "quantize",
        "--model",
        &tiny_q(),
        "--type",
        "q4_0",
        "--out",
        &out,
    ]);
    let ids = [5u64, 17, 900, 3, 3, 250, 999, 0, 42];
    let base = score(&out, &ids, &[("GPT2_KERNEL", "portable")]);
    for isa in ["avx2", "avx512"] {
        let probe = gpt2_env(
            &["score", "--model", &out, "--ids", "1,2"],
            &[("GPT2_KERNEL", isa)],
        );
        if !probe.status.success() {
            // this CPU lacks the path: the refusal must be one clear line naming the variable
            let err = String::from_utf8_lossy(&probe.stderr);
            assert!(
                err.contains("GPT2_KERNEL") && err.contains("does not support"),
                "{err}"
            );
            continue;
        }
        let got = score(&out, &ids, &[("GPT2_KERNEL", isa)]);
        for (g, b) in got.iter().zip(&base) {
            assert!((g - b).abs() < 1e-5, "{isa}: {g} vs portable {b}");
        }
    }
    let err = fails_env(
        &["score", "--model", &out, "--ids", "1,2"],
        &[("GPT2_KERNEL", "sse9")],
    );
    assert!(err.contains("GPT2_KERNEL=sse9"), "{err}");
}

#[test]
fn a_row_that_is_not_whole_blocks_falls_back_to_f16_and_says_so() {
    // tests/fixtures/tiny has n_embd 48: not a multiple of q8_0's 32-weight blocks
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tiny-q8.gguf").display().to_string();
    let tiny = fixtures().join("tiny").display().to_string();
    let (_, err) = ok(&[
        "quantize", "--model", &tiny, "--type", "q8_0", "--out", &out,
    ]);
    assert!(err.contains("f16"), "{err}");
    let (text, _) = ok(&[
        "generate",
        "--model",
        &out,
        "--prompt-ids",
        "1,2,3",
        "--max-new-tokens",
        "4",
        "--temperature",
        "0",
    ]);
    assert!(!text.is_empty());
}

#[test]
fn bench_reads_gguf_and_quantizes_random_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q8.gguf").display().to_string();
    ok(&[
        "quantize",
        "--model",
        &tiny_q(),
        "--type",
        "q8_0",
        "--out",
        &out,
    ]);
    let common = [
        "--prompt-len",
        "4",
        "--new-tokens",
        "4",
        "--repeats",
        "1",
        "--json",
    ];
    let (j, _) = ok(&[&["bench", "--model", &out][..], &common].concat());
    let v: Value = serde_json::from_str(j.trim()).unwrap();
    assert!(v["weights"].as_str().unwrap().contains("q8_0"), "{v}");
    assert!(v["decode_tok_s"].as_f64().unwrap() > 0.0);
    let (j, _) = ok(&[
        &["bench", "--model", &tiny_q(), "--dtype", "q4_0"][..],
        &common,
    ]
    .concat());
    let v: Value = serde_json::from_str(j.trim()).unwrap();
    assert!(v["weights"].as_str().unwrap().contains("q4_0"), "{v}");
}

#[test]
fn bad_gguf_files_are_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.gguf");
    std::fs::write(
        &bad,
        b"GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff",
    )
    .unwrap();
    let err = fails_env(
        &[
            "score",
            "--model",
            &bad.display().to_string(),
            "--ids",
            "1,2",
        ],
        &[],
    );
    assert!(err.contains("bad.gguf"), "{err}");
    let err = fails_env(
        &[
            "quantize",
            "--model",
            &tiny_q(),
            "--type",
            "q3_0",
            "--out",
            "x.gguf",
        ],
        &[],
    );
    assert!(err.contains("q3_0"), "{err}");
    let err = fails_env(
        &[
            "quantize",
            "--model",
            &tiny_q(),
            "--type",
            "q8_0",
            "--out",
            "x.bin",
        ],
        &[],
    );
    assert!(err.contains(".gguf"), "{err}");
}

#[test]
fn fine_tuning_starts_from_a_gguf_file_in_f32_master_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let q = tmp.path().join("default-q8.gguf").display().to_string();
    // the built-in model (n_embd 192, vocab 50257), quantized
    ok(&["quantize", "--type", "q8_0", "--out", &q]);
    let corpus = tmp.path().join("c.txt");
    std::fs::write(
        &corpus,
        "To be, or not to be, that is the question.\n".repeat(60),
    )
    .unwrap();
    let data = tmp.path().join("data").display().to_string();
    ok(&[
        "prepare",
        "--input",
        &corpus.display().to_string(),
        "--out",
        &data,
    ]);
    let run = tmp.path().join("run");
    let (_, err) = ok(&[
        "train",
        "--data",
        &data,
        "--init-from",
        &q,
        "--out",
        &run.display().to_string(),
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--seq-len",
        "16",
        "--sample-every",
        "0",
        "--eval-every",
        "0",
    ]);
    assert!(err.contains("dequantized into f32 master weights"), "{err}");
    assert!(run.join("model.safetensors").is_file());
}

#[test]
fn no_mmap_copies_the_tensors_and_scores_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q8.gguf").display().to_string();
    ok(&[
        "quantize",
        "--model",
        &tiny_q(),
        "--type",
        "q8_0",
        "--out",
        &out,
    ]);
    let ids = [5u64, 17, 900, 3, 250];
    let mapped = score(&out, &ids, &[]);
    let ids_s: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let (copied, _) = ok(&[
        "--no-mmap",
        "score",
        "--model",
        &out,
        "--ids",
        &ids_s.join(","),
        "--json",
    ]);
    let v: Value = serde_json::from_str(copied.trim()).unwrap();
    let copied: Vec<f64> = serde_json::from_value(v["logprobs"].clone()).unwrap();
    assert_eq!(mapped, copied);
}
