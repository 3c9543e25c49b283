#!/usr/bin/env python3
"""Build prompt → completion JSONL for `gpt2 train --task sft` from XQuAD (English).

    /tmp/gpt2-anchors/venv/bin/python scripts/make_qa_sft.py [XQUAD_JSON] [OUT_DIR] [--n-ctx 256] [--answer-tokens 32]

Split by article: the first 38 articles train, the last 10 test (no context is shared).
Each question becomes

    {"prompt": "<context>\\nQuestion: <question>\\nAnswer:", "completion": " <answer>\\n"}

(`gpt2 train --task sft` appends <|endoftext|>; at test time `gpt2 generate --stop "\\n"` ends the
answer at the newline). Contexts are cut from the left, at a word boundary, so that the sequence
fits in n_ctx tokens: prompt + completion + <|endoftext|> for train; prompt + --answer-tokens
for test. Training questions whose answer falls in the cut-away part are dropped (the model could
not see it); test questions are all kept, whatever was cut. `answer_start` counts Unicode
characters (Python str indices), not bytes.

Writes OUT_DIR/train.jsonl, OUT_DIR/test.jsonl (test lines also carry "answers", "id",
"context_cut") and prints counts. Token counts use the GPT-2 BPE from
shared/data/gpt2-tokenizer (the `tokenizers` package).
"""

import argparse
import json
import os

from tokenizers import Tokenizer, models, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))


class _Tok:
    """GPT-2's byte-level BPE (HF `tokenizers`), called like a transformers tokenizer."""

    def __init__(self, d):
        self.t = Tokenizer(models.BPE.from_file(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt")))
        self.t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        assert self.t.encode(" Hello, world!").ids == [18435, 11, 995, 0]

    def __call__(self, text):
        return {"input_ids": self.t.encode(text).ids}


def tokenizer():
    for d in [os.path.join(HERE, "..", "..", "shared", "data", "gpt2-tokenizer"), "/work/shared/data/gpt2-tokenizer"]:
        if os.path.isdir(d):
            return _Tok(d)
    raise SystemExit("gpt2-tokenizer files not found")


def prompt_of(context, question):
    return f"{context}\nQuestion: {question}\nAnswer:"


def fit(tok, context, question, budget):
    """The longest suffix of context (starting at a word) whose prompt has ≤ budget tokens;
    returns (cut, prompt) with cut = the index (in characters) where the kept context starts."""
    n = lambda c: len(tok(prompt_of(c, question))["input_ids"])  # noqa: E731
    if n(context) <= budget:
        return 0, prompt_of(context, question)
    starts = [0] + [i + 1 for i, ch in enumerate(context) if ch == " "]
    lo, hi = 0, len(starts) - 1  # find the smallest start index that fits
    while lo < hi:
        mid = (lo + hi) // 2
        if n(context[starts[mid]:]) <= budget:
            hi = mid
        else:
            lo = mid + 1
    cut = starts[lo]
    return cut, prompt_of(context[cut:], question)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("xquad", nargs="?", default="/work/shared/data/qa-xquad-en/xquad.en.json")
    ap.add_argument("out", nargs="?", default="/tmp/qa-sft")
    ap.add_argument("--n-ctx", type=int, default=256)
    ap.add_argument("--answer-tokens", type=int, default=32)
    a = ap.parse_args()
    tok = tokenizer()
    articles = json.load(open(a.xquad, encoding="utf-8"))["data"]
    assert len(articles) == 48, len(articles)
    os.makedirs(a.out, exist_ok=True)
    stats = {}
    for split, arts in [("train", articles[:38]), ("test", articles[38:])]:
        rows, dropped, cut_n = [], 0, 0
        for art in arts:
            for para in art["paragraphs"]:
                ctx = para["context"]
                for qa in para["qas"]:
                    ans = qa["answers"][0]
                    start, text = ans["answer_start"], ans["text"]
                    assert ctx[start:start + len(text)] == text, (qa["id"], text)
                    completion = f" {text}\n"
                    if split == "train":
                        budget = a.n_ctx - len(tok(completion)["input_ids"]) - 1
                    else:
                        budget = a.n_ctx - a.answer_tokens
                    cut, prompt = fit(tok, ctx, qa["question"], budget)
                    cut_n += cut > 0
                    if split == "train" and start < cut:
                        dropped += 1
                        continue
                    row = {"prompt": prompt, "completion": completion}
                    if split == "test":
                        row.update({"id": qa["id"], "answers": [x["text"] for x in qa["answers"]], "context_cut": cut})
                    rows.append(row)
        with open(os.path.join(a.out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        stats[split] = {"articles": len(arts), "examples": len(rows), "contexts_cut": cut_n, "dropped_answer_cut_away": dropped}
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
