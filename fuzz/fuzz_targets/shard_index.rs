#![no_main]
//! `cargo +nightly fuzz run shard_index`: see `gpt2_fuzz::shard_index`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| gpt2_fuzz::shard_index(data));
