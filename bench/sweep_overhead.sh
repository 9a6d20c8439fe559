#!/usr/bin/env bash
# Issue 3: per-run cost of a run inside a big sweep against the same run alone.
#   bench/sweep_overhead.sh [RESULT.json]    (default bench/results/sweep_overhead.json)
# Environment: SCB (binary, default build/scb), RUNS (default 1000), STEPS (default 2000),
# ALONE (runs timed alone, default 9), THREADS (sweep threads, default: all cores).
#
# The sweep is configs/reference.json with train.steps = STEPS, repeated RUNS times
# (replicates: train.seed 0..RUNS-1). "Alone" is `scb train` of the same config with one
# thread (the CPU backend's fastest setting for one tiny run), seeds 0..ALONE-1, median.
# Cost is CPU time (user + sys, from wait4) of the whole process: on a shared machine it is what the run
# really costs, where wall time also counts other people's work. The wall-clock figure per
# core (sweep wall x threads / RUNS against the alone wall) is reported next to it.
set -euo pipefail
cd "$(dirname "$0")/.."
SCB=${SCB:-build/scb}
RUNS=${RUNS:-1000}
STEPS=${STEPS:-2000}
ALONE=${ALONE:-9}
THREADS=${THREADS:-0}
RESULT=${1:-bench/results/sweep_overhead.json}
[ -x "$SCB" ] || { echo "sweep_overhead: $SCB not found; build first (cmake --build build)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/scb_sweep_overhead.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cat > "$WORK/sweep.json" <<EOF
{"base": "$(pwd)/configs/reference.json", "grid": {"train.steps": [$STEPS]}, "replicates": $RUNS}
EOF

/usr/bin/python3 - "$SCB" "$WORK" "$RESULT" "$RUNS" "$STEPS" "$THREADS" "$ALONE" <<'PY'
import json, os, re, statistics, subprocess, sys, time
scb, work, result = sys.argv[1], sys.argv[2], sys.argv[3]
runs, steps, threads, n_alone = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])

def timed(args):
    """Runs a command; returns (wall, cpu = user + sys from wait4, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"sweep_overhead: {' '.join(args)} failed ({p.returncode}): {err.strip()}")
    return wall, ru.ru_utime + ru.ru_stime, out

alone = []
for s in range(n_alone):
    wall, cpu, out = timed([scb, "train", "configs/reference.json", "--threads", "1",
                            "--set", f"train.steps={steps}", "--set", f"train.seed={s}"])
    inner = float(re.search(r" wall=([0-9.]+)s", out).group(1))
    alone.append((wall, cpu, inner))
a_wall = statistics.median(x[0] for x in alone)
a_cpu = statistics.median(x[1] for x in alone)
a_inner = statistics.median(x[2] for x in alone)

s_wall, s_cpu, out = timed([scb, "sweep", os.path.join(work, "sweep.json"), "--out", os.path.join(work, "out"),
                            "--threads", str(threads), "--quiet"])
print(out.strip())
rows = sum(1 for _ in open(os.path.join(work, "out", "runs.csv"))) - 1
m = re.search(r"on (\d+) workers", out)
workers = int(m.group(1)) if m else None
cores = os.cpu_count()
used = threads if threads > 0 else cores
per_run_cpu = s_cpu / runs
per_run_wall_core = s_wall * used / runs
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
res = {
    "what": "per-run cost of a run in a sweep of RUNS reference runs vs the same run alone (issue 3: ratio <= 1.2)",
    "config": "configs/reference.json with train.steps = STEPS; sweep replicates = RUNS (train.seed 0..RUNS-1)",
    "runs": runs, "steps": steps, "rows_written": rows, "cores": cores, "sweep_threads": used, "sweep_workers": workers,
    "alone": {"n": len(alone), "threads": 1, "process_cpu_seconds_median": a_cpu, "process_wall_seconds_median": a_wall,
              "training_wall_seconds_median": a_inner},
    "sweep": {"wall_seconds": s_wall, "cpu_seconds": s_cpu, "per_run_cpu_seconds": per_run_cpu,
              "per_run_wall_core_seconds": per_run_wall_core},
    "ratio_cpu": per_run_cpu / a_cpu,
    "ratio_wall_per_core": per_run_wall_core / a_wall,
    "speedup_vs_runs_alone_in_sequence": runs * a_wall / s_wall,
    "load_average_at_end": os.getloadavg(), "commit": commit,
    "note": "cpu = user + sys of the whole process (wait4). On a shared machine the wall figures include other users' load.",
}
os.makedirs(os.path.dirname(os.path.abspath(result)), exist_ok=True)
with open(result, "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
print(f"sweep_overhead: alone {a_cpu:.4f} cpu-s/run (wall {a_wall:.4f}s), sweep {per_run_cpu:.4f} cpu-s/run "
      f"(wall {s_wall:.1f}s on {used} threads = {per_run_wall_core:.4f} core-s/run): ratio_cpu {res['ratio_cpu']:.3f}, "
      f"ratio_wall_per_core {res['ratio_wall_per_core']:.3f} -> {result}")
if rows != runs:
    sys.exit(f"sweep_overhead: runs.csv has {rows} rows, expected {runs}")
PY
