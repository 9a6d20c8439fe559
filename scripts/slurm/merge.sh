#!/bin/bash
# The merge behind the array (submit.sh: --dependency=afterok on every task): OUT/shard*/ into
# OUT/all/. OUT/all/ holds nothing but what the shards give, so a merge that is run again
# (requeued, or resubmitted after a fixed task) replaces it. Fails when a run is unfinished.
#SBATCH --job-name=scb-merge
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x.out
set -euo pipefail
SCB=${SCB:-build/scb} OUT=${OUT:-sweep}
echo "scb-merge: job $SLURM_JOB_ID starts on $(hostname) at $(date -Is)"
rm -rf -- "$OUT/all"
summary=$("$SCB" merge "$OUT/all" "$OUT"/shard*)
echo "$summary"
# "merge: D directories, R runs, C complete -> OUT"; scb merge has said on stderr which runs are not.
grep -qE '^merge: [0-9]+ directories, ([0-9]+) runs, \1 complete ' <<<"$summary" || exit 1
