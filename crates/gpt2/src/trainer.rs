//! The training loop: micro-batches → forward → backward → clip → AdamW, with evaluation, samples,
//! checkpoints, exact resume and metrics — everything `gpt2 train` does except drawing it.
//!
//! One optimizer step (llm.c `train_gpt2.c` main loop, nanoGPT `train.py`):
//!
//! ```text
//! grads ← 0
//! for each of N micro-batches (inputs, targets) (B, T):
//!     loss_i, n_i ← forward(params, inputs, targets) mean over its n_i counted targets
//!     grads  += backward(…) · n_i                    the gradient of its summed loss
//! loss ← Σ n_i·loss_i / Σ n_i;  grads ← grads / Σ n_i   token-weighted: ∇ of the step's mean
//! norm ← ‖grads‖₂ (clipped to --grad-clip if > 0)
//! params ← AdamW(params, grads, lr_at(step))
//! ```
//!
//! Steps are numbered from 0; "checkpoint-n" holds the state after n optimizer steps, and a run
//! resumed from it continues with step n. Evaluation happens before step s when
//! `s % eval_every == 0` and once more after the last step (reported as step = `steps`); samples
//! likewise for s > 0 and at the end.
//!
//! # Files written in `out`
//!
//! | file | content |
//! | --- | --- |
//! | `config.json`, `model.safetensors` | the final model ([`crate::checkpoint::save`], f32) |
//! | `optimizer.safetensors` | AdamW moments, f32, `exp_avg.{name}` and `exp_avg_sq.{name}` for every [`crate::params::ParamSpec`] name (torch's state names) |
//! | `trainer_state.json` | [`TrainerState`]: step, AdamW t, data-loader position and RNG, dropout RNG, the [`RunFlags`] a resume must repeat |
//! | `metrics.jsonl` | one `{"step","loss","lr","grad_norm","tokens_per_s"}` object per step, `{"step","val_loss"}` at evaluations (plus `"val_accuracy"` for classification) |
//! | `checksums.json` (in each `checkpoint-{n}/`) | the CRC-32 of every other file of the checkpoint, written last |
//! | `checkpoint-{n}/` | the first three files of this table and `checksums.json` after n steps, every `save_every` steps; the newest `keep_checkpoints` are kept |
//!
//! Every file is written to a temporary name and renamed; a checkpoint folder is filled under a
//! temporary name and renamed whole. [`load_checkpoint`] checks every file against
//! `checksums.json`, so a truncated or bit-flipped weight, optimizer or state file is an error
//! naming the file, never a resume that silently diverges.
//!
//! # Exact resume
//!
//! A run resumed from `checkpoint-n` with the same [`RunFlags`] computes bitwise the same losses
//! and final weights as the uninterrupted run on the same thread count: the weights and the AdamW
//! moments are stored as f32, and the step, AdamW's t, the loader's position and shuffling RNG and
//! the dropout RNG are restored. Evaluation and sampling read no training RNG.
//!
//! The total number of steps is the one flag a resume may change: any `steps` above the
//! checkpoint's step continues the same run (training longer or shorter) with the schedule
//! recomputed for the new total (a cosine schedule's rate moves from where it was to the new
//! curve; a constant one is unchanged).
//!
//! Non-goals: multi-process data parallelism, mixed precision, learning-rate schedules beyond
//! constant and warm-up + cosine.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, SaveDtype};
use crate::data::{DataError, DataLoader, LoaderState, Order, Shard};
use crate::generate::{self, GenerateOptions};
use crate::params::{param_specs, Params};
use crate::rng::Rng;
use crate::sampling::SamplingParams;
use crate::tasks::{classify, sft};
use crate::tokenizer::Tokenizer;
use crate::train::{self, Activations, AdamW, AdamWConfig, LrSchedule};
use crate::Model;

/// The training state file of a checkpoint folder.
pub const STATE_FILE: &str = "trainer_state.json";
/// The AdamW moments file of a checkpoint folder.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The metrics log in the output folder.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The `format` field of [`TrainerState`].
pub const STATE_FORMAT: &str = "gpt2-trainer-state-v1";
pub use crate::checkpoint::CHECKSUMS_FILE;
use crate::checkpoint::{file_crc32, verify_checksums, CHECKSUMS_FORMAT};

/// Errors of a training run. Nothing is written before the inputs are checked.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A bad or too short token shard.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Model, checkpoint, tokenizer or file-system errors from the rest of the crate.
    #[error(transparent)]
    Model(#[from] crate::Error),
    /// A setting out of range, named by its `gpt2 train` flag.
    #[error("{0}")]
    Invalid(String),
    /// The loss or the gradient norm is NaN or infinite: the run stops before the update.
    #[error("non-finite {what} ({value}) at step {step}: training stopped; {}", match .last_checkpoint {
        Some(dir) => format!("the last good checkpoint is {}", dir.display()),
        None => "no checkpoint was saved".to_string(),
    })]
    NonFinite {
        /// The step (0-based) whose loss or gradient was not finite.
        step: usize,
        /// `"loss"` or `"gradient norm"`.
        what: &'static str,
        /// The value.
        value: f32,
        /// The newest checkpoint folder in the output folder, if any.
        last_checkpoint: Option<PathBuf>,
    },
    /// A checkpoint that cannot be resumed from, or flags that differ from the resumed run's.
    #[error("cannot resume from {dir}: {msg}")]
    Resume {
        /// The checkpoint folder.
        dir: String,
        /// What is wrong.
        msg: String,
    },
    /// A checkpoint could not be written (a full disk, say). Its partial folder is removed, so
    /// nothing is left under a checkpoint's name; earlier checkpoints are untouched.
    #[error("cannot save checkpoint {dir}: {cause}; {}", match .previous {
        Some(p) => format!("the previous checkpoint {} is intact", p.display()),
        None => "there is no earlier checkpoint".to_string(),
    })]
    Save {
        /// The checkpoint folder that was to be written.
        dir: String,
        /// The newest complete checkpoint left in the output folder.
        previous: Option<PathBuf>,
        /// What failed (it names the file).
        cause: Box<TrainError>,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Everything that shapes a run. Field docs give the `gpt2 train` flag.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// `--batch-size` B: rows per micro-batch.
    pub batch_size: usize,
    /// `--seq-len` T: tokens per row (≤ n_positions).
    pub seq_len: usize,
    /// `--grad-accum` N: micro-batches per optimizer step.
    pub grad_accum: usize,
    /// `--steps`: optimizer steps of the whole run.
    pub steps: usize,
    /// `--lr`: peak learning rate.
    pub lr: f32,
    /// `--lr-schedule`, `--warmup`, `--min-lr`.
    pub schedule: LrSchedule,
    /// `--beta1`, `--beta2`, `--eps`, `--weight-decay`.
    pub adamw: AdamWConfig,
    /// `--grad-clip`: maximum global gradient norm; 0 turns clipping off.
    pub grad_clip: f32,
    /// `--eval-every`: steps between evaluations; 0 turns evaluation off.
    pub eval_every: usize,
    /// `--eval-steps`: (B, T) batches per evaluation, consecutive from the validation shard's start.
    pub eval_steps: usize,
    /// `--sample-every`: steps between samples; 0 turns samples off.
    pub sample_every: usize,
    /// Prompt of the samples (token ids).
    pub sample_prompt: Vec<u32>,
    /// New tokens per sample (capped by the context).
    pub sample_tokens: usize,
    /// `--save-every`: steps between checkpoints; 0 turns them off (the final model is still saved).
    pub save_every: usize,
    /// `--keep-checkpoints`: newest checkpoint folders kept; 0 keeps all.
    pub keep_checkpoints: usize,
    /// `--seed`: seeds the data order, dropout and samples (and, in the CLI, the initialization).
    pub seed: u64,
    /// `--no-shuffle` unset: windows in a seeded random order; set: in shard order.
    pub shuffle: bool,
    /// `--dropout` p for the embeddings, attention weights and residual branches; 0 is off.
    pub dropout: f32,
    /// `--out`: output folder (its parent must exist); `None` writes nothing (benchmarks).
    pub out: Option<PathBuf>,
    /// Set (e.g. by a Ctrl-C handler) to stop before the next step with a checkpoint.
    pub stop: Option<Arc<AtomicBool>>,
}

/// The settings a resumed run must repeat, saved in [`TrainerState`]. Field names are the
/// `gpt2 train` flags with `_` for `-`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFlags {
    /// B.
    pub batch_size: usize,
    /// T.
    pub seq_len: usize,
    /// N.
    pub grad_accum: usize,
    /// Total optimizer steps.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// `constant` or `cosine`.
    pub lr_schedule: String,
    /// Warm-up steps (cosine).
    pub warmup: usize,
    /// Final learning rate (cosine).
    pub min_lr: f32,
    /// AdamW decoupled weight decay.
    pub weight_decay: f32,
    /// AdamW β₁.
    pub beta1: f32,
    /// AdamW β₂.
    pub beta2: f32,
    /// AdamW ε.
    pub eps: f32,
    /// Clipping norm (0 = off).
    pub grad_clip: f32,
    /// Seed.
    pub seed: u64,
    /// Shard order.
    pub no_shuffle: bool,
    /// Dropout probability.
    pub dropout: f32,
    /// Tokens in the training shard (a different shard cannot continue the same order).
    pub train_tokens: u64,
    /// `--task`: `lm`, `classify` or `sft` (absent in files of older versions: `lm`).
    #[serde(default = "default_task")]
    pub task: String,
}

fn default_task() -> String {
    "lm".into()
}

/// The training state saved beside each checkpoint's weights (`trainer_state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// [`STATE_FORMAT`].
    pub format: String,
    /// Optimizer steps done.
    pub step: usize,
    /// AdamW's step counter t (bias correction).
    pub adamw_t: u64,
    /// Data-loader position and shuffling RNG.
    pub data: LoaderState,
    /// The dropout RNG's state.
    pub dropout_rng: [u64; 4],
    /// The settings of the run.
    pub flags: RunFlags,
    /// Whether the checkpoint has a [`CHECKSUMS_FILE`] (every checkpoint written since it
    /// existed): then [`load_checkpoint`] refuses the folder without it.
    #[serde(default)]
    pub checksums: bool,
}

/// A checkpoint to resume from, as [`load_checkpoint`] reads it.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The folder it was read from.
    pub dir: PathBuf,
    /// The weights.
    pub params: Params,
    /// The AdamW state.
    pub opt: AdamW,
    /// Step, RNGs, data position and flags.
    pub state: TrainerState,
}

/// Where a run starts.
#[derive(Debug)]
pub enum Start {
    /// From these weights (initialized or loaded), step 0, fresh optimizer.
    Fresh(Params),
    /// From a checkpoint, continuing exactly where it stopped.
    Resume(Box<Checkpoint>),
}

/// The token shards of a run.
#[derive(Debug)]
pub struct TrainData {
    /// Training shard.
    pub train: Shard,
    /// Validation shard; `None` means no evaluation.
    pub val: Option<Shard>,
}

/// The numbers of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepMetrics {
    /// Step index (0-based).
    pub step: usize,
    /// Mean cross-entropy over every counted target of the step (all its micro-batches: tokens,
    /// completion tokens for SFT, examples for classification), nats.
    pub loss: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Real input tokens of the step's micro-batches over its wall time (forward, backward,
    /// update); B·T·N for language modelling.
    pub tokens_per_s: f64,
    /// The step's wall time in seconds.
    pub seconds: f64,
}

/// Progress reports, in the order they happen.
#[derive(Debug, Clone)]
pub enum Event {
    /// The loop is about to start.
    Started {
        /// First step to run (n when resuming from checkpoint-n).
        start_step: usize,
        /// Total steps.
        steps: usize,
        /// Parameters of the model.
        num_params: usize,
        /// B·T·N.
        tokens_per_step: usize,
    },
    /// One optimizer step done.
    Step(StepMetrics),
    /// Mean validation loss before step `step` (`step == steps` after the last one).
    Eval {
        /// Step.
        step: usize,
        /// Mean cross-entropy over `eval_steps` batches, nats.
        val_loss: f32,
        /// Fraction of the evaluated examples classified right (classification only).
        val_accuracy: Option<f32>,
    },
    /// A sample from the model before step `step`.
    Sample {
        /// Step.
        step: usize,
        /// The generated text (the prompt excluded).
        text: String,
    },
    /// A checkpoint (or the final model) was written.
    Saved {
        /// Optimizer steps it holds.
        step: usize,
        /// The folder.
        dir: PathBuf,
        /// True for the final model in `out` itself.
        is_final: bool,
    },
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// All steps done; the final model is saved in `out` (when set).
    Finished {
        /// The trained weights.
        params: Params,
        /// Loss of the last step (NaN if no step ran).
        last_loss: f32,
    },
    /// Stopped by the `stop` flag after `step` steps, saved in `checkpoint`.
    Interrupted {
        /// Steps done.
        step: usize,
        /// The checkpoint written (`None` without `out`).
        checkpoint: Option<PathBuf>,
    },
}

impl TrainConfig {
    /// Checks every field's range; errors name the flag.
    ///
    /// Errors: [`TrainError::Invalid`].
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |msg: String| Err(TrainError::Invalid(msg));
        for (flag, v) in [
            ("--batch-size", self.batch_size),
            ("--seq-len", self.seq_len),
            ("--grad-accum", self.grad_accum),
            ("--steps", self.steps),
        ] {
            if v == 0 {
                return bad(format!("{flag} must be > 0"));
            }
        }
        if self.eval_every > 0 && self.eval_steps == 0 {
            return bad("--eval-steps must be > 0 when --eval-every is set".into());
        }
        let finite_nonneg = |flag: &str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                bad(format!("{flag} must be a finite number >= 0, got {v}"))
            }
        };
        finite_nonneg("--lr", self.lr)?;
        finite_nonneg("--weight-decay", self.adamw.weight_decay)?;
        finite_nonneg("--grad-clip", self.grad_clip)?;
        if let LrSchedule::Cosine { min_lr, .. } = self.schedule {
            finite_nonneg("--min-lr", min_lr)?;
        }
        for (flag, b) in [("--beta1", self.adamw.beta1), ("--beta2", self.adamw.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(format!("{flag} must be in [0, 1), got {b}"));
            }
        }
        if !(self.adamw.eps > 0.0 && self.adamw.eps.is_finite()) {
            return bad(format!("--eps must be > 0, got {}", self.adamw.eps));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("--dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }

    /// The flags a resume must repeat, for a training shard of `train_tokens` tokens.
    pub fn flags(&self, train_tokens: u64) -> RunFlags {
        let (lr_schedule, warmup, min_lr) = match self.schedule {
            LrSchedule::Constant => ("constant", 0, self.lr),
            LrSchedule::Cosine { warmup, min_lr } => ("cosine", warmup, min_lr),
        };
        RunFlags {
            batch_size: self.batch_size,
            seq_len: self.seq_len,
            grad_accum: self.grad_accum,
            steps: self.steps,
            lr: self.lr,
            lr_schedule: lr_schedule.into(),
            warmup,
            min_lr,
            weight_decay: self.adamw.weight_decay,
            beta1: self.adamw.beta1,
            beta2: self.adamw.beta2,
            eps: self.adamw.eps,
            grad_clip: self.grad_clip,
            seed: self.seed,
            no_shuffle: !self.shuffle,
            dropout: self.dropout,
            train_tokens,
            task: default_task(),
        }
    }

    fn order(&self) -> Order {
        if self.shuffle {
            Order::Shuffled {
                seed: derive_seed(self.seed, 1),
            }
        } else {
            Order::Sequential
        }
    }
}

/// Independent streams from one `--seed`: 1 data order, 2 dropout, 3 samples (the CLI's
/// initialization uses the seed itself).
fn derive_seed(seed: u64, stream: u64) -> u64 {
    seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl RunFlags {
    /// (flag, value) pairs as the CLI spells them; floats in their shortest round-trip form, so
    /// equal text means equal values.
    fn entries(&self) -> [(&'static str, String); 16] {
        [
            ("--batch-size", self.batch_size.to_string()),
            ("--seq-len", self.seq_len.to_string()),
            ("--grad-accum", self.grad_accum.to_string()),
            ("--steps", self.steps.to_string()),
            ("--lr", self.lr.to_string()),
            ("--lr-schedule", self.lr_schedule.clone()),
            ("--warmup", self.warmup.to_string()),
            ("--min-lr", self.min_lr.to_string()),
            ("--weight-decay", self.weight_decay.to_string()),
            ("--beta1", self.beta1.to_string()),
            ("--beta2", self.beta2.to_string()),
            ("--eps", self.eps.to_string()),
            ("--grad-clip", self.grad_clip.to_string()),
            ("--seed", self.seed.to_string()),
            ("--no-shuffle", self.no_shuffle.to_string()),
            ("--dropout", self.dropout.to_string()),
        ]
    }
}

/// Names the first flag whose value differs between a saved run, stopped at `step`, and this one;
/// `--steps` may change to any value above `step` (training longer or shorter).
fn compare_flags(saved: &RunFlags, now: &RunFlags, step: usize) -> Result<(), String> {
    if now.steps <= step {
        return Err(format!(
            "the checkpoint is at step {step}, and --steps {} leaves nothing to train; \
             give a larger --steps to train longer",
            now.steps
        ));
    }
    if saved.task != now.task {
        return Err(format!(
            "it was trained with --task {} but --task {} is given now",
            saved.task, now.task
        ));
    }
    if saved.train_tokens != now.train_tokens {
        return Err(format!(
            "it was trained on a shard of {} tokens, --data now has {}",
            saved.train_tokens, now.train_tokens
        ));
    }
    for ((flag, a), (_, b)) in saved.entries().into_iter().zip(now.entries()) {
        if a != b && flag != "--steps" {
            let given = |v: &str| match (flag, v) {
                ("--no-shuffle", "true") => "--no-shuffle".to_string(),
                ("--no-shuffle", _) => "no --no-shuffle".to_string(),
                _ => format!("{flag} {v}"),
            };
            return Err(format!(
                "it ran with {} but {} is given now; resume with the same flags",
                given(&a),
                given(&b)
            ));
        }
    }
    Ok(())
}

/// Reads the checkpoint folder `dir` (weights, `optimizer.safetensors`, `trainer_state.json`).
///
/// Errors: [`TrainError::Resume`] when the folder has no training state or it is unreadable or
/// does not match the weights; [`TrainError::Model`] for the weights.
pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint, TrainError> {
    let fail = |msg: String| TrainError::Resume {
        dir: dir.display().to_string(),
        msg,
    };
    if !dir.is_dir() {
        return Err(fail("no such folder".into()));
    }
    let state_path = dir.join(STATE_FILE);
    if !state_path.is_file() {
        return Err(fail(format!(
            "it holds no training state ({STATE_FILE}); resume from an OUT/checkpoint-N folder written by `gpt2 train`"
        )));
    }
    // checksums first, so a damaged file is reported as damaged, not as whatever its parser saw
    let has_checksums = dir.join(CHECKSUMS_FILE).exists();
    verify_checksums(dir, &CHECKED_FILES, None).map_err(fail)?;
    let text =
        std::fs::read_to_string(&state_path).map_err(|e| fail(format!("{STATE_FILE}: {e}")))?;
    let state: TrainerState =
        serde_json::from_str(&text).map_err(|e| fail(format!("{STATE_FILE}: {e}")))?;
    if state.format != STATE_FORMAT {
        return Err(fail(format!(
            "{STATE_FILE} has format {:?}, expected {STATE_FORMAT:?}",
            state.format
        )));
    }
    if state.checksums && !has_checksums {
        return Err(fail(format!(
            "{CHECKSUMS_FILE} is missing, though {STATE_FILE} says it was written: the folder is \
             incomplete or damaged; resume from another checkpoint"
        )));
    }
    let params = checkpoint::load(dir)?;
    let opt = read_optimizer(&dir.join(OPTIMIZER_FILE), &params, state.adamw_t)
        .map_err(|msg| fail(format!("{OPTIMIZER_FILE}: {msg}")))?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        params,
        opt,
        state,
    })
}

/// The files of a checkpoint that [`CHECKSUMS_FILE`] covers.
const CHECKED_FILES: [&str; 4] = [
    checkpoint::CONFIG_FILE,
    checkpoint::WEIGHTS_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
];

/// Writes `dir/checksums.json`: the CRC-32 of each of [`CHECKED_FILES`] in `dir`, by name.
/// Written last, after the files it covers.
fn write_checksums(dir: &Path) -> Result<(), TrainError> {
    let mut files = std::collections::BTreeMap::new();
    for name in CHECKED_FILES {
        let path = dir.join(name);
        let crc = file_crc32(&path).map_err(io_err(&path))?;
        files.insert(name, format!("{crc:08x}"));
    }
    let json = serde_json::json!({
        "format": CHECKSUMS_FORMAT,
        "algorithm": "crc32",
        "files": files,
    });
    let text = serde_json::to_string_pretty(&json).expect("checksums serialize");
    write_atomic_with(&dir.join(CHECKSUMS_FILE), |tmp| std::fs::write(tmp, text))
}

fn moment_keys(name: &str) -> [String; 2] {
    [format!("exp_avg.{name}"), format!("exp_avg_sq.{name}")]
}

/// Writes the AdamW moments as f32 safetensors, one pair of tensors per parameter tensor.
fn write_optimizer(path: &Path, params: &Params, opt: &AdamW) -> Result<(), TrainError> {
    use safetensors::tensor::TensorView;
    let to_bytes = |xs: &[f32]| xs.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let (m, v) = (to_bytes(&opt.m), to_bytes(&opt.v));
    let mut views = Vec::new();
    for spec in param_specs(&params.cfg) {
        let range = spec.offset * 4..(spec.offset + spec.numel()) * 4;
        let [km, kv] = moment_keys(&spec.name);
        for (key, buf) in [(km, &m), (kv, &v)] {
            let view = TensorView::new(
                safetensors::Dtype::F32,
                spec.shape.clone(),
                &buf[range.clone()],
            )
            .map_err(|e| TrainError::Invalid(format!("optimizer tensor {key}: {e:?}")))?;
            views.push((key, view));
        }
    }
    let meta = Some(std::collections::HashMap::from([(
        "format".to_string(),
        "gpt2-adamw".to_string(),
    )]));
    write_atomic_with(path, |tmp| {
        safetensors::serialize_to_file(views, &meta, tmp).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(io) => io,
            other => std::io::Error::other(format!("{other:?}")),
        })
    })
}

/// Reads the moments written by [`write_optimizer`] for `params`' table.
fn read_optimizer(path: &Path, params: &Params, t: u64) -> Result<AdamW, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format!("{e:?}"))?;
    let n = params.data.len();
    let mut opt = AdamW::new(n);
    for spec in param_specs(&params.cfg) {
        let keys = moment_keys(&spec.name);
        for (key, dst) in keys.iter().zip([&mut opt.m, &mut opt.v]) {
            let view = st
                .tensor(key)
                .map_err(|_| format!("missing tensor {key}"))?;
            if view.dtype() != safetensors::Dtype::F32 || view.shape() != spec.shape.as_slice() {
                return Err(format!(
                    "tensor {key} is {:?} {:?}, expected F32 {:?}",
                    view.dtype(),
                    view.shape(),
                    spec.shape
                ));
            }
            let out = &mut dst[spec.offset..spec.offset + spec.numel()];
            for (o, b) in out.iter_mut().zip(view.data().chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
    opt.t = t;
    Ok(opt)
}

/// [`crate::data::write_atomic`] with the error as a [`TrainError::Io`].
fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), TrainError> {
    crate::data::write_atomic(path, write).map_err(|(p, source)| TrainError::Io {
        path: p.display().to_string(),
        source,
    })
}

/// Writes weights, moments and state into `dir` (which must exist).
fn write_all(
    dir: &Path,
    params: &Params,
    opt: &AdamW,
    state: &TrainerState,
) -> Result<(), TrainError> {
    checkpoint::save(params, dir, SaveDtype::F32)?;
    write_optimizer(&dir.join(OPTIMIZER_FILE), params, opt)?;
    let json = serde_json::to_string_pretty(state).expect("state serializes");
    write_atomic_with(&dir.join(STATE_FILE), |tmp| {
        std::fs::write(tmp, json.as_bytes())
    })?;
    write_checksums(dir)
}

/// `out/checkpoint-{step}`.
pub fn checkpoint_dir(out: &Path, step: usize) -> PathBuf {
    out.join(format!("checkpoint-{step}"))
}

/// The checkpoint folders in `out`, oldest first, with their steps.
pub fn list_checkpoints(out: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("checkpoint-")?.parse().ok()?;
            e.path().is_dir().then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Saves `out/checkpoint-{step}` atomically (filled as `.checkpoint-{step}.tmp`, then renamed) and
/// removes all but the newest `keep` checkpoint folders (0 keeps all).
fn save_checkpoint(
    out: &Path,
    step: usize,
    keep: usize,
    params: &Params,
    opt: &AdamW,
    state: &TrainerState,
) -> Result<PathBuf, TrainError> {
    let dir = checkpoint_dir(out, step);
    let tmp = out.join(format!(".checkpoint-{step}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    if let Err(cause) = write_all(&tmp, params, opt, state) {
        // free what was written (on a full disk, the space) and leave nothing half-done
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(TrainError::Save {
            dir: dir.display().to_string(),
            previous: list_checkpoints(out).pop().map(|(_, d)| d),
            cause: Box::new(cause),
        });
    }
    if dir.exists() {
        let old = out.join(format!(".checkpoint-{step}.old"));
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(&dir, &old).map_err(io_err(&dir))?;
        std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    } else {
        std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    }
    if let Ok(d) = File::open(out) {
        let _ = d.sync_all();
    }
    if keep > 0 {
        let all = list_checkpoints(out);
        for (n, old) in &all[..all.len().saturating_sub(keep)] {
            // renamed out of the checkpoint names first (atomic), then deleted: a kill during
            // the deletion leaves a hidden folder, never a checkpoint-N with files missing
            let doomed = out.join(format!(".checkpoint-{n}.old"));
            let _ = std::fs::remove_dir_all(&doomed);
            std::fs::rename(old, &doomed).map_err(io_err(old))?;
            std::fs::remove_dir_all(&doomed).map_err(io_err(&doomed))?;
        }
    }
    Ok(dir)
}

/// The metrics log: one JSON object per line, flushed after each.
struct Metrics {
    file: BufWriter<File>,
    path: PathBuf,
}

impl Metrics {
    /// Opens `out/metrics.jsonl`: emptied for a fresh run; for a run resumed at `start_step`, the
    /// rows of earlier steps are kept and later ones (from the interrupted future) dropped.
    fn open(out: &Path, start_step: usize) -> Result<Self, TrainError> {
        let path = out.join(METRICS_FILE);
        let mut keep = String::new();
        if start_step > 0 {
            if let Ok(f) = File::open(&path) {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(io_err(&path))?;
                    let step = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v["step"].as_u64());
                    if step.is_some_and(|s| (s as usize) < start_step) {
                        keep.push_str(&line);
                        keep.push('\n');
                    }
                }
            }
        }
        write_atomic_with(&path, |tmp| std::fs::write(tmp, keep.as_bytes()))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self {
            file: BufWriter::new(file),
            path,
        })
    }

    /// Appends one JSON object (`line`, without the newline).
    fn row(&mut self, line: &str) -> Result<(), TrainError> {
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .map_err(io_err(&self.path))
    }
}

/// The metrics row of an evaluation: `{"step","val_loss"}`, plus `"val_accuracy"` for
/// classification.
fn eval_row(step: usize, val_loss: f32, val_accuracy: Option<f32>) -> String {
    let acc = val_accuracy.map_or(String::new(), |a| {
        format!(",\"val_accuracy\":{}", json_num(a as f64))
    });
    format!(
        "{{\"step\":{step},\"val_loss\":{}{acc}}}",
        json_num(val_loss as f64)
    )
}

/// A number as JSON (shortest round-trip form of the f64; `null` when not finite).
fn json_num(x: f64) -> String {
    serde_json::Value::from(x).to_string()
}

/// Creates `out` if missing; its parent must exist.
fn ensure_out(out: &Path) -> Result<(), TrainError> {
    if out.is_dir() {
        return Ok(());
    }
    if out.exists() {
        return Err(TrainError::Invalid(format!(
            "--out {} exists and is not a folder",
            out.display()
        )));
    }
    check_out_parent(out)?;
    std::fs::create_dir(out).map_err(io_err(out))
}

/// Checks that the output folder can be created: it exists, or its parent does.
///
/// Errors: [`TrainError::Invalid`] naming the missing parent.
pub fn check_out_parent(out: &Path) -> Result<(), TrainError> {
    if out.is_dir() {
        return Ok(());
    }
    match out.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) if !parent.is_dir() => Err(TrainError::Invalid(format!(
            "--out {}: its parent folder {} does not exist",
            out.display(),
            parent.display()
        ))),
        _ => Ok(()),
    }
}

/// Mean loss over `steps` consecutive (B, T) batches of `val` from its start (no dropout).
fn evaluate(
    params: &Params,
    acts: &mut Activations,
    val: &Shard,
    steps: usize,
    bufs: &mut Buffers,
) -> f32 {
    let (b, t) = (acts.batch(), acts.seq_len());
    let mut sum = 0.0f64;
    for k in 0..steps {
        let start = (k as u64 * (b * t) as u64 % val.len() as u64) as usize;
        val.read_batch(start, &mut bufs.x, &mut bufs.y, &mut bufs.span);
        sum += train::forward(params, acts, &bufs.x, &bufs.y, None) as f64;
    }
    (sum / steps as f64) as f32
}

/// Generates a sample of `cfg.sample_tokens` tokens (top-k 40, seeded by the seed and the step).
fn sample(params: &Params, cfg: &TrainConfig, step: usize) -> Result<String, crate::Error> {
    let tok = Tokenizer::gpt2()?;
    let model = Model::new(params.clone());
    let opts = GenerateOptions {
        max_new_tokens: cfg.sample_tokens,
        sampling: SamplingParams {
            top_k: Some(40),
            ..SamplingParams::default()
        },
        seed: generate::sample_seed(derive_seed(cfg.seed, 3), step),
        ..GenerateOptions::default()
    };
    let mut gen = generate::generate(&model, &tok, &cfg.sample_prompt, &opts, 1)?;
    for ev in gen.by_ref() {
        ev?;
    }
    Ok(gen.sequences()[0].text().to_string())
}

/// Token buffers of one micro-batch.
struct Buffers {
    /// inputs (B, T)
    x: Vec<u32>,
    /// targets (B, T)
    y: Vec<u32>,
    /// scratch (B·T + 1)
    span: Vec<u32>,
}

/// Runs the training loop described in the module doc and returns how it ended.
///
/// Everything is checked before anything is written: the config ([`TrainConfig::validate`]),
/// T ≤ n_positions, both shards hold at least one batch, the output folder's parent exists, and a
/// resumed checkpoint's flags equal these. `callback` receives every [`Event`].
///
/// Errors: [`TrainError::Invalid`], [`TrainError::Data`] (e.g. [`DataError::TooShort`]),
/// [`TrainError::Resume`] for mismatched flags, [`TrainError::NonFinite`] when the loss or the
/// gradient norm stops being finite (nothing is saved for that step), [`TrainError::Io`] and
/// [`TrainError::Model`] for writes.
pub fn train(
    cfg: &TrainConfig,
    start: Start,
    data: TrainData,
    callback: &mut dyn FnMut(&Event),
) -> Result<Outcome, TrainError> {
    train_task(cfg, start, TaskData::Lm(data), callback)
}

/// What a run trains on: the language model on token shards, or a task on examples
/// ([`crate::tasks`]). For tasks, [`TrainConfig::seq_len`] is the longest example (`--max-len`),
/// a micro-batch is B examples padded to the longest of them, `eval_steps` batches are the first
/// `eval_steps · B` validation examples, and no samples are drawn.
#[derive(Debug)]
pub enum TaskData {
    /// Next-token prediction on token shards (`--task lm`).
    Lm(TrainData),
    /// Sequence classification (`--task classify`); the model must have a score head.
    Classify {
        /// Training examples.
        train: classify::Dataset,
        /// Validation examples (loss and accuracy).
        val: Option<classify::Dataset>,
    },
    /// Prompt → completion fine-tuning (`--task sft`).
    Sft {
        /// Training pairs.
        train: sft::Dataset,
        /// Validation pairs (completion loss).
        val: Option<sft::Dataset>,
    },
}

impl TaskData {
    /// The `--task` name.
    pub fn name(&self) -> &'static str {
        match self {
            TaskData::Lm(_) => "lm",
            TaskData::Classify { .. } => "classify",
            TaskData::Sft { .. } => "sft",
        }
    }
}

/// What the loop needs from a task: micro-batches with their loss and gradient, evaluation, and a
/// loader position to checkpoint.
pub(crate) trait Objective {
    /// Identifies the training data in [`RunFlags::train_tokens`] (tokens it holds).
    fn data_size(&self) -> u64;
    /// Whether there is validation data.
    fn has_val(&self) -> bool;
    /// Checks the data against the model and allocates, before anything is written.
    fn prepare(&mut self, params: &Params, eval: bool) -> Result<(), TrainError>;
    /// The loader's position.
    fn loader_state(&self) -> LoaderState;
    /// Moves the loader to a saved position.
    fn restore(&mut self, state: &LoaderState) -> Result<(), TrainError>;
    /// Forward and backward of the next micro-batch. Adds into `grads` the gradient of the
    /// micro-batch's *summed* loss over its counted targets (Σ ℓ, i.e. `counted` × the mean), so
    /// the loop can divide a step's sum by the step's total count
    /// ([`train::average_and_clip`]): token-weighted accumulation. A non-finite loss skips the
    /// backward.
    fn micro_step(
        &mut self,
        params: &Params,
        grads: &mut Params,
        dropout: Option<&mut Rng>,
    ) -> MicroStep;
    /// Validation loss (and accuracy, for classification) over `steps` batches.
    fn evaluate(&mut self, params: &Params, steps: usize) -> Option<(f32, Option<f32>)>;
    /// Whether the run draws text samples.
    fn samples(&self) -> bool {
        false
    }
}

/// What one micro-batch of an [`Objective`] gave.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MicroStep {
    /// Mean loss over the counted targets.
    pub loss: f32,
    /// Targets the loss counts: every token for language modelling, completion tokens for SFT,
    /// examples for classification.
    pub counted: usize,
    /// Real (unpadded) input tokens, for throughput.
    pub tokens: usize,
}

/// The language-model objective: (B, T) windows of a token shard.
struct LmObjective {
    train: Option<Shard>,
    val: Option<Shard>,
    train_len: u64,
    b: usize,
    t: usize,
    order: Order,
    loader: Option<DataLoader>,
    acts: Option<Activations>,
    bufs: Buffers,
}

impl LmObjective {
    fn new(data: TrainData, b: usize, t: usize, order: Order) -> Self {
        Self {
            train_len: data.train.len() as u64,
            train: Some(data.train),
            val: data.val,
            b,
            t,
            order,
            loader: None,
            acts: None,
            bufs: Buffers {
                x: vec![0; b * t],
                y: vec![0; b * t],
                span: vec![0; b * t + 1],
            },
        }
    }
}

impl Objective for LmObjective {
    fn data_size(&self) -> u64 {
        self.train_len
    }
    fn has_val(&self) -> bool {
        self.val.is_some()
    }
    fn prepare(&mut self, params: &Params, eval: bool) -> Result<(), TrainError> {
        if let (true, Some(val)) = (eval, &self.val) {
            val.check_batch(self.b, self.t)?;
        }
        if let Some(train) = self.train.take() {
            self.loader = Some(DataLoader::new(train, self.b, self.t, self.order)?);
        }
        self.acts = Some(Activations::new(&params.cfg, self.b, self.t));
        Ok(())
    }
    fn loader_state(&self) -> LoaderState {
        self.loader.as_ref().expect("prepared").state()
    }
    fn restore(&mut self, state: &LoaderState) -> Result<(), TrainError> {
        Ok(self.loader.as_mut().expect("prepared").restore(state)?)
    }
    fn micro_step(
        &mut self,
        params: &Params,
        grads: &mut Params,
        dropout: Option<&mut Rng>,
    ) -> MicroStep {
        let (loader, acts, bufs) = (
            self.loader.as_mut().expect("prepared"),
            self.acts.as_mut().expect("prepared"),
            &mut self.bufs,
        );
        loader.next_batch(&mut bufs.x, &mut bufs.y);
        let loss = train::forward(params, acts, &bufs.x, &bufs.y, dropout);
        let n = self.b * self.t;
        if loss.is_finite() {
            // backward's dloss per target is loss_scale / (B·T): 1, the summed loss's
            train::backward(params, grads, acts, &bufs.x, &bufs.y, n as f32);
        }
        MicroStep {
            loss,
            counted: n,
            tokens: n,
        }
    }
    fn evaluate(&mut self, params: &Params, steps: usize) -> Option<(f32, Option<f32>)> {
        let val = self.val.as_ref()?;
        let acts = self.acts.as_mut().expect("prepared");
        Some((evaluate(params, acts, val, steps, &mut self.bufs), None))
    }
    fn samples(&self) -> bool {
        true
    }
}

/// [`train()`] for any [`TaskData`]: the same loop, flags, files, checkpoints and exact resume.
/// A resumed run must be given the same task (`--task` is one of the [`RunFlags`]).
///
/// Errors: as [`train()`]; for tasks, [`TrainError::Invalid`] when the data does not fit the model
/// (a classification model without a head, a label index ≥ num_labels, an example longer than the
/// context).
pub fn train_task(
    cfg: &TrainConfig,
    start: Start,
    data: TaskData,
    callback: &mut dyn FnMut(&Event),
) -> Result<Outcome, TrainError> {
    cfg.validate()?;
    let (b, t, accum) = (cfg.batch_size, cfg.seq_len, cfg.grad_accum);
    let task = data.name();
    let seed = cfg.shuffle.then(|| derive_seed(cfg.seed, 1));
    let mut obj: Box<dyn Objective> = match data {
        TaskData::Lm(d) => Box::new(LmObjective::new(d, b, t, cfg.order())),
        TaskData::Classify { train, val } => {
            Box::new(classify::ClassifyObjective::new(train, val, b, seed))
        }
        TaskData::Sft { train, val } => Box::new(sft::SftObjective::new(train, val, b, seed)),
    };
    let mut flags = cfg.flags(obj.data_size());
    flags.task = task.into();
    let (mut params, resumed) = match start {
        Start::Fresh(p) => (p, None),
        Start::Resume(ck) => {
            let Checkpoint {
                dir,
                params,
                opt,
                state,
            } = *ck;
            compare_flags(&state.flags, &flags, state.step).map_err(|msg| TrainError::Resume {
                dir: dir.display().to_string(),
                msg,
            })?;
            (params, Some((opt, state)))
        }
    };
    if cfg.dropout > 0.0 {
        params.cfg.embd_pdrop = cfg.dropout;
        params.cfg.attn_pdrop = cfg.dropout;
        params.cfg.resid_pdrop = cfg.dropout;
    }
    let mcfg = params.cfg.clone();
    if t > mcfg.n_positions {
        return Err(TrainError::Invalid(format!(
            "--seq-len {t} is longer than the model's context (n_positions {})",
            mcfg.n_positions
        )));
    }
    let eval_on = cfg.eval_every > 0 && obj.has_val();
    obj.prepare(&params, eval_on)?;
    let mut dropout_rng = Rng::seed(derive_seed(cfg.seed, 2));
    let (mut opt, start_step) = match resumed {
        Some((opt, state)) => {
            obj.restore(&state.data)?;
            dropout_rng = Rng {
                s: state.dropout_rng,
            };
            (opt, state.step)
        }
        None => (AdamW::new(params.data.len()), 0),
    };
    if let Some(out) = &cfg.out {
        check_out_parent(out)?;
    }

    // Inputs are good: from here on files may be written.
    let mut metrics = match &cfg.out {
        Some(out) => {
            ensure_out(out)?;
            Some(Metrics::open(out, start_step)?)
        }
        None => None,
    };
    let state_now = |step: usize, opt: &AdamW, obj: &dyn Objective, rng: &Rng| TrainerState {
        format: STATE_FORMAT.into(),
        step,
        adamw_t: opt.t,
        data: obj.loader_state(),
        dropout_rng: rng.s,
        flags: flags.clone(),
        checksums: true,
    };
    let mut grads = Params::zeros(&mcfg);
    let sample_every = if obj.samples() { cfg.sample_every } else { 0 };
    let tokens_per_step = b * t * accum;
    callback(&Event::Started {
        start_step,
        steps: cfg.steps,
        num_params: params.data.len(),
        tokens_per_step,
    });
    let mut last_loss = f32::NAN;
    for step in start_step..cfg.steps {
        if cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            let checkpoint = match &cfg.out {
                Some(out) => {
                    let state = state_now(step, &opt, &*obj, &dropout_rng);
                    let dir =
                        save_checkpoint(out, step, cfg.keep_checkpoints, &params, &opt, &state)?;
                    callback(&Event::Saved {
                        step,
                        dir: dir.clone(),
                        is_final: false,
                    });
                    Some(dir)
                }
                None => None,
            };
            return Ok(Outcome::Interrupted { step, checkpoint });
        }
        if eval_on && step % cfg.eval_every == 0 {
            if let Some((val_loss, val_accuracy)) = obj.evaluate(&params, cfg.eval_steps) {
                if let Some(m) = &mut metrics {
                    m.row(&eval_row(step, val_loss, val_accuracy))?;
                }
                callback(&Event::Eval {
                    step,
                    val_loss,
                    val_accuracy,
                });
            }
        }
        if sample_every > 0 && step > 0 && step % sample_every == 0 {
            let text = sample(&params, cfg, step)?;
            callback(&Event::Sample { step, text });
        }

        let t0 = Instant::now();
        grads.data.fill(0.0);
        let mut loss_sum = 0.0f64;
        let (mut counted, mut tokens) = (0usize, 0usize);
        let non_finite = |what, value| TrainError::NonFinite {
            step,
            what,
            value,
            last_checkpoint: cfg
                .out
                .as_deref()
                .and_then(|o| list_checkpoints(o).pop().map(|(_, d)| d)),
        };
        for _ in 0..accum {
            let rng = (cfg.dropout > 0.0).then_some(&mut dropout_rng);
            let m = obj.micro_step(&params, &mut grads, rng);
            if !m.loss.is_finite() {
                return Err(non_finite("loss", m.loss));
            }
            loss_sum += m.loss as f64 * m.counted as f64;
            counted += m.counted;
            tokens += m.tokens;
        }
        // The step's loss and gradient are those of the mean over every counted target of the
        // step, however the targets fell into micro-batches.
        let loss = (loss_sum / counted.max(1) as f64) as f32;
        let grad_norm = train::average_and_clip(&mut grads, counted, cfg.grad_clip);
        if !grad_norm.is_finite() {
            return Err(non_finite("gradient norm", grad_norm));
        }
        let lr = train::lr_at(&cfg.schedule, cfg.lr, step, cfg.steps);
        opt.step(&mut params, &grads, lr, &cfg.adamw);
        let seconds = t0.elapsed().as_secs_f64();
        let m = StepMetrics {
            step,
            loss,
            lr,
            grad_norm,
            tokens_per_s: tokens as f64 / seconds.max(1e-9),
            seconds,
        };
        last_loss = loss;
        if let Some(f) = &mut metrics {
            f.row(&format!(
                "{{\"step\":{step},\"loss\":{},\"lr\":{},\"grad_norm\":{},\"tokens_per_s\":{}}}",
                json_num(loss as f64),
                json_num(lr as f64),
                json_num(grad_norm as f64),
                json_num(m.tokens_per_s)
            ))?;
        }
        callback(&Event::Step(m));

        let done = step + 1;
        if let Some(out) = &cfg.out {
            if cfg.save_every > 0 && done % cfg.save_every == 0 && done < cfg.steps {
                let state = state_now(done, &opt, &*obj, &dropout_rng);
                let dir = save_checkpoint(out, done, cfg.keep_checkpoints, &params, &opt, &state)?;
                callback(&Event::Saved {
                    step: done,
                    dir,
                    is_final: false,
                });
            }
        }
    }
    let last_eval = if eval_on {
        obj.evaluate(&params, cfg.eval_steps)
    } else {
        None
    };
    if let Some((val_loss, val_accuracy)) = last_eval {
        if let Some(m) = &mut metrics {
            m.row(&eval_row(cfg.steps, val_loss, val_accuracy))?;
        }
        callback(&Event::Eval {
            step: cfg.steps,
            val_loss,
            val_accuracy,
        });
    }
    if sample_every > 0 {
        let text = sample(&params, cfg, cfg.steps)?;
        callback(&Event::Sample {
            step: cfg.steps,
            text,
        });
    }
    if let Some(out) = &cfg.out {
        let state = state_now(cfg.steps, &opt, &*obj, &dropout_rng);
        write_all(out, &params, &opt, &state)?;
        callback(&Event::Saved {
            step: cfg.steps,
            dir: out.clone(),
            is_final: true,
        });
    }
    Ok(Outcome::Finished { params, last_loss })
}
