//! The fuzz targets' bodies, shared by the libFuzzer binaries in `fuzz_targets/` and by the
//! regression tests `crates/gpt2/tests/fuzz_regressions.rs` and
//! `crates/gpt2-cli/tests/fuzz_http.rs`, which replay every committed corpus and crash input on
//! the stable toolchain in CI.
include!("../targets.rs");

/// The server's request types, compiled from `gpt2-cli`'s sources (a binary crate).
#[allow(dead_code, unused_imports)]
#[path = "../../crates/gpt2-cli/src/server/api.rs"]
pub mod api;
/// The server's errors (`api` uses them as `super::error`).
#[allow(dead_code, unused_imports)]
#[path = "../../crates/gpt2-cli/src/server/error.rs"]
pub mod error;
/// Where `http_targets.rs` finds them.
pub mod server {
    pub use super::{api, error};
}

include!("../http_targets.rs");
