#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside bytes (cargo fuzz, libFuzzer + ASan).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 600 s, every target
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Each target starts from its committed seeds (fuzz/corpus/<t>/) in
# a scratch corpus under fuzz/work/ (ignored by git), so the committed corpus stays small. A crash
# lands in fuzz/artifacts/<t>/: fix it, then move the input to fuzz/regressions/<t>/ with a name
# saying what it found; `cargo test --test fuzz_regressions` (part of the README's test command)
# replays every committed input on stable. The last lines print executions and time per target.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(config_json safetensors shard_index gguf token_shard tokenizer http_body)
fi
cargo +nightly fuzz build -O
summary=()
for t in "${targets[@]}"; do
  work="fuzz/work/$t"
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  log="fuzz/work/$t.log"
  echo "== $t: ${secs}s"
  status=0
  cargo +nightly fuzz run -O "$t" "$work" -- -max_total_time="$secs" -rss_limit_mb=4096 \
    -malloc_limit_mb=2048 -timeout=20 -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  summary+=("$t: ${execs} executions in ${secs}s, ${cov:-cov ?}, exit ${status}")
  if [ "$status" -ne 0 ]; then
    echo "   crash: see $log and fuzz/artifacts/$t/"
  fi
done
printf '%s\n' "${summary[@]}"
