#!/usr/bin/python3
"""Scaling analysis of an `scb sweep` directory: the samples a run needs to bring a metric
(dist_A_norm by default) to a threshold, fitted as a power law in T, N and Q with bootstrap
intervals over replicates.

    /usr/bin/python3 scripts/scaling.py SWEEP_DIR [--threshold 0.3] [--metric dist_A_norm]
        [--axes problem.T,problem.N,problem.Q | --joint] [--by train.algorithm]
        [--tune train.lambda] [--bootstrap 2000] [--seed 0] [--plot out.png] [--json out.json]

Why it is shaped this way: the steps (crossings per run, a censored median per group, a least
squares fit, a cluster bootstrap) are separate functions so tests can check each against known
answers, and the CLI only prints and draws what they return. What it measures:
- Crossing: the `samples` of the first evaluation whose metric <= threshold (--metric
  support_recovered: the first evaluation at which every column's Q largest entries sit exactly
  on the support of q^(k), the end of the signal-boosting stage, read from milestones.csv). The engine
  evaluates only every eval.every steps, so this is the crossing at evaluation resolution: the
  true crossing lies after the previous evaluation (`samples_before`) and at or before it.
- Censoring: a run that never reaches the threshold is right-censored at its last evaluation; a
  diverged run is censored at the evaluation where it stopped and flagged (it was cut off, so
  the estimate treats it like a run that was stopped early). Censored runs are kept, counted
  and drawn, never dropped.
- Group: the runs that share every axis value but the replicate. Its estimate is the
  Kaplan-Meier median of the samples (with no censoring: the ordinary median, the two middle
  values combined geometrically). When more than half of a group may still be above the
  threshold the median is only a lower bound (">= x"): that group stays in the table, is left
  out of the fit, and the fit's prediction there is checked against the bound. The table warns
  when evaluations are more than 10% of a crossing apart (`resolution`): rounding every crossing
  up to the next evaluation flattens the fitted exponent where crossings are early.
- Fit: log(median) = a + sum_j b_j log(x_j) by least squares over the groups, one axis at a
  time (a separate fit for each value of the other axes that vary independently, and of --by),
  or over all --axes at once (--joint). Axes that move with a fitted axis (zipped, such as
  lr_A = 2/T) are carried along, not split on.
- Intervals: resample the replicates within each group with replacement, recompute the group
  medians, refit; the percentile interval of each exponent (95%).
- Tuning (--tune AXIS): at each point of the other axes only the runs of AXIS's best value (the
  smallest median) are fitted; the choices are printed, and the intervals hold them fixed.
Needs numpy and pandas (matplotlib for --plot).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_results import load_sweep  # noqa: E402

DEFAULT_AXES = ("problem.T", "problem.N", "problem.Q")
CI_LEVEL = 0.95
SUPPORT = "support_recovered"  # --metric: the milestone of milestones.csv, not a curve column
COARSE_RESOLUTION = 0.1  # warn when evaluations are further apart than this share of a crossing


def samples_to_threshold(curve_df, threshold, metric="dist_A_norm"):
    """(samples of the first evaluation with metric <= threshold, None), or (None, samples of
    the last evaluation) when the curve never gets there (right-censored)."""
    if curve_df.empty:
        raise ValueError("a run has no evaluations in curves.csv")
    curve = curve_df.sort_values("step")
    reached = (curve[metric].to_numpy(dtype=float) <= threshold)  # NaN compares False
    samples = curve["samples"].to_numpy(dtype=float)
    if reached.any():
        return float(samples[np.argmax(reached)]), None
    return None, float(samples[-1])


def samples_before_crossing(curve_df, crossing):
    """samples of the evaluation before the crossing one (0 if the crossing is the first)."""
    earlier = curve_df.loc[curve_df["samples"] < crossing, "samples"]
    return float(earlier.max()) if len(earlier) else 0.0


def crossing_row(curve_df, threshold, metric):
    samples, censored_at = samples_to_threshold(curve_df, threshold, metric)
    before = samples_before_crossing(curve_df, samples) if samples is not None else np.nan
    return {"samples_to_threshold": np.nan if samples is None else samples,
            "samples_before": before, "censored": samples is None,
            "censored_at": np.nan if censored_at is None else censored_at}


def support_crossing_row(curve_df, recovered):
    """--metric support_recovered: the samples of the first evaluation at which every column's Q
    largest entries sat exactly on the support (`recovered`, from milestones.csv; None: never,
    censored at the last evaluation)."""
    if curve_df.empty:
        raise ValueError("a run has no evaluations in curves.csv")
    if recovered is None:
        return {"samples_to_threshold": np.nan, "samples_before": np.nan, "censored": True,
                "censored_at": float(curve_df["samples"].max())}
    return {"samples_to_threshold": float(recovered), "samples_before": samples_before_crossing(curve_df, recovered),
            "censored": False, "censored_at": np.nan}


def crossings_of(manifest, runs, curves, threshold=0.3, metric="dist_A_norm", columns=(), milestones=None):
    """One row per run of runs.csv: run_id, every axis (and `columns`), replicate, status, and
    its crossing (metric SUPPORT: from `milestones`, the sweep's milestones.csv)."""
    axis_names = [a["name"] for a in manifest["axes"]]
    axis_names += [name for name in columns if name not in axis_names]
    curves_by_run = dict(tuple(curves.groupby("run_id")))
    recovered = {}
    if metric == SUPPORT:
        if milestones is None:
            raise ValueError("--metric support_recovered needs the sweep's milestones.csv (engines before it wrote none)")
        # The engine writes a row for every run, with empty step and samples where the support was
        # never recovered: those runs are censored, not reached.
        hits = milestones[(milestones["metric"] == SUPPORT) & milestones["samples"].notna()]
        recovered = dict(zip(hits["run_id"], hits["samples"]))
    rows = []
    for run in runs.to_dict("records"):
        curve = curves_by_run.get(run["run_id"], curves.iloc[0:0])
        row = {"run_id": run["run_id"], **{name: run[name] for name in axis_names},
               "replicate": int(run["replicate"]), "status": run["status"]}
        crossing = (support_crossing_row(curve, recovered.get(run["run_id"])) if metric == SUPPORT
                    else crossing_row(curve, threshold, metric))
        rows.append({**row, **crossing})
    return pd.DataFrame(rows)


def load_milestones(sweep_dir):
    """The sweep's milestones.csv, or None when it has none (a sweep of an older engine)."""
    path = os.path.join(sweep_dir, "milestones.csv")
    return pd.read_csv(path, dtype={"run_id": str}) if os.path.exists(path) else None


def crossings(sweep_dir, threshold=0.3, metric="dist_A_norm", columns=()):
    """crossings_of() for the sweep directory `sweep_dir` (manifest.json, runs.csv, curves.csv,
    milestones.csv); `columns` that are not axes come from the base config."""
    manifest, runs, curves = load_sweep(sweep_dir, keys=columns)
    return crossings_of(manifest, runs, curves, threshold, metric, columns, load_milestones(sweep_dir))


def run_times(runs):
    """Each run's crossing, or its censoring point when it never crossed."""
    return runs["samples_to_threshold"].fillna(runs["censored_at"]).to_numpy(dtype=float)


def km_median(times, reached):
    """Kaplan-Meier median of right-censored times: (median, is_lower_bound). Where the survival
    curve is exactly 1/2 between two crossings the median is their geometric mean (the ordinary
    median in log space); where it stays above 1/2, or at 1/2 with only censored runs beyond,
    the median is only known to be at least the value returned."""
    times, reached = np.asarray(times, dtype=float), np.asarray(reached, dtype=bool)
    if reached.all():  # the same answer, without the survival curve (most bootstrap draws)
        ordered, middle = np.sort(times), len(times) // 2
        return float(ordered[middle] if len(times) % 2 else math.sqrt(ordered[middle - 1] * ordered[middle])), False
    event_times = np.unique(times[reached])
    if not len(event_times):
        return float(times.max()), True
    at_risk = (times[None, :] >= event_times[:, None]).sum(axis=1)
    events = ((times[None, :] == event_times[:, None]) & reached[None, :]).sum(axis=1)
    survival = np.cumprod(1.0 - events / at_risk)
    at_or_below_half = np.nonzero(survival <= 0.5 + 1e-12)[0]
    if not len(at_or_below_half):
        return float(times.max()), True
    j = at_or_below_half[0]
    if abs(survival[j] - 0.5) > 1e-12:
        return float(event_times[j]), False
    if j + 1 < len(event_times):
        return float(math.sqrt(event_times[j] * event_times[j + 1])), False
    return float(event_times[j]), True


def groups_of(frame, keys):
    """(tuple of key values, rows) per combination of `keys`, sorted; one group without keys."""
    if not keys:
        return [((), frame)]
    grouped = frame.groupby(list(keys) if len(keys) > 1 else keys[0], sort=True)
    return [(values if isinstance(values, tuple) else (values,), rows) for values, rows in grouped]


def group_estimates(runs, keys):
    """One row per group of runs sharing `keys`: the keys, counts, and the censored median."""
    rows = []
    for values, members in groups_of(runs, keys):
        reached = ~members["censored"].to_numpy(dtype=bool)
        median, lower_bound = km_median(run_times(members), reached)
        crossed = members[reached]
        spacing = 1.0 - crossed["samples_before"] / crossed["samples_to_threshold"]
        rows.append({**dict(zip(keys, values)), "n": len(members), "n_reached": int(reached.sum()),
                     "n_censored": int((~reached).sum()),
                     "n_diverged": int((members["status"] == "diverged").sum()),
                     "median": median, "lower_bound": lower_bound,
                     "resolution": float(spacing.max()) if len(crossed) else np.nan})
    return pd.DataFrame(rows)


def determined_by(runs, name, keys):
    """Whether column `name` takes one value for each combination of `keys`."""
    if not keys:
        return runs[name].nunique(dropna=False) <= 1
    return bool((runs.groupby(keys)[name].nunique(dropna=False) <= 1).all())


def split_and_carried(runs, fit_axes, by, axis_names):
    """Columns to split on (--by, then the axes that vary independently of the fitted ones) and
    the axes carried along (fixed by the fitted axes and the splits, like a zipped lr_A)."""
    split, carried = list(by), []
    ordered = sorted(axis_names, key=lambda name: name not in DEFAULT_AXES)
    for name in ordered:
        if name in fit_axes or name in split:
            continue
        (carried if determined_by(runs, name, list(fit_axes) + split) else split).append(name)
    return split, carried


def fit_power_law(log_x, log_y):
    """Least squares of log_y on [1, log_x]: (intercept, exponents), or None if not identifiable."""
    if not len(log_y):
        return None
    log_x = np.asarray(log_x, dtype=float).reshape(len(log_y), -1)
    design = np.column_stack([np.ones(len(log_y)), log_x])
    if len(log_y) < design.shape[1] or np.linalg.matrix_rank(design) < design.shape[1]:
        return None
    coef = np.linalg.lstsq(design, np.asarray(log_y, dtype=float), rcond=None)[0]
    return float(coef[0]), coef[1:]


def fittable(medians, lower_bounds):
    """Groups whose median is known (not a lower bound) and positive (a log exists)."""
    return ~np.asarray(lower_bounds, dtype=bool) & (np.asarray(medians, dtype=float) > 0)


def bootstrap_exponents(runs, keys, fit_axes, point_used, n_boot, rng):
    """Exponents refitted on `n_boot` cluster resamples (each group's replicates drawn with
    replacement). Returns (exponents, discarded: resamples with no identifiable fit, changed:
    resamples that fitted another set of groups than the point fit)."""
    members = [group for _, group in groups_of(runs, keys)]
    times = [run_times(group) for group in members]
    reached = [~group["censored"].to_numpy(dtype=bool) for group in members]
    log_x = np.log(np.array([group[fit_axes].iloc[0].to_numpy(dtype=float) for group in members]))
    exponents, discarded, changed = [], 0, 0
    for _ in range(n_boot):
        draws = [rng.integers(0, len(t), len(t)) for t in times]
        estimates = [km_median(t[d], r[d]) for t, r, d in zip(times, reached, draws)]
        medians, lower = np.array(estimates, dtype=float).T
        used = fittable(medians, lower.astype(bool))
        changed += int((used != point_used).any())
        fit = fit_power_law(log_x[used], np.log(medians[used]))
        if fit is None:
            discarded += 1
        else:
            exponents.append(fit[1])
    return np.array(exponents).reshape(-1, len(fit_axes)), discarded, changed


def percentile_interval(exponents, n_axes, level=CI_LEVEL):
    """(n_axes, 2) percentile interval of the bootstrap exponents (NaN without resamples)."""
    if not len(exponents):
        return np.full((n_axes, 2), np.nan)
    tail = 50.0 * (1.0 - level)
    return np.percentile(exponents, [tail, 100.0 - tail], axis=0).T


def predict(fit, log_x):
    intercept, exponents = fit
    return float(np.exp(intercept + np.dot(exponents, log_x)))


def group_note(group, predicted):
    """Why a group is in the fit or not; for a lower bound, whether the fit agrees with it."""
    if group["n_reached"] == 0:
        note = "left out: never reached (all censored)"
    elif group["lower_bound"]:
        note = "left out: median is a lower bound"
    elif group["median"] <= 0:
        note = "left out: reached at the first evaluation (samples 0)"
    else:
        return "fitted"
    if group["lower_bound"] and predicted < group["median"]:
        note += f"; the fit predicts {predicted:,.0f}, below the bound (the fit is too low here)"
    return note


def fit_split(runs, keys, fit_axes, split, n_boot, rng):
    """The groups of one split, the point fit over those with a known median, and its bootstrap."""
    groups = group_estimates(runs, keys)
    used = fittable(groups["median"], groups["lower_bound"])
    log_x = np.log(groups[fit_axes].to_numpy(dtype=float))
    log_median = np.log(groups["median"].to_numpy(dtype=float).clip(min=1e-300))
    fit = fit_power_law(log_x[used], log_median[used])
    boot, discarded, changed = bootstrap_exponents(runs, keys, fit_axes, used, n_boot if fit else 0, rng)
    predicted = [predict(fit, x) if fit else np.nan for x in log_x]
    groups["in_fit"], groups["predicted"] = used, predicted
    groups["note"] = [group_note(g, p) for g, p in zip(groups.to_dict("records"), predicted)]
    interval = percentile_interval(boot, len(fit_axes))
    residual = log_median[used] - np.log(np.array(predicted)[used]) if fit else np.array([])
    return {"split": split, "axes": list(fit_axes), "keys": list(keys), "groups": groups,
            "intercept": fit[0] if fit else np.nan,
            "exponents": {axis: {"estimate": float(fit[1][j]) if fit else np.nan,
                                 "low": float(interval[j, 0]), "high": float(interval[j, 1])}
                          for j, axis in enumerate(fit_axes)},
            "bootstrap": {"resamples": n_boot if fit else 0, "fitted": len(boot),
                          "discarded": discarded, "other_groups": changed},
            "rms_log_residual": float(np.sqrt(np.mean(residual ** 2))) if len(residual) else np.nan}


def analyze(table, axis_names, fit_axes_sets, by=(), n_boot=2000, seed=0):
    """One fit_split() result per set of fitted axes and per split (--by and the other axes)."""
    fits = []
    for fit_axes in fit_axes_sets:
        fit_axes = list(fit_axes)
        split, carried = split_and_carried(table, fit_axes, by, axis_names)
        for values, part in groups_of(table, split):
            rng = np.random.default_rng([seed, len(fits)])
            keys = fit_axes + split + carried
            fits.append(fit_split(part, keys, fit_axes, dict(zip(split, values)), n_boot, rng))
    return fits


def tuned_runs(table, tune, axis_names, by=()):
    """--tune: for every combination of the other axes (and --by), keep only the runs of the value
    of `tune` whose group median is smallest (known medians before lower bounds). Returns those
    runs and one row per choice. The choice is made once, on all replicates; the bootstrap then
    holds it fixed, so the intervals are conditional on it (re-choosing per draw would widen them)."""
    if tune not in axis_names:
        raise ValueError(f"--tune {tune} is not an axis of this sweep")
    others = [name for name in axis_names if name != tune] + [name for name in by if name not in axis_names]
    keep, choices = [], []
    for values, part in groups_of(table, others):
        est = group_estimates(part, [tune]).sort_values(["lower_bound", "median"], kind="stable")
        best = est.iloc[0]
        keep.append(part[part[tune] == best[tune]])
        choices.append({**dict(zip(others, values)), tune: best[tune], "median": best["median"],
                        "lower_bound": bool(best["lower_bound"]), "tried": len(est)})
    return pd.concat(keep), pd.DataFrame(choices)


def target_text(metric, threshold):
    return "support recovered" if metric == SUPPORT else f"{metric} <= {threshold:g}"


def format_samples(value, lower_bound=False):
    if not np.isfinite(value):
        return "-"
    return (">= " if lower_bound else "") + f"{value:,.0f}"


def split_label(split):
    return ", ".join(f"{name}={value}" for name, value in split.items()) or "all runs"


def single_valued(fit):
    """The fitted axes that take one value in this split (such a split cannot be fitted)."""
    return [axis for axis in fit["axes"] if fit["groups"][axis].nunique() < 2]


def single_valued_text(fit, title):
    """One line for a split with a single value of a fitted axis: its groups' medians, no fit."""
    cells = [f"{', '.join(f'{a}={g[a]:g}' for a in fit['axes'])}: {format_samples(g['median'], g['lower_bound'])}"
             f" ({g['n_reached']} of {g['n']} reached)" for g in fit["groups"].to_dict("records")]
    return f"{title}: {'; '.join(cells)}; no fit ({', '.join(single_valued(fit))} takes a single value)"


def fit_text(fit, metric, threshold):
    """The printed table of one fit: its groups, then the exponents with their intervals."""
    title = (f"samples to {target_text(metric, threshold)} against {' and '.join(fit['axes'])}"
             f"   [{split_label(fit['split'])}]")
    if single_valued(fit):
        return single_valued_text(fit, title)
    lines = [title]
    groups = fit["groups"]
    shown = groups[[k for k in fit["keys"] if k not in fit["split"]]
                   + ["n", "n_reached", "n_censored", "n_diverged"]].copy()
    shown["median samples"] = [format_samples(m, lb) for m, lb in zip(groups["median"], groups["lower_bound"])]
    shown["note"] = groups["note"]
    lines.append(shown.to_string(index=False))
    if not np.isfinite(fit["intercept"]):
        lines.append(f"  no fit: fewer than {len(fit['axes']) + 1} groups with a known median (or "
                     f"their axis values do not span the exponents)")
        return "\n".join(lines)
    lines += coarse_warning(fit)
    boot = fit["bootstrap"]
    for axis, e in fit["exponents"].items():
        lines.append(f"  exponent of {axis}: {e['estimate']:.3f}   {100 * CI_LEVEL:.0f}% interval "
                     f"[{e['low']:.3f}, {e['high']:.3f}]")
    lines.append(f"  over {int(groups['in_fit'].sum())} of {len(groups)} groups; prefactor "
                 f"{math.exp(fit['intercept']):.4g}; rms log residual {fit['rms_log_residual']:.3f}; "
                 f"{boot['fitted']} of {boot['resamples']} resamples fitted "
                 f"({boot['discarded']} not identifiable, {boot['other_groups']} with another set of groups)")
    return "\n".join(lines)


def coarse_warning(fit, limit=COARSE_RESOLUTION):
    """A line when evaluations are too sparse to place some fitted group's crossings closely."""
    groups = fit["groups"]
    coarse = groups[groups["in_fit"] & (groups["resolution"] > limit)]
    if coarse.empty:
        return []
    worst = coarse.loc[coarse["resolution"].idxmax()]
    where = ", ".join(f"{axis}={worst[axis]:g}" for axis in fit["axes"])
    return [f"  coarse evaluations: in {len(coarse)} fitted group(s) a crossing is placed only to within "
            f"{100 * worst['resolution']:.0f}% (at {where}); a smaller eval.every would sharpen the fit"]


def header_text(table, metric, threshold):
    censored = table["censored"].to_numpy(dtype=bool)
    diverged = (table["status"] == "diverged").to_numpy()
    event = "every column's Q largest entries on the support" if metric == SUPPORT else f"{metric} <= {threshold:g}"
    return (f"crossing = samples at the first evaluation with {event} (evaluation "
            f"resolution: the true crossing lies after the previous evaluation, samples_before).\n"
            f"{len(table)} runs: {int((~censored).sum())} reached, {int(censored.sum())} censored "
            f"(at their last evaluation; {int((censored & diverged).sum())} of them diverged), "
            f"{int((~censored & diverged).sum())} reached and diverged later.")


def jsonable(value):
    """numpy scalars to Python, NaN to None, DataFrames to records (JSON has no NaN)."""
    if isinstance(value, pd.DataFrame):
        return json.loads(value.to_json(orient="records"))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path, sweep_dir, table, fits, metric, threshold):
    document = {"sweep_dir": os.path.abspath(sweep_dir), "metric": metric, "threshold": threshold,
                "interval_level": CI_LEVEL, "fits": fits, "runs": table}
    with open(path, "w") as f:
        json.dump(jsonable(document), f, indent=1)


def other_axes(fit, axis):
    """For a fit drawn against `axis`: (name, exponent, mean log value over the fitted groups)
    of each other fitted axis (none for a one-axis fit)."""
    used = fit["groups"][fit["groups"]["in_fit"]]
    return [(name, e["estimate"], float(np.log(used[name].astype(float)).mean()) if len(used) else 0.0)
            for name, e in fit["exponents"].items() if name != axis]


def other_axes_shift(fit, axis):
    """A frame's log contribution of the other fitted axes, relative to their mean: dividing it
    out draws a joint fit against one axis with the others at their (geometric) mean."""
    def shift(frame):
        total = np.zeros(len(frame))
        for name, exponent, centre in other_axes(fit, axis):
            total += exponent * (np.log(frame[name].to_numpy(dtype=float)) - centre)
        return np.nan_to_num(total)
    return shift


def draw_runs(ax, runs, axis, shift, color):
    """Replicates: filled dots where they crossed, open triangles where they were censored."""
    x = runs[axis].to_numpy(dtype=float) * np.exp(0.03 * (runs["replicate"].to_numpy() % 5 - 2))
    y = run_times(runs) / np.exp(shift(runs))
    censored = runs["censored"].to_numpy(dtype=bool)
    ax.scatter(x[~censored], y[~censored], s=10, color=color, alpha=0.5, lw=0)
    ax.scatter(x[censored], y[censored], s=24, marker="^", facecolors="none", edgecolors=color)


def draw_groups(ax, groups, axis, shift, color):
    """Group medians: filled when known, open with an upward arrow when only a lower bound."""
    x, y = groups[axis].to_numpy(dtype=float), groups["median"].to_numpy(dtype=float) / np.exp(shift(groups))
    lower = groups["lower_bound"].to_numpy(dtype=bool)
    ax.scatter(x[~lower], y[~lower], s=55, color=color, edgecolors="black", zorder=3)
    ax.scatter(x[lower], y[lower], s=55, facecolors="none", edgecolors=color, linewidths=1.5, zorder=3)
    if lower.any():  # an upward arrow from each bound (errorbar's lolims), counted in the limits
        ax.errorbar(x[lower], y[lower], yerr=0.6 * y[lower], lolims=True, fmt="none", ecolor=color)


def draw_fit(ax, fit, runs, axis, color):
    shift = other_axes_shift(fit, axis)
    draw_runs(ax, runs, axis, shift, color)
    groups = fit["groups"]
    draw_groups(ax, groups, axis, shift, color)
    label = split_label(fit["split"])
    if np.isfinite(fit["intercept"]):
        e = fit["exponents"][axis]
        used = groups[groups["in_fit"]]
        level = fit["intercept"] + sum(exponent * centre for _, exponent, centre in other_axes(fit, axis))
        for span, style in ((groups[axis], ":"), (used[axis], "-")):
            xs = np.geomspace(float(span.min()), float(span.max()), 50)
            ax.plot(xs, np.exp(level + e["estimate"] * np.log(xs)), color=color, ls=style)
        label += f": exponent {e['estimate']:.2f} [{e['low']:.2f}, {e['high']:.2f}]"
    else:
        label += ": no fit" + (" (never reached)" if (groups["n_reached"] == 0).all() else "")
    ax.plot([], [], color=color, marker="o", label=label)


def runs_of_split(table, split):
    mask = np.ones(len(table), dtype=bool)
    for name, value in split.items():
        mask &= (table[name] == value).to_numpy()
    return table[mask]


def plot_fits(fits, table, metric, threshold, path):
    """One log-log panel per fitted axis; each split in its own colour with its fitted line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fits = [fit for fit in fits if not single_valued(fit)]  # nothing to draw a line through
    panels = list(dict.fromkeys(axis for fit in fits for axis in fit["axes"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = dict.fromkeys(panels, 0)
    for fit in fits:
        for axis in fit["axes"]:
            draw_fit(axes[0][panels.index(axis)], fit, runs_of_split(table, fit["split"]), axis,
                     colors[drawn[axis] % len(colors)])
            drawn[axis] += 1
    joint = any(len(fit["axes"]) > 1 for fit in fits)
    for axis, ax in zip(panels, axes[0]):
        ax.set(xscale="log", yscale="log", xlabel=axis,
               ylabel=f"samples to {target_text(metric, threshold)}" + (" (others at their mean)" if joint else ""))
        values = sorted(table[axis].unique())
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, framealpha=0.6)
    fig.suptitle("big: group median (open, arrow: only a lower bound); small: replicates (open "
                 "triangle: censored)\nline: fit (dotted: beyond the fitted groups)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fit_axes_sets(manifest, table, requested, joint):
    """The axes to fit: --axes (default: those of T, N, Q that the sweep varies), one at a time,
    or all together with --joint."""
    axis_names = [a["name"] for a in manifest["axes"]]
    axes = requested or [name for name in DEFAULT_AXES if name in axis_names and table[name].nunique() > 1]
    for name in axes:
        if name not in axis_names:
            raise ValueError(f"{name} is not an axis of this sweep (axes: {', '.join(axis_names) or 'none'})")
        if (table[name].to_numpy(dtype=float) <= 0).any():
            raise ValueError(f"{name}: a power law needs positive axis values")
    if not axes:
        raise ValueError("none of problem.T, problem.N, problem.Q varies in this sweep: name one with --axes")
    return [axes] if joint else [[name] for name in axes]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--metric", default="dist_A_norm")
    parser.add_argument("--axes", help="comma-separated dotted axis names (default: the swept ones of T, N, Q)")
    parser.add_argument("--joint", action="store_true", help="fit all --axes together")
    parser.add_argument("--by", default="", help="comma-separated columns to split on, e.g. train.algorithm")
    parser.add_argument("--tune", help="an axis to tune: at each point keep only its best value (e.g. train.lambda)")
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples (0: no intervals)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write the log-log picture here (PNG)")
    parser.add_argument("--json", help="write the groups, fits and per-run crossings here")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    by = [name for name in args.by.split(",") if name]
    try:
        manifest, runs, curves = load_sweep(args.sweep_dir, keys=by)
    except KeyError as error:
        sys.exit(f"scaling.py: --by {args.by}: {error} is neither an axis nor a key of the base config")
    try:
        table = crossings_of(manifest, runs, curves, args.threshold, args.metric, by, load_milestones(args.sweep_dir))
    except ValueError as error:
        sys.exit(f"scaling.py: {error}")
    try:
        axes = fit_axes_sets(manifest, table, [a for a in (args.axes or "").split(",") if a], args.joint)
    except ValueError as error:
        sys.exit(f"scaling.py: {error}")
    axis_names = [a["name"] for a in manifest["axes"]]
    if args.tune:
        try:
            table, choices = tuned_runs(table, args.tune, axis_names, by)
        except ValueError as error:
            sys.exit(f"scaling.py: {error}")
        print(f"--tune {args.tune}: the best value per point (smallest median samples):")
        print(choices.to_string(index=False))
        axis_names = [name for name in axis_names if name != args.tune]
    fits = analyze(table, axis_names, axes, by, args.bootstrap, args.seed)
    print(header_text(table, args.metric, args.threshold))
    for fit in fits:
        text = fit_text(fit, args.metric, args.threshold)
        print(("\n" if "\n" in text else "") + text)
    if args.json:
        write_json(args.json, args.sweep_dir, table, fits, args.metric, args.threshold)
    if args.plot:
        plot_fits(fits, table, args.metric, args.threshold, args.plot)


if __name__ == "__main__":
    main()
