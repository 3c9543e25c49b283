//! The sampling filters at their exact boundaries, against `transformers`' logits processors
//! (`tests/fixtures/sampling_edges.json`, from `scripts/make_sampling_fixtures.py`).
//!
//! The distributions hit each boundary exactly in binary floating point (tied logits give
//! probabilities 1/n exactly): a cumulative probability exactly equal to top_p, ties at the k-th
//! logit, a repetition penalty on a zero (and a negative-zero) logit. Our filters must give the
//! result the definition gives, which is what transformers gives: the same number of kept tokens
//! and the same kept scores. Which of several tied tokens is kept is unspecified in torch (its
//! sort is not stable); ours keeps the lowest ids, checked here too.

use gpt2::sampling::{Sampler, SamplingParams};
use gpt2::Rng;

#[test]
fn filters_at_exact_boundaries_match_transformers() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sampling_edges.json"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 13);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let f = |v: &serde_json::Value| v.as_f64().map(|x| x as f32);
        let mut logits: Vec<f32> = case["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| f(x).unwrap())
            .collect();
        let previous: Vec<u32> = case["previous"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let params = SamplingParams {
            temperature: 1.0,
            top_k: case["top_k"].as_u64().map(|k| k as usize),
            top_p: f(&case["top_p"]),
            repetition_penalty: f(&case["repetition_penalty"]).unwrap(),
        };
        // JSON keeps -0.0 as "-0.0", and serde_json reads it back with its sign
        let want: Vec<Option<f32>> = case["scores"].as_array().unwrap().iter().map(f).collect();
        let mut s = Sampler::new(params, Rng::seed(1)).unwrap();
        let id = s.sample(&mut logits, &previous) as usize;
        let kept: Vec<(usize, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, x)| **x > f32::NEG_INFINITY)
            .map(|(i, &x)| (i, x))
            .collect();
        let mut got_vals: Vec<f32> = kept.iter().map(|&(_, x)| x).collect();
        let mut want_vals: Vec<f32> = want.iter().flatten().copied().collect();
        assert_eq!(
            kept.len(),
            want_vals.len(),
            "{name}: kept {kept:?}, transformers {want:?}"
        );
        got_vals.sort_by(f32::total_cmp);
        want_vals.sort_by(f32::total_cmp);
        assert_eq!(got_vals, want_vals, "{name}: kept scores");
        assert!(
            kept.iter().any(|&(i, _)| i == id),
            "{name}: drew removed id {id}"
        );
        // where transformers kept exactly the tokens at the same positions (no tie was split),
        // the positions agree too; a split tie keeps our lowest ids
        for (i, w) in want.iter().enumerate() {
            let ours = logits[i] > f32::NEG_INFINITY;
            let tie_split = want.iter().enumerate().any(|(j, o)| {
                j != i && case["logits"][j] == case["logits"][i] && o.is_some() != w.is_some()
            });
            if !tie_split {
                assert_eq!(ours, w.is_some(), "{name}: token {i}");
                if let Some(w) = w {
                    assert_eq!(
                        logits[i].to_bits(),
                        w.to_bits(),
                        "{name}: token {i} (sign of zero)"
                    );
                }
            } else if ours {
                let lower_removed = (0..i).any(|j| {
                    case["logits"][j] == case["logits"][i] && logits[j] == f32::NEG_INFINITY
                });
                assert!(
                    !lower_removed,
                    "{name}: a tie kept a higher id over a lower one"
                );
            }
        }
    }
}
