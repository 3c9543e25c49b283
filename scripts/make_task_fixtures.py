#!/usr/bin/env python3
"""Write the PyTorch/transformers reference fixtures of the tasks (classification, prompt →
completion fine-tuning, sliding-window perplexity) under crates/gpt2/tests/fixtures/tasks/.

Run by hand (never by CI), from the repository root:

    /tmp/gpt2-anchors/venv/bin/python scripts/make_task_fixtures.py

and, to check that `transformers` loads a classifier *we* saved and agrees with our logits
(`gpt2 classify --json` output of the same texts in OURS.jsonl, one object per line):

    /tmp/gpt2-anchors/venv/bin/python scripts/make_task_fixtures.py --check-saved DIR TEXTS.txt OURS.jsonl

Needs torch, transformers (5.x), safetensors, numpy. Seeded; references computed in float64 on
the CPU from float32 weights.

Writes (tasks/):
  tiny-classifier/  GPT2ForSequenceClassification L2 NH3 C24 V500 T29, 3 labels named
                    neg/neu/pos, pad_token_id 499, save_pretrained (keys transformer.* + score.weight)
  tiny-lm/          GPT2LMHeadModel, same sizes, save_pretrained
  classify.safetensors  a right-padded batch (B 3, lengths 29/7/1), labels, the float64 logits,
                    loss and the gradient of every parameter (score.weight included)
  sft.safetensors   3 prompt/completion sequences (labels −100 on the prompt and the padding),
                    the loss and the gradient of every parameter of tiny-lm
  perplexity.safetensors  100 random ids; per-token NLL scored with windows of n_ctx 29 and
                    stride 11 (does not divide 29), the HF guide's loop with labels −100
  reference.json    versions, shapes, descriptions
"""

import json
import math
import os
import sys

import numpy as np
import safetensors
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "crates", "gpt2", "tests", "fixtures", "tasks")
VERSIONS = {
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "safetensors": safetensors.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
}
L, NH, C, V, T = 2, 3, 24, 500, 29
PAD = V - 1
LABELS = ["neg", "neu", "pos"]

torch.use_deterministic_algorithms(True)


def make_config(**extra):
    cfg = GPT2Config(
        n_layer=L, n_head=NH, n_embd=C, vocab_size=V, n_positions=T,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        summary_first_dropout=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=None, **extra,
    )
    cfg._attn_implementation = "eager"
    return cfg


def randomize(model, seed):
    """Non-trivial seeded weights (float32), as scripts/make_fixtures.py does."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = lambda: torch.randn(p.shape, generator=g, dtype=torch.float64)  # noqa: E731
            if ".ln_" in name or ".ln_f" in name:
                p.copy_(1.0 + 0.2 * n() if name.endswith(".weight") else 0.1 * n())
            elif name.endswith(".bias"):
                p.copy_(0.1 * n())
            elif name.endswith("wte.weight") or name.endswith("wpe.weight"):
                p.copy_(0.2 * n())
            elif name == "score.weight":
                p.copy_(0.5 * n())
            else:
                p.copy_(0.15 * n())
    model.eval()


def grads_of(model, prefix_strip="transformer."):
    out = {}
    for k, p in model.named_parameters():
        if k == "lm_head.weight":
            continue
        out["grad." + k.removeprefix(prefix_strip)] = p.grad.to(torch.float32).contiguous()
    return out


def build_classifier(meta):
    cfg = make_config(
        num_labels=3,
        id2label={i: n for i, n in enumerate(LABELS)},
        label2id={n: i for i, n in enumerate(LABELS)},
        pad_token_id=PAD,
    )
    torch.manual_seed(7)
    model = GPT2ForSequenceClassification(cfg)
    model.config._attn_implementation = "eager"
    randomize(model, 8)
    d = os.path.join(FIX, "tiny-classifier")
    model.save_pretrained(d, safe_serialization=True)
    back = GPT2ForSequenceClassification.from_pretrained(d)
    for (k, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k

    rng = np.random.default_rng(9)
    lengths = [T, 7, 1]
    rows = [rng.integers(0, PAD, size=n) for n in lengths]  # never the pad id
    ids = torch.full((3, T), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.from_numpy(r)
    labels = torch.tensor([2, 0, 1])
    m = model.double()
    m.train()  # dropouts are 0
    out = m(input_ids=ids, labels=labels, use_cache=False)
    out.loss.backward()
    tensors = {
        "inputs": ids.to(torch.int32).contiguous(),
        "lengths": torch.tensor(lengths, dtype=torch.int32),
        "labels": labels.to(torch.int32),
        "logits": out.logits.detach().to(torch.float32).contiguous(),
        "loss": out.loss.detach().reshape(1).to(torch.float32),
    }
    tensors.update(grads_of(m))
    save_file(tensors, os.path.join(FIX, "classify.safetensors"))
    # the same sequences one at a time, unpadded: the padded batch must give the same logits
    with torch.no_grad():
        for i, r in enumerate(rows):
            alone = m(input_ids=torch.from_numpy(r)[None].long(), use_cache=False).logits[0]
            assert torch.allclose(alone, out.logits[i].detach(), atol=1e-12), i
    meta["classify.safetensors"] = {
        "model": "tiny-classifier (GPT2ForSequenceClassification, float32 weights, computed in float64)",
        "inputs": "(3, 29) right-padded with pad_token_id 499; row lengths 29, 7, 1",
        "logits": "(3, 3) pooled logits of the last non-padding token",
        "loss": "CrossEntropyLoss (mean) over the 3 labels",
        "grad.*": "d loss / d every parameter, keys without `transformer.` (score.weight included)",
    }
    print(f"  classify: loss={out.loss.item():.6f} logits={out.logits.detach().numpy().round(4).tolist()}")


def build_lm(meta):
    cfg = make_config()
    torch.manual_seed(17)
    model = GPT2LMHeadModel(cfg)
    model.config._attn_implementation = "eager"
    randomize(model, 18)
    assert model.lm_head.weight is model.transformer.wte.weight
    d = os.path.join(FIX, "tiny-lm")
    model.save_pretrained(d, safe_serialization=True)
    m = model.double()
    m.train()

    # SFT: prompt + completion + eos; labels -100 on the prompt and the padding
    rng = np.random.default_rng(19)
    shapes = [(5, 3), (20, 8), (1, 1)]  # (prompt, completion incl. the closing eos)
    rows, prompt_lens = [], []
    for p, c in shapes:
        rows.append(rng.integers(0, V, size=p + c))
        prompt_lens.append(p)
    width = max(len(r) for r in rows)
    ids = torch.zeros((3, width), dtype=torch.long)
    labels = torch.full((3, width), -100, dtype=torch.long)
    for i, (r, p) in enumerate(zip(rows, prompt_lens)):
        ids[i, : len(r)] = torch.from_numpy(r)
        labels[i, p: len(r)] = torch.from_numpy(r[p:])
    logits = m(input_ids=ids, use_cache=False).logits
    # transformers' causal-LM loss: shift by one, mean over labels != -100
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
    hf = m(input_ids=ids, labels=labels, use_cache=False).loss
    # (transformers' loss upcasts the logits to float32)
    assert abs(loss.item() - hf.item()) < 1e-5 * abs(loss.item()), (loss, hf)
    loss.backward()
    tensors = {
        "ids": ids.to(torch.int32).contiguous(),
        "lengths": torch.tensor([len(r) for r in rows], dtype=torch.int32),
        "prompt_lens": torch.tensor(prompt_lens, dtype=torch.int32),
        "loss": loss.detach().reshape(1).to(torch.float32),
    }
    tensors.update(grads_of(m))
    save_file(tensors, os.path.join(FIX, "sft.safetensors"))
    m.zero_grad()
    meta["sft.safetensors"] = {
        "model": "tiny-lm (GPT2LMHeadModel, float32 weights, computed in float64)",
        "ids": "(3, 28) sequences prompt + completion (its last token plays the closing eos), zero-padded",
        "lengths": "tokens per row: 8, 28, 2",
        "prompt_lens": "prompt tokens per row: 5, 20, 1",
        "loss": "cross-entropy with labels -100 on prompt tokens and padding (mean over completion targets)",
        "grad.*": "d loss / d every parameter, keys without `transformer.`",
    }
    print(f"  sft: loss={loss.item():.6f}")

    # perplexity: the HF guide's loop, with exact per-token NLL
    n, stride = 100, 11
    toks = torch.from_numpy(np.random.default_rng(29).integers(0, V, size=n)).long()
    nll = torch.zeros(n, dtype=torch.float64)
    scored = torch.zeros(n, dtype=torch.int32)
    prev_end, windows = 0, 0
    with torch.no_grad():
        for begin in range(0, n, stride):
            end = min(begin + T, n)
            trg_len = end - prev_end
            x = toks[begin:end][None]
            y = x.clone()
            y[:, :-trg_len] = -100
            lg = m(input_ids=x, use_cache=False).logits[0]
            per = F.cross_entropy(lg[:-1], y[0, 1:], ignore_index=-100, reduction="none")
            for j in range(1, end - begin):
                if y[0, j] != -100:
                    nll[begin + j] += per[j - 1]
                    scored[begin + j] += 1
            # the guide's mean loss over the window agrees with our per-token values
            mean = m(input_ids=x, labels=y, use_cache=False).loss
            ref = per[y[0, 1:] != -100].mean().item()
            assert abs(mean.item() - ref) < 1e-5 * ref, (mean, ref)
            windows += 1
            prev_end = end
            if end == n:
                break
    assert scored[0] == 0 and bool((scored[1:] == 1).all()), scored
    save_file(
        {
            "ids": toks.to(torch.int32),
            "nll": nll.to(torch.float64),
            "stride": torch.tensor([stride], dtype=torch.int32),
        },
        os.path.join(FIX, "perplexity.safetensors"),
    )
    meta["perplexity.safetensors"] = {
        "model": "tiny-lm, computed in float64",
        "ids": "100 random token ids (more than n_ctx 29)",
        "nll": "per-token -ln p; token 0 unscored (0); windows of 29 starting every 11 tokens, each scoring only the tokens past the previous window (labels -100 on the overlap)",
        "stride": "11",
        "windows": windows,
        "total_nll": nll.sum().item(),
    }
    print(f"  perplexity: {windows} windows, mean nll={nll.sum().item() / (n - 1):.6f}")


@torch.no_grad()
def check_saved(folder, texts_path, ours_path):
    """transformers loads a classifier folder we saved; its probabilities match ours."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from make_qa_sft import tokenizer

    tok = tokenizer()
    model = GPT2ForSequenceClassification.from_pretrained(folder).double().eval()
    texts = [t for t in open(texts_path, encoding="utf-8").read().split("\n") if t.strip()]
    ours = [json.loads(line) for line in open(ours_path, encoding="utf-8") if line.strip()]
    assert len(texts) == len(ours), (len(texts), len(ours))
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    worst = worst_log = 0.0
    for text, o in zip(texts, ours):
        ids = tok(text)["input_ids"][: model.config.n_positions]
        logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]
        probs = torch.softmax(logits, -1)
        logp = torch.log_softmax(logits, -1)
        for i, n in enumerate(names):
            worst = max(worst, abs(probs[i].item() - o["probabilities"][n]))
            # logits up to softmax's free shift: log p_ours − log p_hf
            worst_log = max(worst_log, abs(logp[i].item() - math.log(max(o["probabilities"][n], 1e-300))))
        assert names[int(probs.argmax())] == o["label"] or abs(probs.max() - sorted(probs)[-2]) < 1e-4
    print(f"transformers loaded {folder}: {len(texts)} texts, max |p_ours - p_hf| = {worst:.2e}, "
          f"max |log p_ours - log p_hf| = {worst_log:.2e}")
    assert worst < 1e-4 and worst_log < 1e-4, (worst, worst_log)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--check-saved":
        check_saved(*sys.argv[2:])
        return
    os.makedirs(FIX, exist_ok=True)
    meta = {"generator": "scripts/make_task_fixtures.py", "versions": VERSIONS,
            "sizes": {"n_layer": L, "n_head": NH, "n_embd": C, "vocab_size": V, "n_positions": T}}
    build_classifier(meta)
    build_lm(meta)
    with open(os.path.join(FIX, "reference.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("wrote", FIX)


if __name__ == "__main__":
    main()
