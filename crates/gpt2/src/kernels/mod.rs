//! The GPT-2 math on plain slices: one file per layer kind, `*_forward` beside `*_backward`.
//!
//! Conventions (llm.c): outputs first, then saved state, then inputs, then dims; every argument
//! carries its shape in row-major order, and `debug_assert!`s check them. Backward functions
//! *accumulate* (`+=`) into their gradient outputs; callers zero gradients once per step.
//!
//! Dims legend: B batch, T time, C = n_embd, NH = n_head, HS = C/NH, V = vocab_size, N = B·T rows.

pub mod attention;
pub mod encoder;
pub mod gelu;
pub mod isa;
pub mod kquants;
pub mod layernorm;
pub mod math;
pub mod matmul;
#[cfg(target_arch = "x86_64")]
pub mod qdot_x86;
pub mod qint;
#[cfg(target_arch = "x86_64")]
pub mod qint_x86;
pub mod qmatmul;
pub mod quant;
pub mod residual;
pub mod softmax;
