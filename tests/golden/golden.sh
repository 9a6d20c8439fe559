#!/usr/bin/env bash
# Results never move by accident: trains the configs beside this file with `scb train`, runs
# sweep.json with `scb sweep --save-params all`, and compares a SHA-256 of every output (runs.csv,
# curves.csv, every .npy, config.json, summary.json without its timing fields, manifest.json without its absolute paths) with expected.sha256,
# recorded from the engine before any refactor or speed-up. A refactor must leave every line equal;
# a deliberate change of arithmetic re-records the file in its own commit (--update) and says so
# in README.
#   tests/golden/golden.sh SCB_BINARY WORK_DIR [--update] [--threads N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scb=$1
work=$2
shift 2
update=0
threads=2
while [ $# -gt 0 ]; do
  case $1 in
    --update) update=1 ;;
    --threads) threads=$2; shift ;;
    *) echo "golden.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
rm -rf "$work"
mkdir -p "$work"
for cfg in "$here"/train_*.json; do
  name=$(basename "$cfg" .json)
  "$scb" train "$cfg" --out "$work/$name" --threads "$threads" --device cpu >/dev/null
done
"$scb" sweep "$here/sweep.json" --out "$work/sweep" --save-params all --threads "$threads" --device cpu --quiet >/dev/null

# One line per file: its path under WORK_DIR and the SHA-256 of its deterministic content.
# Table rows are sorted (the order runs finish in depends on scheduling, their bytes do not);
# summary.json loses the fields that measure time or name the machine.
digest() {
  local f=$1
  case $f in
    *.csv) { head -n 1 "$f"; tail -n +2 "$f" | LC_ALL=C sort; } | sha256sum ;;
    *summary.json) grep -v -E '"(wall_seconds|tokens_per_second|threads|device)"' "$f" | sha256sum ;;
    *manifest.json) grep -v -E '"(base_dir|sweep_file)"' "$f" | sha256sum ;;
    *) sha256sum < "$f" ;;
  esac
}
actual="$work/actual.sha256"
(cd "$work" && find . -type f ! -name actual.sha256 ! -name '*.lock' ! -name '.lock' | LC_ALL=C sort | while read -r f; do
  echo "$(digest "$f" | cut -c1-64)  ${f#./}"
done) > "$actual"
if [ "$update" = 1 ]; then
  cp "$actual" "$here/expected.sha256"
  echo "golden: recorded $(wc -l < "$actual") digests in $here/expected.sha256"
  exit 0
fi
if ! diff -u "$here/expected.sha256" "$actual"; then
  echo "golden: outputs differ from tests/golden/expected.sha256 (lines above: - expected, + now)" >&2
  exit 1
fi
echo "golden: $(wc -l < "$actual") files byte-identical to the recorded engine"
