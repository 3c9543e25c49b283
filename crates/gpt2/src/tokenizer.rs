//! GPT-2's byte-level BPE (placeholder).

/// Tokenizer errors.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// Placeholder.
    #[error("{0}")]
    Other(String),
}
