"""The same training run in PyTorch + transformers, to check our trainer at scale (not only on fixtures).

Reads the token shards written by `gpt2 prepare` (llm.c layout), builds GPT2LMHeadModel with the same
shape, GPT-2 initialization, AdamW (decay on rank >= 2 tensors only), warm-up + cosine schedule,
gradient clipping and data order as `gpt2 train --no-shuffle`, and prints the train loss every
`--log-every` steps and the validation loss at the end (mean over consecutive windows of val.bin).

    /tmp/gpt2-anchors/venv/bin/python scripts/train_pytorch_reference.py \
        --data data/shakespeare --n-layer 4 --n-head 4 --n-embd 192 --n-ctx 128 \
        --batch-size 16 --seq-len 128 --steps 300 --lr 1e-3 --warmup 30 --min-lr 1e-4 \
        --weight-decay 0.1 --grad-clip 1.0 --dropout 0.1 --threads 2

Run by hand; CI never needs PyTorch.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel


def read_shard(path):
    header = np.fromfile(path, dtype="<i4", count=256)
    assert header[0] == 20240520 and header[1] == 1, f"{path}: not a token shard"
    n = int(header[2])
    toks = np.fromfile(path, dtype="<u2", offset=256 * 4, count=n)
    return torch.from_numpy(toks.astype(np.int64))


def main():
    ap = argparse.ArgumentParser()
    for name, typ, default in [
        ("data", str, "data/shakespeare"), ("n-layer", int, 4), ("n-head", int, 4), ("n-embd", int, 192),
        ("n-ctx", int, 128), ("batch-size", int, 16), ("seq-len", int, 128), ("grad-accum", int, 1),
        ("steps", int, 300), ("lr", float, 1e-3), ("warmup", int, 30), ("min-lr", float, 1e-4),
        ("weight-decay", float, 0.1), ("grad-clip", float, 1.0), ("dropout", float, 0.0),
        ("eval-windows", int, 0), ("threads", int, 2), ("seed", int, 1337), ("log-every", int, 25),
    ]:
        ap.add_argument("--" + name, type=typ, default=default)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = read_shard(f"{a.data}/train.bin")
    val = read_shard(f"{a.data}/val.bin")
    cfg = GPT2Config(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, n_positions=a.n_ctx,
                     vocab_size=50257, embd_pdrop=a.dropout, attn_pdrop=a.dropout, resid_pdrop=a.dropout,
                     activation_function="gelu_new")
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    B, T = a.batch_size, a.seq_len

    def batch(k, src):
        start = k * B * T
        idx = (torch.arange(B * T + 1) + start) % len(src)
        w = src[idx]
        return w[:-1].view(B, T), w[1:].view(B, T)

    def lr_at(s):
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        return a.min_lr + 0.5 * (1 + math.cos(math.pi * (s - a.warmup) / (a.steps - a.warmup))) * (a.lr - a.min_lr)

    t0 = time.time()
    k = 0
    for s in range(a.steps):
        model.train()
        opt.zero_grad()
        total = 0.0
        for _ in range(a.grad_accum):
            x, y = batch(k, train)
            k += 1
            logits = model(x).logits
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
            (loss / a.grad_accum).backward()
            total += loss.item() / a.grad_accum
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip) if a.grad_clip > 0 else 0.0
        for g in opt.param_groups:
            g["lr"] = lr_at(s)
        opt.step()
        if s % a.log_every == 0 or s == a.steps - 1:
            print(json.dumps({"step": s, "loss": round(total, 4), "grad_norm": float(norm),
                              "elapsed_s": round(time.time() - t0, 1)}), flush=True)
    model.eval()
    n_windows = a.eval_windows or (len(val) - 1) // T
    with torch.no_grad():
        losses = []
        for w in range(n_windows):
            seg = val[w * T: w * T + T + 1]
            if len(seg) < T + 1:
                break
            logits = model(seg[:-1].view(1, T)).logits
            losses.append(torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), seg[1:]).item())
    print(json.dumps({"val_loss": sum(losses) / len(losses), "val_windows": len(losses),
                      "train_seconds": round(time.time() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
