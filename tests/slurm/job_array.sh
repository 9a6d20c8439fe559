#!/usr/bin/env bash
# scripts/slurm/ under a real Slurm. Starts a throwaway single-node cluster (munged, slurmctld and
# slurmd of Debian's slurm-wlm, configured by slurm.conf.in beside this file), submits the sweep
# beside it (40 runs) with scripts/slurm/submit.sh as a 4-task array and its merge, requeues
# task 0 while it runs, cancels task 1 while it runs and resubmits it (submit.sh --again), waits
# for the merge and compares the merged sweep with the same sweep run unsharded here. Every
# process of the cluster is stopped by its pid on the way out, whatever happened, and none may
# be left. Exits 77 (CTest: skipped) where it cannot run: not root, or no Slurm and no apt-get.
#   tests/slurm/job_array.sh SCB_BINARY WORK_DIR
set -uo pipefail
# Child subreaper (PR_SET_CHILD_SUBREAPER, kept across exec): what the cluster's daemons detach
# is adopted and reaped by this shell instead of init, so it is found, stopped and gone with it.
if [ -z "${SCB_SLURM_TEST_SUBREAPER:-}" ]; then
  SCB_SLURM_TEST_SUBREAPER=1 exec python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0: sys.exit("slurm.job_array: prctl(PR_SET_CHILD_SUBREAPER) failed")
os.execvp("bash", ["bash"] + sys.argv[1:])' "$0" "$@"
fi
unset SCB_SLURM_TEST_SUBREAPER
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
scb=$(realpath "$1")
work=$2
started=$(date +%s.%N)
deadline=$(($(date +%s) + 240))  # before CTest's TIMEOUT, so that the clean-up below still runs
fail() { echo "slurm.job_array: $*" >&2; exit 1; }
skip() { echo "SKIP: slurm.job_array: $*"; exit 77; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

have_slurm() { for c in munged mungekey slurmctld slurmd sbatch scontrol squeue scancel; do command -v "$c" >/dev/null || return 1; done; }
[ "$(id -u)" = 0 ] || skip "needs root (slurmd starts the jobs of their users)"
if ! have_slurm; then
  command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get to install them"
  "$repo/scripts/setup.sh" || fail "scripts/setup.sh could not install slurm-wlm and munge"
  have_slurm || fail "scripts/setup.sh ran, yet a Slurm or munge command is still missing"
fi
# The environment of a CI job that itself runs under Slurm must not reach this cluster's jobs
# (or scb's shard defaults).
# shellcheck disable=SC2046  # one name a word
unset $(compgen -e | grep -E '^(SLURM|SBATCH|SALLOC|SRUN|SQUEUE|SINFO|SCANCEL|SCONTROL)_') 2>/dev/null

rm -rf "$work" && mkdir -p "$work" && work=$(cd "$work" && pwd)
cluster=$(mktemp -d /tmp/scb-slurm.XXXXXX) || fail "cannot make a temporary folder in /tmp"
chmod 755 "$cluster"
for d in "$cluster" /tmp; do  # munged refuses a socket below a folder others cannot search
  perm=$(stat -c %A "$d")
  case ${perm:9:1} in x | t) ;; *) fail "$d is not searchable by others ($perm); munged needs that" ;; esac
done
export SLURM_CONF=$cluster/slurm.conf

# --- Processes. This shell is a child subreaper (see the top), so every process of the cluster
# stays below it: munged, slurmctld and slurmd by the pids recorded here, slurmscriptd, each
# slurmstepd (which detaches from slurmd) and the jobs' processes.
munged_pid="" slurmctld_pid="" slurmd_pid=""
alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && ! sed -E 's/^[0-9]+ \(.*\) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }
cluster_processes() {  # every process below this shell but those of this function
  local self=$BASHPID  # here, not in the pipeline, each of whose commands is a process of its own
  ps -e -o pid= -o ppid= | awk -v top=$$ -v self="$self" '{ parent[$1] = $2 }
    END { for (p in parent) { q = p; while (q != top && q != self && q in parent) q = parent[q]; if (q == top && p != top) print p } }'
}
stop_pid() {  # PID: SIGTERM, then SIGKILL after 10 s, and reaped when it is a child of this shell
  local _
  alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 100); do alive "$1" || break; sleep 0.1; done
  alive "$1" && kill -KILL "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 0
}
cleanup() {
  local rc=$? left=""
  trap - EXIT
  if alive "$slurmctld_pid"; then
    scancel --quiet --user=root 2>/dev/null
    for _ in $(seq 150); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  stop_pid "$slurmd_pid"
  stop_pid "$slurmctld_pid"
  stop_pid "$munged_pid"
  for _ in $(seq 50); do
    left=$(cluster_processes)
    [ -z "$left" ] && break
    # shellcheck disable=SC2086  # one pid a word
    kill -KILL $left 2>/dev/null
    sleep 0.1
  done
  mkdir -p "$work/cluster" && cp "$cluster"/*.log "$cluster"/*.stderr "$cluster/slurm.conf" "$work/cluster/" 2>/dev/null
  rm -rf "$cluster"
  if [ -n "$left" ]; then
    echo "slurm.job_array: left running: $(ps -o pid=,args= -p "${left//$'\n'/,}")" >&2
    rc=1
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- The cluster: this host as its one node, its CPUs, a little less memory than is free.
read -r ctld_port slurmd_port < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
node=$(hostname -s)
memory_mb=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
sed -e "s|@DIR@|$cluster|g" -e "s|@NODE@|$node|g" -e "s|@CPUS@|$(nproc)|g" -e "s|@MEMORY_MB@|$memory_mb|g" \
  -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" "$here/slurm.conf.in" > "$SLURM_CONF"
mkdir -p "$cluster/state" "$cluster/spool"
mungekey --create --keyfile="$cluster/munge.key" || fail "mungekey could not create a key"
poll() {  # WHAT COMMAND...: every 0.1 s until COMMAND succeeds; fails past the deadline or when a daemon died
  local what=$1 name pid
  shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out waiting for $what"
    for name in munged slurmctld slurmd; do
      pid=${name}_pid
      [ -z "${!pid}" ] || alive "${!pid}" || fail "$name exited while waiting for $what: $(tail -3 "$cluster/$name.stderr")"
    done
    sleep 0.1
  done
}
(cd "$cluster" && exec munged -F --socket="$cluster/munge.socket" --key-file="$cluster/munge.key" \
  --pid-file="$cluster/munged.pid" --seed-file="$cluster/munged.seed" --log-file="$cluster/munged.log") >"$cluster/munged.stderr" 2>&1 &
munged_pid=$!
munge_works() { munge -n -S "$cluster/munge.socket" 2>/dev/null | unmunge -S "$cluster/munge.socket" >/dev/null 2>&1; }
poll "munged" munge_works
(cd "$cluster" && exec slurmctld -D -f "$SLURM_CONF") >"$cluster/slurmctld.stderr" 2>&1 &
slurmctld_pid=$!
(cd "$cluster" && exec slurmd -D -N "$node" -f "$SLURM_CONF") >"$cluster/slurmd.stderr" 2>&1 &
slurmd_pid=$!
node_idle() { [ "$(sinfo -h -n "$node" -o %T 2>/dev/null)" = idle ]; }
poll "node $node to be idle (logs: $work/cluster)" node_idle
cluster_up=$(since "$started")

# --- The sweep: 4 tasks of 10 runs each, one CPU per task.
sweep_out=$work/sweep
submit() { SCB=$scb SWEEP=$here/sweep.json OUT=$sweep_out SHARDS=4 "$repo/scripts/slurm/submit.sh" "$@"; }
read -r array merge < <(submit --cpus-per-task=1)
[[ "${array:-}" =~ ^[0-9]+$ && "${merge:-}" =~ ^[0-9]+$ ]] || fail "submit.sh did not print the array and merge job ids"
rows() { local f=$sweep_out/shard$1/runs.csv; if [ -f "$f" ]; then echo $(($(wc -l < "$f") - 1)); else echo 0; fi; }
job_state() { scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
running_midway() {  # TASK: running, with at least one of its 10 runs written and at least two to go
  local r
  [ "$(job_state "${array}_$1")" = RUNNING ] || return 1
  r=$(rows "$1")
  [ "$r" -lt 10 ] || fail "task $1 finished its shard before it could be interrupted (a sweep too fast for this machine)"
  [ "$r" -ge 1 ] && [ "$r" -le 8 ]
}
poll "task 0 to run with part of its shard done" running_midway 0
requeued_after=$(rows 0)
scontrol requeue "${array}_0" || fail "scontrol requeue ${array}_0 failed"
poll "task 1 to run with part of its shard done" running_midway 1
cancelled_after=$(rows 1)
scancel "${array}_1" || fail "scancel ${array}_1 failed"
cancelled() { [ "$(job_state "${array}_1")" = CANCELLED ]; }
poll "task 1 to be cancelled" cancelled
read -r again merge < <(submit --again "$array" "$merge" 1 --cpus-per-task=1)
[[ "${again:-}" =~ ^[0-9]+$ && "${merge:-}" =~ ^[0-9]+$ ]] || fail "submit.sh --again did not print the new job ids"
merge_ended() { case $(job_state "$merge") in PENDING | RUNNING | CONFIGURING | COMPLETING | "") return 1 ;; esac; }
poll "the merge job $merge" merge_ended
[ "$(job_state "$merge")" = COMPLETED ] || fail "merge job $merge ended $(job_state "$merge"): $(tail -5 "$sweep_out/slurm-scb-merge.out" 2>&1)"
sweep_done=$(since "$started")

# --- The logs: appended on requeue and resubmission; both tasks resumed what they had written.
log_has() {  # TASK COUNT REGEX
  local n
  n=$(grep -c -E "$3" "$sweep_out/slurm-scb-sweep-$1.out")
  [ "$n" = "$2" ] || fail "task $1: $n lines (not $2) match '$3' in its log: $(cat "$sweep_out/slurm-scb-sweep-$1.out")"
}
resumed_with() { sed -n -E 's/^sweep: 10 runs: .*, ([0-9]+) already complete;.*/\1/p' "$sweep_out/slurm-scb-sweep-$1.out"; }
log_has 0 2 "^scb-sweep: task 0/4 of job [0-9]+ starts"
log_has 0 1 "^scb-sweep: task 0/4 .* \(restart 1\)"
log_has 0 1 "CANCELLED AT .* DUE TO JOB REQUEUE"
log_has 1 2 "^scb-sweep: task 1/4 of job [0-9]+ starts"
log_has 1 1 "^scb-sweep: task 1/4 of job $again starts"
log_has 1 1 "CANCELLED AT"
for t in 0 1 2 3; do log_has $t 1 "^sweep: 10 runs: "; done
[ "$(resumed_with 0)" -ge "$requeued_after" ] || fail "task 0 redid runs it had finished before the requeue"
[ "$(resumed_with 1)" -ge "$cancelled_after" ] || fail "task 1 redid runs it had finished before it was cancelled"

# --- The merged sweep against the same sweep on one machine: the same runs and tables, byte for byte.
"$scb" sweep "$here/sweep.json" --out "$work/unsharded" --shard 0/1 --device cpu --quiet >/dev/null || fail "the unsharded sweep failed"
"$scb" merge "$work/unsharded_in_order" "$work/unsharded" >/dev/null || fail "scb merge of the unsharded sweep failed"
merged=$sweep_out/all
for t in runs.csv curves.csv; do
  cmp "$merged/$t" "$work/unsharded_in_order/$t" || fail "merged $t is not the unsharded sweep's in sweep order"
  diff <(LC_ALL=C sort "$merged/$t") <(LC_ALL=C sort "$work/unsharded/$t") >/dev/null || fail "merged $t has other rows than the unsharded sweep's"
done
runs=$(($(wc -l < "$merged/runs.csv") - 1))
[ "$runs" = 40 ] || fail "the merged runs.csv has $runs runs, not 40"
python3 - "$merged/manifest.json" "$work/unsharded/manifest.json" <<'PY' || fail "the merged manifest differs from the unsharded one beyond merged_from and shard"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
for m in (a, b):
    m.pop("merged_from", None), m.pop("shard", None)
sys.exit(a != b)
PY
[ "$(ls "$merged/runs")" = "$(ls "$work/unsharded/runs")" ] || fail "merged runs/ keeps other runs than the unsharded sweep"
for f in "$merged"/runs/*/*; do
  g=$work/unsharded/runs/${f#"$merged"/runs/}
  case $f in
    *summary.json) diff <(grep -v -E '"(wall_seconds|tokens_per_second|threads)"' "$f") <(grep -v -E '"(wall_seconds|tokens_per_second|threads)"' "$g") >/dev/null ;;
    *) cmp -s "$f" "$g" ;;
  esac || fail "merged ${f#"$merged"/} differs from the unsharded sweep's"
done

# --- The GPU variant, outside Slurm (this cluster has no GPU): asks for one and runs
# sweep_array.sh with --device cuda (which either trains on it or exits 2 saying why it cannot).
gpu_script=$repo/scripts/slurm/sweep_array_gpu.sh
grep -qx '#SBATCH --gres=gpu:1' "$gpu_script" || fail "sweep_array_gpu.sh does not ask for a GPU"
SLURM_ARRAY_TASK_ID=0 SLURM_JOB_ID=0 SCB=$scb SWEEP=$here/sweep.json OUT=$work/gpu SHARDS=40 SCB_SLURM_DIR=$repo/scripts/slurm \
  bash "$gpu_script" >"$work/gpu.out" 2>&1
gpu_rc=$?
if [ "$gpu_rc" = 0 ]; then
  grep -q '"device": "cuda' "$work"/gpu/shard0/runs/*/summary.json || fail "sweep_array_gpu.sh trained, but not on the GPU"
else
  { [ "$gpu_rc" = 2 ] && grep -q -- '--device cuda' "$work/gpu.out"; } || fail "sweep_array_gpu.sh: exit $gpu_rc: $(cat "$work/gpu.out")"
fi

echo "slurm.job_array: 40 runs in 4 tasks (task 0 requeued after $requeued_after of its 10 runs, task 1 cancelled after" \
  "$cancelled_after and resubmitted as job $again), merged tables byte-identical to the unsharded sweep's; cluster up" \
  "in ${cluster_up}s, sweep merged at ${sweep_done}s, test ${SECONDS}s"
