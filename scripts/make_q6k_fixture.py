#!/usr/bin/env python3
"""Write crates/gpt2/tests/fixtures/quant/q6_k.json: q6_K blocks exactly as llama-quantize writes them.

Run by hand (never by CI), from the repository root, with llama.cpp's ggml/ folder (the one that
`../shared/anchors/llamacpp/run.sh build` unpacks):

    /tmp/gpt2-anchors/venv/bin/python scripts/make_q6k_fixture.py --ggml-src /tmp/llamacpp-anchor/src/ggml

Why a separate script: gguf-py has no q6_K quantizer (only the dequantizer), and q6_K is what
llama-quantize stores GPT-2's token_embd in for Q4_0 files (GPT-2 has no separate output matrix, so the
tied embedding gets the output's type). The reference is ggml's own C: ggml-quants.c compiled with -O3
and no -march, as llama.cpp's CMake builds it (it sits in ggml-base, which gets no CPU flags, so
x86-64's baseline has no FMA to contract into), called through ctypes: quantize_row_q6_K_ref (what
llama-quantize runs without an importance matrix) and dequantize_row_q6_K. The dequantization is
checked against gguf-py's. A second build with -march=native -ffp-contract=fast is recorded for
information: FMA contraction changes make_qx_quants' sums, and with them some blocks
("native_fma_differs" lists the cases).

Each case is 256 or 512 float32 values (one or two super-blocks) aimed at a branch of
quantize_row_q6_K_ref / make_qx_quants: all-zero and near-zero groups (GROUP_MAX_EPS), a negative
largest scale, sub-scales clipped at 127, ties in nearest_int, fp16 limits of d, subnormals, and
random rows at several scales.
"""

import argparse
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_quant_fixtures import STUB_C, VERSIONS, bits32, bits_equal, dump_json, f32, from_bits  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates", "gpt2", "tests", "fixtures", "quant", "q6_k.json")
QK_K, TYPE_SIZE = 256, 210


def cases():
    rng = np.random.default_rng(7300)
    out = []

    def add(name, note, v):
        v = f32(v)
        assert v.ndim == 1 and v.size % QK_K == 0, name
        out.append((name, note, v))

    z = np.zeros(QK_K, np.float32)
    add("zeros", "all +0.0: every group scale 0 -> max_abs_scale < GROUP_MAX_EPS -> the block is all zero bytes", z)
    v = rng.normal(0, 1e-17, QK_K)
    add("below_group_eps", "|x| ~ 1e-17 < GROUP_MAX_EPS (1e-15): every group gets scale 0, the block is zero", v)
    v = rng.normal(0, 0.02, QK_K); v[16:32] = 0.0; v[200:216] = 1e-16
    add("some_groups_empty", "groups 1 and 12 are zero / below GROUP_MAX_EPS: their sub-scale is 0 and they keep "
        "make_qx_quants' levels (32, i.e. 0)", v)
    v = rng.normal(0, 0.02, QK_K); v[77] = -0.5
    add("max_scale_negative", "largest group scale comes from a negative value (-0.5): d = max_scale / -128 > 0", v)
    v = rng.normal(0, 0.02, QK_K); v[77] = 0.5
    add("max_scale_positive", "largest group scale from +0.5: d < 0, sub-scales of the other sign", v)
    v = rng.normal(0, 0.01, QK_K); v[5] = 0.8; v[40] = -0.9
    add("subscale_clip_127", "group 0 max +0.8, group 2 max -0.9: the group of largest |scale| sets d, the other "
        "sign's group would need sub-scale > 127 and is clipped (min(127, nearest_int(iscale * scale)))", v)
    v = np.tile(np.array([k * 0.5 for k in range(-8, 8)], np.float32), QK_K // 16)
    add("halves", "every group -4.0 .. 3.5 in steps of 0.5: level ties in nearest_int (round half to even via "
        "the 12582912 trick)", v)
    v = np.tile(np.arange(-32, 32, dtype=np.float32), QK_K // 64)
    add("exact_levels", "integers -32..31: the scale search can hit the levels exactly", v)
    add("all_equal", "256 x 0.3", np.full(QK_K, 0.3, np.float32))
    add("all_equal_neg", "256 x -0.3", np.full(QK_K, -0.3, np.float32))
    v = rng.uniform(-1, 1, QK_K) * np.float32(1e6)
    add("d_fp16_large", "|x| ~ 1e6: d ~ 1e6 / 32 / 128 = 244 (fine in fp16)", v)
    v = rng.uniform(-1, 1, QK_K) * np.float32(3e8); v[3] = 3e8
    add("d_fp16_overflow", "|x| up to 3e8: d ~ 3e8 / 32 / 128 = 7.3e4 > fp16 max -> inf; dequantized inf / NaN", v)
    v = rng.uniform(-1, 1, QK_K) * np.float32(1e-4)
    add("d_fp16_subnormal", "|x| ~ 1e-4: d ~ 2.4e-8 is an fp16 subnormal", v)
    v = rng.normal(0, 1, QK_K); v[::7] = np.array([1.4e-45, -1e-40, 5e-39] * 20, np.float32)[: len(v[::7])]
    add("subnormals", "float32 subnormals mixed in a normal row: they round to level 0", v)
    v = np.concatenate([rng.normal(0, 0.01, QK_K), rng.normal(0, 3, QK_K)])
    add("two_superblocks", "512 values: super-blocks of scales 0.01 and 3", v)
    for i, s in enumerate((0.02, 0.15, 1.0, 30.0)):
        add(f"random_normal_{i}", f"normal(0, {s}), 512 values (seed 7300)", rng.normal(0, s, 2 * QK_K))
    v = rng.standard_t(3, 2 * QK_K) * 0.05
    add("random_heavy_tail", "Student t (3 dof) * 0.05: outliers per group, 512 values", v)
    return out


def build(ggml_src):
    src = os.path.join(ggml_src, "src", "ggml-quants.c")
    tmp = tempfile.mkdtemp(prefix="ggml-q6k-")
    with open(os.path.join(tmp, "stub.c"), "w") as f:
        f.write(STUB_C)
    libs = {}
    for label, flags in (("ref", ["-O3"]), ("native_fma", ["-O3", "-march=native", "-ffp-contract=fast"])):
        lib = os.path.join(tmp, f"libq_{label}.so")
        subprocess.run(["gcc", *flags, "-fPIC", "-shared", "-std=gnu11", "-I", os.path.join(ggml_src, "include"),
                        "-I", os.path.join(ggml_src, "src"), src, os.path.join(tmp, "stub.c"), "-o", lib, "-lm"], check=True)
        libs[label] = (" ".join(flags), ctypes.CDLL(lib))
    recs, fma_differs = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for name, note, x in cases():
            got = {}
            for label, (_, so) in libs.items():
                buf = (ctypes.c_uint8 * (x.size // QK_K * TYPE_SIZE))()
                so.quantize_row_q6_K_ref(x.ctypes.data_as(ctypes.c_void_p), buf, ctypes.c_int64(x.size))
                got[label] = bytes(buf)
            if got["ref"] != got["native_fma"]:
                fma_differs.append(name)
            raw = got["ref"]
            y = np.zeros(x.size, np.float32)
            libs["ref"][1].dequantize_row_q6_K(raw, y.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(x.size))
            py = gguf.quants.dequantize(np.frombuffer(raw, np.uint8).copy(), QT.Q6_K).reshape(-1)
            assert bits_equal(y, py), f"{name}: ggml C and gguf-py dequantize differently"
            assert from_bits(bits32(x)).tobytes() == x.tobytes()
            recs.append({"name": name, "note": note, "n": int(x.size), "input_f32_bits": bits32(x), "bytes": raw.hex(),
                         "dequant_f32_bits": bits32(y), "nonfinite": bool(not np.isfinite(y).all())})
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "generator": "scripts/make_q6k_fixture.py",
        "versions": VERSIONS,
        "ggml_source": "ggml/src/ggml-quants.c of the llama.cpp that llama-cpp-python vendors",
        "ggml_build": libs["ref"][0],
        "native_fma_build": libs["native_fma"][0],
        "native_fma_differs": fma_differs,
        "conventions": {
            "bytes": "hex of block_q6_K (ql[128] low nibbles, qh[64] high 2 bits, scales i8[16], d f16) per 256 values, "
                     "from ggml's quantize_row_q6_K_ref built as llama.cpp builds it (ggml_build)",
            "dequant_f32_bits": "ggml's dequantize_row_q6_K of those bytes (equal to gguf-py's); any NaN equals any NaN",
        },
        "cases": recs,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ggml-src", required=True, help="llama.cpp's ggml/ folder")
    args = ap.parse_args()
    dump_json(build(args.ggml_src), OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
