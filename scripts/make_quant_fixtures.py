#!/usr/bin/env python3
"""Write the GGUF / quantization reference fixtures under crates/gpt2/tests/fixtures/quant/.

Run by hand (never by CI), from the repository root:

    /tmp/gpt2-anchors/venv/bin/python scripts/make_quant_fixtures.py [--ggml-src DIR] [--write-gguf DIR]

Needs torch, transformers (5.x), safetensors, numpy and gguf (gguf-py, whose `gguf.quants` mirrors
ggml's quantization in numpy). Everything is seeded and every model reference is computed in float64
on the CPU, so reruns give the same bytes (up to library-version changes; the versions are recorded
in both JSON files).

  --ggml-src DIR   llama.cpp's ggml/ folder (e.g. /tmp/llamacpp-anchor/src/ggml): compile
                   ggml-quants.c (twice: -O2, and -O3 -march=native -ffp-contract=fast) and check
                   every block case against ggml's own C reference; the outcome is recorded in
                   blocks.json under "ggml_c_crosscheck" (null when not run).
  --write-gguf DIR also keep the five tiny-q GGUF files (they are always written to a temporary
                   folder and read back with gguf.GGUFReader to check the recorded types, dims
                   and sha256; they are not fixtures).

Writes:
  quant/blocks.json                   block-level cases: q8_0 / q4_0 quantization, f16 / bf16
                                      conversion, dequantization of Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K
                                      Q3_K Q4_K Q5_K Q6_K blocks
  quant/tiny-q/config.json, model.safetensors   L2 NH4 C64 V1000 T40, float32, save_pretrained
  quant/tiny-q/quant_reference.json   per weight type (f32 f16 bf16 q8_0 q4_0): the GGUF tensor
                                      table (name, type, ne, sha256 of the data bytes), quantization
                                      errors, and float64 log-probabilities of the dequantized model
"""

import argparse
import ctypes
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import safetensors
import torch
import transformers
from transformers import GPT2LMHeadModel

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import LlamaFileType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import logits_of, make_config, make_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXQ = os.path.join(ROOT, "crates", "gpt2", "tests", "fixtures", "quant")
GENERATOR = "scripts/make_quant_fixtures.py"


def gguf_version():
    try:
        from importlib.metadata import version
        return version("gguf")
    except Exception:  # noqa: BLE001
        return "unknown"


VERSIONS = {
    "gguf": gguf_version(),
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "safetensors": safetensors.__version__,
    "numpy": np.__version__,
    "python": sys.version.split()[0],
}

torch.use_deterministic_algorithms(True)

# ---------------------------------------------------------------------------------------------
# The tensor-type policy of the tiny-q GGUF files, per weight type T (mirrors convert_hf_to_gguf.py
# --outtype f32/f16/bf16/q8_0, and llama-quantize for q4_0). Roles:
#   vector         every 1-D tensor (LayerNorm weights/biases, all biases)
#   position_embd  position_embd.weight (T, C)
#   block_matrix   blk.{i}.attn_qkv / attn_output / ffn_up / ffn_down .weight
#   token_embd     token_embd.weight (V, C), also the tied output matrix (no output.weight tensor)
# Deviations from the real tools, on purpose (see the notes in quant_reference.json):
#   (position_embd stays F32 for every type, as convert_hf_to_gguf.py and llama-quantize keep it.)
#   * llama-quantize Q4_0 gives the tied token_embd/output matrix Q6_K; here Q8_0 (the closest type
#     computed natively).
POLICY = {
    #        vector  position_embd  block_matrix  token_embd
    "f32":  ("F32",  "F32",         "F32",        "F32"),
    "f16":  ("F32",  "F32",         "F16",        "F16"),
    "bf16": ("F32",  "F32",         "BF16",       "BF16"),
    "q8_0": ("F32",  "F32",         "Q8_0",       "Q8_0"),
    "q4_0": ("F32",  "F32",         "Q4_0",       "Q8_0"),
}
ROLES = ("vector", "position_embd", "block_matrix", "token_embd")
FILE_TYPE = {  # general.file_type (llama_ftype) of each file
    "f32": LlamaFileType.ALL_F32,
    "f16": LlamaFileType.MOSTLY_F16,
    "bf16": LlamaFileType.MOSTLY_BF16,
    "q8_0": LlamaFileType.MOSTLY_Q8_0,
    "q4_0": LlamaFileType.MOSTLY_Q4_0,
}

# block layouts: ggml/src/ggml-common.h (all little-endian, ggml_half = IEEE binary16)
LAYOUTS = {
    "Q4_0": ("block_q4_0", [("d", 0, 2, "f16"), ("qs", 2, 16, "u8[16]: low nibble = element j, high nibble = element j+16")],
             "x[j] = (nibble(j) - 8) * d"),
    "Q4_1": ("block_q4_1", [("d", 0, 2, "f16"), ("m", 2, 2, "f16"), ("qs", 4, 16, "u8[16]: low nibble = element j, high = j+16")],
             "x[j] = nibble(j) * d + m"),
    "Q5_0": ("block_q5_0", [("d", 0, 2, "f16"), ("qh", 2, 4, "u32 LE: bit j = 5th bit of element j"), ("qs", 6, 16, "u8[16] nibbles as Q4_0")],
             "x[j] = ((nibble(j) | bit(qh, j) << 4) - 16) * d"),
    "Q5_1": ("block_q5_1", [("d", 0, 2, "f16"), ("m", 2, 2, "f16"), ("qh", 4, 4, "u32 LE"), ("qs", 8, 16, "u8[16]")],
             "x[j] = (nibble(j) | bit(qh, j) << 4) * d + m"),
    "Q8_0": ("block_q8_0", [("d", 0, 2, "f16"), ("qs", 2, 32, "i8[32]")], "x[j] = qs[j] * d"),
    "Q2_K": ("block_q2_K", [("scales", 0, 16, "u8[16]: low 4 bits scale, high 4 bits min, per 16 elements"), ("qs", 16, 64, "u8[64] 2-bit quants"),
                            ("d", 80, 2, "f16"), ("dmin", 82, 2, "f16")],
             "dequantize_row_q2_K in ggml-quants.c"),
    "Q3_K": ("block_q3_K", [("hmask", 0, 32, "u8[32] high bit"), ("qs", 32, 64, "u8[64] low 2 bits"), ("scales", 96, 12, "6-bit scales packed"),
                            ("d", 108, 2, "f16")],
             "dequantize_row_q3_K in ggml-quants.c"),
    "Q4_K": ("block_q4_K", [("d", 0, 2, "f16"), ("dmin", 2, 2, "f16"), ("scales", 4, 12, "6-bit scales and mins packed (get_scale_min_k4)"),
                            ("qs", 16, 128, "u8[128] nibbles")],
             "dequantize_row_q4_K in ggml-quants.c"),
    "Q5_K": ("block_q5_K", [("d", 0, 2, "f16"), ("dmin", 2, 2, "f16"), ("scales", 4, 12, "as Q4_K"), ("qh", 16, 32, "u8[32] 5th bits"),
                            ("qs", 48, 128, "u8[128] nibbles")],
             "dequantize_row_q5_K in ggml-quants.c"),
    "Q6_K": ("block_q6_K", [("ql", 0, 128, "u8[128] low 4 bits"), ("qh", 128, 64, "u8[64] high 2 bits"), ("scales", 192, 16, "i8[16]"),
                            ("d", 208, 2, "f16")],
             "dequantize_row_q6_K in ggml-quants.c"),
}
DEQUANT_TYPES = list(LAYOUTS)


# ---------------------------------------------------------------------------------------------
# small helpers


def f32(v):
    return np.asarray(v, dtype=np.float32)


def bits32(a):
    return [f"{int(u):08x}" for u in np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel()]


def bits16(a):
    return [f"{int(u):04x}" for u in np.ascontiguousarray(a).view(np.uint16).ravel()]


def from_bits(hexes):
    return np.array([int(h, 16) for h in hexes], dtype=np.uint32).view(np.float32)


def qtype(name):
    return QT[name]


def to_bytes(w, tname):
    """The tensor's bytes as stored in a GGUF data section (row-major, ne[0] = last numpy axis)."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if tname == "F32":
        return w.astype("<f4").tobytes()
    if tname == "F16":
        return w.astype("<f2").tobytes()  # what convert_hf_to_gguf does (gguf.quants.quantize F16 == astype)
    return gguf.quants.quantize(w, qtype(tname)).tobytes()


def from_bytes(raw, tname, shape):
    """Dequantize stored bytes back to float32 of the numpy shape."""
    buf = np.frombuffer(raw, dtype=np.uint8)
    if tname == "F32":
        return buf.view("<f4").reshape(shape).copy()
    if tname == "F16":
        return buf.view("<f2").astype(np.float32).reshape(shape)
    bs, ts = gguf.GGML_QUANT_SIZES[qtype(tname)]
    rows = buf.reshape(*shape[:-1], shape[-1] // bs * ts)
    return gguf.quants.dequantize(rows, qtype(tname)).reshape(shape)


def dump_json(obj, path):
    """JSON with lists of scalars kept on one line (indent 1 otherwise)."""

    def enc(o, ind):
        pad = " " * ind
        if isinstance(o, dict):
            if not o:
                return "{}"
            items = [f'{pad} {json.dumps(k)}: {enc(v, ind + 1)}' for k, v in o.items()]
            return "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, (list, tuple)):
            if all(not isinstance(v, (dict, list, tuple)) for v in o):
                return "[" + ", ".join(json.dumps(v, allow_nan=False) for v in o) + "]"
            return "[\n" + ",\n".join(pad + " " + enc(v, ind + 1) for v in o) + "\n" + pad + "]"
        return json.dumps(o, allow_nan=False)

    with open(path, "w") as f:
        f.write(enc(obj, 0))
        f.write("\n")


# ---------------------------------------------------------------------------------------------
# a scalar port of ggml's C reference quantizers (ggml-quants.c), float32 arithmetic throughout


def _fp16_bytes(x):
    return np.float16(np.float32(x)).tobytes()  # numpy float32 -> float16: round to nearest even


def c_ref_q8_0(x):
    """quantize_row_q8_0_ref. Returns bytes, or None where C is undefined (id = 1/d overflows)."""
    out = bytearray()
    for blk in f32(x).reshape(-1, 32):
        amax = np.float32(0.0)
        for v in blk:
            av = np.float32(abs(v))
            amax = amax if amax > av else av  # MAX(amax, fabsf(v))
        d = np.float32(amax / np.float32(127))
        with np.errstate(over="ignore", divide="ignore"):
            ident = np.float32(np.float32(1.0) / d) if d != 0 else np.float32(0.0)
        if not np.isfinite(ident):
            return None
        out += _fp16_bytes(d)
        for v in blk:
            x0 = float(np.float32(v * ident))
            q = math.copysign(math.floor(abs(x0) + 0.5), x0)  # roundf: half away from zero (exact in double)
            out += int(q).to_bytes(1, "little", signed=True)
    return bytes(out)


def c_ref_q4_0(x):
    """quantize_row_q4_0_ref. Returns bytes, or None where C is undefined (id = 1/d overflows)."""
    out = bytearray()
    for blk in f32(x).reshape(-1, 32):
        amax = np.float32(0.0)
        mx = np.float32(0.0)
        for v in blk:
            if amax < abs(v):  # strict: the first value of largest magnitude wins
                amax = np.float32(abs(v))
                mx = v
        d = np.float32(mx / np.float32(-8))
        with np.errstate(over="ignore", divide="ignore"):
            ident = np.float32(np.float32(1.0) / d) if d != 0 else np.float32(0.0)
        if not np.isfinite(ident):
            return None
        out += _fp16_bytes(d)
        for j in range(16):
            x0 = np.float32(blk[j] * ident)
            x1 = np.float32(blk[16 + j] * ident)
            xi0 = min(15, int(float(np.float32(x0 + np.float32(8.5)))))  # (int8_t) truncates toward zero
            xi1 = min(15, int(float(np.float32(x1 + np.float32(8.5)))))
            out.append(xi0 | (xi1 << 4))
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# blocks.json


def edge_rows():
    """(name, note, float32 values of length 32k)."""
    cases = []

    def add(name, note, v):
        v = f32(v)
        assert v.ndim == 1 and v.size % 32 == 0, name
        cases.append((name, note, v))

    rng = np.random.default_rng(7000)
    z = np.zeros(32, np.float32)
    add("zeros", "all +0.0: d = 0 -> id = 0; q4_0 d is -0.0 (0.0 / -8) and every dequantized value is -0.0 (0 * -0.0)", z)
    add("neg_zeros", "all -0.0: gguf-py takes max = x[0] = -0.0 so q4_0 d = +0.0; ggml C keeps max = +0.0 (strict <) so d = -0.0 "
        "(see ggml_c_ref_bytes)", -z)
    v = z.copy(); v[5] = 1.0
    add("single_pos", "one non-zero value (+1 at index 5)", v)
    v = z.copy(); v[17] = -3.0
    add("single_neg", "one non-zero value (-3 at index 17)", v)
    v = z.copy(); v[31] = 1e-3
    add("single_last_small", "one non-zero value (1e-3 at index 31)", v)
    v = rng.uniform(-1.5, 1.5, 32).astype(np.float32); v[9] = -2.0
    add("maxabs_negative", "largest magnitude is negative (-2): q4_0 d = -2/-8 = +0.25", v)
    v = rng.uniform(-1.5, 1.5, 32).astype(np.float32); v[22] = 2.0
    add("maxabs_positive", "largest magnitude is positive (+2): q4_0 d = -0.25, so +2 -> q 0 and -1.5.. -> up to clip 15", v)
    v = rng.uniform(-0.9, 0.9, 32).astype(np.float32); v[3] = 1.0; v[10] = -1.0
    add("tie_pos_first", "+1 at 3 and -1 at 10: the first of largest magnitude (+1) sets q4_0 max; -1 -> 16.5 -> clipped to 15", v)
    v = rng.uniform(-0.9, 0.9, 32).astype(np.float32); v[3] = -1.0; v[10] = 1.0
    add("tie_neg_first", "-1 at 3 and +1 at 10: -1 sets q4_0 max (d = +0.125); +1 -> 16.5 -> clipped to 15", v)
    v = np.array([127.0] + [k + 0.5 for k in range(-15, 15)] + [-127.0], np.float32)
    add("q8_halves", "amax 127 -> d = 1, id = 1: x*id = k + 0.5 exactly; q8_0 rounds half away from zero (roundf); "
        "q4_0 here has max = 127", v)
    v = np.array([-8.0] + [k + 0.5 for k in range(-8, 8)] + [k for k in range(-7, 8)], np.float32)
    add("q4_halves", "max -8 first -> q4_0 d = 1, id = 1: trunc(x + 8.5) rounds k + 0.5 up (toward +inf); -8.5 -> 0", v)
    near4 = [-0.50000006, 0.49999997, -1.5000001, 1.4999999, 2.4999998, -2.5000002, 7.4999995, -7.5000005]
    v = np.array([-8.0] + near4 + [0.0] * 23, np.float32)
    add("q4_fp32_add_rounding", "max -8 (d = 1): x + 8.5f is rounded to float32 before the truncation, so "
        "-0.50000006 -> 8.0 -> q 8, 0.49999997 -> 9.0 -> q 9 and 7.4999995 -> 16.0 -> clipped 15 (exact arithmetic: 7, 8, 15)", v)
    near8 = [-0.50000006, 0.49999997, -1.5000001, 1.4999999, 2.4999998, -2.5000002, 126.49999, -126.50001]
    v = np.array([127.0] + near8 + [0.0] * 23, np.float32)
    add("q8_near_halves", "amax 127 (d = 1): values one ulp beside k + 0.5; roundf(0.49999997) = 0 "
        "(a float32 floor(x + 0.5) would give 1)", v)
    v = np.array([381.0] + [3.0 * (k + 0.5) for k in range(-15, 15)] + [-381.0], np.float32)
    add("q8_scale3_halves", "amax 381 -> d = 3, id = float32(1/3): x*id is rounded to float32 before roundf", v)
    sub = [1.4e-45, -1.4e-45, 1e-40, -1e-40, 1.1754942e-38, -1.1754944e-38, 5e-39]
    v = np.array([1.0] + sub + [0.0] * 24, np.float32)
    add("subnormals_with_one", "float32 subnormals next to 1.0: they quantize to 0; f16/bf16 keep bf16 subnormals", v)
    v = rng.uniform(-1e-5, 1e-5, 32).astype(np.float32); v[0] = 1e-5
    add("d_fp16_subnormal", "amax 1e-5: q8_0 d = 7.9e-8 is an fp16 subnormal (rounds to 2^-24 = 5.96e-8)", v)
    v = rng.uniform(-3e-6, 3e-6, 32).astype(np.float32); v[0] = -3e-6
    add("d_fp16_zero", "amax 3e-6: q8_0 d = 2.4e-8 rounds to fp16 0 (q bytes non-zero, dequantized values +-0)", v)
    v = np.concatenate([rng.normal(0, 1, 31), [1e30]]).astype(np.float32)
    add("huge_1e30", "1e30: d overflows fp16 -> inf; dequantized values are +-inf and NaN (0 * inf): nonfinite", v)
    v = rng.uniform(-1, 1, 32).astype(np.float32) * np.float32(127 * 65504); v[4] = 127 * 65504
    add("d_fp16_max", "q8_0 amax 127*65504 -> d = 65504 = fp16 max exactly", v)
    v = rng.uniform(-1, 1, 32).astype(np.float32) * np.float32(8 * 65519); v[4] = -8 * 65519
    add("d_fp16_round_down", "q4_0 max -8*65519 -> d = 65519 rounds down to fp16 65504 (< 65520)", v)
    v = rng.uniform(-1, 1, 32).astype(np.float32) * np.float32(127 * 65520); v[4] = 127 * 65520
    add("d_fp16_round_to_inf", "q8_0 amax 127*65520 -> d = 65520 rounds to fp16 inf (ties to even): nonfinite", v)
    add("all_equal_positive", "32 x 0.3: q8_0 all 127; q4_0 max 0.3 -> every value q 0 -> -8*d", np.full(32, 0.3, np.float32))
    add("all_equal_negative", "32 x -0.3", np.full(32, -0.3, np.float32))
    v = np.concatenate([rng.normal(0, 0.01, 32), rng.normal(0, 5, 32)]).astype(np.float32)
    add("two_blocks_two_scales", "64 values: two blocks with scales 0.01 and 5", v)
    return cases


def random_rows():
    rng = np.random.default_rng(7100)
    cases = []
    specs = [("normal", s) for s in (1e-3, 0.02, 0.15, 1.0, 30.0, 1e4)] + [("uniform", s) for s in (1e-3, 0.05, 1.0, 100.0)] + \
            [("uniform_pos", s) for s in (0.5, 10.0)] + [("normal_shift", s) for s in (0.1, 1.0)]
    while len(specs) < 20:
        specs.append(("normal", float(10 ** rng.uniform(-3, 3))))
    for i, (kind, s) in enumerate(specs):
        n = 32 * (1 + i % 4)
        if kind == "normal":
            v = rng.normal(0, s, n)
        elif kind == "uniform":
            v = rng.uniform(-s, s, n)
        elif kind == "uniform_pos":
            v = rng.uniform(0, s, n)
        else:
            v = rng.normal(s, s / 3, n)
        cases.append((f"random_{i:02d}_{kind}", f"{kind}, scale {s:.6g}, {n} values (seed 7100)", f32(v)))
    return cases


def convert_rows():
    """Values for f16 / bf16 conversion only (any length)."""
    u = lambda *xs: np.array(xs, dtype=np.uint32).view(np.float32)  # noqa: E731
    return [
        ("f16_edges", "fp16 overflow/underflow boundaries: 65504, 65519.996 (-> 65504), 65520 (-> inf, tie to even), 1e30, "
         "2^-24 (min subnormal), 2^-25 (tie -> 0), 2^-25 + ulp (-> 2^-24), 3*2^-25 (tie -> 2^-23), -0.0, inf, -inf",
         np.concatenate([f32([65504.0, 65519.996, 65520.0, -65520.0, 1e30, 2.0 ** -24, 2.0 ** -25, -(2.0 ** -25)]),
                         u(0x33000001), f32([3 * 2.0 ** -25, -0.0, np.inf, -np.inf, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11])]), True),
        ("bf16_ties", "bf16 round to nearest even on the low 16 bits: 0x3f808000 (tie, keeps 0x3f80), 0x3f818000 (tie -> 0x3f82), "
         "0x3f808001 (-> 0x3f81), 0x3f807fff (-> 0x3f80), 0x7f7fffff (FLT_MAX -> inf 0x7f80), 0x7f7f7fff (-> 0x7f7f), "
         "subnormals 0x00000001 / 0x00018000 / 0x80008000 (kept, not flushed)",
         u(0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf808000, 0xbf818000, 0x7f7fffff, 0x7f7f7fff, 0xff7fffff,
           0x00000001, 0x00018000, 0x80008000, 0x00008000), True),
        ("nans", "NaN handling: bf16 forces quiet (bits >> 16 | 0x40): 0x7f800001 -> 0x7fc0, 0xffc00001 -> 0xffc0, 0x7fa12345 -> 0x7fe1; "
         "f16 of NaN is not recorded (numpy and hardware F16C differ on signalling NaNs)",
         u(0x7fc00000, 0x7f800001, 0xffc00001, 0x7fa12345, 0xff812345), False),
    ]


def quant_case(x, tname, c_ref):
    raw = gguf.quants.quantize(x, qtype(tname)).tobytes()
    with np.errstate(invalid="ignore", over="ignore"):
        deq = gguf.quants.dequantize(np.frombuffer(raw, np.uint8).copy(), qtype(tname)).reshape(-1)
        rec = {"bytes": raw.hex(), "dequant_f32_bits": bits32(deq), "nonfinite": bool(not np.isfinite(deq).all())}
    c = c_ref(x)
    assert c is not None, "a case where ggml C is undefined (1/d overflows)"
    if c != raw:
        rec["ggml_c_ref_bytes"] = c.hex()
        cd = gguf.quants.dequantize(np.frombuffer(c, np.uint8).copy(), qtype(tname)).reshape(-1)
        rec["ggml_c_ref_dequant_f32_bits"] = bits32(cd)
    return rec


def dequant_cases():
    rng = np.random.default_rng(7200)
    out = []
    for tname in DEQUANT_TYPES:
        bs, ts = gguf.GGML_QUANT_SIZES[qtype(tname)]
        struct, fields, formula = LAYOUTS[tname]
        n_blocks = 4
        blocks = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
        blocks[2, :] = 0xFF
        blocks[3, :] = (np.arange(ts) * 37 + 11) % 256
        for name, off, size, kind in fields:
            if kind == "f16":
                vals = rng.uniform(-0.1, 0.1, n_blocks).astype(np.float16)
                blocks[:, off:off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
        deq = gguf.quants.dequantize(blocks.copy(), qtype(tname)).reshape(-1)
        assert deq.size == n_blocks * bs and np.isfinite(deq).all(), tname
        out.append({
            "type": tname,
            "ggml_type_id": int(qtype(tname)),
            "block_size": bs,
            "type_size": ts,
            "n_blocks": n_blocks,
            "note": "blocks 0,1 random bytes; block 2 all 0xFF; block 3 bytes (37*i + 11) mod 256; "
                    "every f16 field then overwritten with a float16 in [-0.1, 0.1]",
            "bytes": blocks.tobytes().hex(),
            "dequant_f32_bits": bits32(deq),
        })
    return out


def build_blocks(ggml_src):
    with np.errstate(over="ignore"):  # fp16(d) overflows to inf in three cases, on purpose
        return _build_blocks(ggml_src)


def _build_blocks(ggml_src):
    quant = []
    for name, note, x in edge_rows() + random_rows():
        case = {"name": name, "note": note, "n": int(x.size), "input_f32_bits": bits32(x)}
        case["q8_0"] = quant_case(x, "Q8_0", c_ref_q8_0)
        case["q4_0"] = quant_case(x, "Q4_0", c_ref_q4_0)
        case["f16_bits"] = bits16(x.astype(np.float16))
        case["bf16_bits"] = bits16(gguf.quants.quantize(x, QT.BF16))
        # the input went in exactly
        assert from_bits(case["input_f32_bits"]).tobytes() == x.tobytes()
        quant.append(case)
    conv = []
    for name, note, x, with_f16 in convert_rows():
        with np.errstate(over="ignore"):
            f16 = bits16(x.astype(np.float16)) if with_f16 else None
        conv.append({"name": name, "note": note, "n": int(x.size), "input_f32_bits": bits32(x), "f16_bits": f16,
                     "bf16_bits": bits16(gguf.quants.quantize(x, QT.BF16))})
    deq = dequant_cases()
    layouts = {}
    for t, (struct, fields, formula) in LAYOUTS.items():
        bs, ts = gguf.GGML_QUANT_SIZES[qtype(t)]
        layouts[t] = {"struct": struct, "source": "ggml/src/ggml-common.h", "ggml_type_id": int(qtype(t)), "block_size": bs,
                      "type_size": ts, "fields": [{"name": n, "offset": o, "size": s, "kind": k} for n, o, s, k in fields],
                      "dequant": formula}
    doc = {
        "generator": GENERATOR,
        "versions": VERSIONS,
        "conventions": {
            "f32_bits": "float32 values as 8-hex-digit u32 bit patterns (IEEE binary32)",
            "f16_bits/bf16_bits": "4-hex-digit u16 bit patterns",
            "bytes": "hex of the quantized blocks, concatenated, exactly as stored in a GGUF data section (little-endian)",
            "q8_0": "gguf.quants.quantize(x, Q8_0): per 32 values amax = max|x|, d = amax/127 (f32), id = d ? 1/d : 0, "
                    "q = roundf(x*id) (half away from zero, x*id rounded to f32 first), stored d = fp16(d) (round to nearest even)",
            "q4_0": "gguf.quants.quantize(x, Q4_0): max = the first value of largest |x|, d = max/-8 (f32), id = d ? 1/d : 0, "
                    "q = min(15, trunc(f32(x*id + 8.5))), element j in the low nibble of qs[j], element j+16 in the high nibble; "
                    "stored d = fp16(d). Quantization uses the f32 d, dequantization the fp16 one",
            "f16": "numpy astype(float16) (what convert_hf_to_gguf writes): round to nearest even, overflow to inf, fp16 subnormals kept",
            "bf16": "gguf.quants BF16 == ggml_compute_fp32_to_bf16: NaN -> (bits >> 16) | 0x40 (quiet); else (bits + 0x7fff + ((bits >> 16) & 1)) >> 16 "
                    "(round to nearest even; overflow to inf; subnormals kept)",
            "dequant_f32_bits": "gguf.quants.dequantize of the bytes (f32 arithmetic, no FMA); compare bit for bit, but treat any NaN as "
                                "equal to any NaN (only cases with nonfinite: true have NaN) and note the sign of zeros is recorded",
            "ggml_c_ref_bytes": "present only where ggml's C quantize_row_*_ref gives other bytes than gguf-py (from a scalar port of the C, "
                                "checked against the compiled C when ggml_c_crosscheck is not null); llama.cpp files carry these",
            "c_undefined": "not included: blocks whose amax is so small that 1/d overflows f32 (q8_0 amax < ~3.7e-37, q4_0 |max| < ~2.4e-38) "
                           "are undefined behaviour in ggml's C (roundf(+-inf) / NaN cast to int8); fp16(d) is 0 there, so they dequantize to +-0",
        },
        "layouts": layouts,
        "quantize": quant,
        "convert": conv,
        "dequantize": deq,
        "ggml_c_crosscheck": crosscheck(ggml_src, quant, deq) if ggml_src else None,
    }
    return doc


# ---------------------------------------------------------------------------------------------
# optional: compare with ggml's compiled C


STUB_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
void ggml_abort(const char *f, int l, const char *fmt, ...) { fprintf(stderr, "ggml_abort %s:%d\n", f, l); abort(); }
size_t ggml_row_size(int t, long n) { (void)t; (void)n; abort(); }
const char *ggml_type_name(int t) { (void)t; return "?"; }
size_t ggml_type_size(int t) { (void)t; abort(); }
"""


def crosscheck(ggml_src, quant, deq):
    src = os.path.join(ggml_src, "src", "ggml-quants.c")
    tmp = tempfile.mkdtemp(prefix="ggml-quants-")
    with open(os.path.join(tmp, "stub.c"), "w") as f:
        f.write(STUB_C)
    result = {"source": src, "builds": []}
    for label, flags in (("O2", ["-O2"]), ("native_fma", ["-O3", "-march=native", "-ffp-contract=fast"])):
        lib = os.path.join(tmp, f"libq_{label}.so")
        subprocess.run(["gcc", *flags, "-fPIC", "-shared", "-std=gnu11", "-I", os.path.join(ggml_src, "include"),
                        "-I", os.path.join(ggml_src, "src"), src, os.path.join(tmp, "stub.c"), "-o", lib, "-lm"], check=True)
        so = ctypes.CDLL(lib)
        qmis, qc_mis, dmis = [], [], []
        for case in quant:
            x = from_bits(case["input_f32_bits"])
            for t, fn, ts in (("q8_0", "quantize_row_q8_0_ref", 34), ("q4_0", "quantize_row_q4_0_ref", 18)):
                out = (ctypes.c_uint8 * (x.size // 32 * ts))()
                getattr(so, fn)(x.ctypes.data_as(ctypes.c_void_p), out, ctypes.c_int64(x.size))
                cbytes = bytes(out).hex()
                want = case[t].get("ggml_c_ref_bytes", case[t]["bytes"])
                if cbytes != want:
                    qc_mis.append(f"{case['name']}/{t}")  # the scalar port is wrong
                if cbytes != case[t]["bytes"]:
                    qmis.append(f"{case['name']}/{t}")
                # C dequantization of the gguf-py bytes
                raw = bytes.fromhex(case[t]["bytes"])
                y = np.zeros(x.size, np.float32)
                getattr(so, f"dequantize_row_{t}")(raw, y.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(x.size))
                if not bits_equal(y, from_bits(case[t]["dequant_f32_bits"])):
                    dmis.append(f"{case['name']}/{t}")
        for d in deq:
            raw = bytes.fromhex(d["bytes"])
            n = d["n_blocks"] * d["block_size"]
            y = np.zeros(n, np.float32)
            getattr(so, f"dequantize_row_{d['type'].lower().replace('_k', '_K')}")(raw, y.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n))
            if not bits_equal(y, from_bits(d["dequant_f32_bits"])):
                diff = int((y.view(np.uint32) != from_bits(d["dequant_f32_bits"]).view(np.uint32)).sum())
                dmis.append(f"{d['type']} ({diff}/{n} values)")
        result["builds"].append({"flags": " ".join(flags), "quantize_bytes_differ_from_gguf_py": qmis,
                                 "scalar_port_mismatches": qc_mis, "dequantize_differs_from_gguf_py": dmis})
        assert not qc_mis, f"the scalar port of the C reference disagrees with the compiled C: {qc_mis}"
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def bits_equal(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a) & np.isnan(b)
    return bool(((a.view(np.uint32) == b.view(np.uint32)) | nan).all())


# ---------------------------------------------------------------------------------------------
# tiny-q


SEQ_LENGTHS = (1, 7, 23, 40, 2, 3, 4, 5, 6)  # the short ones: sequences without 8-bit near ties
LAST_FULL = 4  # sequences whose whole last-position distribution is stored


def gguf_tensors(model, n_layer):
    """[(gguf name, role, float32 numpy array in GGUF layout)] in convert_hf_to_gguf's naming."""
    sd = {k: v.detach().to(torch.float32).numpy() for k, v in model.transformer.state_dict().items()}
    out = [("token_embd.weight", "token_embd", sd["wte.weight"]),
           ("position_embd.weight", "position_embd", sd["wpe.weight"])]
    for i in range(n_layer):
        h = f"h.{i}."
        out += [
            (f"blk.{i}.attn_norm.weight", "vector", sd[h + "ln_1.weight"]),
            (f"blk.{i}.attn_norm.bias", "vector", sd[h + "ln_1.bias"]),
            (f"blk.{i}.attn_qkv.weight", "block_matrix", sd[h + "attn.c_attn.weight"].T),
            (f"blk.{i}.attn_qkv.bias", "vector", sd[h + "attn.c_attn.bias"]),
            (f"blk.{i}.attn_output.weight", "block_matrix", sd[h + "attn.c_proj.weight"].T),
            (f"blk.{i}.attn_output.bias", "vector", sd[h + "attn.c_proj.bias"]),
            (f"blk.{i}.ffn_norm.weight", "vector", sd[h + "ln_2.weight"]),
            (f"blk.{i}.ffn_norm.bias", "vector", sd[h + "ln_2.bias"]),
            (f"blk.{i}.ffn_up.weight", "block_matrix", sd[h + "mlp.c_fc.weight"].T),
            (f"blk.{i}.ffn_up.bias", "vector", sd[h + "mlp.c_fc.bias"]),
            (f"blk.{i}.ffn_down.weight", "block_matrix", sd[h + "mlp.c_proj.weight"].T),
            (f"blk.{i}.ffn_down.bias", "vector", sd[h + "mlp.c_proj.bias"]),
        ]
    out += [("output_norm.weight", "vector", sd["ln_f.weight"]), ("output_norm.bias", "vector", sd["ln_f.bias"])]
    assert len(out) == len(sd) - n_layer * ("h.0.attn.bias" in sd)
    return [(n, r, np.ascontiguousarray(a, dtype=np.float32)) for n, r, a in out]


HF_OF = {  # gguf suffix -> (HF key suffix, transpose)
    "attn_norm.weight": ("ln_1.weight", False), "attn_norm.bias": ("ln_1.bias", False),
    "attn_qkv.weight": ("attn.c_attn.weight", True), "attn_qkv.bias": ("attn.c_attn.bias", False),
    "attn_output.weight": ("attn.c_proj.weight", True), "attn_output.bias": ("attn.c_proj.bias", False),
    "ffn_norm.weight": ("ln_2.weight", False), "ffn_norm.bias": ("ln_2.bias", False),
    "ffn_up.weight": ("mlp.c_fc.weight", True), "ffn_up.bias": ("mlp.c_fc.bias", False),
    "ffn_down.weight": ("mlp.c_proj.weight", True), "ffn_down.bias": ("mlp.c_proj.bias", False),
}


def model_from_gguf_tensors(cfg, tensors):
    """A float64 GPT2LMHeadModel holding the given (dequantized) GGUF-layout tensors."""
    m = GPT2LMHeadModel(cfg)
    m.config._attn_implementation = "eager"
    sd = {}
    for name, arr in tensors.items():
        if name == "token_embd.weight":
            key, tr = "wte.weight", False
        elif name == "position_embd.weight":
            key, tr = "wpe.weight", False
        elif name.startswith("output_norm."):
            key, tr = "ln_f." + name.split(".", 1)[1], False
        else:
            _, i, rest = name.split(".", 2)
            k, tr = HF_OF[rest]
            key = f"h.{i}.{k}"
        sd[key] = torch.from_numpy(np.ascontiguousarray(arr.T if tr else arr).astype(np.float64))
    m = m.double()
    missing, unexpected = m.transformer.load_state_dict(sd, strict=False)
    assert not unexpected and all(k.endswith(".attn.bias") for k in missing), (missing, unexpected)
    m.tie_weights()
    assert m.lm_head.weight is m.transformer.wte.weight
    m.eval()
    return m


@torch.no_grad()
def logprob_reference(m, seqs):
    token_lp, last_lp = [], []
    for s in seqs:
        lp = torch.log_softmax(logits_of(m, torch.tensor([s], dtype=torch.long))[0], dim=-1)
        token_lp.append([lp[t - 1, s[t]].item() for t in range(1, len(s))])
        last_lp.append(lp[-1].tolist())
    return token_lp, last_lp


INT_TYPES = ("Q8_0", "Q4_0")


def round_activations_q8(x):
    """Our kernels' (and llama.cpp's) 8-bit activations for q8_0/q4_0 weights, in float64: per
    block of 32 along the last axis, d = max|x| / 127, q = round half to even(x / d), x' = q d."""
    shape = x.shape
    b = x.reshape(*shape[:-1], shape[-1] // 32, 32)
    d = b.abs().amax(dim=-1, keepdim=True) / 127.0
    q = torch.where(d > 0, torch.round(b / torch.where(d > 0, d, torch.ones_like(d))), torch.zeros_like(b))
    return (q.clamp(-127, 127) * d).reshape(shape)


NEAR_TIE = 1e-4  # in 8-bit steps: an input this close to a half-way point may round either way in f32


def hook_int_inputs(m, role_type, near):
    """Rounds the input of every matrix stored as q8_0/q4_0 (per the policy), as our integer
    kernels do, counting into near[0] the inputs within NEAR_TIE steps of a half-way point (there
    an f32 computation of the same input may round the other way); returns the hook handles."""
    def pre(_m, args):
        x = args[0]
        b = x.reshape(*x.shape[:-1], x.shape[-1] // 32, 32)
        d = b.abs().amax(dim=-1, keepdim=True) / 127.0
        y = (b / torch.where(d > 0, d, torch.ones_like(d))).abs()
        near[0] += int(((y - y.floor() - 0.5).abs() < NEAR_TIE).sum())
        return (round_activations_q8(x),) + tuple(args[1:])
    mods = []
    if role_type["block_matrix"] in INT_TYPES:
        for blk in m.transformer.h:
            mods += [blk.attn.c_attn, blk.attn.c_proj, blk.mlp.c_fc, blk.mlp.c_proj]
    if role_type["token_embd"] in INT_TYPES:
        mods.append(m.lm_head)
    return [mod.register_forward_pre_hook(pre) for mod in mods]


def stats(a, b):
    d = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in a]) - np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in b])
    return {"max_abs": float(np.abs(d).max()) if d.size else 0.0, "rms": float(np.sqrt((d ** 2).mean())) if d.size else 0.0}


def write_gguf(path, cfg, wtype, table, raw_of):
    w = gguf.GGUFWriter(path, "gpt2")
    w.add_name("tiny-q")
    w.add_block_count(cfg.n_layer)
    w.add_context_length(cfg.n_positions)
    w.add_embedding_length(cfg.n_embd)
    w.add_feed_forward_length(4 * cfg.n_embd)
    w.add_head_count(cfg.n_head)
    w.add_layer_norm_eps(cfg.layer_norm_epsilon)
    w.add_file_type(int(FILE_TYPE[wtype]))
    for t in table:
        raw = np.frombuffer(raw_of[t["name"]], dtype=np.uint8)
        shape = list(reversed(t["ne"]))
        if t["type"] == "F32":
            w.add_tensor(t["name"], raw.view("<f4").reshape(shape))
        elif t["type"] == "F16":
            w.add_tensor(t["name"], raw.view("<f2").reshape(shape))
        else:
            bs, ts = gguf.GGML_QUANT_SIZES[qtype(t["type"])]
            w.add_tensor(t["name"], raw.reshape(*shape[:-1], shape[-1] // bs * ts), raw_dtype=qtype(t["type"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def check_gguf(path, table):
    r = gguf.GGUFReader(path)
    got = {t.name: t for t in r.tensors}
    assert [t.name for t in r.tensors] == [t["name"] for t in table]
    with open(path, "rb") as f:
        blob = f.read()
    for t in table:
        rt = got[t["name"]]
        assert rt.tensor_type.name == t["type"], (t["name"], rt.tensor_type.name)
        assert [int(x) for x in rt.shape] == t["ne"], (t["name"], list(rt.shape), t["ne"])
        assert rt.n_bytes == t["n_bytes"]
        data = blob[rt.data_offset:rt.data_offset + rt.n_bytes]
        assert hashlib.sha256(data).hexdigest() == t["sha256"], t["name"]


def build_tiny_q(keep_gguf):
    cfg = make_config(n_layer=2, n_head=4, n_embd=64, vocab_size=1000, n_positions=40)
    model = make_model(cfg, seed=5000)
    d = os.path.join(FIXQ, "tiny-q")
    model.save_pretrained(d, safe_serialization=True)
    for extra in ("generation_config.json",):
        if os.path.exists(os.path.join(d, extra)):
            os.remove(os.path.join(d, extra))
    saved = GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
    for k, v in model.transformer.state_dict().items():
        assert torch.equal(saved.transformer.state_dict()[k], v), k

    rng = np.random.default_rng(5100)
    seqs = [rng.integers(0, cfg.vocab_size, size=n).tolist() for n in SEQ_LENGTHS]
    with torch.no_grad():
        direct = GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager", dtype=torch.float64)
        direct.eval()
    direct_tok, direct_last = logprob_reference(direct, seqs)

    src = gguf_tensors(model, cfg.n_layer)
    per_type = {}
    tmp = tempfile.mkdtemp(prefix="tiny-q-gguf-")
    for wtype, types in POLICY.items():
        role_type = dict(zip(ROLES, types))
        table, deq, raw_of = [], {}, {}
        for name, role, w in src:
            tname = role_type["vector"] if w.ndim == 1 else role_type[role]
            raw = to_bytes(w, tname)
            back = from_bytes(raw, tname, w.shape)
            err = back.astype(np.float64) - w.astype(np.float64)
            rms_w = float(np.sqrt((w.astype(np.float64) ** 2).mean()))
            table.append({
                "name": name,
                "type": tname,
                "ggml_type_id": int(qtype(tname)),
                "ne": list(reversed(w.shape)),
                "n_bytes": len(raw),
                "sha256": hashlib.sha256(raw).hexdigest(),
                "rms": rms_w,
                "rel_rms_error": float(np.sqrt((err ** 2).mean())) / rms_w,
                "max_abs_error": float(np.abs(err).max()),
            })
            deq[name] = back
            raw_of[name] = raw
        path = os.path.join(tmp, f"tiny-q-{wtype}.gguf")
        write_gguf(path, cfg, wtype, table, raw_of)
        check_gguf(path, table)
        if keep_gguf:
            os.makedirs(keep_gguf, exist_ok=True)
            shutil.copy(path, keep_gguf)
        m = model_from_gguf_tensors(cfg, deq)
        tok, last = logprob_reference(m, seqs)
        nll = -float(np.mean([v for row in tok for v in row]))
        near = [0]
        hooks = hook_int_inputs(m, role_type, near)
        tok8, last8, near_ties = [], [], []
        for sq in seqs:
            near[0] = 0
            t8, l8 = logprob_reference(m, [sq])
            tok8 += t8
            last8 += l8
            near_ties.append(near[0])
        for h in hooks:
            h.remove()
        per_type[wtype] = {
            "policy": role_type,
            "file_type": int(FILE_TYPE[wtype]),
            "tensors": table,
            "token_logprobs": tok,
            # the whole last distribution for the first LAST_FULL sequences only (size)
            "last_logprobs": last[:LAST_FULL],
            "int8_act_effect": stats(tok8 + last8, tok + last),
            # per sequence: rounded inputs within NEAR_TIE steps of a half-way point
            "int8_act_near_ties": near_ties,
            "near_tie_steps": NEAR_TIE,
            "mean_nll": nll,
            "perplexity": math.exp(nll),
        }
        if hooks:
            # the same with the inputs of q8_0/q4_0 matrices rounded to 8 bits per block of 32
            # (round_activations_q8): what our integer kernels compute
            per_type[wtype]["token_logprobs_int8_act"] = tok8
            per_type[wtype]["last_logprobs_int8_act"] = last8[:LAST_FULL]
    shutil.rmtree(tmp, ignore_errors=True)

    ref = per_type["f32"]
    # the f32 GGUF layout round-trips: same numbers as transformers on the saved folder
    assert ref["token_logprobs"] == direct_tok and ref["last_logprobs"] == direct_last[:LAST_FULL]
    for wtype, r in per_type.items():
        r["delta_vs_f32"] = {
            "token_logprobs": stats(r["token_logprobs"], ref["token_logprobs"]),
            "last_logprobs": stats(r["last_logprobs"], ref["last_logprobs"]),
            "mean_nll": r["mean_nll"] - ref["mean_nll"],
        }
        r["delta_vs_f32"]["max_abs"] = max(r["delta_vs_f32"]["token_logprobs"]["max_abs"], r["delta_vs_f32"]["last_logprobs"]["max_abs"])

    doc = {
        "generator": GENERATOR,
        "versions": VERSIONS,
        "config": {k: getattr(cfg, k) for k in ("n_layer", "n_head", "n_embd", "vocab_size", "n_positions", "layer_norm_epsilon", "activation_function")},
        "weights": "model.safetensors (float32, save_pretrained, keys transformer.*), make_fixtures.make_model(seed 5000): "
                   "LayerNorm weight 1 + 0.2 N, LayerNorm/linear biases 0.1 N, wte/wpe 0.2 N, Conv1D weights 0.15 N",
        "compute_dtype": "float64 (dequantized f32 weights upcast, model.double(), eager attention, CPU)",
        "gguf_layout": {
            "names": "convert_hf_to_gguf.py (GPT2Model): token_embd, position_embd, blk.{i}.attn_norm/attn_qkv/attn_output/ffn_norm/ffn_up/ffn_down "
                     ".{weight,bias}, output_norm.{weight,bias}; no output.weight (tied to token_embd); the HF .attn.bias masks are dropped",
            "ne": "GGUF dims, ne[0] first (= reversed numpy shape); ne[0] is the contiguous axis and the axis quantization blocks run along",
            "conv1d": "HF Conv1D weights are (in, out); the GGUF matrices are their transposes, numpy (out, in), ne = [in, out]: "
                      "each row is one output's weights over the input axis",
            "hf_of_gguf": {"token_embd.weight": "transformer.wte.weight", "position_embd.weight": "transformer.wpe.weight",
                           "output_norm.weight/bias": "transformer.ln_f.weight/bias",
                           **{f"blk.{{i}}.{g}": f"transformer.h.{{i}}.{h}" + (" (transposed)" if tr else "") for g, (h, tr) in HF_OF.items()}},
            "sha256": "of the tensor's data bytes as stored in the GGUF data section (F32/F16 little-endian row-major; BF16 u16; "
                      "quantized: concatenated blocks, row by row), without alignment padding; checked by writing the files with "
                      "gguf.GGUFWriter and reading them back with gguf.GGUFReader",
            "quantizer": "F16: numpy astype(float16); BF16, Q8_0, Q4_0: gguf.quants.quantize",
            "gguf_kv": {"general.architecture": "gpt2", "gpt2.block_count": cfg.n_layer, "gpt2.context_length": cfg.n_positions,
                        "gpt2.embedding_length": cfg.n_embd, "gpt2.feed_forward_length": 4 * cfg.n_embd, "gpt2.head_count": cfg.n_head,
                        "gpt2.attention.layer_norm_epsilon": cfg.layer_norm_epsilon, "general.file_type": "per type, below"},
        },
        "policy_roles": {
            "vector": "every 1-D tensor (norm weights and biases, linear biases)",
            "position_embd": "position_embd.weight",
            "block_matrix": "blk.{i}.attn_qkv/attn_output/ffn_up/ffn_down.weight",
            "token_embd": "token_embd.weight (also the tied output matrix)",
        },
        "policy_notes": [
            "convert_hf_to_gguf.py keeps position_embd F32 for every outtype; here f16/bf16 store it as F16/BF16 on purpose",
            "llama-quantize --q4_0 gives the tied token_embd Q6_K; here Q8_0 (a type this project computes natively)",
            "llama-quantize never quantizes position_embd (it stays as in the input file)",
        ],
        "sequences": seqs,
        "descriptions": {
            "sequences": "4 seeded (5100) random id sequences, lengths 1, 7, 23, 40",
            "token_logprobs": "per sequence s: [log p(s[t] | s[:t]) for t in 1..len(s)-1] (empty for the length-1 sequence)",
            "last_logprobs": "per sequence: the full log_softmax row (vocab_size values) at the last position",
            "mean_nll": "minus the mean of all token_logprobs (67 tokens); perplexity = exp(mean_nll)",
            "tensors": "GGUF tensor table in file order: name, type (ggml type name), ggml_type_id, ne, n_bytes, sha256, rms of the f32 "
                       "tensor, rel_rms_error = rms(dequantized - f32) / rms(f32), max_abs_error",
            "delta_vs_f32": "max_abs / rms of (this type - f32) over token_logprobs and over last_logprobs; max_abs = the larger of the two",
        },
        "types": per_type,
    }
    dump_json(doc, os.path.join(d, "quant_reference.json"))
    return per_type


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ggml-src", help="llama.cpp's ggml/ folder: cross-check the block cases against the compiled C")
    ap.add_argument("--write-gguf", help="also keep the tiny-q GGUF files in this folder")
    args = ap.parse_args()

    shutil.rmtree(FIXQ, ignore_errors=True)
    os.makedirs(FIXQ)
    print(f"versions: {VERSIONS}")

    blocks = build_blocks(args.ggml_src)
    dump_json(blocks, os.path.join(FIXQ, "blocks.json"))
    diffs = [f"{c['name']}/{t}" for c in blocks["quantize"] for t in ("q8_0", "q4_0") if "ggml_c_ref_bytes" in c[t]]
    print(f"blocks.json: {len(blocks['quantize'])} quantize cases, {len(blocks['convert'])} convert cases, "
          f"{len(blocks['dequantize'])} dequantize types; gguf-py vs ggml C reference differ on: {diffs or 'none'}")
    if blocks["ggml_c_crosscheck"]:
        for b in blocks["ggml_c_crosscheck"]["builds"]:
            print(f"  ggml C ({b['flags']}): quantize differs from gguf-py on {b['quantize_bytes_differ_from_gguf_py'] or 'none'}; "
                  f"dequantize differs on {b['dequantize_differs_from_gguf_py'] or 'none'}")

    per_type = build_tiny_q(args.write_gguf)
    print(f"{'type':<6} {'mean NLL':>12} {'ppl':>10} {'max|dlogprob|':>14} {'rms dlogprob':>13} {'max rel_rms_err':>16}")
    for wtype, r in per_type.items():
        print(f"{wtype:<6} {r['mean_nll']:12.6f} {r['perplexity']:10.3f} {r['delta_vs_f32']['max_abs']:14.3e} "
              f"{r['delta_vs_f32']['token_logprobs']['rms']:13.3e} {max(t['rel_rms_error'] for t in r['tensors']):16.3e}")
    d = per_type
    assert d["f32"]["delta_vs_f32"]["max_abs"] == 0.0
    assert 0 < d["bf16"]["delta_vs_f32"]["max_abs"] and 0 < d["f16"]["delta_vs_f32"]["max_abs"] < d["bf16"]["delta_vs_f32"]["max_abs"]
    assert 0 < d["q8_0"]["delta_vs_f32"]["max_abs"] < d["q4_0"]["delta_vs_f32"]["max_abs"] / 5

    for f in ("blocks.json",):
        assert os.path.getsize(os.path.join(FIXQ, f)) < 300_000
    assert os.path.getsize(os.path.join(FIXQ, "tiny-q", "quant_reference.json")) < 1_000_000
    total = 0
    for base, _, files in os.walk(FIXQ):
        for f in sorted(files):
            p = os.path.join(base, f)
            total += os.path.getsize(p)
            print(f"  {os.path.relpath(p, ROOT)}: {os.path.getsize(p) / 1e3:.1f} kB")
    print(f"total: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
