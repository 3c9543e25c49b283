//! `gpt2 serve`: an OpenAI-compatible completions server with continuous batching and a playground.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::bail;

use crate::common::load_model;
use crate::server::{self, ServerConfig};

/// Arguments of `gpt2 serve`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gpt2 serve --model gpt2                      # http://127.0.0.1:8080 (playground at /)\n  gpt2 serve --model gpt2 --max-batch 32 --api-key secret\n  curl http://127.0.0.1:8080/v1/completions -H 'Content-Type: application/json' \\\n    -d '{\"model\": \"gpt2\", \"prompt\": \"Hello, my name is\", \"max_tokens\": 20, \"stream\": true}'\n\nEndpoints: POST /v1/completions (OpenAI), GET /v1/models, GET /health, POST /tokenize, POST /detokenize, GET / (playground)."
)]
pub struct Args {
    /// Model folder (config.json + model.safetensors), Hugging Face hub id (gpt2, owner/name) or
    /// llama.cpp GGUF file (`.gguf`).
    /// Default: the small model shipped with the project.
    #[arg(long)]
    model: Option<String>,
    /// Address to listen on. Loopback by default; use 0.0.0.0 to accept other machines.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Most sequences decoded together in one forward pass (and most choices per request).
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    /// Most requests waiting for a batch slot; more are refused with 503.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Largest `max_tokens` a request may ask for (default and ceiling: the model's context).
    #[arg(long)]
    max_tokens_limit: Option<usize>,
    /// Require `Authorization: Bearer KEY` on every endpoint but / and /health.
    #[arg(long)]
    api_key: Option<String>,
    /// Name reported as the model id (default: the --model argument, or the folder's name).
    #[arg(long)]
    model_name: Option<String>,
    /// Largest request body, in bytes (more: 413).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Seconds a client has to send its request headers, and then its body (408).
    #[arg(long, default_value_t = 30)]
    read_timeout_secs: u64,
    /// Seconds a generation may take (then 504, or an error event on a stream); also how long
    /// shutdown waits for in-flight requests.
    #[arg(long, default_value_t = 600)]
    request_timeout_secs: u64,
}

/// Runs `gpt2 serve`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.max_batch == 0 {
        bail!("--max-batch must be at least 1");
    }
    if args.read_timeout_secs == 0 || args.request_timeout_secs == 0 {
        bail!("--read-timeout-secs and --request-timeout-secs must be at least 1");
    }
    if args.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        bail!("--api-key must not be empty");
    }
    let model = load_model(args.model.as_deref())?;
    let model_name = args
        .model_name
        .clone()
        .unwrap_or_else(|| match &args.model {
            Some(m) => {
                let p = std::path::Path::new(m.trim_end_matches('/'));
                if p.exists() {
                    p.file_name()
                        .map_or_else(|| m.clone(), |f| f.to_string_lossy().into_owned())
                } else {
                    m.clone()
                }
            }
            None => crate::common::DEFAULT_MODEL_NAME.to_string(),
        });
    let n_ctx = model.config().n_positions;
    let cfg = ServerConfig {
        addr: SocketAddr::new(args.host, args.port),
        model_name,
        max_batch: args.max_batch,
        max_queue: args.max_queue,
        max_tokens_limit: args.max_tokens_limit.unwrap_or(n_ctx),
        api_key: args.api_key,
        max_body_bytes: args.max_body_bytes,
        read_timeout: Duration::from_secs(args.read_timeout_secs),
        request_timeout: Duration::from_secs(args.request_timeout_secs),
    };
    server::run(cfg, model)
}
