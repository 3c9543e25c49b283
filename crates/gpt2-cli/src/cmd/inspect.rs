//! `gpt2 inspect`: what a GPT-2 is made of, computed from the code's own tables — the config, the
//! parameters of every tensor ([`gpt2::params::param_specs`]), the bytes of the weights per dtype,
//! the FLOPs per token (Kaplan et al. 2020, Table 1), the memory of a training run of (B, T) (the
//! buffers [`gpt2::train::Activations::new`] allocates, plus weights, gradients and AdamW's m and
//! v) — and one attention head's pattern on a real text, as a table and a PNG or SVG heat map.
//!
//! The numbers quoted in `docs/` come from this command; `crates/gpt2-cli/tests/docs.rs` re-runs
//! it and checks that the docs still quote its output verbatim.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use gpt2::params::{param_specs, ParamSpec};
use gpt2::tokenizer::{Special, Tokenizer};
use gpt2::train::Activations;
use gpt2::Gpt2Config;
use serde_json::{json, Value};

use crate::common::{default_model_dir, load_model};

/// Arguments of `gpt2 inspect`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  gpt2 inspect --preset gpt2                                  # 124M: config, parameters, FLOPs, memory
  gpt2 inspect --preset gpt2 --context 1024 --batch 8 --seq-len 1024 --json
  gpt2 inspect --model models/gpt2-shakespeare --attention \"To be, or not to be\" --layer 2 --head 3 --out att.png")]
pub struct Args {
    /// Model folder or hub id (only its config.json is read, unless --attention). Default: the
    /// shipped model.
    #[arg(long, conflicts_with = "preset")]
    model: Option<String>,
    /// A preset shape instead of a model: gpt2, gpt2-medium, gpt2-large, gpt2-xl (no weights).
    #[arg(long)]
    preset: Option<String>,
    /// Context length T of the FLOPs per token (default: n_positions).
    #[arg(long)]
    context: Option<usize>,
    /// Batch size B of the training run whose memory is computed.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Sequence length T of that training run (default: n_positions).
    #[arg(long)]
    seq_len: Option<usize>,
    /// List every tensor (h.0.ln_1.weight, h.1.ln_1.weight, ...) instead of one row per kind.
    #[arg(long)]
    all_tensors: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Instead of the report: the attention probabilities of one head on this text (needs weights).
    #[arg(long)]
    attention: Option<String>,
    /// Block of --attention, counted from 0.
    #[arg(long, default_value_t = 0, requires = "attention")]
    layer: usize,
    /// Head of --attention, counted from 0.
    #[arg(long, default_value_t = 0, requires = "attention")]
    head: usize,
    /// Write the --attention heat map to this file: PNG, or SVG (with token labels) if it ends in .svg.
    #[arg(long, requires = "attention")]
    out: Option<PathBuf>,
}

/// Runs `gpt2 inspect`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if let Some(text) = &args.attention {
        return attention(&args, text);
    }
    let (name, cfg) = config_of(&args)?;
    let context = args.context.unwrap_or(cfg.n_positions);
    let seq_len = args.seq_len.unwrap_or(cfg.n_positions);
    if context == 0 || seq_len == 0 || args.batch == 0 {
        bail!("--context, --seq-len and --batch must be at least 1");
    }
    if context > cfg.n_positions {
        bail!(
            "--context {context} is longer than the model's context (n_positions {})",
            cfg.n_positions
        );
    }
    if seq_len > cfg.n_positions {
        bail!(
            "--seq-len {seq_len} is longer than the model's context (n_positions {})",
            cfg.n_positions
        );
    }
    let report = Report::new(&cfg, context, args.batch, seq_len);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", report.json(&name, &cfg))?;
    } else {
        report.print(&mut out, &name, &cfg, args.all_tensors)?;
    }
    Ok(())
}

/// The config named by `--preset` or `--model` (default model without either), and its name.
fn config_of(args: &Args) -> anyhow::Result<(String, Gpt2Config)> {
    if let Some(p) = &args.preset {
        return Ok((p.clone(), Gpt2Config::preset(p)?));
    }
    match &args.model {
        Some(m) => {
            let dir = gpt2::hub::resolve(m, &gpt2::hub::HubOptions::default())
                .with_context(|| format!("--model {m}"))?;
            let cfg = Gpt2Config::from_json_file(&dir.join(gpt2::checkpoint::CONFIG_FILE))?;
            Ok((m.clone(), cfg))
        }
        // the default model, wherever it comes from (folder or embedded in the binary)
        None => {
            let name = match default_model_dir() {
                Some(dir) => format!("{} (default)", dir.display()),
                None => "gpt2-shakespeare (default, embedded)".to_string(),
            };
            Ok((name, load_model(None)?.config().clone()))
        }
    }
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// One row of the FLOPs table: what it is, its formula in Kaplan's terms, its value.
struct FlopRow {
    name: &'static str,
    formula: &'static str,
    flops: u64,
}

/// Everything the report prints, computed once.
struct Report {
    specs: Vec<ParamSpec>,
    total: u64,
    embedding: u64,
    context: usize,
    flops: Vec<FlopRow>,
    /// Kaplan's N = 2·C·L·(2·d_attn + d_ff) = 12·L·C².
    kaplan_n: u64,
    forward: u64,
    de_embed: u64,
    batch: usize,
    seq_len: usize,
    activations: u64,
    activations_by: &'static str,
}

/// Floats of [`Activations`] for (B, T), from the buffers its `new` allocates (see
/// `crates/gpt2/src/train/activations.rs`): per block `N·(16C + 4) + B·NH·T²` (ln_1 and ln_2
/// outputs and statistics, qkv, att, atty, resid2, fc, fc_gelu, resid3), plus, once,
/// `N·(2V + 18C + 5) + B·NH·T²` (encoder output, ln_f, logits, lse, losses and the gradient
/// scratch of one block). Used only where allocating the real buffers is not possible; the docs
/// test checks it against [`Activations::num_bytes`].
pub fn activation_floats(cfg: &Gpt2Config, b: usize, t: usize) -> u64 {
    let (c, v, nh, l) = (
        cfg.n_embd as u64,
        cfg.vocab_size as u64,
        cfg.n_head as u64,
        cfg.n_layer as u64,
    );
    let (b, t) = (b as u64, t as u64);
    let n = b * t;
    let att = b * nh * t * t;
    l * (n * (16 * c + 4) + att) + n * (2 * v + 18 * c + 5) + att
}

/// Total physical memory (Linux `MemTotal`), if known.
fn mem_total_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

impl Report {
    fn new(cfg: &Gpt2Config, context: usize, batch: usize, seq_len: usize) -> Self {
        let specs = param_specs(cfg);
        let total: u64 = specs.iter().map(|s| s.numel() as u64).sum();
        let embedding: u64 = specs
            .iter()
            .filter(|s| s.name == "wte.weight" || s.name == "wpe.weight")
            .map(|s| s.numel() as u64)
            .sum();
        let (l, c, v, t) = (
            cfg.n_layer as u64,
            cfg.n_embd as u64,
            cfg.vocab_size as u64,
            context as u64,
        );
        // Kaplan et al. 2020, Table 1, with d_model = d_attn = C, d_ff = 4C, n_ctx = T.
        let flops = vec![
            FlopRow {
                name: "embed",
                formula: "4·C",
                flops: 4 * c,
            },
            FlopRow {
                name: "attention: qkv",
                formula: "2·L·C·3C",
                flops: 2 * l * c * 3 * c,
            },
            FlopRow {
                name: "attention: mask",
                formula: "2·L·T·C",
                flops: 2 * l * t * c,
            },
            FlopRow {
                name: "attention: project",
                formula: "2·L·C·C",
                flops: 2 * l * c * c,
            },
            FlopRow {
                name: "feed-forward",
                formula: "2·L·2·C·4C",
                flops: 2 * l * 2 * c * 4 * c,
            },
            FlopRow {
                name: "de-embed",
                formula: "2·C·V",
                flops: 2 * c * v,
            },
        ];
        let kaplan_n = 2 * c * l * (2 * c + 4 * c);
        let forward = 2 * kaplan_n + 2 * l * t * c;
        // Activations exactly as the trainer allocates them, unless a single buffer could not be
        // allocated here (vec![0; n] is calloc: untouched pages cost nothing).
        let (b, tt) = (batch as u64, seq_len as u64);
        let n = b * tt;
        let largest = 4 * (n * v).max(b * cfg.n_head as u64 * tt * tt).max(n * 4 * c);
        let (activations, activations_by) = if largest <= mem_total_bytes().unwrap_or(16 << 30) / 2
        {
            let acts = Activations::new(cfg, batch, seq_len);
            (acts.num_bytes() as u64, "train::Activations::num_bytes")
        } else {
            (
                4 * activation_floats(cfg, batch, seq_len),
                "the formula of docs/memory-and-flops.md (too large to allocate here)",
            )
        };
        Self {
            specs,
            total,
            embedding,
            context,
            flops,
            kaplan_n,
            forward,
            de_embed: 2 * c * v,
            batch,
            seq_len,
            activations,
            activations_by,
        }
    }

    /// Rows of the parameter table: wte, wpe, one row per block tensor (× L), ln_f.
    fn grouped(&self, cfg: &Gpt2Config) -> Vec<(String, Vec<usize>, u64, u64)> {
        // (name, shape, numel of one, count)
        let mut rows = Vec::new();
        for s in &self.specs {
            if let Some(rest) = s.name.strip_prefix("h.") {
                let (i, suffix) = rest.split_once('.').expect("h.{i}.suffix");
                if i != "0" {
                    continue;
                }
                rows.push((
                    format!("h.{{0..{}}}.{suffix}", cfg.n_layer - 1),
                    s.shape.clone(),
                    s.numel() as u64,
                    cfg.n_layer as u64,
                ));
            } else {
                rows.push((s.name.clone(), s.shape.clone(), s.numel() as u64, 1));
            }
        }
        rows
    }

    fn print(
        &self,
        out: &mut impl Write,
        name: &str,
        cfg: &Gpt2Config,
        all: bool,
    ) -> std::io::Result<()> {
        let p = self.total;
        writeln!(out, "model {name}")?;
        writeln!(
            out,
            "  n_layer {}  n_head {}  n_embd {}  head size {}  n_positions {}  vocab_size {}  layer_norm_epsilon {:e}",
            cfg.n_layer,
            cfg.n_head,
            cfg.n_embd,
            cfg.head_size(),
            cfg.n_positions,
            cfg.vocab_size,
            cfg.layer_norm_epsilon
        )?;
        writeln!(
            out,
            "  loss of a uniform guess over the vocabulary: ln V = {:.4} nats",
            (cfg.vocab_size as f64).ln()
        )?;
        writeln!(out)?;
        writeln!(
            out,
            "parameters (Hugging Face keys; Conv1D weights stored (in, out); lm_head tied to wte)"
        )?;
        let shape = |s: &[usize]| {
            format!(
                "[{}]",
                s.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        // name, shape, per block, × blocks, total
        let row = |out: &mut dyn Write, n: &str, s: &str, one: &str, count: &str, total: &str| {
            writeln!(out, "  {n:<28} {s:<14} {one:>11} {count:>5} {total:>13}")
        };
        row(out, "tensor", "shape", "per block", "", "parameters")?;
        if all {
            for s in &self.specs {
                let n = thousands(s.numel() as u64);
                row(out, &s.name, &shape(&s.shape), "", "", &n)?;
            }
        } else {
            for (n, s, one, count) in self.grouped(cfg) {
                if count == 1 {
                    row(out, &n, &shape(&s), "", "", &thousands(one))?;
                } else {
                    let (o, c, t) = (thousands(one), format!("× {count}"), thousands(one * count));
                    row(out, &n, &shape(&s), &o, &c, &t)?;
                }
            }
        }
        row(out, "lm_head.weight", "= wte (tied)", "", "", "0")?;
        let block = gpt2::params::layer_numel(cfg.n_embd) as u64;
        let (o, c) = (thousands(block), format!("× {}", cfg.n_layer));
        let t = thousands(block * cfg.n_layer as u64);
        row(out, "blocks h.*", "12·C² + 13·C", &o, &c, &t)?;
        row(out, "total", "", "", "", &thousands(p))?;
        let non_embedding = thousands(p - self.embedding);
        row(out, "non-embedding", "− wte − wpe", "", "", &non_embedding)?;
        writeln!(out)?;
        writeln!(out, "weights in memory or on disk")?;
        for (dtype, bytes) in [("f32", 4), ("f16", 2), ("bf16", 2)] {
            writeln!(
                out,
                "  {dtype:<5} {:>15} bytes  ({})",
                thousands(p * bytes),
                mib(p * bytes)
            )?;
        }
        writeln!(out)?;
        writeln!(
            out,
            "FLOPs per token of the forward pass at context T = {} (Kaplan et al. 2020, Table 1; a multiply-add is 2 FLOPs)",
            self.context
        )?;
        for r in &self.flops {
            writeln!(
                out,
                "  {:<20} {:<17} {:>15}",
                r.name,
                r.formula,
                thousands(r.flops)
            )?;
        }
        writeln!(
            out,
            "  {:<20} {:<17} {:>15}",
            "N (non-embedding)",
            "12·L·C²",
            thousands(self.kaplan_n)
        )?;
        writeln!(
            out,
            "  {:<20} {:<17} {:>15}",
            "C_forward",
            "2N + 2·L·T·C",
            thousands(self.forward)
        )?;
        writeln!(
            out,
            "  {:<20} {:<17} {:>15}",
            "with de-embed",
            "C_forward + 2·C·V",
            thousands(self.forward + self.de_embed)
        )?;
        writeln!(
            out,
            "  {:<20} {:<17} {:>15}",
            "training (≈ 3×)",
            "3·C_forward",
            thousands(3 * self.forward)
        )?;
        writeln!(out)?;
        let w = 4 * p;
        let total = 4 * w + self.activations;
        writeln!(
            out,
            "memory of a training step, B {} × T {}, all f32",
            self.batch, self.seq_len
        )?;
        for (what, bytes) in [
            ("weights", w),
            ("gradients", w),
            ("AdamW m", w),
            ("AdamW v", w),
            ("activations", self.activations),
            ("total", total),
        ] {
            writeln!(
                out,
                "  {what:<12} {:>16} bytes  ({})",
                thousands(bytes),
                mib(bytes)
            )?;
        }
        writeln!(out, "  (activations: {})", self.activations_by)?;
        writeln!(out)?;
        let kv = self.kv_cache_bytes(cfg);
        writeln!(
            out,
            "KV cache of one sequence of T = {} tokens, 2·L·T·C f32: {} bytes ({})",
            self.context,
            thousands(kv),
            mib(kv)
        )?;
        Ok(())
    }

    /// Bytes of a [`gpt2::KvCache`] for `context` positions: keys and values, (L, NH, T, HS) each.
    fn kv_cache_bytes(&self, cfg: &Gpt2Config) -> u64 {
        4 * 2 * (cfg.n_layer * self.context * cfg.n_embd) as u64
    }

    fn json(&self, name: &str, cfg: &Gpt2Config) -> Value {
        let p = self.total;
        let w = 4 * p;
        let flops: serde_json::Map<String, Value> = self
            .flops
            .iter()
            .map(|r| (r.name.to_string(), json!(r.flops)))
            .collect();
        let mut config = serde_json::to_value(cfg).expect("a config serializes");
        // f32 → JSON goes through f64 (1e-5 would print as 9.999999747378752e-6)
        let eps: f64 = cfg.layer_norm_epsilon.to_string().parse().expect("a float");
        config["layer_norm_epsilon"] = json!(eps);
        json!({
            "model": name,
            "config": config,
            "head_size": cfg.head_size(),
            "params": {
                "tensors": self.specs.iter().map(|s| json!({"name": s.name, "shape": s.shape, "numel": s.numel()})).collect::<Vec<_>>(),
                "total": p,
                "embedding": self.embedding,
                "non_embedding": p - self.embedding,
            },
            "weight_bytes": {"f32": 4 * p, "f16": 2 * p, "bf16": 2 * p},
            "flops_per_token": {
                "context": self.context,
                "formula": "Kaplan et al. 2020 Table 1: C_forward = 2N + 2·n_layer·n_ctx·d_attn, N = 12·n_layer·d_model²",
                "rows": flops,
                "kaplan_n": self.kaplan_n,
                "forward": self.forward,
                "forward_with_de_embed": self.forward + self.de_embed,
                "train": 3 * self.forward,
            },
            "train_memory": {
                "batch": self.batch,
                "seq_len": self.seq_len,
                "weights": w,
                "grads": w,
                "adam_m": w,
                "adam_v": w,
                "activations": self.activations,
                "activations_by": self.activations_by,
                "total": 4 * w + self.activations,
            },
            "kv_cache_bytes": {"context": self.context, "bytes": self.kv_cache_bytes(cfg)},
        })
    }
}

/// `--attention`: runs the training forward (evaluation mode) on the text and prints, and
/// optionally draws, one head's probabilities.
fn attention(args: &Args, text: &str) -> anyhow::Result<()> {
    let model = load_model(args.model.as_deref())?;
    let cfg = model.config().clone();
    if args.layer >= cfg.n_layer {
        bail!(
            "--layer {} is out of range: the model has {} blocks (0..{})",
            args.layer,
            cfg.n_layer,
            cfg.n_layer - 1
        );
    }
    if args.head >= cfg.n_head {
        bail!(
            "--head {} is out of range: the model has {} heads per block (0..{})",
            args.head,
            cfg.n_head,
            cfg.n_head - 1
        );
    }
    let tok = Tokenizer::gpt2()?;
    let ids = tok.encode(text, Special::None);
    let t = ids.len();
    if t == 0 {
        bail!("--attention: the text has no tokens");
    }
    if t > cfg.n_positions {
        bail!(
            "--attention: {t} tokens are more than the model's context (n_positions {})",
            cfg.n_positions
        );
    }
    if ids.iter().any(|&i| i as usize >= cfg.vocab_size) {
        bail!(
            "--attention: the text has token ids ≥ the model's vocab_size {}",
            cfg.vocab_size
        );
    }
    let mut acts = Activations::new(&cfg, 1, t);
    // the targets only feed the loss, which is not used here
    gpt2::train::forward(&model.f32_params(), &mut acts, &ids, &ids, None);
    let att = acts.attention(args.layer).context("layer in range")?;
    let nh = cfg.n_head;
    // p[i][j]: query i, key j
    let p: Vec<Vec<f32>> = (0..t)
        .map(|i| att[(i * nh + args.head) * t..][..t].to_vec())
        .collect();
    let labels: Vec<String> = ids
        .iter()
        .map(|&id| tok.decode(&[id]).map(|s| format!("{s:?}")))
        .collect::<Result<_, _>>()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(
            out,
            "{}",
            json!({"layer": args.layer, "head": args.head, "tokens": ids, "labels": labels, "attention": p})
        )?;
    } else {
        writeln!(
            out,
            "layer {}, head {}: row i = query token i, column j = key token j ≤ i; each row sums to 1",
            args.layer, args.head
        )?;
        write!(out, "{:>3}  {:<12}", "i", "token")?;
        for j in 0..t {
            write!(out, " {j:>4}")?;
        }
        writeln!(out)?;
        for (i, row) in p.iter().enumerate() {
            let label: String = labels[i].chars().take(12).collect();
            write!(out, "{i:>3}  {label:<12}")?;
            for x in &row[..=i] {
                write!(out, " {x:>4.2}")?;
            }
            writeln!(out)?;
        }
    }
    if let Some(path) = &args.out {
        let is_svg = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
        if is_svg {
            write_file(path, heatmap_svg(&p, &labels).as_bytes())?;
        } else {
            write_file(path, &heatmap_png(&p)?)?;
        }
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("--out {}", path.display()))
}

/// White → dark blue (ColorBrewer "Blues") for a probability in [0, 1].
fn color(x: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [247.0, 251.0, 255.0],
        [198.0, 219.0, 239.0],
        [107.0, 174.0, 214.0],
        [33.0, 113.0, 181.0],
        [8.0, 48.0, 107.0],
    ];
    let s = x.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let k = (s.floor() as usize).min(STOPS.len() - 2);
    let f = s - k as f32;
    let mut c = [0u8; 3];
    for (ch, (a, b)) in c.iter_mut().zip(STOPS[k].iter().zip(&STOPS[k + 1])) {
        *ch = (a + (b - a) * f).round() as u8;
    }
    c
}

/// Masked cells (key after query): light grey.
const MASKED: [u8; 3] = [230, 230, 230];

/// The heat map as an RGB PNG: T × T cells of `cell` pixels with 1-pixel white gaps.
fn heatmap_png(p: &[Vec<f32>]) -> anyhow::Result<Vec<u8>> {
    let t = p.len();
    let cell = (640 / t).clamp(4, 32);
    let size = t * cell;
    let mut pix = vec![255u8; size * size * 3];
    for (i, row) in p.iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            let c = if j > i { MASKED } else { color(x) };
            for y in i * cell..(i + 1) * cell - 1 {
                for xx in j * cell..(j + 1) * cell - 1 {
                    pix[(y * size + xx) * 3..][..3].copy_from_slice(&c);
                }
            }
        }
    }
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, size as u32, size as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&pix)?;
    }
    Ok(buf)
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The heat map as SVG, with the tokens on both axes and each probability as a tooltip.
fn heatmap_svg(p: &[Vec<f32>], labels: &[String]) -> String {
    let t = p.len();
    let cell = 28.0;
    let margin = 110.0;
    let size = margin + cell * t as f64 + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" font-family=\"monospace\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, label) in labels.iter().enumerate() {
        let l = xml_escape(label);
        let y = margin + cell * i as f64 + cell / 2.0 + 4.0;
        s += &format!(
            "<text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\">{l}</text>\n",
            margin - 6.0
        );
        let x = margin + cell * i as f64 + cell / 2.0 + 4.0;
        s += &format!(
            "<text transform=\"translate({x:.1},{:.1}) rotate(-90)\">{l}</text>\n",
            margin - 6.0
        );
    }
    for (i, row) in p.iter().enumerate() {
        for (j, &x) in row.iter().enumerate() {
            let [r, g, b] = if j > i { MASKED } else { color(x) };
            s += &format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"rgb({r},{g},{b})\"><title>{} → {}: {x:.3}</title></rect>\n",
                margin + cell * j as f64,
                margin + cell * i as f64,
                cell - 1.0,
                cell - 1.0,
                xml_escape(&labels[i]),
                xml_escape(&labels[j]),
            );
        }
    }
    s += "</svg>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(124_439_808), "124,439,808");
    }

    #[test]
    fn activation_formula_matches_the_allocated_buffers() {
        let cfg = Gpt2Config {
            n_layer: 3,
            n_head: 3,
            n_embd: 12,
            n_positions: 9,
            vocab_size: 37,
            ..Gpt2Config::gpt2()
        };
        for (b, t) in [(1, 1), (2, 5), (3, 9)] {
            let acts = Activations::new(&cfg, b, t);
            assert_eq!(
                acts.num_bytes() as u64,
                4 * activation_floats(&cfg, b, t),
                "B {b} T {t}"
            );
        }
    }

    #[test]
    fn colors_run_from_white_to_dark_blue() {
        assert_eq!(color(0.0), [247, 251, 255]);
        assert_eq!(color(1.0), [8, 48, 107]);
        assert_eq!(color(0.5), [107, 174, 214]);
    }
}
