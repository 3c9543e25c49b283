#!/usr/bin/env python3
"""Reference token ids for GPT-2's byte-level BPE -> crates/gpt2/tests/fixtures/tokenizer_cases.json.

The reference is Hugging Face `tokenizers` (Rust core, Oniguruma regex) built from OpenAI's own
`encoder.json` / `vocab.bpe` (shared/data/gpt2-tokenizer/{vocab,merges}.{json,txt}), so it is
independent of `tiktoken-rs`, the crate `gpt2::tokenizer` wraps. Every case is cross-checked against
Python `tiktoken`'s `gpt2` encoding built from the same two files (hash-checked against OpenAI's
published sha256), and against the reference decoder's round trip. The script fails on any
disagreement, so a committed fixture is one all three implementations agree on.

Output: a JSON list, one case per line, `{"name": str, "text": str, "ids": [int]}`. `<|endoftext|>`
inside a text is ordinary text here (no special tokens are registered with the reference), which is
`gpt2::tokenizer::Special::None`.

Usage (from the repository root):
    /tmp/gpt2-anchors/venv/bin/python scripts/fixtures_tokenizer.py
"""

import json
import os
import random
import sys

import tiktoken
from tiktoken.load import data_gym_to_mergeable_bpe_ranks
from tiktoken_ext.openai_public import r50k_pat_str
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("GPT2_SHARED_DATA", os.path.join(os.path.dirname(ROOT), "shared", "data"))
if not os.path.isdir(DATA):
    DATA = "/work/shared/data"
VOCAB = os.path.join(DATA, "gpt2-tokenizer", "vocab.json")
MERGES = os.path.join(DATA, "gpt2-tokenizer", "merges.txt")
WIKI = os.path.join(DATA, "wikitext2-test", "wiki.test.nonempty.txt")
SHAKESPEARE = os.path.join(DATA, "tinyshakespeare.txt")
OUT = os.path.join(ROOT, "crates", "gpt2", "tests", "fixtures", "tokenizer_cases.json")
MAX_BYTES = 1_000_000

# OpenAI's published hashes of vocab.bpe and encoder.json (tiktoken_ext/openai_public.py, gpt2()).
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"


def hf_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE.from_file(VOCAB, MERGES))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def tiktoken_gpt2() -> tiktoken.Encoding:
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")  # read the local files, cache nothing
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=MERGES,
        encoder_json_file=VOCAB,
        vocab_bpe_hash=VOCAB_BPE_SHA256,
        encoder_json_hash=ENCODER_JSON_SHA256,
    )
    return tiktoken.Encoding(
        name="gpt2-local",
        explicit_n_vocab=50257,
        pat_str=r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )


def hand_cases() -> list[tuple[str, str]]:
    return [
        ("empty", ""),
        ("hello_world", "Hello world"),
        ("single_space", " "),
        ("spaces_run", "a     b"),
        ("leading_spaces", "   leading"),
        ("trailing_spaces", "trailing   "),
        ("only_spaces", "        "),
        ("newlines_multi", "line one\n\n\nline two\n\n"),
        ("newline_then_spaces", "a\n    b\n  \n c"),
        ("crlf", "first\r\nsecond\r\n\r\nthird\r\n"),
        ("tabs", "\tindented\t\ttwice\t \t end\t"),
        ("mixed_ws", " \t\n \r\n\x0b\x0c x  \n\n  y"),
        ("contractions", "don't can't won't I'm you've he'd she'll they're it's"),
        ("contractions_upper", "I'LL DON'T THEY'RE YOU'VE HE'D I'M IT'S"),
        ("contractions_odd", "'s 's's ''ll rock'n'roll o'clock '' '"),
        ("digits", "0 1 12 123 1234 12345 123456 3.14159 -42 1e10 0x1F"),
        ("long_number", "31415926535897932384626433832795028841971693993751058209749445923078164062862089986280"),
        ("numbers_mixed", "abc123def 456ghi 7 8 9 2024-01-02 12:34:56"),
        ("emoji_basic", "I ❤️ 🦀 and 🐍! 😀😃😄"),
        ("emoji_skin_tone", "👍🏻👍🏼👍🏽👍🏾👍🏿 👋🏽 hi"),
        ("emoji_zwj", "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 👩‍💻 coder, 🧑🏾‍🚀"),
        ("emoji_flags", "🇺🇸🇬🇧🇯🇵🇫🇷 🇩🇪"),
        ("accents_precomposed", "café naïve résumé Ångström Øresund Zürich façade"),
        ("accents_combining", "cafe\u0301 nai\u0308ve A\u030angstro\u0308m e\u0301\u0300\u0302"),
        ("cjk", "你好，世界！日本語のテキスト。한국어 텍스트입니다."),
        ("cyrillic", "Привет, мир! Съешь же ещё этих мягких французских булок."),
        ("arabic", "مرحبا بالعالم، هذا نص عربي."),
        ("hindi", "नमस्ते दुनिया, यह हिंदी पाठ है।"),
        ("greek_hebrew_thai", "Καλημέρα κόσμε שלום עולם สวัสดีชาวโลก"),
        ("control_chars", "nul\x00bell\x07esc\x1b[31mred\x1b[0m del\x7f end"),
        ("c1_and_odd_spaces", "nel\x85nbsp\u00a0thin\u2009ideo\u3000ls\u2028ps\u2029zwsp\u200bbom\ufeffx"),
        ("punctuation", "Hello, world!!! What?! (yes) [no] {maybe} <tag/> @user #tag $5 %d ^_^ &amp; *bold*"),
        ("code", "fn main() {\n    let x: Vec<u32> = vec![1, 2, 3];\n    println!(\"{x:?}\");\n}\n"),
        ("url_email", "https://example.com/path?q=1&r=two#frag mail@example.org"),
        ("math_symbols", "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ ≈ π, √2 ≠ ∞ — “quotes” ‘single’ … •"),
        ("endoftext_plain", "before<|endoftext|>after <|endoftext|> <|endoftext"),
        ("endoftext_alone", "<|endoftext|>"),
        ("repeated_char", "a" * 300 + " " + "!" * 50),
        ("long_ws_run", " \t\n" * 3000 + "end " + " " * 3000 + "x" + "\n" * 3000),
        ("long_digit_run", "9" * 3000 + " " + "1234567890" * 300),
        ("very_long_word", "".join(random.Random(5000).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5000))),
        ("ufffd_literal", "replacement \ufffd char"),
        ("astral_math", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕿𝖊𝖝𝖙 𝒜ℬ𝒞 𐍈"),
    ]


def random_unicode_cases(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """Random strings drawn from several scripts, whitespace and punctuation."""
    blocks = [
        (0x20, 0x7E), (0x09, 0x0D), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x4FF),
        (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x2000, 0x206F), (0x3040, 0x30FF),
        (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x1F300, 0x1F64F), (0x1F900, 0x1F9FF),
    ]
    out = []
    for i in range(n):
        chars = []
        for _ in range(rng.randint(1, 40)):
            lo, hi = rng.choice(blocks)
            chars.append(chr(rng.randint(lo, hi)))
        out.append((f"random_unicode_{i:02}", "".join(chars)))
    return out


def main() -> int:
    hf = hf_tokenizer()
    tk = tiktoken_gpt2()

    cases = hand_cases()
    with open(WIKI, encoding="utf-8") as f:
        wiki = f.read().split("\n")
    wiki = [line for line in wiki if line != ""]
    cases += [(f"wiki_first_{i:02}", line) for i, line in enumerate(wiki[:20])]
    rng = random.Random(20240520)
    picks = sorted(rng.sample(range(20, len(wiki)), 250))
    cases += [(f"wiki_line_{i:04}", wiki[i]) for i in picks]
    with open(SHAKESPEARE, "rb") as f:
        cases.append(("tinyshakespeare_first_20kb", f.read(20_000).decode("utf-8")))
    cases += random_unicode_cases(random.Random(7), 40)

    names = [name for name, _ in cases]
    assert len(names) == len(set(names)), "duplicate case names"

    records = []
    mismatches = 0
    for name, text in cases:
        ids = hf.encode(text).ids
        ids_tk = tk.encode(text, disallowed_special=())
        if ids != ids_tk:
            mismatches += 1
            print(f"MISMATCH {name}: tokenizers {ids[:20]}... tiktoken {ids_tk[:20]}...", file=sys.stderr)
        back = hf.decode(ids, skip_special_tokens=False)
        if back != text:
            mismatches += 1
            print(f"ROUND TRIP FAILED {name}: {back!r} != {text!r}", file=sys.stderr)
        if max(ids, default=0) >= 50256:
            mismatches += 1
            print(f"UNEXPECTED SPECIAL ID {name}", file=sys.stderr)
        records.append({"name": name, "text": text, "ids": ids})

    # Facts the Rust unit tests hard-code, printed for provenance.
    print("Hello world ->", hf.encode("Hello world").ids)
    print("<|endoftext|> as text ->", hf.encode("<|endoftext|>").ids)
    print("tiktoken allowed special ->", tk.encode("a<|endoftext|>b", allowed_special="all"))
    crab = hf.encode("🦀").ids
    print("🦀 ->", crab, "decode first alone ->", repr(hf.decode(crab[:1])))
    print("lossy [crab[0]] + ' ok' ->", repr(hf.decode(crab[:1] + hf.encode(" ok").ids)))

    body = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=True) for r in records) + "\n]\n"
    size = len(body.encode())
    if size > MAX_BYTES:
        print(f"fixture is {size} bytes > {MAX_BYTES}", file=sys.stderr)
        return 1
    if mismatches:
        print(f"{mismatches} disagreements; not writing {OUT}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="ascii") as f:
        f.write(body)
    print(f"wrote {len(records)} cases, {sum(len(r['ids']) for r in records)} ids, {size} bytes -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
