//! # gpt2: GPT-2 from first principles
//!
//! The real GPT-2 (Radford et al. 2019): pre-LayerNorm decoder blocks, masked multi-head
//! self-attention, GELU (tanh) MLP of width 4·C, learned positions, final `ln_f`, lm_head tied to
//! `wte`. Numerically the same as Hugging Face `transformers`' `GPT2LMHeadModel` on the same weights.
//!
//! Dims legend used throughout: B batch, T time, C = n_embd, NH = n_head, HS = C/NH,
//! V = vocab_size, L = n_layer, maxT = n_positions. Tensors are row-major.
//!
//! ## Example: load, tokenize, generate, score
//!
//! ```
//! use gpt2::generate::{generate, GenerateOptions};
//! use gpt2::sampling::SamplingParams;
//! use gpt2::tokenizer::{Special, Tokenizer};
//! use gpt2::{checkpoint, hub, Model};
//!
//! # fn main() -> gpt2::Result<()> {
//! // A folder with config.json + model.safetensors, or a hub id such as "gpt2"
//! // (downloaded once into the Hugging Face cache, then used offline).
//! let dir = hub::resolve("tests/fixtures/tiny", &hub::HubOptions::default())?;
//! let model = Model::new(checkpoint::load(&dir)?);
//! let tok = Tokenizer::gpt2()?;
//!
//! // This test model knows only ids < 1000; real GPT-2 checkpoints take any text.
//! let prompt = tok.encode("!(", Special::None);
//! assert_eq!(prompt, vec![0, 7]);
//!
//! // Tokens arrive one at a time, from a seeded sampler: same seed, same text, any machine.
//! let opts = GenerateOptions {
//!     max_new_tokens: 8,
//!     sampling: SamplingParams { temperature: 0.8, top_k: Some(40), ..Default::default() },
//!     seed: 42,
//!     ignore_eos: true,
//!     ..Default::default()
//! };
//! let mut ids = Vec::new();
//! for event in generate(&model, &tok, &prompt, &opts, 1)? {
//!     let event = event?;
//!     ids.push(event.token.id); // event.token.text is the UTF-8-safe text to print
//! }
//! assert_eq!(ids.len(), 8);
//!
//! // Scoring: log p(token | the ones before), from the logits of every position.
//! let logits = model.logits(&[0, 7, 12])?; // (T, V) row-major
//! let v = model.config().vocab_size;
//! let lp = gpt2::kernels::softmax::log_prob(&logits[..v], 7);
//! assert!(lp < 0.0);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
// Kernels take outputs, saved state, inputs and dims as separate slices (llm.c convention).
#![allow(clippy::too_many_arguments)]

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod generate;
pub mod gguf;
pub mod hub;
pub mod hugepages;
pub mod kernels;
pub mod model;
pub mod params;
pub mod rng;
pub mod sampling;
pub mod tasks;
pub mod tokenizer;
pub mod train;
pub mod trainer;
pub mod weights;

pub use config::{Gpt2Config, OutOfVocab};
pub use error::{Error, Result};
pub use model::{KvCache, Logits, Model};
pub use params::Params;
pub use rng::Rng;
