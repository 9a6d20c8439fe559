#!/usr/bin/env bash
# Installs the Debian packages scb-engine needs (only those missing). Needs root or sudo.
set -euo pipefail
PKGS="cmake ninja-build g++ libgtest-dev libbenchmark-dev nlohmann-json3-dev libfmt-dev libcli11-dev python3-matplotlib python3-pandas python3-numpy pybind11-dev python3-dev python3-pytest python3-tqdm python3-venv python3-pip python3-setuptools jupyter-nbconvert python3-ipykernel python3-nbformat"
# A real single-node Slurm for tests/slurm (slurm-wlm pulls slurmctld, slurmd, slurm-client and munge;
# they are named too so that the check below sees each daemon's package).
PKGS="$PKGS slurm-wlm slurmctld slurmd slurm-client munge"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
