# Tests of scripts/scaling.py against answers known in advance: hand-made curves with known
# crossings, small censored samples with a known Kaplan-Meier median, synthetic power laws with
# known exponents (the fit must land inside its own bootstrap interval, and the interval must be
# tight enough to mean something), and a synthetic sweep directory in the real file format run
# through the CLI. Synthetic data keeps every test fast and independent of the engine.
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, SCRIPTS)
import scaling  # noqa: E402


def curve(metric_values, every=50, batch=64):
    steps = np.arange(len(metric_values)) * every
    return pd.DataFrame({"step": steps, "samples": steps * batch, "dist_A_norm": metric_values})


# --- crossings --------------------------------------------------------------------------------

def test_crossing_is_the_first_evaluation_at_or_below_the_threshold():
    assert scaling.samples_to_threshold(curve([1.2, 0.8, 0.31, 0.25, 0.1]), 0.3) == (3 * 50 * 64, None)


def test_a_value_exactly_at_the_threshold_counts_as_reached():
    assert scaling.samples_to_threshold(curve([1.2, 0.3, 0.2]), 0.3) == (50 * 64, None)


def test_rows_out_of_order_are_read_in_step_order():
    shuffled = curve([1.2, 0.8, 0.2, 0.1]).iloc[[3, 0, 2, 1]]
    assert scaling.samples_to_threshold(shuffled, 0.3) == (2 * 50 * 64, None)


def test_a_curve_that_never_reaches_is_censored_at_its_last_evaluation():
    assert scaling.samples_to_threshold(curve([1.2, 0.6, 0.5, 0.45]), 0.3) == (None, 3 * 50 * 64)


def test_non_finite_metrics_never_count_as_reached():
    assert scaling.samples_to_threshold(curve([1.2, np.nan, np.inf]), 0.3) == (None, 2 * 50 * 64)


def test_another_metric_can_be_thresholded():
    frame = curve([1.0, 1.0, 1.0]).assign(dist_V_norm=[0.9, 0.05, 0.01])
    assert scaling.samples_to_threshold(frame, 0.1, "dist_V_norm") == (50 * 64, None)


def test_a_run_without_evaluations_is_an_error():
    with pytest.raises(ValueError):
        scaling.samples_to_threshold(curve([]), 0.3)


# --- Kaplan-Meier median ----------------------------------------------------------------------

def test_median_without_censoring_is_the_ordinary_one_in_log_space():
    assert scaling.km_median([5, 1, 3], [True] * 3) == (3.0, False)
    # S = 1/2 over [3, 5): the run censored at 99 lies above both, as if it had crossed later
    assert scaling.km_median([5, 1, 3, 99], [True] * 3 + [False]) == (pytest.approx(math.sqrt(15)), False)
    median, lower = scaling.km_median([1, 2, 8, 32], [True] * 4)
    assert (median, lower) == (pytest.approx(4.0), False)  # geometric mean of 2 and 8


def test_censoring_after_the_median_leaves_it_exact():
    times = [1, 2, 3, 4, 5, 10, 10, 10]
    median, lower = scaling.km_median(times, [True] * 5 + [False] * 3)
    assert (median, lower) == (pytest.approx(math.sqrt(20)), False)


def test_more_than_half_censored_gives_a_lower_bound_at_the_last_observation():
    assert scaling.km_median([1, 2, 3, 10, 10, 10, 10, 10], [True] * 3 + [False] * 5) == (10.0, True)


def test_exactly_half_reached_and_the_rest_censored_is_a_lower_bound():
    assert scaling.km_median([1, 2, 9, 9], [True, True, False, False]) == (2.0, True)


def test_all_censored_is_a_lower_bound_at_the_largest_censoring_point():
    assert scaling.km_median([4, 7, 6], [False] * 3) == (7.0, True)


def test_early_censoring_moves_the_median_like_kaplan_meier():
    # at t=1 four at risk (S = 3/4); the run censored at 1.5 leaves two at risk at t=2 (S = 3/8)
    assert scaling.km_median([1, 1.5, 2, 3], [True, False, True, True]) == (2.0, False)


# --- fits on synthetic power laws -------------------------------------------------------------

def synthetic_table(exponents, values, replicates=8, sigma=0.25, prefactor=30.0, seed=1):
    """A crossings table with samples = prefactor * prod(x_j ** b_j) * lognormal(0, sigma)."""
    rng = np.random.default_rng(seed)
    grids = np.array(np.meshgrid(*values.values(), indexing="ij")).reshape(len(values), -1).T
    rows = []
    for cell in grids:
        for replicate in range(replicates):
            noise = math.exp(sigma * rng.standard_normal())
            samples = prefactor * np.prod(cell ** np.array(exponents)) * noise
            rows.append({**dict(zip(values, cell)), "run_id": f"r{len(rows)}", "replicate": replicate,
                         "status": "ok", "samples_to_threshold": samples, "samples_before": 0.0,
                         "censored": False, "censored_at": np.nan})
    return pd.DataFrame(rows)


def censor(table, mask, at):
    """Runs in `mask` never reached: right-censored at `at` (their last evaluation)."""
    table = table.copy()
    table.loc[mask, "samples_to_threshold"] = np.nan
    table.loc[mask, "censored"] = True
    table.loc[mask, "censored_at"] = at
    return table


T_VALUES = {"problem.T": [50.0, 100.0, 200.0, 400.0, 800.0]}


def one_fit(table, axes, n_boot=1000, by=(), seed=0):
    names = [c for c in table.columns if c.startswith(("problem.", "train."))]
    fits = scaling.analyze(table, names, [axes], by, n_boot, seed)
    assert len(fits) == 1
    return fits[0]


def test_fit_recovers_a_known_exponent_within_its_interval():
    fit = one_fit(synthetic_table([1.5], T_VALUES), ["problem.T"])
    e = fit["exponents"]["problem.T"]
    assert e["low"] <= 1.5 <= e["high"]
    assert e["high"] - e["low"] < 0.3  # an interval that says something
    assert abs(e["estimate"] - 1.5) < 0.1
    assert fit["bootstrap"] == {"resamples": 1000, "fitted": 1000, "discarded": 0, "other_groups": 0}


def test_intervals_cover_the_true_exponent_in_most_repetitions():
    covered = 0
    for seed in range(40):
        e = one_fit(synthetic_table([1.5], T_VALUES, seed=100 + seed), ["problem.T"], n_boot=200)["exponents"]["problem.T"]
        covered += e["low"] <= 1.5 <= e["high"]
    assert covered >= 32  # nominal 95%: 38 of 40; percentile intervals on 8 replicates run a little short


def test_the_interval_excludes_a_wrong_exponent():
    e = one_fit(synthetic_table([0.5], T_VALUES), ["problem.T"])["exponents"]["problem.T"]
    assert not e["low"] <= 1.5 <= e["high"]


def test_joint_fit_recovers_two_exponents():
    values = {"problem.T": [50.0, 100.0, 200.0, 400.0], "problem.N": [3.0, 5.0, 10.0]}
    fit = one_fit(synthetic_table([1.5, 0.5], values), ["problem.T", "problem.N"])
    for axis, exponent in (("problem.T", 1.5), ("problem.N", 0.5)):
        e = fit["exponents"][axis]
        assert e["low"] <= exponent <= e["high"] and e["high"] - e["low"] < 0.4


def test_one_axis_at_a_time_fits_once_per_value_of_an_independent_axis():
    values = {"problem.T": [50.0, 100.0, 200.0, 400.0], "problem.N": [3.0, 10.0]}
    table = synthetic_table([1.5, 0.5], values)
    fits = scaling.analyze(table, ["problem.T", "problem.N"], [["problem.T"]], n_boot=300)
    assert [fit["split"] for fit in fits] == [{"problem.N": 3.0}, {"problem.N": 10.0}]
    assert all(f["exponents"]["problem.T"]["low"] <= 1.5 <= f["exponents"]["problem.T"]["high"] for f in fits)


def test_a_split_with_one_value_of_the_fitted_axis_is_one_line_without_a_fit():
    values = {"problem.T": [50.0, 100.0, 200.0], "problem.N": [3.0]}
    table = pd.concat([synthetic_table([1.0, 0.0], values),
                       synthetic_table([1.0, 0.0], {"problem.T": [100.0], "problem.N": [5.0]}, seed=3)])
    fits = scaling.analyze(table, ["problem.T", "problem.N"], [["problem.T"]], n_boot=100)
    text = scaling.fit_text(fits[1], "dist_A_norm", 0.3)
    assert fits[1]["split"] == {"problem.N": 5.0} and not np.isfinite(fits[1]["intercept"])
    assert "\n" not in text and "problem.T=100" in text and "no fit (problem.T takes a single value)" in text


def test_a_zipped_axis_is_carried_not_split_on():
    table = synthetic_table([1.0], {"problem.T": [50.0, 100.0, 200.0]})
    table["train.lr_A"] = 2.0 / table["problem.T"]
    split, carried = scaling.split_and_carried(table, ["problem.T"], [], ["problem.T", "train.lr_A"])
    assert (split, carried) == ([], ["train.lr_A"])


def test_by_splits_the_analysis_per_value():
    proximal = synthetic_table([0.6], T_VALUES).assign(**{"train.algorithm": "proximal"})
    sgd = synthetic_table([1.2], T_VALUES, seed=2).assign(**{"train.algorithm": "sgd"})
    table = pd.concat([proximal, sgd], ignore_index=True)
    fits = scaling.analyze(table, ["problem.T"], [["problem.T"]], ["train.algorithm"], 500)
    estimates = {f["split"]["train.algorithm"]: f["exponents"]["problem.T"]["estimate"] for f in fits}
    assert estimates == {"proximal": pytest.approx(0.6, abs=0.1), "sgd": pytest.approx(1.2, abs=0.1)}


# --- censoring in the fit ---------------------------------------------------------------------

def test_a_fully_censored_group_is_listed_and_left_out_of_the_fit():
    table = synthetic_table([1.5], T_VALUES)
    table = censor(table, table["problem.T"] == 800.0, at=1e5)
    fit = one_fit(table, ["problem.T"])
    row = fit["groups"].set_index("problem.T").loc[800.0]
    assert (row["n_censored"], row["in_fit"], row["lower_bound"], row["median"]) == (8, False, True, 1e5)
    assert "never reached" in row["note"]
    # 30 * 800^1.5 = 679,000 lies above the bound of 100,000: no contradiction is claimed
    assert "below the bound" not in row["note"]
    e = fit["exponents"]["problem.T"]
    assert e["low"] <= 1.5 <= e["high"]


def test_a_bound_above_the_fitted_line_is_called_out():
    table = synthetic_table([1.5], T_VALUES)
    table = censor(table, table["problem.T"] == 800.0, at=1e7)
    assert "below the bound" in one_fit(table, ["problem.T"])["groups"].iloc[-1]["note"]


def test_partly_censored_groups_keep_an_exact_median_and_are_counted():
    table = synthetic_table([1.5], T_VALUES)
    slowest = table.groupby("problem.T")["samples_to_threshold"].rank(ascending=False) <= 3
    top = table["problem.T"] == 800.0
    at = table.loc[top & slowest, "samples_to_threshold"].min() * 0.99
    fit = one_fit(censor(table, top & slowest, at=at), ["problem.T"])
    row = fit["groups"].set_index("problem.T").loc[800.0]
    assert (row["n"], row["n_censored"], row["in_fit"], row["lower_bound"]) == (8, 3, True, False)
    assert fit["exponents"]["problem.T"]["low"] <= 1.5 <= fit["exponents"]["problem.T"]["high"]


def test_too_few_known_medians_give_no_fit_but_keep_every_group():
    table = synthetic_table([1.5], T_VALUES)
    table = censor(table, table["problem.T"] >= 100.0, at=1e3)
    fit = one_fit(table, ["problem.T"])
    assert len(fit["groups"]) == 5 and not np.isfinite(fit["intercept"])
    assert "no fit" in scaling.fit_text(fit, "dist_A_norm", 0.3)


# --- the CLI on a sweep directory in the real format (docs/formats.md section 5) ---------------

RUN_COLUMNS = ["replicate", "status", "diverged_step", "steps", "samples", "loss", "excess_loss", "dist_V",
               "dist_A", "dist_V_norm", "dist_A_norm", "nnz_A", "best_step", "best_dist_A_norm"]
CURVE_COLUMNS = ["step", "samples", "loss", "excess_loss", "dist_V", "dist_A", "dist_V_norm", "dist_A_norm", "nnz_A"]
EVERY, BATCH, STEPS = 10, 64, 10000
T_SWEPT, REPLICATES = [20, 40, 80, 160, 320, 640], 8


def synthetic_run(T, replicate, rng):
    """dist_A_norm = 1.2 exp(-step / tau), tau = 20 T (noisy): crossing 0.3 at step tau ln 4,
    which EVERY resolves to 2% or better. Run (T=20, replicate 3) diverges at step 135 before
    crossing; T=640 never crosses by STEPS."""
    tau = 20.0 * T * math.exp(0.1 * rng.standard_normal())
    diverged = (T, replicate) == (20, 3)
    last = 135 if diverged else STEPS
    steps = sorted(set(range(0, last + 1, EVERY)) | {last})
    metric = [1.2 * math.exp(-s / tau) for s in steps]
    if diverged:
        metric = [1.2] * len(steps)
    rows = [[s, s * BATCH, 0.32, 0.01, 0.2, m, 0.2, m, 60] for s, m in zip(steps, metric)]
    crossing = next((s * BATCH for s, m in zip(steps, metric) if m <= 0.3), None)
    summary = [replicate, "diverged" if diverged else "ok", 135 if diverged else "", last, last * BATCH,
               0.32, 0.01, 0.2, metric[-1], 0.2, metric[-1], 60, 0, min(metric)]
    return rows, summary, crossing


def write_synthetic_sweep(directory):
    rng = np.random.default_rng(7)
    manifest = {"format": "scb-sweep/1", "replicates": REPLICATES, "total_runs": REPLICATES * len(T_SWEPT),
                "axes": [{"name": "problem.T", "kind": "zip", "values": T_SWEPT},
                         {"name": "train.lr_A", "kind": "zip", "values": [2.0 / T for T in T_SWEPT]}],
                "base": {"problem": {"N": 3, "T": 100, "Q": 2, "seed": 1},
                         "train": {"algorithm": "proximal", "steps": STEPS, "batch_size": BATCH},
                         "eval": {"every": EVERY}}, "runs": []}
    runs, curves, expected = [], [], {}
    for T in T_SWEPT:
        for replicate in range(REPLICATES):
            run_id = f"{len(runs):016x}"
            rows, summary, expected[run_id] = synthetic_run(T, replicate, rng)
            manifest["runs"].append({"index": len(runs), "run_id": run_id, "replicate": replicate,
                                     "algorithm": "proximal", "seed": replicate,
                                     "axes": {"problem.T": T, "train.lr_A": 2.0 / T}})
            runs.append([run_id, T, 2.0 / T] + summary)
            curves += [[run_id] + row for row in rows]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    pd.DataFrame(runs, columns=["run_id", "problem.T", "train.lr_A"] + RUN_COLUMNS).to_csv(directory / "runs.csv", index=False)
    pd.DataFrame(curves, columns=["run_id"] + CURVE_COLUMNS).to_csv(directory / "curves.csv", index=False)
    return expected


def test_cli_on_a_synthetic_sweep_directory(tmp_path):
    pytest.importorskip("matplotlib")
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    expected = write_synthetic_sweep(sweep)
    out = subprocess.run([sys.executable, os.path.join(SCRIPTS, "scaling.py"), str(sweep), "--bootstrap", "500",
                          "--json", str(tmp_path / "fit.json"), "--plot", str(tmp_path / "fit.png")],
                         capture_output=True, text=True, check=True).stdout
    report = json.loads((tmp_path / "fit.json").read_text())
    found = {run["run_id"]: run["samples_to_threshold"] for run in report["runs"]}
    assert found == expected  # known crossings, None where censored
    diverged = next(run for run in report["runs"] if run["status"] == "diverged")
    assert (diverged["censored"], diverged["censored_at"]) == (True, 135 * BATCH)
    (fit,) = report["fits"]
    e = fit["exponents"]["problem.T"]
    assert e["low"] <= 1.0 <= e["high"] and abs(e["estimate"] - 1.0) < 0.1
    last = fit["groups"][-1]
    assert (last["problem.T"], last["n_censored"], last["in_fit"]) == (640, 8, False)
    assert fit["groups"][0]["n_diverged"] == 1 and fit["groups"][0]["n_censored"] == 1
    assert ">= 640,000" in out and "48 runs: 39 reached, 9 censored" in out and "1 of them diverged" in out
    assert (tmp_path / "fit.png").stat().st_size > 10000


def test_crossings_of_a_sweep_directory(tmp_path):
    expected = write_synthetic_sweep(tmp_path)
    table = scaling.crossings(tmp_path, 0.3, columns=["train.algorithm"])
    assert list(table.columns) == ["run_id", "problem.T", "train.lr_A", "train.algorithm", "replicate", "status",
                                   "samples_to_threshold", "samples_before", "censored", "censored_at"]
    assert (table["train.algorithm"] == "proximal").all()  # from the base config
    reached = table[~table["censored"]]
    assert dict(zip(reached["run_id"], reached["samples_to_threshold"])) == {k: v for k, v in expected.items() if v}
    assert (reached["samples_to_threshold"] - reached["samples_before"] == EVERY * BATCH).all()
    assert table["censored_at"].isna().equals(~table["censored"])


def test_cli_refuses_an_axis_that_is_not_swept(tmp_path):
    write_synthetic_sweep(tmp_path)
    done = subprocess.run([sys.executable, os.path.join(SCRIPTS, "scaling.py"), str(tmp_path), "--axes", "problem.N"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "problem.N is not an axis" in done.stderr


# --- tuning -----------------------------------------------------------------------------------

def test_tune_keeps_the_best_value_per_point_and_known_bounds_last():
    rows = []
    for N, medians in ((3, {0.01: 800.0, 0.02: 400.0, 0.04: None}), (5, {0.01: 900.0, 0.02: None, 0.04: None})):
        for lam, median in medians.items():
            for rep in range(3):
                reached = median is not None
                rows.append({"problem.N": N, "train.lambda": lam, "replicate": rep, "status": "ok",
                             "samples_to_threshold": median * (1 + 0.01 * rep) if reached else np.nan,
                             "samples_before": 0.0, "censored": not reached,
                             "censored_at": np.nan if reached else 5000.0})
    table = pd.DataFrame(rows)
    kept, choices = scaling.tuned_runs(table, "train.lambda", ["problem.N", "train.lambda"])
    chosen = dict(zip(choices["problem.N"], choices["train.lambda"]))
    assert chosen == {3: 0.02, 5: 0.01}  # 5000 (censored everywhere) never beats a known median
    assert set(zip(kept["problem.N"], kept["train.lambda"])) == {(3, 0.02), (5, 0.01)}
    with pytest.raises(ValueError, match="not an axis"):
        scaling.tuned_runs(table, "train.lr_A", ["problem.N", "train.lambda"])


# --- support recovery (milestones.csv) ----------------------------------------------------------

def test_support_recovered_crossings_come_from_milestones_and_censor_the_rest():
    manifest = {"axes": [{"name": "problem.N"}]}
    runs = pd.DataFrame({"run_id": ["a", "b"], "problem.N": [3, 3], "replicate": [0, 1], "status": ["ok", "ok"]})
    curves = pd.concat([curve([1.0, 0.5, 0.2]).assign(run_id=i) for i in ("a", "b")])
    # As the engine writes them: b's support was never recovered, so its step and samples are empty.
    milestones = pd.DataFrame({"run_id": ["a", "a", "b"], "metric": ["dist_A_norm", "support_recovered", "support_recovered"],
                               "threshold": [0.3, np.nan, np.nan], "step": [100, 50, np.nan],
                               "samples": [6400, 3200, np.nan]})
    table = scaling.crossings_of(manifest, runs, curves, metric=scaling.SUPPORT, milestones=milestones).set_index("run_id")
    assert table.loc["a", "samples_to_threshold"] == 3200 and table.loc["a", "samples_before"] == 0
    assert table.loc["b", "censored"] and table.loc["b", "censored_at"] == 2 * 50 * 64
    assert np.isnan(table.loc["b", "samples_to_threshold"])
    with pytest.raises(ValueError, match="milestones.csv"):
        scaling.crossings_of(manifest, runs, curves, metric=scaling.SUPPORT, milestones=None)
