//! GPT-2 hyper-parameters: the Hugging Face `config.json` form and the presets.
//!
//! Field names are those of `transformers.GPT2Config` (`n_layer`, `n_head`, `n_embd`, `n_positions`,
//! `vocab_size`, `layer_norm_epsilon`), so a config file is read and written without a translation
//! table. Presets carry the published sizes of the four OpenAI checkpoints (Radford et al. 2019, Table 2).
//!
//! # Every field of `GPT2Config`, and what we do with it
//!
//! A field that changes the maths is either implemented or refused by name, never ignored
//! ([`Gpt2Config::from_json_str`] checks them):
//!
//! | field | handling |
//! | --- | --- |
//! | `n_layer`, `n_head`, `n_embd`, `vocab_size`, `n_positions` (`n_ctx` alias) | the sizes |
//! | `layer_norm_epsilon` | ε of every LayerNorm |
//! | `embd_pdrop`, `attn_pdrop`, `resid_pdrop` | training dropout |
//! | `num_labels`, `id2label`, `label2id`, `pad_token_id` | the classification head |
//! | `activation_function` | `gelu_new` (GPT-2's tanh form); `gelu_pytorch_tanh` and `gelu_fast` are the same formula; any other (`gelu`, the erf form, `relu`, …) is refused |
//! | `n_inner` | `null` or `4·n_embd`; another MLP width is refused |
//! | `scale_attn_weights` | `true` (scores ÷ √HS); `false` is refused |
//! | `scale_attn_by_inverse_layer_idx` | `false`; `true` (scores ÷ (layer + 1)) is refused |
//! | `reorder_and_upcast_attn` | either: it only moves the scaling before q·kᵀ and upcasts to f32 for fp16 runs; our attention computes in f32 already, so it changes rounding only |
//! | `tie_word_embeddings` | `true`; `false` (a separate lm_head) is refused |
//! | `add_cross_attention` | `false`; `true` (an encoder-decoder block) is refused |
//! | `problem_type` | absent or `single_label_classification`; `regression` and `multi_label_classification` are refused |
//! | `model_type` | `gpt2` when present |
//! | `initializer_range`, `summary_*` (the multiple-choice head of `GPT2DoubleHeadsModel`), `use_cache`, `bos_token_id`, `eos_token_id`, `architectures`, `torch_dtype`, `transformers_version`, `task_specific_params` | no effect on what we compute (initialisation is GPT-2's, in `params`) |
//!
//! Non-goals: GPT-2 variants with other activations or rotary positions.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Errors from reading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The config file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not the JSON we expect.
    #[error("invalid config {path}: {source}")]
    Json {
        /// The config file.
        path: String,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A field has a value GPT-2 cannot use.
    #[error("invalid config field `{field}`: {msg}")]
    Field {
        /// The config field, as spelled in config.json.
        field: &'static str,
        /// What is wrong with it.
        msg: String,
    },
    /// An unknown preset name.
    #[error("unknown preset `{0}`: expected one of gpt2, gpt2-medium, gpt2-large, gpt2-xl")]
    UnknownPreset(String),
}

/// A token id that a model has no embedding for (≥ `vocab_size`), from [`Gpt2Config::check_ids`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("token id {id} is out of range: the model's vocab_size is {vocab_size}")]
pub struct OutOfVocab {
    /// The first offending id.
    pub id: u32,
    /// The model's `vocab_size`.
    pub vocab_size: usize,
}

/// The GPT-2 architecture's sizes, as in Hugging Face's `GPT2Config`.
///
/// Legend used across the crate: B batch, T time (sequence position), C = `n_embd` channels,
/// NH = `n_head`, HS = C / NH head size, V = `vocab_size`, L = `n_layer`, maxT = `n_positions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Number of decoder blocks (L).
    pub n_layer: usize,
    /// Attention heads per block (NH); must divide `n_embd`.
    pub n_head: usize,
    /// Width of the residual stream (C).
    pub n_embd: usize,
    /// Longest sequence the position table covers (maxT, "n_ctx").
    pub n_positions: usize,
    /// Number of token ids (V); 50257 for GPT-2's tokenizer.
    pub vocab_size: usize,
    /// ε added to the variance inside every LayerNorm (1e-5 in GPT-2).
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f32,
    /// Dropout on the embedding sum (training only).
    #[serde(default)]
    pub embd_pdrop: f32,
    /// Dropout on the attention weights (training only).
    #[serde(default)]
    pub attn_pdrop: f32,
    /// Dropout on each residual branch (training only).
    #[serde(default)]
    pub resid_pdrop: f32,
    /// Number of labels of a sequence-classification head (`GPT2ForSequenceClassification`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_labels: Option<usize>,
    /// Label names by index, for classification heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id2label: Option<std::collections::BTreeMap<String, String>>,
    /// Label indices by name, for classification heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label2id: Option<std::collections::BTreeMap<String, usize>>,
    /// Id used for padding (GPT-2 has none; classification uses 50256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_token_id: Option<u32>,
}

fn default_eps() -> f32 {
    1e-5
}

impl Gpt2Config {
    /// GPT-2 small, 124M parameters: L 12, NH 12, C 768.
    pub fn gpt2() -> Self {
        Self {
            n_layer: 12,
            n_head: 12,
            n_embd: 768,
            n_positions: 1024,
            vocab_size: 50257,
            layer_norm_epsilon: 1e-5,
            embd_pdrop: 0.0,
            attn_pdrop: 0.0,
            resid_pdrop: 0.0,
            num_labels: None,
            id2label: None,
            label2id: None,
            pad_token_id: None,
        }
    }

    /// GPT-2 medium, 355M parameters: L 24, NH 16, C 1024.
    pub fn gpt2_medium() -> Self {
        Self {
            n_layer: 24,
            n_head: 16,
            n_embd: 1024,
            ..Self::gpt2()
        }
    }

    /// GPT-2 large, 774M parameters: L 36, NH 20, C 1280.
    pub fn gpt2_large() -> Self {
        Self {
            n_layer: 36,
            n_head: 20,
            n_embd: 1280,
            ..Self::gpt2()
        }
    }

    /// GPT-2 XL, 1558M parameters: L 48, NH 25, C 1600.
    pub fn gpt2_xl() -> Self {
        Self {
            n_layer: 48,
            n_head: 25,
            n_embd: 1600,
            ..Self::gpt2()
        }
    }

    /// A preset by its Hugging Face name: `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl`
    /// (an `openai-community/` prefix is accepted).
    ///
    /// Errors: [`ConfigError::UnknownPreset`].
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        match name.strip_prefix("openai-community/").unwrap_or(name) {
            "gpt2" => Ok(Self::gpt2()),
            "gpt2-medium" => Ok(Self::gpt2_medium()),
            "gpt2-large" => Ok(Self::gpt2_large()),
            "gpt2-xl" => Ok(Self::gpt2_xl()),
            _ => Err(ConfigError::UnknownPreset(name.to_string())),
        }
    }

    /// Checks that every id of `ids` is < `vocab_size`. Every path that takes token ids (the
    /// model's forward, generation, the tasks' prediction and training) checks them with this
    /// once, where they enter the library, so ids from a tokenizer larger than the model's
    /// vocabulary give an error, never an out-of-bounds read in `kernels::encoder`.
    ///
    /// Errors: [`OutOfVocab`] with the first offending id.
    pub fn check_ids(&self, ids: &[u32]) -> Result<(), OutOfVocab> {
        match ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            Some(&id) => Err(OutOfVocab {
                id,
                vocab_size: self.vocab_size,
            }),
            None => Ok(()),
        }
    }

    /// Head size HS = C / NH.
    pub fn head_size(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Reads a Hugging Face `config.json` and validates it.
    ///
    /// Accepts the older aliases `n_ctx` (for `n_positions`) when `n_positions` is absent.
    /// Errors: [`ConfigError::Io`], [`ConfigError::Json`], [`ConfigError::Field`].
    pub fn from_json_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json_str(&text).map_err(|e| match e {
            ConfigError::Json { source, .. } => ConfigError::Json {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// Parses the text of a `config.json` and validates it. See [`Gpt2Config::from_json_file`].
    ///
    /// Fields of `GPT2Config` that change the maths and that we do not implement are refused by
    /// name (the table in the module doc).
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        let mut v: serde_json::Value =
            serde_json::from_str(text).map_err(|source| ConfigError::Json {
                path: "<string>".into(),
                source,
            })?;
        if let Some(obj) = v.as_object_mut() {
            check_fixed_fields(obj)?;
            if !obj.contains_key("n_positions") {
                if let Some(n_ctx) = obj.get("n_ctx").cloned() {
                    obj.insert("n_positions".into(), n_ctx);
                }
            }
        }
        let cfg: Self = serde_json::from_value(v).map_err(|source| ConfigError::Json {
            path: "<string>".into(),
            source,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that every size is usable: all sizes > 0, `n_embd % n_head == 0`, vocab ≤ 65536 is not
    /// required, ε > 0, dropout in [0, 1).
    ///
    /// Errors: [`ConfigError::Field`] naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pos = |field: &'static str, v: usize| {
            if v == 0 {
                Err(ConfigError::Field {
                    field,
                    msg: "must be > 0".into(),
                })
            } else {
                Ok(())
            }
        };
        pos("n_layer", self.n_layer)?;
        pos("n_head", self.n_head)?;
        pos("n_embd", self.n_embd)?;
        pos("n_positions", self.n_positions)?;
        pos("vocab_size", self.vocab_size)?;
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ConfigError::Field {
                field: "n_embd",
                msg: format!("{} is not divisible by n_head {}", self.n_embd, self.n_head),
            });
        }
        if self.layer_norm_epsilon.is_nan() || self.layer_norm_epsilon <= 0.0 {
            return Err(ConfigError::Field {
                field: "layer_norm_epsilon",
                msg: format!("{} must be > 0", self.layer_norm_epsilon),
            });
        }
        for (field, p) in [
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
            ("resid_pdrop", self.resid_pdrop),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(ConfigError::Field {
                    field,
                    msg: format!("{p} is not in [0, 1)"),
                });
            }
        }
        if let Some(n) = self.num_labels {
            if n < 2 {
                return Err(ConfigError::Field {
                    field: "num_labels",
                    msg: format!(
                        "{n}: classification needs at least 2 labels (regression is not supported)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The `config.json` text Hugging Face `transformers` loads as a `GPT2Config`
    /// (`model_type` "gpt2", `architectures`, `n_ctx` alias, `activation_function` "gelu_new").
    pub fn to_hf_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("config serializes");
        let obj = v.as_object_mut().expect("object");
        // f32 fields print as their shortest decimal (0.1, 1e-5), not as widened f64 (0.10000000149…)
        for (key, x) in [
            ("layer_norm_epsilon", self.layer_norm_epsilon),
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
            ("resid_pdrop", self.resid_pdrop),
        ] {
            let short: f64 = x.to_string().parse().unwrap_or(x as f64);
            obj.insert(key.into(), short.into());
        }
        obj.insert("model_type".into(), "gpt2".into());
        let arch = if self.num_labels.is_some() {
            "GPT2ForSequenceClassification"
        } else {
            "GPT2LMHeadModel"
        };
        obj.insert("architectures".into(), serde_json::json!([arch]));
        obj.insert("n_ctx".into(), self.n_positions.into());
        obj.insert("activation_function".into(), "gelu_new".into());
        obj.insert("bos_token_id".into(), 50256.into());
        obj.insert("eos_token_id".into(), 50256.into());
        obj.insert("tie_word_embeddings".into(), true.into());
        obj.insert("scale_attn_weights".into(), true.into());
        obj.insert("initializer_range".into(), 0.02.into());
        serde_json::to_string_pretty(&v).expect("config serializes")
    }

    /// Number of parameters of the language model (wte counted once: lm_head is tied).
    pub fn num_params(&self) -> usize {
        crate::params::param_specs(self)
            .iter()
            .map(|s| s.numel())
            .sum()
    }
}

/// Refuses the `GPT2Config` fields whose non-default values change the maths in a way we do not
/// implement (module doc). `obj` is the raw config.json object; `n_embd` is read from it for
/// `n_inner`.
fn check_fixed_fields(obj: &serde_json::Map<String, serde_json::Value>) -> Result<(), ConfigError> {
    use serde_json::Value;
    let refuse = |field: &'static str, got: &Value, why: &str| {
        Err(ConfigError::Field {
            field,
            msg: format!("{got} is not supported: {why}"),
        })
    };
    if let Some(v) = obj.get("activation_function") {
        let ok = matches!(
            v.as_str(),
            Some("gelu_new" | "gelu_pytorch_tanh" | "gelu_fast")
        );
        if !ok {
            return refuse(
                "activation_function",
                v,
                "GPT-2's MLP uses the tanh GELU (\"gelu_new\"); other activations, the erf \"gelu\" among them, are not implemented",
            );
        }
    }
    if let Some(v) = obj.get("n_inner") {
        let four_c = obj
            .get("n_embd")
            .and_then(Value::as_u64)
            .map(|c| c.saturating_mul(4));
        if !v.is_null() && v.as_u64() != four_c {
            return refuse(
                "n_inner",
                v,
                "the MLP width is 4·n_embd in GPT-2 (null or 4·n_embd)",
            );
        }
    }
    let flags: [(&'static str, bool, &str); 4] = [
        (
            "scale_attn_weights",
            true,
            "GPT-2 divides attention scores by √(head size)",
        ),
        (
            "scale_attn_by_inverse_layer_idx",
            false,
            "the extra 1/(layer + 1) score scaling is not implemented",
        ),
        (
            "tie_word_embeddings",
            true,
            "GPT-2's lm_head is tied to wte; a separate lm_head is not implemented",
        ),
        (
            "add_cross_attention",
            false,
            "cross-attention (an encoder-decoder model) is not implemented",
        ),
    ];
    for (field, want, why) in flags {
        if let Some(v) = obj.get(field) {
            if !v.is_null() && v.as_bool() != Some(want) {
                return refuse(field, v, why);
            }
        }
    }
    if let Some(v) = obj.get("problem_type") {
        if !v.is_null() && v.as_str() != Some("single_label_classification") {
            return refuse(
                "problem_type",
                v,
                "only single-label classification (softmax cross-entropy) is implemented",
            );
        }
    }
    if let Some(v) = obj.get("model_type") {
        if v.as_str() != Some("gpt2") {
            return refuse("model_type", v, "this is a GPT-2 implementation");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_change_the_maths_are_refused_by_name() {
        let base = r#""n_layer":2,"n_head":3,"n_embd":48,"n_positions":37,"vocab_size":1000"#;
        for (extra, field) in [
            (r#""activation_function":"gelu""#, "activation_function"),
            (r#""activation_function":"relu""#, "activation_function"),
            (r#""n_inner":100"#, "n_inner"),
            (r#""scale_attn_weights":false"#, "scale_attn_weights"),
            (
                r#""scale_attn_by_inverse_layer_idx":true"#,
                "scale_attn_by_inverse_layer_idx",
            ),
            (r#""tie_word_embeddings":false"#, "tie_word_embeddings"),
            (r#""add_cross_attention":true"#, "add_cross_attention"),
            (r#""problem_type":"regression""#, "problem_type"),
            (r#""model_type":"gpt_neo""#, "model_type"),
        ] {
            let err = Gpt2Config::from_json_str(&format!("{{{base},{extra}}}"))
                .expect_err(extra)
                .to_string();
            assert!(err.contains(&format!("`{field}`")), "{extra}: {err}");
        }
        for extra in [
            r#""activation_function":"gelu_new""#,
            r#""activation_function":"gelu_pytorch_tanh""#,
            r#""n_inner":null"#,
            r#""n_inner":192"#,
            r#""scale_attn_weights":true"#,
            r#""scale_attn_by_inverse_layer_idx":false"#,
            r#""reorder_and_upcast_attn":true"#,
            r#""tie_word_embeddings":true"#,
            r#""problem_type":"single_label_classification""#,
            r#""summary_type":"cls_index","initializer_range":0.5"#,
        ] {
            Gpt2Config::from_json_str(&format!("{{{base},{extra}}}")).expect(extra);
        }
    }

    #[test]
    fn presets_have_published_parameter_counts() {
        // Counts from transformers' GPT2LMHeadModel.num_parameters() (tied lm_head counted once).
        assert_eq!(Gpt2Config::gpt2().num_params(), 124_439_808);
        assert_eq!(Gpt2Config::gpt2_medium().num_params(), 354_823_168);
        assert_eq!(Gpt2Config::gpt2_large().num_params(), 774_030_080);
        assert_eq!(Gpt2Config::gpt2_xl().num_params(), 1_557_611_200);
    }

    #[test]
    fn rejects_indivisible_heads() {
        let cfg = Gpt2Config {
            n_head: 5,
            ..Gpt2Config::gpt2()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("n_embd"), "{err}");
    }

    #[test]
    fn reads_hf_json_with_n_ctx_alias_and_round_trips() {
        let text = r#"{"n_layer":2,"n_head":3,"n_embd":48,"n_ctx":37,"vocab_size":1000,"model_type":"gpt2"}"#;
        let cfg = Gpt2Config::from_json_str(text).unwrap();
        assert_eq!(cfg.n_positions, 37);
        assert_eq!(cfg.layer_norm_epsilon, 1e-5);
        let back = Gpt2Config::from_json_str(&cfg.to_hf_json()).unwrap();
        assert_eq!(back, cfg);
    }
}
