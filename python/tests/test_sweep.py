"""scb.sweep and load_sweep: the tables equal the CLI's for the same sweep; a bad sweep raises
ConfigError before anything is written."""
import json
import subprocess

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
