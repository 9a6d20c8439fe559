#!/usr/bin/env bash
# Experiment 07h: second-stage variants branched from one first stage at N = 100, T = 100,000.
#   1. the first stage, configs/paper/07h_stage1.json (200,000 plain-SGD steps: 07d's first stage
#      exactly), checkpointed and resumable;
#   2. its state: the finished run's V.npy and A.npy, or, with BRANCH_FROM=CHECKPOINT, the state
#      of a checkpoint of it (a run stopped by SIGTERM checkpoints the step it reached), exported
#      by scripts/checkpoint_curve.py --params;
#   3. configs/paper/07h_stage2.json (or the sweep file STAGE2 names, e.g. 07o_stage2.json):
#      proximal second stages from that state (model.init), one per point of its zip or grid, as
#      a resumable sweep.
# Usage: configs/paper/07h_branches.sh OUT   (SCB=binary, THREADS=--threads, BRANCH_FROM=checkpoint,
#        STAGE2=sweep file)
set -euo pipefail
OUT=$(realpath -m "${1:-out/paper/07h}")
SCB=${SCB:-build/scb}
THREADS=${THREADS:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT/state"
if [ -n "${BRANCH_FROM:-}" ]; then
  /usr/bin/python3 "$HERE/../../scripts/checkpoint_curve.py" "$BRANCH_FROM" --params "$OUT/state"
else
  "$SCB" train "$HERE/07h_stage1.json" --out "$OUT/stage1" --threads "$THREADS" --resume
  cp "$OUT/stage1/V.npy" "$OUT/stage1/A.npy" "$OUT/state/"
fi
# The stage-2 sweep, its model.init resolved against OUT (relative paths resolve against the
# directory of the sweep file, here OUT).
cp "${STAGE2:-$HERE/07h_stage2.json}" "$OUT/stage2.json"
"$SCB" sweep "$OUT/stage2.json" --out "$OUT/stage2" --threads "$THREADS" --quiet --resume
echo "done: $OUT/stage2 (runs.csv, curves.csv, milestones.csv); the first stage: $OUT/stage1 or ${BRANCH_FROM:-}"
