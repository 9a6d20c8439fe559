#!/usr/bin/env bash
# The README's main job: build, run the quick lambda x batch-size sweep on the reference
# problem (plain SGD against l1-proximal SGD, 3 replicates), and draw its pictures.
#   scripts/main_job.sh [OUT_DIR]        (default out/quick)
# An interrupted job continues where it stopped when run again (scb sweep --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/quick}
BUILD=${BUILD:-build}
scripts/setup.sh
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" --target scb   # only the engine: the tests and benchmarks are the test command's
if [ -f "$OUT/manifest.json" ]; then
  "$BUILD/scb" sweep configs/sweep_quick.json --out "$OUT" --resume
else
  "$BUILD/scb" sweep configs/sweep_quick.json --out "$OUT"
fi
/usr/bin/python3 scripts/plot_sweep.py "$OUT"
