//! `POST /v1/completions`: validate, build one [`Sequence`] per choice, hand them to the batcher,
//! then either collect the events into one `text_completion` or stream them as server-sent events.
//!
//! Streaming follows OpenAI: one `data: {chunk}` per token (each chunk a `text_completion` with one
//! choice), the choice's last chunk carries `finish_reason`, an optional usage chunk
//! (`stream_options.include_usage`), then `data: [DONE]`. A failure midway is sent as
//! `data: {"error": …}`, which the `openai` client raises as an `APIError`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use gpt2::generate::{sample_seed, Sequence, TokenOut};
use gpt2::tokenizer::Tokenizer;
use gpt2::Model;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::api::{
    finish_reason, token_str, Choice, Completion, CompletionRequest, Logprobs, Plan, TopLogprobs,
    Usage,
};
use super::batcher::{Event, Job, SubmitError};
use super::error::ApiError;
use super::{blocking, read_json, App, LogNote};

/// The handler.
pub async fn completions(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    let req: CompletionRequest = read_json(&app, body).await?;
    // Tokenizing up to `--max-body-bytes` of text is CPU work: keep it off the async workers.
    let (limits, tok) = (app.limits.clone(), app.tok.clone());
    let plan = blocking(move || req.validate(&limits, &tok)).await?;
    let note = LogNote(format!(
        "prompts={} n={} prompt_tokens={} max_tokens={}{}{}",
        plan.prompts.len(),
        plan.n,
        plan.prompts.iter().map(|p| p.ids.len()).sum::<usize>(),
        plan.opts.max_new_tokens,
        if plan.stream { " stream" } else { "" },
        plan.user
            .as_deref()
            .map(|u| format!(" user={u:?}"))
            .unwrap_or_default(),
    ));
    let mut seqs = Vec::with_capacity(plan.choices());
    // Choice p·n + j is sample j of prompt p, seeded `sample_seed(seed, j)`: each prompt of an
    // array samples as if sent alone, and sample j matches `gpt2 generate --num-samples`.
    for prompt in &plan.prompts {
        for j in 0..plan.n {
            let seq = Sequence::new(
                &app.model,
                &prompt.ids,
                &plan.opts,
                sample_seed(plan.opts.seed, j),
            )
            .and_then(|s| s.with_penalties(plan.penalties))
            .map_err(|e| ApiError::invalid(None, e.to_string()))?;
            seqs.push(seq);
        }
    }
    let usage_prompt: usize = seqs.iter().step_by(plan.n).map(|s| s.prompt().len()).sum();
    // Prompt log-probabilities for echo + logprobs: a scoring pass off the async workers.
    let prompt_scores = if plan.echo && plan.logprobs.is_some() {
        let model = Arc::clone(&app.model);
        let k = plan.logprobs.unwrap_or(0);
        let prompts: Vec<Vec<u32>> = seqs
            .iter()
            .step_by(plan.n)
            .map(|s| s.prompt().to_vec())
            .collect();
        // one scoring pass at a time: each holds a (T, V) logits buffer
        let _permit = app.scoring.acquire().await.map_err(|_| {
            ApiError::server(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            )
        })?;
        let scores = blocking(move || {
            prompts
                .iter()
                .map(|ids| score_prompt(&model, ids, k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    ApiError::server(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("scoring the prompt failed: {e}"),
                    )
                })
        })
        .await?;
        Some(scores)
    } else {
        None
    };
    let (tx, rx) = unbounded_channel();
    app.batcher.submit(Job { seqs, tx }).map_err(|e| match e {
        SubmitError::QueueFull(q) => ApiError::overloaded(q),
        SubmitError::Stopped => ApiError::server(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        ),
    })?;
    let acc = Accumulator::new(
        &app,
        plan,
        app.model_name.clone(),
        usage_prompt,
        prompt_scores,
    );
    let mut res = if acc.plan.stream {
        Sse::new(sse_stream(acc, rx, app.request_timeout)).into_response()
    } else {
        match tokio::time::timeout(app.request_timeout, collect(acc, rx)).await {
            Ok(r) => axum::Json(r?).into_response(),
            Err(_) => {
                return Err(ApiError::server(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "the request did not finish within {} s",
                        app.request_timeout.as_secs()
                    ),
                ))
            }
        }
    };
    res.extensions_mut().insert(note);
    Ok(res)
}

/// Prompt token log-probabilities for `echo` + `logprobs`: entry t is `log p(ids[t] | ids[..t])`
/// and its top-k, from one full forward pass; entry 0 has none (OpenAI's `null`).
type PromptScore = Vec<Option<(f32, Vec<(u32, f32)>)>>;

fn score_prompt(model: &Model, ids: &[u32], k: usize) -> gpt2::Result<PromptScore> {
    let v = model.config().vocab_size;
    let logits = model.logits(ids)?;
    let mut lp = vec![0f32; v];
    let mut out: PromptScore = vec![None];
    for t in 1..ids.len() {
        gpt2::sampling::log_softmax(&logits[(t - 1) * v..t * v], &mut lp);
        let mut top: Vec<(u32, f32)> = Vec::new();
        if k > 0 {
            let mut idx: Vec<u32> = (0..v as u32).collect();
            idx.select_nth_unstable_by(k.min(v) - 1, |&a, &b| {
                lp[b as usize].total_cmp(&lp[a as usize])
            });
            top = idx[..k.min(v)]
                .iter()
                .map(|&i| (i, lp[i as usize]))
                .collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        }
        out.push(Some((lp[ids[t] as usize], top)));
    }
    Ok(out)
}

/// Per-choice state while events arrive.
#[derive(Default)]
struct ChoiceAcc {
    text: String,
    /// Characters in `text` (for `text_offset`).
    chars: usize,
    logprobs: Logprobs,
    finish: Option<&'static str>,
    tokens: usize,
}

/// Builds responses and chunks from engine events.
struct Accumulator {
    tok: Tokenizer,
    plan: Plan,
    id: String,
    created: u64,
    model: String,
    choices: Vec<ChoiceAcc>,
    prompt_tokens: usize,
    prompt_scores: Option<Vec<PromptScore>>,
    started: Instant,
}

impl Accumulator {
    fn new(
        app: &App,
        plan: Plan,
        model: String,
        prompt_tokens: usize,
        prompt_scores: Option<Vec<PromptScore>>,
    ) -> Self {
        let choices = (0..plan.choices()).map(|_| ChoiceAcc::default()).collect();
        Self {
            tok: app.tok.clone(),
            id: app.next_completion_id(),
            created: super::unix_now(),
            model,
            choices,
            prompt_tokens,
            prompt_scores,
            plan,
            started: Instant::now(),
        }
    }

    fn top_map(&self, top: &[(u32, f32)]) -> TopLogprobs {
        TopLogprobs(
            top.iter()
                .map(|&(id, lp)| (token_str(&self.tok, id), lp))
                .collect(),
        )
    }

    /// The echoed prompt of `choice` as text plus, with `logprobs`, its token entries. Returns the
    /// text and the logprobs entries to prepend.
    fn echo(&self, choice: usize) -> (String, Option<Logprobs>) {
        let p = choice / self.plan.n;
        let text = self.plan.prompts[p].text.clone();
        let lp = self.prompt_scores.as_ref().map(|scores| {
            let mut out = Logprobs::default();
            let ids = &self.plan.prompts[p].ids;
            let mut offset = 0;
            let mut tops = Vec::new();
            for (t, &id) in ids.iter().enumerate() {
                let s = token_str(&self.tok, id);
                out.tokens.push(s);
                out.text_offset.push(offset);
                offset += self.tok.decode(&[id]).map_or(0, |d| d.chars().count());
                let entry = scores[p].get(t).cloned().flatten();
                out.token_logprobs.push(entry.as_ref().map(|e| e.0));
                tops.push(entry.map(|e| self.top_map(&e.1)));
            }
            if self.plan.logprobs.unwrap_or(0) > 0 {
                out.top_logprobs = Some(tops);
            }
            out
        });
        (text, lp)
    }

    /// Starts every choice with its echoed prompt (non-streaming).
    fn start_echo(&mut self) {
        if !self.plan.echo {
            return;
        }
        for c in 0..self.choices.len() {
            let (text, lp) = self.echo(c);
            let acc = &mut self.choices[c];
            acc.chars = text.chars().count();
            acc.text = text;
            if let Some(lp) = lp {
                acc.logprobs = lp;
            }
        }
    }

    /// Applies one event to its choice; returns that choice's new text, logprobs entries and
    /// finish reason (for a streamed chunk).
    fn apply(
        &mut self,
        choice: usize,
        token: Option<&TokenOut>,
        finished: Option<&'static str>,
    ) -> Result<(String, Option<Logprobs>, Option<&'static str>), ApiError> {
        let k = self.plan.logprobs;
        // this token's logprobs entry (before borrowing the choice mutably)
        let entry = match (token, k) {
            (Some(t), Some(k)) => Some(Logprobs {
                tokens: vec![token_str(&self.tok, t.id)],
                token_logprobs: vec![Some(t.logprob)],
                top_logprobs: (k > 0).then(|| vec![Some(self.top_map(&t.top))]),
                text_offset: vec![self.choices.get(choice).map_or(0, |c| c.chars)],
            }),
            _ => None,
        };
        let Some(acc) = self.choices.get_mut(choice) else {
            return Err(ApiError::server(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("engine sent an unknown choice {choice}"),
            ));
        };
        let mut text = String::new();
        if let Some(t) = token {
            acc.tokens += 1;
            acc.chars += t.text.chars().count();
            acc.text.push_str(&t.text);
            text.clone_from(&t.text);
        }
        if let Some(e) = &entry {
            acc.logprobs.append(e);
        }
        if finished.is_some() {
            acc.finish = finished;
        }
        Ok((text, entry, finished))
    }

    fn all_done(&self) -> bool {
        self.choices.iter().all(|c| c.finish.is_some())
    }

    fn usage(&self) -> Usage {
        let completion_tokens = self.choices.iter().map(|c| c.tokens).sum();
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens,
            total_tokens: self.prompt_tokens + completion_tokens,
        }
    }

    fn chunk(&self, choices: Vec<Choice>, usage: Option<Usage>) -> Completion {
        Completion {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        }
    }
}

/// The non-streaming path: every event into one response.
async fn collect(
    mut acc: Accumulator,
    mut rx: UnboundedReceiver<Event>,
) -> Result<Completion, ApiError> {
    acc.start_echo();
    while !acc.all_done() {
        match rx.recv().await {
            Some(Event::Token { choice, token }) => {
                let fin = token.finished.map(|f| finish_reason(f.reason));
                acc.apply(choice, Some(&token), fin)?;
            }
            Some(Event::Done { choice, finished }) => {
                acc.apply(choice, None, Some(finish_reason(finished.reason)))?;
            }
            Some(Event::Error(msg)) => {
                return Err(ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, msg))
            }
            None => {
                return Err(ApiError::server(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the engine stopped before the request finished",
                ))
            }
        }
    }
    let usage = acc.usage();
    let want_lp = acc.plan.logprobs.is_some();
    let choices = std::mem::take(&mut acc.choices)
        .into_iter()
        .enumerate()
        .map(|(index, c)| Choice {
            text: c.text,
            index,
            logprobs: want_lp.then_some(c.logprobs),
            finish_reason: c.finish,
        })
        .collect();
    Ok(acc.chunk(choices, Some(usage)))
}

/// Where a stream is.
enum Phase {
    Echo(usize),
    Tokens,
    Usage,
    Done,
    End,
}

struct StreamState {
    acc: Accumulator,
    rx: UnboundedReceiver<Event>,
    phase: Phase,
    deadline: tokio::time::Instant,
}

fn data(value: &impl serde::Serialize) -> SseEvent {
    SseEvent::default().data(
        serde_json::to_string(value)
            .unwrap_or_else(|e| format!("{{\"error\":{{\"message\":\"serialize: {e}\"}}}}")),
    )
}

/// The streaming path: one SSE event per token. Dropping the stream (client gone) drops `rx`,
/// which the engine notices at its next step.
fn sse_stream(
    acc: Accumulator,
    rx: UnboundedReceiver<Event>,
    timeout: Duration,
) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    let phase = if acc.plan.echo {
        Phase::Echo(0)
    } else {
        Phase::Tokens
    };
    let state = StreamState {
        acc,
        rx,
        phase,
        deadline: tokio::time::Instant::now() + timeout,
    };
    stream::unfold(state, |mut st| async move {
        let ev = next_event(&mut st).await?;
        Some((Ok(ev), st))
    })
}

async fn next_event(st: &mut StreamState) -> Option<SseEvent> {
    loop {
        match st.phase {
            Phase::Echo(c) => {
                if c >= st.acc.choices.len() {
                    st.phase = Phase::Tokens;
                    continue;
                }
                st.phase = Phase::Echo(c + 1);
                let (text, lp) = st.acc.echo(c);
                st.acc.choices[c].chars = text.chars().count();
                let choice = Choice {
                    text,
                    index: c,
                    logprobs: lp,
                    finish_reason: None,
                };
                return Some(data(&st.acc.chunk(vec![choice], None)));
            }
            Phase::Tokens => {
                if st.acc.all_done() {
                    st.phase = if st.acc.plan.include_usage {
                        Phase::Usage
                    } else {
                        Phase::Done
                    };
                    continue;
                }
                let ev = match tokio::time::timeout_at(st.deadline, st.rx.recv()).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        st.phase = Phase::End;
                        let secs = st.acc.started.elapsed().as_secs();
                        return Some(data(
                            &ApiError::server(
                                StatusCode::GATEWAY_TIMEOUT,
                                format!("the request did not finish within {secs} s"),
                            )
                            .body(),
                        ));
                    }
                };
                let (choice, res) = match ev {
                    Some(Event::Token { choice, token }) => {
                        let fin = token.finished.map(|f| finish_reason(f.reason));
                        (choice, st.acc.apply(choice, Some(&token), fin))
                    }
                    Some(Event::Done { choice, finished }) => (
                        choice,
                        st.acc
                            .apply(choice, None, Some(finish_reason(finished.reason))),
                    ),
                    Some(Event::Error(msg)) => (
                        0,
                        Err(ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, msg)),
                    ),
                    None => (
                        0,
                        Err(ApiError::server(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the engine stopped before the request finished",
                        )),
                    ),
                };
                match res {
                    Ok((text, logprobs, finish_reason)) => {
                        let choice = Choice {
                            text,
                            index: choice,
                            logprobs,
                            finish_reason,
                        };
                        return Some(data(&st.acc.chunk(vec![choice], None)));
                    }
                    Err(e) => {
                        st.phase = Phase::End;
                        return Some(data(&e.body()));
                    }
                }
            }
            Phase::Usage => {
                st.phase = Phase::Done;
                let usage = st.acc.usage();
                return Some(data(&st.acc.chunk(Vec::new(), Some(usage))));
            }
            Phase::Done => {
                st.phase = Phase::End;
                return Some(SseEvent::default().data("[DONE]"));
            }
            Phase::End => return None,
        }
    }
}
