#![no_main]
//! `cargo +nightly fuzz run gguf`: see `gpt2_fuzz::gguf`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gpt2_fuzz::gguf(data));
