#!/usr/bin/python3
"""Transfer's savings against the task correlation rho, from an `scb sweep` directory whose runs
train each downstream task two ways: from scratch and from a pretrained V (configs/paper/
08b_transfer_rho.sh writes such a sweep).

    /usr/bin/python3 scripts/transfer_savings.py SWEEP_DIR [--threshold 0.3] [--metric dist_A_norm]
        [--bootstrap 2000] [--seed 0] [--plot out.png] [--json out.json]

Why it is shaped this way: it reuses scripts/scaling.py for everything that is not specific to
transfer (the crossing of each run, censoring, Kaplan-Meier medians), so both read a sweep the
same way, and keeps the transfer-specific steps (which arm a run is, the ratio, its interval) in
small functions that tests check against known answers. What it measures:
- rho: the `rho` of a run's problem.P object (`{"dirichlet": ..., "mix": ..., "rho": ...}`);
  runs without one have rho = 1 when problem.P is a plain path (the pretraining P itself).
- Arm: "pretrained" when model.init names a V file, "scratch" otherwise.
- Per (rho, arm): the samples to metric <= threshold of every run (task seeds x training seeds),
  censored at the last evaluation when never reached (diverged runs: where they stopped, and
  counted), and their Kaplan-Meier median.
- Savings: median(scratch) / median(pretrained). When the pretrained median is only a lower
  bound (half or more of its runs never got there) the savings are at most the value shown
  ("<="); when the scratch median is a lower bound, at least ("=>"). Intervals: 95% percentile
  bootstrap, resampling the runs of each arm with replacement (draws where either median is a
  bound count as such; the share of those draws is reported).
Needs numpy and pandas (matplotlib for --plot).
"""
import argparse
import json
import os
import sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling  # noqa: E402

ARMS = ("scratch", "pretrained")


def rho_of(problem_p):
    """The correlation of a run's task with the pretraining task, from its problem.P value."""
    if isinstance(problem_p, str):
        text = problem_p.strip()
        if text.startswith("{"):
            value = json.loads(text)
            return float(value["rho"]) if "rho" in value else 0.0
        return 1.0  # a path: the pretraining P itself
    return 0.0  # a Dirichlet draw of its own (no mix)


def arm_of(model_init):
    """'pretrained' when the run starts from a V file, else 'scratch'."""
    if isinstance(model_init, str) and model_init.strip().startswith("{"):
        return "pretrained" if "V" in json.loads(model_init) else "scratch"
    return "scratch"


def label_runs(table):
    """The crossings table with `rho` and `arm` columns."""
    if "problem.P" not in table or "model.init" not in table:
        raise ValueError("the sweep does not vary problem.P and model.init: not a transfer sweep")
    out = table.copy()
    out["rho"] = [rho_of(p) for p in out["problem.P"]]
    out["arm"] = [arm_of(m) for m in out["model.init"]]
    return out


def arm_median(runs):
    """(Kaplan-Meier median samples, is_lower_bound) of one arm's runs."""
    reached = ~runs["censored"].to_numpy(dtype=bool)
    return scaling.km_median(scaling.run_times(runs), reached)


def savings_of(scratch, pretrained):
    """(ratio, kind) of two (median, is_lower_bound) pairs: kind is 'exact', 'at most' (the
    pretrained median is a lower bound), 'at least' (the scratch one is) or 'unknown' (both)."""
    (s, s_bound), (p, p_bound) = scratch, pretrained
    kind = {(False, False): "exact", (False, True): "at most", (True, False): "at least", (True, True): "unknown"}
    return s / p, kind[(s_bound, p_bound)]


def bootstrap_savings(scratch_runs, pretrained_runs, n_boot, rng):
    """Savings of n_boot resamples (runs drawn with replacement within each arm) and the share of
    draws in which either median was only a bound."""
    values, bounded = [], 0
    for _ in range(n_boot):
        s = scratch_runs.iloc[rng.integers(0, len(scratch_runs), len(scratch_runs))]
        p = pretrained_runs.iloc[rng.integers(0, len(pretrained_runs), len(pretrained_runs))]
        ratio, kind = savings_of(arm_median(s), arm_median(p))
        values.append(ratio)
        bounded += kind != "exact"
    return np.array(values), bounded / max(n_boot, 1)


def analyze(table, n_boot=2000, seed=0):
    """One row per rho: each arm's counts and median, the savings, kind and interval."""
    rng = np.random.default_rng(seed)
    rows = []
    for rho, group in table.groupby("rho", sort=True):
        row = {"rho": float(rho)}
        arms = {arm: group[group["arm"] == arm] for arm in ARMS}
        if any(len(runs) == 0 for runs in arms.values()):
            raise ValueError(f"rho = {rho}: needs runs of both arms (scratch and pretrained)")
        medians = {}
        for arm, runs in arms.items():
            medians[arm] = arm_median(runs)
            row.update({f"{arm}_n": len(runs), f"{arm}_reached": int((~runs["censored"]).sum()),
                        f"{arm}_diverged": int((runs["status"] == "diverged").sum()),
                        f"{arm}_median": medians[arm][0], f"{arm}_lower_bound": bool(medians[arm][1])})
        row["savings"], row["kind"] = savings_of(medians["scratch"], medians["pretrained"])
        if n_boot > 0:
            draws, bounded = bootstrap_savings(arms["scratch"], arms["pretrained"], n_boot, rng)
            row["ci_low"], row["ci_high"] = (float(v) for v in np.percentile(draws, [2.5, 97.5]))
            row["bootstrap_bounded_share"] = bounded
        rows.append(row)
    return pd.DataFrame(rows)


def format_median(value, lower_bound):
    return (">= " if lower_bound else "") + f"{value:,.0f}"


def print_table(result, threshold, metric):
    print(f"samples to {metric} <= {threshold}: scratch against the pretrained V (Kaplan-Meier medians)")
    print(f"{'rho':>5} | {'scratch':>12} {'reached':>8} | {'pretrained':>12} {'reached':>8} | savings  (95% interval)")
    mark = {"exact": "", "at most": "<= ", "at least": ">= ", "unknown": "?  "}
    for r in result.to_dict("records"):
        interval = f"({r['ci_low']:.2f}, {r['ci_high']:.2f})" if "ci_low" in r else ""
        print(f"{r['rho']:5.2f} | {format_median(r['scratch_median'], r['scratch_lower_bound']):>12} "
              f"{r['scratch_reached']:>3}/{r['scratch_n']:<4} | "
              f"{format_median(r['pretrained_median'], r['pretrained_lower_bound']):>12} "
              f"{r['pretrained_reached']:>3}/{r['pretrained_n']:<4} | {mark[r['kind']]}{r['savings']:.2f}x  {interval}"
              + (f"  [{r['pretrained_diverged']} pretrained diverged]" if r["pretrained_diverged"] else ""))


def plot(result, path, threshold, metric):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for arm, marker in zip(ARMS, ("o", "s")):
        bound = result[f"{arm}_lower_bound"].to_numpy(dtype=bool)
        left.plot(result["rho"], result[f"{arm}_median"], marker=marker, label=arm)
        left.scatter(result["rho"][bound], result[f"{arm}_median"][bound], marker="^", s=80, facecolors="none",
                     edgecolors="k", zorder=3)
    left.set_yscale("log")
    left.set(xlabel="rho (task correlation)", ylabel=f"median samples to {metric} <= {threshold}",
             title="per arm (open triangle: lower bound)")
    left.legend()
    exact = result["kind"] == "exact"
    err = np.array([result["savings"] - result.get("ci_low", result["savings"]),
                    result.get("ci_high", result["savings"]) - result["savings"]])
    right.errorbar(result["rho"][exact], result["savings"][exact], yerr=err[:, exact.to_numpy()], fmt="o", capsize=3)
    right.scatter(result["rho"][~exact], result["savings"][~exact], marker="v", color="C3",
                  label="at most (pretrained never reached)")
    right.axhline(1.0, color="k", lw=0.8, ls="--")
    right.set_yscale("log")
    right.set(xlabel="rho (task correlation)", ylabel="savings: scratch / pretrained", title="transfer's savings")
    if (~exact).any():
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir")
    parser.add_argument("--threshold", type=float, default=0.3)
    parser.add_argument("--metric", default="dist_A_norm")
    parser.add_argument("--bootstrap", type=int, default=2000, help="resamples (0: no intervals)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write the picture here (PNG)")
    parser.add_argument("--json", help="write the table and the per-run crossings here")
    args = parser.parse_args(argv)
    try:
        table = label_runs(scaling.crossings(args.sweep_dir, args.threshold, args.metric))
        result = analyze(table, args.bootstrap, args.seed)
    except (OSError, ValueError, KeyError) as e:
        print(f"transfer_savings: {e}", file=sys.stderr)
        return 2
    print_table(result, args.threshold, args.metric)
    if args.plot:
        plot(result, args.plot, args.threshold, args.metric)
        print(f"-> {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threshold": args.threshold, "metric": args.metric, "bootstrap": args.bootstrap,
                       "seed": args.seed, "by_rho": result.to_dict("records"),
                       "runs": table.drop(columns=["problem.P", "model.init"]).to_dict("records")}, f, indent=1)
        print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
