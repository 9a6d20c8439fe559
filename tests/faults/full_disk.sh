#!/usr/bin/env bash
# A full disk, without root: RLIMIT_FSIZE (ulimit -f) makes every write past the limit fail with
# EFBIG, as ENOSPC would. `scb train --out` must then exit non-zero naming the file and the
# system's reason, and leave no directory that looks complete; with room it writes every file.
#   tests/faults/full_disk.sh SCB_BINARY WORK_DIR
set -uo pipefail
scb=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
cat > "$work/cfg.json" <<'JSON'
{"problem": {"N": 10, "T": 2000, "Q": 2}, "train": {"steps": 20, "batch_size": 8}, "eval": {"every": 10}}
JSON
fail() { echo "full_disk: $*" >&2; exit 1; }
# 16 KiB: config.json, curves.csv, summary.json and the small matrices fit, Q.npy (160 KB) does not.
(ulimit -f 16; exec "$scb" train "$work/cfg.json" --out "$work/out" --threads 1) >"$work/stdout" 2>"$work/stderr"
rc=$?
[ "$rc" -ne 0 ] || fail "exit 0 on a full disk"
grep -q 'cannot write .*\.npy' "$work/stderr" || fail "the error does not name the .npy file: $(cat "$work/stderr")"
grep -q 'File too large' "$work/stderr" || fail "the error does not give the system's reason: $(cat "$work/stderr")"
[ ! -s "$work/stdout" ] || fail "printed a result line: $(cat "$work/stdout")"
if [ -d "$work/out" ] && [ -n "$(ls -A "$work/out")" ]; then fail "left files in --out: $(ls "$work/out")"; fi
# With room, the same command writes every file, none empty.
"$scb" train "$work/cfg.json" --out "$work/out2" --threads 1 >/dev/null || fail "train with room failed"
for f in config.json curves.csv summary.json P.npy mu.npy Q.npy V.npy A.npy; do
  [ -s "$work/out2/$f" ] || fail "missing or empty $f"
done
[ ! -e "$work/out2.partial" ] && [ ! -e "$work/out.partial" ] || fail "left a .partial folder behind"
echo "full_disk: exit $rc naming $(grep -o '[^ ]*\.npy[^ :]*' "$work/stderr" | head -1), nothing left in --out"
