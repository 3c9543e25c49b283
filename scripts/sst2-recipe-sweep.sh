#!/usr/bin/env bash
# Chooses the SST-2 fine-tuning recipe without touching dev.tsv: every candidate below is trained
# on SST-2's training file minus 800 held-out sentences (and all their phrases) and scored on
# those sentences (scripts/sst2_heldout.py). docs/tasks.md lists the results; the best recipe is
# then trained once on the whole training file and scored once on dev.
#
#   scripts/sst2-recipe-sweep.sh [WORK_DIR]      # about 5 minutes per candidate on one core
#
# Needs python3 (standard library); the TF-IDF line needs scikit-learn.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/sst2-sweep}
data=${SST2:-../shared/data/sst2}
model=models/gpt2-shakespeare
cargo build --release -q
gpt2="target/release/gpt2 --threads 1"
mkdir -p "$work/runs"

python3 scripts/sst2_heldout.py "$data/train.tsv" "$work/split"
split=$work/split

# name, then the flags that differ from: 1,800 steps of 32 (one pass over the 57,572 rows),
# --lr 5e-4 --warmup 100 --weight-decay 0.01 --dropout 0.1, seed 1337
candidates=(
  "A"
  "C --lr 2e-4"
  "D --lr 1e-3"
  "A3 --steps 5400"
  "R3 --batch-size 64"
  "R2 --dropout 0.2 --weight-decay 0.1"
  "R2s2 --dropout 0.2 --weight-decay 0.1 --seed 2"
  "R4 --lr 1e-3 --dropout 0.2 --weight-decay 0.1"
  "R5 --lr 1e-3 --dropout 0.3 --weight-decay 0.1"
  "R6 --lr 2e-3 --dropout 0.2 --weight-decay 0.1"
  "TA --init-from $work/runs/tapt"
  "TD --init-from $work/runs/tapt --lr 1e-3"
)

# TA/TD start from the default model further pre-trained (language modelling, ~1 epoch) on the
# training sentences of the split: task-adaptive pre-training.
cut -f1 "$split/train.tsv" | tail -n +2 > "$split/train.txt"
$gpt2 prepare --input "$split/train.txt" --out "$split/lm" --val-fraction 0.02
$gpt2 train --data "$split/lm" --init-from $model --out "$work/runs/tapt" --batch-size 8 \
  --seq-len 256 --steps 300 --lr 5e-4 --warmup 20 --min-lr 5e-5 --weight-decay 0.1 --dropout 0.1 \
  --eval-every 100 --eval-steps 7 --sample-every 0 --save-every 0 --seed 1337

# Flags given twice are an error, so each candidate's flags replace the defaults by name.
for c in "${candidates[@]}"; do
  read -r name flags <<<"$c"
  declare -A f=([--init-from]=$model [--steps]=1800 [--batch-size]=32 [--lr]=5e-4
    [--warmup]=100 [--weight-decay]=0.01 [--dropout]=0.1 [--seed]=1337)
  set -- $flags
  while [ $# -gt 0 ]; do f[$1]=$2; shift 2; done
  args=()
  for k in "${!f[@]}"; do args+=("$k" "${f[$k]}"); done
  $gpt2 train --task classify --data "$split/train.tsv" --out "$work/runs/$name" \
    --eval-every 0 --save-every 0 "${args[@]}" >"$work/runs/$name.log" 2>&1
  acc=$($gpt2 eval --task classify --model "$work/runs/$name" --data "$split/heldout.tsv" \
    --json | python3 -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["accuracy"]))')
  echo "$name ($flags): held-out accuracy $acc %"
  unset f
done

python3 scripts/baseline_tfidf.py "$split/train.tsv" "$split/heldout.tsv" || true
