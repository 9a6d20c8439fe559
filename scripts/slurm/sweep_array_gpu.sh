#!/bin/bash
# sweep_array.sh on one GPU per array task: asks Slurm for the GPU (--gres=gpu:1) and runs that
# script with DEVICE=cuda (scb sweep --device cuda), so shards, resume and logs are the same;
# `GPU=1 scripts/slurm/submit.sh` submits it. A GPU trains a whole shard's packs, so a few CPUs
# per task suffice. SCB_SLURM_DIR: where sweep_array.sh is (submit.sh sets it; by default
# scripts/slurm from the submission folder, since Slurm runs a copy of this file).
#SBATCH --job-name=scb-sweep
#SBATCH --array=0-15
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=2
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=slurm-%x-%a.out
DEVICE=cuda exec bash "${SCB_SLURM_DIR:-scripts/slurm}/sweep_array.sh"
