# Tests of scripts/transfer_savings.py against answers known in advance: how a run's rho and arm
# are read from its config values, the savings and their kind when either median is only a
# bound, known medians giving a known ratio with an interval around it, and a sweep directory
# in the real file format (written here, no engine needed) through the CLI.
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
import transfer_savings as ts  # noqa: E402

MIX = {"dirichlet": 1.0, "mix": "/pre/P.npy"}


def test_rho_and_arm_come_from_the_config_values():
    assert ts.rho_of(json.dumps({**MIX, "rho": 0.75})) == 0.75
    assert ts.rho_of(json.dumps({"dirichlet": 1.0})) == 0.0  # a task of its own
    assert ts.rho_of("/pre/P.npy") == 1.0                     # the pretraining P itself
    assert ts.arm_of(json.dumps({"V": "/pre/V.npy"})) == "pretrained"
    assert ts.arm_of("stationary") == "scratch"
    assert ts.arm_of(json.dumps({"A": "/pre/A.npy"})) == "scratch"  # only a pretrained V skips stage 1


def test_savings_kind_follows_which_median_is_a_bound():
    assert ts.savings_of((800.0, False), (100.0, False)) == (8.0, "exact")
    assert ts.savings_of((800.0, False), (400.0, True)) == (2.0, "at most")
    assert ts.savings_of((800.0, True), (100.0, False)) == (8.0, "at least")
    assert ts.savings_of((800.0, True), (400.0, True))[1] == "unknown"


def crossings_table(per_rho, rng):
    """Runs with log-normal crossings around the given (scratch, pretrained) medians; a median of
    None means the arm never reaches (censored at 1e6)."""
    rows = []
    for rho, medians in per_rho.items():
        for arm, median in zip(ts.ARMS, medians):
            for i in range(16):
                reached = median is not None
                value = median * float(np.exp(rng.normal(0, 0.05))) if reached else np.nan
                rows.append({"problem.P": json.dumps({**MIX, "rho": rho}),
                             "model.init": json.dumps({"V": "/pre/V.npy"}) if arm == "pretrained" else "stationary",
                             "replicate": i, "status": "ok", "samples_to_threshold": value,
                             "samples_before": value * 0.9 if reached else np.nan,
                             "censored": not reached, "censored_at": np.nan if reached else 1e6})
    return ts.label_runs(pd.DataFrame(rows))


def test_known_medians_give_known_savings_inside_their_interval():
    table = crossings_table({0.0: (260000, None), 0.5: (260000, 130000), 1.0: (260000, 26000)},
                            np.random.default_rng(3))
    result = ts.analyze(table, n_boot=400, seed=1).set_index("rho")
    assert result.loc[1.0, "kind"] == "exact"
    assert result.loc[1.0, "savings"] == pytest.approx(10.0, rel=0.05)
    assert result.loc[1.0, "ci_low"] <= result.loc[1.0, "savings"] <= result.loc[1.0, "ci_high"]
    assert result.loc[1.0, "ci_low"] > 9.0 and result.loc[1.0, "ci_high"] < 11.0
    assert result.loc[0.5, "savings"] == pytest.approx(2.0, rel=0.05)
    # Never reached: reported as an upper bound on the savings, not dropped.
    assert result.loc[0.0, "kind"] == "at most"
    assert result.loc[0.0, "pretrained_reached"] == 0 and result.loc[0.0, "pretrained_lower_bound"]


def test_a_rho_with_one_arm_only_is_an_error():
    table = crossings_table({1.0: (260000, 26000)}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="both arms"):
        ts.analyze(table[table["arm"] == "scratch"], n_boot=0)


def write_sweep(directory, per_rho):
    """A sweep directory in the engine's format: manifest.json, runs.csv, curves.csv, with curves
    that fall by 0.1 per evaluation from 1.0 (crossing 0.3 at the 7th) scaled per arm."""
    os.makedirs(directory)
    axes = [{"name": "problem.P"}, {"name": "model.init"}]
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump({"axes": axes, "base": {}, "runs": []}, f)
    runs, curves = [], []
    for rho, every in per_rho.items():
        for arm, step_every in zip(ts.ARMS, every):
            for rep in range(3):
                run_id = f"{len(runs):016x}"
                init = json.dumps({"V": "/pre/V.npy"}) if arm == "pretrained" else "stationary"
                runs.append({"run_id": run_id, "problem.P": json.dumps({**MIX, "rho": rho}), "model.init": init,
                             "replicate": rep, "status": "ok"})
                for e in range(10):
                    curves.append({"run_id": run_id, "step": e * step_every, "samples": e * step_every * 64,
                                   "dist_A_norm": 1.0 - 0.1 * e})
    pd.DataFrame(runs).to_csv(os.path.join(directory, "runs.csv"), index=False)
    pd.DataFrame(curves).to_csv(os.path.join(directory, "curves.csv"), index=False)


def test_cli_on_a_sweep_directory(tmp_path):
    sweep = tmp_path / "sweep"
    write_sweep(str(sweep), {0.5: (100, 50), 1.0: (100, 10)})
    out = tmp_path / "t.json"
    proc = subprocess.run([sys.executable, os.path.join(SCRIPTS, "transfer_savings.py"), str(sweep),
                           "--bootstrap", "50", "--json", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    by_rho = {r["rho"]: r for r in json.load(open(out))["by_rho"]}
    assert by_rho[1.0]["savings"] == pytest.approx(10.0)
    assert by_rho[0.5]["savings"] == pytest.approx(2.0)
    assert "10.00x" in proc.stdout


def test_cli_refuses_a_sweep_that_is_not_a_transfer_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    write_sweep(str(sweep), {1.0: (100, 10)})
    runs = pd.read_csv(sweep / "runs.csv", dtype={"run_id": str}).drop(columns=["model.init"])
    runs.to_csv(sweep / "runs.csv", index=False)
    with open(sweep / "manifest.json", "w") as f:
        json.dump({"axes": [{"name": "problem.P"}], "base": {}, "runs": []}, f)
    proc = subprocess.run([sys.executable, os.path.join(SCRIPTS, "transfer_savings.py"), str(sweep)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a transfer sweep" in proc.stderr
