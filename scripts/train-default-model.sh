#!/usr/bin/env bash
# Reproduces the default model models/gpt2-shakespeare from the text, end to end, with the
# project's own commands only (gpt2 prepare, gpt2 train, gpt2 eval, gpt2 convert).
#   scripts/train-default-model.sh [RUN_DIR]      # about 60 minutes on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-/tmp/gpt2-shakespeare-run}
cargo build --release -q
gpt2=target/release/gpt2
mkdir -p "$run"

# 1. tokens: the first 90% of the text's GPT-2 tokens train, the last 10% validate
$gpt2 prepare --input data/tinyshakespeare.txt --out "$run/data" --val-fraction 0.1

# 2. train: GPT-2 architecture, 6 layers, 6 heads, 192 wide, 256 positions (12.3M parameters)
$gpt2 train --threads 2 --data "$run/data" --out "$run/train" \
  --preset gpt2 --n-layer 6 --n-head 6 --n-embd 192 --n-ctx 256 \
  --batch-size 8 --seq-len 256 --grad-accum 1 --steps 1000 \
  --lr 1e-3 --lr-schedule cosine --warmup 60 --min-lr 1e-4 \
  --weight-decay 0.1 --beta1 0.9 --beta2 0.95 --eps 1e-8 --grad-clip 1.0 --dropout 0.2 \
  --eval-every 100 --eval-steps 16 --sample-every 250 --save-every 100 --keep-checkpoints 12 \
  --seed 1337

# 3. ship: f16 weights, metrics, loss plot
out=models/gpt2-shakespeare
mkdir -p "$out"
$gpt2 convert --model "$run/train" --out "$out" --dtype f16
cp "$run/train/metrics.jsonl" "$out/"
cp "$run/train"/loss.* "$out/" 2>/dev/null || true
$gpt2 eval --model "$out" --data "$run/data/val.bin" --json
