#!/bin/bash
# One shard of a sweep per array task, on CPUs: `scripts/slurm/submit.sh` submits it with the
# merge behind it (or `sbatch scripts/slurm/sweep_array.sh` alone). --resume makes a task that is
# requeued, preempted or resubmitted continue its shard without redoing finished runs; the log is
# appended to, so it keeps every start of the task. tests/slurm/job_array.sh submits this file.
#   SCB (build/scb), SWEEP (configs/paper/06_batch_size.json), OUT (sweep): the engine, the sweep
#   file and the folder that gets OUT/shard<i>/ (relative paths: from the submission folder);
#   SHARDS: the number of shards (default: the array's size; give it when resubmitting one task);
#   DEVICE: cpu (default) or cuda (sweep_array_gpu.sh sets it).
#SBATCH --job-name=scb-sweep
#SBATCH --array=0-15
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%a.out
set -euo pipefail
SCB=${SCB:-build/scb} SWEEP=${SWEEP:-configs/paper/06_batch_size.json} OUT=${OUT:-sweep}
: "${SLURM_ARRAY_TASK_ID:?not an array task: submit with sbatch --array (or scripts/slurm/submit.sh)}"
SHARDS=${SHARDS:-$SLURM_ARRAY_TASK_COUNT}
echo "scb-sweep: task $SLURM_ARRAY_TASK_ID/$SHARDS of job $SLURM_JOB_ID starts on $(hostname) (restart ${SLURM_RESTART_COUNT:-0}) at $(date -Is)"
exec "$SCB" sweep "$SWEEP" --out "$OUT/shard$SLURM_ARRAY_TASK_ID" --shard "$SLURM_ARRAY_TASK_ID/$SHARDS" \
  --resume --quiet --device "${DEVICE:-cpu}" --threads "${SLURM_CPUS_PER_TASK:-0}"
