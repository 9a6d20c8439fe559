# Fixtures of the fault suite: the scb binary under test, a small reference sweep trained once
# without faults, and helpers that run the binary the way a user would (with a file-size limit,
# a failpoint, a signal or another user), so each test reads as the fault and what must follow.
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SMALL = {"problem": {"N": 3, "T": 20, "Q": 2, "seed": 1},
         "train": {"steps": 200, "stage1_steps": 50, "batch_size": 16, "lr_A": 0.05},
         "eval": {"every": 50}}

# 24 runs with diverged ones (lr_A = 50) and eval.every as an axis: every completeness rule is used.
SWEEP = {"base": SMALL,
         "grid": {"train.lambda": [0.001, 0.01], "train.lr_A": [0.05, 50]},
         "zip": {"train.algorithm": ["sgd", "proximal"], "eval.every": [30, 50]},
         "replicates": 3}


@pytest.fixture(scope="session")
def scb():
    path = os.environ.get("SCB_BINARY")
    if not path or not Path(path).exists():
        pytest.skip("SCB_BINARY is not set to the scb binary (CTest sets it)")
    return path


class Result:
    def __init__(self, proc):
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def __repr__(self):
        return f"rc={self.rc} stdout={self.out[-400:]!r} stderr={self.err[-400:]!r}"


def run(scb, *args, cwd=None, fsize=None, failpoint=None, env=None, user=None, timeout=300):
    """Runs `scb args...`; fsize limits every file it writes (RLIMIT_FSIZE, a full disk without
    root), failpoint sets SCB_FAILPOINT (a kill at a chosen instant), user runs it as another
    user (setpriv)."""
    e = dict(os.environ)
    e.pop("SLURM_ARRAY_TASK_ID", None)
    e.pop("SLURM_ARRAY_TASK_COUNT", None)
    if failpoint:
        e["SCB_FAILPOINT"] = failpoint
    e.update(env or {})

    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    cmd = [scb, *map(str, args)]
    if user:
        cmd = ["setpriv", f"--reuid={user}", "--regid=65534", "--clear-groups", *cmd]
    proc = subprocess.run(cmd, cwd=cwd, env=e, preexec_fn=limit, capture_output=True, text=True, timeout=timeout)
    return Result(proc)


def write_json(path, doc):
    import json
    Path(path).write_text(json.dumps(doc))
    return path


def sorted_table(path):
    lines = Path(path).read_text().splitlines()
    return lines[:1] + sorted(lines[1:])


def same_sweep(a, b, config=True):
    """Two sweep directories hold the same runs: tables equal up to row order, and the same saved
    runs with byte-identical matrices (and config.json, unless `config` is false)."""
    for table in ("runs.csv", "curves.csv"):
        assert sorted_table(Path(a) / table) == sorted_table(Path(b) / table), table
    ra, rb = Path(a) / "runs", Path(b) / "runs"
    names_a = sorted(p.name for p in ra.iterdir()) if ra.exists() else []
    names_b = sorted(p.name for p in rb.iterdir()) if rb.exists() else []
    assert names_a == names_b
    for name in names_a:
        for f in sorted((ra / name).iterdir()):
            if f.suffix == ".npy" or (config and f.name == "config.json") or f.name == "curves.csv":
                assert f.read_bytes() == (rb / name / f.name).read_bytes(), f


@pytest.fixture(scope="session")
def reference(scb, tmp_path_factory):
    """The reference sweep, trained once without faults, with every run's parameters saved."""
    d = tmp_path_factory.mktemp("reference")
    write_json(d / "sweep.json", SWEEP)
    r = run(scb, "sweep", d / "sweep.json", "--out", d / "out", "--save-params", "all", "--quiet")
    assert r.rc == 0, r
    return d / "out"


@pytest.fixture
def work(tmp_path):
    write_json(tmp_path / "sweep.json", SWEEP)
    write_json(tmp_path / "small.json", SMALL)
    return tmp_path


@pytest.fixture
def public_dir():
    """A folder another user can read and enter (tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="scb-faults-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def npy_bytes(shape_text, values=b"", descr="<f8"):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + values


def matrix_npy(rows):
    import struct
    flat = [x for row in rows for x in row]
    return npy_bytes("(%d, %d)" % (len(rows), len(rows[0])), struct.pack("<%dd" % len(flat), *flat))


SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}
