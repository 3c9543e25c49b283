#!/usr/bin/env python3
"""TF-IDF + logistic-regression baseline for the classification results in docs/tasks.md.

    /tmp/gpt2-anchors/venv/bin/python scripts/baseline_tfidf.py TRAIN.tsv TEST.tsv [--text-column C] [--label-column L] [--limit N] [--json]

Reads the same TSV files as `gpt2 train --task classify` (header row; text column `sentence`,
else `text`; label column `label`; no quoting), fits word 1-2-gram TF-IDF (sublinear tf,
min_df 2) and an L2 logistic regression (C chosen from {0.5, 1, 2, 4, 8} by 5-fold
cross-validation on the training split only), and prints accuracy and macro-F1 on TEST.
`--limit N` trains on the first N rows (to match a run trained on a subset).
Needs scikit-learn.
"""

import argparse
import csv
import json
import sys

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline


def read(path, text_col, label_col):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows[0]
    if text_col is None:
        text_col = "sentence" if "sentence" in header else "text"
    ti, li = header.index(text_col), header.index(label_col)
    rows = [r for r in rows[1:] if r]
    return [r[ti] for r in rows], [r[li] for r in rows]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--text-column")
    ap.add_argument("--label-column", default="label")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    xtr, ytr = read(a.train, a.text_column, a.label_column)
    if a.limit:
        xtr, ytr = xtr[: a.limit], ytr[: a.limit]
    xte, yte = read(a.test, a.text_column, a.label_column)
    pipe = Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)),
        ("lr", LogisticRegression(max_iter=2000)),
    ])
    search = GridSearchCV(pipe, {"lr__C": [0.5, 1, 2, 4, 8]}, cv=5, n_jobs=1)
    search.fit(xtr, ytr)
    pred = search.predict(xte)
    res = {
        "accuracy": accuracy_score(yte, pred),
        "macro_f1": f1_score(yte, pred, average="macro"),
        "C": search.best_params_["lr__C"],
        "train_rows": len(xtr),
        "test_rows": len(xte),
    }
    if a.json:
        print(json.dumps(res))
    else:
        print(f"TF-IDF + LR: accuracy {res['accuracy']:.4f}  macro-F1 {res['macro_f1']:.4f}  "
              f"(C={res['C']}, {res['train_rows']} train rows, {res['test_rows']} test rows)")


if __name__ == "__main__":
    sys.exit(main())
