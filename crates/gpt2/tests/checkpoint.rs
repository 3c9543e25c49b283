//! Checkpoint I/O: round trips, every accepted layout quirk, every rejected file, and the PyTorch
//! fixtures from `scripts/make_fixtures.py` (`tests/fixtures/{tiny,tiny-f16,tiny-bf16,tiny-sharded}`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gpt2::checkpoint::{self, CheckpointError, SaveDtype};
use gpt2::params::param_specs;
use gpt2::{Error, Gpt2Config, Params, Rng};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// L 2, NH 3, C 12, maxT 7, V 11: odd sizes so a transposed or swapped tensor cannot fit.
fn tiny_cfg(num_labels: Option<usize>) -> Gpt2Config {
    Gpt2Config {
        n_layer: 2,
        n_head: 3,
        n_embd: 12,
        n_positions: 7,
        vocab_size: 11,
        num_labels,
        ..Gpt2Config::gpt2()
    }
}

/// Random parameters (N(0, 1) so most values are not exactly representable in f16 / bf16).
fn random_params(cfg: &Gpt2Config, seed: u64) -> Params {
    let mut p = Params::zeros(cfg);
    let mut rng = Rng::seed(seed);
    for x in p.data.iter_mut() {
        *x = rng.normal();
    }
    p
}

/// One tensor to write: key, dtype, shape, little-endian bytes.
type Entry = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Every parameter of `p` as an F32 entry, keyed with or without the `transformer.` prefix.
fn entries(p: &Params, prefix: bool) -> Vec<Entry> {
    param_specs(&p.cfg)
        .iter()
        .map(|s| {
            let key = if prefix && s.in_transformer() {
                format!("transformer.{}", s.name)
            } else {
                s.name.clone()
            };
            let data = &p.data[s.offset..s.offset + s.numel()];
            (key, Dtype::F32, s.shape.clone(), f32_bytes(data))
        })
        .collect()
}

fn write_st(path: &Path, entries: &[Entry]) {
    let views: Vec<(String, TensorView<'_>)> = entries
        .iter()
        .map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, &None, path).unwrap();
}

/// A checkpoint folder with `cfg`'s config.json and one weights file of `entries`.
fn write_dir(dir: &Path, cfg: &Gpt2Config, entries: &[Entry]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_hf_json()).unwrap();
    write_st(&dir.join("model.safetensors"), entries);
}

fn load_err(dir: &Path) -> Error {
    match checkpoint::load(dir) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e,
    }
}

fn assert_bitwise(got: &Params, want: &Params) {
    assert_eq!(got.cfg, want.cfg);
    assert_eq!(got.data.len(), want.data.len());
    for (i, (a, b)) in got.data.iter().zip(&want.data).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "element {i}: {a} vs {b}");
    }
}

// ---------------------------------------------------------------- round trips

#[test]
fn round_trip_f32_is_bitwise() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, labels) in [None, Some(3)].into_iter().enumerate() {
        let p = random_params(&tiny_cfg(labels), 1 + i as u64);
        let dir = tmp.path().join(format!("m{i}"));
        checkpoint::save(&p, &dir, SaveDtype::F32).unwrap();
        assert_bitwise(&checkpoint::load(&dir).unwrap(), &p);
    }
}

#[test]
fn round_trip_f16_and_bf16_round_each_value_to_nearest() {
    let tmp = tempfile::tempdir().unwrap();
    let p = random_params(&tiny_cfg(None), 7);
    for dtype in [SaveDtype::F16, SaveDtype::BF16] {
        let dir = tmp.path().join(format!("{dtype:?}"));
        checkpoint::save(&p, &dir, dtype).unwrap();
        let got = checkpoint::load(&dir).unwrap();
        assert_eq!(got.cfg, p.cfg);
        // Relative rounding bound: half an ulp of an 11-bit (f16) or 8-bit (bf16) significand.
        let rel = match dtype {
            SaveDtype::F16 => 2f32.powi(-11),
            _ => 2f32.powi(-8),
        };
        let mut inexact = 0;
        for (i, (&g, &x)) in got.data.iter().zip(&p.data).enumerate() {
            let want = match dtype {
                SaveDtype::F16 => half::f16::from_f32(x).to_f32(),
                _ => half::bf16::from_f32(x).to_f32(),
            };
            assert_eq!(g.to_bits(), want.to_bits(), "{dtype:?} element {i}");
            // f16 subnormals (|x| < 6.1e-5) have only absolute precision 2^-25.
            assert!(
                (g - x).abs() <= rel * x.abs() + 2f32.powi(-25),
                "{dtype:?} {i}: {g} vs {x}"
            );
            inexact += usize::from(g != x);
        }
        assert!(
            inexact > p.data.len() / 2,
            "{dtype:?}: values were not rounded at all"
        );
    }
}

#[test]
fn save_writes_the_transformers_layout() {
    let tmp = tempfile::tempdir().unwrap();
    for labels in [None, Some(2)] {
        let p = random_params(&tiny_cfg(labels), 3);
        let dir = tmp.path().join(format!("{labels:?}"));
        checkpoint::save(&p, &dir, SaveDtype::BF16).unwrap();
        let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(
            meta.metadata()
                .as_ref()
                .unwrap()
                .get("format")
                .map(String::as_str),
            Some("pt")
        );
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let specs = param_specs(&p.cfg);
        assert_eq!(st.len(), specs.len());
        for s in &specs {
            let key = if s.name == "score.weight" {
                s.name.clone()
            } else {
                format!("transformer.{}", s.name)
            };
            let t = st.tensor(&key).unwrap();
            assert_eq!(t.shape(), s.shape.as_slice(), "{key}");
            assert_eq!(t.dtype(), Dtype::BF16, "{key}");
        }
        assert!(st.names().iter().all(|k| !k.contains("lm_head")
            && !k.ends_with(".attn.bias")
            && !k.contains("masked_bias")));
        let cfg_json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let arch = if labels.is_some() {
            "GPT2ForSequenceClassification"
        } else {
            "GPT2LMHeadModel"
        };
        assert_eq!(cfg_json["architectures"][0], arch);
    }
}

#[test]
fn save_creates_the_folder_keeps_other_files_and_leaves_no_temporaries() {
    let tmp = tempfile::tempdir().unwrap();
    let p = random_params(&tiny_cfg(None), 4);
    let dir = tmp.path().join("new");
    checkpoint::save(&p, &dir, SaveDtype::F32).unwrap();
    std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
    let q = random_params(&tiny_cfg(None), 5);
    checkpoint::save(&q, &dir, SaveDtype::F32).unwrap(); // overwrite in place
    assert_bitwise(&checkpoint::load(&dir).unwrap(), &q);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer.json"]
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tokenizer.json")).unwrap(),
        "{}"
    );
}

#[test]
fn save_into_a_missing_parent_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = random_params(&tiny_cfg(None), 4);
    let dir = tmp.path().join("no").join("such");
    let err = checkpoint::save(&p, &dir, SaveDtype::F32).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Checkpoint(CheckpointError::ParentMissing { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("parent folder does not exist"),
        "{err}"
    );
    assert!(!tmp.path().join("no").exists());
}

#[test]
fn save_rejects_a_buffer_that_does_not_match_the_config() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = random_params(&tiny_cfg(None), 4);
    p.data.pop();
    let err = checkpoint::save(&p, tmp.path(), SaveDtype::F32).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

// ---------------------------------------------------------------- accepted quirks

#[test]
fn loads_keys_without_prefix_with_lm_head_and_mask_buffers() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 11);
    let mut e = entries(&p, false);
    let wte = p.get("wte.weight").unwrap();
    // A tied lm_head saved beside wte (as old transformers did) is checked and dropped.
    e.push((
        "lm_head.weight".into(),
        Dtype::F32,
        vec![11, 12],
        f32_bytes(wte),
    ));
    for i in 0..cfg.n_layer {
        let mask: Vec<f32> = (0..49)
            .map(|j| f32::from(u8::from(j % 7 <= j / 7)))
            .collect();
        e.push((
            format!("h.{i}.attn.bias"),
            Dtype::F32,
            vec![1, 1, 7, 7],
            f32_bytes(&mask),
        ));
        e.push((
            format!("h.{i}.attn.masked_bias"),
            Dtype::F32,
            vec![],
            f32_bytes(&[-1e4]),
        ));
    }
    write_dir(tmp.path(), &cfg, &e);
    assert_bitwise(&checkpoint::load(tmp.path()).unwrap(), &p);
}

#[test]
fn loads_prefixed_keys_with_prefixed_mask_buffers_and_no_lm_head() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 12);
    let mut e = entries(&p, true);
    e.push((
        "transformer.h.1.attn.bias".into(),
        Dtype::F32,
        vec![1],
        f32_bytes(&[1.0]),
    ));
    write_dir(tmp.path(), &cfg, &e);
    assert_bitwise(&checkpoint::load(tmp.path()).unwrap(), &p);
}

#[test]
fn converts_f16_bf16_and_f64_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let mut p = random_params(&cfg, 13);
    // Make every value exactly representable in bf16 (and so in f16 for these magnitudes, and f64).
    for x in p.data.iter_mut() {
        *x = half::bf16::from_f32(*x).to_f32();
    }
    let mut e = entries(&p, true);
    for (i, (_, dtype, _, bytes)) in e.iter_mut().enumerate() {
        let vals: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        match i % 3 {
            0 => {
                *dtype = Dtype::BF16;
                *bytes = vals
                    .iter()
                    .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                    .collect();
            }
            1 => {
                *dtype = Dtype::F64;
                *bytes = vals
                    .iter()
                    .flat_map(|&v| f64::from(v).to_le_bytes())
                    .collect();
            }
            _ => {}
        }
    }
    write_dir(tmp.path(), &cfg, &e);
    assert_bitwise(&checkpoint::load(tmp.path()).unwrap(), &p);
}

#[test]
fn loads_sharded_weights_through_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 14);
    let e = entries(&p, true);
    let (a, b) = e.split_at(e.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    std::fs::write(tmp.path().join("config.json"), cfg.to_hf_json()).unwrap();
    write_st(&tmp.path().join(names[0]), a);
    write_st(&tmp.path().join(names[1]), b);
    let map: serde_json::Map<String, serde_json::Value> = a
        .iter()
        .map(|x| (x.0.clone(), names[0].into()))
        .chain(b.iter().map(|x| (x.0.clone(), names[1].into())))
        .collect();
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let files = checkpoint::weight_files(tmp.path()).unwrap();
    assert_eq!(files.files.len(), 2);
    assert_bitwise(&checkpoint::load(tmp.path()).unwrap(), &p);

    // A listed shard that is gone names the index and the shard.
    std::fs::remove_file(tmp.path().join(names[1])).unwrap();
    let err = load_err(tmp.path()).to_string();
    assert!(
        err.contains("model.safetensors.index.json") && err.contains(names[1]),
        "{err}"
    );
}

#[test]
fn a_shard_index_may_not_point_outside_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    std::fs::write(tmp.path().join("config.json"), cfg.to_hf_json()).unwrap();
    let index = serde_json::json!({"weight_map": {"wte.weight": "../model.safetensors"}});
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let err = load_err(tmp.path());
    assert!(
        matches!(err, Error::Checkpoint(CheckpointError::Index { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("../model.safetensors"), "{err}");
}

#[test]
fn score_weight_makes_a_classifier_and_labels_come_from_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let p = random_params(&tiny_cfg(Some(4)), 15);
    // config.json without num_labels, as transformers writes for the default labels.
    write_dir(tmp.path(), &tiny_cfg(None), &entries(&p, true));
    let got = checkpoint::load(tmp.path()).unwrap();
    assert_eq!(got.cfg.num_labels, Some(4));
    assert_eq!(got.data, p.data);

    // Filling LM parameters from a classifier's file names the head.
    let mut lm = Params::zeros(&tiny_cfg(None));
    let err = checkpoint::load_weights_into(&mut lm, &[tmp.path().join("model.safetensors")])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Checkpoint(CheckpointError::ScoreWithoutLabels { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("num_labels"), "{err}");
}

#[test]
fn id2label_alone_does_not_make_a_classifier() {
    // Hub configs of language models often carry the default two labels.
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = tiny_cfg(None);
    cfg.id2label = Some(
        [
            ("0".into(), "LABEL_0".into()),
            ("1".into(), "LABEL_1".into()),
        ]
        .into(),
    );
    let p = random_params(&tiny_cfg(None), 16);
    write_dir(tmp.path(), &cfg, &entries(&p, true));
    let got = checkpoint::load(tmp.path()).unwrap();
    assert_eq!(got.cfg.num_labels, None);
    assert_eq!(got.data, p.data);
}

// ---------------------------------------------------------------- rejected checkpoints

#[test]
fn a_misshapen_tensor_names_the_key_and_both_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 21);
    let mut e = entries(&p, true);
    let t = e
        .iter_mut()
        .find(|x| x.0 == "transformer.h.1.attn.c_attn.weight")
        .unwrap();
    t.2 = vec![36, 12]; // stored as nn.Linear (out, in): wrong for GPT-2's Conv1D
    write_dir(tmp.path(), &cfg, &e);
    let err = load_err(tmp.path());
    match &err {
        Error::Checkpoint(CheckpointError::Shape { key, want, got, .. }) => {
            assert_eq!(key, "transformer.h.1.attn.c_attn.weight");
            assert_eq!(want, &[12, 36]);
            assert_eq!(got, &[36, 12]);
        }
        other => panic!("expected a shape error, got {other}"),
    }
    let msg = err.to_string();
    for part in [
        "transformer.h.1.attn.c_attn.weight",
        "[12, 36]",
        "[36, 12]",
        "model.safetensors",
    ] {
        assert!(msg.contains(part), "`{part}` not in: {msg}");
    }
}

#[test]
fn an_untied_lm_head_is_refused_not_replaced_by_wte() {
    // A checkpoint whose head differs from wte (tie_word_embeddings false in its origin) must not
    // run silently with the tied head.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 11);
    let mut e = entries(&p, false);
    let mut head = p.get("wte.weight").unwrap().to_vec();
    head[5 * 12 + 3] += 0.25;
    e.push((
        "lm_head.weight".into(),
        Dtype::F32,
        vec![11, 12],
        f32_bytes(&head),
    ));
    write_dir(tmp.path(), &cfg, &e);
    let msg = checkpoint::load(tmp.path()).unwrap_err().to_string();
    assert!(
        msg.contains("lm_head.weight") && msg.contains("untied") && msg.contains("element 63"),
        "{msg}"
    );
}

#[test]
fn a_misshapen_lm_head_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 22);
    let mut e = entries(&p, true);
    e.push((
        "lm_head.weight".into(),
        Dtype::F32,
        vec![12, 11],
        f32_bytes(&[0.0; 132]),
    ));
    write_dir(tmp.path(), &cfg, &e);
    let msg = load_err(tmp.path()).to_string();
    assert!(
        msg.contains("lm_head.weight") && msg.contains("[11, 12]") && msg.contains("[12, 11]"),
        "{msg}"
    );
}

#[test]
fn config_and_weights_of_different_sizes_do_not_load() {
    let tmp = tempfile::tempdir().unwrap();
    let p = random_params(&tiny_cfg(None), 23);
    let bigger = Gpt2Config {
        n_positions: 8,
        ..tiny_cfg(None)
    };
    write_dir(tmp.path(), &bigger, &entries(&p, true));
    let msg = load_err(tmp.path()).to_string();
    assert!(
        msg.contains("wpe.weight") && msg.contains("[8, 12]") && msg.contains("[7, 12]"),
        "{msg}"
    );
}

#[test]
fn a_missing_tensor_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 24);
    let mut e = entries(&p, true);
    e.retain(|x| x.0 != "transformer.h.0.mlp.c_fc.bias");
    write_dir(tmp.path(), &cfg, &e);
    let err = load_err(tmp.path());
    assert!(
        matches!(&err, Error::Checkpoint(CheckpointError::Missing { key, .. }) if key == "h.0.mlp.c_fc.bias"),
        "{err}"
    );
}

#[test]
fn num_labels_without_score_weight_is_a_missing_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let p = random_params(&tiny_cfg(None), 25);
    write_dir(tmp.path(), &tiny_cfg(Some(2)), &entries(&p, true));
    let err = load_err(tmp.path());
    assert!(
        matches!(&err, Error::Checkpoint(CheckpointError::Missing { key, .. }) if key == "score.weight"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_is_unexpected() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 26);
    for extra in [
        "transformer.h.0.attn.q_proj.weight",
        "transformer.h.2.ln_1.weight",
        "lm_head.bias",
    ] {
        let mut e = entries(&p, true);
        e.push((extra.into(), Dtype::F32, vec![12], f32_bytes(&[0.0; 12])));
        write_dir(tmp.path(), &cfg, &e);
        let err = load_err(tmp.path());
        assert!(
            matches!(&err, Error::Checkpoint(CheckpointError::Unexpected { key, .. }) if key == extra),
            "{extra}: {err}"
        );
        assert!(err.to_string().contains(extra), "{err}");
    }
}

#[test]
fn a_key_with_and_without_prefix_is_a_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 27);
    let mut e = entries(&p, true);
    e.push((
        "ln_f.bias".into(),
        Dtype::F32,
        vec![12],
        f32_bytes(&[0.0; 12]),
    ));
    write_dir(tmp.path(), &cfg, &e);
    let err = load_err(tmp.path());
    assert!(
        matches!(err, Error::Checkpoint(CheckpointError::Duplicate { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("transformer.ln_f.bias"), "{err}");
}

#[test]
fn an_integer_tensor_is_a_dtype_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tiny_cfg(None);
    let p = random_params(&cfg, 28);
    let mut e = entries(&p, true);
    let t = e
        .iter_mut()
        .find(|x| x.0 == "transformer.ln_f.weight")
        .unwrap();
    t.1 = Dtype::I32;
    write_dir(tmp.path(), &cfg, &e);
    let msg = load_err(tmp.path()).to_string();
    assert!(
        msg.contains("transformer.ln_f.weight") && msg.contains("I32"),
        "{msg}"
    );
}

#[test]
fn truncated_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = random_params(&tiny_cfg(None), 31);
    checkpoint::save(&p, tmp.path(), SaveDtype::F32).unwrap();
    let path = tmp.path().join("model.safetensors");
    let full = std::fs::read(&path).unwrap();
    let header = 8 + u64::from_le_bytes(full[..8].try_into().unwrap()) as usize;
    // Chop: the data, at the header's end, inside the header, inside the length, to nothing.
    for len in [
        full.len() - 1,
        full.len() - 1000,
        header,
        header - 10,
        20,
        5,
        0,
    ] {
        std::fs::write(&path, &full[..len]).unwrap();
        let err = load_err(tmp.path());
        assert!(
            matches!(err, Error::Checkpoint(CheckpointError::Corrupt { .. })),
            "{len}: {err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    // One byte too many is as wrong as one too few.
    let mut longer = full.clone();
    longer.push(0);
    std::fs::write(&path, &longer).unwrap();
    assert!(load_err(tmp.path())
        .to_string()
        .contains("truncated or padded"));
}

#[test]
fn garbage_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), tiny_cfg(None).to_hf_json()).unwrap();
    let path = tmp.path().join("model.safetensors");
    let mut rng = Rng::seed(9);
    let random: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    let mut bad_json = 16u64.to_le_bytes().to_vec();
    bad_json.extend_from_slice(b"{\"a\": [1, 2, 3 ");
    let mut huge_len = u64::MAX.to_le_bytes().to_vec();
    huge_len.extend_from_slice(&[0; 64]);
    for bytes in [
        random,
        bad_json,
        huge_len,
        b"<html>not found</html>".to_vec(),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        let err = load_err(tmp.path());
        assert!(
            matches!(err, Error::Checkpoint(CheckpointError::Corrupt { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }
}

#[test]
fn a_folder_without_weights_or_config_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_err(tmp.path());
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("config.json"),
        "{err}"
    );
    std::fs::write(tmp.path().join("config.json"), tiny_cfg(None).to_hf_json()).unwrap();
    let err = load_err(tmp.path());
    assert!(
        matches!(err, Error::Checkpoint(CheckpointError::NoWeights { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

// ---------------------------------------------------------------- PyTorch fixtures

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Every tensor of a safetensors file: key → (shape, values as f32).
fn read_raw(path: &Path) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, t)| {
            let vals = match t.dtype() {
                Dtype::F32 => t
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                    .collect(),
                Dtype::F16 => t
                    .data()
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => t
                    .data()
                    .chunks_exact(2)
                    .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
                d => panic!("{k}: {d:?}"),
            };
            (k, (t.shape().to_vec(), vals))
        })
        .collect()
}

/// Loads a fixture and checks it against the raw file, tensor by tensor, key by key.
fn check_fixture(
    name: &str,
    sizes: (usize, usize, usize, usize, usize),
    raw_files: &[&str],
) -> Params {
    let dir = fixture(name);
    let p = checkpoint::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (l, nh, c, v, t) = sizes;
    assert_eq!(
        (
            p.cfg.n_layer,
            p.cfg.n_head,
            p.cfg.n_embd,
            p.cfg.vocab_size,
            p.cfg.n_positions
        ),
        (l, nh, c, v, t),
        "{name}"
    );
    assert_eq!(p.cfg.num_labels, None, "{name}");
    let specs = param_specs(&p.cfg);
    assert_eq!(specs.len(), 4 + 12 * l, "{name}");
    assert_eq!(
        p.data.len(),
        12 * l * c * c + 13 * l * c + (v + t) * c + 2 * c,
        "{name}"
    );
    let mut raw = HashMap::new();
    for f in raw_files {
        raw.extend(read_raw(&dir.join(f)));
    }
    for s in &specs {
        let (shape, vals) = raw
            .get(&format!("transformer.{}", s.name))
            .or_else(|| raw.get(&s.name))
            .unwrap_or_else(|| panic!("{name}: {} not in the fixture", s.name));
        assert_eq!(shape, &s.shape, "{name}: {}", s.name);
        let got = &p.data[s.offset..s.offset + s.numel()];
        assert!(
            got.iter()
                .zip(vals)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}: {}",
            s.name
        );
    }
    p
}

#[test]
fn fixture_tiny_f32_save_pretrained() {
    let p = check_fixture("tiny", (2, 3, 48, 1000, 37), &["model.safetensors"]);
    // What we save is what save_pretrained wrote: same keys, shapes, dtypes and bytes.
    let tmp = tempfile::tempdir().unwrap();
    checkpoint::save(&p, tmp.path(), SaveDtype::F32).unwrap();
    let ours = std::fs::read(tmp.path().join("model.safetensors")).unwrap();
    let theirs = std::fs::read(fixture("tiny").join("model.safetensors")).unwrap();
    let (ours, theirs) = (
        SafeTensors::deserialize(&ours).unwrap(),
        SafeTensors::deserialize(&theirs).unwrap(),
    );
    let mut a: Vec<_> = ours.names().into_iter().cloned().collect();
    let mut b: Vec<_> = theirs.names().into_iter().cloned().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for k in &a {
        assert_eq!(ours.tensor(k).unwrap(), theirs.tensor(k).unwrap(), "{k}");
    }
}

#[test]
fn fixture_tiny_f16_hub_style_keys() {
    // No prefix, h.{i}.attn.bias buffers, explicit lm_head, default id2label in config.json.
    let p = check_fixture("tiny-f16", (3, 2, 20, 500, 29), &["model.safetensors"]);
    // f16 → f32 → f16 is exact: re-saving in F16 gives the fixture's parameter bytes back.
    let tmp = tempfile::tempdir().unwrap();
    checkpoint::save(&p, tmp.path(), SaveDtype::F16).unwrap();
    let ours = std::fs::read(tmp.path().join("model.safetensors")).unwrap();
    let theirs = std::fs::read(fixture("tiny-f16").join("model.safetensors")).unwrap();
    let (ours, theirs) = (
        SafeTensors::deserialize(&ours).unwrap(),
        SafeTensors::deserialize(&theirs).unwrap(),
    );
    for s in param_specs(&p.cfg) {
        let a = ours.tensor(&format!("transformer.{}", s.name)).unwrap();
        assert_eq!(a, theirs.tensor(&s.name).unwrap(), "{}", s.name);
    }
}

#[test]
fn fixture_tiny_bf16() {
    let p = check_fixture("tiny-bf16", (1, 4, 32, 300, 16), &["model.safetensors"]);
    let tmp = tempfile::tempdir().unwrap();
    checkpoint::save(&p, tmp.path(), SaveDtype::BF16).unwrap();
    let a = std::fs::read(tmp.path().join("model.safetensors")).unwrap();
    let b = std::fs::read(fixture("tiny-bf16").join("model.safetensors")).unwrap();
    let (a, b) = (
        SafeTensors::deserialize(&a).unwrap(),
        SafeTensors::deserialize(&b).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (k, t) in b.tensors() {
        assert_eq!(a.tensor(&k).unwrap(), t, "{k}");
    }
}

#[test]
fn fixture_tiny_sharded_equals_tiny_bitwise() {
    let shards = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let sharded = check_fixture("tiny-sharded", (2, 3, 48, 1000, 37), &shards);
    let files = checkpoint::weight_files(&fixture("tiny-sharded")).unwrap();
    assert_eq!(files.files.len(), 2);
    assert!(files.index.is_some());
    let single = checkpoint::load(&fixture("tiny")).unwrap();
    assert_bitwise(&sharded, &single);
}
