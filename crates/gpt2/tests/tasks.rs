//! Task parity with PyTorch / `transformers` and the task training loop.
//!
//! Fixtures: `tests/fixtures/tasks/` from `scripts/make_task_fixtures.py`, computed in float64
//! from the float32 weights of `tiny-classifier` (a `GPT2ForSequenceClassification` saved by
//! `save_pretrained`) and `tiny-lm` (L2 NH3 C24 V500 T29). We compute in f32, so tolerances are:
//!
//! - logits: 1e-4 absolute (the brief's bound; measured ~1e-6);
//! - loss: 1e-5 relative; gradients: 1e-4 relative per tensor, `‖g − g_ref‖ / ‖g_ref‖` (f32
//!   rounding through 2 layers is ~1e-6; a wrong term or a missed mask is ≥ 1e-2);
//! - perplexity: the summed NLL of 99 tokens, 1e-5 relative.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gpt2::data::LoaderState;
use gpt2::params::param_specs;
use gpt2::tasks::classify::{self, Batch, Classifier, Dataset, Example, LabelSet};
use gpt2::tasks::{perplexity, sft};
use gpt2::train::{AdamWConfig, LrSchedule};
use gpt2::trainer::{self, Event, Outcome, Start, TaskData, TrainConfig};
use gpt2::{Model, Params, Rng};

const GRAD_TOL: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasks")
}

/// All tensors of a safetensors file as f64, by name (f32, f64 and i32).
fn read_tensors(path: &Path) -> HashMap<String, Vec<f64>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let d = view.data();
            let vals: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => d
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::F64 => d
                    .chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::I32 => d
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, vals)
        })
        .collect()
}

fn rel(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).powi(2))
        .sum();
    let den: f64 = want.iter().map(|w| w * w).sum();
    (num / den.max(1e-300)).sqrt()
}

/// Every parameter's gradient against `grad.{name}`, relative per tensor; panics listing all
/// tensors over the tolerance.
fn check_grads(what: &str, grads: &Params, fix: &HashMap<String, Vec<f64>>) {
    let mut worst = (0.0, String::new());
    let mut bad = Vec::new();
    for s in param_specs(&grads.cfg) {
        let want = fix
            .get(&format!("grad.{}", s.name))
            .unwrap_or_else(|| panic!("fixture lacks grad.{}", s.name));
        let g = &grads.data[s.offset..s.offset + s.numel()];
        let norm: f64 = g.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert!(norm > 0.0, "{what}: {} has no gradient", s.name);
        let e = rel(g, want);
        if e.is_nan() || e > GRAD_TOL {
            bad.push(format!("{}: {e:.2e}", s.name));
        }
        if e > worst.0 {
            worst = (e, s.name.clone());
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: over {GRAD_TOL:e}: {}",
        bad.join(", ")
    );
    eprintln!("{what}: worst gradient {} {:.2e}", worst.1, worst.0);
}

/// The fixture's rows, unpadded: row i is `inputs[i][..lengths[i]]`.
fn rows(fix: &HashMap<String, Vec<f64>>, key: &str, t: usize) -> Vec<Vec<u32>> {
    fix["lengths"]
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            fix[key][i * t..i * t + n as usize]
                .iter()
                .map(|&x| x as u32)
                .collect()
        })
        .collect()
}

fn classifier() -> Params {
    gpt2::checkpoint::load(&fixtures().join("tiny-classifier")).expect("tiny-classifier")
}

#[test]
fn hf_classifier_checkpoint_loads_with_its_labels_and_gives_the_same_logits() {
    let params = classifier();
    let cfg = &params.cfg;
    assert_eq!(cfg.num_labels, Some(3));
    assert_eq!(cfg.pad_token_id, Some(499));
    let labels = LabelSet::from_config(cfg).unwrap();
    assert_eq!(labels.names(), ["neg", "neu", "pos"]);
    let fix = read_tensors(&fixtures().join("classify.safetensors"));
    let seqs = rows(&fix, "inputs", 29);
    let probs = classify::predict(&params, &seqs, 2, &mut |_| {}).unwrap();
    let mut clf = Classifier::new();
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let batch = Batch::new(&refs, vec![], classify::pad_id(cfg), cfg.n_positions);
    clf.forward(&params, &batch, None);
    let mut worst = 0f64;
    for (i, (&got, &want)) in clf.logits().iter().zip(&fix["logits"]).enumerate() {
        let d = (got as f64 - want).abs();
        worst = worst.max(d);
        assert!(d < 1e-4, "logit {i}: {got} vs {want}");
    }
    eprintln!("classifier logits: max |Δ| {worst:.2e}");
    for (p, l) in probs.iter().zip(clf.logits().chunks_exact(3)) {
        let want = classify::softmax(l);
        assert!(p.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}

#[test]
fn classifier_loss_and_every_gradient_match_pytorch() {
    let params = classifier();
    let fix = read_tensors(&fixtures().join("classify.safetensors"));
    let seqs = rows(&fix, "inputs", 29);
    let refs: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    let labels: Vec<u32> = fix["labels"].iter().map(|&x| x as u32).collect();
    let batch = Batch::new(&refs, labels, classify::pad_id(&params.cfg), 29);
    let mut clf = Classifier::new();
    let loss = clf.forward(&params, &batch, None);
    let want = fix["loss"][0];
    assert!(
        ((loss as f64 - want) / want).abs() < 1e-5,
        "loss {loss} vs {want}"
    );
    let mut grads = Params::zeros(&params.cfg);
    clf.backward(&params, &mut grads, &batch, 1.0);
    check_grads("classify", &grads, &fix);
}

#[test]
fn padding_changes_nothing() {
    let params = classifier();
    let fix = read_tensors(&fixtures().join("classify.safetensors"));
    let seqs = rows(&fix, "inputs", 29);
    let pad = classify::pad_id(&params.cfg);
    let mut clf = Classifier::new();
    // each row alone (T = its own length, padded only up to 16 or 29)…
    let alone: Vec<Vec<f32>> = seqs
        .iter()
        .map(|s| {
            clf.forward(&params, &Batch::new(&[s.as_slice()], vec![], pad, 29), None);
            clf.logits().to_vec()
        })
        .collect();
    // …and the 1-token row padded to 29 beside the longest, with two different pad ids
    for pad in [pad, 3] {
        let b = Batch::new(&[&seqs[2], &seqs[0], &seqs[1]], vec![], pad, 29);
        assert_eq!(b.t, 29);
        clf.forward(&params, &b, None);
        for (row, i) in [2, 0, 1].into_iter().enumerate() {
            let got = &clf.logits()[row * 3..row * 3 + 3];
            for (a, b) in got.iter().zip(&alone[i]) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "row {i} pad {pad}: {got:?} vs {:?}",
                    alone[i]
                );
            }
        }
    }
}

#[test]
fn saved_classifier_has_the_transformers_layout_and_loads_back() {
    let params = classifier();
    let dir = tempfile::tempdir().unwrap();
    gpt2::checkpoint::save(&params, dir.path(), gpt2::checkpoint::SaveDtype::F32).unwrap();
    let keys = |p: &Path| {
        let bytes = std::fs::read(p.join("model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut k: Vec<(String, Vec<usize>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.shape().to_vec()))
            .collect();
        k.sort();
        k
    };
    // the same keys and shapes as save_pretrained wrote
    assert_eq!(keys(dir.path()), keys(&fixtures().join("tiny-classifier")));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["architectures"][0], "GPT2ForSequenceClassification");
    assert_eq!(cfg["num_labels"], 3);
    assert_eq!(cfg["id2label"]["2"], "pos");
    assert_eq!(cfg["label2id"]["neu"], 1);
    assert_eq!(cfg["pad_token_id"], 499);
    let back = gpt2::checkpoint::load(dir.path()).unwrap();
    assert_eq!(back.cfg, params.cfg);
    assert_eq!(back.data, params.data);
}

#[test]
fn label_lookup_by_name_or_class_id() {
    // integer labels are their own names; another integer is not a class id
    let ints = LabelSet::from_training(["5", "1", "3", "10"]).unwrap();
    assert_eq!(ints.names(), ["1", "3", "5", "10"]);
    assert_eq!(ints.index("5"), Some(2));
    assert_eq!(ints.index("0"), None);
    assert_eq!(ints.index("2"), None);
    // named classes: the name, or the class id k < K
    let ids = LabelSet::from_training(["1", "0", "1"]).unwrap();
    let names = ["negative".to_string(), "positive".to_string()];
    let named = ids.renamed(&names).unwrap();
    assert_eq!(named.names(), names);
    assert_eq!(named.index("positive"), Some(1));
    assert_eq!(named.index("0"), Some(0));
    assert_eq!(named.index("1"), Some(1));
    assert_eq!(named.index("2"), None);
    assert_eq!(named.index("neutral"), None);
    let mut cfg = gpt2::Gpt2Config::gpt2();
    named.write_config(&mut cfg);
    assert_eq!(LabelSet::from_config(&cfg).unwrap(), named);
    // renaming needs ids 0..K-1, K names, distinct non-integer names
    let err = |r: Result<LabelSet, gpt2::tasks::TaskError>| r.unwrap_err().to_string();
    let strs = LabelSet::from_training(["neg", "pos"]).unwrap();
    assert!(err(strs.renamed(&names)).contains("used as names already"));
    assert!(err(ints.renamed(&names)).contains("integers but not the ids 0..K-1"));
    assert!(err(ids.renamed(&[String::new()])).contains("--label-names is empty"));
    let gap = ["a".to_string(), " ".to_string()];
    assert!(err(ids.renamed(&gap)).contains("name 2 of 2 is empty"));
    assert!(err(ids.renamed(&names[..1])).contains("1 name(s) for 2 labels"));
    let twice = ["a".to_string(), "a".to_string()];
    assert!(err(ids.renamed(&twice)).contains("repeated"));
    let num = ["a".to_string(), "7".to_string()];
    assert!(err(ids.renamed(&num)).contains("integer"));
}

#[test]
fn new_head_keeps_the_trunk_and_writes_labels() {
    let lm = gpt2::checkpoint::load(&fixtures().join("tiny-lm")).unwrap();
    let labels = LabelSet::from_training(["b", "a", "c", "a"]).unwrap();
    let p = classify::with_new_head(&lm, &labels, &mut Rng::seed(1));
    assert_eq!(p.cfg.num_labels, Some(3));
    assert_eq!(p.cfg.pad_token_id, Some(50256));
    assert_eq!(&p.data[..lm.data.len()], &lm.data[..]);
    let score = p.views().score.unwrap().to_vec();
    let std = (score.iter().map(|x| x * x).sum::<f32>() / score.len() as f32).sqrt();
    assert!((0.01..0.03).contains(&std), "score init std {std}");
    // pad 50256 is outside this vocabulary of 500: padding falls back to a valid id
    assert_eq!(classify::pad_id(&p.cfg), 0);
}

#[test]
fn sft_loss_and_every_gradient_match_pytorch_with_masked_labels() {
    let params = gpt2::checkpoint::load(&fixtures().join("tiny-lm")).unwrap();
    let fix = read_tensors(&fixtures().join("sft.safetensors"));
    let width = fix["ids"].len() / 3;
    let seqs = rows(&fix, "ids", width);
    let examples: Vec<sft::Example> = seqs
        .iter()
        .zip(&fix["prompt_lens"])
        .map(|(ids, &p)| sft::Example {
            line: 1,
            ids: ids.clone(),
            prompt_len: p as usize,
        })
        .collect();
    let refs: Vec<&sft::Example> = examples.iter().collect();
    let batch = sft::Batch::new(&refs, 7, 29);
    assert_eq!(batch.count, 3 + 8 + 1, "completion targets");
    let mut ft = sft::Finetuner::new();
    let loss = ft.forward(&params, &batch, None);
    let want = fix["loss"][0];
    assert!(
        ((loss as f64 - want) / want).abs() < 1e-5,
        "loss {loss} vs {want}"
    );
    let mut grads = Params::zeros(&params.cfg);
    ft.backward(&params, &mut grads, &batch, 1.0);
    check_grads("sft", &grads, &fix);

    // the general hook: the full language-model pass with the same per-token weights
    let mut acts = gpt2::train::Activations::new(&params.cfg, batch.b, batch.t);
    gpt2::train::forward(&params, &mut acts, &batch.inputs, &batch.targets, None);
    let weighted: f64 = acts
        .losses()
        .iter()
        .zip(&batch.weights)
        .map(|(&l, &w)| l as f64 * w as f64)
        .sum();
    assert!(
        ((weighted - want) / want).abs() < 1e-5,
        "{weighted} vs {want}"
    );
    let mut grads = Params::zeros(&params.cfg);
    gpt2::train::backward_weighted(
        &params,
        &mut grads,
        &mut acts,
        &batch.inputs,
        &batch.targets,
        &batch.weights,
    );
    check_grads("backward_weighted", &grads, &fix);
}

#[test]
fn sliding_window_perplexity_matches_transformers() {
    let model = Model::new(gpt2::checkpoint::load(&fixtures().join("tiny-lm")).unwrap());
    let fix = read_tensors(&fixtures().join("perplexity.safetensors"));
    let ids: Vec<u32> = fix["ids"].iter().map(|&x| x as u32).collect();
    let stride = fix["stride"][0] as usize;
    let want: f64 = fix["nll"].iter().sum();
    for batch in [1, 3] {
        let mut calls = 0;
        let t = perplexity::sliding_window(&model, &ids, 1000, 29, stride, batch, &mut |_, _| {
            calls += 1
        })
        .unwrap();
        assert_eq!(t.tokens_scored, 99);
        assert!(((t.nll - want) / want).abs() < 1e-5, "{} vs {want}", t.nll);
        assert_eq!(calls, 8usize.div_ceil(batch));
        assert!((t.bits_per_byte() - want / std::f64::consts::LN_2 / 1000.0).abs() < 1e-6);
    }
    let e = perplexity::sliding_window(&model, &ids, 10, 29, 29, 1, &mut |_, _| {});
    assert!(e.unwrap_err().to_string().contains("--stride 29"));
}

/// A task a tiny model learns in a few steps: the label is whether token 7 occurs.
fn toy_dataset(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed(seed);
    let examples = (0..n)
        .map(|i| {
            let len = 1 + rng.below(12) as usize;
            let mut ids: Vec<u32> = (0..len).map(|_| 10 + rng.below(40) as u32).collect();
            let label = i % 2;
            if label == 1 {
                let at = rng.below(len as u64) as usize;
                ids[at] = 7;
            }
            Example {
                line: i + 2,
                ids,
                label,
            }
        })
        .collect();
    Dataset {
        examples,
        truncated: 0,
        skipped: 0,
    }
}

fn task_config(steps: usize, out: Option<PathBuf>) -> TrainConfig {
    TrainConfig {
        batch_size: 8,
        seq_len: 29,
        grad_accum: 2,
        steps,
        lr: 3e-3,
        schedule: LrSchedule::Constant,
        adamw: AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.0,
        },
        grad_clip: 1.0,
        eval_every: 20,
        eval_steps: 100,
        sample_every: 5,
        sample_prompt: vec![],
        sample_tokens: 4,
        save_every: 9,
        keep_checkpoints: 0,
        seed: 5,
        shuffle: true,
        dropout: 0.1,
        out,
        stop: None,
    }
}

fn toy_model() -> Params {
    let lm = gpt2::checkpoint::load(&fixtures().join("tiny-lm")).unwrap();
    let labels = LabelSet::from_training(["0", "1"]).unwrap();
    classify::with_new_head(&lm, &labels, &mut Rng::seed(2))
}

#[test]
fn classification_training_learns_and_resumes_bitwise() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let data = || TaskData::Classify {
        train: toy_dataset(256, 1),
        val: Some(toy_dataset(32, 2)),
    };
    let mut evals = Vec::new();
    let full = trainer::train_task(
        &task_config(40, Some(out.clone())),
        Start::Fresh(toy_model()),
        data(),
        &mut |e| {
            assert!(!matches!(e, Event::Sample { .. }), "no samples for tasks");
            if let Event::Eval {
                val_loss,
                val_accuracy,
                ..
            } = e
            {
                evals.push((*val_loss, val_accuracy.expect("accuracy")));
            }
        },
    )
    .unwrap();
    let Outcome::Finished { params, .. } = full else {
        panic!("interrupted")
    };
    eprintln!("evals {evals:?}");
    let (first, last) = (evals[0], *evals.last().unwrap());
    assert!(last.0 < first.0, "val loss {first:?} → {last:?}");
    assert!(last.1 >= 0.75, "val accuracy {last:?}");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains("\"val_accuracy\""));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("checkpoint-9/trainer_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["flags"]["task"], "classify");
    let _: LoaderState = serde_json::from_value(state["data"].clone()).unwrap();

    // resume from step 9: the same weights, bit for bit
    let ck = trainer::load_checkpoint(&out.join("checkpoint-9")).unwrap();
    let out2 = dir.path().join("run2");
    std::fs::create_dir(&out2).unwrap();
    let resumed = trainer::train_task(
        &task_config(40, Some(out2)),
        Start::Resume(Box::new(ck)),
        data(),
        &mut |_| {},
    )
    .unwrap();
    let Outcome::Finished { params: p2, .. } = resumed else {
        panic!("interrupted")
    };
    assert!(p2.data == params.data, "resumed run differs");

    // a resume under another task is refused, naming the flag
    let ck = trainer::load_checkpoint(&out.join("checkpoint-9")).unwrap();
    let sft_data = TaskData::Sft {
        train: sft::Dataset {
            examples: vec![sft::Example {
                line: 1,
                ids: vec![1, 2, 3],
                prompt_len: 1,
            }],
            truncated: 0,
        },
        val: None,
    };
    let e = trainer::train_task(
        &task_config(40, None),
        Start::Resume(Box::new(ck)),
        sft_data,
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--task classify"), "{e}");
}

#[test]
fn sft_training_lowers_the_completion_loss() {
    // prompt [a, b] → completion [a + b mod 40 + 10, EOT-like 499]
    let mut rng = Rng::seed(3);
    let mut make = |n: usize| sft::Dataset {
        examples: (0..n)
            .map(|i| {
                let (a, b) = (10 + rng.below(5) as u32, 20 + rng.below(5) as u32);
                sft::Example {
                    line: i + 1,
                    ids: vec![1, a, b, 100 + (a * 7 + b) % 40, 499],
                    prompt_len: 3,
                }
            })
            .collect(),
        truncated: 0,
    };
    let (train, val) = (make(64), make(16));
    let params = gpt2::checkpoint::load(&fixtures().join("tiny-lm")).unwrap();
    let mut cfg = task_config(25, None);
    cfg.dropout = 0.0;
    cfg.eval_every = 24;
    let mut evals = Vec::new();
    trainer::train_task(
        &cfg,
        Start::Fresh(params),
        TaskData::Sft {
            train,
            val: Some(val),
        },
        &mut |e| {
            if let Event::Eval {
                val_loss,
                val_accuracy,
                ..
            } = e
            {
                assert!(val_accuracy.is_none());
                evals.push(*val_loss);
            }
        },
    )
    .unwrap();
    eprintln!("sft val losses {evals:?}");
    assert!(evals[evals.len() - 1] < 0.6 * evals[0], "{evals:?}");
}

/// One optimizer step on `data` with `b` × `accum`, no shuffling, dropout or clipping: the
/// reported loss and gradient norm, and the weights after the step.
fn one_step(
    data: TaskData,
    params: Params,
    b: usize,
    accum: usize,
    t: usize,
) -> (f32, f32, Params) {
    let mut cfg = task_config(1, None);
    (cfg.batch_size, cfg.grad_accum, cfg.seq_len) = (b, accum, t);
    (cfg.shuffle, cfg.dropout, cfg.grad_clip) = (false, 0.0, 0.0);
    (cfg.eval_every, cfg.sample_every, cfg.save_every) = (0, 0, 0);
    // eps ≫ |g| makes the first AdamW update ≈ lr·g, so the weights compare the gradients (with
    // the usual eps every update is ≈ ±lr, and rounding noise on a near-zero gradient flips it)
    (cfg.lr, cfg.adamw.eps) = (1.0, 1.0);
    let mut seen = None;
    let out = trainer::train_task(&cfg, Start::Fresh(params), data, &mut |e| {
        if let Event::Step(m) = e {
            seen = Some((m.loss, m.grad_norm));
        }
    })
    .unwrap();
    let Outcome::Finished { params, .. } = out else {
        panic!("not finished")
    };
    let (loss, norm) = seen.expect("one step");
    (loss, norm, params)
}

#[test]
fn accumulation_weights_micro_batches_by_their_counted_targets() {
    // The same examples as one batch of 2 or as 2 micro-batches of 1 must give the same step:
    // the gradient of the mean loss over all counted targets of the step. With a mean per
    // micro-batch averaged over micro-batches (the old behaviour), SFT examples with 1 and 5
    // completion targets gave a grad norm 6.62 against 4.40 on the real model.
    let lm = gpt2::checkpoint::load(&fixtures().join("tiny-lm")).unwrap();
    let sft_data = || TaskData::Sft {
        train: sft::Dataset {
            examples: vec![
                sft::Example {
                    line: 1,
                    ids: vec![1, 2, 3, 4, 5, 6, 499],
                    prompt_len: 6,
                },
                sft::Example {
                    line: 2,
                    ids: vec![7, 8, 9, 10, 11, 12, 499],
                    prompt_len: 2,
                },
            ],
            truncated: 0,
        },
        val: None,
    };
    let labels = LabelSet::from_training(["0", "1"]).unwrap();
    let clf = classify::with_new_head(&lm, &labels, &mut Rng::seed(2));
    let clf_data = || TaskData::Classify {
        train: Dataset {
            examples: vec![
                Example {
                    line: 2,
                    ids: vec![3, 4],
                    label: 0,
                },
                Example {
                    line: 3,
                    ids: vec![5, 6, 7, 8, 9, 10],
                    label: 1,
                },
            ],
            truncated: 0,
            skipped: 0,
        },
        val: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("train.bin");
    let tokens: Vec<u32> = (0..64).map(|i| (i * 37 % 500) as u32).collect();
    gpt2::data::write_shard(&shard, &tokens).unwrap();
    let lm_data = || {
        TaskData::Lm(trainer::TrainData {
            train: gpt2::data::Shard::open(&shard, 500).unwrap(),
            val: None,
        })
    };
    let cases: [(&str, &dyn Fn() -> TaskData, &Params); 3] = [
        ("sft", &sft_data, &lm),
        ("classify", &clf_data, &clf),
        ("lm", &lm_data, &lm),
    ];
    for (task, data, params) in cases {
        let (l2, n2, p2) = one_step(data(), params.clone(), 2, 1, 8);
        let (l1, n1, p1) = one_step(data(), params.clone(), 1, 2, 8);
        assert!(
            (l1 - l2).abs() <= 1e-6 * l2.abs(),
            "{task}: loss {l1} vs {l2}"
        );
        assert!(
            (n1 - n2).abs() <= 1e-5 * n2,
            "{task}: grad norm {n1} vs {n2}"
        );
        let worst = p1
            .data
            .iter()
            .zip(&p2.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "{task}: weights differ by {worst}");
        assert!(p1.data != params.data, "{task}: the step changed nothing");
    }
}

#[test]
fn a_corrupted_checkpoint_is_refused_naming_the_file() {
    // Truncation or one flipped bit in any file of a checkpoint must stop a resume with an error
    // naming that file, never resume into a silently different run.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut cfg = task_config(3, Some(out.clone()));
    (cfg.save_every, cfg.eval_every, cfg.sample_every) = (2, 0, 0);
    let data = TaskData::Classify {
        train: toy_dataset(32, 1),
        val: None,
    };
    trainer::train_task(&cfg, Start::Fresh(toy_model()), data, &mut |_| {}).unwrap();
    let ck = out.join("checkpoint-2");
    trainer::load_checkpoint(&ck).expect("an intact checkpoint loads");
    type Damage = fn(&mut Vec<u8>);
    let flip_middle: Damage = |b| {
        let i = b.len() / 2;
        b[i] ^= 0x10
    };
    let truncate: Damage = |b| b.truncate(b.len() - 7);
    // a digit of the loader position in trainer_state.json: still valid JSON, another run
    let other_position: Damage = |b| {
        let text = String::from_utf8(b.clone()).unwrap();
        let at = text.find("\"step\": 2").expect("step in the state") + 8;
        b[at] = b'1';
    };
    for (file, damage) in [
        ("optimizer.safetensors", flip_middle),
        ("optimizer.safetensors", truncate),
        ("model.safetensors", flip_middle),
        ("trainer_state.json", other_position),
        ("config.json", truncate),
        ("checksums.json", truncate),
        ("checksums.json", |b| b.clear()),
    ] {
        let copy = dir.path().join("copy");
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir(&copy).unwrap();
        for e in std::fs::read_dir(&ck).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
        }
        let path = copy.join(file);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        if bytes.is_empty() {
            // a deleted checksums file must not turn the checks off
            std::fs::remove_file(&path).unwrap();
        } else {
            std::fs::write(&path, &bytes).unwrap();
        }
        let err = match trainer::load_checkpoint(&copy) {
            Ok(_) => panic!("{file}: a damaged checkpoint loaded"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(file), "{file}: {err}");
        // the model alone (`--init-from`, `generate --model`) is checked too
        if file == "model.safetensors" || file == "config.json" {
            let err = gpt2::checkpoint::load(&copy).expect_err(file).to_string();
            assert!(
                err.contains(file) && err.contains("checksum"),
                "{file}: {err}"
            );
        }
    }
    gpt2::checkpoint::load(&ck).expect("an intact checkpoint's model loads");
}
