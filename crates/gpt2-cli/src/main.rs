//! `gpt2`: generate, score, tokenize, train, evaluate and serve GPT-2 models from the command line.
//!
//! One module per subcommand under `cmd/`; results go to stdout, progress and logs to stderr, and
//! the exit code is 0 only on success.

use clap::{Parser, Subcommand};

mod cmd;
mod common;
mod server;

/// GPT-2 from first principles: load real checkpoints, generate, score, train.
#[derive(Parser)]
#[command(name = "gpt2", version, about, long_about = None)]
struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Read a GGUF model's tensors into memory instead of mapping the file: loading reads the
    /// whole file, and decoding can then run from huge pages (faster where the kernel offers them).
    #[arg(long, global = true)]
    no_mmap: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate text from a prompt (streams to stdout).
    Generate(cmd::generate::Args),
    /// Log-probability of each token of a text given the ones before it.
    Score(cmd::score::Args),
    /// Text to GPT-2 token ids.
    Tokenize(cmd::tokenize::TokenizeArgs),
    /// GPT-2 token ids to text.
    Detokenize(cmd::tokenize::DetokenizeArgs),
    /// Speed and memory of inference (or training) on random weights of a preset shape.
    Bench(cmd::bench::Args),
    /// Tokenize text files into train.bin / val.bin token shards.
    Prepare(cmd::prepare::Args),
    /// Rewrite a checkpoint with another storage dtype (f32, f16, bf16).
    Convert(cmd::convert::Args),
    /// Write a GGUF file (llama.cpp's format) with f16, bf16, q8_0 or q4_0 weights.
    Quantize(cmd::quantize::Args),
    /// Average the weights of models of one shape (a model soup, or a run's last checkpoints).
    Average(cmd::average::Args),
    /// Pre-train or fine-tune a model.
    Train(Box<cmd::train::Args>),
    /// Mean loss and perplexity of a model on a token shard or a text (sliding window), or the
    /// accuracy of a classifier (--task classify).
    Eval(cmd::eval::Args),
    /// Label and class probabilities of texts under a classification model.
    Classify(cmd::classify::Args),
    /// What a model is made of: config, parameters per tensor, bytes, FLOPs per token, training
    /// memory; or one attention head's pattern on a text (--attention).
    Inspect(cmd::inspect::Args),
    /// OpenAI-compatible HTTP server (/v1/completions) with continuous batching and a playground.
    Serve(cmd::serve::Args),
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = gpt2::kernels::isa::check_env() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    common::NO_MMAP.store(cli.no_mmap, std::sync::atomic::Ordering::Relaxed);
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            eprintln!("error: --threads {n}: {e}");
            std::process::exit(2);
        }
    }
    let result = match cli.cmd {
        Cmd::Generate(a) => cmd::generate::run(a),
        Cmd::Score(a) => cmd::score::run(a),
        Cmd::Tokenize(a) => cmd::tokenize::run_tokenize(a),
        Cmd::Detokenize(a) => cmd::tokenize::run_detokenize(a),
        Cmd::Bench(a) => cmd::bench::run(a),
        Cmd::Prepare(a) => cmd::prepare::run(a),
        Cmd::Convert(a) => cmd::convert::run(a),
        Cmd::Quantize(a) => cmd::quantize::run(a),
        Cmd::Average(a) => cmd::average::run(a),
        Cmd::Train(a) => cmd::train::run(*a),
        Cmd::Eval(a) => cmd::eval::run(a),
        Cmd::Classify(a) => cmd::classify::run(a),
        Cmd::Inspect(a) => cmd::inspect::run(a),
        Cmd::Serve(a) => cmd::serve::run(a),
    };
    if let Err(e) = result {
        // The reader of stdout went away (`gpt2 generate | head`): not an error of ours; stop
        // quietly as other Unix tools do.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if broken_pipe {
            std::process::exit(0);
        }
        // One line: the chain of causes joined, each said once (library errors put their
        // source's text in their own message as well as exposing it as the source).
        let mut msg = String::new();
        for cause in e.chain() {
            let text = cause.to_string();
            if !msg.contains(&text) {
                if !msg.is_empty() {
                    msg.push_str(": ");
                }
                msg.push_str(&text);
            }
        }
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}
