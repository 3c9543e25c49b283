//! GPT-2 in GGUF: the metadata llama.cpp's `convert_hf_to_gguf.py` writes for GPT-2, read into a
//! [`Gpt2Config`] and checked against our tokenizer, and produced from them for the writer.
//!
//! Every key is a constant in [`keys`], the one list to adjust if llama.cpp changes. What
//! `convert_hf_to_gguf.py` (class `GPT2Model`, gguf-py `GGUFWriter`) writes for
//! `openai-community/gpt2`, in its order:
//!
//! | key | type | GPT-2 small |
//! | --- | --- | --- |
//! | `general.architecture` | string | `gpt2` |
//! | `general.type` | string | `model` |
//! | `general.name` | string | `GPT2` |
//! | `gpt2.block_count` | u32 | 12 (`n_layer`) |
//! | `gpt2.context_length` | u32 | 1024 (`n_positions`) |
//! | `gpt2.embedding_length` | u32 | 768 (`n_embd`) |
//! | `gpt2.feed_forward_length` | u32 | 3072 (4 · `n_embd`) |
//! | `gpt2.attention.head_count` | u32 | 12 (`n_head`) |
//! | `gpt2.attention.layer_norm_epsilon` | f32 | 1e-5 |
//! | `general.file_type` | u32 | 1 (mostly f16), see [`file_type`] |
//! | `general.quantization_version` | u32 | 2 |
//! | `tokenizer.ggml.model` | string | `gpt2` (byte-level BPE) |
//! | `tokenizer.ggml.pre` | string | `gpt-2` (GPT-2's pre-split regex) |
//! | `tokenizer.ggml.tokens` | `string[V]` | `"!"`, ..., `"Ġthe"`, ..., `"<\|endoftext\|>"` |
//! | `tokenizer.ggml.token_type` | `i32[V]` | 1 (normal); 3 (control) for `<\|endoftext\|>` |
//! | `tokenizer.ggml.merges` | `string[50000]` | `"Ġ t"`, `"Ġ a"`, `"h e"`, ... in rank order |
//! | `tokenizer.ggml.bos_token_id` / `eos_token_id` / `unknown_token_id` | u32 | 50256 |
//!
//! Token strings are the token's bytes through GPT-2's `bytes_to_unicode` (OpenAI
//! `gpt-2/src/encoder.py`): printable Latin-1 bytes map to themselves and the other 68 bytes to
//! U+0100.. in byte order, so a space is `Ġ` (U+0120) and a newline `Ċ` (U+010A).
//!
//! Non-goals: other architectures' keys, tensor-name mapping (the model loader's job), and
//! `tokenizer.ggml.add_bos_token` (absent for GPT-2, whose Hugging Face tokenizer adds no BOS;
//! llama.cpp then adds none for a `gpt2` BPE vocabulary).

use super::{GgufError, GgufFile, Result, Value};
use crate::tokenizer::{Tokenizer, EOT, EOT_TEXT, VOCAB_SIZE};
use crate::Gpt2Config;

/// Every GGUF key this module reads or writes.
pub mod keys {
    /// Architecture name; `"gpt2"` here.
    pub const ARCHITECTURE: &str = "general.architecture";
    /// `"model"` (gguf-py's `GGUFType.MODEL`; an adapter would be `"adapter"`).
    pub const TYPE: &str = "general.type";
    /// Human-readable model name.
    pub const NAME: &str = "general.name";
    /// Dominant tensor type, a llama.cpp `LLAMA_FTYPE_*` (see [`super::file_type`]).
    pub const FILE_TYPE: &str = "general.file_type";
    /// Version of the quantization formats (ggml's `GGML_QNT_VERSION`).
    pub const QUANTIZATION_VERSION: &str = "general.quantization_version";
    /// `n_layer`.
    pub const BLOCK_COUNT: &str = "gpt2.block_count";
    /// `n_positions`.
    pub const CONTEXT_LENGTH: &str = "gpt2.context_length";
    /// `n_embd`.
    pub const EMBEDDING_LENGTH: &str = "gpt2.embedding_length";
    /// The MLP width, `n_inner`; 4 · `n_embd` for GPT-2.
    pub const FEED_FORWARD_LENGTH: &str = "gpt2.feed_forward_length";
    /// `n_head`.
    pub const HEAD_COUNT: &str = "gpt2.attention.head_count";
    /// `layer_norm_epsilon`.
    pub const LAYER_NORM_EPSILON: &str = "gpt2.attention.layer_norm_epsilon";
    /// `vocab_size`: not written by the converter for GPT-2; checked when present.
    pub const VOCAB_SIZE: &str = "gpt2.vocab_size";
    /// Tokenizer family: `"gpt2"` is byte-level BPE (`"llama"` SentencePiece, `"bert"` WordPiece).
    pub const TOKENIZER_MODEL: &str = "tokenizer.ggml.model";
    /// Pre-tokenizer (the pre-split regex): `"gpt-2"`.
    pub const TOKENIZER_PRE: &str = "tokenizer.ggml.pre";
    /// The token strings, by id.
    pub const TOKENS: &str = "tokenizer.ggml.tokens";
    /// The token types, by id (see [`super::token_type`]).
    pub const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
    /// The BPE merges, `"left right"`, in rank order.
    pub const MERGES: &str = "tokenizer.ggml.merges";
    /// Beginning-of-sequence id.
    pub const BOS_TOKEN_ID: &str = "tokenizer.ggml.bos_token_id";
    /// End-of-sequence id.
    pub const EOS_TOKEN_ID: &str = "tokenizer.ggml.eos_token_id";
    /// Unknown-token id.
    pub const UNKNOWN_TOKEN_ID: &str = "tokenizer.ggml.unknown_token_id";
}

/// `general.architecture` of a GPT-2 file.
pub const ARCHITECTURE: &str = "gpt2";
/// `tokenizer.ggml.model` of GPT-2's byte-level BPE.
pub const TOKENIZER_MODEL: &str = "gpt2";
/// `tokenizer.ggml.pre` of GPT-2's pre-split regex.
pub const TOKENIZER_PRE: &str = "gpt-2";
/// `general.quantization_version` gguf-py writes (ggml's `GGML_QNT_VERSION`).
pub const QUANTIZATION_VERSION: u32 = 2;
/// Name of the token-embedding tensor, whose row count is the vocabulary size.
pub const TOKEN_EMBD: &str = "token_embd.weight";

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`, gguf-py `TokenType`).
pub mod token_type {
    /// An ordinary BPE token.
    pub const NORMAL: i32 = 1;
    /// The unknown token.
    pub const UNKNOWN: i32 = 2;
    /// A special token such as `<|endoftext|>`, never produced from text by default.
    pub const CONTROL: i32 = 3;
    /// A user-added token.
    pub const USER_DEFINED: i32 = 4;
    /// A padding id that no text maps to (`[PAD50257]`, ...).
    pub const UNUSED: i32 = 5;
    /// A raw-byte token (SentencePiece `<0x0A>`).
    pub const BYTE: i32 = 6;
}

/// `general.file_type` values for the types we write (llama.cpp's `llama_ftype`).
pub mod file_type {
    /// Every tensor f32.
    pub const ALL_F32: u32 = 0;
    /// Matrices f16, vectors f32.
    pub const MOSTLY_F16: u32 = 1;
    /// Matrices q4_0.
    pub const MOSTLY_Q4_0: u32 = 2;
    /// Matrices q8_0.
    pub const MOSTLY_Q8_0: u32 = 7;
    /// Matrices q6_K.
    pub const MOSTLY_Q6_K: u32 = 18;
    /// Matrices bf16.
    pub const MOSTLY_BF16: u32 = 32;
}

/// Reads GPT-2's hyper-parameters from `f` into a validated [`Gpt2Config`] (dropout 0, no
/// classification head).
///
/// `vocab_size` is the row count of `token_embd.weight` (its `dims` are `[n_embd, V]`), or the
/// length of `tokenizer.ggml.tokens` when the tensor is absent; when both (or `gpt2.vocab_size`)
/// are present they must agree.
///
/// Errors: [`GgufError::Architecture`] unless `general.architecture` is `gpt2`;
/// [`GgufError::MissingKey`] / [`GgufError::KeyType`] for a missing or mistyped key;
/// [`GgufError::Metadata`] when `gpt2.feed_forward_length` ≠ 4 · `n_embd` or the vocabulary sizes
/// disagree; [`GgufError::Tensor`] for a `token_embd.weight` of the wrong shape;
/// [`GgufError::Config`] when the sizes fail [`Gpt2Config::validate`].
pub fn config_from_gguf(f: &GgufFile) -> Result<Gpt2Config> {
    let file = f.label();
    let arch = f.get_str_req(keys::ARCHITECTURE)?;
    if arch != ARCHITECTURE {
        return Err(GgufError::Architecture {
            file,
            arch: arch.to_string(),
        });
    }
    let size = |key: &str| f.get_u32_req(key).map(|v| v as usize);
    let n_layer = size(keys::BLOCK_COUNT)?;
    let n_positions = size(keys::CONTEXT_LENGTH)?;
    let n_embd = size(keys::EMBEDDING_LENGTH)?;
    let n_head = size(keys::HEAD_COUNT)?;
    let n_inner = size(keys::FEED_FORWARD_LENGTH)?;
    let layer_norm_epsilon = f.get_f32_req(keys::LAYER_NORM_EPSILON)?;
    if Some(n_inner) != n_embd.checked_mul(4) {
        return Err(GgufError::Metadata {
            file,
            key: keys::FEED_FORWARD_LENGTH.into(),
            msg: format!(
                "is {n_inner}, but GPT-2's MLP is 4 · n_embd = 4 · {n_embd} wide (gpt2 has no n_inner option)"
            ),
        });
    }
    let vocab_size = vocab_size(f, n_embd)?;
    let cfg = Gpt2Config {
        n_layer,
        n_head,
        n_embd,
        n_positions,
        vocab_size,
        layer_norm_epsilon,
        ..Gpt2Config::gpt2()
    };
    cfg.validate().map_err(|e| GgufError::Config {
        file: f.label(),
        msg: match &e {
            crate::config::ConfigError::Field { field, .. } => {
                format!("{e} (GGUF key {})", gguf_key_of(field))
            }
            _ => e.to_string(),
        },
    })?;
    Ok(cfg)
}

/// The GGUF key that holds a [`Gpt2Config`] field, for messages.
fn gguf_key_of(field: &str) -> &'static str {
    match field {
        "n_layer" => keys::BLOCK_COUNT,
        "n_head" => keys::HEAD_COUNT,
        "n_embd" => keys::EMBEDDING_LENGTH,
        "n_positions" => keys::CONTEXT_LENGTH,
        "layer_norm_epsilon" => keys::LAYER_NORM_EPSILON,
        "vocab_size" => "token_embd.weight rows / tokenizer.ggml.tokens",
        _ => "(none)",
    }
}

/// V from `token_embd.weight`, `tokenizer.ggml.tokens` and `gpt2.vocab_size`, which must agree.
fn vocab_size(f: &GgufFile, n_embd: usize) -> Result<usize> {
    let file = f.label();
    let from_tensor = match f.tensor(TOKEN_EMBD) {
        None => None,
        Some(t) => match t.dims[..] {
            [c, v] if c == n_embd as u64 => Some(v),
            _ => {
                return Err(GgufError::Tensor {
                    file,
                    tensor: TOKEN_EMBD.into(),
                    msg: format!(
                        "dims are {:?}; expected [n_embd, vocab_size] = [{n_embd}, V] (ne order)",
                        t.dims
                    ),
                })
            }
        },
    };
    let from_tokens = f
        .get_string_array_opt(keys::TOKENS)?
        .map(|t| t.len() as u64);
    let from_key = f.get_u32_opt(keys::VOCAB_SIZE)?.map(u64::from);
    let sources = [
        (TOKEN_EMBD, from_tensor),
        (keys::TOKENS, from_tokens),
        (keys::VOCAB_SIZE, from_key),
    ];
    let mut found: Option<(&str, u64)> = None;
    for (name, v) in sources {
        let Some(v) = v else { continue };
        match found {
            None => found = Some((name, v)),
            Some((first, w)) if w != v => {
                return Err(GgufError::Metadata {
                    file,
                    key: name.into(),
                    msg: format!("says the vocabulary has {v} tokens, but {first} says {w}"),
                })
            }
            Some(_) => {}
        }
    }
    let (_, v) = found.ok_or_else(|| GgufError::Metadata {
        file: f.label(),
        key: keys::TOKENS.into(),
        msg: format!("is missing, and so is tensor {TOKEN_EMBD}: the vocabulary size is unknown"),
    })?;
    usize::try_from(v).map_err(|_| GgufError::Metadata {
        file: f.label(),
        key: keys::TOKENS.into(),
        msg: format!("vocabulary size {v} does not fit in usize"),
    })
}

/// Checks that `f`'s tokenizer is GPT-2's byte-level BPE with `vocab_size` ids, so that our
/// [`Tokenizer`] gives the ids the weights were trained on.
///
/// Checked when present: `tokenizer.ggml.model` is `gpt2`; `tokenizer.ggml.pre` is `gpt-2`;
/// `tokenizer.ggml.tokens` has `vocab_size` entries and every id below 50257 has GPT-2's token
/// string (ids ≥ 50257 are padding and may have any name); `tokenizer.ggml.merges` are GPT-2's
/// merges for `vocab_size` ([`gpt2_merges`]). `token_type` is not checked.
///
/// Lenient by design: a file with none of these keys is accepted (the caller then uses GPT-2's
/// tokenizer, which is what our weights use); files we write always carry them.
///
/// Errors: [`GgufError::Tokenizer`] naming the key and the first differing id or merge;
/// [`GgufError::KeyType`] for a mistyped key.
pub fn check_tokenizer(f: &GgufFile, tok: &Tokenizer, vocab_size: usize) -> Result<()> {
    let err = |msg: String| GgufError::Tokenizer {
        file: f.label(),
        msg,
    };
    if let Some(model) = f.get_str_opt(keys::TOKENIZER_MODEL)? {
        if model != TOKENIZER_MODEL {
            return Err(err(format!(
                "{} = {model} ({}); gpt2 reads only GPT-2's byte-level BPE ({} = {TOKENIZER_MODEL})",
                keys::TOKENIZER_MODEL,
                tokenizer_family(model),
                keys::TOKENIZER_MODEL
            )));
        }
    }
    if let Some(pre) = f.get_str_opt(keys::TOKENIZER_PRE)? {
        if pre != TOKENIZER_PRE {
            return Err(err(format!(
                "{} = {pre}: that pre-tokenizer splits text differently from GPT-2's ({} = {TOKENIZER_PRE})",
                keys::TOKENIZER_PRE,
                keys::TOKENIZER_PRE
            )));
        }
    }
    if let Some(tokens) = f.get_string_array_opt(keys::TOKENS)? {
        if tokens.len() != vocab_size {
            return Err(err(format!(
                "{} has {} tokens, but the model has vocab_size {vocab_size}",
                keys::TOKENS,
                tokens.len()
            )));
        }
        let (want, _) = gpt2_token_strings(tok, vocab_size.min(VOCAB_SIZE))?;
        if let Some((id, (got, want))) = tokens
            .iter()
            .zip(&want)
            .enumerate()
            .find(|(_, (got, want))| got != want)
        {
            return Err(err(format!(
                "{} differs from GPT-2's at id {id}: {got:?} in the file, {want:?} in GPT-2's vocabulary; this file uses another tokenizer",
                keys::TOKENS
            )));
        }
    }
    if let Some(merges) = f.get_string_array_opt(keys::MERGES)? {
        let want = gpt2_merges(tok, vocab_size)?;
        if let Some((i, (got, want))) = merges
            .iter()
            .zip(&want)
            .enumerate()
            .find(|(_, (got, want))| got != want)
        {
            return Err(err(format!(
                "{} differs from GPT-2's at merge #{i}: {got:?} in the file, {want:?} in GPT-2's",
                keys::MERGES
            )));
        }
        if merges.len() != want.len() {
            return Err(err(format!(
                "{} has {} merges; GPT-2's tokenizer with {vocab_size} ids has {}",
                keys::MERGES,
                merges.len(),
                want.len()
            )));
        }
    }
    Ok(())
}

/// What a `tokenizer.ggml.model` value means, for messages.
fn tokenizer_family(model: &str) -> &'static str {
    match model {
        "llama" => "a SentencePiece vocabulary",
        "bert" => "a WordPiece vocabulary",
        "t5" => "a Unigram vocabulary",
        "rwkv" => "an RWKV vocabulary",
        "none" | "no_vocab" => "no vocabulary",
        _ => "not GPT-2's tokenizer",
    }
}

/// Everything the writer must put in a GPT-2 GGUF for llama.cpp to load and run it, in
/// `convert_hf_to_gguf.py`'s order (see the table in the module docs): the hyper-parameters of
/// `cfg`, `name`, `file_type` (a [`file_type`] constant), and the tokenizer for `cfg.vocab_size`
/// ids: GPT-2's first min(V, 50257) tokens, then `[PAD{id}]` tokens of type unused, and GPT-2's
/// merges whose result id is below V, in rank order.
///
/// Errors: [`GgufError::Metadata`] when a size does not fit in a u32; [`GgufError::Tokenizer`]
/// if the tokenizer's tables are broken (never for a correct build).
pub fn gpt2_metadata(
    cfg: &Gpt2Config,
    tok: &Tokenizer,
    name: &str,
    file_type: u32,
) -> Result<Vec<(String, Value)>> {
    let u32_of = |key: &str, v: usize| {
        u32::try_from(v)
            .map(Value::U32)
            .map_err(|_| GgufError::Metadata {
                file: "<gpt2 metadata>".into(),
                key: key.into(),
                msg: format!("{v} does not fit in a u32"),
            })
    };
    let (tokens, types) = gpt2_token_strings(tok, cfg.vocab_size)?;
    let merges = gpt2_merges(tok, cfg.vocab_size)?;
    let entries: Vec<(&str, Value)> = vec![
        (keys::ARCHITECTURE, ARCHITECTURE.into()),
        (keys::TYPE, "model".into()),
        (keys::NAME, name.into()),
        (keys::BLOCK_COUNT, u32_of(keys::BLOCK_COUNT, cfg.n_layer)?),
        (
            keys::CONTEXT_LENGTH,
            u32_of(keys::CONTEXT_LENGTH, cfg.n_positions)?,
        ),
        (
            keys::EMBEDDING_LENGTH,
            u32_of(keys::EMBEDDING_LENGTH, cfg.n_embd)?,
        ),
        (
            keys::FEED_FORWARD_LENGTH,
            u32_of(keys::FEED_FORWARD_LENGTH, cfg.n_embd.saturating_mul(4))?,
        ),
        (keys::HEAD_COUNT, u32_of(keys::HEAD_COUNT, cfg.n_head)?),
        (keys::LAYER_NORM_EPSILON, cfg.layer_norm_epsilon.into()),
        (keys::FILE_TYPE, file_type.into()),
        (keys::QUANTIZATION_VERSION, QUANTIZATION_VERSION.into()),
        (keys::TOKENIZER_MODEL, TOKENIZER_MODEL.into()),
        (keys::TOKENIZER_PRE, TOKENIZER_PRE.into()),
        (keys::TOKENS, tokens.into()),
        (keys::TOKEN_TYPE, types.into()),
        (keys::MERGES, merges.into()),
        (keys::BOS_TOKEN_ID, EOT.into()),
        (keys::EOS_TOKEN_ID, EOT.into()),
        (keys::UNKNOWN_TOKEN_ID, EOT.into()),
    ];
    Ok(entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
}

/// GPT-2's `bytes_to_unicode` (OpenAI `encoder.py`): the printable character that stands for
/// each byte in token strings. Bytes `!`..`~`, `¡`..`¬` and `®`..`ÿ` stand for themselves; the
/// other 68 bytes, in increasing order, get U+0100, U+0101, ... (so `b' '` is `Ġ`, U+0120).
pub const BYTE_TO_UNICODE: [char; 256] = byte_to_unicode_table();

const fn byte_to_unicode_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0x100;
    let mut b = 0;
    while b < 256 {
        table[b] = if matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF) {
            b as u8 as char
        } else {
            next += 1;
            match char::from_u32(next - 1) {
                Some(c) => c,
                None => '\u{FFFD}', // unreachable: 0x100..0x144 are all valid chars
            }
        };
        b += 1;
    }
    table
}

/// A token's bytes as its GGUF / Hugging Face `vocab.json` string: `b" the"` → `"Ġthe"`.
pub fn token_to_unicode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| BYTE_TO_UNICODE[b as usize]).collect()
}

/// The bytes of token `id`, as a [`GgufError::Tokenizer`] on failure.
fn token_bytes(tok: &Tokenizer, id: u32) -> Result<&[u8]> {
    tok.token_bytes(id).map_err(|e| GgufError::Tokenizer {
        file: "<GPT-2 tokenizer>".into(),
        msg: e.to_string(),
    })
}

/// `tokenizer.ggml.tokens` and `tokenizer.ggml.token_type` for `vocab_size` ids: GPT-2's token
/// strings (normal), `<|endoftext|>` at 50256 (control), then `[PAD{id}]` (unused) up to V.
///
/// Errors: [`GgufError::Tokenizer`] if the tokenizer's tables are broken.
pub fn gpt2_token_strings(tok: &Tokenizer, vocab_size: usize) -> Result<(Vec<String>, Vec<i32>)> {
    let mut tokens = Vec::with_capacity(vocab_size);
    let mut types = Vec::with_capacity(vocab_size);
    for id in 0..vocab_size {
        let (s, t) = match u32::try_from(id) {
            Ok(EOT) => (EOT_TEXT.to_string(), token_type::CONTROL),
            Ok(i) if id < VOCAB_SIZE => {
                (token_to_unicode(token_bytes(tok, i)?), token_type::NORMAL)
            }
            _ => (format!("[PAD{id}]"), token_type::UNUSED),
        };
        tokens.push(s);
        types.push(t);
    }
    Ok((tokens, types))
}

/// GPT-2's BPE merges (`merges.txt` without its `#version` line) for the ids below
/// `vocab_size`, in rank order: `"Ġ t"`, `"Ġ a"`, `"h e"`, `"i n"`, `"r e"`, ... 50,000 for the
/// full vocabulary.
///
/// Recovered from the ranks alone (tiktoken's `data_gym` conversion in reverse): token `r ≥ 256`
/// was made by exactly one merge, and running BPE on its bytes with only the merges of rank
/// `< r` stops at the two parts that merge forms.
///
/// Errors: [`GgufError::Tokenizer`] if a token cannot be split into two lower-rank parts
/// (impossible for GPT-2's tables).
pub fn gpt2_merges(tok: &Tokenizer, vocab_size: usize) -> Result<Vec<String>> {
    // Mergeable ids are 256..50256 (rank = id); <|endoftext|> and padding are no merges.
    let end = vocab_size.min(EOT as usize) as u32;
    let mut merges = Vec::with_capacity(end.saturating_sub(256) as usize);
    for rank in 256..end {
        let bytes = token_bytes(tok, rank)?;
        let (left, right) = last_merge(tok, bytes, rank).ok_or_else(|| GgufError::Tokenizer {
            file: "<GPT-2 tokenizer>".into(),
            msg: format!(
                "token {rank} {:?} is not one merge of two lower-rank tokens",
                token_to_unicode(bytes)
            ),
        })?;
        merges.push(format!(
            "{} {}",
            token_to_unicode(left),
            token_to_unicode(right)
        ));
    }
    Ok(merges)
}

/// Byte-pair-merges `bytes` with only the ranks below `rank` (lowest rank first, leftmost on
/// ties) and returns the two parts left, or `None` if not exactly two remain.
fn last_merge<'a>(tok: &Tokenizer, bytes: &'a [u8], rank: u32) -> Option<(&'a [u8], &'a [u8])> {
    // Part i is bytes[cuts[i]..cuts[i + 1]]; merging parts i and i+1 removes cut i+1.
    let mut cuts: Vec<usize> = (0..=bytes.len()).collect();
    loop {
        let mut best: Option<(u32, usize)> = None;
        for i in 0..cuts.len().saturating_sub(2) {
            let pair = bytes.get(cuts[i]..cuts[i + 2])?;
            if let Some(r) = tok.token_id(pair) {
                if r < rank && best.is_none_or(|(b, _)| r < b) {
                    best = Some((r, i));
                }
            }
        }
        match best {
            Some((_, i)) => {
                cuts.remove(i + 1);
            }
            None => break,
        }
    }
    match cuts[..] {
        [a, m, b] => Some((bytes.get(a..m)?, bytes.get(m..b)?)),
        _ => None,
    }
}
