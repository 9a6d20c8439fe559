#!/usr/bin/env bash
# Where the Gaussian approximation of minibatch noise holds, on a ladder of sizes: at each
# (N, T), real minibatch proximal SGD against the population gradient plus Gaussian noise at the
# matched level (scripts/matched_noise.py --at bayes), the same lr rule (lr_A = 2/T), lambda 0.01,
# no first stage, B = 64, 8,000 steps, 4 training seeds. 03b is this comparison at N = 3, T = 100
# over five problems; 07 at N = 100, T = 100,000.
# 1. One 1-step run per size writes its P, mu, Q (problem seed 1); the matched level is read there.
# 2. One sweep (a zip over the sizes and the two algorithms).
# 3. scripts/plot_results.py 03c_gaussian_ladder OUT: the table and the picture.
set -euo pipefail
OUT=${1:-out/paper/03c_gaussian_ladder}
SCB=${SCB:-build/scb}
THREADS=${THREADS:-0}
PY=${PY:-/usr/bin/python3}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
SIZES="3:100 3:1000 10:100 10:1000 30:100"
Ns="" Ts="" algs="" noises="" lrs=""
for size in $SIZES; do
  N=${size%:*} T=${size#*:}
  dir="$OUT/problem_N${N}_T${T}"
  [ -f "$dir/Q.npy" ] || "$SCB" train "$HERE/configs/reference.json" --out "$dir" --threads "$THREADS" \
      --set problem.N=$N --set problem.T=$T --set train.steps=1 >/dev/null
  noise=$("$PY" "$HERE/scripts/matched_noise.py" "$dir" --at bayes | sed -E 's/.*s_A=([^ ]+).*/\1/')
  lr=$("$PY" -c "print(2.0 / $T)")
  for alg in proximal population; do
    Ns="$Ns${Ns:+, }$N" Ts="$Ts${Ts:+, }$T" algs="$algs${algs:+, }\"$alg\"" lrs="$lrs${lrs:+, }$lr"
    if [ $alg = population ]; then noises="$noises${noises:+, }$noise"; else noises="$noises${noises:+, }0.0"; fi
  done
  echo "N=$N T=$T: matched noise $noise, lr_A $lr"
  [ "$N:$T" = 3:1000 ] && noise_3_1000=$noise
done
# The settings every run shares: problem N, T; algorithm; lr_A.
base() {
  cat <<JSON
  "base": {
    "problem": {"N": $1, "T": $2, "Q": 2, "seed": 1},
    "train": {"algorithm": "$3", "steps": 8000, "batch_size": 64, "lr_V": 1.0, "lr_A": $4,
              "lambda": 0.01, "stage1_steps": 0},
    "eval": {"every": 25}
  },
JSON
}
cat > "$OUT/sweep.json" <<JSON
{
$(base 3 100 proximal 0.02)
  "zip": {"problem.N": [$Ns], "problem.T": [$Ts], "train.algorithm": [$algs],
          "train.noise": [$noises], "train.lr_A": [$lrs]},
  "replicates": 4
}
JSON
# 4. Where it breaks (T = 1,000, N = 3): the simulation at 0, 1/4, 1/2 and 1 times that size's
#    matched level, with and without the 1/mu preconditioning.
levels=$("$PY" -c "print(', '.join(f'{f * $noise_3_1000:.4g}' for f in (0, 0.25, 0.5, 1)))")
cat > "$OUT/probe.json" <<JSON
{
$(base 3 1000 population 0.002)
  "grid": {"train.noise": [$levels], "train.precondition": [true, false]},
  "replicates": 2
}
JSON
for name in sweep probe; do
  RESUME=()
  [ -f "$OUT/$name/manifest.json" ] && RESUME=(--resume)
  "$SCB" sweep "$OUT/$name.json" --out "$OUT/$name" --threads "$THREADS" --quiet "${RESUME[@]}"
done
[ -n "${NO_ANALYSIS:-}" ] || "$PY" "$HERE/scripts/plot_results.py" 03c_gaussian_ladder "$OUT"
