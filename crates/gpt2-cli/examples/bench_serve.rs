//! Load benchmark of `gpt2 serve`: generated tokens/s and latency at 1, 4 and 16 concurrent clients.
//!
//! Loopback only, bounded in requests and time. Each client sends streamed completions one after
//! another (prompt of ~8 tokens, `max_tokens` new tokens, temperature 1, its own seed) and records
//! time to first token and total latency; throughput is completion tokens / wall time of the level.
//! With no `--model`, a random model of GPT-2 124M's shape is made once in /tmp (weights do not
//! change the speed).
//!
//! ```text
//! cargo build --release -p gpt2-cli --bin gpt2 --example bench_serve
//! target/release/examples/bench_serve                      # 1, 4, 16 clients; checks 16 ≥ 3× 1
//! target/release/examples/bench_serve --clients 1,8 --requests 16 --max-tokens 64
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Opts {
    model: Option<PathBuf>,
    clients: Vec<usize>,
    requests: Option<usize>,
    max_tokens: usize,
    time_limit: Duration,
    min_speedup: f64,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        model: None,
        clients: vec![1, 4, 16],
        requests: None,
        max_tokens: 32,
        time_limit: Duration::from_secs(90),
        min_speedup: 3.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => o.model = Some(PathBuf::from(val()?)),
            "--clients" => {
                o.clients = val()?
                    .split(',')
                    .map(|c| c.trim().parse().map_err(|e| format!("--clients: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--requests" => {
                o.requests = Some(val()?.parse().map_err(|e| format!("--requests: {e}"))?)
            }
            "--max-tokens" => {
                o.max_tokens = val()?.parse().map_err(|e| format!("--max-tokens: {e}"))?
            }
            "--time-limit-secs" => {
                o.time_limit = Duration::from_secs(
                    val()?
                        .parse()
                        .map_err(|e| format!("--time-limit-secs: {e}"))?,
                )
            }
            "--min-speedup" => {
                o.min_speedup = val()?.parse().map_err(|e| format!("--min-speedup: {e}"))?
            }
            "-h" | "--help" => {
                println!("bench_serve [--model DIR] [--clients 1,4,16] [--requests N per level] [--max-tokens 32] [--time-limit-secs 90] [--min-speedup 3]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// A random model of GPT-2 124M's shape in /tmp, made once.
fn random_124m() -> PathBuf {
    let dir = std::env::temp_dir().join("gpt2-bench-serve-124m");
    if !dir.join("model.safetensors").exists() {
        eprintln!("making a random GPT-2 124M in {} ...", dir.display());
        let cfg = gpt2::Gpt2Config::gpt2();
        let params = gpt2::Params::init_gpt2(&cfg, &mut gpt2::Rng::seed(1));
        let tmp = dir.with_extension("tmp");
        gpt2::checkpoint::save(&params, &tmp, Default::default()).expect("save the random model");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).expect("rename the random model");
    }
    dir
}

/// `target/<profile>/gpt2`, beside `target/<profile>/examples/bench_serve`, or `$GPT2_BIN`.
fn gpt2_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GPT2_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("gpt2"))
        .expect("target dir")
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(model: &Path, max_batch: usize) -> Server {
    let bin = gpt2_bin();
    let mut child = Command::new(&bin)
        .args([
            "serve",
            "--port",
            "0",
            "--max-batch",
            &max_batch.to_string(),
            "--model",
        ])
        .arg(model)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (build it: cargo build --release -p gpt2-cli --bin gpt2)",
                bin.display()
            )
        });
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("server did not start");
    Server(child, addr)
}

/// One streamed request: (time to first token, total latency, completion tokens).
fn one_request(
    addr: &str,
    prompt: &str,
    max_tokens: usize,
    seed: u64,
) -> Result<(f64, f64, usize), String> {
    let body = json!({"prompt": prompt, "max_tokens": max_tokens, "temperature": 1.0, "seed": seed, "stream": true, "stream_options": {"include_usage": true}});
    let t0 = Instant::now();
    let resp = ureq::post(&format!("http://{addr}/v1/completions"))
        .timeout(Duration::from_secs(300))
        .send_json(body)
        .map_err(|e| e.to_string())?;
    let mut ttft = None;
    let mut tokens = 0;
    for line in BufReader::new(resp.into_reader()).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let v: Value = serde_json::from_str(data).map_err(|e| e.to_string())?;
        if let Some(u) = v.get("usage") {
            tokens = u["completion_tokens"].as_u64().unwrap_or(0) as usize;
        } else if ttft.is_none() {
            ttft = Some(t0.elapsed().as_secs_f64());
        }
    }
    let total = t0.elapsed().as_secs_f64();
    Ok((ttft.unwrap_or(total), total, tokens))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Level {
    clients: usize,
    requests: usize,
    tokens: usize,
    wall: f64,
    lat: Vec<f64>,
    ttft: Vec<f64>,
}

fn run_level(
    addr: &str,
    clients: usize,
    requests: usize,
    max_tokens: usize,
    limit: Duration,
) -> Level {
    const PROMPTS: [&str; 4] = [
        "The meaning of life is",
        "Once upon a time, in a land far away,",
        "The capital of France is",
        "def fibonacci(n):",
    ];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let results: Vec<(f64, f64, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let next = &next;
                s.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        if i >= requests || start.elapsed() > limit {
                            break;
                        }
                        match one_request(addr, PROMPTS[i % PROMPTS.len()], max_tokens, i as u64) {
                            Ok(r) => out.push(r),
                            Err(e) => eprintln!("request {i} failed: {e}"),
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client"))
            .collect()
    });
    let wall = start.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = results.iter().map(|r| r.1).collect();
    let mut ttft: Vec<f64> = results.iter().map(|r| r.0).collect();
    lat.sort_by(f64::total_cmp);
    ttft.sort_by(f64::total_cmp);
    Level {
        clients,
        requests: results.len(),
        tokens: results.iter().map(|r| r.2).sum(),
        wall,
        lat,
        ttft,
    }
}

fn main() {
    let o = parse_args().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    let model = o.model.clone().unwrap_or_else(random_124m);
    let max_batch = o.clients.iter().copied().max().unwrap_or(16).max(1);
    let srv = start_server(&model, max_batch);
    eprintln!("server at {} (max batch {max_batch}); warming up", srv.1);
    one_request(&srv.1, "warm up", 4, 0).expect("warm-up request");
    println!(
        "{:>7} {:>8} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "clients", "requests", "tokens", "wall_s", "tok/s", "p50_s", "p99_s", "ttft_p50"
    );
    let mut levels = Vec::new();
    for &c in &o.clients {
        let requests = o.requests.unwrap_or((2 * c).max(8));
        let l = run_level(&srv.1, c, requests, o.max_tokens, o.time_limit);
        println!(
            "{:>7} {:>8} {:>7} {:>8.2} {:>10.1} {:>9.3} {:>9.3} {:>9.3}",
            l.clients,
            l.requests,
            l.tokens,
            l.wall,
            l.tokens as f64 / l.wall,
            percentile(&l.lat, 50.0),
            percentile(&l.lat, 99.0),
            percentile(&l.ttft, 50.0)
        );
        levels.push(l);
    }
    let tps = |c: usize| {
        levels
            .iter()
            .find(|l| l.clients == c)
            .map(|l| l.tokens as f64 / l.wall)
    };
    if let (Some(one), Some(max)) = (tps(1), tps(max_batch)) {
        let speedup = max / one;
        println!("batched throughput at {max_batch} clients = {speedup:.2}× that at 1 client (required ≥ {:.1}×)", o.min_speedup);
        drop(srv);
        if speedup < o.min_speedup {
            std::process::exit(1);
        }
    }
}
