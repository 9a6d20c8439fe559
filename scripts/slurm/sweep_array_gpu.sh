#!/bin/bash
# sweep_array.sh on one GPU per array task (--gres=gpu:1, --device cuda): the same shard, resume
# and log rules; `GPU=1 scripts/slurm/submit.sh` submits it. A GPU runs a whole shard's packs, so
# a few CPUs per task suffice.
#SBATCH --job-name=scb-sweep
#SBATCH --array=0-15
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=2
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
  --resume --quiet --device cuda
