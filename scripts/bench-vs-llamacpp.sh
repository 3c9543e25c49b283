#!/usr/bin/env bash
# Our `gpt2 bench` against llama.cpp's `llama-bench` on the very same GGUF files (the random GPT-2
# 124M checkpoint of ../shared/anchors, converted and quantized by llama.cpp's own tools), interleaved
# round by round, 2 threads. Prints medians over the rounds and the ratio ours / llama.cpp.
#   scripts/bench-vs-llamacpp.sh                   # f32 f16 q8_0 q4_0 q4_k_m, 3 rounds (~6 minutes)
#   ROUNDS=5 scripts/bench-vs-llamacpp.sh q8_0 q4_0
# TYPES: any of f32 f16 bf16 q8_0 q4_0 q4_k_m. Env: ROUNDS (3), THREADS (2), REPEATS (3: repeats
# inside one `gpt2 bench` call, median), DECODE_PROMPT (16: prompt before the 128 decoded tokens),
# OUT (folder for the raw results; default a new /tmp/bench-vs-llamacpp.XXXXXX), SKIP_BUILD=1 (use
# target/release/gpt2 as it is), GPT2_BIN (another gpt2 binary; then no build), LLAMA_ROOT and
# ANCHOR_ROOT (as in ../shared/anchors/llamacpp/run.sh), MMAP (1: both map the file; 0: both read it
# into memory, ours with `--no-mmap` (huge pages), llama.cpp with `-lm none`).
# Needs ../shared/anchors/pytorch/run.sh --help to have run once (it makes the checkpoint).
#
# What is measured (batch 1 throughout):
#   decode   llama.cpp: llama-bench tg128 (128 tokens from an empty context, after a warm-up run)
#            ours:      gpt2 bench --prompt-len $DECODE_PROMPT --new-tokens 128 -> decode_tok_s
#   prefill  llama.cpp: llama-bench pp512 (one 512-token batch)
#            ours:      gpt2 bench --prompt-len 512 --new-tokens 1 -> prefill_tok_s
# Not run by any test. Everything it writes lies outside the repository.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
shared=$repo/../shared
L=${LLAMA_ROOT:-/tmp/llamacpp-anchor}
export LLAMA_ROOT=$L
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
repeats=${REPEATS:-3}
decode_prompt=${DECODE_PROMPT:-16}
ours_flags=()
llama_flags=()
if [ "${MMAP:-1}" = 0 ]; then
  ours_flags=(--no-mmap)
  llama_flags=(-lm none)
fi
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(f32 f16 q8_0 q4_0 q4_k_m)

die() { echo "bench-vs-llamacpp: $*" >&2; exit 1; }
for t in "${types[@]}"; do
  case $t in f32|f16|bf16|q8_0|q4_0|q4_k_m) ;; *) die "unknown type '$t' (f32 f16 bf16 q8_0 q4_0 q4_k_m)" ;; esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
command -v python3 >/dev/null || die "python3 is needed to parse the JSON"

out=${OUT:-$(mktemp -d /tmp/bench-vs-llamacpp.XXXXXX)}
mkdir -p "$out"
case $(cd "$out" && pwd)/ in "$repo"/*) die "OUT=$out is inside the repository; use a folder under /tmp" ;; esac
results=$out/results.tsv   # round  type  engine  workload  tok_s
log=$out/log.txt
: >"$results"
: >"$log"

# 1. llama.cpp and the GGUF files (a no-op after the first time, apart from the checks)
echo "building llama.cpp / GGUF files (log: $out/llamacpp-build.log) ..." >&2
"$shared/anchors/llamacpp/run.sh" build >"$out/llamacpp-build.log" 2>&1 ||
  { tail -n 30 "$out/llamacpp-build.log" >&2; die "llama.cpp build failed"; }
llama_bench=$L/src/build/bin/llama-bench
[ -x "$llama_bench" ] || die "no $llama_bench"
model() { echo "$L/models/gpt2-124m-random-$1.gguf"; }
for t in "${types[@]}"; do [ -f "$(model "$t")" ] || die "missing $(model "$t")"; done

# 2. our binary
gpt2=${GPT2_BIN:-$repo/target/release/gpt2}
if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${GPT2_BIN:-}" ]; then
  echo "building gpt2 (cargo build --release) ..." >&2
  (cd "$repo" && cargo build --release -q -p gpt2-cli) || die "cargo build failed"
fi
[ -x "$gpt2" ] || die "no $gpt2 (build it, or unset SKIP_BUILD)"

# JSON field of the last JSON line on stdin, or nothing
json_field() {
  python3 -c '
import json, sys
field = sys.argv[1]
rows = [l for l in sys.stdin.read().splitlines() if l.lstrip().startswith("{")]
if rows:
    v = json.loads(rows[-1]).get(field)
    if isinstance(v, (int, float)): print(v)
' "$1"
}

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-NA}" >>"$results"; }

run_llama() {  # round type
  local r=$1 t=$2 raw pp tg
  if raw=$("$llama_bench" ${llama_flags[@]+"${llama_flags[@]}"} -m "$(model "$t")" -t "$threads" -p 512 -n 128 -r 1 -o jsonl 2>>"$log"); then
    pp=$(printf '%s\n' "$raw" | python3 -c '
import json, sys
for l in sys.stdin:
    l = l.strip()
    if l.startswith("{"):
        d = json.loads(l)
        if d.get("n_prompt", 0) > 0 and d.get("n_gen", 0) == 0 and "avg_ts" in d: print(d["avg_ts"])' || true)
    tg=$(printf '%s\n' "$raw" | python3 -c '
import json, sys
for l in sys.stdin:
    l = l.strip()
    if l.startswith("{"):
        d = json.loads(l)
        if d.get("n_gen", 0) > 0 and d.get("n_prompt", 0) == 0 and "avg_ts" in d: print(d["avg_ts"])' || true)
  else
    echo "round $r $t: llama-bench failed: $(tail -n 1 "$log")" >&2
  fi
  record "$r" "$t" llama.cpp decode "${tg:-}"
  record "$r" "$t" llama.cpp prefill "${pp:-}"
}

run_ours() {  # round type
  local r=$1 t=$2 f raw dec pre
  f=$(model "$t")
  dec=
  if raw=$("$gpt2" ${ours_flags[@]+"${ours_flags[@]}"} bench --model "$f" --threads "$threads" --prompt-len "$decode_prompt" --new-tokens 128 \
                 --repeats "$repeats" --json 2>>"$log"); then
    dec=$(printf '%s\n' "$raw" | json_field decode_tok_s || true)
  else
    echo "round $r $t: gpt2 bench (decode) failed: $(tail -n 1 "$log")" >&2
  fi
  pre=
  if raw=$("$gpt2" ${ours_flags[@]+"${ours_flags[@]}"} bench --model "$f" --threads "$threads" --prompt-len 512 --new-tokens 1 \
                 --repeats "$repeats" --json 2>>"$log"); then
    pre=$(printf '%s\n' "$raw" | json_field prefill_tok_s || true)
  else
    echo "round $r $t: gpt2 bench (prefill) failed: $(tail -n 1 "$log")" >&2
  fi
  record "$r" "$t" ours decode "$dec"
  record "$r" "$t" ours prefill "$pre"
}

# 3. interleaved rounds; the engine that goes first alternates from round to round
echo "load before: $(cat /proc/loadavg)" | tee -a "$log" >&2
for ((r = 1; r <= rounds; r++)); do
  for t in "${types[@]}"; do
    echo "round $r/$rounds: $t" >&2
    if ((r % 2)); then run_llama "$r" "$t"; run_ours "$r" "$t"; else run_ours "$r" "$t"; run_llama "$r" "$t"; fi
  done
done
echo "load after:  $(cat /proc/loadavg)" | tee -a "$log" >&2

# 4. the table
python3 - "$results" "$rounds" "$threads" "$decode_prompt" "${types[@]}" <<'EOF'
import statistics, sys
path, rounds, threads, dprompt, types = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
vals = {}
for line in open(path):
    _, t, eng, work, v = line.rstrip("\n").split("\t")
    if v != "NA":
        vals.setdefault((t, eng, work), []).append(float(v))
def med(k):
    xs = vals.get(k)
    return statistics.median(xs) if xs else None
def f(x): return f"{x:8.1f}" if x is not None else "      NA"
def ratio(a, b): return f"{a / b:6.2f}" if a is not None and b else "    NA"
def spread(k):
    xs = vals.get(k)
    return f"{min(xs):.0f}-{max(xs):.0f}" if xs and len(xs) > 1 else ""
print(f"\nGPT-2 124M random, {threads} threads, medians of {rounds} rounds (tok/s); ratio = ours / llama.cpp")
print(f"decode: llama-bench tg128 vs gpt2 bench {dprompt}-token prompt + 128 new; prefill: pp512 vs --prompt-len 512\n")
hdr = f"{'type':7} | {'decode llama':>12} {'ours':>8} {'ratio':>6} | {'pp512 llama':>12} {'ours':>8} {'ratio':>6} | spread (min-max): decode llama / ours, pp512 llama / ours"
print(hdr); print("-" * len(hdr))
for t in types:
    dl, do = med((t, "llama.cpp", "decode")), med((t, "ours", "decode"))
    pl, po = med((t, "llama.cpp", "prefill")), med((t, "ours", "prefill"))
    sp = " / ".join(spread((t, e, w)) or "-" for w in ("decode", "prefill") for e in ("llama.cpp", "ours"))
    print(f"{t:7} | {f(dl):>12} {f(do)} {ratio(do, dl)} | {f(pl):>12} {f(po)} {ratio(po, pl)} | {sp}")
EOF
echo "raw results: $results (log: $log)" >&2
