#!/usr/bin/env bash
# Experiment 07n: 07m (configs/paper/07m_half_step.json: 07d's schedule at lr_A = 1e-5, N = 100,
# T = 100,000) continued. At half the step the second stage fell 3-4x slower per step than 07g's
# and ended its 480,000 steps at 0.787, still falling but ever more slowly, short of the floor
# 07l's projection put near 0.21 (both runs here settle near 0.78 within 24,000 steps). From 07m's final state (model.init) this runs 300,000 more
# proximal steps at lr_A = 1e-5, at 07m's lambda 0.01 and at 0.03 (07h: a larger lambda reaches
# the floor sooner, not lower), with a new minibatch seed (train.seed 2: a restarted step counter
# would otherwise replay 07m's minibatches). Checkpointed and resumable: rerunning the script
# continues where it stopped.
# Usage: configs/paper/07n_continue.sh M_OUT OUT   (M_OUT: 07m's sweep directory, run with
#        --save-params all; SCB=binary, THREADS=--threads)
set -euo pipefail
M_OUT=$(realpath "${1:?07m output directory}")
OUT=$(realpath -m "${2:-out/paper/07n}")
SCB=${SCB:-build/scb}
THREADS=${THREADS:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/state"
if [ ! -f "$OUT/state/A.npy" ]; then
  run=$(ls "$M_OUT/runs")
  cp "$M_OUT/runs/$run/V.npy" "$M_OUT/runs/$run/A.npy" "$OUT/state/"
fi
cp "$HERE/07n_stage2.json" "$OUT/stage2.json"
"$SCB" sweep "$OUT/stage2.json" --out "$OUT/stage2" --threads "$THREADS" --quiet --resume
echo "done: $OUT/stage2 (runs.csv, curves.csv, milestones.csv)"
