//! The crate's error type: one variant per module's error, each naming the file, field or value at fault.

/// Every error the `gpt2` library returns. The library never panics on bad input and never exits.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad or unreadable `config.json`, or an unknown preset.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A bad, truncated or mismatched checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// A model name that could not be resolved or downloaded.
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    /// Tokenizer failures (bad ids, bad special-token use).
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    /// A bad token shard or data file.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A training run that cannot start or continue.
    #[error(transparent)]
    Train(Box<crate::trainer::TrainError>),
    /// Bad task data (classification, prompt/completion files) or a model unfit for the task.
    #[error(transparent)]
    Task(#[from] crate::tasks::TaskError),
    /// Invalid inputs to the model or the sampler (token ids ≥ V, prompts longer than maxT, ...).
    #[error("{0}")]
    Invalid(String),
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::trainer::TrainError> for Error {
    fn from(e: crate::trainer::TrainError) -> Self {
        Error::Train(Box::new(e))
    }
}
