#!/usr/bin/env python3
"""Answer held-out XQuAD questions with `gpt2 generate` (greedy, --stop "\\n") and score them.

    python3 scripts/qa_eval.py MODEL_DIR /tmp/qa-sft/test.jsonl [--gpt2 target/release/gpt2] [--limit N] [--threads 1]

For each line of test.jsonl (from scripts/make_qa_sft.py) runs

    gpt2 generate --model MODEL_DIR --prompt-file P --temperature 0 --max-new-tokens 32 --stop "\\n" --json

and compares the text with the reference answers: exact match and token F1 after SQuAD's
normalization (lowercase, no punctuation, no articles a/an/the, single spaces), the maximum
over the references (the official SQuAD v1.1 evaluation). Prints the two means (in %) and writes
the predictions beside test.jsonl as predictions.jsonl. Standard library only.
"""

import argparse
import collections
import json
import os
import re
import string
import subprocess
import tempfile


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1(pred, ref):
    p, r = normalize(pred).split(), normalize(ref).split()
    common = collections.Counter(p) & collections.Counter(r)
    same = sum(common.values())
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(r)
    return 2 * prec * rec / (prec + rec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("test")
    ap.add_argument("--gpt2", default="target/release/gpt2")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", default="1")
    a = ap.parse_args()
    rows = [json.loads(line) for line in open(a.test, encoding="utf-8") if line.strip()]
    if a.limit:
        rows = rows[: a.limit]
    em_sum = f1_sum = 0.0
    out_path = os.path.join(os.path.dirname(os.path.abspath(a.test)), "predictions.jsonl")
    with open(out_path, "w", encoding="utf-8") as out, tempfile.TemporaryDirectory() as tmp:
        for i, r in enumerate(rows):
            pf = os.path.join(tmp, "prompt.txt")
            with open(pf, "w", encoding="utf-8") as f:
                f.write(r["prompt"])
            res = subprocess.run(
                [a.gpt2, "--threads", a.threads, "generate", "--model", a.model, "--prompt-file", pf,
                 "--temperature", "0", "--max-new-tokens", "32", "--stop", "\n", "--json"],
                capture_output=True, text=True, check=True,
            )
            pred = json.loads(res.stdout.strip().splitlines()[-1])["text"].strip()
            em = max(float(normalize(pred) == normalize(x)) for x in r["answers"])
            fs = max(f1(pred, x) for x in r["answers"])
            em_sum += em
            f1_sum += fs
            out.write(json.dumps({"id": r.get("id"), "prediction": pred, "answers": r["answers"], "em": em, "f1": fs}, ensure_ascii=False) + "\n")
            if (i + 1) % 25 == 0:
                print(f"  {i + 1}/{len(rows)}: EM {100 * em_sum / (i + 1):.1f} F1 {100 * f1_sum / (i + 1):.1f}", flush=True)
    n = len(rows)
    print(json.dumps({"questions": n, "exact_match": 100 * em_sum / n, "f1": 100 * f1_sum / n, "predictions": out_path}))


if __name__ == "__main__":
    main()
