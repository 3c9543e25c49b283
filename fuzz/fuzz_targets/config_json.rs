#![no_main]
//! `cargo +nightly fuzz run config_json`: see `gpt2_fuzz::config_json`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gpt2_fuzz::config_json(data));
