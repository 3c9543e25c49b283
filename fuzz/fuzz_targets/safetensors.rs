#![no_main]
//! `cargo +nightly fuzz run safetensors`: see `gpt2_fuzz::safetensors`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gpt2_fuzz::safetensors(data));
