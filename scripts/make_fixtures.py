#!/usr/bin/env python3
"""Write the small PyTorch/transformers reference fixtures under crates/gpt2/tests/fixtures/.

Run by hand (never by CI), from the repository root:

    /tmp/gpt2-anchors/venv/bin/python scripts/make_fixtures.py

Needs torch, transformers (5.x), safetensors, numpy. Everything is seeded and every reference is
computed in float64 on the CPU, so reruns give the same bytes (up to library-version changes; the
exact versions are recorded in each reference.json / train_config.json).

Writes:
  tiny/          L2 NH3 C48 V1000 T37, float32, save_pretrained (keys `transformer.*`)
  tiny-f16/      L3 NH2 C20 V500 T29, float16, written by hand like the hub's `gpt2` repo:
                 keys without prefix, `h.{i}.attn.bias` causal-mask buffers, explicit lm_head.weight
  tiny-bf16/     L1 NH4 C32 V300 T16, bfloat16, save_pretrained (keys `transformer.*`)
  tiny-sharded/  tiny's weights in 2 safetensors shards + model.safetensors.index.json
  {tiny,tiny-f16,tiny-bf16}/reference.safetensors + reference.json
  train/         train.bin (llm.c shard), grads / adamw3 / cosine6 .safetensors, train_config.json

At the end it runs scripts/fixtures_tokenizer.py if that file exists.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "crates", "gpt2", "tests", "fixtures")
VERSIONS = {
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "safetensors": safetensors.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
}

torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------------------------------------
# models


def make_config(n_layer, n_head, n_embd, vocab_size, n_positions):
    cfg = GPT2Config(
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        vocab_size=vocab_size,
        n_positions=n_positions,
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        summary_first_dropout=0.0,
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
        bos_token_id=None,  # 50256 is outside these vocabularies
        eos_token_id=None,
    )
    cfg._attn_implementation = "eager"
    return cfg


def make_model(cfg, seed):
    """A GPT2LMHeadModel with non-trivial seeded weights (float32)."""
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg)
    model.config._attn_implementation = "eager"
    assert model.lm_head.weight is model.transformer.wte.weight, "lm_head not tied to wte"
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.transformer.named_parameters():
            n = lambda: torch.randn(p.shape, generator=g, dtype=torch.float64)  # noqa: E731
            if ".ln_" in name or name.startswith("ln_f"):
                if name.endswith(".weight"):
                    p.copy_(1.0 + 0.2 * n())
                else:
                    p.copy_(0.1 * n())
            elif name.endswith(".bias"):
                p.copy_(0.1 * n())
            elif name in ("wte.weight", "wpe.weight"):
                p.copy_(0.2 * n())
            else:  # Conv1D weight matrices
                p.copy_(0.15 * n())
    model.eval()
    return model


def round_weights(model, dtype):
    """Round every parameter to `dtype` (in place, kept in the model's dtype)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(p.dtype))


def our_state(model):
    """Our parameter table: HF GPT2Model keys without `transformer.`, (in, out) Conv1D layout."""
    return {k: v for k, v in model.transformer.state_dict().items() if not k.endswith(".attn.bias")}


# ---------------------------------------------------------------------------------------------
# references


@torch.no_grad()
def logits_of(model, tokens):
    return model(input_ids=tokens, use_cache=False).logits


@torch.no_grad()
def write_reference(model, folder, seed, weight_dtype, note):
    """reference.safetensors + reference.json for a model (computed in float64)."""
    cfg = model.config
    m = model.double()
    T, V = cfg.n_positions, cfg.vocab_size
    rng = np.random.default_rng(seed)
    tokens = torch.from_numpy(rng.integers(0, V, size=(2, T))).long()
    logprobs = torch.log_softmax(logits_of(m, tokens), dim=-1)

    prompt = torch.from_numpy(rng.integers(0, V, size=(5,))).long()
    n_new = min(12, T - 5)
    seq = prompt.clone()
    margins = []
    for _ in range(n_new):
        last = logits_of(m, seq[None])[0, -1]
        top2 = last.topk(2).values
        margins.append((top2[0] - top2[1]).item())
        seq = torch.cat([seq, last.argmax()[None]])
    greedy = seq[5:]
    # the prompt seeds were picked so that no step is a near-tie (f32 implementations must agree)
    assert min(margins) > 1e-2, f"greedy near-tie in {folder}: {margins}"

    tensors = {
        "tokens": tokens.to(torch.int32).contiguous(),
        "logprobs": logprobs.to(torch.float32).contiguous(),
        "greedy_prompt": prompt.to(torch.int32).contiguous(),
        "greedy_tokens": greedy.to(torch.int32).contiguous(),
    }
    save_file(tensors, os.path.join(folder, "reference.safetensors"))
    meta = {
        "generator": "scripts/make_fixtures.py",
        "versions": VERSIONS,
        "config": {k: getattr(cfg, k) for k in ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions", "layer_norm_epsilon", "activation_function")},
        "weights_dtype": weight_dtype,
        "weights_note": note,
        "compute_dtype": "float64 (model.double(), eager attention, CPU)",
        "seed_tokens": seed,
        "greedy_min_logit_margin": min(margins),
        "files": sorted(os.listdir(folder)),
        "reference.safetensors": {
            k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()
        },
        "descriptions": {
            "tokens": "random token ids, 2 rows of n_positions",
            "logprobs": "log_softmax of the float64 logits of one full forward pass on tokens, stored float32",
            "greedy_prompt": "5 random token ids",
            "greedy_tokens": "greedy continuation, argmax of a full float64 forward pass re-run each step, no eos stop",
        },
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return tensors


def summarize(name, t):
    lp = t["logprobs"]
    g = t["greedy_tokens"].tolist()
    probs = lp.double().exp()
    ent = -(probs * lp.double()).sum(-1).mean().item()
    print(
        f"  {name}: max|logprob|={lp.abs().max().item():.3f} mean entropy={ent:.3f} nats "
        f"(uniform {math.log(lp.shape[-1]):.3f}); greedy={g} distinct={len(set(g))}"
    )
    assert torch.isfinite(lp).all()
    assert len(set(g)) > 1, f"{name}: greedy continuation is constant"


# ---------------------------------------------------------------------------------------------
# the four model folders


def build_tiny():
    cfg = make_config(n_layer=2, n_head=3, n_embd=48, vocab_size=1000, n_positions=37)
    model = make_model(cfg, seed=1000)
    d = os.path.join(FIX, "tiny")
    model.save_pretrained(d, safe_serialization=True)
    # the sharded copy of the same weights
    ds = os.path.join(FIX, "tiny-sharded")
    model.save_pretrained(ds, safe_serialization=True, max_shard_size="300KB")
    shards = sorted(f for f in os.listdir(ds) if f.endswith(".safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], shards
    check_saved(d, model)
    check_saved(ds, model)
    state32 = {k: v.clone() for k, v in our_state(model).items()}
    t = write_reference(model, d, seed=33, weight_dtype="float32", note="save_pretrained, keys transformer.*, no lm_head / attn.bias")
    return cfg, state32, t


def check_saved(folder, model):
    """The files hold exactly our tensors (with `transformer.` prefix), bit-equal to the model's."""
    idx = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            index = json.load(f)
        keys = {}
        for file in sorted(set(index["weight_map"].values())):
            keys.update(load_file(os.path.join(folder, file)))
        assert set(index["weight_map"]) == set(keys)
        total = sum(v.numel() * v.element_size() for v in keys.values())
        assert index["metadata"]["total_size"] == total, (index["metadata"], total)
    else:
        keys = load_file(os.path.join(folder, "model.safetensors"))
    ours = our_state(model)
    assert set(keys) == {"transformer." + k for k in ours}, sorted(set(keys) ^ {"transformer." + k for k in ours})
    for k, v in ours.items():
        assert torch.equal(keys["transformer." + k].to(v.dtype), v), k


def build_f16():
    cfg = make_config(n_layer=3, n_head=2, n_embd=20, vocab_size=500, n_positions=29)
    model = make_model(cfg, seed=2000)
    round_weights(model, torch.float16)
    d = os.path.join(FIX, "tiny-f16")
    os.makedirs(d, exist_ok=True)
    T = cfg.n_positions
    mask = torch.tril(torch.ones(T, T, dtype=torch.float16)).view(1, 1, T, T)
    tensors = {}
    for k, v in our_state(model).items():
        tensors[k] = v.to(torch.float16).contiguous()
        if k.endswith(".ln_1.weight"):
            i = k.split(".")[1]
            tensors[f"h.{i}.attn.bias"] = mask.clone()
    tensors["lm_head.weight"] = tensors["wte.weight"].clone()
    save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cfg_d = cfg.to_dict()
    cfg_d["architectures"] = ["GPT2LMHeadModel"]
    cfg_d.pop("dtype", None)  # transformers 5 spells it `dtype`; the hub's gpt2 repo predates that
    cfg_d["torch_dtype"] = "float16"
    cfg_d.pop("_attn_implementation", None)
    cfg_d.pop("_attn_implementation_autoset", None)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg_d, f, indent=2, sort_keys=True)
        f.write("\n")
    # the hand-written file must load into transformers as the same model
    m2 = GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
    for k, v in our_state(model).items():
        assert torch.equal(m2.transformer.state_dict()[k], v), k
    assert torch.equal(m2.lm_head.weight, model.transformer.wte.weight)
    return write_reference(model, d, seed=56, weight_dtype="float16",
                           note="written by hand: keys without prefix, h.{i}.attn.bias (1,1,T,T) causal mask, lm_head.weight == wte.weight; "
                                "references from the f16-rounded weights upcast to float64")


def build_bf16():
    cfg = make_config(n_layer=1, n_head=4, n_embd=32, vocab_size=300, n_positions=16)
    model = make_model(cfg, seed=3000)
    round_weights(model, torch.bfloat16)
    d = os.path.join(FIX, "tiny-bf16")
    ref_model = GPT2LMHeadModel(model.config)
    ref_model.load_state_dict(model.state_dict())
    ref_model.config._attn_implementation = "eager"
    ref_model.eval()
    model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    keys = load_file(os.path.join(d, "model.safetensors"))
    assert all(v.dtype == torch.bfloat16 for v in keys.values())
    for k, v in our_state(ref_model).items():
        assert torch.equal(keys["transformer." + k].float(), v), k
    return write_reference(ref_model, d, seed=15, weight_dtype="bfloat16",
                           note="save_pretrained in bfloat16, keys transformer.*; references from the bf16-rounded weights upcast to float64")


# ---------------------------------------------------------------------------------------------
# training references


B, T = 2, 16
N_TOKENS = 2000


def make_shard(path, vocab, seed):
    """A Markov chain over the ids: each id has 4 likely successors, so the loss can fall."""
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, vocab, size=(vocab, 4))
    p = np.array([0.55, 0.25, 0.12, 0.05])
    toks = np.empty(N_TOKENS, dtype=np.int64)
    toks[0] = rng.integers(0, vocab)
    for i in range(1, N_TOKENS):
        u = rng.random()
        if u < p.sum():
            j = int(np.searchsorted(np.cumsum(p), u, side="right"))
            toks[i] = succ[toks[i - 1], j]
        else:  # 3% uniform noise
            toks[i] = rng.integers(0, vocab)
    header = np.zeros(256, dtype="<i4")
    header[0], header[1], header[2] = 20240520, 1, N_TOKENS
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(toks.astype("<u2").tobytes())
    return toks


def micro_batch(toks, k):
    idx = (k * B * T + np.arange(B * T + 1)) % len(toks)
    buf = torch.from_numpy(toks[idx]).long()
    return buf[:-1].view(B, T), buf[1:].view(B, T)


def loss_of(model, x, y):
    logits = model(input_ids=x, use_cache=False).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def fresh_train_model(cfg, state32):
    model = GPT2LMHeadModel(cfg)
    model.config._attn_implementation = "eager"
    model.transformer.load_state_dict(state32, strict=False)
    model.tie_weights()
    assert model.lm_head.weight is model.transformer.wte.weight
    model = model.double()
    model.train()  # all dropouts are 0
    for k, v in our_state(model).items():
        assert torch.equal(v, state32[k].double()), k
    return model


def named_params(model):
    """(our key, parameter) for every parameter tensor, in model order (lm_head is wte)."""
    out = [(k, p) for k, p in model.transformer.named_parameters()]
    assert len(out) == len(list(model.parameters()))
    return out


def make_optimizer(model, lr, wd, betas, eps):
    ps = named_params(model)
    decay = [p for _, p in ps if p.dim() >= 2]
    no_decay = [p for _, p in ps if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=betas, eps=eps, foreach=False,
    )


def params_out(model):
    return {f"param.{k}": p.detach().to(torch.float32).contiguous() for k, p in named_params(model)}


def build_train(cfg, state32):
    d = os.path.join(FIX, "train")
    os.makedirs(d, exist_ok=True)
    toks = make_shard(os.path.join(d, "train.bin"), cfg.vocab_size, seed=4000)
    betas, eps, wd = (0.9, 0.95), 1e-8, 0.1

    # gradients of micro-batch 0
    model = fresh_train_model(cfg, state32)
    x, y = micro_batch(toks, 0)
    loss = loss_of(model, x, y)
    loss.backward()
    grads = {"loss": loss.detach().reshape(1).contiguous()}
    for k, p in named_params(model):
        grads[f"grad.{k}"] = p.grad.to(torch.float32).contiguous()
    save_file(grads, os.path.join(d, "grads.safetensors"))
    print(f"  grads: loss={loss.item():.6f} (ln V = {math.log(cfg.vocab_size):.3f})")

    # 3 AdamW steps, accumulation 2, constant lr, no clipping
    adam_lr, adam_steps, adam_accum = 1e-3, 3, 2
    model = fresh_train_model(cfg, state32)
    opt = make_optimizer(model, adam_lr, wd, betas, eps)
    k = 0
    losses = []
    for _ in range(adam_steps):
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(adam_accum):
            x, y = micro_batch(toks, k)
            k += 1
            loss = loss_of(model, x, y)
            (loss / adam_accum).backward()
            total += loss.item()
        losses.append(total / adam_accum)
        opt.step()
    out = {"losses": torch.tensor(losses, dtype=torch.float64)}
    out.update(params_out(model))
    save_file(out, os.path.join(d, "adamw3.safetensors"))
    print(f"  adamw3: losses={[round(v, 5) for v in losses]}")

    # 6 steps, cosine schedule with warmup, clipping
    cos_lr, min_lr, warmup, steps = 1e-3, 1e-4, 2, 6

    def lr_at(s):
        if s < warmup:
            return cos_lr * (s + 1) / warmup
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * (s - warmup) / (steps - warmup))) * (cos_lr - min_lr)

    def run_cosine(clip):
        model = fresh_train_model(cfg, state32)
        opt = make_optimizer(model, cos_lr, wd, betas, eps)
        losses, norms, lrs = [], [], []
        for s in range(steps):
            x, y = micro_batch(toks, s)
            opt.zero_grad(set_to_none=True)
            loss = loss_of(model, x, y)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            lr = lr_at(s)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.step()
            losses.append(loss.item())
            norms.append(norm.item())
            lrs.append(lr)
        return model, losses, norms, lrs

    clip = 1.0
    model, losses, norms, lrs = run_cosine(clip)
    if sum(n > clip for n in norms) == 0:
        # the clip must bite: take a value between the smallest and largest norm
        clip = float(f"{(min(norms) + max(norms)) / 2:.3g}")
        model, losses, norms, lrs = run_cosine(clip)
    n_clipped = sum(n > clip for n in norms)
    assert n_clipped > 0
    out = {
        "losses": torch.tensor(losses, dtype=torch.float64),
        "grad_norms": torch.tensor(norms, dtype=torch.float64),
        "lrs": torch.tensor(lrs, dtype=torch.float64),
    }
    out.update(params_out(model))
    save_file(out, os.path.join(d, "cosine6.safetensors"))
    print(f"  cosine6: clip={clip} clipped at {n_clipped}/{steps} steps; norms={[round(v, 4) for v in norms]}")
    print(f"           losses={[round(v, 5) for v in losses]} lrs={lrs}")

    conf = {
        "generator": "scripts/make_fixtures.py",
        "versions": VERSIONS,
        "model": "tiny (../tiny/model.safetensors), computed in float64",
        "shard": {"file": "train.bin", "tokens": N_TOKENS, "header": "256 x int32 LE: 20240520, 1, N, 0...; then N x uint16 LE",
                  "source": "seeded Markov chain (4 successors per id, p 0.55/0.25/0.12/0.05, 3% uniform), seed 4000"},
        "B": B,
        "T": T,
        "data_order": "no shuffle: micro-batch k (counted across steps and accumulation) reads tokens [k*B*T, k*B*T + B*T + 1) mod N; row b inputs k*B*T + b*T .. +T-1, targets shifted by one",
        "loss": "mean token cross-entropy over the B*T targets",
        "weight_decay_on": "tensors with dim >= 2 (wte, wpe, attn.c_attn/c_proj.weight, mlp.c_fc/c_proj.weight); none on LayerNorm params and biases",
        "optimizer": "torch.optim.AdamW (decoupled: p -= lr*wd*p, then bias-corrected Adam), foreach=False",
        "grads": {"micro_batch": 0, "tensors": ["loss", "grad.<key>"]},
        "adamw3": {"steps": adam_steps, "accumulation": adam_accum, "lr": adam_lr, "schedule": "constant",
                   "weight_decay": wd, "betas": list(betas), "eps": eps, "clip": None,
                   "accumulated_gradient": "mean over micro-batches (loss/accumulation per micro-batch)",
                   "losses": "mean of the micro-batch losses of each step"},
        "cosine6": {"steps": steps, "accumulation": 1, "lr": cos_lr, "min_lr": min_lr, "warmup": warmup,
                    "schedule": "s < warmup: lr*(s+1)/warmup; else min_lr + 0.5*(1+cos(pi*(s-warmup)/(steps-warmup)))*(lr-min_lr)",
                    "weight_decay": wd, "betas": list(betas), "eps": eps, "clip": clip,
                    "clip_rule": "torch.nn.utils.clip_grad_norm_: total = global L2 norm of all grads; if total > clip, grads *= clip/(total + 1e-6); grad_norms = total before clipping",
                    "clipped_steps": [i for i, n in enumerate(norms) if n > clip]},
    }
    with open(os.path.join(d, "train_config.json"), "w") as f:
        json.dump(conf, f, indent=2)
        f.write("\n")


# ---------------------------------------------------------------------------------------------


def main():
    for sub in ("tiny", "tiny-f16", "tiny-bf16", "tiny-sharded", "train"):
        shutil.rmtree(os.path.join(FIX, sub), ignore_errors=True)
    os.makedirs(FIX, exist_ok=True)
    print(f"versions: {VERSIONS}")
    print("models:")
    cfg, state32, t = build_tiny()
    summarize("tiny", t)
    summarize("tiny-f16", build_f16())
    summarize("tiny-bf16", build_bf16())
    print("train:")
    build_train(cfg, state32)

    total = 0
    for sub in ("tiny", "tiny-f16", "tiny-bf16", "tiny-sharded", "train"):
        for f in sorted(os.listdir(os.path.join(FIX, sub))):
            total += os.path.getsize(os.path.join(FIX, sub, f))
    print(f"total fixture size: {total / 1e6:.2f} MB")
    assert total < 8e6

    tok = os.path.join(ROOT, "scripts", "fixtures_tokenizer.py")
    if os.path.exists(tok):
        print(f"running {tok}")
        subprocess.run([sys.executable, tok], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
