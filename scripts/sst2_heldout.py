#!/usr/bin/env python3
"""A clean held-out split of SST-2's training file, for choosing a fine-tuning recipe without
looking at the dev set.

SST-2's training rows are the phrases of about 7,000 review sentences, so a random tail of
`train.tsv` shares most of its phrases with the rest: accuracy on it measures memory more than
sentiment. This script holds out whole sentences instead, as `dev.tsv` is: it takes `--n` random
*root* rows (rows with at least `--min-words` words that are not part of a longer row, i.e.
full sentences) and removes from training every row that is a contiguous span of words of a
held-out sentence.

    python3 scripts/sst2_heldout.py ../shared/data/sst2/train.tsv OUT_DIR [--n 800] [--seed 0]

writes OUT_DIR/train.tsv (the rest) and OUT_DIR/heldout.tsv (the held-out sentences), both with
the `sentence\tlabel` header. Standard library only.
"""

import argparse
import os
import random


def spans(words):
    """Every contiguous run of words, joined by spaces."""
    return {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=800, help="held-out sentences")
    ap.add_argument("--min-words", type=int, default=8, help="shortest held-out sentence")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    with open(a.train, encoding="utf-8") as f:
        header = f.readline()
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    texts = {t for t, _ in rows}

    # Roots: long rows that are no proper span of a longer row. Checked longest first, so each
    # row is compared with the spans of the rows longer than it.
    by_len = sorted(texts, key=lambda t: -len(t.split()))
    covered, roots = set(), []
    for t in by_len:
        w = t.split()
        if len(w) < a.min_words:
            break
        if t not in covered:
            roots.append(t)
        covered |= spans(w) - {t}
    roots.sort()
    random.Random(a.seed).shuffle(roots)
    held = set(roots[: a.n])
    gone = set().union(*(spans(t.split()) for t in held))

    label = dict((t, y) for t, y in rows)
    os.makedirs(a.out, exist_ok=True)
    kept = [(t, y) for t, y in rows if t not in gone]
    with open(os.path.join(a.out, "train.tsv"), "w", encoding="utf-8") as f:
        f.write(header)
        f.writelines(f"{t}\t{y}\n" for t, y in kept)
    with open(os.path.join(a.out, "heldout.tsv"), "w", encoding="utf-8") as f:
        f.write(header)
        f.writelines(f"{t}\t{label[t]}\n" for t in sorted(held))
    print(
        f"{len(rows)} rows, {len(roots)} sentences of >= {a.min_words} words; held out "
        f"{len(held)} sentences and removed {len(rows) - len(kept)} rows that are spans of them; "
        f"{len(kept)} training rows left"
    )


if __name__ == "__main__":
    main()
