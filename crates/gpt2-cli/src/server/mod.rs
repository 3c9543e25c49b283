//! `gpt2 serve`: an OpenAI-compatible HTTP server over the `gpt2` engine (axum on tokio).
//!
//! ```text
//! client ─HTTP─► hyper (header timeout) ─► log ─► auth ─► handler ─Job─► engine thread (owns the model)
//!        ◄─JSON / SSE──────────────────────────────────── handler ◄─Event── step() over the whole batch
//! ```
//!
//! - `completions`: `POST /v1/completions` (OpenAI's legacy Completions API, streaming or not);
//! - `batcher`: the engine thread and its continuous-batching loop;
//! - `api`: request / response types and validation; `error`: OpenAI-shaped error bodies;
//! - `playground.html`: the page at `/` (plain HTML + JS, compiled into the binary).
//!
//! The library stays free of HTTP: this module only calls `Sequence::new` and `step`.
//! Connections are served by our own accept loop on hyper (not `axum::serve`) so that a header
//! read timeout applies (axum's `serve` sets no timer, so a client that never finishes its headers
//! would hold its connection forever). Ctrl-C or SIGTERM stops accepting, lets in-flight requests
//! finish (up to the request timeout), then exits; a second Ctrl-C exits at once.

mod api;
mod batcher;
mod completions;
mod error;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use gpt2::tokenizer::{Special, Tokenizer};
use gpt2::Model;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tower::ServiceExt;

use api::{DetokenizeRequest, Limits, TokenizeRequest};
use batcher::Batcher;
use error::ApiError;

/// Server settings (from `gpt2 serve`'s flags).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (port 0 picks a free port; the bound address is logged).
    pub addr: SocketAddr,
    /// The model name reported in responses and `/v1/models`.
    pub model_name: String,
    /// Most sequences decoded together (also the most choices in one request).
    pub max_batch: usize,
    /// Most requests waiting for a batch slot; more get 503.
    pub max_queue: usize,
    /// Largest `max_tokens` (clamped to the model's context).
    pub max_tokens_limit: usize,
    /// Required `Authorization: Bearer` key, if any.
    pub api_key: Option<String>,
    /// Largest request body in bytes (more: 413).
    pub max_body_bytes: usize,
    /// Time allowed to receive a request's headers, and separately its body (then 408).
    pub read_timeout: Duration,
    /// Time allowed for a whole generation (then 504, or an error event on a stream); also the
    /// longest the server waits for in-flight requests at shutdown.
    pub request_timeout: Duration,
}

/// Shared state of the handlers.
pub struct App {
    model: Arc<Model>,
    tok: Tokenizer,
    batcher: Batcher,
    limits: Limits,
    model_name: String,
    api_key: Option<String>,
    max_body_bytes: usize,
    read_timeout: Duration,
    request_timeout: Duration,
    started: u64,
    next_id: AtomicU64,
    playground: String,
    /// Admits one `echo` + `logprobs` prompt-scoring pass at a time.
    scoring: tokio::sync::Semaphore,
}

impl App {
    /// `cmpl-<start time>-<counter>`: unique within and across runs.
    fn next_completion_id(&self) -> String {
        format!(
            "cmpl-{:x}{:06x}",
            self.started,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Note a handler attaches to its response for the request log line.
#[derive(Debug, Clone)]
pub struct LogNote(pub String);

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs CPU-bound `f` (tokenizing, scoring) on tokio's blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::server(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("worker task failed: {e}"),
        )
    })?
}

/// Reads a JSON body: at most `max_body_bytes` (413), within `read_timeout` (408), parsed into `T`
/// with errors that name the field (400).
async fn read_json<T: serde::de::DeserializeOwned>(app: &App, body: Body) -> Result<T, ApiError> {
    let limit = app.max_body_bytes;
    let too_big = || {
        ApiError::invalid(
            None,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::invalid(None, format!("could not read the request body: {e}"))
            })?;
            if buf.len() + chunk.len() > limit {
                return Err(too_big());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    };
    let bytes = tokio::time::timeout(app.read_timeout, read)
        .await
        .map_err(|_| {
            ApiError::invalid(
                None,
                format!(
                    "the request body did not arrive within {} s",
                    app.read_timeout.as_secs()
                ),
            )
            .with_status(StatusCode::REQUEST_TIMEOUT)
        })??;
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            None,
            "the request body is empty: send a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    let value = serde_path_to_error::deserialize(de).map_err(error::from_json_error)?;
    Ok(value)
}

/// The router: every endpoint, the auth and log layers, OpenAI-shaped 404 / 405.
fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(playground))
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/models/{id}", get(model_one))
        .route("/v1/completions", post(completions::completions))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .fallback(|req: Request| async move {
            ApiError::not_found(format!("no endpoint {} {}", req.method(), req.uri().path()))
        })
        .method_not_allowed_fallback(|req: Request| async move {
            ApiError::invalid(
                None,
                format!(
                    "method {} is not allowed on {}",
                    req.method(),
                    req.uri().path()
                ),
            )
            .with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(middleware::from_fn_with_state(Arc::clone(&app), auth))
        .layer(middleware::from_fn(log_request))
        .with_state(app)
}

/// `GET /`: the playground page.
async fn playground(State(app): State<Arc<App>>) -> Html<String> {
    Html(app.playground.clone())
}

/// `GET /health`: liveness plus the batcher's counters.
async fn health(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    let s = &app.batcher.stats;
    Json(json!({
        "status": "ok",
        "model": app.model_name,
        "n_ctx": app.limits.n_ctx,
        "max_batch": app.limits.max_choices,
        "queued": s.queued.load(Ordering::Relaxed),
        "active_requests": s.active_jobs.load(Ordering::Relaxed),
        "active_sequences": s.active_seqs.load(Ordering::Relaxed),
        "peak_batch": s.peak_batch.load(Ordering::Relaxed),
        "steps": s.steps.load(Ordering::Relaxed),
        "generated_tokens": s.tokens.load(Ordering::Relaxed),
        "completed_requests": s.completed.load(Ordering::Relaxed),
        "cancelled_requests": s.cancelled.load(Ordering::Relaxed),
    }))
}

fn model_object(app: &App) -> serde_json::Value {
    json!({"id": app.model_name, "object": "model", "created": app.started, "owned_by": "gpt2", "max_model_len": app.limits.n_ctx})
}

/// `GET /v1/models`.
async fn models(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(json!({"object": "list", "data": [model_object(&app)]}))
}

/// `GET /v1/models/{id}`.
async fn model_one(
    State(app): State<Arc<App>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if id != app.model_name {
        return Err(ApiError::not_found(format!(
            "the model `{id}` does not exist; this server serves `{}`",
            app.model_name
        ))
        .with_code("model_not_found"));
    }
    Ok(Json(model_object(&app)))
}

/// `POST /tokenize`: `{"text"}` → `{"tokens", "count"}`.
async fn tokenize(
    State(app): State<Arc<App>>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: TokenizeRequest = read_json(&app, body).await?;
    let special = if req.allow_special {
        Special::AllowEndOfText
    } else {
        Special::None
    };
    let tok = app.tok.clone();
    let tokens = blocking(move || Ok(tok.encode(&req.text, special))).await?;
    Ok(Json(json!({"count": tokens.len(), "tokens": tokens})))
}

/// `POST /detokenize`: `{"tokens"}` → `{"text"}`.
async fn detokenize(
    State(app): State<Arc<App>>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: DetokenizeRequest = read_json(&app, body).await?;
    let text = app
        .tok
        .decode(&req.tokens)
        .map_err(|e| ApiError::field("tokens", e.to_string()))?;
    Ok(Json(json!({"text": text})))
}

/// Compares in time independent of where the strings differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// With `--api-key`, every endpoint but `/` and `/health` needs `Authorization: Bearer KEY`.
async fn auth(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(key) = &app.api_key else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/" || path == "/health" {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match given.and_then(|v| v.strip_prefix("Bearer ")) {
        Some(k) if constant_time_eq(k.trim().as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::unauthorized("incorrect API key provided").into_response(),
        None => ApiError::unauthorized("missing API key: send `Authorization: Bearer KEY`")
            .into_response(),
    }
}

/// The peer address, put in each request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// One line per request on stderr: time, peer, method, path, status, latency (to the response
/// head: for a stream, the time to its start), and the handler's note.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "-".to_string(), |p| p.0.to_string());
    let res = next.run(req).await;
    let note = res
        .extensions()
        .get::<LogNote>()
        .map(|n| format!(" {}", n.0))
        .unwrap_or_default();
    eprintln!(
        "{} {peer} {method} {path} {} {:.1}ms{note}",
        timestamp(),
        res.status().as_u16(),
        start.elapsed().as_secs_f64() * 1e3
    );
    res
}

/// UTC `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's days-to-civil; no date crate needed).
fn timestamp() -> String {
    let secs = unix_now();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Escapes text for HTML.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runs the server until Ctrl-C / SIGTERM, then drains in-flight requests and returns.
pub fn run(cfg: ServerConfig, model: Model) -> anyhow::Result<()> {
    let tok = Tokenizer::gpt2()?;
    let model = Arc::new(model);
    let n_ctx = model.config().n_positions;
    let limits = Limits {
        n_ctx,
        vocab_size: model.config().vocab_size,
        max_tokens: cfg.max_tokens_limit.clamp(1, n_ctx),
        max_choices: cfg.max_batch.max(1),
    };
    let (batcher, engine) = Batcher::start(
        Arc::clone(&model),
        tok.clone(),
        cfg.max_batch,
        cfg.max_queue,
    )
    .context("starting the engine thread")?;
    let playground = include_str!("playground.html")
        .replace("__MODEL__", &html_escape(&cfg.model_name))
        .replace("__MAX_TOKENS__", &limits.max_tokens.to_string())
        .replace("__AUTH__", if cfg.api_key.is_some() { "1" } else { "0" });
    let app = Arc::new(App {
        model,
        tok,
        batcher,
        limits,
        model_name: cfg.model_name.clone(),
        api_key: cfg.api_key.clone(),
        max_body_bytes: cfg.max_body_bytes,
        read_timeout: cfg.read_timeout,
        request_timeout: cfg.request_timeout,
        started: unix_now(),
        next_id: AtomicU64::new(0),
        playground,
        scoring: tokio::sync::Semaphore::new(1),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = rt.block_on(serve(cfg, app));
    // Connections still open after the drain timeout are dropped here, which cancels their jobs.
    rt.shutdown_timeout(Duration::from_secs(1));
    let _ = engine.join();
    result
}

async fn serve(cfg: ServerConfig, app: Arc<App>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .with_context(|| format!("binding {}", cfg.addr))?;
    let local = listener.local_addr()?;
    eprintln!(
        "gpt2 serve: listening on http://{local} (model {}, n_ctx {}, max batch {}, max queue {}{})",
        cfg.model_name,
        app.limits.n_ctx,
        cfg.max_batch,
        cfg.max_queue,
        if cfg.api_key.is_some() { ", API key required" } else { "" }
    );
    let router = router(app);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(cfg.read_timeout)
        .keep_alive(true);
    let mut signal = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // e.g. EMFILE: back off instead of spinning
                        eprintln!("gpt2 serve: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(Peer(peer));
                    router.clone().oneshot(req.map(Body::new))
                });
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = &mut signal => break,
        }
    }
    drop(listener);
    eprintln!("gpt2 serve: shutting down: finishing in-flight requests (Ctrl-C again to exit now)");
    let drain = cfg.request_timeout + Duration::from_secs(1);
    tokio::select! {
        _ = graceful.shutdown() => eprintln!("gpt2 serve: all requests finished; bye"),
        _ = tokio::time::sleep(drain) => eprintln!("gpt2 serve: requests still running after {} s; exiting", drain.as_secs()),
        _ = tokio::signal::ctrl_c() => eprintln!("gpt2 serve: second Ctrl-C; exiting now"),
    }
    Ok(())
}
