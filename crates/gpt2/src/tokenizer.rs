//! GPT-2's byte-level BPE tokenizer: text ⇄ token ids, plus a streaming decoder for generation.
//!
//! Reference: OpenAI's `gpt-2/src/encoder.py` (Radford et al. 2019). Encoding is two steps:
//! 1. pre-split the text with the regex
//!    `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
//! 2. byte-pair-merge the UTF-8 bytes of each piece: repeatedly merge the adjacent pair whose
//!    concatenation has the lowest rank (leftmost on ties) until none is a token.
//!
//! The vocabulary (50,257 ids; rank = id; 50256 = `<|endoftext|>`) comes from `tiktoken-rs`'s
//! `r50k_base`, which is GPT-2's encoding. Its encoder is not used directly, and tests compare ours
//! with it (`tiktoken_rs::CoreBPE::encode_ordinary`). Two reasons:
//! - Its `fancy_regex` lookahead `\s+(?!\S)` backtracks with a bounded stack. A whitespace run of
//!   about 10⁶ characters returns `RuntimeError(StackOverflow)`, and tiktoken-rs `unwrap`s that
//!   into a panic. Here the pattern runs without the lookahead on the linear-time `regex` crate,
//!   and the lookahead is applied afterwards (see [`Tokenizer::encode_ordinary_into`]).
//! - Its merge loop is O(n²) in the piece length: 500k letters take 80 s. Here a heap makes it
//!   O(n log n).
//!
//! Tested in minbpe's four kinds (STYLE 13): round trip, exact ids against Hugging Face `tokenizers`
//! on hard strings (`scripts/fixtures_tokenizer.py` → `tests/fixtures/tokenizer_cases.json`), a
//! hand-worked example (`"Hello world"` → `[15496, 995]`), and the special-token policy. Also
//! checked against tiktoken-rs on random text.
//!
//! Non-goals: training a BPE, other encodings (cl100k, o200k), special tokens other than
//! `<|endoftext|>`, and normalizing the input text (GPT-2 has none).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use regex::Regex;

/// GPT-2's pre-split pattern without the `\s+(?!\S)` lookahead, which
/// [`Tokenizer::encode_ordinary_into`] applies by hand (the `regex` crate has no lookaround).
const PRESPLIT: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// Id of `<|endoftext|>`, GPT-2's only special token: document separator and start-of-text.
pub const EOT: u32 = 50256;

/// Number of token ids in GPT-2's vocabulary, V (50,000 merges + 256 bytes + `<|endoftext|>`).
pub const VOCAB_SIZE: usize = 50257;

/// The text of the [`EOT`] token.
pub const EOT_TEXT: &str = "<|endoftext|>";

/// Tokenizer errors.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A token id ≥ `vocab_size` was given to a decoding function.
    #[error("token id {id} is not in the GPT-2 vocabulary (ids are 0..{vocab_size})")]
    UnknownId {
        /// The offending id.
        id: u32,
        /// The vocabulary size V; valid ids are `0..V`.
        vocab_size: usize,
    },
    /// The built-in BPE tables could not be constructed (a broken `tiktoken-rs` build).
    #[error("could not build the GPT-2 BPE tables from tiktoken-rs r50k_base: {0}")]
    Load(String),
}

/// Whether `<|endoftext|>` appearing in the input text becomes the special id [`EOT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Special {
    /// Special tokens in the text are ordinary text: `"<|endoftext|>"` encodes as the BPE of its 13
    /// characters, `[27, 91, 437, 1659, 5239, 91, 29]`, never 50256. The safe choice for untrusted
    /// text (HF `tokenizers` with no added tokens, tiktoken `encode_ordinary`).
    #[default]
    None,
    /// Each `<|endoftext|>` in the text becomes [`EOT`] (tiktoken `allowed_special={"<|endoftext|>"}`).
    AllowEndOfText,
}

/// The shared, immutable tables.
struct Inner {
    /// `token_bytes[id]`: the bytes of each id, `VOCAB_SIZE` entries.
    token_bytes: Vec<Box<[u8]>>,
    /// bytes → id (= merge rank) for the 50,256 mergeable tokens (not `<|endoftext|>`).
    ranks: HashMap<Box<[u8]>, u32>,
    /// `byte_ids[b]`: the id of the single-byte token `[b]`.
    byte_ids: [u32; 256],
    /// [`PRESPLIT`], compiled.
    presplit: Regex,
}

/// GPT-2's tokenizer. Cloning is cheap (an `Arc`); it is `Send + Sync` and the tables are built
/// once per process.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("encoding", &"gpt2 (r50k_base)")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// GPT-2's tokenizer (tiktoken `r50k_base`, identical to HF `gpt2`'s `vocab.json` +
    /// `merges.txt`). The first call builds the tables (about 0.1 s); later calls share them.
    ///
    /// Errors: [`TokenizerError::Load`] if the embedded tables are unusable (never for a correct
    /// build of `tiktoken-rs`).
    pub fn gpt2() -> Result<Self, TokenizerError> {
        static GPT2: OnceLock<Result<Arc<Inner>, String>> = OnceLock::new();
        match GPT2.get_or_init(build_gpt2) {
            Ok(inner) => Ok(Self {
                inner: Arc::clone(inner),
            }),
            Err(msg) => Err(TokenizerError::Load(msg.clone())),
        }
    }

    /// Number of ids, V = 50257.
    pub fn vocab_size(&self) -> usize {
        self.inner.token_bytes.len()
    }

    /// Encodes `text` into token ids; `special` decides what `<|endoftext|>` in the text means.
    /// The empty string gives `[]`. Every id is `< vocab_size()`. Time is O(n log n) in the text
    /// length, whatever the text.
    ///
    /// Example: `"Hello world"` → `[15496, 995]` (`"Hello"`, `" world"`).
    pub fn encode(&self, text: &str, special: Special) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 1);
        match special {
            Special::None => self.encode_ordinary_into(text, &mut ids),
            Special::AllowEndOfText => {
                // tiktoken `_encode_native`: leftmost non-overlapping occurrences of the special
                // text become EOT; the text between them is encoded ordinarily.
                let mut start = 0;
                for (at, _) in text.match_indices(EOT_TEXT) {
                    self.encode_ordinary_into(&text[start..at], &mut ids);
                    ids.push(EOT);
                    start = at + EOT_TEXT.len();
                }
                self.encode_ordinary_into(&text[start..], &mut ids);
            }
        }
        ids
    }

    /// Appends the ids of `text` to `ids`, with no special tokens (`Special::None`).
    ///
    /// The pre-split regex is matched without its `\s+(?!\S)` branch. A whitespace match is always
    /// a maximal run. When the run has n ≥ 2 characters and text follows it, the lookahead would
    /// have matched only the first n − 1, so the last whitespace character is given back. It then
    /// starts the next piece: `" ?\p{L}+"` and the like for a space, or a lone `\s+` otherwise. This
    /// is exactly the original alternation, because the four branches before it never match a
    /// piece that ends in whitespace.
    pub fn encode_ordinary_into(&self, text: &str, ids: &mut Vec<u32>) {
        let mut scratch = MergeScratch::default();
        let mut pos = 0;
        while let Some(end) = self.piece_end(text, pos) {
            self.bpe_piece(&text.as_bytes()[pos..end], ids, &mut scratch);
            pos = end;
        }
    }

    /// End of the pre-split piece that starts at byte `pos` of `text` (see
    /// [`Tokenizer::encode_ordinary_into`] for the lookahead), or `None` at the end of the text.
    fn piece_end(&self, text: &str, pos: usize) -> Option<usize> {
        let m = self.inner.presplit.find_at(text, pos)?;
        let mut end = m.end();
        let mut chars = m.as_str().chars();
        if let Some(last) = chars.next_back() {
            if end < text.len() && last.is_whitespace() && chars.next().is_some() {
                end -= last.len_utf8();
            }
        }
        // unreachable otherwise: every non-empty text matches at pos with a non-empty piece
        (end > pos).then_some(end)
    }

    /// Encoding step by step, for teaching and debugging: the pre-split pieces of `text` and the
    /// BPE ids of each, with no special tokens. Concatenating the ids gives exactly
    /// `encode(text, Special::None)`.
    ///
    /// Example: `"Hello world"` → `[("Hello", [15496]), (" world", [995])]`.
    pub fn encode_pieces<'a>(&self, text: &'a str) -> Vec<(&'a str, Vec<u32>)> {
        let mut scratch = MergeScratch::default();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some(end) = self.piece_end(text, pos) {
            let mut ids = Vec::new();
            self.bpe_piece(&text.as_bytes()[pos..end], &mut ids, &mut scratch);
            out.push((&text[pos..end], ids));
            pos = end;
        }
        out
    }

    /// The id of the token whose bytes are exactly `bytes` (its merge rank), if there is one;
    /// never [`EOT`]. E.g. `b" world"` → `Some(995)`.
    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        self.inner.ranks.get(bytes).copied()
    }

    /// Byte-pair merge of one pre-split piece (tiktoken `byte_pair_encode` semantics: merge the
    /// adjacent pair whose concatenated bytes have the lowest rank, leftmost first, until no
    /// adjacent pair is a token) with a min-heap of candidate pairs and a linked list of parts, so
    /// O(n log n) for an n-byte piece. Appends the ids to `ids`.
    fn bpe_piece(&self, piece: &[u8], ids: &mut Vec<u32>, s: &mut MergeScratch) {
        let inner = &*self.inner;
        if let Some(&id) = inner.ranks.get(piece) {
            ids.push(id);
            return;
        }
        let n = piece.len();
        // Part i starts at byte i while alive and ends where part next[i] starts (n at the end).
        s.next.clear();
        s.next.extend(1..=n);
        s.prev.clear();
        s.prev.extend((0..n).map(|i| i.wrapping_sub(1)));
        s.id.clear();
        s.id.extend(piece.iter().map(|&b| inner.byte_ids[b as usize]));
        s.heap.clear();
        let pair = |s: &MergeScratch, i: usize| -> Option<(u32, usize)> {
            let j = s.next[i];
            let end = if j < n { s.next[j] } else { return None };
            inner.ranks.get(&piece[i..end]).map(|&rank| (rank, end))
        };
        for i in 0..n.saturating_sub(1) {
            if let Some((rank, end)) = pair(s, i) {
                s.heap.push(Reverse((rank, i, end)));
            }
        }
        while let Some(Reverse((rank, i, end))) = s.heap.pop() {
            // Stale unless part i is alive and its pair still spans exactly piece[i..end].
            let j = s.next[i];
            if s.id[i] == DEAD || j >= n || s.next[j] != end {
                continue;
            }
            s.id[i] = rank;
            s.id[j] = DEAD;
            s.next[i] = end;
            if end < n {
                s.prev[end] = i;
            }
            if let Some((r, e)) = pair(s, i) {
                s.heap.push(Reverse((r, i, e)));
            }
            let p = s.prev[i];
            if p < n {
                if let Some((r, e)) = pair(s, p) {
                    s.heap.push(Reverse((r, p, e)));
                }
            }
        }
        let mut i = 0;
        while i < n {
            ids.push(s.id[i]);
            i = s.next[i];
        }
    }

    /// The raw bytes of one token (a token may hold part of a UTF-8 character, e.g. id 8582 is
    /// `[0xF0, 0x9F]`, the first half of most emoji; [`EOT`] is `b"<|endoftext|>"`).
    ///
    /// Errors: [`TokenizerError::UnknownId`] if `id >= vocab_size()`.
    pub fn token_bytes(&self, id: u32) -> Result<&[u8], TokenizerError> {
        self.inner
            .token_bytes
            .get(id as usize)
            .map(|b| &b[..])
            .ok_or(TokenizerError::UnknownId {
                id,
                vocab_size: VOCAB_SIZE,
            })
    }

    /// The concatenated bytes of `ids` (exact; may be invalid UTF-8 if a sequence is cut).
    ///
    /// Errors: [`TokenizerError::UnknownId`] for the first id ≥ `vocab_size()`.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        let mut len = 0;
        for &id in ids {
            len += self.token_bytes(id)?.len();
        }
        let mut out = Vec::with_capacity(len);
        for &id in ids {
            out.extend_from_slice(self.token_bytes(id)?);
        }
        Ok(out)
    }

    /// Decodes `ids` to text. Lossy like Hugging Face's ByteLevel decoder: each maximal invalid
    /// UTF-8 subsequence (e.g. half an emoji) becomes one U+FFFD. [`EOT`] decodes to
    /// `"<|endoftext|>"`. For ids from [`Tokenizer::encode`], `decode(encode(s)) == s`.
    ///
    /// Errors: [`TokenizerError::UnknownId`] for the first id ≥ `vocab_size()`.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        let bytes = self.decode_bytes(ids)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }
}

/// Marks a part that was merged into its left neighbour.
const DEAD: u32 = u32::MAX;

/// Reusable buffers for [`Tokenizer::bpe_piece`], one set per `encode` call.
#[derive(Default)]
struct MergeScratch {
    /// `next[i]`: start of the part after part i (n past the end).
    next: Vec<usize>,
    /// `prev[i]`: start of the part before part i (`usize::MAX` for the first).
    prev: Vec<usize>,
    /// `id[i]`: the token of part i, or [`DEAD`].
    id: Vec<u32>,
    /// Candidate merges `(rank, left start, right end)`, smallest rank then leftmost first.
    heap: BinaryHeap<Reverse<(u32, usize, usize)>>,
}

/// Builds the tables from tiktoken-rs's `r50k_base`. tiktoken-rs `unwrap`s internally. A panic
/// there cannot happen with its embedded, compile-time asset, but if it did it would come back
/// as an error and not cross our API.
fn build_gpt2() -> Result<Arc<Inner>, String> {
    let built = catch_unwind(AssertUnwindSafe(|| -> Result<Vec<Box<[u8]>>, String> {
        let bpe = tiktoken_rs::r50k_base().map_err(|e| e.to_string())?;
        Ok(bpe
            ._decode_native_and_split((0..VOCAB_SIZE as u32).collect())
            .map(Vec::into_boxed_slice)
            .collect())
    }));
    let token_bytes = match built {
        Ok(r) => r?,
        Err(_) => return Err("tiktoken-rs panicked while building r50k_base".to_string()),
    };
    if token_bytes.len() != VOCAB_SIZE {
        return Err(format!(
            "expected {VOCAB_SIZE} tokens, got {}",
            token_bytes.len()
        ));
    }
    if &token_bytes[EOT as usize][..] != EOT_TEXT.as_bytes() {
        return Err(format!("id {EOT} is not {EOT_TEXT}"));
    }
    let mut ranks = HashMap::with_capacity(VOCAB_SIZE);
    let mut byte_ids = [DEAD; 256];
    for (id, bytes) in token_bytes.iter().enumerate().take(EOT as usize) {
        if let [b] = bytes[..] {
            byte_ids[b as usize] = id as u32;
        }
        if ranks.insert(bytes.clone(), id as u32).is_some() {
            return Err(format!("duplicate token bytes {bytes:?} at id {id}"));
        }
    }
    if let Some(b) = byte_ids.iter().position(|&id| id == DEAD) {
        return Err(format!("byte {b:#04x} has no single-byte token"));
    }
    let presplit = Regex::new(PRESPLIT).map_err(|e| e.to_string())?;
    Ok(Arc::new(Inner {
        token_bytes,
        ranks,
        byte_ids,
        presplit,
    }))
}

/// Incremental decoder for streaming generation: push ids one at a time, get back the text that is
/// now complete. An incomplete trailing UTF-8 sequence (e.g. the first 2 of an emoji's 4 bytes,
/// id 8582) is held back until the following tokens complete it, so no chunk ever contains a
/// broken character. Invalid bytes that can never become valid are emitted as U+FFFD at once.
/// The concatenation of all `push` results and `finish()` equals `Tokenizer::decode` of all ids.
#[derive(Debug, Clone, Default)]
pub struct StreamDecoder {
    /// Bytes received but not yet emitted: at most an incomplete UTF-8 sequence (≤ 3 bytes).
    pending: Vec<u8>,
}

impl StreamDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one id; returns the text completed by it (possibly empty).
    ///
    /// Errors: [`TokenizerError::UnknownId`] if `id >= tok.vocab_size()`; the decoder is unchanged.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String, TokenizerError> {
        self.pending.extend_from_slice(tok.token_bytes(id)?);
        let mut out = String::new();
        let mut start = 0;
        while start < self.pending.len() {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                }
                Err(e) => {
                    let valid = start + e.valid_up_to();
                    // Valid by construction; the lossy call cannot replace anything.
                    out.push_str(&String::from_utf8_lossy(&self.pending[start..valid]));
                    match e.error_len() {
                        // An invalid sequence: the same single U+FFFD `from_utf8_lossy` would give.
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            start = valid + n;
                        }
                        // An incomplete sequence at the end: wait for more bytes.
                        None => {
                            start = valid;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        Ok(out)
    }

    /// Ends the stream: returns the held-back bytes, lossily (an unfinished sequence becomes one
    /// U+FFFD, as in [`Tokenizer::decode`]), and resets the decoder.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }

    /// Bytes held back waiting for the rest of a UTF-8 sequence (0 to 3 bytes).
    pub fn pending_bytes(&self) -> &[u8] {
        &self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> Tokenizer {
        Tokenizer::gpt2().expect("tokenizer loads")
    }

    #[test]
    fn tokenizer_is_send_sync_and_clone_shares_tables() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Tokenizer>();
        let a = tok();
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
        assert!(
            Arc::ptr_eq(&a.inner, &tok().inner),
            "built once per process"
        );
        assert_eq!(a.vocab_size(), VOCAB_SIZE);
    }

    #[test]
    fn hello_world_hand_worked() {
        // tokenizers (HF, gpt2 vocab.json + merges.txt): "Hello world" -> [15496, 995]
        let t = tok();
        assert_eq!(t.encode("Hello world", Special::None), vec![15496, 995]);
        assert_eq!(t.token_bytes(15496).unwrap(), b"Hello");
        assert_eq!(t.token_bytes(995).unwrap(), b" world");
        assert_eq!(t.encode("Hello world!", Special::None), vec![15496, 995, 0]);
        assert_eq!(t.token_bytes(0).unwrap(), b"!");
        assert_eq!(t.decode(&[15496, 995]).unwrap(), "Hello world");
    }

    #[test]
    fn empty_string_is_no_tokens() {
        let t = tok();
        assert!(t.encode("", Special::None).is_empty());
        assert!(t.encode("", Special::AllowEndOfText).is_empty());
        assert_eq!(t.decode(&[]).unwrap(), "");
    }

    #[test]
    fn special_token_policy() {
        // tokenizers: "a<|endoftext|>b" -> [64, 27, 91, 437, 1659, 5239, 91, 29, 65]
        // tiktoken:   encode("a<|endoftext|>b", allowed_special="all") -> [64, 50256, 65]
        let t = tok();
        let text = "a<|endoftext|>b";
        assert_eq!(
            t.encode(text, Special::None),
            vec![64, 27, 91, 437, 1659, 5239, 91, 29, 65]
        );
        assert_eq!(t.encode(text, Special::AllowEndOfText), vec![64, EOT, 65]);
        assert_eq!(t.encode(EOT_TEXT, Special::AllowEndOfText), vec![EOT]);
        assert_eq!(t.decode(&[EOT]).unwrap(), EOT_TEXT);
        assert_eq!(t.decode(&[64, EOT, 65]).unwrap(), text);
        // Without the special text, both policies agree.
        let plain = "no special tokens <| here |>";
        assert_eq!(
            t.encode(plain, Special::None),
            t.encode(plain, Special::AllowEndOfText)
        );
    }

    #[test]
    fn unknown_id_is_an_error() {
        let t = tok();
        for bad in [VOCAB_SIZE as u32, u32::MAX] {
            match t.decode(&[15496, bad]) {
                Err(TokenizerError::UnknownId { id, vocab_size }) => {
                    assert_eq!((id, vocab_size), (bad, VOCAB_SIZE))
                }
                other => panic!("expected UnknownId, got {other:?}"),
            }
            assert!(t.decode_bytes(&[bad]).is_err());
            assert!(t.token_bytes(bad).is_err());
            let mut s = StreamDecoder::new();
            assert!(s.push(&t, bad).is_err());
        }
        assert!(t.token_bytes(EOT).is_ok());
    }

    #[test]
    fn lossy_decode_matches_hf() {
        // tokenizers: "🦀" -> [8582, 99, 222]; decode([8582]) -> '\ufffd';
        // decode([8582, 4876]) -> '\ufffd task'; decode([99, 8582, 99]) -> '\ufffd\ufffd'
        let t = tok();
        assert_eq!(t.encode("🦀", Special::None), vec![8582, 99, 222]);
        assert_eq!(t.decode_bytes(&[8582]).unwrap(), vec![0xF0, 0x9F]);
        assert_eq!(t.decode(&[8582]).unwrap(), "\u{FFFD}");
        assert_eq!(t.decode(&[8582, 4876]).unwrap(), "\u{FFFD} task");
        assert_eq!(t.decode(&[99, 8582, 99]).unwrap(), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn stream_decoder_holds_back_split_emoji() {
        let t = tok();
        let mut s = StreamDecoder::new();
        // "🦀" = [8582 (F0 9F), 99 (A6), 222 (80)]
        assert_eq!(s.push(&t, 15496).unwrap(), "Hello");
        assert_eq!(s.push(&t, 8582).unwrap(), "");
        assert_eq!(s.pending_bytes(), &[0xF0, 0x9F]);
        assert_eq!(s.push(&t, 99).unwrap(), "");
        assert_eq!(s.push(&t, 222).unwrap(), "🦀");
        assert!(s.pending_bytes().is_empty());
        assert_eq!(s.push(&t, 995).unwrap(), " world");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn stream_decoder_lossy_cases_match_decode() {
        let t = tok();
        for ids in [
            vec![8582u32],
            vec![8582, 4876],
            vec![99, 8582, 99],
            vec![8582, 8582, 99, 222],
            vec![222, 222, 15496],
        ] {
            let mut s = StreamDecoder::new();
            let mut got = String::new();
            for &id in &ids {
                let chunk = s.push(&t, id).unwrap();
                got.push_str(&chunk);
            }
            got.push_str(&s.finish());
            assert_eq!(got, t.decode(&ids).unwrap(), "ids {ids:?}");
            assert!(s.pending_bytes().is_empty());
        }
    }

    /// tiktoken's `_byte_pair_merge` written plainly: O(n²), the reference for `bpe_piece`.
    fn bpe_piece_naive(t: &Tokenizer, piece: &[u8]) -> Vec<u32> {
        let mut parts: Vec<&[u8]> = piece.chunks(1).collect();
        loop {
            let mut best: Option<(u32, usize)> = None;
            for i in 0..parts.len().saturating_sub(1) {
                let joined = [parts[i], parts[i + 1]].concat();
                if let Some(&r) = t.inner.ranks.get(&joined[..]) {
                    match best {
                        Some((br, _)) if br <= r => {}
                        _ => best = Some((r, i)),
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let start = parts[i].as_ptr() as usize - piece.as_ptr() as usize;
            let len = parts[i].len() + parts[i + 1].len();
            parts[i] = &piece[start..start + len];
            parts.remove(i + 1);
        }
        parts.iter().map(|p| t.inner.ranks[*p]).collect()
    }

    #[test]
    fn heap_merge_matches_naive_merge() {
        let t = tok();
        let mut rng = crate::Rng::seed(99);
        let alphabets: [&[u8]; 4] = [b"ab", b" abcde", b"0123456789", "\u{1F980}é\n ".as_bytes()];
        let mut scratch = MergeScratch::default();
        for i in 0..3000 {
            let alphabet = alphabets[i % alphabets.len()];
            let len = 1 + rng.below(60) as usize;
            let piece: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let mut got = Vec::new();
            t.bpe_piece(&piece, &mut got, &mut scratch);
            assert_eq!(got, bpe_piece_naive(&t, &piece), "piece {piece:?}");
        }
    }

    #[test]
    fn whitespace_test_agrees_with_regex_class() {
        // encode_ordinary_into tells a `\s+` match by `char::is_whitespace` on its last char; both
        // are Unicode White_Space, checked here over every scalar value.
        let ws = Regex::new(r"^\s$").unwrap();
        let mut buf = [0u8; 4];
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            assert_eq!(
                ws.is_match(c.encode_utf8(&mut buf)),
                c.is_whitespace(),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn every_byte_is_a_token() {
        // Byte-level BPE: each of the 256 bytes is a single token, so any byte string is encodable.
        let t = tok();
        let mut seen = [false; 256];
        for id in 0..t.vocab_size() as u32 {
            if let [b] = t.token_bytes(id).unwrap() {
                seen[*b as usize] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
}
