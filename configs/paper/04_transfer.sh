#!/usr/bin/env bash
# Experiment (iv): transfer from a correlated task against training from scratch.
# Pretrains on configs/reference.json, then trains a downstream task (own Q, P correlated with the
# pretraining P to degree rho) from scratch and from the pretrained V with stage1_steps = 0.
set -euo pipefail
OUT=${1:-out/paper/transfer}
SCB=${SCB:-build/scb}
THREADS=${THREADS:-0}   # --threads of every run (0 = all cores)
mkdir -p "$OUT"
"$SCB" train configs/reference.json --threads "$THREADS" --out "$OUT/pretrain" --set eval.every=100
for rho in 1.0 0.8 0.5 0.0; do
  P="{\"dirichlet\": 1.0, \"mix\": \"$OUT/pretrain/P.npy\", \"rho\": $rho}"
  for seed in 5 6 7; do
    "$SCB" train configs/reference.json --threads "$THREADS" --out "$OUT/rho$rho/seed$seed/scratch" --set problem.seed=$seed \
      --set "problem.P=$P" --set eval.every=100
    "$SCB" train configs/reference.json --threads "$THREADS" --out "$OUT/rho$rho/seed$seed/tuned" --set problem.seed=$seed \
      --set "problem.P=$P" --set "model.init={\"V\": \"$OUT/pretrain/V.npy\"}" --set train.stage1_steps=0 \
      --set eval.every=100
  done
done
echo "done: $OUT (compare curves.csv of scratch/ and tuned/)"
