//! Token shards and the training-data loader: the llm.c `.bin` layout, read memory-mapped, and the
//! (inputs, targets) windows a training step consumes; plus the parallel tokenization that makes them.
//!
//! # Shard layout (llm.c `dev/data/data_common.py`, `write_datafile`)
//!
//! | bytes | content |
//! | --- | --- |
//! | 0 .. 1024 | 256 little-endian `i32`: [`SHARD_MAGIC`] 20240520, [`SHARD_VERSION`] 1, N (token count), then zeros |
//! | 1024 .. 1024 + 2N | N little-endian `u16` token ids |
//!
//! [`Shard::open`] checks everything once: magic, version, that the file holds exactly N tokens,
//! and that every id is `< vocab_size`. Each error names the file. [`write_shard`] writes a
//! temporary file beside the target, syncs it and renames it, so a reader never sees half a shard.
//!
//! # Batch order
//!
//! Dims: B batch rows, T sequence length, N tokens in the shard. Positions are taken modulo N.
//!
//! - [`Order::Sequential`] (`--no-shuffle`): micro-batch k (counted from 0 across steps and
//!   gradient accumulation) reads tokens `[k·B·T, k·B·T + B·T + 1)`; row b's inputs are tokens
//!   `k·B·T + b·T … k·B·T + b·T + T − 1` and its targets the same shifted by one (llm.c's
//!   `DataLoader` without its shard-advance), wrapping to the start of the shard at its end.
//! - [`Order::Shuffled`]: the shard is cut into `W = ⌊(N − 1) / T⌋` windows of T + 1 tokens
//!   starting at `j·T`; each epoch visits them in a Fisher–Yates permutation drawn from a seeded
//!   [`Rng`], one window per row; a new permutation is drawn when the epoch ends. The order depends
//!   only on the seed, never on the thread count.
//!
//! [`DataLoader::state`] / [`DataLoader::restore`] save and restore the position (and the RNG) so a
//! resumed run reads exactly the batches the uninterrupted run would have read.
//!
//! # Tokenizing for shards
//!
//! [`encode_documents`] encodes documents in parallel (rayon), each large document cut by
//! [`split_for_bpe`] only where GPT-2's pre-tokenizer would cut anyway, so the ids equal those of
//! encoding each document whole; documents are joined by `<|endoftext|>` ([`EOT`]).
//!
//! Non-goals: several shards per split, and per-rank sharding for data-parallel training.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;
use crate::tokenizer::{Special, Tokenizer, EOT};

/// First header word of every shard (llm.c's `20240520`).
pub const SHARD_MAGIC: i32 = 20240520;
/// Second header word: the version of the layout (1: `u16` tokens).
pub const SHARD_VERSION: i32 = 1;
/// Header length in `i32` words.
pub const HEADER_INTS: usize = 256;
/// Header length in bytes.
pub const HEADER_BYTES: usize = HEADER_INTS * 4;

/// Errors from reading, writing or batching token shards. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read, written or renamed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The first header word is not [`SHARD_MAGIC`].
    #[error("{path} is not a token shard: magic number {got}, expected {SHARD_MAGIC} (make shards with `gpt2 prepare`)")]
    BadMagic {
        /// The file.
        path: String,
        /// The first header word found.
        got: i32,
    },
    /// The second header word is not [`SHARD_VERSION`].
    #[error(
        "{path}: unsupported token shard version {got}, expected {SHARD_VERSION} (u16 tokens)"
    )]
    BadVersion {
        /// The file.
        path: String,
        /// The version found.
        got: i32,
    },
    /// The file is shorter than its header, or holds fewer tokens than the header says.
    #[error("{path} is truncated: the header says {expected} tokens but the file holds {found}")]
    Truncated {
        /// The file.
        path: String,
        /// Token count in the header (0 when the header itself is cut).
        expected: u64,
        /// Whole tokens after the header.
        found: u64,
    },
    /// The file holds more bytes than its header announces (or a negative count).
    #[error("{path} is corrupt: {msg}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// A token id is not below the model's vocabulary size.
    #[error("{path}: token {index} has id {id}, not below the vocabulary size {vocab_size}")]
    TokenOutOfRange {
        /// The file.
        path: String,
        /// Position of the first bad token.
        index: u64,
        /// Its id.
        id: u32,
        /// The vocabulary size V the shard was checked against.
        vocab_size: usize,
    },
    /// The shard has fewer than B·T + 1 tokens, the minimum for one batch.
    #[error("{path} has {tokens} tokens, fewer than one batch needs ({need} = batch size {b} × sequence length {t} + 1)")]
    TooShort {
        /// The file.
        path: String,
        /// Tokens in the shard.
        tokens: u64,
        /// B·T + 1.
        need: u64,
        /// B.
        b: usize,
        /// T.
        t: usize,
    },
    /// Ids that cannot be written as `u16`, or more tokens than an `i32` count can hold.
    #[error("cannot write {path}: {msg}")]
    Unwritable {
        /// The file.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// A saved loader state that does not fit this shard and order.
    #[error("{path}: cannot restore the data position: {msg}")]
    BadState {
        /// The shard.
        path: String,
        /// What does not fit.
        msg: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A token shard, memory-mapped and checked.
#[derive(Debug)]
pub struct Shard {
    path: PathBuf,
    map: Mmap,
    len: usize,
}

impl Shard {
    /// Opens and checks the shard at `path`: header magic and version, exact length, and every id
    /// `< vocab_size` (a parallel scan of all tokens).
    ///
    /// Errors: [`DataError::Io`], [`DataError::BadMagic`], [`DataError::BadVersion`],
    /// [`DataError::Truncated`], [`DataError::Corrupt`], [`DataError::TokenOutOfRange`] (the first
    /// bad position).
    pub fn open(path: &Path, vocab_size: usize) -> Result<Self, DataError> {
        let name = || path.display().to_string();
        let file = File::open(path).map_err(io_err(path))?;
        let size = file.metadata().map_err(io_err(path))?.len();
        if size < HEADER_BYTES as u64 {
            // Too short for a header: say which check fails on what is there.
            let mut head = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut head).map_err(io_err(path))?;
            if head.len() >= 4 {
                let magic = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                if magic != SHARD_MAGIC {
                    return Err(DataError::BadMagic {
                        path: name(),
                        got: magic,
                    });
                }
            }
            return Err(DataError::Truncated {
                path: name(),
                expected: 0,
                found: 0,
            });
        }
        // SAFETY: the file is opened read-only; as with every mmap, another process truncating it
        // while we read is outside what we can guard against (llm.c and safetensors accept the same).
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
        let word = |i: usize| {
            i32::from_le_bytes([map[4 * i], map[4 * i + 1], map[4 * i + 2], map[4 * i + 3]])
        };
        if word(0) != SHARD_MAGIC {
            return Err(DataError::BadMagic {
                path: name(),
                got: word(0),
            });
        }
        if word(1) != SHARD_VERSION {
            return Err(DataError::BadVersion {
                path: name(),
                got: word(1),
            });
        }
        let count = word(2);
        if count < 0 {
            return Err(DataError::Corrupt {
                path: name(),
                msg: format!("negative token count {count} in the header"),
            });
        }
        let count = count as u64;
        let found = (size - HEADER_BYTES as u64) / 2;
        if found < count {
            return Err(DataError::Truncated {
                path: name(),
                expected: count,
                found,
            });
        }
        if size != HEADER_BYTES as u64 + 2 * count {
            return Err(DataError::Corrupt {
                path: name(),
                msg: format!(
                    "{} bytes after the {count} tokens the header announces",
                    size - HEADER_BYTES as u64 - 2 * count
                ),
            });
        }
        let shard = Self {
            path: path.to_path_buf(),
            map,
            len: count as usize,
        };
        shard.check_ids(vocab_size)?;
        Ok(shard)
    }

    /// Finds the first id ≥ `vocab_size`, scanning blocks in parallel.
    fn check_ids(&self, vocab_size: usize) -> Result<(), DataError> {
        const BLOCK: usize = 1 << 16;
        let bytes = self.token_bytes();
        let bad = bytes
            .par_chunks(2 * BLOCK)
            .enumerate()
            .find_map_first(|(blk, chunk)| {
                chunk.chunks_exact(2).enumerate().find_map(|(i, b)| {
                    let id = u16::from_le_bytes([b[0], b[1]]) as u32;
                    (id as usize >= vocab_size).then_some(((blk * BLOCK + i) as u64, id))
                })
            });
        match bad {
            Some((index, id)) => Err(DataError::TokenOutOfRange {
                path: self.path.display().to_string(),
                index,
                id,
                vocab_size,
            }),
            None => Ok(()),
        }
    }

    fn token_bytes(&self) -> &[u8] {
        &self.map[HEADER_BYTES..HEADER_BYTES + 2 * self.len]
    }

    /// The file this shard was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of tokens N.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the shard holds no token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Token at position `i` (< N).
    pub fn token(&self, i: usize) -> u32 {
        let b = &self.token_bytes()[2 * i..2 * i + 2];
        u16::from_le_bytes([b[0], b[1]]) as u32
    }

    /// Copies `out.len()` tokens starting at position `start`, wrapping to position 0 after N − 1.
    /// N must be > 0.
    pub fn read_wrapping(&self, start: usize, out: &mut [u32]) {
        let n = self.len;
        let mut pos = start % n;
        for o in out.iter_mut() {
            *o = self.token(pos);
            pos += 1;
            if pos == n {
                pos = 0;
            }
        }
    }

    /// Fills one (B, T) batch from the B·T + 1 tokens starting at `start` (wrapping): row b's
    /// `inputs` are tokens `start + b·T … start + b·T + T − 1`, its `targets` the next ones.
    /// `span` is scratch of B·T + 1 tokens.
    ///
    /// Panics if a slice has the wrong length (a caller bug).
    pub fn read_batch(
        &self,
        start: usize,
        inputs: &mut [u32],
        targets: &mut [u32],
        span: &mut [u32],
    ) {
        let bt = inputs.len();
        assert!(
            targets.len() == bt && span.len() == bt + 1,
            "(B, T) slices and a B·T + 1 span"
        );
        self.read_wrapping(start, span);
        inputs.copy_from_slice(&span[..bt]);
        targets.copy_from_slice(&span[1..]);
    }

    /// Checks that one (B, T) batch fits: N ≥ B·T + 1.
    ///
    /// Errors: [`DataError::TooShort`].
    pub fn check_batch(&self, b: usize, t: usize) -> Result<(), DataError> {
        let need = (b * t + 1) as u64;
        if (self.len as u64) < need {
            return Err(DataError::TooShort {
                path: self.path.display().to_string(),
                tokens: self.len as u64,
                need,
                b,
                t,
            });
        }
        Ok(())
    }
}

/// Writes `tokens` to `path` as a shard (see the module doc), through a temporary file beside it
/// that is synced and renamed over `path`.
///
/// Errors: [`DataError::Unwritable`] for an id > 65535 or more than `i32::MAX` tokens (nothing is
/// written); [`DataError::Io`].
pub fn write_shard(path: &Path, tokens: &[u32]) -> Result<(), DataError> {
    let name = || path.display().to_string();
    if tokens.len() > i32::MAX as usize {
        return Err(DataError::Unwritable {
            path: name(),
            msg: format!(
                "{} tokens do not fit the i32 count of the header",
                tokens.len()
            ),
        });
    }
    if let Some((i, &id)) = tokens
        .iter()
        .enumerate()
        .find(|(_, &id)| id > u16::MAX as u32)
    {
        return Err(DataError::Unwritable {
            path: name(),
            msg: format!("token {i} has id {id}, which does not fit in u16"),
        });
    }
    let mut buf = Vec::with_capacity(HEADER_BYTES + 2 * tokens.len());
    let mut header = [0i32; HEADER_INTS];
    header[0] = SHARD_MAGIC;
    header[1] = SHARD_VERSION;
    header[2] = tokens.len() as i32;
    for w in header {
        buf.extend_from_slice(&w.to_le_bytes());
    }
    for &id in tokens {
        buf.extend_from_slice(&(id as u16).to_le_bytes());
    }
    write_atomic(path, |tmp| std::fs::write(tmp, &buf)).map_err(|(p, source)| DataError::Io {
        path: p.display().to_string(),
        source,
    })
}

/// Writes `path` through `write(tmp)` on a temporary file beside it (`.{name}.tmp.{pid}`), syncs
/// it, renames it over `path` and syncs the folder (so the rename survives a crash); the
/// temporary file is removed on failure. The error carries the path that failed. The one atomic
/// writer of the crate: shards, checkpoints, trainer files.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), (PathBuf, std::io::Error)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let result = write(&tmp)
        .and_then(|()| File::open(&tmp)?.sync_all())
        .map_err(|e| (tmp.clone(), e))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| (path.to_path_buf(), e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else if let Some(parent) = path.parent() {
        // best effort: not every platform can open a folder
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let _ = File::open(parent).and_then(|d| d.sync_all());
    }
    result
}

/// The order in which a [`DataLoader`] visits the shard (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Consecutive B·T + 1 token spans, wrapping at the end (`--no-shuffle`).
    Sequential,
    /// Windows of T + 1 tokens in a seeded permutation, redrawn each epoch.
    Shuffled {
        /// Seed of the permutation RNG.
        seed: u64,
    },
}

/// Where a [`DataLoader`] stands, to save with a checkpoint and [`DataLoader::restore`] later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// Micro-batches given so far.
    pub batches: u64,
    /// Sequential: the position of the next micro-batch's first token (< N).
    /// Shuffled: the index of the next window in the current epoch's permutation (≤ W).
    pub pos: u64,
    /// Shuffled: permutations drawn so far (1 from the start: the current one is the epoch-th).
    pub epoch: u64,
    /// Shuffled: the RNG state just before the current epoch's permutation was drawn.
    pub rng: Option<[u64; 4]>,
}

/// Gives (inputs, targets) (B, T) micro-batches from a [`Shard`] in a fixed or seeded order.
#[derive(Debug)]
pub struct DataLoader {
    shard: Shard,
    b: usize,
    t: usize,
    order: Order,
    /// Scratch (B·T + 1) for sequential reads.
    span: Vec<u32>,
    /// Shuffled: the current epoch's permutation of window indices (W).
    perm: Vec<u32>,
    /// Shuffled: the permutation RNG, as it stands after drawing the current permutation.
    rng: Rng,
    state: LoaderState,
}

impl DataLoader {
    /// A loader of (B, T) = (`b`, `t`) micro-batches from `shard`, positioned at its start.
    ///
    /// Errors: [`DataError::TooShort`] when N < B·T + 1; [`DataError::BadState`] for B or T = 0;
    /// [`DataError::Corrupt`] for a shard of more than 2³² windows.
    pub fn new(shard: Shard, b: usize, t: usize, order: Order) -> Result<Self, DataError> {
        if b == 0 || t == 0 {
            return Err(DataError::BadState {
                path: shard.path.display().to_string(),
                msg: format!("batch size {b} and sequence length {t} must be > 0"),
            });
        }
        shard.check_batch(b, t)?;
        let windows = (shard.len - 1) / t;
        if windows > u32::MAX as usize {
            return Err(DataError::Corrupt {
                path: shard.path.display().to_string(),
                msg: format!("{windows} windows of {t} tokens are more than the loader can index"),
            });
        }
        let rng = match order {
            Order::Sequential => Rng::seed(0),
            Order::Shuffled { seed } => Rng::seed(seed),
        };
        let mut loader = Self {
            shard,
            b,
            t,
            order,
            span: vec![0; b * t + 1],
            perm: Vec::new(),
            rng,
            state: LoaderState {
                batches: 0,
                pos: 0,
                epoch: 0,
                rng: None,
            },
        };
        if let Order::Shuffled { .. } = order {
            loader.new_epoch();
        }
        Ok(loader)
    }

    /// Draws the next permutation of the W windows from `rng` (Fisher–Yates, from the back).
    fn new_epoch(&mut self) {
        let w = (self.shard.len - 1) / self.t;
        self.state.rng = Some(self.rng.s);
        self.perm.clear();
        self.perm.extend(0..w as u32);
        for i in (1..w).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            self.perm.swap(i, j);
        }
        self.state.pos = 0;
        self.state.epoch += 1;
    }

    /// Batch size B.
    pub fn batch_size(&self) -> usize {
        self.b
    }

    /// Sequence length T.
    pub fn seq_len(&self) -> usize {
        self.t
    }

    /// The shard being read.
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// The visiting order.
    pub fn order(&self) -> Order {
        self.order
    }

    /// Fills the next micro-batch: `inputs` (B, T) and `targets` (B, T), `targets[b][t]` the
    /// token after `inputs[b][t]` in the shard.
    ///
    /// Panics if either slice is not B·T long (a caller bug, not bad data).
    pub fn next_batch(&mut self, inputs: &mut [u32], targets: &mut [u32]) {
        let (b, t) = (self.b, self.t);
        assert_eq!(inputs.len(), b * t, "inputs must be (B, T)");
        assert_eq!(targets.len(), b * t, "targets must be (B, T)");
        match self.order {
            Order::Sequential => {
                let n = self.shard.len as u64;
                self.shard
                    .read_batch(self.state.pos as usize, inputs, targets, &mut self.span);
                self.state.pos = (self.state.pos + (b * t) as u64 % n) % n;
            }
            Order::Shuffled { .. } => {
                for r in 0..b {
                    if self.state.pos as usize == self.perm.len() {
                        self.new_epoch();
                    }
                    let start = self.perm[self.state.pos as usize] as usize * t;
                    self.state.pos += 1;
                    let row = &mut self.span[..t + 1];
                    self.shard.read_wrapping(start, row);
                    inputs[r * t..(r + 1) * t].copy_from_slice(&row[..t]);
                    targets[r * t..(r + 1) * t].copy_from_slice(&row[1..]);
                }
            }
        }
        self.state.batches += 1;
    }

    /// The current position (and RNG), for [`DataLoader::restore`].
    pub fn state(&self) -> LoaderState {
        self.state.clone()
    }

    /// Moves to a position saved by [`DataLoader::state`] from a loader over the same shard with
    /// the same B, T and order.
    ///
    /// Errors: [`DataError::BadState`] when the state cannot come from such a loader (a position
    /// past the end, a missing RNG for a shuffled order).
    pub fn restore(&mut self, state: &LoaderState) -> Result<(), DataError> {
        let bad = |msg: String| DataError::BadState {
            path: self.shard.path.display().to_string(),
            msg,
        };
        match self.order {
            Order::Sequential => {
                if state.pos >= self.shard.len as u64 {
                    return Err(bad(format!(
                        "position {} is past the end of a {}-token shard",
                        state.pos, self.shard.len
                    )));
                }
                self.state = state.clone();
            }
            Order::Shuffled { .. } => {
                let rng = state
                    .rng
                    .ok_or_else(|| bad("the saved state has no shuffling RNG".into()))?;
                let w = (self.shard.len - 1) / self.t;
                if state.pos as usize > w || state.epoch == 0 {
                    return Err(bad(format!(
                        "window {} of epoch {} does not exist in a shard of {w} windows",
                        state.pos, state.epoch
                    )));
                }
                self.rng = Rng { s: rng };
                self.state.epoch = state.epoch - 1;
                self.new_epoch();
                self.state = state.clone();
            }
        }
        Ok(())
    }
}

/// Cuts `text` into pieces of at least `max_bytes` bytes (the last may be shorter) whose BPE ids,
/// concatenated, equal the ids of the whole text.
///
/// A cut is made only right after a `"\n"` that is preceded and followed by a non-whitespace
/// character. GPT-2's pre-tokenizer (`… | \s+(?!\S) | \s+`) then always ends a piece at that
/// `"\n"`: no pattern but the whitespace ones can hold a newline, the preceding piece ends at a
/// non-space character, and a lone `"\n"` before a non-space character is matched the same at
/// the end of a chunk as in the middle of the text. (Cutting after a newline that follows other
/// whitespace would not be safe: `"a \nb"` pre-tokenizes as `"a", " ", "\n", "b"` but `"a \n"` as
/// `"a", " \n"`.) A text with no such newline is one piece.
pub fn split_for_bpe(text: &str, max_bytes: usize) -> Vec<&str> {
    let len = text.len();
    // `None` (no character) counts as whitespace: never cut at the very start or end.
    let is_ws = |c: Option<char>| match c {
        Some(c) => c.is_whitespace(),
        None => true,
    };
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < len {
        // A cut right after the '\n' at `nl` gives a piece of nl + 1 − start ≥ max_bytes bytes.
        // Newlines are ASCII, so `nl` and `nl + 1` are char boundaries.
        let from = (start + max_bytes.max(1) - 1).min(len);
        let end = text.as_bytes()[from..]
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .map(|(off, _)| from + off)
            .find(|&nl| {
                nl > start
                    && !is_ws(text[..nl].chars().next_back())
                    && !is_ws(text[nl + 1..].chars().next())
            })
            .map_or(len, |nl| nl + 1);
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
}

/// Chunk size for [`encode_documents`]: large enough that rayon's overhead is nil, small enough
/// that one big file keeps every core busy.
pub const ENCODE_CHUNK_BYTES: usize = 256 * 1024;

/// Encodes `docs` with GPT-2's BPE (`<|endoftext|>` inside a document is plain text) and joins them
/// with [`EOT`] between documents: `doc₀ EOT doc₁ EOT … doc_{n−1}`. Documents are cut by
/// [`split_for_bpe`] into [`ENCODE_CHUNK_BYTES`] pieces encoded in parallel; the result equals the
/// sequential encoding. `on_bytes(n)` is called from worker threads as each piece of n bytes is done.
pub fn encode_documents(
    tok: &Tokenizer,
    docs: &[&str],
    on_bytes: &(dyn Fn(usize) + Sync),
) -> Vec<u32> {
    let pieces: Vec<(usize, &str)> = docs
        .iter()
        .enumerate()
        .flat_map(|(d, doc)| {
            split_for_bpe(doc, ENCODE_CHUNK_BYTES)
                .into_iter()
                .map(move |p| (d, p))
        })
        .collect();
    let encoded: Vec<(usize, Vec<u32>)> = pieces
        .par_iter()
        .map(|&(d, p)| {
            let ids = tok.encode(p, Special::None);
            on_bytes(p.len());
            (d, ids)
        })
        .collect();
    let total = encoded.iter().map(|(_, ids)| ids.len()).sum::<usize>() + docs.len();
    let mut out = Vec::with_capacity(total);
    let mut encoded = encoded.into_iter().peekable();
    for d in 0..docs.len() {
        if d > 0 {
            out.push(EOT);
        }
        while let Some((_, ids)) = encoded.next_if(|(pd, _)| *pd == d) {
            out.extend_from_slice(&ids);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_follow_the_rule() {
        let text = "ab\ncd\n\nef \ngh\n ij\nkl";
        let pieces = split_for_bpe(text, 1);
        assert_eq!(pieces.concat(), text);
        // "\n\n", " \n" and "\n " are not cut points; "b\nc" and "j\nk" are.
        assert_eq!(pieces, vec!["ab\n", "cd\n\nef \ngh\n ij\n", "kl"]);
    }
}
