//! Hugging Face safetensors checkpoints (placeholder; filled in by the checkpoint work).

/// Errors from reading or writing checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Placeholder.
    #[error("{0}")]
    Other(String),
}
