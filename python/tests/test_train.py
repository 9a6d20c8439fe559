"""scb.train, Run and load_run against the CLI: the same config gives the same arrays, curves
and files; the exact loss of the returned parameters is the reported loss."""
import json
import subprocess

import numpy as np
import pytest

import scb
from conftest import small_config


def test_arrays_equal_the_npy_files_the_cli_writes(tmp_path, scb_binary):
    cfg = small_config()
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    subprocess.run([scb_binary, "train", str(path), "--out", str(tmp_path / "cli"), "--threads", "1"],
                   check=True, capture_output=True)
    run = scb.train(path, threads=1, progress=False)
    for name in ("V", "A", "P", "Q", "mu"):
        expected = np.load(tmp_path / "cli" / f"{name}.npy")
        got = getattr(run, name)
        assert got.dtype == expected.dtype and got.shape == expected.shape, name
        assert np.array_equal(got, expected), name
    cli = scb.load_run(tmp_path / "cli")
    assert list(run.curves.columns) == list(cli.curves.columns)
    assert np.allclose(run.curves.to_numpy(float), cli.curves.to_numpy(float), rtol=1e-9, atol=0)
    assert run.summary["final"]["step"] == cli.summary["final"]["step"]


def test_save_writes_the_files_of_scb_train(tmp_path, scb_binary):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(small_config()))
    subprocess.run([scb_binary, "train", str(path), "--out", str(tmp_path / "cli"), "--threads", "1"],
                   check=True, capture_output=True)
    scb.train(path, threads=1, progress=False).save(tmp_path / "py")
    for name in ("V.npy", "A.npy", "P.npy", "Q.npy", "mu.npy", "curves.csv", "config.json"):
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    with pytest.raises(scb.ConfigError, match="not empty"):
        scb.train(path, threads=1, progress=False).save(tmp_path / "py")


def test_population_loss_equals_the_reported_loss():
    run = scb.train(small_config(), progress=False)
    loss = scb.population_loss(run.P, run.Q, run.mu, run.V, run.A)
    assert loss == run.summary["final"]["loss"]
    m = scb.metrics(run.P, run.Q, None, run.V, run.A)
    assert m["dist_A_norm"] == run.summary["final"]["dist_A_norm"]
    assert m["nnz_A"] == run.summary["final"]["nnz_A"]


def test_overrides_as_dict_and_keywords():
    a = scb.train(small_config(), progress=False, overrides={"train.lambda": 0.05})
    b = scb.train(small_config(), progress=False, train__lambda=0.05)
    c = scb.train(small_config(), progress=False)
    assert a.config["train"]["lambda"] == 0.05 and np.array_equal(a.A, b.A)
    assert not np.array_equal(a.A, c.A)


def test_softmax_run_has_logits():
    run = scb.train({"problem": {"N": 3, "T": 20}, "model": {"attention": "softmax"},
                     "train": {"algorithm": "sgd", "steps": 20, "lr_A": 0.5}, "eval": {"every": 10}}, progress=False)
    assert run.W.shape == run.A.shape == (20, 3)
    assert np.allclose(run.A.sum(axis=0), 1.0, atol=1e-5)


def test_progress_bar_runs(capsys):
    scb.train(small_config(steps=200), progress=True)
    assert "scb.train" in capsys.readouterr().err
