#!/usr/bin/env bash
# The first contact of the CUDA backend with a GPU, as ONE device-tool call run from the bundle
# that bench/gpu_bundle.sh made (no network there, none of our -dev packages, 15 minutes of
# device time in all). Shaped by that lease:
#  - every step runs under `timeout`, capped by its own limit and by what is left of the session
#    (SCB_SESSION_SECONDS, default 470 s), so the whole call ends inside 8 minutes;
#  - no `set -e`: a failing or timed-out step is recorded and the later steps still run;
#  - at most 8 files in $OUT (what the device tool brings back): facts.txt, tests.txt,
#    sanitizer.txt, parity.json, gpu_bench.json, peers.json, session.log, summary.txt; run
#    outputs go to a scratch folder;
#  - the carried binaries first; if they do not start (another glibc, say) build.sh rebuilds
#    them there from the bundle's sources and header-only deps;
#  - cuBLAS is the machine's own (too big to carry): /usr/local/cuda/lib64, else the python's
#    pip nvidia-cublas package;
#  - without a visible GPU (this script also runs on a CPU machine) the GPU steps are skipped
#    with a message and the CPU-side steps still run.
# Usage: [OUT=DIR] bash gpu_bundle/gpu_session.sh [BUNDLE]   (default OUT: ./gpu_session_out)
# env: SCB_SESSION_SECONDS (470), SCB_REBUILD_SECONDS (300), PYTHON (python3), SCB_CUBLAS_DIR (a
# folder with libcublas.so.13).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -n "${1:-}" ]; then BUNDLE=$1; elif [ -x "$HERE/bin/scb" ]; then BUNDLE=$HERE; else BUNDLE=$HERE/../gpu_bundle; fi
BUNDLE=$(cd "$BUNDLE" 2> /dev/null && pwd) || { echo "gpu_session.sh: no bundle at $BUNDLE (run bench/gpu_bundle.sh)"; exit 2; }
OUT=${OUT:-$PWD/gpu_session_out}
mkdir -p "$OUT"
SESSION_SECONDS=${SCB_SESSION_SECONDS:-470}
PY=${PYTHON:-python3}
SRC=$BUNDLE/src
BIN=$BUNDLE/bin
REPORT="$SRC/bench/bundle/session_report.py"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/scb_session.XXXXXX")
LOG=$OUT/session.log
SUMMARY=()
: > "$LOG"

note() {  # one summary line, also in the log and on stdout
  local line
  line=$(printf '%-26s %s' "$1" "$2")
  SUMMARY+=("$line")
  echo "$line" | tee -a "$LOG"
}

# run_step NAME CAP FILE CMD...: CMD under timeout (CAP, or what is left of the session), output
# appended to FILE (stdout to $STEP_STDOUT instead when that is set). Returns CMD's status; exit
# status 3 is the peers' "cannot run here" (their JSON says why) and is noted as skipped.
run_step() {
  local name=$1 cap=$2 file=$3
  shift 3
  local left=$((SESSION_SECONDS - SECONDS - 5))
  local t=$((cap < left ? cap : left))
  if [ "$t" -lt 5 ]; then
    note "$name" "SKIPPED: the session's ${SESSION_SECONDS} s are spent"
    return 99
  fi
  printf '\n=== %s (timeout %d s): %s\n' "$name" "$t" "$*" >> "$file"
  local t0=$SECONDS rc
  if [ -n "${STEP_STDOUT:-}" ]; then
    timeout -k 5 "$t" "$@" > "$STEP_STDOUT" 2>> "$file"
  else
    timeout -k 5 "$t" "$@" >> "$file" 2>&1
  fi
  rc=$?
  local status="ok"
  [ $rc -eq 0 ] || status="FAILED (exit $rc)"
  [ $rc -eq 3 ] && [ -n "${STEP_STDOUT:-}" ] && status="skipped (reason below)"
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="TIMEOUT after $t s"
  note "$name" "$status, $((SECONDS - t0)) s"
  return $rc
}

have() { command -v "$1" > /dev/null 2>&1; }

# ---- device facts, cuBLAS, GPU present? --------------------------------------------------------
find_cublas() {
  local d
  for d in "${SCB_CUBLAS_DIR:-}" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -n "$d" ] && [ -e "$d/libcublas.so.13" ] && { echo "$d"; return; }
  done
  d=$(ldconfig -p 2> /dev/null | awk '/libcublas\.so\.13 / {print $NF; exit}')
  [ -n "$d" ] && { dirname "$d"; return; }
  local sites
  sites=$(timeout 20 "$PY" -c 'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2> /dev/null)
  for d in $sites; do
    [ -d "$d/nvidia" ] || continue
    d=$(find "$d/nvidia" -maxdepth 3 -name 'libcublas.so.13' 2> /dev/null | head -1)
    [ -n "$d" ] && { dirname "$d"; return; }
  done
}
CUBLAS_DIR=$(find_cublas)
if [ -n "$CUBLAS_DIR" ]; then
  export LD_LIBRARY_PATH="$CUBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  note "cuBLAS" "$CUBLAS_DIR/libcublas.so.13"
else
  note "cuBLAS" "libcublas.so.13 NOT FOUND: the binaries will not start (set SCB_CUBLAS_DIR)"
fi

HAVE_GPU=0
if have nvidia-smi && timeout 20 nvidia-smi -L 2> /dev/null | grep -q '^GPU'; then HAVE_GPU=1; fi
NO_GPU="SKIPPED: no GPU visible (nvidia-smi absent or lists none)"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2> /dev/null | head -1)

facts() {
  local c
  echo "date: $(date -u +%FT%TZ)  host: $(hostname)  cores: $(nproc)"
  echo "bundle: $BUNDLE"
  for c in "uname -a" "head -4 /etc/os-release" "ldd --version" "free -g" "nvidia-smi" \
    "nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap,clocks.max.sm,clocks.max.mem --format=csv" \
    "cat /proc/driver/nvidia/version" "$NVCC --version" "${SANITIZER:-compute-sanitizer} --version" \
    "cmake --version" "ninja --version" "c++ --version" "ldd $BIN/scb" "cat $BUNDLE/MANIFEST.txt"; do
    echo "--- $c"
    timeout 20 $c 2>&1 | head -60
  done
  echo "--- python: $PY"
  timeout 60 "$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -2
  timeout 60 "$PY" -c 'import jax; print("jax", jax.__version__, jax.devices())' 2>&1 | tail -2
}
export BIN BUNDLE NVCC SANITIZER PY
export -f facts
run_step "facts" 90 "$OUT/facts.txt" bash -c facts
[ $HAVE_GPU = 1 ] || note "GPU" "$NO_GPU; GPU steps below are skipped"

# ---- the binaries start, else rebuild them here --------------------------------------------
probe() { "$1/scb" --help > /dev/null && "$1/scb_tests" --gtest_list_tests > /dev/null && "$1/scb_gpu_bench" --help > /dev/null; }
export -f probe
if ! run_step "carried binaries start" 30 "$LOG" bash -c 'probe "$0"' "$BIN"; then
  ldd "$BIN/scb" >> "$LOG" 2>&1
  if run_step "fallback rebuild" "${SCB_REBUILD_SECONDS:-300}" "$LOG" env JOBS="$(nproc)" "$BUNDLE/build.sh" "$BUNDLE" "$WORK/rebuild" &&
    run_step "rebuilt binaries start" 30 "$LOG" bash -c 'probe "$0"' "$WORK/rebuild/bin"; then
    BIN=$WORK/rebuild/bin
  fi
fi
# The tests resolve configs against the source folder they were built from: make that path exist.
built_src=$(sed -n 's/^source_dir: //p' "$BUNDLE/MANIFEST.txt" 2> /dev/null)
if [ "$BIN" = "$BUNDLE/bin" ] && [ -n "$built_src" ] && [ ! -e "$built_src" ]; then
  mkdir -p "$(dirname "$built_src")" && ln -s "$SRC" "$built_src" && echo "linked $built_src -> $SRC" >> "$LOG"
fi

# ---- the CUDA tests ---------------------------------------------------------------------------
run_step "CudaDevice tests" 100 "$OUT/tests.txt" "$BIN/scb_tests" --gtest_filter='CudaDevice*'
note "  tests" "$(grep -E '^\[ +(PASSED|FAILED|SKIPPED) +\] [0-9]+ tests?' "$OUT/tests.txt" 2> /dev/null | tr -s ' ' | tr '\n' ' ')"
grep -E '^\[ +FAILED +\] [A-Za-z]' "$OUT/tests.txt" 2> /dev/null | sort -u | while IFS= read -r line; do note "  tests" "$line"; done

# ---- compute-sanitizer on small `scb train --device cuda` runs ------------------------------
QS="$SRC/configs/quickstart.json"
SMALL=(--set train.steps=30 --set train.stage1_steps=10 --set eval.every=10)
CUBLAS=(--set problem.N=150 --set problem.T=2000 --set train.steps=4 --set train.stage1_steps=2 --set eval.every=2)
POP=(--set train.algorithm=population --set train.noise=0.1 --set train.steps=20 --set train.stage1_steps=10 --set eval.every=10)
SOFT=(--set model.attention=softmax --set train.algorithm=sgd --set train.steps=20 --set eval.every=10)
sanitize() {  # TOOL NAME SET...
  local tool=$1 name=$2
  shift 2
  run_step "$tool $name" 45 "$OUT/sanitizer.txt" "$SANITIZER" --tool "$tool" --error-exitcode 3 \
    "$BIN/scb" train "$QS" --device cuda --out "$WORK/san_${tool}_$name" "$@"
}
if [ $HAVE_GPU = 0 ]; then
  note "compute-sanitizer" "$NO_GPU"
elif [ -z "$SANITIZER" ]; then
  note "compute-sanitizer" "SKIPPED: compute-sanitizer not found"
else
  sanitize memcheck proximal "${SMALL[@]}"
  sanitize memcheck cublas "${CUBLAS[@]}"
  sanitize memcheck population "${POP[@]}"
  sanitize memcheck softmax "${SOFT[@]}"
  sanitize racecheck proximal "${SMALL[@]}"
  sanitize racecheck cublas "${CUBLAS[@]}"
  note "  sanitizer" "$(grep -c 'ERROR SUMMARY: 0 errors' "$OUT/sanitizer.txt") runs with 0 errors; $(grep 'ERROR SUMMARY' "$OUT/sanitizer.txt" | grep -vc ': 0 errors') with errors"
fi

# ---- parity: scb train on the CPU against CUDA ---------------------------------------------
REF="$SRC/configs/reference.json"
LARGE=(--set problem.N=200 --set problem.T=10000 --set train.steps=300 --set train.stage1_steps=100 --set eval.every=100)
run_step "train cpu reference" 60 "$LOG" "$BIN/scb" train "$REF" --device cpu --out "$WORK/par_cpu_ref"
run_step "train cpu N=200 T=1e4" 60 "$LOG" "$BIN/scb" train "$REF" --device cpu --out "$WORK/par_cpu_large" "${LARGE[@]}"
if [ $HAVE_GPU = 1 ]; then
  run_step "train cuda reference" 60 "$LOG" "$BIN/scb" train "$REF" --device cuda --out "$WORK/par_cuda_ref"
  run_step "train cuda N=200 T=1e4" 60 "$LOG" "$BIN/scb" train "$REF" --device cuda --out "$WORK/par_cuda_large" "${LARGE[@]}"
else
  note "train cuda" "$NO_GPU"
fi
STEP_STDOUT=$WORK/parity.txt run_step "parity" 20 "$LOG" "$PY" "$REPORT" parity "$OUT/parity.json" \
  reference "$WORK/par_cpu_ref" "$WORK/par_cuda_ref" N200_T1e4 "$WORK/par_cpu_large" "$WORK/par_cuda_large"
while IFS= read -r line; do note "  parity" "$line"; done < "$WORK/parity.txt"

# ---- the GPU bench beside the CPU on all cores ----------------------------------------------
if [ $HAVE_GPU = 1 ]; then
  left=$((SESSION_SECONDS - SECONDS - 150))  # leave the peers their share
  budget=$((left < 100 ? left : 100))
  if [ $budget -gt 20 ]; then
    run_step "gpu bench" $((budget + 30)) "$LOG" "$BIN/scb_gpu_bench" --json "$OUT/gpu_bench.json" --budget $budget
    STEP_STDOUT=$WORK/bench.txt run_step "gpu bench digest" 20 "$LOG" "$PY" "$REPORT" bench "$OUT/gpu_bench.json"
    while IFS= read -r line; do note "  bench" "$line"; done < "$WORK/bench.txt"
  else
    note "gpu bench" "SKIPPED: less than 20 s of budget left"
  fi
else
  note "gpu bench" "$NO_GPU"
fi

# ---- the peers on the same GPU: PyTorch (single run, runs batched) and JAX (vmap over runs) ----
PEERS=()
peer() {  # NAME SCRIPT ARGS...
  local name=$1 script=$2
  shift 2
  STEP_STDOUT=$WORK/peer_$name.json run_step "peer $name" 45 "$LOG" "$PY" "$SRC/bench/peers/$script" "$@"
  PEERS+=("$name=$WORK/peer_$name.json")
}
TIMING=(--seconds 2 --reps 3)
peer torch_single_N20_T1e4 torch_scb.py --device cuda --N 20 --T 10000 --B 64 --pack 1 "${TIMING[@]}"
peer torch_runs100_N20_T1e3 torch_scb.py --device cuda --runs 100 --N 20 --T 1000 "${TIMING[@]}"
peer torch_runs100_N100_T1e4 torch_scb.py --device cuda --runs 100 --N 100 --T 10000 "${TIMING[@]}"
peer jax_runs1_N20_T1e4 jax_scb.py --device cuda --runs 1 --N 20 --T 10000 "${TIMING[@]}"
peer jax_runs100_N20_T1e3 jax_scb.py --device cuda --runs 100 --N 20 --T 1000 "${TIMING[@]}"
peer jax_runs100_N100_T1e4 jax_scb.py --device cuda --runs 100 --N 100 --T 10000 "${TIMING[@]}"
STEP_STDOUT=$WORK/peers.txt run_step "peers digest" 20 "$LOG" "$PY" "$REPORT" peers "$OUT/peers.json" "${PEERS[@]}"
while IFS= read -r line; do note "  peer" "$line"; done < "$WORK/peers.txt"

# ---- summary ------------------------------------------------------------------------------
{
  echo "GPU session: $(date -u +%FT%TZ), ${SECONDS} s of ${SESSION_SECONDS}, GPU visible: $HAVE_GPU, binaries: $BIN"
  printf '%s\n' "${SUMMARY[@]}"
} > "$OUT/summary.txt"
echo
echo "===== summary ($OUT/summary.txt)"
cat "$OUT/summary.txt"
rm -rf "$WORK"
