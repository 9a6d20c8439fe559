#!/usr/bin/env bash
# Transfer's savings against the correlation rho, as a sweep with replicates (the study of
# configs/paper/08 for transfer; 04_transfer.sh is the three-seed picture of the same question).
# 1. Pretrain on configs/reference.json (P of problem seed 1).
# 2. One sweep: downstream tasks whose P = rho * P_pre + (1 - rho) * Dirichlet(1) of their own
#    seed (and their own Q), rho in {0, 0.25, 0.5, 0.75, 0.9, 1}, six task seeds, two training
#    seeds each; each trained from scratch (stationary init, the reference's 4,000 first-stage
#    steps) and from the pretrained V with no first stage (zip: init and stage1_steps together).
# 3. scripts/transfer_savings.py: samples to dist_A_norm <= 0.3 per arm (Kaplan-Meier medians,
#    censoring reported), the savings scratch / pretrained per rho with bootstrap intervals.
# Resumable: run it again and the sweep goes on (--resume); the pretraining is kept.
set -euo pipefail
OUT=${1:-out/paper/08b_transfer_rho}
SCB=${SCB:-build/scb}
THREADS=${THREADS:-0}
PY=${PY:-/usr/bin/python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)   # the sweep file names the pretrained files by absolute path
HERE=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -f "$OUT/pretrain/V.npy" ]; then
  rm -rf "$OUT/pretrain"
  "$SCB" train "$HERE/configs/reference.json" --threads "$THREADS" --out "$OUT/pretrain" --set eval.every=100
fi
# problem.P is the axis (an axis is a whole config key): one object per rho.
P_AXIS=""
for rho in 0.0 0.25 0.5 0.75 0.9 1.0; do
  P_AXIS="$P_AXIS${P_AXIS:+, }{\"dirichlet\": 1.0, \"mix\": \"$OUT/pretrain/P.npy\", \"rho\": $rho}"
done
cat > "$OUT/sweep.json" <<JSON
{
  "base": {
    "problem": {"N": 3, "T": 100, "Q": 2, "seed": 5},
    "model": {"attention": "linear", "init": "stationary"},
    "train": {"algorithm": "proximal", "steps": 16000, "batch_size": 64, "seed": 0,
              "lr_V": 1.0, "lr_A": 0.02, "lambda": 0.005, "stage1_steps": 4000},
    "eval": {"every": 25}
  },
  "grid": {"problem.P": [$P_AXIS], "problem.seed": [5, 6, 7, 8, 9, 10]},
  "zip": {"model.init": ["stationary", {"V": "$OUT/pretrain/V.npy"}], "train.stage1_steps": [4000, 0]},
  "replicates": 2
}
JSON
RESUME=()
[ -f "$OUT/sweep/manifest.json" ] && RESUME=(--resume)
"$SCB" sweep "$OUT/sweep.json" --out "$OUT/sweep" --threads "$THREADS" --quiet "${RESUME[@]}"
[ -n "${NO_ANALYSIS:-}" ] || "$PY" "$HERE/scripts/transfer_savings.py" "$OUT/sweep" --threshold 0.3 --plot "$OUT/transfer_rho.png" \
  --json "$OUT/transfer_rho.json"
