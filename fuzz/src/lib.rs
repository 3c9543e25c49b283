//! The fuzz targets' bodies, shared by the libFuzzer binaries in `fuzz_targets/` and by the
//! regression test `crates/gpt2/tests/fuzz_regressions.rs`, which replays every committed corpus
//! and crash input on the stable toolchain in CI.
include!("../targets.rs");
