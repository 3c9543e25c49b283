//! Model names: local folders and Hugging Face hub ids (placeholder).

/// Errors from resolving a model name.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Placeholder.
    #[error("{0}")]
    Other(String),
}
