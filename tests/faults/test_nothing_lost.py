# Faults during work, through the binary: a full disk, kills at chosen instants, signals, damaged
# or changed files between a run and its resume. Each must end with a non-zero exit naming the
# file and the reason (never exit 0 over missing data), and --resume must then give the files of
# an uninterrupted sweep (the `reference` fixture).
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SMALL, SWEEP, matrix_npy, run, same_sweep, sorted_table, write_json

P3 = [[0.2, 0.5, 0.3], [0.5, 0.2, 0.3], [0.3, 0.3, 0.4]]


def resume(scb, work, out="out", **kw):
    return run(scb, "sweep", work / "sweep.json", "--out", work / out, "--resume", "--quiet", **kw)


def test_tables_on_full_disk_then_resume(scb, work, reference):
    # curves.csv outgrows an 8000-byte file limit (the manifest fits): the sweep stops naming the file.
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--save-params", "all", "--quiet", fsize=8000)
    assert r.rc == 1, r
    assert "cannot write" in r.err and "curves.csv: File too large" in r.err, r
    assert len(sorted_table(work / "out" / "runs.csv")) - 1 < 24
    r = resume(scb, work)
    assert r.rc == 0, r
    same_sweep(work / "out", reference)


def test_saved_params_on_full_disk_then_resume(scb, work):
    # At T = 1000 a saved Q.npy (24 KB) outgrows the limit: no run is recorded without its files.
    write_json(work / "sweep.json", dict(SWEEP, base=dict(SMALL, problem=dict(SMALL["problem"], T=1000),
                                                          train=dict(SMALL["train"], steps=60))))
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--save-params", "all", "--quiet", fsize=16000)
    assert r.rc == 1 and "Q.npy: File too large" in r.err, r
    for line in sorted_table(work / "out" / "runs.csv")[1:]:  # every run recorded as done has its whole folder
        assert (work / "out" / "runs" / line.split(",")[0] / "A.npy").stat().st_size > 0
    assert resume(scb, work).rc == 0
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "ref", "--save-params", "all", "--quiet")
    assert r.rc == 0, r
    same_sweep(work / "out", work / "ref")


def test_train_on_full_disk_leaves_no_output(scb, work):
    r = run(scb, "train", work / "small.json", "--set", "problem.T=1000", "--out", work / "t", fsize=2000)
    assert r.rc == 1 and "File too large" in r.err and "t.partial/" in r.err, r
    assert not (work / "t.partial").exists()
    assert not (work / "t" / "summary.json").exists()
    assert run(scb, "train", work / "small.json", "--out", work / "t").rc == 0


@pytest.mark.parametrize("point", ["mid_write:runs.csv@3", "mid_write:curves.csv@4", "mid_write:A.npy@5",
                                   "before_rename:runs.csv@1", "mid_write:manifest.json.tmp", "before_rename:manifest.json"])
def test_kill_at_chosen_instant_then_resume(scb, work, reference, point):
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--save-params", "all", "--quiet", failpoint=point)
    assert r.rc == -signal.SIGKILL, r
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--save-params", "all", "--quiet", "--resume")
    assert r.rc == 0, r
    same_sweep(work / "out", reference)


def test_kill_during_first_manifest_allows_a_fresh_start(scb, work, reference):
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--quiet", failpoint="before_rename:manifest.json")
    assert r.rc == -signal.SIGKILL, r
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--save-params", "all", "--quiet")  # no --resume
    assert r.rc == 0, r
    same_sweep(work / "out", reference)


def test_kill_while_train_writes_outputs(scb, work):
    r = run(scb, "train", work / "small.json", "--out", work / "t", failpoint="mid_write:A.npy")
    assert r.rc == -signal.SIGKILL, r
    assert not (work / "t" / "summary.json").exists()  # nothing looks complete
    assert run(scb, "train", work / "small.json", "--out", work / "t").rc == 0
    assert not (work / "t.partial").exists()
    assert json.loads((work / "t" / "summary.json").read_text())["status"] == "ok"


@pytest.mark.parametrize("damage", ["delete_curves", "truncate_curves", "drop_curve_row", "delete_saved_file",
                                    "cut_saved_file"])
def test_damaged_outputs_are_trained_again_on_resume(scb, work, reference, damage):
    shutil.copytree(reference, work / "out")
    curves = work / "out" / "curves.csv"
    first_id = sorted_table(work / "out" / "runs.csv")[1].split(",")[0]
    lines = curves.read_text().splitlines(keepends=True)
    if damage == "delete_curves":
        curves.unlink()
    elif damage == "truncate_curves":
        curves.write_text("".join(lines[: len(lines) // 2]))
    elif damage == "drop_curve_row":  # the run's second evaluation (not its first, at step 0)
        rows = [k for k, l in enumerate(lines) if l.startswith(first_id + ",")]
        curves.write_text("".join(l for k, l in enumerate(lines) if k != rows[1]))
    elif damage == "delete_saved_file":
        (work / "out" / "runs" / first_id / "A.npy").unlink()
    else:
        a = work / "out" / "runs" / first_id / "V.npy"
        a.write_bytes(a.read_bytes()[:-8])
    r = resume(scb, work)
    assert r.rc == 0 and " 0 trained" not in r.out, r  # the damaged runs were trained again
    same_sweep(work / "out", reference)


def test_merge_refuses_nothing_silently(scb, work, reference):
    for i in range(2):
        assert run(scb, "sweep", work / "sweep.json", "--out", work / f"s{i}", "--shard", f"{i}/2", "--quiet",
                   "--save-params", "all").rc == 0
    (work / "s1" / "curves.csv").unlink()  # a shard without its curves: its runs are not complete
    r = run(scb, "merge", work / "m", work / "s0", work / "s1")
    assert r.rc == 0 and "12 runs are not finished" in r.err and "--resume" in r.err, r
    assert len(sorted_table(work / "m" / "runs.csv")) - 1 == 12


def test_merge_on_full_disk_leaves_nothing_behind(scb, work):
    for i in range(2):
        assert run(scb, "sweep", work / "sweep.json", "--out", work / f"s{i}", "--shard", f"{i}/2", "--quiet").rc == 0
    r = run(scb, "merge", work / "m", work / "s0", work / "s1", fsize=4000)
    assert r.rc == 1 and "File too large" in r.err and "m.partial" in r.err, r
    assert not (work / "m.partial").exists()
    assert not (work / "m").exists() or not any((work / "m").iterdir())
    r = run(scb, "merge", work / "m", work / "s0", work / "s1")
    assert r.rc == 0, r


def test_input_file_changed_between_kill_and_resume(scb, work):
    (work / "P.npy").write_bytes(matrix_npy(P3))
    sweep = dict(SWEEP, base=dict(SMALL, problem=dict(SMALL["problem"], P="P.npy")))
    write_json(work / "sweep.json", sweep)
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--quiet", failpoint="mid_write:runs.csv@3")
    assert r.rc == -signal.SIGKILL, r
    assert "fnv1a64:" in (work / "out" / "manifest.json").read_text()
    (work / "P.npy").write_bytes(matrix_npy([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]]))
    r = resume(scb, work)
    assert r.rc == 2 and "P.npy" in r.err and "changed" in r.err, r
    # Shards trained on different contents of the same path are not merged.
    (work / "P.npy").write_bytes(matrix_npy(P3))
    assert run(scb, "sweep", work / "sweep.json", "--out", work / "s0", "--shard", "0/2", "--quiet").rc == 0
    (work / "P.npy").write_bytes(matrix_npy([[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]]))
    assert run(scb, "sweep", work / "sweep.json", "--out", work / "s1", "--shard", "1/2", "--quiet").rc == 0
    r = run(scb, "merge", work / "m", work / "s0", work / "s1")
    assert r.rc == 2 and "different input files" in r.err, r


def test_train_summary_pins_input_files(scb, work):
    (work / "P.npy").write_bytes(matrix_npy(P3))
    assert run(scb, "train", work / "small.json", "--set", "problem.P=P.npy", "--out", work / "t", cwd=work).rc == 0
    inputs = json.loads((work / "t" / "summary.json").read_text())["inputs"]
    assert inputs["problem.P"]["hash"].startswith("fnv1a64:")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_a_sweep_and_says_how_to_resume(scb, work, sig):
    # Runs far longer than the 3 s before the signal on any machine (200,000 steps once finished in
    # under 3 s on a fast one, and the sweep exited 0 before the signal came).
    long = dict(SWEEP, base=dict(SMALL, train=dict(SMALL["train"], steps=100000000), eval={"every": 50000000}))
    write_json(work / "sweep.json", long)
    p = subprocess.Popen([scb, "sweep", work / "sweep.json", "--out", work / "out", "--quiet", "--pack-runs", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err
    assert "stopped by SIG" in err and "--resume" in err and "complete runs are kept" in err, err


def test_signal_stops_train_without_a_partial_output(scb, work):
    p = subprocess.Popen([scb, "train", work / "small.json", "--set", "train.steps=100000000", "--out", work / "t"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM and "nothing was written" in err, err
    assert not (work / "t.partial").exists() and not any((work / "t").iterdir())
