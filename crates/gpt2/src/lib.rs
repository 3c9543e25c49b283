//! # gpt2: GPT-2 from first principles
//!
//! The real GPT-2 (Radford et al. 2019): pre-LayerNorm decoder blocks, masked multi-head
//! self-attention, GELU (tanh) MLP of width 4·C, learned positions, final `ln_f`, lm_head tied to
//! `wte`. Numerically the same as Hugging Face `transformers`' `GPT2LMHeadModel` on the same weights.
//!
//! Dims legend used throughout: B batch, T time, C = n_embd, NH = n_head, HS = C/NH,
//! V = vocab_size, L = n_layer, maxT = n_positions. Tensors are row-major.
#![warn(missing_docs)]
// Kernels take outputs, saved state, inputs and dims as separate slices (llm.c convention).
#![allow(clippy::too_many_arguments)]

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod generate;
pub mod hub;
pub mod kernels;
pub mod model;
pub mod params;
pub mod rng;
pub mod sampling;
pub mod tasks;
pub mod tokenizer;
pub mod train;
pub mod trainer;

pub use config::Gpt2Config;
pub use error::{Error, Result};
pub use model::{KvCache, Logits, Model};
pub use params::Params;
pub use rng::Rng;
