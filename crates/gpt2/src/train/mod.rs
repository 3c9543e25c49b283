//! Training GPT-2: forward and backward over a batch with every activation kept, AdamW, the
//! learning-rate schedule and gradient clipping. The trainer loop, data loading and checkpoints
//! build on this API; this module knows nothing of files or terminals.
//!
//! One step (with gradient accumulation over k micro-batches):
//!
//! ```text
//! zero_grad(&mut grads);
//! for each micro-batch: forward(&params, &mut acts, x, y, Some(&mut rng)); backward(.., 1/k);
//! clip_grad_norm(&mut grads, 1.0);
//! opt.step(&mut params, &grads, lr_at(&schedule, lr, step, total), &adamw_cfg);
//! ```
//!
//! Reference: llm.c `train_gpt2.c` (kernels, `gpt2_forward`/`gpt2_backward`, `gpt2_update`),
//! checked against PyTorch fixtures (`tests/train_parity.rs`).

pub mod activations;
pub mod adamw;
pub mod clip;
pub mod dropout;
pub mod passes;
pub mod schedule;

pub use activations::Activations;
pub use adamw::{AdamW, AdamWConfig};
pub use clip::{average_and_clip, clip_grad_norm, grad_norm};
pub use dropout::Dropout;
pub use passes::{backward, backward_hidden, backward_weighted, forward, forward_hidden};
pub use schedule::{lr_at, LrSchedule};

use rayon::prelude::*;

use crate::params::Params;

/// Sets every gradient to zero (in parallel); call once per optimizer step, before the first
/// micro-batch's [`backward`].
pub fn zero_grad(grads: &mut Params) {
    grads.data.par_chunks_mut(1 << 16).for_each(|c| c.fill(0.0));
}
