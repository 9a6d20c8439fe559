# train.checkpoint_every through the binary: a run killed at a chosen checkpoint (or while one is
# written) and resumed equals the uninterrupted run byte for byte, for each kind of training;
# a sweep resumes its runs in flight from their checkpoints; the refusals that keep a checkpoint
# from being lost or misapplied.
import json
import signal
import time
from pathlib import Path

import pytest

from conftest import SWEEP, run, same_sweep, write_json

REFERENCE = str(Path(__file__).resolve().parents[2] / "configs" / "reference.json")

KINDS = {
    "proximal": ["--set", "train.algorithm=proximal"],
    "sgd": ["--set", "train.algorithm=sgd"],
    "population_noise": ["--set", "train.algorithm=population", "--set", "train.noise=0.01"],
    "softmax": ["--set", "model.attention=softmax", "--set", "train.algorithm=sgd", "--set", "train.lr_A=20"],
}
SHORT = ["--set", "train.steps=3000", "--set", "train.stage1_steps=1000"]


def same_run(a, b):
    for f in sorted(Path(a).iterdir()):
        if f.name in ("summary.json", "config.json"):
            continue
        assert f.read_bytes() == (Path(b) / f.name).read_bytes(), f.name


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("point", ["checkpoint_written@3", "mid_write:t.checkpoint.tmp@4"])
def test_killed_run_resumes_bit_identical(scb, tmp_path, kind, point):
    args = [REFERENCE, *KINDS[kind], *SHORT]
    assert run(scb, "train", *args, "--out", tmp_path / "ref").rc == 0
    ck = [*args, "--set", "train.checkpoint_every=500", "--out", tmp_path / "t"]
    r = run(scb, "train", *ck, failpoint=point)
    assert r.rc == -signal.SIGKILL, r
    assert (tmp_path / "t.checkpoint").exists() and not (tmp_path / "t" / "summary.json").exists()
    r = run(scb, "train", *ck, "--resume")
    assert r.rc == 0 and "resuming from" in r.err, r
    same_run(tmp_path / "ref", tmp_path / "t")
    assert not (tmp_path / "t.checkpoint").exists() and not (tmp_path / "t.checkpoint.tmp").exists()


def test_checkpoint_refusals(scb, tmp_path):
    ck = [REFERENCE, *SHORT, "--set", "train.checkpoint_every=500", "--out", tmp_path / "t"]
    assert run(scb, "train", *ck, failpoint="checkpoint_written@2").rc == -signal.SIGKILL
    r = run(scb, "train", *ck)  # without --resume the run in flight is not silently dropped
    assert r.rc == 2 and "t.checkpoint holds a run in flight" in r.err and "--resume" in r.err, r
    r = run(scb, "train", REFERENCE, *SHORT, "--set", "train.lambda=0.01", "--set", "train.checkpoint_every=500",
            "--out", tmp_path / "t", "--resume")
    assert r.rc == 2 and "checkpoint of another run" in r.err, r
    assert run(scb, "train", *ck, "--resume").rc == 0
    r = run(scb, "train", *ck, "--resume")  # a requeued job that had finished: nothing to do
    assert r.rc == 0 and "already finished" in r.out, r
    r = run(scb, "train", REFERENCE, "--set", "train.checkpoint_every=5x")
    assert r.rc == 2 and "train.checkpoint_every" in r.err, r


def test_sweep_resumes_runs_in_flight_from_checkpoints(scb, tmp_path):
    sweep = dict(SWEEP, base=dict(SWEEP["base"], train=dict(SWEEP["base"]["train"], steps=3000)))
    write_json(tmp_path / "ref.json", sweep)
    assert run(scb, "sweep", tmp_path / "ref.json", "--out", tmp_path / "ref", "--save-params", "all", "--quiet").rc == 0
    sweep["base"]["train"]["checkpoint_every"] = 300
    write_json(tmp_path / "ck.json", sweep)
    for k in (7, 31):
        out = tmp_path / f"out{k}"
        r = run(scb, "sweep", tmp_path / "ck.json", "--out", out, "--save-params", "all", "--quiet",
                failpoint=f"checkpoint_written@{k}")
        assert r.rc == -signal.SIGKILL, r
        assert any((out / "checkpoints").iterdir())
        r = run(scb, "sweep", tmp_path / "ck.json", "--out", out, "--quiet", "--resume")
        assert r.rc == 0, r
        same_sweep(out, tmp_path / "ref", config=False)  # same run ids: checkpoint_every is not in them
        assert not any((out / "checkpoints").iterdir())


def test_checkpoint_curve_script_reads_the_curve_so_far(scb, tmp_path):
    import subprocess
    import sys
    ck = [REFERENCE, *SHORT, "--set", "train.checkpoint_every=500"]
    assert run(scb, "train", *ck, "--out", tmp_path / "full").rc == 0
    assert run(scb, "train", *ck, "--out", tmp_path / "t", failpoint="checkpoint_written@3").rc == -signal.SIGKILL
    script = Path(__file__).resolve().parents[2] / "scripts" / "checkpoint_curve.py"
    p = subprocess.run([sys.executable, script, tmp_path / "t.checkpoint", "--csv", tmp_path / "c.csv"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "step=1500" in p.stdout, p
    got = [l.split(",", 1)[1] for l in (tmp_path / "c.csv").read_text().splitlines()[1:]]
    full = (tmp_path / "full" / "curves.csv").read_text().splitlines()[1:]
    assert got == full[: len(got)] and len(got) == 4  # steps 0, 500, 1000, 1500, as the finished run wrote them
    # The support milestone read from the checkpoint's curve is the finished run's (where it fell
    # within the steps the checkpoint holds).
    recovered = json.loads((tmp_path / "full" / "milestones.json").read_text())["support_recovered"]["step"]
    want = f"support_recovered=step {recovered}" if recovered is not None and recovered <= 1500 else "support_recovered=not yet"
    assert want in p.stdout, (want, p.stdout)
    # --params: the checkpoint's V and A, as a run stopped at its step writes them (the first 1,500
    # steps of the 3,000-step run are those of a 1,500-step run), are model.init's files.
    import numpy as np
    p = subprocess.run([sys.executable, script, tmp_path / "t.checkpoint", "--params", tmp_path / "p"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p
    assert run(scb, "train", REFERENCE, *SHORT, "--set", "train.steps=1500", "--out", tmp_path / "half").rc == 0
    for name in ("V.npy", "A.npy"):
        got, want = np.load(tmp_path / "p" / name), np.load(tmp_path / "half" / name)
        assert got.dtype == want.dtype and got.shape == want.shape and (got == want).all(), name
    init = json.dumps({"V": str(tmp_path / "p" / "V.npy"), "A": str(tmp_path / "p" / "A.npy")})
    assert run(scb, "train", REFERENCE, "--set", "train.steps=10", "--set", f"model.init={init}",
               "--out", tmp_path / "branch").rc == 0


def stop_after(cmd, seconds, sig):
    """Start cmd, send `sig` after `seconds`, and return (returncode, stderr)."""
    import subprocess
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


# A signal saves a checkpoint at the step reached (not only at the last checkpoint_every point,
# here never reached), and the resumed run equals the uninterrupted one byte for byte.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_the_step_reached(scb, tmp_path, sig):
    args = [REFERENCE, "--set", "problem.T=3000", "--set", "train.steps=4000", "--set", "train.stage1_steps=1000",
            "--set", "eval.every=1000", "--threads", "1"]
    t0 = time.monotonic()
    assert run(scb, "train", *args, "--out", tmp_path / "ref").rc == 0
    ck = [*args, "--set", "train.checkpoint_every=1000000", "--out", tmp_path / "t"]
    rc, err = stop_after([scb, "train", *ck], (time.monotonic() - t0) / 3, sig)  # a third of the way, on any machine
    assert rc == 128 + sig and "t.checkpoint" in err and "--resume" in err, err
    r = run(scb, "train", *ck, "--resume")
    assert r.rc == 0 and "resuming from" in r.err, r
    step = int(r.err.split("at step ")[1].split()[0])
    assert 0 < step < 4000 and step % 1000 != 0, r.err  # between evaluations: the step the signal found
    same_run(tmp_path / "ref", tmp_path / "t")


def test_signal_checkpoints_a_sweeps_runs_in_flight(scb, tmp_path):
    sweep = dict(SWEEP, base=dict(SWEEP["base"], problem=dict(SWEEP["base"]["problem"], T=2000),
                                  train=dict(SWEEP["base"]["train"], steps=20000), eval={"every": 1000}))
    write_json(tmp_path / "ref.json", sweep)
    t0 = time.monotonic()
    assert run(scb, "sweep", tmp_path / "ref.json", "--out", tmp_path / "ref", "--quiet", "--pack-runs", "2").rc == 0
    sweep["base"]["train"]["checkpoint_every"] = 1000000
    write_json(tmp_path / "ck.json", sweep)
    out = tmp_path / "out"
    rc, err = stop_after([scb, "sweep", tmp_path / "ck.json", "--out", out, "--quiet", "--pack-runs", "2"],
                         (time.monotonic() - t0) / 3, signal.SIGINT)
    assert rc == 130 and "--resume" in err, err
    assert any((out / "checkpoints").iterdir()), "no checkpoint of the runs in flight"
    r = run(scb, "sweep", tmp_path / "ck.json", "--out", out, "--quiet", "--resume")
    assert r.rc == 0, r
    same_sweep(out, tmp_path / "ref", config=False)
