//! Tokenizer against the reference: exact ids from Hugging Face `tokenizers` (cross-checked with
//! tiktoken) for every case in `fixtures/tokenizer_cases.json` (written by
//! `scripts/fixtures_tokenizer.py`), round trips on hard and random strings, and streaming decode.

use gpt2::tokenizer::{Special, StreamDecoder, Tokenizer, TokenizerError, EOT, VOCAB_SIZE};
use gpt2::Rng;

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    text: String,
    ids: Vec<u32>,
}

fn tok() -> Tokenizer {
    Tokenizer::gpt2().expect("tokenizer loads")
}

fn load_cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenizer_cases.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run scripts/fixtures_tokenizer.py"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Decodes through `StreamDecoder`, checking no chunk is ever a broken character.
fn stream_decode(t: &Tokenizer, ids: &[u32]) -> String {
    let mut s = StreamDecoder::new();
    let mut out = String::new();
    for &id in ids {
        let chunk = s.push(t, id).expect("valid id");
        assert!(
            s.pending_bytes().len() <= 3,
            "pending {:?}",
            s.pending_bytes()
        );
        out.push_str(&chunk);
    }
    out.push_str(&s.finish());
    out
}

#[test]
fn fixture_ids_match_reference_exactly() {
    let t = tok();
    let cases = load_cases();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = t.encode(&case.text, Special::None);
        if got != case.ids {
            let first_bad = got
                .iter()
                .zip(&case.ids)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(case.ids.len()));
            failures.push(format!(
                "{}: first difference at index {first_bad} (got len {}, want len {}): got {:?} want {:?}",
                case.name,
                got.len(),
                case.ids.len(),
                &got[first_bad..(first_bad + 8).min(got.len())],
                &case.ids[first_bad..(first_bad + 8).min(case.ids.len())],
            ));
        }
        assert_eq!(
            t.decode(&case.ids).expect("valid ids"),
            case.text,
            "round trip {}",
            case.name
        );
        assert_eq!(
            stream_decode(&t, &case.ids),
            case.text,
            "stream {}",
            case.name
        );
        if !case.text.contains("<|endoftext|>") {
            assert_eq!(
                t.encode(&case.text, Special::AllowEndOfText),
                case.ids,
                "AllowEndOfText without the special text {}",
                case.name
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn fixture_covers_the_named_hard_cases() {
    let cases = load_cases();
    let has = |name: &str| cases.iter().any(|c| c.name == name);
    for name in [
        "empty",
        "hello_world",
        "crlf",
        "contractions_upper",
        "emoji_zwj",
        "emoji_flags",
        "accents_combining",
        "cjk",
        "control_chars",
        "very_long_word",
        "endoftext_plain",
        "tinyshakespeare_first_20kb",
        "wiki_first_00",
    ] {
        assert!(has(name), "fixture lacks case {name}");
    }
    let hello = cases.iter().find(|c| c.name == "hello_world").unwrap();
    assert_eq!(hello.ids, vec![15496, 995]);
    let eot = cases.iter().find(|c| c.name == "endoftext_alone").unwrap();
    assert_eq!(eot.ids, vec![27, 91, 437, 1659, 5239, 91, 29]);
    assert!(cases.iter().all(|c| c.ids.iter().all(|&id| id < EOT)));
}

#[test]
fn round_trip_hard_strings() {
    let t = tok();
    let hard = [
        "",
        " ",
        "\n",
        "\r\n\r\n",
        "   \t\t  \n\n\n   ",
        "trailing spaces   ",
        "I'LL don't THEY'RE we've",
        "1234567890123456789012345678901234567890",
        "👩🏽‍🚀👨‍👩‍👧‍👦🏳️‍🌈🇯🇵",
        "e\u{301}\u{302}\u{303}\u{304}",
        "\u{0}\u{1}\u{7f}\u{85}\u{a0}\u{2028}\u{feff}",
        "日本語 中文 한국어 Русский العربية हिन्दी",
        "<|endoftext|><|endoftext|>",
        "\u{10FFFF}\u{E000}\u{FFFD}",
    ];
    for s in hard {
        for special in [Special::None, Special::AllowEndOfText] {
            let ids = t.encode(s, special);
            assert!(ids.iter().all(|&id| (id as usize) < VOCAB_SIZE));
            assert_eq!(t.decode(&ids).unwrap(), s, "{s:?} {special:?}");
            assert_eq!(stream_decode(&t, &ids), s, "stream {s:?}");
        }
    }
    assert_eq!(
        t.encode("<|endoftext|><|endoftext|>", Special::AllowEndOfText),
        vec![EOT, EOT]
    );
}

/// A random char from a mix of ranges that stress the pre-split regex and multi-byte UTF-8.
fn random_char(rng: &mut Rng) -> char {
    const RANGES: &[(u32, u32)] = &[
        (0x20, 0x7E),        // ASCII printable
        (0x09, 0x0D),        // \t \n \v \f \r
        (0x00, 0x1F),        // C0 controls
        (0x80, 0x24F),       // C1, Latin-1, Latin Extended
        (0x300, 0x36F),      // combining marks
        (0x370, 0x4FF),      // Greek, Cyrillic
        (0x590, 0x6FF),      // Hebrew, Arabic
        (0x900, 0x97F),      // Devanagari
        (0x2000, 0x206F),    // general punctuation, odd spaces, ZWJ
        (0x3000, 0x30FF),    // CJK punctuation, kana
        (0x4E00, 0x9FFF),    // CJK ideographs
        (0xAC00, 0xD7A3),    // Hangul
        (0xFE00, 0xFFFD),    // variation selectors, specials
        (0x1F1E6, 0x1F1FF),  // regional indicators
        (0x1F300, 0x1FAFF),  // emoji
        (0x10000, 0x10FFFF), // everything astral
    ];
    loop {
        let (lo, hi) = RANGES[rng.below(RANGES.len() as u64) as usize];
        let cp = lo + rng.below((hi - lo + 1) as u64) as u32;
        if let Some(c) = char::from_u32(cp) {
            return c;
        }
    }
}

#[test]
fn round_trip_random_unicode() {
    let t = tok();
    let mut rng = Rng::seed(1337);
    for i in 0..2000 {
        let len = rng.below(48) as usize;
        let s: String = (0..len)
            .map(|_| {
                // Bias toward spaces and letters so words and whitespace runs form.
                match rng.below(4) {
                    0 => ' ',
                    1 => (b'a' + rng.below(26) as u8) as char,
                    _ => random_char(&mut rng),
                }
            })
            .collect();
        let ids = t.encode(&s, Special::None);
        assert_eq!(t.decode(&ids).unwrap(), s, "case {i}: {s:?}");
        assert_eq!(stream_decode(&t, &ids), s, "stream case {i}: {s:?}");
    }
}

#[test]
fn stream_equals_lossy_decode_on_random_ids() {
    // Arbitrary id sequences (mostly byte-fragment tokens) are invalid UTF-8 in many ways; the
    // streamed text must still equal the one-shot lossy decode.
    let t = tok();
    let mut rng = Rng::seed(7);
    let fragments: Vec<u32> = (0..VOCAB_SIZE as u32)
        .filter(|&id| std::str::from_utf8(t.token_bytes(id).unwrap()).is_err())
        .collect();
    assert!(fragments.len() > 100);
    for _ in 0..2000 {
        let n = rng.below(12) as usize;
        let ids: Vec<u32> = (0..n)
            .map(|_| {
                if rng.below(3) == 0 {
                    rng.below(VOCAB_SIZE as u64) as u32
                } else {
                    fragments[rng.below(fragments.len() as u64) as usize]
                }
            })
            .collect();
        assert_eq!(stream_decode(&t, &ids), t.decode(&ids).unwrap(), "{ids:?}");
    }
}

#[test]
fn stream_decoder_emoji_split_across_tokens() {
    let t = tok();
    // tokenizers: " 👨‍👩‍👧‍👦" -> 14 ids; 50169 = b" \xf0\x9f\x91" (a space and 3 of U+1F468's 4
    // bytes), 101 = b"\xa8", 447 = b"\xe2\x80", 235 = b"\x8d" (ZWJ = E2 80 8D), ...
    let text = " 👨‍👩‍👧‍👦 done";
    let ids = t.encode(text, Special::None);
    assert_eq!(
        &ids[..14],
        &[50169, 101, 447, 235, 41840, 102, 447, 235, 41840, 100, 447, 235, 41840, 99]
    );
    let mut s = StreamDecoder::new();
    let chunks: Vec<String> = ids.iter().map(|&id| s.push(&t, id).unwrap()).collect();
    assert_eq!(
        chunks[0], " ",
        "the space is emitted, the partial emoji held back"
    );
    assert_eq!(chunks[1], "👨");
    assert_eq!(chunks[2], "", "half a ZWJ");
    assert_eq!(chunks[3], "\u{200D}");
    assert_eq!(chunks.concat() + &s.finish(), text);
    for c in &chunks {
        assert!(!c.contains('\u{FFFD}'));
    }
}

#[test]
fn unknown_ids_error_with_the_id() {
    let t = tok();
    let err = t.decode(&[1, 2, 50257]).unwrap_err();
    assert!(matches!(
        err,
        TokenizerError::UnknownId {
            id: 50257,
            vocab_size: 50257
        }
    ));
    assert!(err.to_string().contains("50257"));
    let as_crate_error: gpt2::Error = err.into();
    assert!(as_crate_error.to_string().contains("50257"));
}

#[test]
fn matches_tiktoken_rs_on_random_text() {
    // Differential check against the crate whose vocabulary we use: same ids on random text with
    // whitespace runs, contractions and `<|endoftext|>` mixed in, under both policies.
    let t = tok();
    let reference = tiktoken_rs::r50k_base().expect("r50k_base");
    let mut rng = Rng::seed(2024);
    let pieces = [
        " ",
        "  ",
        "\n",
        "\n\n",
        "\r\n",
        "\t",
        "'s",
        "'LL",
        "'re",
        "<|endoftext|>",
        "123",
        "...",
    ];
    for i in 0..3000 {
        let len = rng.below(40) as usize;
        let mut s = String::new();
        for _ in 0..len {
            match rng.below(5) {
                0 => s.push_str(pieces[rng.below(pieces.len() as u64) as usize]),
                1 => s.push((b'a' + rng.below(26) as u8) as char),
                2 => s.push(' '),
                _ => s.push(random_char(&mut rng)),
            }
        }
        assert_eq!(
            t.encode(&s, Special::None),
            reference.encode_ordinary(&s),
            "case {i}: {s:?}"
        );
        assert_eq!(
            t.encode(&s, Special::AllowEndOfText),
            reference.encode_with_special_tokens(&s),
            "case {i} (AllowEndOfText): {s:?}"
        );
    }
}

#[test]
fn pathological_inputs_are_fast_and_do_not_panic() {
    // tiktoken-rs panics on this one (fancy_regex StackOverflow behind an unwrap) and takes 80 s
    // on 500k letters; ours is linear in the split and O(n log n) in the merge.
    let t = tok();
    let start = std::time::Instant::now();
    let run = " \t".repeat(500_000);
    let text = format!("{run}x");
    // `\s+(?!\S)` leaves the last whitespace char to start the next piece: "\t" then "x".
    let mut want = t.encode(&run[..run.len() - 1], Special::None);
    want.extend(t.encode("\t", Special::None));
    want.extend(t.encode("x", Special::None));
    assert_eq!(t.encode(&text, Special::None), want);
    let letters = "ab".repeat(250_000);
    let ids = t.encode(&letters, Special::None);
    assert_eq!(t.decode(&ids).unwrap(), letters);
    let digits = "7".repeat(200_000);
    assert_eq!(t.decode(&t.encode(&digits, Special::None)).unwrap(), digits);
    let secs = start.elapsed().as_secs_f64();
    assert!(secs < 20.0, "pathological inputs took {secs:.1} s");
}

/// `encode_pieces` is `encode` step by step: its pieces tile the text and its ids concatenate to
/// the reference ids (what `gpt2 tokenize --explain` prints); `token_id` inverts `token_bytes`.
#[test]
fn encode_pieces_tile_the_text_and_give_the_reference_ids() {
    let t = tok();
    for case in load_cases() {
        let pieces = t.encode_pieces(&case.text);
        let text: String = pieces.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            text, case.text,
            "{}: pieces do not tile the text",
            case.name
        );
        let ids: Vec<u32> = pieces.into_iter().flat_map(|(_, ids)| ids).collect();
        assert_eq!(ids, case.ids, "{}", case.name);
    }
    assert_eq!(
        t.encode_pieces("Hello world"),
        vec![("Hello", vec![15496]), (" world", vec![995])]
    );
    for id in [0, 995, 15496, 50255] {
        assert_eq!(t.token_id(t.token_bytes(id).unwrap()), Some(id));
    }
    assert_eq!(t.token_id(b"<|endoftext|>"), None);
}
