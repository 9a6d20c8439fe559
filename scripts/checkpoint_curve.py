#!/usr/bin/python3
"""The curve so far of runs in flight, read from their checkpoints (train.checkpoint_every).

    /usr/bin/python3 scripts/checkpoint_curve.py CHECKPOINT... [--csv OUT.csv] [--params DIR]

CHECKPOINT is a sweep's DIR/checkpoints/<run_id>.ckpt or `scb train`'s DIR.checkpoint. A long
run writes its rows only when it ends; this prints, for each checkpoint, the run id, its step and
samples, the last evaluation (the curves.csv columns) and the first evaluation at which the
support was recovered (milestones.csv's support_recovered, or "not yet"); --csv writes every evaluation of every
checkpoint with a run_id column, in the curves.csv format. --params DIR (one checkpoint) writes
its V and A as DIR/V.npy and DIR/A.npy, in the layout of a finished run's files (V N x N, A T x N,
float32), so that `model.init` = {"V": "DIR/V.npy", "A": "DIR/A.npy"} starts new runs from that
state: a second stage of several variants branched from one long first stage. (For softmax
attention the A of a checkpoint is the logits: pass it to nothing but another softmax run's
analysis.) The file layout is the one src/core/checkpoint.cpp writes (little-endian, "SCBCKPT1").
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
    arrays = []
    for _ in range(2):  # V (row-major), then A (by columns: a^(k) at k T)
        (count,) = struct.unpack_from("<Q", data, at)
        arrays.append((at + 8, count))
        at += 8 + 4 * count
    (points,) = struct.unpack_from("<Q", data, at)
    at += 8
    curve = []
    for _ in range(points):
        curve.append(METRIC.unpack_from(data, at))  # the curves.csv columns, then support_recovered
        at += METRIC.size
    return {"run_id": run_id, "N": N, "T": T, "step": step, "samples": samples, "curve": curve,
            "data": data, "arrays": arrays}


def write_params(c, out):
    """V.npy (N x N) and A.npy (T x N: row t, column k is a^(k)_t) of checkpoint c, as a finished run writes them."""
    import os
    import numpy as np
    N, T = c["N"], c["T"]
    (v_at, v_count), (a_at, a_count) = c["arrays"]
    if v_count != N * N or a_count != N * T:
        raise SystemExit(f"{c['run_id']}: V or A of the checkpoint is not N x N, N x T")
    V = np.frombuffer(c["data"], dtype="<f4", count=v_count, offset=v_at).reshape(N, N)
    A = np.frombuffer(c["data"], dtype="<f4", count=a_count, offset=a_at).reshape(N, T).T
    os.makedirs(out, exist_ok=True)
    for name, x in (("V.npy", V), ("A.npy", A)):
        path = os.path.join(out, name)
        np.save(path + ".tmp.npy", np.ascontiguousarray(x))
        os.replace(path + ".tmp.npy", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--params", metavar="DIR", help="write V.npy and A.npy of the (single) checkpoint into DIR")
    a = ap.parse_args()
    if a.params and len(a.checkpoints) != 1:
        ap.error("--params takes one checkpoint")
    rows = []
    for path in a.checkpoints:
        c = read_checkpoint(path)
        last = dict(zip(COLUMNS, c["curve"][-1])) if c["curve"] else {}
        print(f"{c['run_id']}: N={c['N']} T={c['T']} step={c['step']} samples={c['samples']} "
              f"dist_A_norm={last.get('dist_A_norm', float('nan')):.4g} loss={last.get('loss', float('nan')):.8g} "
              f"support_recovered={next((f'step {p[0]}' for p in c['curve'] if p[9]), 'not yet')}")
        rows += [(c["run_id"],) + p[:9] for p in c["curve"]]
        if a.params:
            write_params(c, a.params)
            print(f"wrote {a.params}/V.npy and {a.params}/A.npy (the state at step {c['step']})")
    if a.csv:
        with open(a.csv, "w") as f:
            f.write("run_id," + ",".join(COLUMNS) + "\n")
            for r in rows:
                f.write(",".join([r[0]] + [str(r[1]), str(r[2])] + [f"{x:.10g}" for x in r[3:9]] + [str(r[9])]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
