//! Hugging Face safetensors checkpoints: read any GPT-2 `config.json` + `model.safetensors` (or a
//! sharded `model.safetensors.index.json` set) into [`Params`], and write back the layout
//! `transformers` saves for `GPT2LMHeadModel` / `GPT2ForSequenceClassification`.
//!
//! The parameter table [`param_specs`] is the only list of tensors: every key, shape and offset
//! comes from it, for reading and for writing.
//!
//! # Layout conversions, all of them, in one place
//!
//! | on disk (Hugging Face) | in [`Params`] |
//! | --- | --- |
//! | keys `transformer.wte.weight` … or `wte.weight` … | table names without the prefix; both spellings are read |
//! | Conv1D weights `attn.c_attn`, `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj` stored `(in, out)` | the same `(in, out)`: **no transpose** (GPT-2's `Conv1D` computes `x · W + b`, unlike `nn.Linear`) |
//! | `lm_head.weight (V, C)` present or absent | checked for shape and for being equal to `wte`, then dropped: GPT-2 ties the lm_head to `wte` (`tie_word_embeddings`). A head that differs from `wte` is refused ([`CheckpointError::UntiedLmHead`]): we never run a checkpoint with a head other than its own |
//! | `h.{i}.attn.bias`, `h.{i}.attn.masked_bias` | skipped: causal-mask buffers of old `transformers`, not parameters |
//! | `score.weight (num_labels, C)`, unprefixed | the classification head; its presence makes a classification model |
//! | config.json `n_ctx` without `n_positions` (older files) | `n_positions` (done by [`Gpt2Config::from_json_file`]) |
//! | dtypes F32, F16, BF16, F64 | `f32` (F16/BF16 exactly; F64 rounded to nearest) |
//! | (writing) | every base-model key prefixed `transformer.`, no lm_head, no `attn.bias`, `score.weight` unprefixed, metadata `{"format": "pt"}` |
//!
//! Every tensor's shape is checked against the config; a missing, unknown or misshapen tensor is an
//! error naming the file, the key and both shapes. A truncated or corrupt file is an error naming the
//! file, never a panic.
//!
//! Non-goals: `pytorch_model.bin` (pickle) files; GPT-2 variants with untied lm_heads; training state
//! (AdamW moments, step, RNG), which the training module saves beside the checkpoint.
//!
//! Reference: `transformers` `modeling_utils.PreTrainedModel.save_pretrained` / `from_pretrained`,
//! `models/gpt2/modeling_gpt2.py` (`Conv1D`, `_tied_weights_keys`), the safetensors format spec,
//! and nanoGPT's `GPT.from_pretrained` (its `transposed` list, which we do not need: safetensors
//! stores the Conv1D weights exactly as our table lays them out).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};

use crate::config::Gpt2Config;
use crate::params::{param_specs, ParamSpec, Params};

/// The configuration file of a checkpoint folder.
pub const CONFIG_FILE: &str = "config.json";
/// The single-file weights of a checkpoint folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The index of sharded weights (`weight_map`: key → shard file name).
pub const INDEX_FILE: &str = "model.safetensors.index.json";
/// The prefix `transformers` puts before every base-model (`GPT2Model`) key.
pub const PREFIX: &str = "transformer.";

/// Errors from reading or writing checkpoints. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file or folder could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The folder has neither `model.safetensors` nor `model.safetensors.index.json`.
    #[error(
        "no weights in {dir}: expected model.safetensors, or model.safetensors.index.json and its \
         shards (pytorch_model.bin is not read: re-save the model with transformers' \
         save_pretrained, which writes safetensors)"
    )]
    NoWeights {
        /// The checkpoint folder.
        dir: String,
    },
    /// `model.safetensors.index.json` is unreadable or lists a shard that is not there.
    #[error("invalid shard index {file}: {msg}")]
    Index {
        /// The index file.
        file: String,
        /// What is wrong with it.
        msg: String,
    },
    /// Not a safetensors file, or a truncated one (bad header, data shorter than declared).
    #[error("{file} is not a valid safetensors file: {msg}; it may be truncated or corrupt, save or download it again")]
    Corrupt {
        /// The weights file.
        file: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A tensor the config requires is absent.
    #[error("{file}: tensor `{key}` is missing (looked for it with and without the `transformer.` prefix)")]
    Missing {
        /// The weights file (or the shard index, for sharded checkpoints).
        file: String,
        /// The key, as named in the parameter table (no `transformer.` prefix).
        key: String,
    },
    /// A tensor that is not a GPT-2 parameter (nor a known buffer to skip).
    #[error("{file}: unexpected tensor `{key}`: not a GPT-2 parameter for this config.json")]
    Unexpected {
        /// The weights file.
        file: String,
        /// The key, as spelled in the file.
        key: String,
    },
    /// The same parameter appears twice (in two shards, or with and without the prefix).
    #[error("tensor `{key}` appears twice: in {first} and in {second}")]
    Duplicate {
        /// The key, as named in the parameter table.
        key: String,
        /// The file where it was seen first.
        first: String,
        /// The file where it was seen again.
        second: String,
    },
    /// A tensor's shape differs from the one the config implies.
    #[error("{file}: tensor `{key}` has shape {got:?}, but config.json implies {want:?}")]
    Shape {
        /// The weights file.
        file: String,
        /// The key, as spelled in the file.
        key: String,
        /// The shape from the parameter table.
        want: Vec<usize>,
        /// The shape in the file.
        got: Vec<usize>,
    },
    /// A tensor stored in a dtype other than F32, F16, BF16 or F64.
    #[error("{file}: tensor `{key}` has dtype {dtype}; expected F32, F16, BF16 or F64")]
    Dtype {
        /// The weights file.
        file: String,
        /// The key, as spelled in the file.
        key: String,
        /// The dtype found, as safetensors names it.
        dtype: String,
    },
    /// `score.weight` is present but the [`Params`] being filled have no classification head.
    #[error(
        "{file}: tensor `score.weight` {got:?} is a sequence-classification head, but the config \
         has no `num_labels`; add \"num_labels\" to config.json"
    )]
    ScoreWithoutLabels {
        /// The weights file.
        file: String,
        /// The shape of `score.weight` in the file.
        got: Vec<usize>,
    },
    /// `lm_head.weight` differs from `wte`: an untied head, which GPT-2 does not have and we do not
    /// implement. Refused rather than silently replaced by the tied head.
    #[error(
        "{file}: tensor `{key}` differs from `wte` (first at element {index}: {head} against \
         {wte}): this checkpoint has an untied lm_head, which is not supported (GPT-2 ties \
         lm_head to wte, tie_word_embeddings = true)"
    )]
    UntiedLmHead {
        /// The weights file.
        file: String,
        /// The key, as spelled in the file.
        key: String,
        /// Flat index (row · C + column) of the first differing element.
        index: usize,
        /// That element in the head.
        head: f32,
        /// That element in `wte`.
        wte: f32,
    },
    /// A file of a training checkpoint folder differs from its checksum in [`CHECKSUMS_FILE`].
    #[error("{dir}: {msg}")]
    Checksum {
        /// The checkpoint folder.
        dir: String,
        /// Which file, and how it differs.
        msg: String,
    },
    /// [`save`] was asked to create a folder whose parent does not exist.
    #[error("cannot create checkpoint folder {dir}: its parent folder does not exist")]
    ParentMissing {
        /// The folder that was to be created.
        dir: String,
    },
}

/// The checksums of a training checkpoint folder's other files (CRC-32 each, written last by
/// `crate::trainer`); [`load`] checks `config.json` and the weights against it when present.
pub const CHECKSUMS_FILE: &str = "checksums.json";
/// `format` of [`CHECKSUMS_FILE`].
pub(crate) const CHECKSUMS_FORMAT: &str = "gpt2-checksums-v1";

/// CRC-32 (IEEE) of the file at `path`, read in 1 MiB chunks.
pub(crate) fn file_crc32(path: &Path) -> std::io::Result<u32> {
    use std::io::Read;
    let mut f = File::open(path)?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize());
        }
        h.update(&buf[..n]);
    }
}

/// Checks the files listed in `dir/checksums.json` (a training checkpoint's, written by
/// `crate::trainer`): the list must hold every name of `required`; with `only`, just those names
/// are read and compared, else all. Without the file it checks nothing (a folder written by
/// [`save`], or a checkpoint from before checksums; `crate::trainer::load_checkpoint` refuses
/// the latter when its state says it had them).
///
/// Errors: a message naming the file that is missing, unreadable or differs from its checksum.
pub(crate) fn verify_checksums(
    dir: &Path,
    required: &[&str],
    only: Option<&[&str]>,
) -> Result<(), String> {
    let path = dir.join(CHECKSUMS_FILE);
    if !path.exists() {
        return Ok(());
    }
    let bad = |msg: String| format!("{CHECKSUMS_FILE}: {msg}");
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if json["format"] != CHECKSUMS_FORMAT || json["algorithm"] != "crc32" {
        return Err(bad(format!(
            "not a {CHECKSUMS_FORMAT} crc32 file (the file is corrupt)"
        )));
    }
    let files = json["files"]
        .as_object()
        .ok_or_else(|| bad("no `files` object (the file is corrupt)".into()))?;
    for need in required {
        if !files.contains_key(*need) {
            return Err(bad(format!("{need} is not listed (the file is corrupt)")));
        }
    }
    for (name, want) in files {
        if only.is_some_and(|o| !o.contains(&name.as_str())) {
            continue;
        }
        let want = want.as_str().and_then(|w| u32::from_str_radix(w, 16).ok());
        let Some(want) = want else {
            return Err(bad(format!(
                "the checksum of {name} is not hex (the file is corrupt)"
            )));
        };
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(bad(format!("{name} is not a file name in the folder")));
        }
        let file = dir.join(name);
        let got = file_crc32(&file).map_err(|e| format!("{name}: {e}"))?;
        if got != want {
            return Err(format!(
                "{name} does not match its checksum in {CHECKSUMS_FILE} (crc32 {got:08x}, \
                 written as {want:08x}): the file is corrupt or truncated; use another \
                 checkpoint"
            ));
        }
    }
    Ok(())
}

/// The element type [`save`] writes. F16 and BF16 round each value to nearest-even.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveDtype {
    /// 32-bit IEEE floats: lossless.
    #[default]
    F32,
    /// 16-bit IEEE half floats (`torch.float16`): 11-bit significand, max 65504.
    F16,
    /// bfloat16 (`torch.bfloat16`): f32's range with an 8-bit significand.
    BF16,
}

impl SaveDtype {
    fn dtype(self) -> Dtype {
        match self {
            SaveDtype::F32 => Dtype::F32,
            SaveDtype::F16 => Dtype::F16,
            SaveDtype::BF16 => Dtype::BF16,
        }
    }
}

/// The weight files of a checkpoint folder, as [`weight_files`] found them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightFiles {
    /// The safetensors files to read: `[model.safetensors]`, or the shards in index order.
    pub files: Vec<PathBuf>,
    /// The shard index, for a sharded checkpoint.
    pub index: Option<PathBuf>,
}

impl WeightFiles {
    /// The file to name when a tensor is missing: the index for a sharded checkpoint.
    fn label(&self) -> String {
        match &self.index {
            Some(index) => index.display().to_string(),
            None => join_paths(&self.files),
        }
    }
}

fn join_paths(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Finds the weights of the checkpoint folder `dir`: `model.safetensors` if present (as
/// `transformers` prefers it), else the shards listed in `model.safetensors.index.json`'s
/// `weight_map`, each once, in order of first appearance.
///
/// Errors: [`CheckpointError::NoWeights`] when neither file exists; [`CheckpointError::Index`] for
/// an unreadable index, an empty `weight_map`, a shard name that leaves the folder, or a listed
/// shard that is not there; [`CheckpointError::Io`].
pub fn weight_files(dir: &Path) -> Result<WeightFiles, CheckpointError> {
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        return Ok(WeightFiles {
            files: vec![single],
            index: None,
        });
    }
    let index = dir.join(INDEX_FILE);
    if !index.is_file() {
        return Err(CheckpointError::NoWeights {
            dir: dir.display().to_string(),
        });
    }
    let bad = |msg: String| CheckpointError::Index {
        file: index.display().to_string(),
        msg,
    };
    let text = std::fs::read_to_string(&index).map_err(io_err(&index))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("no `weight_map` object".into()))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for (key, shard) in map {
        let name = shard
            .as_str()
            .ok_or_else(|| bad(format!("`weight_map` entry `{key}` is not a file name")))?;
        let plain = Path::new(name).components().count() == 1
            && matches!(
                Path::new(name).components().next(),
                Some(std::path::Component::Normal(_))
            );
        if !plain {
            return Err(bad(format!(
                "shard `{name}` (for `{key}`) is not a plain file name in the same folder"
            )));
        }
        let path = dir.join(name);
        if !files.contains(&path) {
            if !path.is_file() {
                return Err(bad(format!(
                    "it lists shard {name}, which is not in {}",
                    dir.display()
                )));
            }
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(bad("`weight_map` is empty".into()));
    }
    Ok(WeightFiles {
        files,
        index: Some(index),
    })
}

/// Loads the checkpoint folder `dir`: `config.json` (validated; `n_ctx` accepted for
/// `n_positions`) and its weights, converted to `f32` in the layout of [`param_specs`].
///
/// The model is a classification model when config.json sets `num_labels` (then `score.weight` is
/// required) or the file holds `score.weight`. In the latter case, when config.json has no
/// `num_labels`, it is the length of `id2label` if present, else the tensor's first dimension
/// (`transformers` leaves the default two labels out of config.json). `id2label` alone does not
/// make a classifier: many language-model configs on the hub carry the default two labels.
/// See the module doc for every other conversion.
///
/// Errors: [`crate::Error::Config`] for a missing or invalid config.json; every
/// [`CheckpointError`] variant for the weights (missing, unexpected, misshapen, duplicated tensors,
/// unsupported dtypes, truncated or corrupt files, a bad shard index).
pub fn load(dir: &Path) -> Result<Params, crate::Error> {
    let ours = [CONFIG_FILE, WEIGHTS_FILE];
    verify_checksums(dir, &ours, Some(&ours)).map_err(|msg| CheckpointError::Checksum {
        dir: dir.display().to_string(),
        msg,
    })?;
    let mut cfg = Gpt2Config::from_json_file(&dir.join(CONFIG_FILE))?;
    let files = weight_files(dir)?;
    let mapped = map_files(&files.files)?;
    let tensors = collect_tensors(&mapped)?;
    if cfg.num_labels.is_none() {
        if let Some(score) = tensors.get("score.weight") {
            // Labels from id2label when config.json has it (then `fill` checks the shape against
            // it), else from the tensor itself.
            let n = match &cfg.id2label {
                Some(labels) => labels.len(),
                None => score.view.shape().first().copied().unwrap_or(0),
            };
            cfg.num_labels = Some(n);
            cfg.validate()?;
        }
    }
    let mut params = Params::zeros(&cfg);
    fill(&mut params, &tensors, &files.label())?;
    Ok(params)
}

/// Fills `params` (whose `cfg` fixes every shape) from the safetensors `files`, read together as
/// one set (e.g. the shards of one checkpoint). Conversions as listed in the module doc.
///
/// Errors: as [`load`] for the weights; [`CheckpointError::ScoreWithoutLabels`] when the files hold
/// `score.weight` but `params.cfg.num_labels` is `None`.
pub fn load_weights_into(params: &mut Params, files: &[PathBuf]) -> Result<(), crate::Error> {
    let mapped = map_files(files)?;
    let tensors = collect_tensors(&mapped)?;
    fill(params, &tensors, &join_paths(files))?;
    Ok(())
}

/// The bytes of one weights file: memory-mapped, or borrowed (e.g. embedded in a binary).
enum Backing<'a> {
    Mmap(Mmap),
    Bytes(&'a [u8]),
}

impl std::ops::Deref for Backing<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Bytes(b) => b,
        }
    }
}

/// One weights file.
struct Mapped<'a> {
    path: PathBuf,
    map: Backing<'a>,
}

/// Loads a checkpoint held in memory: the text of its `config.json` and the bytes of its
/// `model.safetensors` (e.g. a model embedded in a binary with `include_bytes!`). `label` names
/// the source in error messages. Same conversions and checks as [`load`].
///
/// Errors: as [`load`].
pub fn load_from_memory(
    config_json: &str,
    weights: &[u8],
    label: &str,
) -> Result<Params, crate::Error> {
    let mut cfg = Gpt2Config::from_json_str(config_json)?;
    let mapped = vec![Mapped {
        path: PathBuf::from(label),
        map: Backing::Bytes(weights),
    }];
    let tensors = collect_tensors(&mapped)?;
    if cfg.num_labels.is_none() {
        if let Some(score) = tensors.get("score.weight") {
            cfg.num_labels = Some(match &cfg.id2label {
                Some(labels) => labels.len(),
                None => score.view.shape().first().copied().unwrap_or(0),
            });
            cfg.validate()?;
        }
    }
    let mut params = Params::zeros(&cfg);
    fill(&mut params, &tensors, label)?;
    Ok(params)
}

fn map_files(files: &[PathBuf]) -> Result<Vec<Mapped<'static>>, CheckpointError> {
    files
        .iter()
        .map(|path| {
            let file = File::open(path).map_err(io_err(path))?;
            let len = file.metadata().map_err(io_err(path))?.len();
            if len < 8 {
                // Also keeps a 0-byte file away from mmap, which rejects empty mappings.
                return Err(CheckpointError::Corrupt {
                    file: path.display().to_string(),
                    msg: format!("the file is {len} bytes, shorter than the 8-byte header length"),
                });
            }
            // SAFETY: the map is read-only and lives only while this load runs. As with every
            // mmap-based loader (candle, safetensors' own docs), another process truncating or
            // rewriting the file during the load is undefined behaviour; `save` never does this,
            // since it writes a temporary file and renames it over the old one.
            let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
            Ok(Mapped {
                path: path.clone(),
                map: Backing::Mmap(map),
            })
        })
        .collect()
}

/// Plain-words description of a safetensors parse error.
fn describe(e: SafeTensorError) -> String {
    match e {
        SafeTensorError::HeaderTooSmall => {
            "the file is shorter than the 8-byte header length".into()
        }
        SafeTensorError::InvalidHeaderLength => {
            "the header length points past the end of the file".into()
        }
        SafeTensorError::HeaderTooLarge => "the declared header is larger than 100 MB".into(),
        SafeTensorError::InvalidHeader => "the header is not UTF-8 text".into(),
        SafeTensorError::InvalidHeaderStart | SafeTensorError::InvalidHeaderDeserialization => {
            "the header is not safetensors JSON".into()
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "the tensor data does not end where the file ends (truncated or padded)".into()
        }
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's byte range does not match its shape and dtype".into()
        }
        SafeTensorError::InvalidOffset(key) => format!("tensor `{key}` has invalid data offsets"),
        SafeTensorError::ValidationOverflow => "a tensor's size overflows".into(),
        other => format!("{other:?}"),
    }
}

/// A tensor found in a file, under its table name.
struct Found<'a> {
    /// The file it is in.
    path: &'a Path,
    /// The key as spelled in the file.
    key: String,
    view: TensorView<'a>,
}

impl Found<'_> {
    fn file(&self) -> String {
        self.path.display().to_string()
    }
}

/// What a key (without the `transformer.` prefix) is.
enum Kind {
    /// A parameter or `score.weight`: load it.
    Param,
    /// The tied lm_head: check its shape, then drop it.
    LmHead,
    /// A causal-mask buffer `h.{i}.attn.bias` / `h.{i}.attn.masked_bias`: drop it.
    Buffer,
}

fn classify(name: &str) -> Kind {
    if name == "lm_head.weight" {
        return Kind::LmHead;
    }
    if let Some((i, suffix)) = name.strip_prefix("h.").and_then(|r| r.split_once('.')) {
        if i.parse::<usize>().is_ok() && (suffix == "attn.bias" || suffix == "attn.masked_bias") {
            return Kind::Buffer;
        }
    }
    Kind::Param
}

/// Parses every file and gathers its tensors by table name (prefix stripped). Causal-mask
/// buffers are dropped here; `lm_head.weight` is kept for [`fill`] to check.
fn collect_tensors<'m>(
    mapped: &'m [Mapped<'_>],
) -> Result<BTreeMap<String, Found<'m>>, CheckpointError> {
    let mut out: BTreeMap<String, Found<'_>> = BTreeMap::new();
    for m in mapped {
        let st = SafeTensors::deserialize(&m.map).map_err(|e| CheckpointError::Corrupt {
            file: m.path.display().to_string(),
            msg: describe(e),
        })?;
        let mut tensors = st.tensors();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, view) in tensors {
            let name = key.strip_prefix(PREFIX).unwrap_or(&key).to_string();
            if let Kind::Buffer = classify(&name) {
                continue;
            }
            if let Some(prev) = out.get(&name) {
                return Err(CheckpointError::Duplicate {
                    key: name,
                    first: format!("{} (as `{}`)", prev.file(), prev.key),
                    second: format!("{} (as `{key}`)", m.path.display()),
                });
            }
            let path = m.path.as_path();
            out.insert(name, Found { path, key, view });
        }
    }
    Ok(out)
}

/// Checks every tensor against `params.cfg`'s table, then converts each into `params.data`.
/// `label` names the checkpoint in `Missing` errors.
fn fill(
    params: &mut Params,
    tensors: &BTreeMap<String, Found<'_>>,
    label: &str,
) -> Result<(), CheckpointError> {
    let specs = param_specs(&params.cfg);
    let total: usize = specs.iter().map(|s| s.numel()).sum();
    if params.data.len() != total {
        return Err(CheckpointError::Shape {
            file: label.to_string(),
            key: "<parameter buffer>".into(),
            want: vec![total],
            got: vec![params.data.len()],
        });
    }
    let by_name: BTreeMap<&str, &ParamSpec> = specs.iter().map(|s| (s.name.as_str(), s)).collect();
    // Pass 1: names, shapes and dtypes, so no data is converted for a checkpoint that will fail.
    for (name, found) in tensors {
        let got = found.view.shape().to_vec();
        let want = match (classify(name), by_name.get(name.as_str())) {
            (Kind::LmHead, _) => vec![params.cfg.vocab_size, params.cfg.n_embd],
            (_, Some(spec)) => spec.shape.clone(),
            _ if name == "score.weight" => {
                return Err(CheckpointError::ScoreWithoutLabels {
                    file: found.file(),
                    got,
                })
            }
            _ => {
                return Err(CheckpointError::Unexpected {
                    file: found.file(),
                    key: found.key.clone(),
                })
            }
        };
        if got != want {
            return Err(CheckpointError::Shape {
                file: found.file(),
                key: found.key.clone(),
                want,
                got,
            });
        }
        let dtype = found.view.dtype();
        if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64) {
            return Err(CheckpointError::Dtype {
                file: found.file(),
                key: found.key.clone(),
                dtype: format!("{dtype:?}"),
            });
        }
    }
    if let Some(spec) = specs.iter().find(|s| !tensors.contains_key(&s.name)) {
        return Err(CheckpointError::Missing {
            file: label.to_string(),
            key: spec.name.clone(),
        });
    }
    // Pass 2: convert.
    for spec in &specs {
        let found = &tensors[&spec.name];
        let out = &mut params.data[spec.offset..spec.offset + spec.numel()];
        convert(out, found.view.dtype(), found.view.data()).map_err(|msg| {
            CheckpointError::Corrupt {
                file: found.file(),
                msg: format!("tensor `{}`: {msg}", found.key),
            }
        })?;
    }
    if let Some(head) = tensors.get("lm_head.weight") {
        let wte = specs
            .iter()
            .find(|s| s.name == "wte.weight")
            .expect("the table has wte");
        check_tied(head, &params.data[wte.offset..wte.offset + wte.numel()])?;
    }
    Ok(())
}

/// Checks that the file's `lm_head.weight` equals `wte` (already converted to f32) element by
/// element, converting the head a chunk at a time.
///
/// Errors: [`CheckpointError::UntiedLmHead`] at the first difference; `Corrupt` as [`convert`].
fn check_tied(head: &Found<'_>, wte: &[f32]) -> Result<(), CheckpointError> {
    const ROWS: usize = 1 << 16;
    let dtype = head.view.dtype();
    let bytes = head.view.data();
    let mut buf = vec![0f32; ROWS.min(wte.len())];
    for (i, want) in wte.chunks(ROWS).enumerate() {
        let got = &mut buf[..want.len()];
        let at = i * ROWS * dtype.size();
        let raw = bytes.get(at..at + want.len() * dtype.size()).unwrap_or(&[]);
        convert(got, dtype, raw).map_err(|msg| CheckpointError::Corrupt {
            file: head.file(),
            msg: format!("tensor `{}`: {msg}", head.key),
        })?;
        if let Some(j) = (0..want.len()).find(|&j| got[j].to_bits() != want[j].to_bits()) {
            return Err(CheckpointError::UntiedLmHead {
                file: head.file(),
                key: head.key.clone(),
                index: i * ROWS + j,
                head: got[j],
                wte: want[j],
            });
        }
    }
    Ok(())
}

/// Converts little-endian `bytes` of `dtype` into `out` (f32). Errors when the byte count does not
/// match `out.len()` (cannot happen for a file safetensors validated) or the dtype is not a float.
fn convert(out: &mut [f32], dtype: Dtype, bytes: &[u8]) -> Result<(), String> {
    const CHUNK: usize = 1 << 16;
    let size = dtype.size();
    if bytes.len() != out.len() * size {
        return Err(format!(
            "{} bytes of {dtype:?} for {} elements",
            bytes.len(),
            out.len()
        ));
    }
    let conv: fn(&[u8]) -> f32 = match dtype {
        Dtype::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        Dtype::F16 => |b| half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
        Dtype::BF16 => |b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        Dtype::F64 => {
            |b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
        }
        other => return Err(format!("unsupported dtype {other:?}")),
    };
    out.par_chunks_mut(CHUNK)
        .zip(bytes.par_chunks(CHUNK * size))
        .for_each(|(o, b)| {
            for (x, e) in o.iter_mut().zip(b.chunks_exact(size)) {
                *x = conv(e);
            }
        });
    Ok(())
}

/// One tensor of [`Params`] as safetensors' [`View`]: bytes are produced when the writer asks,
/// so saving holds at most one converted tensor in memory.
struct OutTensor<'a> {
    dtype: SaveDtype,
    shape: Vec<usize>,
    data: &'a [f32],
}

impl View for OutTensor<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype.dtype()
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let bytes: Vec<u8> = match self.dtype {
            SaveDtype::F32 => self.data.iter().flat_map(|x| x.to_le_bytes()).collect(),
            SaveDtype::F16 => self
                .data
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect(),
            SaveDtype::BF16 => self
                .data
                .iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                .collect(),
        };
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        self.data.len() * self.dtype.dtype().size()
    }
}

/// The key `transformers` uses for a table entry: `transformer.` + name for the base model,
/// the bare name for `score.weight`.
pub fn hf_key(spec: &ParamSpec) -> String {
    if spec.in_transformer() {
        format!("{PREFIX}{}", spec.name)
    } else {
        spec.name.clone()
    }
}

/// Writes `params` into the folder `dir` as `config.json` (`cfg.to_hf_json()`) and
/// `model.safetensors` in `dtype`, in the layout `transformers` 5.x saves (see the module doc),
/// so `GPT2LMHeadModel.from_pretrained(dir)` (or `GPT2ForSequenceClassification`) loads it.
///
/// Each file is written to a temporary file in `dir`, flushed to disk, then renamed over the old
/// one, so a crash never leaves a half-written file under the real name. `dir` is created if
/// missing (its parent must exist); other files in `dir` are left untouched, except a stale
/// [`CHECKSUMS_FILE`], which is removed (it described the files being replaced).
///
/// Errors: [`CheckpointError::ParentMissing`]; [`CheckpointError::Io`] for any file-system
/// failure; [`crate::Error::Invalid`] when `params.data` does not match `params.cfg`'s table.
pub fn save(params: &Params, dir: &Path, dtype: SaveDtype) -> Result<(), crate::Error> {
    let specs = param_specs(&params.cfg);
    let total: usize = specs.iter().map(|s| s.numel()).sum();
    if params.data.len() != total {
        return Err(crate::Error::Invalid(format!(
            "parameter buffer has {} elements but config implies {total}",
            params.data.len()
        )));
    }
    ensure_dir(dir)?;
    // the checksums of a training run's files no longer describe what is written here (the
    // trainer writes new ones after saving)
    match std::fs::remove_file(dir.join(CHECKSUMS_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_err(&dir.join(CHECKSUMS_FILE))(e).into())
        }
        _ => {}
    }
    let tensors: Vec<(String, OutTensor<'_>)> = specs
        .iter()
        .map(|s| {
            (
                hf_key(s),
                OutTensor {
                    dtype,
                    shape: s.shape.clone(),
                    data: &params.data[s.offset..s.offset + s.numel()],
                },
            )
        })
        .collect();
    let metadata = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "pt".to_string(),
    )]));
    let weights = dir.join(WEIGHTS_FILE);
    write_atomic(&weights, |tmp| {
        safetensors::serialize_to_file(tensors, &metadata, tmp).map_err(|e| match e {
            SafeTensorError::IoError(source) => source,
            other => std::io::Error::other(format!("{other:?}")),
        })
    })?;
    let config = dir.join(CONFIG_FILE);
    let text = params.cfg.to_hf_json();
    write_atomic(&config, |tmp| std::fs::write(tmp, text.as_bytes()))?;
    Ok(())
}

/// Creates `dir` unless it exists; its parent must exist.
fn ensure_dir(dir: &Path) -> Result<(), CheckpointError> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(CheckpointError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other("exists and is not a folder"),
        });
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(CheckpointError::ParentMissing {
                dir: dir.display().to_string(),
            });
        }
    }
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(io_err(dir)(e)),
        _ => Ok(()),
    }
}

/// [`crate::data::write_atomic`] (temporary file, sync, rename, parent folder synced) with the
/// error as a [`CheckpointError::Io`] naming the path that failed.
fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), CheckpointError> {
    crate::data::write_atomic(path, write).map_err(|(p, source)| CheckpointError::Io {
        path: p.display().to_string(),
        source,
    })
}
