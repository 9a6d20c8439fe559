#!/usr/bin/env bash
# Experiment 07i: is 07g's floor (dist_A_norm ~0.43 at N = 100, T = 100,000) the noise of a
# constant lr_A? Three stages, each from the previous one's final state (model.init):
#   1. configs/paper/07h_stage1.json: 200,000 plain-SGD steps (07d's first stage exactly);
#   2. configs/paper/07i_stage2.json: 80,000 proximal steps at lr_A = 2e-5, lr_V = 0.1 (07h's
#      better second stage, to about 07g's 0.5);
#   3. configs/paper/07i_stage3.json: 40,000 more at lr_A 1e-5 (a step-wise decay: the
#      stationary error of SGD scales like sqrt(lr) at a fixed batch), a new seed so that the
#      minibatches do not repeat stage 2's; and its control, configs/paper/07i_stage3_control.json:
#      the same 40,000 steps and seed at stage 2's lr_A 2e-5.
# Every stage is checkpointed and resumable: rerunning the script continues where it stopped.
# Usage: configs/paper/07i_lr_steps.sh OUT   (SCB=binary, THREADS=--threads)
set -euo pipefail
OUT=$(realpath -m "${1:-out/paper/07i}")
SCB=${SCB:-build/scb}
THREADS=${THREADS:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/state1" "$OUT/state2"
stage() {  # stage CONFIG NAME STATE: train CONFIG into OUT/NAME and keep its final state in OUT/STATE
  cp "$HERE/$1" "$OUT/$2.json"
  [ -f "$OUT/$3/A.npy" ] && return 0
  "$SCB" train "$OUT/$2.json" --out "$OUT/$2" --threads "$THREADS" --resume
  cp "$OUT/$2/V.npy" "$OUT/$2/A.npy" "$OUT/$3/"
}
stage 07h_stage1.json stage1 state1
stage 07i_stage2.json stage2 state2
cp "$HERE/07i_stage3.json" "$OUT/stage3.json"
"$SCB" sweep "$OUT/stage3.json" --out "$OUT/stage3" --threads "$THREADS" --quiet --resume --save-params all
cp "$HERE/07i_stage3_control.json" "$OUT/stage3_control.json"
"$SCB" sweep "$OUT/stage3_control.json" --out "$OUT/stage3_control" --threads "$THREADS" --quiet --resume
echo "done: $OUT/stage{1,2}, $OUT/stage3 and $OUT/stage3_control (runs.csv, curves.csv, milestones.csv)"
