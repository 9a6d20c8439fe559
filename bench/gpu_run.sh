#!/usr/bin/env bash
# Builds the CUDA backend for the local GPU, runs the CUDA tests and (with --bench) the GPU
# benchmark; logs and results go to $OUT (default out/gpu). Usage: bench/gpu_run.sh [--bench] [--tests FILTER]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
ARCH=${SCB_CUDA_ARCHS:-90}
BENCH=0
FILTER='Cuda*'
while [ $# -gt 0 ]; do
  case "$1" in
    --bench) BENCH=1 ;;
    --no-tests) FILTER='' ;;
    --tests) shift; FILTER="$1" ;;
  esac
  shift
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/device.txt" 2>&1
start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DSCB_CUDA_ARCHS="$ARCH" > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" > "$OUT/build.log" 2>&1 || { grep -E "error|FAILED" -A3 "$OUT/build.log" | head -60; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
if [ -n "$FILTER" ]; then
  build-gpu/tests/scb_tests --gtest_filter="$FILTER" > "$OUT/tests.log" 2>&1
  echo "tests rc=$?"
  grep -E "^\[ +(OK|FAILED|SKIPPED) +\]|Failure|Expected|Which is|actual|differ|error" "$OUT/tests.log" | head -80
  cfg=configs/quickstart.json
  build-gpu/scb train "$cfg" --device cuda --set train.steps=2000 > "$OUT/train_cuda.log" 2>&1
  echo "scb train --device cuda rc=$?: $(tail -1 "$OUT/train_cuda.log")"
  build-gpu/scb train "$cfg" --device cpu --set train.steps=2000 > "$OUT/train_cpu.log" 2>&1
  echo "scb train --device cpu  rc=$?: $(tail -1 "$OUT/train_cpu.log")"
fi
if [ "$BENCH" = 1 ]; then
  build-gpu/bench/scb_gpu_bench "$OUT/gpu_step.json" > "$OUT/bench.log" 2>&1
  echo "bench rc=$?"
  tail -5 "$OUT/bench.log"
fi
echo "total: $(( $(date +%s) - start )) s"
