//! Forward-pass parity with Hugging Face `transformers` GPT2LMHeadModel (float64) on the fixtures
//! written by `scripts/make_fixtures.py`: log-probabilities within 1e-4 absolute for full sequences
//! up to maxT and for incremental decoding with the KV cache, and identical greedy continuations.

use std::path::PathBuf;

use gpt2::generate::{generate, GenerateOptions};
use gpt2::sampling::SamplingParams;
use gpt2::tokenizer::Tokenizer;
use gpt2::{KvCache, Logits, Model};
use safetensors::SafeTensors;

const TOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

struct Reference {
    tokens: Vec<u32>,
    b: usize,
    t: usize,
    logprobs: Vec<f32>,
    greedy_prompt: Vec<u32>,
    greedy_tokens: Vec<u32>,
}

fn read_reference(name: &str) -> Reference {
    let bytes = std::fs::read(fixture(name).join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let i32s = |k: &str| -> Vec<u32> {
        st.tensor(k)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as u32)
            .collect()
    };
    let tok = st.tensor("tokens").unwrap();
    let (b, t) = (tok.shape()[0], tok.shape()[1]);
    let logprobs = st
        .tensor("logprobs")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Reference {
        tokens: i32s("tokens"),
        b,
        t,
        logprobs,
        greedy_prompt: i32s("greedy_prompt"),
        greedy_tokens: i32s("greedy_tokens"),
    }
}

fn log_softmax(row: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; row.len()];
    gpt2::kernels::softmax::log_softmax_forward(&mut out, row, row.len());
    out
}

/// Largest |ours − reference| over a (T, V) block, and where.
fn worst(got: &[f32], want: &[f32]) -> (f32, usize) {
    got.iter()
        .zip(want)
        .enumerate()
        .map(|(i, (a, b))| ((a - b).abs(), i))
        .fold((0.0, 0), |m, x| if x.0 > m.0 { x } else { m })
}

fn check_full_and_incremental(name: &str) {
    let model = Model::new(gpt2::checkpoint::load(&fixture(name)).unwrap());
    let r = read_reference(name);
    let v = model.config().vocab_size;
    assert_eq!(
        r.t,
        model.config().n_positions,
        "{name}: reference covers the full context"
    );
    for bi in 0..r.b {
        let ids = &r.tokens[bi * r.t..(bi + 1) * r.t];
        let want = &r.logprobs[bi * r.t * v..(bi + 1) * r.t * v];
        // full sequence, all positions at once
        let logits = model.logits(ids).unwrap();
        let got: Vec<f32> = logits.chunks(v).flat_map(log_softmax).collect();
        let (d, at) = worst(&got, want);
        assert!(
            d < TOL,
            "{name} row {bi} full: max |Δ logprob| {d} at position {} id {}",
            at / v,
            at % v
        );
        // incremental: a prefix of 5, then one token at a time through the KV cache
        let mut cache = KvCache::new(model.config(), r.t);
        let mut got_inc = model
            .forward(&mut [&mut cache], &[&ids[..5]], Logits::All)
            .unwrap();
        for p in 5..r.t {
            got_inc.extend(
                model
                    .forward(&mut [&mut cache], &[&ids[p..p + 1]], Logits::All)
                    .unwrap(),
            );
        }
        let got_inc: Vec<f32> = got_inc.chunks(v).flat_map(log_softmax).collect();
        let (d, at) = worst(&got_inc, want);
        assert!(
            d < TOL,
            "{name} row {bi} incremental: max |Δ logprob| {d} at position {}",
            at / v
        );
    }
    // both rows as one batch of two sequences through the cache, one token at a time
    let mut c0 = KvCache::new(model.config(), r.t);
    let mut c1 = KvCache::new(model.config(), r.t);
    for p in 0..r.t {
        let a = &r.tokens[p..p + 1];
        let b = &r.tokens[r.t + p..r.t + p + 1];
        let l = model
            .forward(&mut [&mut c0, &mut c1], &[a, b], Logits::Last)
            .unwrap();
        for (bi, row) in l.chunks(v).enumerate() {
            let want = &r.logprobs[(bi * r.t + p) * v..(bi * r.t + p + 1) * v];
            let (d, _) = worst(&log_softmax(row), want);
            assert!(d < TOL, "{name} batched decode row {bi} position {p}: {d}");
        }
    }
}

fn check_greedy(name: &str) {
    let model = Model::new(gpt2::checkpoint::load(&fixture(name)).unwrap());
    let r = read_reference(name);
    let tok = Tokenizer::gpt2().unwrap();
    let opts = GenerateOptions {
        max_new_tokens: r.greedy_tokens.len(),
        sampling: SamplingParams::greedy(),
        ignore_eos: true,
        ..Default::default()
    };
    let mut g = generate(&model, &tok, &r.greedy_prompt, &opts, 1).unwrap();
    let ids: Vec<u32> = g.by_ref().map(|e| e.unwrap().token.id).collect();
    assert_eq!(
        ids, r.greedy_tokens,
        "{name}: greedy continuation differs from transformers"
    );
}

#[test]
fn tiny_f32_prefixed_matches_transformers() {
    check_full_and_incremental("tiny");
    check_greedy("tiny");
}

#[test]
fn tiny_f16_unprefixed_with_lm_head_and_attn_bias_matches_transformers() {
    check_full_and_incremental("tiny-f16");
    check_greedy("tiny-f16");
}

#[test]
fn tiny_bf16_matches_transformers() {
    check_full_and_incremental("tiny-bf16");
    check_greedy("tiny-bf16");
}

#[test]
fn sharded_checkpoint_gives_the_same_logits() {
    let a = Model::new(gpt2::checkpoint::load(&fixture("tiny")).unwrap());
    let b = Model::new(gpt2::checkpoint::load(&fixture("tiny-sharded")).unwrap());
    assert_eq!(a.params().unwrap().data, b.params().unwrap().data);
}

#[test]
fn prompt_longer_than_context_is_an_error_naming_both_lengths() {
    let model = Model::new(gpt2::checkpoint::load(&fixture("tiny")).unwrap());
    let ids = vec![1u32; 38];
    let err = model.logits(&ids).unwrap_err().to_string();
    assert!(err.contains("38") && err.contains("37"), "{err}");
    let err = model.logits(&[1, 1000]).unwrap_err().to_string();
    assert!(err.contains("1000"), "{err}");
}
