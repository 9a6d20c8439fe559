#!/usr/bin/env bash
# What README tells a Python user to do, on this build: a fresh virtual environment,
# `pip install --no-build-isolation ./python` (reusing BUILD_DIR, so nothing is compiled twice),
# then a new interpreter that imports scb and trains configs/quickstart.json.
#   tests/python_install.sh PYTHON BUILD_DIR WORK_DIR
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=$1 build=$2 work=$3
rm -rf "$work"
"$python" -m venv --system-site-packages "$work/venv"
SCB_PYTHON_BUILD_DIR=$build "$work/venv/bin/pip" install --quiet --no-build-isolation "$repo/python"
cd "$work"  # not the repository: the import must come from the installed package
"$work/venv/bin/python" -c "import scb, sys; print(scb.__file__); r = scb.train('$repo/configs/quickstart.json', progress=False); print(r.summary['final']); sys.exit(r.summary['status'] != 'ok')"
