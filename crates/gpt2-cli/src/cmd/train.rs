//! `gpt2 train`: pre-train (`--preset`) or fine-tune (`--init-from`) a model on a token shard, or
//! fine-tune it for a task (`--task classify` on labelled texts, `--task sft` on prompt/completion
//! pairs; see [`crate::cmd::task_data`]).
//!
//! This module maps flags to [`gpt2::trainer::TrainConfig`], draws the progress bar, prints evals
//! and samples, draws `loss.svg` from `metrics.jsonl`, and turns Ctrl-C into a checkpoint; the loop
//! itself, its files and exact resume live in [`gpt2::trainer`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cmd::task_data::{TruncateArg, UnknownLabelArg, DEFAULT_LABEL_COLUMN};
use anyhow::{bail, Context};
use clap::ValueEnum;
use gpt2::data::{write_shard, Shard};
use gpt2::train::{AdamWConfig, LrSchedule};
use gpt2::trainer::{self, Event, Outcome, Start, TaskData, TrainConfig, TrainData};
use gpt2::{Gpt2Config, Params, Rng};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--lr-schedule` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Schedule {
    /// The same learning rate at every step.
    Constant,
    /// Linear warm-up over `--warmup` steps, then a half cosine down to `--min-lr` at the last step.
    Cosine,
}

/// `--task` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// Next-token prediction on token shards (pre-training, fine-tuning on text).
    Lm,
    /// Sequence classification: a score head on the last token, from a TSV/CSV/JSONL of texts and
    /// labels.
    Classify,
    /// Prompt → completion fine-tuning from JSONL `{"prompt", "completion"}` lines; the loss counts
    /// the completion (and its closing <|endoftext|>) only.
    Sft,
}

impl Task {
    /// The `--task` value.
    fn name(self) -> &'static str {
        match self {
            Task::Lm => "lm",
            Task::Classify => "classify",
            Task::Sft => "sft",
        }
    }
}

/// Arguments of `gpt2 train`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  gpt2 prepare --input ../shared/data/tinyshakespeare.txt --out data/shakespeare
  gpt2 train --data data/shakespeare --init-from gpt2 --out runs/ft --steps 200 --lr 1e-4
  gpt2 train --data data/shakespeare --preset gpt2 --n-layer 4 --n-head 4 --n-embd 128 --n-ctx 256 \\
             --out runs/small --seq-len 256 --batch-size 8 --steps 2000 --save-every 500
  gpt2 train ...same flags... --resume runs/small/checkpoint-1000
  gpt2 train --task classify --data sst2/train.tsv --val-data sst2/dev.tsv --init-from models/gpt2-shakespeare \\
             --out runs/sst2 --batch-size 32 --steps 2000 --lr 5e-4 --warmup 100 --dropout 0.1 \\
             --eval-every 500 --eval-steps 1000
  gpt2 train --task sft --data qa/train.jsonl --init-from models/gpt2-shakespeare --out runs/qa \\
             --batch-size 8 --steps 230 --lr 3e-4 --warmup 20

Files in --out: config.json + model.safetensors (final model), optimizer.safetensors +
trainer_state.json (to resume), metrics.jsonl, loss.svg, checkpoint-N/ (every --save-every steps).")]
pub struct Args {
    /// Training data: a folder holding train.bin (and optionally val.bin), or a shard file; for
    /// --task classify a TSV, CSV or JSONL file of texts and labels, for --task sft a JSONL file.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation shard (default: val.bin beside the training shard, if present); for tasks a
    /// file like --data (no default).
    #[arg(long)]
    pub val_data: Option<PathBuf>,
    /// What to train: the language model, a classifier or prompt → completion.
    #[arg(long, value_enum, default_value_t = Task::Lm)]
    pub task: Task,
    #[command(flatten)]
    pub columns: crate::cmd::task_data::ColumnArgs,
    /// --task classify: names for the class ids 0..K-1 of the training file, comma-separated in
    /// id order (`--label-names negative,positive` for SST-2); they go into id2label and every
    /// output, and data files may then give either the id or the name.
    #[arg(long, value_delimiter = ',')]
    pub label_names: Option<Vec<String>>,
    /// Start from this model: a folder or a Hugging Face id (fine-tuning).
    #[arg(long, group = "init", required_unless_present_any = ["preset", "resume"])]
    pub init_from: Option<String>,
    /// Start from random weights of this preset shape (gpt2, gpt2-medium, gpt2-large, gpt2-xl),
    /// initialized as GPT-2 with --seed.
    #[arg(long, group = "init")]
    pub preset: Option<String>,
    /// Override the preset's number of layers.
    #[arg(long, requires = "preset")]
    pub n_layer: Option<usize>,
    /// Override the preset's number of attention heads.
    #[arg(long, requires = "preset")]
    pub n_head: Option<usize>,
    /// Override the preset's embedding width.
    #[arg(long, requires = "preset")]
    pub n_embd: Option<usize>,
    /// Override the preset's context length (n_positions).
    #[arg(long, requires = "preset")]
    pub n_ctx: Option<usize>,
    /// Output folder (created if missing; its parent must exist).
    #[arg(long)]
    pub out: PathBuf,
    /// Rows per micro-batch (B).
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Tokens per row (T), at most the model's n_positions (--task lm; tasks pad each batch to
    /// its longest text, at most --max-len).
    #[arg(long, default_value_t = 64)]
    pub seq_len: usize,
    /// Micro-batches per optimizer step; the gradient is their mean.
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Optimizer steps.
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 6e-4)]
    pub lr: f32,
    /// Learning-rate schedule.
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    pub lr_schedule: Schedule,
    /// Linear warm-up steps (cosine schedule).
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Learning rate at the last step (cosine schedule); default --lr / 10.
    #[arg(long)]
    pub min_lr: Option<f32>,
    /// AdamW decoupled weight decay (matrices and embeddings only).
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f32,
    /// AdamW β₁.
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f32,
    /// AdamW β₂.
    #[arg(long, default_value_t = 0.95)]
    pub beta2: f32,
    /// AdamW ε.
    #[arg(long, default_value_t = 1e-8)]
    pub eps: f32,
    /// Clip the global gradient norm to this value; 0 turns clipping off.
    #[arg(long, default_value_t = 1.0)]
    pub grad_clip: f32,
    /// Evaluate on the validation shard every N steps (and after the last); 0 turns it off.
    #[arg(long, default_value_t = 100)]
    pub eval_every: usize,
    /// Batches per evaluation, consecutive from the validation shard's start.
    #[arg(long, default_value_t = 20)]
    pub eval_steps: usize,
    /// Print a 32-token sample every N steps (and after the last); 0 turns it off.
    #[arg(long, default_value_t = 200)]
    pub sample_every: usize,
    /// Save OUT/checkpoint-N every N steps; 0 turns it off (the final model is always saved).
    #[arg(long, default_value_t = 500)]
    pub save_every: usize,
    /// Keep only the newest K checkpoint folders; 0 keeps all.
    #[arg(long, default_value_t = 3)]
    pub keep_checkpoints: usize,
    /// Seed of the initialization (--preset), data order, dropout and samples.
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// Read the shard in order (micro-batch k = tokens k·B·T …) instead of shuffled windows.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Continue from a checkpoint folder written by this command (pass the same other flags; a
    /// different --steps, above the checkpoint's step, trains longer or shorter, with the schedule
    /// recomputed for the new total).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Dropout probability on embeddings, attention weights and residual branches.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
}

/// The training and validation shard paths named by `--data` / `--val-data`.
fn shard_paths(args: &Args) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let train = if args.data.is_dir() {
        args.data.join("train.bin")
    } else {
        args.data.clone()
    };
    if !train.is_file() {
        bail!(
            "--data {}: {} not found (make shards with `gpt2 prepare`)",
            args.data.display(),
            train.display()
        );
    }
    let val = match &args.val_data {
        Some(v) => Some(v.clone()),
        None => train
            .parent()
            .map(|p| p.join("val.bin"))
            .filter(|v| v.is_file() && *v != train),
    };
    Ok((train, val))
}

/// The model config of `--preset` with its overrides.
fn preset_config(args: &Args, name: &str) -> anyhow::Result<Gpt2Config> {
    let mut cfg = Gpt2Config::preset(name).with_context(|| format!("--preset {name}"))?;
    cfg.n_layer = args.n_layer.unwrap_or(cfg.n_layer);
    cfg.n_head = args.n_head.unwrap_or(cfg.n_head);
    cfg.n_embd = args.n_embd.unwrap_or(cfg.n_embd);
    cfg.n_positions = args.n_ctx.unwrap_or(cfg.n_positions);
    cfg.validate()
        .context("--preset with --n-layer/--n-head/--n-embd/--n-ctx")?;
    Ok(cfg)
}

fn train_config(args: &Args, stop: Option<Arc<AtomicBool>>) -> anyhow::Result<TrainConfig> {
    let tok = gpt2::tokenizer::Tokenizer::gpt2()?;
    let sample_every = if args.task == Task::Lm {
        args.sample_every
    } else {
        0
    };
    Ok(TrainConfig {
        batch_size: args.batch_size,
        seq_len: args.seq_len,
        grad_accum: args.grad_accum,
        steps: args.steps,
        lr: args.lr,
        schedule: match args.lr_schedule {
            Schedule::Constant => LrSchedule::Constant,
            Schedule::Cosine => LrSchedule::Cosine {
                warmup: args.warmup,
                min_lr: args.min_lr.unwrap_or(args.lr / 10.0),
            },
        },
        adamw: AdamWConfig {
            beta1: args.beta1,
            beta2: args.beta2,
            eps: args.eps,
            weight_decay: args.weight_decay,
        },
        grad_clip: args.grad_clip,
        eval_every: args.eval_every,
        eval_steps: args.eval_steps,
        sample_every,
        sample_prompt: tok.encode("\n", gpt2::tokenizer::Special::None),
        sample_tokens: 32,
        save_every: args.save_every,
        keep_checkpoints: args.keep_checkpoints,
        seed: args.seed,
        shuffle: !args.no_shuffle,
        dropout: args.dropout,
        out: Some(args.out.clone()),
        stop,
    })
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Checks that need no loading first, so a bad flag costs nothing and writes nothing.
    trainer::check_out_parent(&args.out)?;
    if args.label_names.is_some() && args.task != Task::Classify {
        bail!("--label-names is for --task classify");
    }
    {
        // Flags of the task data that this task would silently ignore.
        let c = &args.columns;
        let given = [
            ("--text-column", c.text_column.is_some(), false),
            (
                "--label-column",
                c.label_column != DEFAULT_LABEL_COLUMN,
                false,
            ),
            (
                "--unknown-label",
                c.unknown_label != UnknownLabelArg::Error,
                false,
            ),
            ("--truncate", c.length.truncate != TruncateArg::Right, false),
            ("--max-len", c.length.max_len.is_some(), true),
        ];
        for (flag, set, sft_too) in given {
            let used = args.task == Task::Classify || (sft_too && args.task == Task::Sft);
            if set && !used {
                let of = if sft_too {
                    "classify or sft"
                } else {
                    "classify"
                };
                bail!(
                    "{flag} is for --task {of}; it does nothing with --task {}",
                    args.task.name()
                );
            }
        }
    }
    let paths = if args.task == Task::Lm {
        Some(shard_paths(&args)?)
    } else {
        None
    };
    // Said once the trainer has accepted the resumed run's other flags.
    let mut resume_note = None;
    let start = match &args.resume {
        Some(dir) => {
            let ck = trainer::load_checkpoint(dir)?;
            let (was, at) = (ck.state.flags.steps, ck.state.step);
            if args.steps != was && args.steps > at {
                let how = if args.steps > was {
                    "longer"
                } else {
                    "shorter"
                };
                resume_note = Some(format!(
                    "note: training {how}: --steps {} (the run had {was}); the learning-rate \
                     schedule is recomputed for {} steps from step {at}",
                    args.steps, args.steps
                ));
            }
            if let Some(name) = &args.preset {
                let want = preset_config(&args, name)?;
                let got = &ck.params.cfg;
                let differ: Vec<String> = [
                    ("--n-layer", want.n_layer, got.n_layer),
                    ("--n-head", want.n_head, got.n_head),
                    ("--n-embd", want.n_embd, got.n_embd),
                    ("--n-ctx", want.n_positions, got.n_positions),
                ]
                .iter()
                .filter(|(_, w, g)| w != g)
                .map(|(flag, w, g)| format!("{flag} {w} (the checkpoint has {g})"))
                .collect();
                if !differ.is_empty() {
                    bail!(
                        "--resume {}: the checkpoint's model is not the one --preset {name} and its overrides describe: {}",
                        dir.display(),
                        differ.join(", ")
                    );
                }
            }
            Start::Resume(Box::new(ck))
        }
        None => match (&args.preset, &args.init_from) {
            (Some(name), _) => {
                let cfg = preset_config(&args, name)?;
                Start::Fresh(Params::init_gpt2(&cfg, &mut Rng::seed(args.seed)))
            }
            (None, Some(model)) => Start::Fresh(crate::common::load_init_params(model)?),
            (None, None) => bail!("one of --preset or --init-from is required"),
        },
    };
    let (start, data, seq_len) = match paths {
        Some((train_path, val_path)) => {
            let vocab = match &start {
                Start::Fresh(p) => p.cfg.vocab_size,
                Start::Resume(ck) => ck.params.cfg.vocab_size,
            };
            let train = Shard::open(&train_path, vocab).context("--data")?;
            let val = match &val_path {
                Some(v) => Some(Shard::open(v, vocab).context("--val-data")?),
                None => None,
            };
            (start, TaskData::Lm(TrainData { train, val }), args.seq_len)
        }
        None => crate::cmd::task_data::load(&args, start)?,
    };

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // A second Ctrl-C exits at once.
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    let mut cfg = train_config(&args, Some(Arc::clone(&stop)))?;
    cfg.seq_len = seq_len;
    let per_step = match args.task {
        Task::Lm => "tokens",
        _ => "tokens at most",
    };

    let bar = ProgressBar::with_draw_target(Some(args.steps as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("[{bar:30}] step {pos}/{len} {msg} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    // Without a terminal the bar is hidden: log each step as a line instead (llm.c style).
    let plain = bar.is_hidden();
    let log = |bar: &ProgressBar, line: String| bar.suspend(|| eprintln!("{line}"));
    let out = args.out.clone();
    let mut last_val = None;
    let mut callback = |ev: &Event| match ev {
        Event::Started {
            start_step,
            steps,
            num_params,
            tokens_per_step,
        } => {
            if let Some(note) = resume_note.take() {
                log(&bar, note);
            }
            bar.set_position(*start_step as u64);
            bar.reset_eta();
            log(
                &bar,
                format!(
                    "training {num_params} parameters, {tokens_per_step} {per_step} per step, steps {start_step}..{steps}"
                ),
            );
        }
        Event::Step(m) => {
            let msg = format!(
                "loss {:.4} lr {:.2e} norm {:.3} {:.0} tok/s",
                m.loss, m.lr, m.grad_norm, m.tokens_per_s
            );
            if plain {
                log(&bar, format!("step {}/{} {msg}", m.step + 1, args.steps));
            }
            bar.set_message(msg);
            bar.set_position(m.step as u64 + 1);
        }
        Event::Eval {
            step,
            val_loss,
            val_accuracy,
        } => {
            let acc = val_accuracy.map_or(String::new(), |a| format!(", val accuracy {a:.4}"));
            last_val = Some(format!("val loss {val_loss:.4}{acc}"));
            log(&bar, format!("step {step}: val loss {val_loss:.4}{acc}"));
        }
        Event::Sample { step, text } => {
            log(&bar, format!("--- sample at step {step} ---\n{text}\n---"));
        }
        Event::Saved {
            step,
            dir,
            is_final,
        } => {
            if let Err(e) = write_loss_svg(&out) {
                log(&bar, format!("warning: cannot draw loss.svg: {e:#}"));
            }
            if !is_final {
                log(&bar, format!("saved {} (step {step})", dir.display()));
            }
        }
    };
    let result = trainer::train_task(&cfg, start, data, &mut callback);
    bar.finish_and_clear();
    match result? {
        Outcome::Finished { last_loss, .. } => {
            let val = last_val.map_or(String::new(), |v| format!(", {v}"));
            println!(
                "trained {} steps: loss {last_loss:.4}{val}; model saved in {}",
                args.steps,
                args.out.display()
            );
            Ok(())
        }
        Outcome::Interrupted { step, checkpoint } => {
            let dir = checkpoint.map_or(String::new(), |d| d.display().to_string());
            eprintln!(
                "interrupted after {step} steps; saved {dir}; continue with the same flags and --resume {dir}"
            );
            std::process::exit(130);
        }
    }
}

/// Draws `out/loss.svg` from `out/metrics.jsonl`: training loss per step and validation loss at
/// evaluations. Written to a temporary file and renamed.
pub fn write_loss_svg(out: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(out.join(trainer::METRICS_FILE))?;
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(step) = v["step"].as_f64() else {
            continue;
        };
        if let Some(l) = v["loss"].as_f64().filter(|l| l.is_finite()) {
            train.push((step, l));
        }
        if let Some(l) = v["val_loss"].as_f64().filter(|l| l.is_finite()) {
            val.push((step, l));
        }
    }
    let svg = loss_svg(&train, &val);
    let path = out.join("loss.svg");
    let tmp = out.join(format!(".loss.svg.tmp.{}", std::process::id()));
    std::fs::write(&tmp, svg).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, &path).with_context(|| path.display().to_string())?;
    Ok(())
}

/// An SVG line plot of (step, loss) series: train in blue, validation in orange with dots.
fn loss_svg(train: &[(f64, f64)], val: &[(f64, f64)]) -> String {
    let (w, h, ml, mr, mt, mb) = (800.0, 450.0, 60.0, 20.0, 30.0, 40.0);
    let all = train.iter().chain(val);
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let (mut y_min, mut y_max) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    if y_max - y_min < 1e-9 {
        y_max = y_min + 1.0;
    }
    let px = |x: f64| ml + x / x_max * (w - ml - mr);
    let py = |y: f64| mt + (y_max - y) / (y_max - y_min) * (h - mt - mb);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">loss (nats) vs step</text>\n",
        w / 2.0
    );
    for i in 0..=4 {
        let y = y_min + (y_max - y_min) * i as f64 / 4.0;
        let x = x_max * i as f64 / 4.0;
        s += &format!(
            "<line x1=\"{ml}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{y:.3}</text>\n",
            w - mr,
            py(y),
            ml - 6.0,
            py(y) + 4.0
        );
        s += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{x:.0}</text>\n",
            px(x),
            h - mb + 16.0
        );
    }
    s += &format!(
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n",
        w - ml - mr,
        h - mt - mb
    );
    let line = |pts: &[(f64, f64)], color: &str| {
        let p: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            p.join(" ")
        )
    };
    s += &line(train, "#1f77b4");
    s += &line(val, "#ff7f0e");
    for &(x, y) in val {
        s += &format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#ff7f0e\"/>\n",
            px(x),
            py(y)
        );
    }
    s += &format!(
        "<text x=\"{0}\" y=\"{1}\" fill=\"#1f77b4\">train</text><text x=\"{0}\" y=\"{2}\" fill=\"#ff7f0e\">val</text>\n</svg>\n",
        w - mr - 40.0,
        mt + 16.0,
        mt + 32.0
    );
    s
}

/// Trains a randomly initialized `preset` model (e.g. `gpt2`) on random tokens for `steps` steps
/// of B = `b`, T = `t` (no evaluation, samples or files) and returns the median wall time of one
/// step in milliseconds and the process's peak resident memory in MiB (`VmHWM`).
///
/// Errors: an unknown preset, `steps == 0`, T over the preset's context.
pub fn bench_train(preset: &str, b: usize, t: usize, steps: usize) -> anyhow::Result<(f64, f64)> {
    if steps == 0 {
        bail!("bench --train needs at least one step");
    }
    let cfg = Gpt2Config::preset(preset)?;
    let mut rng = Rng::seed(1337);
    let params = Params::init_gpt2(&cfg, &mut rng);
    // A random shard in a private temporary folder, removed again once mapped.
    let dir = std::env::temp_dir().join(format!("gpt2-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let path = dir.join("train.bin");
    let tokens: Vec<u32> = (0..b * t * 2 + 1)
        .map(|_| rng.below(cfg.vocab_size as u64) as u32)
        .collect();
    let opened = write_shard(&path, &tokens)
        .map_err(anyhow::Error::from)
        .and_then(|()| Shard::open(&path, cfg.vocab_size).map_err(anyhow::Error::from));
    let _ = std::fs::remove_dir_all(&dir);
    let shard = opened?;
    let tc = TrainConfig {
        batch_size: b,
        seq_len: t,
        grad_accum: 1,
        steps,
        lr: 6e-4,
        schedule: LrSchedule::Constant,
        adamw: AdamWConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
        },
        grad_clip: 1.0,
        eval_every: 0,
        eval_steps: 0,
        sample_every: 0,
        sample_prompt: Vec::new(),
        sample_tokens: 0,
        save_every: 0,
        keep_checkpoints: 0,
        seed: 1337,
        shuffle: false,
        dropout: 0.0,
        out: None,
        stop: None,
    };
    let mut times = Vec::with_capacity(steps);
    trainer::train(
        &tc,
        Start::Fresh(params),
        TrainData {
            train: shard,
            val: None,
        },
        &mut |ev| {
            if let Event::Step(m) = ev {
                times.push(m.seconds * 1e3);
            }
        },
    )?;
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    Ok((median, crate::common::peak_rss_mib()))
}
