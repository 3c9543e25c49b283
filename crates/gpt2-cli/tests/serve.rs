//! End-to-end tests of `gpt2 serve`: each test starts the real binary on a free loopback port
//! (`--port 0`; the bound address is read from its log) and talks HTTP to it.
//!
//! Models: the committed tiny fixture (vocab 1000, n_ctx 37: prompts are texts whose GPT-2 ids are
//! < 1000, such as "a b" = [64, 275]) and a random full-vocabulary model made once per run with
//! `Params::init_gpt2` (any text works; n_ctx 512 leaves room for long generations).
//!
//! Covered: every endpoint; completions in OpenAI's shape with every option; streaming (SSE) equal to
//! non-streaming; the exact requests the `openai` Python client sends; every bad request → 4xx with
//! an OpenAI error body; the API key; 16 concurrent clients batched together with the same outputs
//! as one at a time; a full queue → 503; a client that disconnects stops its generation; slow
//! clients time out; Ctrl-C drains; the playground in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpt2/tests/fixtures/tiny")
}

/// A random GPT-2 with the real vocabulary (2 layers, C 64, n_ctx 512), made once per run.
fn rand_model() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-rand-l2-c64-t512");
        if !dir.join("model.safetensors").exists() {
            let cfg = gpt2::Gpt2Config {
                n_layer: 2,
                n_head: 4,
                n_embd: 64,
                n_positions: 512,
                ..gpt2::Gpt2Config::gpt2()
            };
            let params = gpt2::Params::init_gpt2(&cfg, &mut gpt2::Rng::seed(7));
            let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
            gpt2::checkpoint::save(&params, &tmp, Default::default()).expect("save random model");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir).expect("rename random model");
        }
        dir
    })
    .clone()
}

/// A running `gpt2 serve`; killed on drop.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(model: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gpt2"))
            .args(["--threads", "2", "serve", "--port", "0", "--model"])
            .arg(model)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gpt2 serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = Arc::clone(&log);
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
                log2.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Server { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// (status, content-type, body) of a request with optional headers.
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String, String) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let mut req = agent.request(method, &self.url(path));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let res = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}\nserver log:\n{}", self.log()),
        };
        let status = resp.status();
        let ctype = resp.header("content-type").unwrap_or_default().to_string();
        (status, ctype, resp.into_string().expect("body"))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, b) = self.call("GET", path, None, &[]);
        (
            s,
            serde_json::from_str(&b).unwrap_or_else(|e| panic!("GET {path}: {e}: {b}")),
        )
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (s, _, b) = self.call("POST", path, Some(&body.to_string()), &[]);
        (
            s,
            serde_json::from_str(&b).unwrap_or_else(|e| panic!("POST {path}: {e}: {b}")),
        )
    }

    /// A completion that must succeed.
    fn complete(&self, body: &Value) -> Value {
        let (s, v) = self.post("/v1/completions", body);
        assert_eq!(s, 200, "{body} -> {v}");
        v
    }

    fn health(&self) -> Value {
        self.get("/health").1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `data:` payloads of a server-sent-events body.
fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let d: Vec<&str> = e.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            assert!(!d.is_empty(), "event without data: {e:?}");
            d.join("\n")
        })
        .collect()
}

/// Streams a completion; returns (text per choice, finish reason per choice, token chunks per choice, usage).
fn stream_completion(
    srv: &Server,
    body: &Value,
    choices: usize,
) -> (Vec<String>, Vec<String>, Vec<usize>, Option<Value>) {
    let (s, ctype, raw) = srv.call("POST", "/v1/completions", Some(&body.to_string()), &[]);
    assert_eq!(s, 200, "{raw}");
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let events = sse_data(&raw);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "stream must end with [DONE]: {raw}"
    );
    let (mut text, mut finish, mut chunks, mut usage) = (
        vec![String::new(); choices],
        vec![String::new(); choices],
        vec![0; choices],
        None,
    );
    let mut ids = std::collections::HashSet::new();
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap_or_else(|err| panic!("{err}: {e}"));
        assert_eq!(v["object"], "text_completion");
        ids.insert(v["id"].as_str().unwrap().to_string());
        if let Some(u) = v.get("usage") {
            assert_eq!(v["choices"].as_array().unwrap().len(), 0);
            usage = Some(u.clone());
            continue;
        }
        let cs = v["choices"].as_array().unwrap();
        assert_eq!(cs.len(), 1, "one choice per chunk: {e}");
        let c = &cs[0];
        let i = c["index"].as_u64().unwrap() as usize;
        assert!(finish[i].is_empty(), "chunk after the finish of choice {i}");
        text[i].push_str(c["text"].as_str().unwrap());
        if !c["logprobs"].is_null() {
            chunks[i] += c["logprobs"]["tokens"].as_array().unwrap().len();
        }
        if let Some(f) = c["finish_reason"].as_str() {
            finish[i] = f.to_string();
        }
    }
    assert_eq!(ids.len(), 1, "every chunk has the same id");
    (text, finish, chunks, usage)
}

fn text_of(v: &Value, i: usize) -> String {
    v["choices"][i]["text"].as_str().unwrap().to_string()
}

fn assert_openai_error(v: &Value, what: &str) {
    let e = &v["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
    assert!(e["type"].is_string(), "{what}: {v}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "{what}: {v}"
    );
}

#[test]
fn endpoints_health_models_tokenize_playground() {
    let srv = Server::start(&tiny(), &[]);
    let (s, h) = srv.get("/health");
    assert_eq!(
        (s, h["status"].as_str(), h["n_ctx"].as_u64()),
        (200, Some("ok"), Some(37))
    );
    let (s, m) = srv.get("/v1/models");
    assert_eq!(s, 200);
    assert_eq!(m["object"], "list");
    assert_eq!(m["data"][0]["id"], "tiny");
    assert_eq!(m["data"][0]["object"], "model");
    assert!(m["data"][0]["created"].is_u64());
    assert_eq!(srv.get("/v1/models/tiny").0, 200);
    let (s, e) = srv.get("/v1/models/gpt-4");
    assert_eq!(s, 404);
    assert_openai_error(&e, "unknown model");

    let (s, t) = srv.post("/tokenize", &json!({"text": "Hello world"}));
    assert_eq!((s, t["tokens"].clone()), (200, json!([15496, 995])));
    let (_, t) = srv.post(
        "/tokenize",
        &json!({"text": "<|endoftext|>", "allow_special": true}),
    );
    assert_eq!(t["tokens"], json!([50256]));
    let (s, d) = srv.post("/detokenize", &json!({"tokens": [15496, 995]}));
    assert_eq!((s, d["text"].as_str()), (200, Some("Hello world")));
    let (s, e) = srv.post("/detokenize", &json!({"tokens": [60000]}));
    assert_eq!((s, e["error"]["param"].as_str()), (400, Some("tokens")));
    let (s, e) = srv.post("/tokenize", &json!({"txt": "x"}));
    assert_eq!(s, 400, "{e}");

    let (s, ctype, page) = srv.call("GET", "/", None, &[]);
    assert_eq!(s, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    for needle in [
        "id=\"prompt\"",
        "id=\"generate\"",
        "id=\"temperature\"",
        "id=\"top_p\"",
        "id=\"max_tokens\"",
        "<b id=\"model\">tiny</b>",
        "max=\"37\"",
    ] {
        assert!(page.contains(needle), "playground lacks {needle}");
    }
    let (s, _, b) = srv.call("GET", "/v1/nothing", None, &[]);
    assert_eq!(s, 404);
    assert_openai_error(&serde_json::from_str(&b).unwrap(), "404");
    let (s, _, b) = srv.call("GET", "/v1/completions", None, &[]);
    assert_eq!(s, 405);
    assert_openai_error(&serde_json::from_str(&b).unwrap(), "405");
    // one log line per request
    std::thread::sleep(Duration::from_millis(100));
    let log = srv.log();
    assert!(log.contains("GET /health 200"), "{log}");
    assert!(log.contains("POST /detokenize 400"), "{log}");
}

#[test]
fn completions_shape_and_options() {
    let srv = Server::start(&tiny(), &[]);
    // "a b" = [64, 275]
    let base = json!({"model": "tiny", "prompt": "a b", "max_tokens": 8, "seed": 1});
    let v = srv.complete(&base);
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert!(v["created"].is_u64());
    assert_eq!(v["model"], "tiny");
    assert_eq!(v["choices"].as_array().unwrap().len(), 1);
    let c = &v["choices"][0];
    assert_eq!(
        (c["index"].as_u64(), c["finish_reason"].as_str()),
        (Some(0), Some("length"))
    );
    assert!(c["logprobs"].is_null());
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 8, "total_tokens": 10})
    );
    let text = text_of(&v, 0);

    // seeds: same seed, same text; token-id prompts equal the text prompt
    assert_eq!(text_of(&srv.complete(&base), 0), text);
    assert_eq!(
        text_of(
            &srv.complete(&json!({"prompt": [64, 275], "max_tokens": 8, "seed": 1})),
            0
        ),
        text
    );
    let other: Vec<String> = (2..6)
        .map(|s| {
            text_of(
                &srv.complete(&json!({"prompt": "a b", "max_tokens": 8, "seed": s})),
                0,
            )
        })
        .collect();
    assert!(
        other.iter().any(|t| *t != text),
        "different seeds all gave {text:?}"
    );

    // n and prompt arrays: choice p·n + j; prompt tokens counted once per prompt
    // (each prompt is sampled as if sent alone: sample j of every prompt uses sample_seed(seed, j))
    let v = srv.complete(&json!({"prompt": ["a", "a b"], "n": 2, "max_tokens": 8, "seed": 1}));
    let cs = v["choices"].as_array().unwrap();
    assert_eq!(cs.len(), 4);
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(c["index"].as_u64(), Some(i as u64));
    }
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 32, "total_tokens": 35})
    );
    assert_eq!(
        text_of(&v, 2),
        text,
        "choice 2 = prompt \"a b\", sample 0, seed 1"
    );
    assert_ne!(
        text_of(&v, 2),
        text_of(&v, 3),
        "samples of one prompt differ"
    );
    let v2 =
        srv.complete(&json!({"prompt": [[64], [64, 275]], "n": 2, "max_tokens": 8, "seed": 1}));
    for i in 0..4 {
        assert_eq!(text_of(&v2, i), text_of(&v, i));
    }

    // echo prepends the prompt
    let v = srv.complete(&json!({"prompt": "a b", "max_tokens": 8, "seed": 1, "echo": true}));
    assert_eq!(text_of(&v, 0), format!("a b{text}"));

    // logprobs: parallel arrays, top-k sorted, the sampled token's logprob ≤ the best
    let v = srv.complete(&json!({"prompt": "a b", "max_tokens": 8, "seed": 1, "logprobs": 3}));
    assert_eq!(text_of(&v, 0), text, "logprobs do not change sampling");
    let lp = &v["choices"][0]["logprobs"];
    let toks = lp["tokens"].as_array().unwrap();
    assert_eq!(toks.len(), 8);
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), 8);
    assert_eq!(lp["text_offset"].as_array().unwrap().len(), 8);
    let offs: Vec<u64> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap())
        .collect();
    assert!(
        offs.windows(2).all(|w| w[0] <= w[1]) && offs[0] == 0,
        "{offs:?}"
    );
    for (t, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        let top = top.as_object().unwrap();
        assert_eq!(top.len(), 3);
        let best = top
            .values()
            .map(|x| x.as_f64().unwrap())
            .fold(f64::NEG_INFINITY, f64::max);
        let got = lp["token_logprobs"][t].as_f64().unwrap();
        assert!(got <= best + 1e-6 && got < 0.0, "{got} vs {best}");
    }

    // greedy: each token is the top-1
    let g =
        srv.complete(&json!({"prompt": "a b", "max_tokens": 10, "temperature": 0, "logprobs": 1}));
    let lp = &g["choices"][0]["logprobs"];
    for t in 0..10 {
        let best = lp["top_logprobs"][t]
            .as_object()
            .unwrap()
            .values()
            .map(|x| x.as_f64().unwrap())
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            Some(best),
            lp["token_logprobs"][t].as_f64(),
            "greedy token {t} is not the argmax"
        );
    }
    // stop strings: the text is cut before the first occurrence; finish_reason "stop"
    let greedy_text = text_of(&g, 0);
    let stop = lp["tokens"].as_array().unwrap()[2..]
        .iter()
        .map(|t| t.as_str().unwrap().trim())
        .find(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
        .expect("an ASCII word in the greedy output")
        .to_string();
    let cut = greedy_text.find(&stop).unwrap();
    for stops in [json!(stop), json!(["zzzz", stop])] {
        let v = srv
            .complete(&json!({"prompt": "a b", "max_tokens": 10, "temperature": 0, "stop": stops}));
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
        assert_eq!(text_of(&v, 0), greedy_text[..cut], "stop {stop:?}");
    }

    // penalties and extensions are accepted and change greedy output toward fewer repeats
    let distinct = |v: &Value| {
        let lp = &v["choices"][0]["logprobs"]["tokens"];
        lp.as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let plain =
        srv.complete(&json!({"prompt": "a", "max_tokens": 30, "temperature": 0, "logprobs": 0}));
    let pen = srv.complete(&json!({"prompt": "a", "max_tokens": 30, "temperature": 0, "logprobs": 0, "frequency_penalty": 2.0, "presence_penalty": 2.0}));
    assert!(
        distinct(&pen) >= distinct(&plain),
        "penalties should not add repeats"
    );
    assert!(
        plain["choices"][0]["logprobs"]["top_logprobs"].is_null(),
        "logprobs 0: no alternatives"
    );
    srv.complete(&json!({"prompt": "a", "max_tokens": 4, "top_k": 5, "top_p": 0.9, "temperature": 0.7, "repetition_penalty": 1.3, "user": "u1", "best_of": 1, "logit_bias": {}, "suffix": null}));

    // the context caps generation: 30 prompt tokens + 7 = n_ctx 37
    let long: Vec<u32> = (0..30).map(|i| 64 + i % 20).collect();
    let v = srv.complete(&json!({"prompt": long, "max_tokens": 20, "seed": 3}));
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 7);

    // echo + max_tokens 0 + logprobs scores the prompt (first token has no logprob)
    let v = srv.complete(&json!({"prompt": "a b c", "max_tokens": 0, "echo": true, "logprobs": 2}));
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(text_of(&v, 0), "a b c");
    assert_eq!(lp["tokens"], json!(["a", " b", " c"]));
    assert!(lp["token_logprobs"][0].is_null());
    assert!(
        lp["token_logprobs"][1].as_f64().unwrap() < 0.0
            && lp["token_logprobs"][2].as_f64().unwrap() < 0.0
    );
    assert!(
        lp["top_logprobs"][0].is_null() && lp["top_logprobs"][1].as_object().unwrap().len() == 2
    );
    assert_eq!(lp["text_offset"], json!([0, 1, 3]));
    assert_eq!(v["usage"]["completion_tokens"], 0);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
}

#[test]
fn streaming_matches_non_streaming() {
    let srv = Server::start(&tiny(), &[]);
    let body = json!({"prompt": ["a b", "a"], "n": 2, "max_tokens": 9, "seed": 5, "logprobs": 1});
    let full = srv.complete(&body);
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    sbody["stream_options"] = json!({"include_usage": true});
    let (text, finish, chunks, usage) = stream_completion(&srv, &sbody, 4);
    for i in 0..4 {
        assert_eq!(text[i], text_of(&full, i), "choice {i}");
        assert_eq!(finish[i], "length");
        assert_eq!(chunks[i], 9, "one chunk per token");
    }
    assert_eq!(usage.expect("usage chunk"), full["usage"]);

    // echo streams the prompt first; no usage chunk unless asked
    let (text, finish, _, usage) = stream_completion(
        &srv,
        &json!({"prompt": "a b", "max_tokens": 6, "seed": 2, "stream": true, "echo": true}),
        1,
    );
    let plain = srv.complete(&json!({"prompt": "a b", "max_tokens": 6, "seed": 2}));
    assert_eq!(text[0], format!("a b{}", text_of(&plain, 0)));
    assert_eq!((finish[0].as_str(), usage), ("length", None));

    // a bad streamed request is a plain JSON 400, not a stream
    let (s, ctype, b) = srv.call(
        "POST",
        "/v1/completions",
        Some(&json!({"prompt": "a", "stream": true, "top_p": 2}).to_string()),
        &[],
    );
    assert_eq!(s, 400);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    assert_openai_error(&serde_json::from_str(&b).unwrap(), "stream 400");
}

#[test]
fn bad_requests_get_openai_errors() {
    let srv = Server::start(
        &tiny(),
        &[
            "--max-body-bytes",
            "4096",
            "--max-tokens-limit",
            "20",
            "--max-batch",
            "4",
        ],
    );
    let long_prompt = vec![64; 38];
    let cases: Vec<(&str, String, u16, Option<&str>)> = vec![
        ("malformed JSON", "{\"prompt\": \"a\",".into(), 400, None),
        ("not an object", "[1, 2]".into(), 400, None),
        ("empty body", "".into(), 400, None),
        (
            "unknown field",
            json!({"prompt": "a", "temprature": 1}).to_string(),
            400,
            Some("temprature"),
        ),
        (
            "mistyped field",
            json!({"prompt": "a", "max_tokens": "ten"}).to_string(),
            400,
            Some("max_tokens"),
        ),
        (
            "mistyped bool",
            json!({"prompt": "a", "stream": "yes"}).to_string(),
            400,
            Some("stream"),
        ),
        (
            "max_tokens 0",
            json!({"prompt": "a", "max_tokens": 0}).to_string(),
            400,
            Some("max_tokens"),
        ),
        (
            "max_tokens < 0",
            json!({"prompt": "a", "max_tokens": -1}).to_string(),
            400,
            Some("max_tokens"),
        ),
        (
            "max_tokens over the limit",
            json!({"prompt": "a", "max_tokens": 21}).to_string(),
            400,
            Some("max_tokens"),
        ),
        (
            "prompt longer than n_ctx",
            json!({"prompt": long_prompt}).to_string(),
            400,
            Some("prompt"),
        ),
        (
            "token id ≥ V",
            json!({"prompt": [1, 1000]}).to_string(),
            400,
            Some("prompt"),
        ),
        (
            "bad prompt type",
            json!({"prompt": {"text": "a"}}).to_string(),
            400,
            Some("prompt"),
        ),
        (
            "empty prompt array",
            json!({"prompt": []}).to_string(),
            400,
            Some("prompt"),
        ),
        (
            "temperature < 0",
            json!({"prompt": "a", "temperature": -0.5}).to_string(),
            400,
            Some("temperature"),
        ),
        (
            "temperature > 2",
            json!({"prompt": "a", "temperature": 2.5}).to_string(),
            400,
            Some("temperature"),
        ),
        (
            "top_p 0",
            json!({"prompt": "a", "top_p": 0}).to_string(),
            400,
            Some("top_p"),
        ),
        (
            "top_p > 1",
            json!({"prompt": "a", "top_p": 1.01}).to_string(),
            400,
            Some("top_p"),
        ),
        (
            "n 0",
            json!({"prompt": "a", "n": 0}).to_string(),
            400,
            Some("n"),
        ),
        (
            "n over the limit",
            json!({"prompt": "a", "n": 5}).to_string(),
            400,
            Some("n"),
        ),
        (
            "prompts × n over the limit",
            json!({"prompt": ["a", "a", "a"], "n": 2}).to_string(),
            400,
            Some("n"),
        ),
        (
            "logprobs over the limit",
            json!({"prompt": "a", "logprobs": 21}).to_string(),
            400,
            Some("logprobs"),
        ),
        (
            "too many stops",
            json!({"prompt": "a", "stop": ["1", "2", "3", "4", "5"]}).to_string(),
            400,
            Some("stop"),
        ),
        (
            "bad stop type",
            json!({"prompt": "a", "stop": 3}).to_string(),
            400,
            Some("stop"),
        ),
        (
            "presence_penalty out of range",
            json!({"prompt": "a", "presence_penalty": 3}).to_string(),
            400,
            Some("presence_penalty"),
        ),
        (
            "best_of unsupported",
            json!({"prompt": "a", "best_of": 3}).to_string(),
            400,
            Some("best_of"),
        ),
        (
            "suffix unsupported",
            json!({"prompt": "a", "suffix": "x"}).to_string(),
            400,
            Some("suffix"),
        ),
        (
            "stream_options without stream",
            json!({"prompt": "a", "stream_options": {"include_usage": true}}).to_string(),
            400,
            Some("stream_options"),
        ),
        (
            "body over the size limit",
            json!({"prompt": "a".repeat(5000)}).to_string(),
            413,
            None,
        ),
    ];
    for (what, body, status, param) in cases {
        let (s, ctype, b) = srv.call("POST", "/v1/completions", Some(&body), &[]);
        assert_eq!(s, status, "{what}: {b}");
        assert!(ctype.starts_with("application/json"), "{what}: {ctype}");
        let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{what}: {e}: {b}"));
        assert_openai_error(&v, what);
        assert_eq!(v["error"]["type"], "invalid_request_error", "{what}");
        if let Some(p) = param {
            assert_eq!(v["error"]["param"].as_str(), Some(p), "{what}: {v}");
        }
    }
    assert_eq!(
        srv.post("/v1/completions", &json!({"prompt": "a", "max_tokens": 20}))
            .0,
        200,
        "the limit itself is allowed"
    );
    let (_, v) = srv.post("/v1/completions", &json!({"prompt": long_prompt}));
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    // the edges of the window (n_ctx 37): 36 prompt tokens give one token; 37 leave no room
    // and are a 400 saying so (unless only scored: echo with max_tokens 0); 38 are too long
    let (s36, v) = srv.post(
        "/v1/completions",
        &json!({"prompt": vec![64; 36], "max_tokens": 5, "temperature": 0}),
    );
    assert_eq!(s36, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "length", "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 1, "{v}");
    for n in [37, 38] {
        let (status, v) = srv.post(
            "/v1/completions",
            &json!({"prompt": vec![64; n], "max_tokens": 5}),
        );
        assert_eq!(status, 400, "{n} tokens: {v}");
        assert_eq!(v["error"]["code"], "context_length_exceeded", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{n} tokens")),
            "{v}"
        );
    }
    let (s37, v) = srv.post(
        "/v1/completions",
        &json!({"prompt": vec![64; 37], "max_tokens": 0, "echo": true, "logprobs": 0}),
    );
    assert_eq!(s37, 200, "scoring a full window is allowed: {v}");
    assert_eq!(
        v["choices"][0]["logprobs"]["tokens"]
            .as_array()
            .unwrap()
            .len(),
        37,
        "{v}"
    );
    // still alive and well after all that
    assert_eq!(srv.health()["status"], "ok");
}

#[test]
fn api_key_is_required_when_set() {
    let srv = Server::start(&tiny(), &["--api-key", "sekrit"]);
    let body = json!({"prompt": "a", "max_tokens": 2}).to_string();
    for (what, headers) in [
        ("missing", vec![]),
        ("wrong", vec![("Authorization", "Bearer nope")]),
        ("not bearer", vec![("Authorization", "sekrit")]),
    ] {
        let (s, _, b) = srv.call("POST", "/v1/completions", Some(&body), &headers);
        assert_eq!(s, 401, "{what}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_openai_error(&v, what);
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert_eq!(
            srv.call("GET", "/v1/models", None, &headers).0,
            401,
            "{what}"
        );
    }
    let auth = [("Authorization", "Bearer sekrit")];
    assert_eq!(
        srv.call("POST", "/v1/completions", Some(&body), &auth).0,
        200
    );
    assert_eq!(srv.call("GET", "/v1/models", None, &auth).0, 200);
    assert_eq!(
        srv.call("POST", "/tokenize", Some("{\"text\": \"a\"}"), &auth)
            .0,
        200
    );
    assert_eq!(
        srv.call("POST", "/tokenize", Some("{\"text\": \"a\"}"), &[])
            .0,
        401
    );
    // open: liveness and the page (which asks for the key)
    assert_eq!(srv.call("GET", "/health", None, &[]).0, 200);
    let (s, _, page) = srv.call("GET", "/", None, &[]);
    assert_eq!(s, 200);
    assert!(
        page.contains("\"1\" === \"1\""),
        "the playground knows a key is needed"
    );
}

/// Reads one HTTP/1.1 response (Content-Length or chunked) from a kept-alive connection.
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, String) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .expect("status")
        .parse()
        .expect("status code");
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("header line");
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |k: &str| headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(n) = get("content-length") {
        body.resize(n.parse().expect("length"), 0);
        r.read_exact(&mut body).expect("body");
    } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            line.clear();
            r.read_line(&mut line).expect("chunk size");
            let n = usize::from_str_radix(line.trim(), 16).expect("chunk size hex");
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else {
        panic!("response without a length: {headers:?}");
    }
    (
        status,
        headers,
        String::from_utf8(body).expect("utf-8 body"),
    )
}

/// The `openai` Python client (3.57.0), captured byte for byte: `completions.create(model="gpt2",
/// prompt="Hello", max_tokens=5, temperature=0.7, seed=3, logprobs=2, stop=["\n"])`, then a
/// streamed `prompt=["a", "b"], n=2`, on one kept-alive connection (httpx pools connections).
const OPENAI_PY_REQUESTS: [(&str, &str); 2] = [
    (
        "POST /v1/completions HTTP/1.1\r\nHost: HOST\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nauthorization: Bearer sk-test\r\naccept: application/json\r\ncontent-type: application/json\r\nuser-agent: OpenAI/Python 3.57.0\r\nx-stainless-lang: python\r\nx-stainless-package-version: 3.57.0\r\nx-stainless-os: Linux\r\nx-stainless-arch: x64\r\nx-stainless-runtime: CPython\r\nx-stainless-runtime-version: 3.11.7\r\nx-stainless-async: false\r\nx-stainless-retry-count: 0\r\nx-stainless-read-timeout: 600\r\nContent-Length: LEN\r\n\r\n",
        r#"{"model":"gpt2","prompt":"Hello","logprobs":2,"max_tokens":5,"seed":3,"stop":["\n"],"temperature":0.7}"#,
    ),
    (
        "POST /v1/completions HTTP/1.1\r\nHost: HOST\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nauthorization: Bearer sk-test\r\naccept: application/json\r\ncontent-type: application/json\r\nuser-agent: OpenAI/Python 3.57.0\r\nx-stainless-lang: python\r\nx-stainless-package-version: 3.57.0\r\nx-stainless-os: Linux\r\nx-stainless-arch: x64\r\nx-stainless-runtime: CPython\r\nx-stainless-runtime-version: 3.11.7\r\nx-stainless-async: false\r\nx-stainless-retry-count: 0\r\nx-stainless-read-timeout: 600\r\nContent-Length: LEN\r\n\r\n",
        r#"{"model":"gpt2","stream":true,"prompt":["a","b"],"max_tokens":5,"n":2}"#,
    ),
];

/// What the client's pydantic models (`Completion`, `CompletionChoice`, `Logprobs`,
/// `CompletionUsage`) require of a completion object.
fn check_openai_completion(v: &Value, streamed: bool) {
    assert!(
        v["id"].is_string() && v["created"].is_u64() && v["model"].is_string(),
        "{v}"
    );
    assert_eq!(v["object"], "text_completion");
    for c in v["choices"].as_array().expect("choices") {
        assert!(c["text"].is_string() && c["index"].is_u64(), "{c}");
        match &c["finish_reason"] {
            Value::Null => assert!(streamed, "finish_reason null outside a stream: {c}"),
            Value::String(f) => assert!(
                ["stop", "length", "content_filter"].contains(&f.as_str()),
                "{f}"
            ),
            other => panic!("finish_reason {other}"),
        }
        let lp = &c["logprobs"];
        if !lp.is_null() {
            assert!(lp["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_string));
            assert!(lp["token_logprobs"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x.is_f64() || x.is_null()));
            assert!(lp["text_offset"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_u64));
            for t in lp["top_logprobs"].as_array().unwrap() {
                assert!(t.as_object().unwrap().values().all(Value::is_f64));
            }
        }
    }
    if let Some(u) = v.get("usage") {
        for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
            assert!(u[k].is_u64(), "usage.{k}: {u}");
        }
    }
}

#[test]
fn openai_python_client_requests_replayed() {
    let srv = Server::start(
        &rand_model(),
        &["--api-key", "sk-test", "--model-name", "gpt2"],
    );
    let stream = TcpStream::connect(&srv.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    for (i, (head, body)) in OPENAI_PY_REQUESTS.iter().enumerate() {
        let head = head
            .replace("HOST", &srv.addr)
            .replace("LEN", &body.len().to_string());
        w.write_all(head.as_bytes()).unwrap();
        w.write_all(body.as_bytes()).unwrap();
        let (status, headers, text) = read_response(&mut r);
        assert_eq!(status, 200, "request {i}: {text}");
        let ctype = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if i == 0 {
            assert!(ctype.starts_with("application/json"));
            let v: Value = serde_json::from_str(&text).unwrap();
            check_openai_completion(&v, false);
            assert_eq!(v["model"], "gpt2");
            let c = &v["choices"][0];
            assert!(
                !c["text"].as_str().unwrap().contains('\n'),
                "stop [\"\\n\"] applies"
            );
            assert_eq!(
                c["logprobs"]["top_logprobs"][0].as_object().unwrap().len(),
                2
            );
        } else {
            assert!(ctype.starts_with("text/event-stream"), "{ctype}");
            let events = sse_data(&text);
            assert_eq!(events.last().unwrap(), "[DONE]");
            let mut finished = 0;
            for e in &events[..events.len() - 1] {
                let v: Value = serde_json::from_str(e).unwrap();
                check_openai_completion(&v, true);
                finished += v["choices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|c| c["finish_reason"].is_string())
                    .count();
            }
            assert_eq!(finished, 4, "2 prompts × n 2 choices each finish once");
        }
    }
    // the client reads `error.message` from non-2xx bodies (AuthenticationError here)
    let bad = OPENAI_PY_REQUESTS[0]
        .0
        .replace("Bearer sk-test", "Bearer sk-wrong")
        .replace("HOST", &srv.addr)
        .replace("LEN", &OPENAI_PY_REQUESTS[0].1.len().to_string());
    w.write_all(bad.as_bytes()).unwrap();
    w.write_all(OPENAI_PY_REQUESTS[0].1.as_bytes()).unwrap();
    let (status, _, text) = read_response(&mut r);
    assert_eq!(status, 401);
    assert_openai_error(&serde_json::from_str(&text).unwrap(), "401");
}

#[test]
fn sixteen_concurrent_clients_match_sequential() {
    const TEMPS: [f64; 4] = [1.0, 0.7, 0.0, 1.3];
    let srv = Server::start(&rand_model(), &["--max-batch", "16"]);
    let prompts = [
        "The meaning of life is",
        "Hello, my name is",
        "Once upon a time",
        "In 1905, Einstein",
        "Rust is",
        "def main():",
        "I think",
        "A B C D",
    ];
    let requests: Vec<Value> = (0..16)
        .map(|i| {
            let mut r = json!({
                "prompt": prompts[i % prompts.len()],
                "max_tokens": 20 + (i % 5) * 4,
                "seed": 1000 + i,
                "temperature": TEMPS[i % 4],
            });
            if i % 3 == 0 {
                r["top_p"] = json!(0.9);
            }
            if i % 4 == 1 {
                r["stream"] = json!(true);
            }
            r
        })
        .collect();
    let run = |srv: &Server, r: &Value| -> String {
        if r.get("stream").is_some() {
            stream_completion(srv, r, 1).0.remove(0)
        } else {
            text_of(&srv.complete(r), 0)
        }
    };
    let sequential: Vec<String> = requests.iter().map(|r| run(&srv, r)).collect();
    assert_eq!(srv.health()["peak_batch"], 1, "one at a time");

    let barrier = Barrier::new(16);
    let concurrent: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .map(|r| {
                let (srv, barrier) = (&srv, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    run(srv, r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    for (i, (a, b)) in sequential.iter().zip(&concurrent).enumerate() {
        assert_eq!(
            a, b,
            "request {i}: batched output differs from the one-at-a-time output"
        );
    }
    let h = srv.health();
    assert!(
        h["peak_batch"].as_u64().unwrap() >= 2,
        "requests were not batched together: {h}"
    );
    assert_eq!(h["completed_requests"], 32);
    assert_eq!(
        (h["active_requests"].as_u64(), h["queued"].as_u64()),
        (Some(0), Some(0))
    );
}

/// Starts a streamed request on a raw socket and returns it once the first token chunk arrived.
fn open_stream(srv: &Server, body: &Value) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.to_string();
    let head = format!("POST /v1/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", srv.addr, body.len());
    let mut w = s.try_clone().unwrap();
    w.write_all(head.as_bytes()).unwrap();
    w.write_all(body.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    while !line.contains("data: {") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "stream closed early");
    }
    (w, r)
}

fn wait_for(srv: &Server, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let h = srv.health();
        if cond(&h) {
            return h;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}: {h}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_disconnect_stops_generation() {
    let srv = Server::start(&rand_model(), &[]);
    let (w, r) = open_stream(
        &srv,
        &json!({"prompt": "Tell me a long story", "max_tokens": 500, "stream": true, "seed": 1}),
    );
    drop(r);
    w.shutdown(std::net::Shutdown::Both).unwrap();
    drop(w);
    let h = wait_for(&srv, "the cancelled request to leave the batch", |h| {
        h["active_requests"] == 0
    });
    assert_eq!(h["cancelled_requests"], 1, "{h}");
    let generated = h["generated_tokens"].as_u64().unwrap();
    eprintln!("disconnect: {generated} tokens generated of 500");
    assert!(
        generated < 400,
        "generation went on after the client left: {generated} tokens"
    );
    // the server carries on
    srv.complete(&json!({"prompt": "Hi", "max_tokens": 3}));
}

#[test]
fn full_queue_gets_503() {
    let srv = Server::start(&rand_model(), &["--max-batch", "1", "--max-queue", "1"]);
    // A runs (the batch of 1 is full), B waits in the queue (full), C is refused
    let (a_w, a_r) = open_stream(
        &srv,
        &json!({"prompt": "A", "max_tokens": 500, "stream": true}),
    );
    std::thread::scope(|s| {
        let b = s.spawn(|| srv.post("/v1/completions", &json!({"prompt": "B", "max_tokens": 3})));
        wait_for(&srv, "B to be queued", |h| h["queued"] == 1);
        let (status, _, body) = srv.call(
            "POST",
            "/v1/completions",
            Some(&json!({"prompt": "C", "max_tokens": 3}).to_string()),
            &[],
        );
        assert_eq!(status, 503, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_openai_error(&v, "503");
        assert_eq!(v["error"]["type"], "server_error");
        // A leaves; B gets its turn
        drop(a_r);
        a_w.shutdown(std::net::Shutdown::Both).unwrap();
        let (s, v) = b.join().unwrap();
        assert_eq!(s, 200, "{v}");
    });
}

#[test]
fn slow_clients_time_out() {
    let srv = Server::start(&tiny(), &["--read-timeout-secs", "1"]);
    // headers never finished: the connection is closed
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "a half-sent header held the connection"
    );
    // body never finished: 408
    let mut s = TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":").unwrap();
    let (status, _, body) = read_response(&mut BufReader::new(s));
    assert_eq!(status, 408, "{body}");
    assert_openai_error(&serde_json::from_str(&body).unwrap(), "408");
}

#[test]
fn ctrl_c_drains_in_flight_requests() {
    let mut srv = Server::start(&rand_model(), &[]);
    let (_w, mut r) = open_stream(
        &srv,
        &json!({"prompt": "Drain me", "max_tokens": 60, "stream": true}),
    );
    let pid = srv.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    // the stream still finishes
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    assert!(
        rest.contains("\"finish_reason\":\"length\"") && rest.contains("data: [DONE]"),
        "stream cut at shutdown: {rest}"
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = srv.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        TcpStream::connect(&srv.addr).is_err(),
        "still accepting after shutdown"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(srv.log().contains("all requests finished"), "{}", srv.log());
}

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Decodes JavaScript's `encodeURIComponent`.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("percent escape"));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

/// Headless Chromium opens the playground with `?prompt=…&autorun=1`: the page's own script types
/// the prompt into the box, fills the sliders, clicks Generate and streams the SSE response into
/// the page. When done it writes `STATE CHUNKS TEXT` into the tab title, which the test reads
/// through the DevTools HTTP endpoint `/json/list` (`--dump-dom` with `--virtual-time-budget` does
/// not wait for a streamed body: virtual time runs out while the page waits on the stream).
#[test]
fn playground_streams_in_headless_chromium() {
    let Some(chromium) = find_chromium() else {
        eprintln!("SKIPPED playground_streams_in_headless_chromium: chromium is not installed (apt-get install chromium)");
        return;
    };
    let srv = Server::start(&rand_model(), &[]);
    let want = text_of(&srv.complete(&json!({"prompt": "The quick brown fox", "max_tokens": 24, "temperature": 0, "top_p": 1})), 0);
    let profile = tempfile::tempdir().unwrap();
    let page =
        srv.url("/?prompt=The%20quick%20brown%20fox&temperature=0&top_p=1&max_tokens=24&autorun=1");
    let mut child = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&page)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let t0 = Instant::now();
    let result = (|| -> Result<String, String> {
        let port_file = profile.path().join("DevToolsActivePort");
        loop {
            if t0.elapsed() > Duration::from_secs(60) {
                return Err("timed out waiting for the page to finish".into());
            }
            std::thread::sleep(Duration::from_millis(100));
            let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.lines().next().map(str::to_string))
            else {
                continue;
            };
            let Ok(list) = ureq::get(&format!("http://127.0.0.1:{port}/json/list")).call() else {
                continue;
            };
            let list: Value = list.into_json().map_err(|e| e.to_string())?;
            let title = list
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["url"] == page.as_str())
                .and_then(|t| t["title"].as_str())
                .unwrap_or_default()
                .to_string();
            if title.starts_with("done ") || title.starts_with("error ") {
                return Ok(title);
            }
        }
    })();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let t1 = Instant::now();
    while child.try_wait().ok().flatten().is_none() && t1.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let title = result.unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", srv.log()));
    let mut parts = title.splitn(3, ' ');
    let (state, chunks, text) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        percent_decode(parts.next().unwrap_or_default()),
    );
    assert_eq!(state, "done", "the page reported: {title}");
    assert_eq!(chunks, "24", "one streamed chunk per token");
    assert_eq!(text, want, "the page shows the streamed text");
    assert!(
        srv.log().contains("POST /v1/completions 200"),
        "the page called the API"
    );
    assert!(srv.log().contains("GET / 200"), "the page was served");
}

/// Resident memory of the server process, KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(srv: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Median wall time of `n` identical short greedy completions.
fn median_latency(srv: &Server, n: usize) -> Duration {
    let mut t: Vec<Duration> = (0..n)
        .map(|_| {
            let t0 = Instant::now();
            srv.complete(&json!({"prompt": "Once upon a time", "max_tokens": 8, "temperature": 0}));
            t0.elapsed()
        })
        .collect();
    t.sort();
    t[n / 2]
}

/// Opens a stream, waits for its first token, and hangs up.
fn disconnect_mid_stream(srv: &Server, seed: u64) {
    let (w, r) = open_stream(
        srv,
        &json!({"prompt": "Tell me a long story", "max_tokens": 400, "stream": true, "seed": seed}),
    );
    drop(r);
    let _ = w.shutdown(std::net::Shutdown::Both);
}

#[test]
fn two_hundred_disconnects_free_their_slots_and_memory() {
    let srv = Server::start(&rand_model(), &[]);
    // warm up: buffers, caches and the allocator reach their steady size
    for i in 0..20 {
        disconnect_mid_stream(&srv, i);
    }
    wait_for(&srv, "the warm-up to drain", |h| h["active_requests"] == 0);
    let (lat0, rss0) = (median_latency(&srv, 5), rss_kib(&srv));
    for i in 0..200 {
        disconnect_mid_stream(&srv, 100 + i);
        // each hang-up frees its batch slot at once: never more than a couple in flight
        let h = srv.health();
        assert!(
            h["active_requests"].as_u64().unwrap() <= 2,
            "slots not freed: {h}"
        );
    }
    let h = wait_for(&srv, "the disconnected requests to leave", |h| {
        h["active_requests"] == 0
    });
    assert!(h["cancelled_requests"].as_u64().unwrap() >= 200, "{h}");
    let (lat1, rss1) = (median_latency(&srv, 5), rss_kib(&srv));
    eprintln!(
        "200 disconnects: latency {:.1} -> {:.1} ms, RSS {rss0} -> {rss1} KiB",
        lat0.as_secs_f64() * 1e3,
        lat1.as_secs_f64() * 1e3
    );
    assert!(
        rss1 as f64 <= rss0 as f64 * 1.05,
        "RSS grew from {rss0} to {rss1} KiB"
    );
    // not a speed test: only a gross slowdown (something left running) fails
    assert!(
        lat1 <= lat0 * 3 + Duration::from_millis(50),
        "latency {lat0:?} -> {lat1:?}"
    );
}

#[test]
fn slow_and_oversized_requests_get_quick_4xx_and_stall_nobody() {
    let srv = Server::start(
        &rand_model(),
        &["--read-timeout-secs", "2", "--max-body-bytes", "8388608"],
    );
    // slowloris: headers one byte every 100 ms; meanwhile others are served, and the slow
    // connection is cut when its header deadline passes
    let mut slow = TcpStream::connect(&srv.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let t0 = Instant::now();
    let dribble = std::thread::spawn(move || {
        for b in head.iter() {
            if slow.write_all(&[*b]).is_err() {
                return (true, t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut buf = [0u8; 256];
        // the server closes (EOF or reset) rather than waiting for the rest
        let cut = matches!(slow.read(&mut buf), Ok(0) | Err(_));
        (cut, t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    srv.complete(&json!({"prompt": "Hi", "max_tokens": 4}));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a slow client stalled another: {:?}",
        t.elapsed()
    );
    let (cut, when) = dribble.join().unwrap();
    assert!(cut, "the slow client was never cut off");
    assert!(when < Duration::from_secs(8), "cut only after {when:?}");

    // oversized, absurd and huge requests: each a 4xx, quickly
    let huge_text = " a".repeat(1_000_000);
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "9 MB body",
            format!("{{\"prompt\": \"{}\"}}", "x".repeat(9 << 20)),
            413,
        ),
        (
            "a prompt of 10^6 tokens",
            json!({"prompt": huge_text}).to_string(),
            400,
        ),
        (
            "n = 10^9",
            json!({"prompt": "a", "n": 1_000_000_000u64}).to_string(),
            400,
        ),
        (
            "max_tokens = 10^12",
            json!({"prompt": "a", "max_tokens": 1_000_000_000_000u64}).to_string(),
            400,
        ),
        (
            "logprobs = 10^6",
            json!({"prompt": "a", "logprobs": 1_000_000}).to_string(),
            400,
        ),
    ];
    for (what, body, want) in cases {
        let t = Instant::now();
        let (status, _, b) = srv.call("POST", "/v1/completions", Some(&body), &[]);
        let took = t.elapsed();
        eprintln!("{what}: {status} in {:.0} ms", took.as_secs_f64() * 1e3);
        assert_eq!(status, want, "{what}: {}", &b[..b.len().min(300)]);
        assert_openai_error(&serde_json::from_str(&b).unwrap(), what);
        assert!(took < Duration::from_secs(10), "{what} took {took:?}");
    }
    assert_eq!(srv.health()["status"], "ok");
}

/// One soak phase: 32 clients, each looping until `deadline` over a mix of good requests (6 in
/// 10, streamed or not; their latencies are returned), bad ones (2 in 10, must be 4xx) and
/// streams cancelled after their first token (2 in 10). Returns (latencies, bad, cancelled, 5xx).
fn soak_phase(srv: &Server, deadline: Instant, seed: u64) -> (Vec<Duration>, u64, u64, u64) {
    let results: Vec<(Vec<Duration>, u64, u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32u64)
            .map(|c| {
                s.spawn(move || {
                    let (mut good, mut bad, mut cancelled, mut five) =
                        (Vec::new(), 0u64, 0u64, 0u64);
                    let mut rng = gpt2::Rng::seed(seed * 100 + c);
                    while Instant::now() < deadline {
                        match rng.below(10) {
                            0..=5 => {
                                let t = Instant::now();
                                let body = json!({"prompt": "The meaning of life is", "max_tokens": 1 + rng.below(16), "seed": c, "stream": rng.below(2) == 1});
                                let (status, _, _) =
                                    srv.call("POST", "/v1/completions", Some(&body.to_string()), &[]);
                                five += u64::from(status >= 500);
                                assert_eq!(status, 200, "a good request failed");
                                good.push(t.elapsed());
                            }
                            6..=7 => {
                                let body = [
                                    "{\"prompt\":",
                                    "{\"prompt\": \"a\", \"temperature\": 9}",
                                    "[]",
                                    "{\"prompt\": \"a\", \"bogus\": 1}",
                                ][rng.below(4) as usize];
                                let (status, _, _) =
                                    srv.call("POST", "/v1/completions", Some(body), &[]);
                                five += u64::from(status >= 500);
                                assert!((400..500).contains(&status), "bad request got {status}");
                                bad += 1;
                            }
                            _ => {
                                disconnect_mid_stream(srv, rng.below(1000));
                                cancelled += 1;
                            }
                        }
                    }
                    (good, bad, cancelled, five)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    results.into_iter().fold((Vec::new(), 0, 0, 0), |mut a, r| {
        a.0.extend(r.0);
        (a.0, a.1 + r.1, a.2 + r.2, a.3 + r.3)
    })
}

/// A mix of good, bad and cancelled requests from 32 clients for `GPT2_SOAK_SECS` seconds
/// (default 15 in CI; the figures in the notes come from 300): no 5xx, every good request
/// answered, resident memory flat. The first third warms the server up to its steady size
/// (16 batch slots, connection buffers); resident memory at the soak's end may exceed the
/// warmed-up one by 5% in a soak of 2 minutes or more, 20% in a shorter one. Prints the 5xx
/// count, p50/p99 latency and RSS.
#[test]
fn soak_of_good_bad_and_cancelled_requests_from_32_clients() {
    let secs: u64 = std::env::var("GPT2_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let srv = Server::start(&rand_model(), &["--max-batch", "16"]);
    let rss0 = rss_kib(&srv);
    let t0 = Instant::now();
    soak_phase(&srv, t0 + Duration::from_secs(secs / 3), 1);
    wait_for(&srv, "the warm-up to drain", |h| h["active_requests"] == 0);
    let rss1 = rss_kib(&srv);
    let (mut lat, bad, cancelled, five) = soak_phase(&srv, t0 + Duration::from_secs(secs), 2);
    wait_for(&srv, "the soak to drain", |h| {
        h["active_requests"] == 0 && h["queued"] == 0
    });
    let rss2 = rss_kib(&srv);
    lat.sort();
    assert!(!lat.is_empty());
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    eprintln!(
        "soak {secs}s, 32 clients: after warm-up {} good (p50 {:.0} ms, p99 {:.0} ms), {bad} bad, {cancelled} cancelled, {five} 5xx; RSS {rss0} at start, {rss1} after warm-up, {rss2} at end (KiB)",
        lat.len(),
        pct(0.5),
        pct(0.99)
    );
    assert_eq!(five, 0);
    // a few seconds of warm-up do not always reach the steady size (allocator arenas grow with
    // the busiest moment): the CI soak catches gross leaks only, a long one (>= 2 minutes, the
    // figures in the notes) holds memory to 5%
    let tolerance = if secs >= 120 { 1.05 } else { 1.20 };
    assert!(
        rss2 as f64 <= rss1 as f64 * tolerance,
        "RSS grew from {rss1} to {rss2} KiB (allowed x{tolerance})"
    );
    assert_eq!(srv.health()["status"], "ok");
}
