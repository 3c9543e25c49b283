//! `gpt2 tokenize --explain [--merges]`: GPT-2's tokenizer step by step — the pre-tokenizer's
//! pieces ([`Tokenizer::encode_pieces`]), each token's id, bytes and its string in `vocab.json`'s
//! byte-to-unicode alphabet (a space is `Ġ`), and, with `--merges`, the byte-pair merges that
//! build each piece's tokens, lowest rank first (a GPT-2 token's id is its merge rank).
//!
//! The merge trace is the textbook quadratic loop, recomputed here for display; it must end in the
//! library's ids (an error otherwise), so it cannot drift from the real encoder.

use std::io::Write;

use anyhow::bail;
use gpt2::tokenizer::{Special, Tokenizer, EOT, EOT_TEXT};
use serde_json::json;

/// One merge: the left and right parts (bytes) and the id of the token they form.
type Merge = (Vec<u8>, Vec<u8>, u32);

/// One pre-tokenizer piece and what became of it.
struct Piece<'a> {
    text: &'a str,
    ids: Vec<u32>,
    /// `<|endoftext|>` recognised as the special token (never merged).
    special: bool,
    /// (left, right, merged id) in the order applied.
    merges: Vec<Merge>,
}

/// GPT-2's `bytes_to_unicode` (OpenAI `encoder.py`): the printable bytes `!`..`~`, `¡`..`¬`,
/// `®`..`ÿ` stand for themselves; the other 68 bytes map, in order, to U+0100 onwards (so the
/// space 0x20 is `Ġ` U+0120 and the newline 0x0A is `Ċ` U+010A). `vocab.json` and `merges.txt`
/// spell every token in this alphabet.
pub fn byte_to_unicode(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).expect("U+0100..U+0143 are chars")
}

/// A token's bytes in the `vocab.json` alphabet.
pub fn vocab_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_unicode(b)).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The merges that turn `piece` into tokens: repeatedly join the adjacent pair whose
/// concatenation is the token of lowest id (rank), leftmost on ties, until no pair is a token.
fn merge_trace(tok: &Tokenizer, piece: &[u8]) -> (Vec<u32>, Vec<Merge>) {
    let mut parts: Vec<Vec<u8>> = piece.iter().map(|&b| vec![b]).collect();
    let mut steps = Vec::new();
    loop {
        let mut best: Option<(u32, usize)> = None;
        for k in 0..parts.len().saturating_sub(1) {
            let joined = [parts[k].as_slice(), parts[k + 1].as_slice()].concat();
            if let Some(rank) = tok.token_id(&joined) {
                if best.is_none_or(|(r, _)| rank < r) {
                    best = Some((rank, k));
                }
            }
        }
        let Some((rank, k)) = best else { break };
        let right = parts.remove(k + 1);
        steps.push((parts[k].clone(), right.clone(), rank));
        parts[k].extend_from_slice(&right);
    }
    let ids = parts
        .iter()
        .map(|p| {
            tok.token_id(p)
                .expect("single bytes and merged pairs are tokens")
        })
        .collect();
    (ids, steps)
}

/// Pieces of `text`, with `<|endoftext|>` as its own special piece when `special` allows it.
fn pieces<'a>(tok: &Tokenizer, text: &'a str, special: Special) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    let plain = |s: &'a str, out: &mut Vec<Piece<'a>>| {
        for (p, ids) in tok.encode_pieces(s) {
            out.push(Piece {
                text: p,
                ids,
                special: false,
                merges: Vec::new(),
            });
        }
    };
    match special {
        Special::None => plain(text, &mut out),
        Special::AllowEndOfText => {
            let mut start = 0;
            for (at, _) in text.match_indices(EOT_TEXT) {
                plain(&text[start..at], &mut out);
                out.push(Piece {
                    text: &text[at..at + EOT_TEXT.len()],
                    ids: vec![EOT],
                    special: true,
                    merges: Vec::new(),
                });
                start = at + EOT_TEXT.len();
            }
            plain(&text[start..], &mut out);
        }
    }
    out
}

/// Runs `gpt2 tokenize --explain`.
pub fn run(
    tok: &Tokenizer,
    text: &str,
    special: Special,
    as_json: bool,
    with_merges: bool,
) -> anyhow::Result<()> {
    let mut ps = pieces(tok, text, special);
    let ids: Vec<u32> = ps.iter().flat_map(|p| p.ids.iter().copied()).collect();
    if ids != tok.encode(text, special) {
        bail!("internal error: the pieces' ids differ from encode()");
    }
    if with_merges {
        for p in ps.iter_mut().filter(|p| !p.special) {
            let (got, steps) = merge_trace(tok, p.text.as_bytes());
            if got != p.ids {
                bail!(
                    "internal error: the merge trace of {:?} gives {got:?}, encode gives {:?}",
                    p.text,
                    p.ids
                );
            }
            p.merges = steps;
        }
    }
    let mut out = std::io::stdout().lock();
    if as_json {
        let pieces: Vec<_> = ps
            .iter()
            .map(|p| {
                let tokens: Vec<_> = p
                    .ids
                    .iter()
                    .map(|&id| {
                        let b = tok.token_bytes(id).expect("ids from encode are valid");
                        json!({"id": id, "bytes": b, "vocab": vocab_string(b)})
                    })
                    .collect();
                let mut v = json!({"piece": p.text, "special": p.special, "tokens": tokens});
                if with_merges {
                    v["merges"] = p
                        .merges
                        .iter()
                        .map(|(l, r, id)| {
                            json!({"left": vocab_string(l), "right": vocab_string(r), "id": id})
                        })
                        .collect();
                }
                v
            })
            .collect();
        writeln!(
            out,
            "{}",
            json!({"text": text, "pieces": pieces, "ids": ids})
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:?}: {} bytes → {} pieces → {} tokens",
        text,
        text.len(),
        ps.len(),
        ids.len()
    )?;
    let label = |p: &Piece| {
        let s = format!("{:?}", p.text);
        if s.chars().count() > 24 {
            format!("{}…", s.chars().take(23).collect::<String>())
        } else {
            s
        }
    };
    let wp = ps
        .iter()
        .map(|p| label(p).chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let wb = ps
        .iter()
        .flat_map(|p| p.ids.iter())
        .map(|&id| hex(tok.token_bytes(id).unwrap_or_default()).len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<wp$}  {:>5}  {:<wb$}  vocab.json",
        "piece", "id", "bytes"
    )?;
    for p in &ps {
        for (k, &id) in p.ids.iter().enumerate() {
            let b = tok.token_bytes(id)?;
            let first = if k == 0 { label(p) } else { String::new() };
            let v = if p.special {
                format!("{EOT_TEXT} (special)")
            } else {
                vocab_string(b)
            };
            writeln!(out, "{first:<wp$}  {id:>5}  {:<wb$}  {v}", hex(b))?;
        }
    }
    writeln!(
        out,
        "ids: {}",
        ids.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )?;
    if with_merges {
        writeln!(
            out,
            "\nmerges, lowest id first (in vocab.json's alphabet; Ġ is a space):"
        )?;
        for p in ps.iter().filter(|p| !p.special) {
            let mut parts: Vec<String> = p
                .text
                .bytes()
                .map(|b| byte_to_unicode(b).to_string())
                .collect();
            writeln!(out, "{}  {}", label(p), parts.join(" "))?;
            for (l, r, id) in &p.merges {
                let (l, r) = (vocab_string(l), vocab_string(r));
                let k = (0..parts.len() - 1)
                    .find(|&k| parts[k] == l && parts[k + 1] == r)
                    .expect("the merged pair is adjacent");
                parts[k] = format!("{l}{r}");
                parts.remove(k + 1);
                writeln!(out, "  {:>5}  {l} + {r}  →  {}", id, parts.join(" "))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_to_unicode_matches_gpt2_encoder_py() {
        assert_eq!(byte_to_unicode(b' '), 'Ġ');
        assert_eq!(byte_to_unicode(b'\n'), 'Ċ');
        assert_eq!(byte_to_unicode(b'a'), 'a');
        assert_eq!(byte_to_unicode(0), '\u{100}');
        assert_eq!(byte_to_unicode(0xAD), '\u{143}'); // the last of the 68 remapped bytes
        let all: std::collections::HashSet<char> = (0..=255u8).map(byte_to_unicode).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn merge_trace_ends_in_the_encoder_ids() {
        let tok = Tokenizer::gpt2().unwrap();
        for text in [
            "Hello world",
            " tokenization",
            "  \n\n 2024!! naïve 🤗 <|endoftext|>",
        ] {
            for (piece, ids) in tok.encode_pieces(text) {
                assert_eq!(merge_trace(&tok, piece.as_bytes()).0, ids, "{piece:?}");
            }
        }
    }
}
