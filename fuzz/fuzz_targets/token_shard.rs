#![no_main]
//! `cargo +nightly fuzz run token_shard`: see `gpt2_fuzz::token_shard`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gpt2_fuzz::token_shard(data));
