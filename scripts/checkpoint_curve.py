#!/usr/bin/python3
"""The curve so far of runs in flight, read from their checkpoints (train.checkpoint_every).

    /usr/bin/python3 scripts/checkpoint_curve.py CHECKPOINT... [--csv OUT.csv]

CHECKPOINT is a sweep's DIR/checkpoints/<run_id>.ckpt or `scb train`'s DIR.checkpoint. A long
run writes its rows only when it ends; this prints, for each checkpoint, the run id, its step and
samples, the last evaluation (the curves.csv columns) and the first evaluation at which the
support was recovered (milestones.csv's support_recovered, or "not yet"); --csv writes every evaluation of every
checkpoint with a run_id column, in the curves.csv format. The file layout is the one
src/core/checkpoint.cpp writes (little-endian, "SCBCKPT1").
"""
import argparse
import struct
import sys

COLUMNS = ["step", "samples", "loss", "excess_loss", "dist_V", "dist_A", "dist_V_norm", "dist_A_norm", "nnz_A"]
METRIC = struct.Struct("<qq6dqB")


def read_checkpoint(path):
    data = open(path, "rb").read()
    if data[:8] != b"SCBCKPT1":
        raise SystemExit(f"{path}: not a checkpoint of scb")
    at = 8
    (n,) = struct.unpack_from("<Q", data, at)
    run_id = data[at + 8: at + 8 + n].decode()
    at += 8 + n
    N, T, step, samples, diverged_step, status = struct.unpack_from("<IIqqqB", data, at)
    at += struct.calcsize("<IIqqqB")
    for _ in range(2):  # V, then A: skipped
        (count,) = struct.unpack_from("<Q", data, at)
        at += 8 + 4 * count
    (points,) = struct.unpack_from("<Q", data, at)
    at += 8
    curve = []
    for _ in range(points):
        curve.append(METRIC.unpack_from(data, at))  # the curves.csv columns, then support_recovered
        at += METRIC.size
    return {"run_id": run_id, "N": N, "T": T, "step": step, "samples": samples, "curve": curve}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--csv")
    a = ap.parse_args()
    rows = []
    for path in a.checkpoints:
        c = read_checkpoint(path)
        last = dict(zip(COLUMNS, c["curve"][-1])) if c["curve"] else {}
        print(f"{c['run_id']}: N={c['N']} T={c['T']} step={c['step']} samples={c['samples']} "
              f"dist_A_norm={last.get('dist_A_norm', float('nan')):.4g} loss={last.get('loss', float('nan')):.8g} "
              f"support_recovered={next((f'step {p[0]}' for p in c['curve'] if p[9]), 'not yet')}")
        rows += [(c["run_id"],) + p[:9] for p in c["curve"]]
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("run_id," + ",".join(COLUMNS) + "\n")
            for r in rows:
                f.write(",".join([r[0]] + [str(r[1]), str(r[2])] + [f"{x:.10g}" for x in r[3:9]] + [str(r[9])]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
