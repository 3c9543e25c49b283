"""Loads models/gpt2-shakespeare with Hugging Face transformers' GPT2LMHeadModel and computes the
validation loss the same way `gpt2 eval --data val.bin` does (consecutive non-overlapping windows of
n_ctx tokens, the last one shorter; mean token cross-entropy over all N-1 predicted tokens).

    target/release/gpt2 prepare --input data/tinyshakespeare.txt --out /tmp/shakes --val-fraction 0.1
    target/release/gpt2 eval --data /tmp/shakes/val.bin --json
    /tmp/gpt2-anchors/venv/bin/python scripts/check_default_model_transformers.py /tmp/shakes/val.bin
"""
import json
import sys

import numpy as np
import torch
from transformers import GPT2LMHeadModel

val_path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/shakes/val.bin"
model_dir = sys.argv[2] if len(sys.argv) > 2 else "models/gpt2-shakespeare"
header = np.fromfile(val_path, dtype="<i4", count=256)
assert header[0] == 20240520 and header[1] == 1
toks = torch.from_numpy(np.fromfile(val_path, dtype="<u2", offset=1024, count=int(header[2])).astype(np.int64))
model = GPT2LMHeadModel.from_pretrained(model_dir, torch_dtype=torch.float32).double().eval()
T = model.config.n_positions
total, count = 0.0, 0
with torch.no_grad():
    for start in range(0, len(toks) - 1, T):
        seg = toks[start:start + T + 1]
        logits = model(seg[:-1].unsqueeze(0)).logits[0]
        total += torch.nn.functional.cross_entropy(logits, seg[1:], reduction="sum").item()
        count += len(seg) - 1
print(json.dumps({"loss": total / count, "perplexity": float(np.exp(total / count)), "tokens": count}))
