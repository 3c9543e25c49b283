//! One module per subcommand.

pub mod average;
pub mod bench;
pub mod classify;
pub mod convert;
pub mod eval;
pub mod eval_tasks;
pub mod generate;
pub mod inspect;
pub mod prepare;
pub mod quantize;
pub mod score;
pub mod serve;
pub mod task_data;
pub mod tokenize;
pub mod tokenize_explain;
pub mod train;
