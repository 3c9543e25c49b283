//! The wire format: OpenAI's legacy Completions API (`POST /v1/completions`), request and response,
//! plus the small `/tokenize`, `/detokenize`, `/v1/models` and `/health` bodies.
//!
//! Reference: OpenAI's API reference for `completions.create` and the `openai` Python client's
//! `types/completion*.py` (what the client sends and parses). Unknown fields are rejected, as
//! OpenAI does ("Unrecognized request argument"), so a typo is a 400 and not a silent default.
//!
//! Deliberate differences, each named:
//! - `max_tokens: 0` is accepted only with `echo: true` (score the prompt without generating, as
//!   evaluation harnesses do); otherwise it must be in 1..=`--max-tokens-limit`.
//! - prompt + `max_tokens` may exceed the context: generation then stops at the context with
//!   finish reason `length` (OpenAI rejects such requests). A prompt longer than the context, or
//!   one that fills it with `max_tokens` > 0 (no room for a token), is a 400
//!   (`context_length_exceeded`); a completion is never empty without a reason.
//! - Extensions also accepted by vLLM: `top_k` and `repetition_penalty`.
//! - `best_of` (other than `n`), `logit_bias` and `suffix` are not supported and give a 400.

use std::collections::HashMap;

use gpt2::generate::{GenerateOptions, Penalties};
use gpt2::sampling::SamplingParams;
use gpt2::tokenizer::{Special, Tokenizer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::error::ApiError;

/// OpenAI's default `max_tokens` for completions.
pub const DEFAULT_MAX_TOKENS: usize = 16;
/// Most top-k log-probabilities per token (`logprobs`); OpenAI allows 5, vLLM 20.
pub const MAX_LOGPROBS: usize = 20;
/// Most stop strings (OpenAI's limit).
pub const MAX_STOP: usize = 4;

/// `POST /v1/completions` body, as OpenAI defines it (all fields but `model` optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// Any name is accepted (one model is served, and responses name it).
    pub model: Option<String>,
    /// A string, an array of strings, an array of token ids, or an array of such arrays.
    pub prompt: Option<Value>,
    /// New tokens per choice (default 16).
    pub max_tokens: Option<i64>,
    /// In [0, 2]; 0 is greedy (default 1).
    pub temperature: Option<f64>,
    /// In (0, 1] (default 1).
    pub top_p: Option<f64>,
    /// Choices per prompt (default 1).
    pub n: Option<i64>,
    /// A string or up to 4 strings; the text is cut before the first one that appears.
    pub stop: Option<Value>,
    /// Makes sampling reproducible: sample j of each prompt uses `sample_seed(seed, j)`.
    pub seed: Option<i64>,
    /// Server-sent events, one per token, then `data: [DONE]`.
    pub stream: Option<bool>,
    /// `{"include_usage": true}` adds a last chunk with `usage` and no choices.
    pub stream_options: Option<StreamOptions>,
    /// Return the log-probability of each token and the top `logprobs` alternatives (0..=20).
    pub logprobs: Option<i64>,
    /// Prepend the prompt to the text (and its tokens to `logprobs`).
    pub echo: Option<bool>,
    /// In [-2, 2]: subtracted from tokens already generated.
    pub presence_penalty: Option<f64>,
    /// In [-2, 2]: subtracted per appearance of tokens already generated.
    pub frequency_penalty: Option<f64>,
    /// Extension: CTRL repetition penalty over prompt and output, > 0 (1 is off).
    pub repetition_penalty: Option<f64>,
    /// Extension: keep the k most likely tokens (≥ 1; -1 or 0 is off).
    pub top_k: Option<i64>,
    /// Accepted only when equal to `n` (or 1).
    pub best_of: Option<i64>,
    /// Accepted only when empty.
    pub logit_bias: Option<HashMap<String, f64>>,
    /// Accepted only when empty.
    pub suffix: Option<String>,
    /// An end-user id; logged, otherwise unused.
    pub user: Option<String>,
}

/// `stream_options`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Send a final chunk with `usage`.
    pub include_usage: Option<bool>,
}

/// Server limits the request is checked against.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The model's context, maxT.
    pub n_ctx: usize,
    /// The model's vocabulary size, V.
    pub vocab_size: usize,
    /// Largest `max_tokens`.
    pub max_tokens: usize,
    /// Largest number of choices in one request (prompts × n): the batch size.
    pub max_choices: usize,
}

/// One prompt, tokenized, with the text echoed back.
#[derive(Debug, Clone)]
pub struct PromptIn {
    /// Token ids (may be empty: generation starts from `<|endoftext|>`).
    pub ids: Vec<u32>,
    /// The prompt text (decoded from ids for token prompts).
    pub text: String,
}

/// A validated completion request.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Prompts; choice `p·n + j` is sample j of prompt p.
    pub prompts: Vec<PromptIn>,
    /// Choices per prompt.
    pub n: usize,
    /// Engine options (max_new_tokens, sampling, stop, top_logprobs, seed).
    pub opts: GenerateOptions,
    /// Presence / frequency penalties.
    pub penalties: Penalties,
    /// Streamed as server-sent events.
    pub stream: bool,
    /// Send a usage chunk at the end of a stream.
    pub include_usage: bool,
    /// `Some(k)`: return logprobs with the top k alternatives.
    pub logprobs: Option<usize>,
    /// Prepend the prompt.
    pub echo: bool,
    /// The caller's user id, for the log.
    pub user: Option<String>,
}

impl Plan {
    /// Number of choices: prompts × n.
    pub fn choices(&self) -> usize {
        self.prompts.len() * self.n
    }
}

fn int_in(param: &str, v: i64, lo: i64, hi: i64) -> Result<i64, ApiError> {
    if v < lo || v > hi {
        return Err(ApiError::field(
            param,
            format!("`{param}` must be an integer in [{lo}, {hi}], got {v}"),
        ));
    }
    Ok(v)
}

fn float_in(param: &str, v: f64, lo: f64, lo_open: bool, hi: f64) -> Result<f32, ApiError> {
    let ok = v.is_finite() && if lo_open { v > lo } else { v >= lo } && v <= hi;
    if !ok {
        let open = if lo_open { "(" } else { "[" };
        return Err(ApiError::field(
            param,
            format!("`{param}` must be a number in {open}{lo}, {hi}], got {v}"),
        ));
    }
    Ok(v as f32)
}

/// A random seed for requests that do not give one.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Token ids from a JSON array; errors name `param`.
fn ids_from(param: &str, arr: &[Value], vocab: usize) -> Result<Vec<u32>, ApiError> {
    arr.iter()
        .enumerate()
        .map(|(i, v)| match v.as_u64() {
            Some(id) if (id as usize) < vocab => Ok(id as u32),
            Some(id) => Err(ApiError::field(
                param,
                format!(
                    "token id {id} at {param}[{i}] is out of range: the vocabulary has {vocab} ids"
                ),
            )),
            None => Err(ApiError::field(
                param,
                format!("{param}[{i}] must be a token id (a non-negative integer), got {v}"),
            )),
        })
        .collect()
}

/// Parses OpenAI's four prompt forms. Strings are encoded with `<|endoftext|>` recognised (OpenAI
/// does the same for this endpoint); token prompts are decoded for `echo`.
fn parse_prompts(
    prompt: Option<Value>,
    tok: &Tokenizer,
    vocab: usize,
) -> Result<Vec<PromptIn>, ApiError> {
    let text_prompt = |s: String| PromptIn {
        ids: tok.encode(&s, Special::AllowEndOfText),
        text: s,
    };
    let id_prompt = |ids: Vec<u32>| -> Result<PromptIn, ApiError> {
        let text = tok
            .decode(&ids)
            .map_err(|e| ApiError::field("prompt", e.to_string()))?;
        Ok(PromptIn { ids, text })
    };
    let bad = || {
        ApiError::field("prompt", "`prompt` must be a string, an array of strings, an array of token ids, or an array of arrays of token ids")
    };
    match prompt {
        None | Some(Value::Null) => Ok(vec![text_prompt(String::new())]),
        Some(Value::String(s)) => Ok(vec![text_prompt(s)]),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(ApiError::field(
                    "prompt",
                    "`prompt` must not be an empty array",
                ));
            }
            if items.iter().all(Value::is_string) {
                Ok(items
                    .into_iter()
                    .map(|v| text_prompt(v.as_str().unwrap_or_default().to_string()))
                    .collect())
            } else if items.iter().all(Value::is_number) {
                Ok(vec![id_prompt(ids_from("prompt", &items, vocab)?)?])
            } else if items.iter().all(Value::is_array) {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let arr = v.as_array().map(Vec::as_slice).unwrap_or_default();
                        if arr.is_empty() {
                            return Err(ApiError::field(
                                "prompt",
                                format!("prompt[{i}] must not be empty"),
                            ));
                        }
                        id_prompt(ids_from(&format!("prompt[{i}]"), arr, vocab)?)
                    })
                    .collect()
            } else {
                Err(bad())
            }
        }
        Some(_) => Err(bad()),
    }
}

fn parse_stop(stop: Option<Value>) -> Result<Vec<String>, ApiError> {
    let stops = match stop {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(ApiError::field(
                    "stop",
                    format!(
                        "`stop` must be a string or an array of strings, got {other} in the array"
                    ),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(ApiError::field(
                "stop",
                format!("`stop` must be a string or an array of strings, got {other}"),
            ))
        }
    };
    if stops.len() > MAX_STOP {
        return Err(ApiError::field(
            "stop",
            format!(
                "`stop` has {} strings; at most {MAX_STOP} are allowed",
                stops.len()
            ),
        ));
    }
    Ok(stops)
}

impl CompletionRequest {
    /// Checks every field against OpenAI's ranges and the server's `limits`, and tokenizes the prompts.
    ///
    /// Errors: a 400 naming the field for each out-of-range value, unsupported option, token id
    /// ≥ V, too many choices, or a prompt longer than the context (code `context_length_exceeded`).
    pub fn validate(self, limits: &Limits, tok: &Tokenizer) -> Result<Plan, ApiError> {
        // One model is served: any `model` name is accepted and responses give the served name.
        let _ = self.model;
        let echo = self.echo.unwrap_or(false);
        let max_tokens = match self.max_tokens {
            None => DEFAULT_MAX_TOKENS.min(limits.max_tokens),
            Some(0) if echo => 0,
            Some(0) => {
                return Err(ApiError::field(
                    "max_tokens",
                    format!("`max_tokens` must be an integer in [1, {}], got 0 (0 is allowed only with `echo: true`)", limits.max_tokens),
                ))
            }
            Some(m) => int_in("max_tokens", m, 1, limits.max_tokens as i64)? as usize,
        };
        let temperature = self
            .temperature
            .map_or(Ok(1.0), |t| float_in("temperature", t, 0.0, false, 2.0))?;
        let top_p = self
            .top_p
            .map(|p| float_in("top_p", p, 0.0, true, 1.0))
            .transpose()?;
        let top_k = match self.top_k {
            None | Some(-1) | Some(0) => None,
            Some(k) => Some(int_in("top_k", k, 1, limits.vocab_size as i64)? as usize),
        };
        let repetition_penalty = self.repetition_penalty.map_or(Ok(1.0), |r| {
            float_in("repetition_penalty", r, 0.0, true, f64::MAX)
        })?;
        let presence = self.presence_penalty.map_or(Ok(0.0), |p| {
            float_in("presence_penalty", p, -2.0, false, 2.0)
        })?;
        let frequency = self.frequency_penalty.map_or(Ok(0.0), |p| {
            float_in("frequency_penalty", p, -2.0, false, 2.0)
        })?;
        let n = self
            .n
            .map_or(Ok(1), |n| int_in("n", n, 1, limits.max_choices as i64))?
            as usize;
        if let Some(b) = self.best_of {
            if b != 1 && b != n as i64 {
                return Err(ApiError::field(
                    "best_of",
                    format!("`best_of` other than `n` is not supported (got best_of {b}, n {n})"),
                ));
            }
        }
        if self.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
            return Err(ApiError::field(
                "logit_bias",
                "`logit_bias` is not supported",
            ));
        }
        if self.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
            return Err(ApiError::field(
                "suffix",
                "`suffix` (insertion) is not supported by GPT-2",
            ));
        }
        let logprobs = self
            .logprobs
            .map(|k| int_in("logprobs", k, 0, MAX_LOGPROBS as i64))
            .transpose()?
            .map(|k| k as usize);
        let stop = parse_stop(self.stop)?;
        let stream = self.stream.unwrap_or(false);
        if self.stream_options.is_some() && !stream {
            return Err(ApiError::field(
                "stream_options",
                "`stream_options` is only allowed with `stream: true`",
            ));
        }
        let include_usage = self
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let prompts = parse_prompts(self.prompt, tok, limits.vocab_size)?;
        for (i, p) in prompts.iter().enumerate() {
            let which = if prompts.len() > 1 {
                format!("prompt {i} is")
            } else {
                "the prompt is".to_string()
            };
            if p.ids.len() > limits.n_ctx {
                return Err(ApiError::field(
                    "prompt",
                    format!("{which} {} tokens, longer than the model's maximum context length of {} tokens", p.ids.len(), limits.n_ctx),
                )
                .with_code("context_length_exceeded"));
            }
            if p.ids.len() == limits.n_ctx && max_tokens > 0 {
                return Err(ApiError::field(
                    "prompt",
                    format!("{which} {} tokens: it fills the model's maximum context length of {} tokens, leaving no room for `max_tokens` (prompt + completion tokens <= {}); shorten it, or send `max_tokens: 0` with `echo: true` to score it", p.ids.len(), limits.n_ctx, limits.n_ctx),
                )
                .with_code("context_length_exceeded"));
            }
        }
        if prompts.len() * n > limits.max_choices {
            return Err(ApiError::field(
                "n",
                format!(
                    "{} prompts × n {n} = {} choices; at most {} per request",
                    prompts.len(),
                    prompts.len() * n,
                    limits.max_choices
                ),
            ));
        }
        let sampling = SamplingParams {
            temperature,
            top_k,
            top_p,
            repetition_penalty,
        };
        let opts = GenerateOptions {
            max_new_tokens: max_tokens,
            sampling,
            seed: self.seed.map_or_else(fresh_seed, |s| s as u64),
            ignore_eos: false,
            stop,
            top_logprobs: logprobs.unwrap_or(0),
        };
        Ok(Plan {
            prompts,
            n,
            opts,
            penalties: Penalties {
                presence,
                frequency,
            },
            stream,
            include_usage,
            logprobs,
            echo,
            user: self.user,
        })
    }
}

/// `text_completion` object (also each streamed chunk, with `usage` absent).
#[derive(Debug, Serialize)]
pub struct Completion {
    /// `cmpl-…`, the same for every chunk of a stream.
    pub id: String,
    /// Always `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The model name.
    pub model: String,
    /// One per choice (one per chunk when streaming; none in the usage chunk).
    pub choices: Vec<Choice>,
    /// Token counts (absent from streamed token chunks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One choice.
#[derive(Debug, Serialize)]
pub struct Choice {
    /// Generated text (after the prompt when `echo`).
    pub text: String,
    /// `p·n + j`.
    pub index: usize,
    /// Present when the request asked for `logprobs`.
    pub logprobs: Option<Logprobs>,
    /// `stop` (end of text or a stop string) or `length`; `null` in a stream until the last chunk.
    pub finish_reason: Option<&'static str>,
}

/// OpenAI's legacy logprobs object: parallel arrays, one entry per token.
#[derive(Debug, Default, Serialize)]
pub struct Logprobs {
    /// Each token's text (`bytes:\xNN…` for tokens that are not valid UTF-8 on their own).
    pub tokens: Vec<String>,
    /// log p(token | context) in nats; `null` for the first prompt token.
    pub token_logprobs: Vec<Option<f32>>,
    /// The top alternatives of each position, most likely first; `null` when `logprobs` is 0.
    pub top_logprobs: Option<Vec<Option<TopLogprobs>>>,
    /// Character offset of each token in the returned text (echoed prompt included).
    pub text_offset: Vec<usize>,
}

impl Logprobs {
    /// Appends `other`'s entries (one streamed token's) to these.
    pub fn append(&mut self, other: &Logprobs) {
        self.tokens.extend_from_slice(&other.tokens);
        self.token_logprobs.extend_from_slice(&other.token_logprobs);
        self.text_offset.extend_from_slice(&other.text_offset);
        if let Some(top) = &other.top_logprobs {
            self.top_logprobs
                .get_or_insert_with(Vec::new)
                .extend_from_slice(top);
        }
    }
}

/// `{token: logprob}` in rank order (serialized as a JSON object that keeps the order).
#[derive(Debug, Default, Clone)]
pub struct TopLogprobs(pub Vec<(String, f32)>);

impl Serialize for TopLogprobs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    /// Prompt tokens, each prompt counted once.
    pub prompt_tokens: usize,
    /// Sampled tokens over every choice (an end-of-text token counts).
    pub completion_tokens: usize,
    /// The sum.
    pub total_tokens: usize,
}

/// OpenAI's spelling of a finish reason: `<|endoftext|>` and stop strings are both `stop`.
pub fn finish_reason(r: gpt2::generate::FinishReason) -> &'static str {
    match r {
        gpt2::generate::FinishReason::Length => "length",
        gpt2::generate::FinishReason::Eos | gpt2::generate::FinishReason::Stop => "stop",
    }
}

/// A token's text for `logprobs`: its bytes as UTF-8, or `bytes:\xNN…` (OpenAI's form) when the
/// token is part of a multi-byte character.
pub fn token_str(tok: &Tokenizer, id: u32) -> String {
    match tok.token_bytes(id) {
        Ok(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) => {
                let mut s = String::from("bytes:");
                for byte in b {
                    s.push_str(&format!("\\x{byte:02x}"));
                }
                s
            }
        },
        Err(_) => format!("<{id}>"),
    }
}

/// `POST /tokenize` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    /// The text.
    pub text: String,
    /// Encode `<|endoftext|>` in the text as the special id 50256 (default false).
    #[serde(default)]
    pub allow_special: bool,
}

/// `POST /detokenize` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeRequest {
    /// Token ids.
    pub tokens: Vec<u32>,
}
