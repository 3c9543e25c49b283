#![no_main]
//! `cargo +nightly fuzz run http_body`: see `gpt2_fuzz::http_body`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gpt2_fuzz::http_body(data));
