"""Reference results of transformers' logits processors at the exact edges of each filter.

Writes crates/gpt2/tests/fixtures/sampling_edges.json, read by crates/gpt2/tests/sampling_edges.rs.
Each case gives logits, previous ids and the filter settings; `scores` is what transformers'
RepetitionPenaltyLogitsProcessor -> TopKLogitsWarper -> TopPLogitsWarper (temperature 1) leave,
with removed tokens as null (-inf). The distributions are built to hit each boundary exactly in
binary floating point: tied logits give probabilities 1/n exactly, so a cumulative probability
equals top_p exactly.

Run: /tmp/gpt2-anchors/venv/bin/python scripts/make_sampling_fixtures.py
"""

import json
import math
import pathlib

import numpy as np
import torch
import transformers
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates/gpt2/tests/fixtures/sampling_edges.json"

next_after_half = float(np.nextafter(np.float32(0.5), np.float32(1.0)))
before_half = float(np.nextafter(np.float32(0.5), np.float32(0.0)))

CASES = [
    # cumulative probability exactly equal to top_p: the set that reaches it is kept, no more
    ("top_p equals the mass of 1 of 4 ties", [0.0] * 4, [], None, 0.25, 1.0),
    ("top_p equals the mass of 2 of 4 ties", [0.0] * 4, [], None, 0.5, 1.0),
    ("top_p equals the mass of 3 of 4 ties", [0.0] * 4, [], None, 0.75, 1.0),
    ("top_p one ulp above 2 of 4 ties", [0.0] * 4, [], None, next_after_half, 1.0),
    ("top_p one ulp below 2 of 4 ties", [0.0] * 4, [], None, before_half, 1.0),
    ("top_p equals 3 of 8 ties", [2.0] * 8, [], None, 0.375, 1.0),
    ("top_p exact behind a leader", [1.0, 0.0, 0.0, 1.0], [], None, 0.5, 1.0),
    # ties at the k-th logit are all kept
    ("top_k 2 with a 3-way tie at the 2nd", [5.0, 3.0, 3.0, 3.0, 1.0], [], 2, None, 1.0),
    ("top_k 1 with a 3-way tie at the top", [2.0, 2.0, 1.0, 2.0], [], 1, None, 1.0),
    ("top_k 3 with the tie below the 3rd", [4.0, 3.0, 2.0, 1.0, 1.0], [], 3, None, 1.0),
    ("top_k ties then top_p exact", [1.0, 1.0, 1.0, 1.0, 0.0], [], 4, 0.5, 1.0),
    # the repetition penalty on zero (and negative zero) logits
    ("penalty 1.5 on zero, -0, positive and negative", [0.0, -0.0, 1.5, -1.5, 0.0], [0, 1, 2, 3], None, None, 1.5),
    ("penalty 0.5 on zero and a repeated id", [0.0, 2.0, -2.0, 0.0], [0, 0, 2], None, None, 0.5),
]


def run(logits, previous, top_k, top_p, penalty):
    scores = torch.tensor([logits], dtype=torch.float32)
    ids = torch.tensor([previous if previous else [0]], dtype=torch.long)
    if penalty != 1.0:
        scores = RepetitionPenaltyLogitsProcessor(penalty)(ids, scores)
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(ids, scores)
    if top_p is not None:
        scores = TopPLogitsWarper(top_p)(ids, scores)
    out = []
    for x in scores[0].tolist():
        if math.isinf(x) and x < 0:
            out.append(None)
        else:
            out.append(x)
    return out


def main():
    cases = []
    for name, logits, previous, top_k, top_p, penalty in CASES:
        cases.append(
            {
                "name": name,
                "logits": logits,
                "previous": previous,
                "top_k": top_k,
                "top_p": top_p,
                "repetition_penalty": penalty,
                "scores": run(logits, previous, top_k, top_p, penalty),
            }
        )
    doc = {
        "source": f"transformers {transformers.__version__}, torch {torch.__version__}: "
        "RepetitionPenaltyLogitsProcessor, TopKLogitsWarper, TopPLogitsWarper (min_tokens_to_keep 1)",
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
