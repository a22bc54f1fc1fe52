#!/usr/bin/env bash
# Reproduces the shipped default model (assets/default-model): a BPE vocabulary of 8192 tokens
# learned on the corpus, the corpus tokenized into shards, tiny-train.json trained from scratch
# for 900 steps of 8 x 256 tokens, exported as block-FP8 with its tokenizer, plus the curves.
#
#   scripts/train_default_model.sh CORPUS.txt [WORK_DIR]
#
# The corpus used is the King James Bible as plain text, one verse per line, chapters separated
# by blank lines (Debian's bible-kjv package: `bible -f "Gen1:1-Rev22:21"`, references stripped).
# About an hour on 2 cores; deterministic for a given thread count.
set -euo pipefail
corpus="$1"
work="${2:-runs/default-model}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
dsv3="$repo/build/dsv3"
export OMP_WAIT_POLICY=passive
mkdir -p "$work"
"$dsv3" tokenizer train --vocab-size 8192 --out "$work/tokenizer" "$corpus"
"$dsv3" data prepare --tokenizer "$work/tokenizer" --out "$work/data" --val-fraction 0.02 --seed 1 "$corpus"
"$dsv3" train --config "$repo/bench/configs/tiny-train.json" --data "$work/data" --out "$work/run" \
  --steps 900 --batch 8 --seq-len 256 --lr 3e-3 --min-lr 3e-4 --warmup 30 --seed 1 --threads 2 \
  --eval-every 50 --eval-batches 4 --save-every 50 --keep 3 | tee "$work/train.log"
"$dsv3" export --checkpoint "$work/run" --out "$work/model" --dtype fp8 --tokenizer "$work/tokenizer"
"$dsv3" plot --out "$work/plots" "$work/run/metrics.jsonl"
