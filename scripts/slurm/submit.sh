#!/bin/bash
# Submits a sweep to Slurm from the login node: the array of sweep_array.sh (sweep_array_gpu.sh
# with GPU=1), one task per shard, and merge.sh behind it (--dependency=afterok), both logging
# into OUT/; prints "ARRAY_JOB MERGE_JOB". Relative paths are taken from the current folder.
#   [SCB=build/scb] [SWEEP=configs/paper/06_batch_size.json] [OUT=sweep] [SHARDS=16] [GPU=1] \
#     scripts/slurm/submit.sh [sbatch options for the array, such as --cpus-per-task=4]
# A task cancelled or failed leaves the merge's afterok unmet for good. Resubmitting its tasks
# (same SCB, SWEEP, OUT, SHARDS; they continue their shards) replaces the merge by one that
# waits for them and for every task of the old array to end; prints the new pair:
#   scripts/slurm/submit.sh --again ARRAY_JOB MERGE_JOB TASKS [sbatch options]   (TASKS: 3 or 1,5)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export SCB=${SCB:-build/scb} SWEEP=${SWEEP:-configs/paper/06_batch_size.json} OUT=${OUT:-sweep} SHARDS=${SHARDS:-16}
export SCB_SLURM_DIR=$here
array_script=$here/sweep_array.sh
[ "${GPU:-0}" = 1 ] && array_script=$here/sweep_array_gpu.sh
mkdir -p "$OUT"

# --export=ALL: the jobs see SCB, SWEEP, OUT, SHARDS and SCB_SLURM_DIR even where a site sets
# SBATCH_EXPORT.
submit_tasks() {  # TASKS [sbatch options] -> job id
  local tasks=$1
  shift
  sbatch --parsable --export=ALL --array="$tasks" --output="$OUT/slurm-%x-%a.out" "$@" "$array_script" | cut -d';' -f1
}
submit_merge() {  # DEPENDENCY -> job id
  sbatch --parsable --export=ALL --dependency="$1" --output="$OUT/slurm-%x.out" "$here/merge.sh" | cut -d';' -f1
}

if [ "${1:-}" = --again ]; then
  [ $# -ge 4 ] || { echo "usage: $0 --again ARRAY_JOB MERGE_JOB TASKS [sbatch options]" >&2; exit 2; }
  array_job=$2 merge_job=$3 tasks=$4
  shift 4
  job=$(submit_tasks "$tasks" "$@")
  # afterany on the old array as a whole, not on a list of its tasks picked by state: a task being
  # requeued passes through states (completing, requeued) that such a list misses, and the merge
  # then ran before it finished. A cancelled or failed task is over for afterany, and merge.sh
  # checks that every run is complete. sbatch refuses a dependency on a job Slurm no longer knows
  # (an array long finished: none of its tasks is left to wait for); then the merge waits on the
  # new tasks alone (were the refusal anything else, a merge that starts early fails in merge.sh,
  # naming the unfinished runs). The new merge is in place before the old one is cancelled.
  if ! merge=$(submit_merge "afterok:$job,afterany:$array_job" 2>/dev/null); then
    echo "submit.sh: sbatch refused afterany:$array_job (no longer known to Slurm?); the merge waits on job $job" >&2
    merge=$(submit_merge "afterok:$job")
  fi
  scancel "$merge_job" 2>/dev/null || true
  echo "$job $merge"
else
  job=$(submit_tasks "0-$((SHARDS - 1))" "$@")
  echo "$job $(submit_merge "afterok:$job")"
fi
