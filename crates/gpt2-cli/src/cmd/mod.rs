//! One module per subcommand.

pub mod bench;
pub mod convert;
pub mod eval;
pub mod generate;
pub mod inspect;
pub mod prepare;
pub mod score;
pub mod serve;
pub mod tokenize;
pub mod tokenize_explain;
pub mod train;
