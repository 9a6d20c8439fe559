# Bad input through the binary: hostile or careless JSON, .npy files, options and environment.
# Each must end with exit 2 and one line naming what is wrong, before any work (no output
# directory is made, nothing is trained).
import json
import os
from pathlib import Path

import pytest

from conftest import SMALL, SWEEP, matrix_npy, npy_bytes, run, write_json


def refused(r, *words):
    assert r.rc == 2, r
    line = r.err.strip()
    assert "\n" not in line, r  # one line
    for w in words:
        assert w in line, (w, r)
    return line


def nested(depth, leaf="1"):
    return '{"a":' * depth + leaf + "}" * depth


@pytest.mark.parametrize("where", ["config", "base", "axis"])
def test_deep_json_is_refused(scb, work, where):
    if where == "config":
        (work / "c.json").write_text('{"problem":' + nested(100000) + "}")
        r = run(scb, "train", work / "c.json")
    elif where == "base":
        (work / "s.json").write_text('{"base":' + nested(100000) + "}")
        r = run(scb, "sweep", work / "s.json", "--out", work / "out")
    else:
        (work / "s.json").write_text('{"base":{},"grid":{"train.lambda":[' + "[" * 100000 + "]" * 100000 + "]}}")
        r = run(scb, "sweep", work / "s.json", "--out", work / "out")
    refused(r, "nested deeper than 64 levels")
    assert not (work / "out").exists()


def test_duplicate_keys_are_refused(scb, work):
    (work / "c.json").write_text('{"train":{"steps":10},"train":{"steps":20}}')
    refused(run(scb, "train", work / "c.json"), "c.json: train:", "given twice")
    (work / "s.json").write_text('{"base":"small.json","grid":{"train.lambda":[0.1,0.2],"train.lambda":[0.3]}}')
    refused(run(scb, "sweep", work / "s.json", "--out", work / "out"), "grid.train.lambda", "given twice")


@pytest.mark.parametrize("how", ["file", "set", "sweep"])
def test_number_beyond_double_names_its_key(scb, work, how):
    if how == "file":
        (work / "c.json").write_text('{"train":{"lambda":1e309}}')
        r = run(scb, "train", work / "c.json")
    elif how == "set":
        r = run(scb, "train", work / "small.json", "--set", "train.lambda=1e309")
    else:
        (work / "s.json").write_text('{"base":"small.json","grid":{"train.lambda":[0.1,1e400]}}')
        r = run(scb, "sweep", work / "s.json", "--out", work / "out")
    refused(r, "train.lambda", "beyond the range of a double")


def test_seed_that_would_wrap_is_refused(scb, work):
    write_json(work / "s.json", {"base": dict(SMALL, train=dict(SMALL["train"], seed=2**64 - 1)), "replicates": 2})
    refused(run(scb, "sweep", work / "s.json", "--out", work / "out"), "train.seed", "2^64")


def test_slurm_task_id_without_count_is_refused(scb, work):
    r = run(scb, "sweep", work / "sweep.json", "--out", work / "out", env={"SLURM_ARRAY_TASK_ID": "3"})
    refused(r, "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")
    assert not (work / "out").exists()


@pytest.mark.parametrize("threads", ["100000", "2000", "-1"])
def test_thread_count_out_of_range(scb, work, threads):
    refused(run(scb, "train", work / "small.json", "--threads", threads), "--threads", "1024")


def test_oversized_sweep_is_refused_at_once(scb, work):
    grid = {"train.lambda": list(range(1, 1001)), "train.lr_A": list(range(1, 1001))}
    write_json(work / "s.json", {"base": SMALL, "grid": grid, "replicates": 2})
    refused(run(scb, "sweep", work / "s.json", "--out", work / "out", timeout=60), "2000000 runs", "1000000")


def test_empty_out_and_negative_pack_runs(scb, work):
    refused(run(scb, "train", work / "small.json", "--out", ""), "--out", "empty")
    refused(run(scb, "sweep", work / "sweep.json", "--out", ""), "--out", "empty")
    refused(run(scb, "sweep", work / "sweep.json", "--out", work / "out", "--pack-runs", "-1"), "--pack-runs")


@pytest.mark.parametrize("shape,size,words", [("(3000000000, 3000000000)", 72, ["too large"]),
                                              ("(-3, 3)", 72, ["bad shape"]),
                                              ("(3, 4)", 72, ["holds 72 bytes", "needs 96"])])
def test_damaged_npy_headers(scb, work, shape, size, words):
    (work / "P.npy").write_bytes(npy_bytes(shape, b"\0" * size))
    refused(run(scb, "train", work / "small.json", "--set", "problem.P=P.npy", cwd=work), "problem.P", *words)


def test_init_beyond_float_range(scb, work):
    (work / "V.npy").write_bytes(matrix_npy([[1e300, 0, 0], [0, 1, 0], [0, 0, 1]]))
    refused(run(scb, "train", work / "small.json", "--set", 'model.init={"V":"V.npy"}', cwd=work),
            "model.init.V", "beyond the range of float32")


def test_tiny_dirichlet_alphas(scb, work):
    r = run(scb, "train", work / "small.json", "--set", "problem.weights=dirichlet", "--set", "problem.weights_alpha=1e-300",
            "--set", "problem.Q=5")
    assert r.rc == 0 and r.out.startswith("ok"), r  # one-hot weights are a valid q
    refused(run(scb, "train", work / "small.json", "--set", 'problem.P={"dirichlet":1e-300}'), "Dirichlet(1e-300)", "alpha")


def test_all_zero_attention_follows_the_written_rule(scb, work):
    # renormalize off: A may drain to zero, a state of the model (ok, nnz_A = 0); on: diverged.
    heavy = ["--set", "train.lambda=10", "--set", "train.algorithm=proximal"]
    r = run(scb, "train", work / "small.json", *heavy, "--set", "train.renormalize=false", "--out", work / "off")
    assert r.rc == 0 and r.out.startswith("ok"), r
    assert json.loads((work / "off" / "summary.json").read_text())["final"]["nnz_A"] == 0
    r = run(scb, "train", work / "small.json", *heavy, "--set", "train.renormalize=true", "--out", work / "on")
    assert r.rc == 0 and r.out.startswith("diverged"), r


def test_unwritable_out_is_found_before_training(scb, public_dir):
    write_json(public_dir / "small.json", dict(SMALL, train=dict(SMALL["train"], steps=10_000_000)))
    write_json(public_dir / "sweep.json", dict(SWEEP, base="small.json"))
    (public_dir / "locked").mkdir(mode=0o555)
    (public_dir / "locked").chmod(0o555)
    user = "nobody" if os.geteuid() == 0 else None
    if user is None and os.access(public_dir / "locked", os.W_OK):
        pytest.skip("cannot make an unwritable folder here")
    r = run(scb, "train", public_dir / "small.json", "--out", public_dir / "locked" / "t", user=user, timeout=60)
    refused(r, "--out", "Permission denied")
    (public_dir / "empty").mkdir(mode=0o555)
    (public_dir / "empty").chmod(0o555)
    r = run(scb, "sweep", public_dir / "sweep.json", "--out", public_dir / "empty", user=user, timeout=60)
    refused(r, "--out", "Permission denied")
