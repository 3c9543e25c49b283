#![no_main]
//! `cargo +nightly fuzz run tokenizer`: see `gpt2_fuzz::tokenizer`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gpt2_fuzz::tokenizer(data));
