"""scb.sweep and load_sweep: the tables equal the CLI's for the same sweep; a bad sweep raises
ConfigError before anything is written; Ctrl-C (SIGINT) stops a sweep early (runs with
train.checkpoint_every saving a checkpoint first) and --resume completes it to the tables of an
uninterrupted sweep."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import scb

SWEEP = {"base": {"problem": {"N": 3, "T": 40, "Q": 2}, "train": {"steps": 60, "batch_size": 16,
         "stage1_steps": 20}, "eval": {"every": 20}},
         "grid": {"train.lambda": [0.0, 0.01]}, "replicates": 2}


def sorted_rows(path):
    lines = path.read_text().splitlines()
    return [lines[0]] + sorted(lines[1:])


def test_tables_equal_the_cli(tmp_path, scb_binary):
    (tmp_path / "s.json").write_text(json.dumps(SWEEP))
    subprocess.run([scb_binary, "sweep", str(tmp_path / "s.json"), "--out", str(tmp_path / "cli"), "--quiet"],
                   check=True, capture_output=True)
    sw = scb.sweep(SWEEP, tmp_path / "py", progress=False)
    assert len(sw.runs) == 4 and set(sw.runs["status"]) == {"ok"}
    for name in ("runs.csv", "curves.csv"):
        assert sorted_rows(tmp_path / "py" / name) == sorted_rows(tmp_path / "cli" / name)
    loaded = scb.load_sweep(tmp_path / "cli")
    assert sorted(loaded.runs["run_id"]) == sorted(sw.runs["run_id"])
    best = sw.runs.sort_values("best_dist_A_norm")["run_id"].iloc[0]
    assert sw.run(best).A.shape == (40, 3)


def test_bad_sweep_writes_nothing(tmp_path):
    bad = dict(SWEEP, grid={"train.lamda": [0.1]})
    with pytest.raises(scb.ConfigError, match="lamda"):
        scb.sweep(bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_interrupted_sweep_resumes_to_the_same_tables(tmp_path):
    # One pack per T, so runs finish one after another and SIGINT lands between them.
    big = {"base": dict(SWEEP["base"], train={"steps": 20000, "batch_size": 64}),
           "grid": {"problem.T": [40, 48, 56, 64, 72, 80, 88, 96]}}
    (tmp_path / "s.json").write_text(json.dumps(big))
    code = (f"import sys; sys.path.insert(0, {os.path.join(os.path.dirname(__file__), '..')!r}); import scb; "
            f"scb.sweep({str(tmp_path / 's.json')!r}, {str(tmp_path / 'a')!r}, progress=False, threads=1)")
    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    runs_csv = tmp_path / "a" / "runs.csv"
    while not runs_csv.exists() or len(runs_csv.read_text().splitlines()) < 2:
        time.sleep(0.02)
        assert child.poll() is None, child.stderr.read()
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) != 0
    assert "KeyboardInterrupt" in child.stderr.read()
    done = len(runs_csv.read_text().splitlines()) - 1
    assert 0 < done < 8  # stopped early
    sw = scb.sweep(tmp_path / "s.json", tmp_path / "a", resume=True, progress=False)
    assert sw.summary["skipped"] == done
    scb.sweep(tmp_path / "s.json", tmp_path / "b", progress=False)
    for name in ("runs.csv", "curves.csv"):
        assert sorted_rows(tmp_path / "a" / name) == sorted_rows(tmp_path / "b" / name)


def test_ctrl_c_checkpoints_the_runs_in_flight(tmp_path):
    # Two long runs with checkpoint_every never reached: only the stop can have saved them.
    long = {"base": dict(SWEEP["base"], problem={"N": 3, "T": 400, "Q": 2},
                         train={"steps": 40000, "batch_size": 64, "checkpoint_every": 10 ** 9}),
            "grid": {"train.lambda": [0.0, 0.01]}}
    (tmp_path / "s.json").write_text(json.dumps(long))
    t0 = time.monotonic()
    scb.sweep(tmp_path / "s.json", tmp_path / "b", progress=False, threads=1)  # the uninterrupted sweep
    code = (f"import sys; sys.path.insert(0, {os.path.join(os.path.dirname(__file__), '..')!r}); import scb; "
            f"scb.sweep({str(tmp_path / 's.json')!r}, {str(tmp_path / 'a')!r}, progress=False, threads=1)")
    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    time.sleep(0.5 + (time.monotonic() - t0) / 3)  # import time, then a third of the way on any machine
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=60) != 0
    assert "KeyboardInterrupt" in child.stderr.read()
    assert len(list((tmp_path / "a" / "checkpoints").iterdir())) >= 1
    scb.sweep(tmp_path / "s.json", tmp_path / "a", resume=True, progress=False)
    for name in ("runs.csv", "curves.csv"):
        assert sorted_rows(tmp_path / "a" / name) == sorted_rows(tmp_path / "b" / name)


def test_sweep_progress_bar(tmp_path, capsys):
    scb.sweep(SWEEP, tmp_path / "out", progress=True)
    err = capsys.readouterr().err
    assert "scb.sweep" in err and "240/240" in err  # 4 runs x 60 steps, the bar at its end
