#!/usr/bin/python3
"""Pictures of the paper's experiments (configs/paper/) for docs/results.md.

    /usr/bin/python3 scripts/plot_results.py EXPERIMENT OUT_DIR [--img DIR]

EXPERIMENT is one of 01_l1_vs_sgd, 02_scaling_N_T, 03_population_large, 03b_population_vs_sampled,
04_transfer, 05_softmax_vs_linear, 06_batch_size, 03c_gaussian_ladder, 08d_sgd_tuned,
07i_lr_steps, 07j_batch_floor, 07k_lambda_at_1e4, 07m_half_step, 07s_population_matched; OUT_DIR is what `scb sweep` (or, for 04_transfer, configs/paper/04_transfer.sh,
for 07i_lr_steps configs/paper/07i_lr_steps.sh) wrote. Writes DIR/EXPERIMENT.png (default DIR:
docs/img/results) and prints the figures the picture shows (final medians per curve).
Every curve is the median over replicates (or problem seeds); the band spans their minimum to
maximum. Diverged runs are left out of the curves and counted in the legend.
Needs matplotlib, pandas and numpy (Debian: python3-matplotlib python3-pandas).
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_sweep import dotted  # noqa: E402

DPI = 110
COLORS = {"sgd": "tab:blue", "proximal": "tab:red", "population": "tab:green"}


def load_sweep(d, keys=()):
    """runs.csv and curves.csv of a sweep, with `keys` filled in from the base config where they are
    not axes, plus the sweep's wall time from summary lines if present."""
    with open(os.path.join(d, "manifest.json")) as f:
        manifest = json.load(f)
    runs = pd.read_csv(os.path.join(d, "runs.csv"), dtype={"run_id": str})
    curves = pd.read_csv(os.path.join(d, "curves.csv"), dtype={"run_id": str})
    for key in keys:
        if key not in runs.columns:
            runs[key] = dotted(manifest["base"], key)
    return manifest, runs, curves


def band(ax, curves, ids, x, y, color, label, ls="-"):
    """Median of y over the runs `ids` at each x, with a min-max band. Returns the final median."""
    cv = curves[curves["run_id"].isin(list(ids))]
    if cv.empty:
        ax.plot([], [], color=color, ls=ls, label=label)  # keeps e.g. "(n=0, 2 diverged)" in the legend
        return np.nan
    g = cv.groupby(x)[y]
    med = g.median()
    ax.plot(med.index.values, med.values, color=color, ls=ls, label=label)
    ax.fill_between(med.index.values, g.min().values, g.max().values, color=color, alpha=0.18, lw=0)
    return float(med.values[-1])


def finish(fig, path, title=None):
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"plot_results: wrote {path} ({os.path.getsize(path) // 1024} KB)")


def heat(ax, M, title, vmin=None, vmax=None):
    im = ax.imshow(M, aspect="auto", cmap="magma", interpolation="nearest", vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("query token k")
    ax.set_ylabel("position t")
    ax.set_xticks(range(M.shape[1]))
    return im


def ok_ids(runs, mask):
    sel = runs[mask]
    return sel.loc[sel["status"] == "ok", "run_id"], int((sel["status"] != "ok").sum())


# ---------------------------------------------------------------------------------------------
def exp01(d, path):
    _, runs, curves = load_sweep(d, ["train.algorithm"])
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), gridspec_kw={"width_ratios": [1.3, 1.3, 1, 1]})
    for alg in ["sgd", "proximal"]:
        ids, _ = ok_ids(runs, runs["train.algorithm"] == alg)
        for ax, y in zip(axes[:2], ["dist_A_norm", "dist_V_norm"]):
            f = band(ax, curves, ids, "samples", y, COLORS[alg], f"{alg} (n={len(ids)})")
            print(f"01 {alg}: final median {y} = {f:.4f}")
    for ax, y in zip(axes[:2], ["dist_A_norm", "dist_V_norm"]):
        ax.set_xscale("log")
        ax.set_xlabel("samples")
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].axvline(4000 * 64, color="gray", ls=":", lw=1)
    axes[0].text(4000 * 64, 0.3, " proximal stage\n starts", fontsize=7, color="gray")
    best = runs[(runs["train.algorithm"] == "proximal") & (runs["status"] == "ok")].sort_values("dist_A_norm")
    saved = [r for r in best["run_id"] if os.path.isdir(os.path.join(d, "runs", r))]
    if saved:
        rd = os.path.join(d, "runs", saved[0])
        A, Q = np.load(os.path.join(rd, "A.npy")), np.load(os.path.join(rd, "Q.npy"))
        vmax = max(float(A.max()), float(Q.max()))
        heat(axes[2], A, "learned A (best proximal run)", 0, vmax)
        im = heat(axes[3], Q, "true Q", 0, vmax)
        fig.colorbar(im, ax=axes[3])
    finish(fig, path, "01: l1-proximal vs plain SGD, N=3, T=100, B=64 (median, band = min-max over 5 seeds)")


def exp02(d, path):
    _, runs, curves = load_sweep(d, ["problem.N", "problem.T", "train.algorithm", "train.stage1_steps"])
    sizes = runs[["problem.N", "problem.T"]].drop_duplicates().sort_values("problem.N").values
    fig, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3.6), sharey=True, squeeze=False)
    for ax, (N, T) in zip(axes[0], sizes):
        at = (runs["problem.N"] == N) & (runs["problem.T"] == T)
        row = runs[at].iloc[0]
        for alg in ["sgd", "proximal"]:
            ids, bad = ok_ids(runs, at & (runs["train.algorithm"] == alg))
            lab = f"{alg} (n={len(ids)}" + (f", {bad} diverged)" if bad else ")")
            f = band(ax, curves, ids, "step", "dist_A_norm", COLORS[alg], lab)
            print(f"02 N={N} T={T} {alg}: final median dist_A_norm = {f:.4f}")
        ax.axvline(row["train.stage1_steps"], color="gray", ls=":", lw=1)
        ax.set_title(f"N={N}, T={T}, Q={row['problem.Q']}\nlr_A={row['train.lr_A']:g}, λ={row['train.lambda']:g}",
                     fontsize=9)
        ax.set_xlabel("step (dotted: proximal stage starts)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("dist_A_norm")
    finish(fig, path, "02: scaling in N and T, B=64 (median, band = min-max over 3 seeds)")


def exp03(d, path):
    _, runs, curves = load_sweep(d, ["problem.N", "problem.T", "train.noise", "train.batch_size"])
    runs = runs.copy()
    if "train.lr_A" not in runs.columns:
        runs["train.lr_A"] = load_sweep(d, ["train.lr_A"])[1]["train.lr_A"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    variants = runs[["train.noise", "train.lr_A"]].drop_duplicates().sort_values(["train.noise", "train.lr_A"]).values
    styles = ["-", "--", ":", "-."]
    for N, color in zip(sorted(runs["problem.N"].unique()), ["tab:purple", "tab:orange", "tab:olive"]):
        first = curves[curves["run_id"].isin(runs.loc[runs["problem.N"] == N, "run_id"]) & (curves["step"] == 0)]
        d0 = {y: float(first[y].iloc[0]) for y in ["dist_A_norm", "dist_V_norm"]}
        for (noise, lr), ls in zip(variants, styles):
            at = (runs["problem.N"] == N) & (runs["train.noise"] == noise) & (runs["train.lr_A"] == lr)
            ids, bad = ok_ids(runs, at)
            steps = runs.loc[at & (runs["status"] != "ok"), "diverged_step"]
            lab = (f"N={N}, noise={noise:g}, lr_A={lr:g} (n={len(ids)}"
                   + (f", {bad} diverged at step {int(steps.min())}-{int(steps.max())})" if bad else ")"))
            for ax, y in zip(axes, ["dist_A_norm", "dist_V_norm"]):
                cv = curves[curves["run_id"].isin(list(ids))].copy()
                cv[y] = cv[y] / d0[y]
                f = band(ax, cv, ids, "step", y, color, lab, ls)
                print(f"03 N={N} noise={noise:g} lr_A={lr:g}: final median {y} = {f * d0[y]:.4f} "
                      f"(start {d0[y]:.4f}); {bad} diverged")
    T = int(runs["problem.T"].iloc[0])
    for ax, y in zip(axes, ["dist_A_norm", "dist_V_norm"]):
        ax.set_xlabel("step (proximal steps from 100)")
        ax.set_ylabel(f"{y} / its value at step 0")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    finish(fig, path, f"03: population gradient (+ Gaussian noise), T={T:,}, B={int(runs['train.batch_size'].iloc[0])}")


def exp03b(d, path):
    _, runs, curves = load_sweep(d, ["train.algorithm", "train.noise", "problem.seed", "train.stage1_steps",
                                     "train.steps"])
    panels = [("with the proximal stage", lambda r: (r["train.algorithm"] == "proximal") |
               ((r["train.algorithm"] == "population") & (r["train.stage1_steps"] < r["train.steps"]))),
              ("without thresholding (SGD)", lambda r: (r["train.algorithm"] == "sgd") |
               ((r["train.algorithm"] == "population") & (r["train.stage1_steps"] >= r["train.steps"])))]
    panels = [p for p in panels if p[1](runs).any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.9), sharey=True, squeeze=False)
    for ax, (title, pick) in zip(axes[0], panels):
        sub = runs[pick(runs)]
        sub = sub.assign(noisy=sub["train.noise"] > 0)
        for (alg, noisy), grp in sub.groupby(["train.algorithm", "noisy"]):
            noise = 1.0 if noisy else 0.0
            levels = sorted(grp["train.noise"].unique())
            if alg != "population":
                name, color = f"sampled {alg} (real minibatches)", COLORS[alg]
            elif noisy:
                span = f"{levels[0]:g}" if len(levels) == 1 else f"{levels[0]:g}-{levels[-1]:g}"
                name, color = f"population + matched noise ({span})", "tab:green"
            else:
                name, color = "population, noiseless", "black"
            ids, bad = ok_ids(sub, sub["run_id"].isin(grp["run_id"]))
            lab = f"{name} (n={len(ids)})" + (f", {bad} diverged" if bad else "")
            f = band(ax, curves, ids, "step", "dist_A_norm", color, lab, "--" if (alg == "population" and noise == 0) else "-")
            fin = grp.loc[grp["status"] == "ok", "dist_A_norm"]
            print(f"03b {title}: {name}: final dist_A_norm median {f:.4f} (seeds: "
                  + ", ".join(f"{v:.3f}" for v in fin) + ")")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.02)  # a noiseless proximal run reaches exactly 0 (off the log axis)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("dist_A_norm")
    nseeds = runs["problem.seed"].nunique()
    finish(fig, path, f"03b: simulated (population + noise) vs real SGD, N=3, T=100, B=64 "
                      f"(median, band = min-max over {nseeds} problem seeds)")


def exp04(d, path):
    rhos = sorted([x[3:] for x in os.listdir(d) if x.startswith("rho")], key=float, reverse=True)
    fig, axes = plt.subplots(1, len(rhos), figsize=(4 * len(rhos), 3.6), sharey=True, squeeze=False)
    for ax, rho in zip(axes[0], rhos):
        rows = []
        for kind, color in [("scratch", "tab:blue"), ("tuned", "tab:red")]:
            frames, bad, reach = [], 0, []
            for seed in sorted(os.listdir(os.path.join(d, f"rho{rho}"))):
                rd = os.path.join(d, f"rho{rho}", seed, kind)
                with open(os.path.join(rd, "summary.json")) as f:
                    s = json.load(f)
                c = pd.read_csv(os.path.join(rd, "curves.csv"))
                hit = c.loc[c["dist_A_norm"] <= 0.3, "samples"]
                reach.append(int(hit.iloc[0]) if len(hit) else None)
                if s["status"] != "ok":
                    bad += 1
                    continue
                c["run_id"] = seed
                frames.append(c)
            cv = pd.concat(frames) if frames else pd.DataFrame(columns=["run_id"])
            label = {"scratch": "from scratch", "tuned": "pretrained V, stage1=0"}[kind]
            lab = f"{label} (n={len(frames)}" + (f", {bad} diverged)" if bad else ")")
            f = band(ax, cv, cv["run_id"].unique(), "samples", "dist_A_norm", color, lab)
            print(f"04 rho={rho} {kind}: final median dist_A_norm = {f:.4f}; samples to reach 0.3 per seed: {reach}")
        ax.axhline(0.3, color="gray", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"downstream P correlated with pretraining P: ρ={rho}", fontsize=9)
        ax.set_xlabel("samples")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("dist_A_norm")
    finish(fig, path, "04: transfer from a correlated task vs from scratch, N=3, T=100 (median, band = min-max over 3 seeds)")


def exp05(d, path):
    _, runs, curves = load_sweep(d, ["model.attention", "train.algorithm", "train.lr_A"])
    variants = runs[["model.attention", "train.algorithm", "train.lr_A"]].drop_duplicates().values
    fig = plt.figure(figsize=(4 * (len(variants) + 1), 7))
    gs = fig.add_gridspec(2, len(variants) + 1, height_ratios=[1, 1.2])
    ax = fig.add_subplot(gs[0, :])
    colors = ["tab:blue", "tab:red", "tab:purple", "tab:green"]
    maps = []
    for (att, alg, lr), color in zip(variants, colors):
        at = (runs["model.attention"] == att) & (runs["train.algorithm"] == alg) & (runs["train.lr_A"] == lr)
        ids, bad = ok_ids(runs, at)
        name = f"{att} attention, {alg}, lr_A={lr:g}"
        f = band(ax, curves, ids, "step", "dist_A_norm", color, f"{name} (n={len(ids)})")
        print(f"05 {name}: final median dist_A_norm = {f:.4f}")
        # the run with the median final distance, when its parameters were saved
        sel = runs[at & (runs["status"] == "ok")].sort_values("dist_A_norm")
        saved = [r for r in sel["run_id"] if os.path.isdir(os.path.join(d, "runs", r))]
        if saved:
            rid = saved[len(saved) // 2]
            dist = float(sel.loc[sel["run_id"] == rid, "dist_A_norm"].iloc[0])
            maps.append((f"{att}, {alg}\n(dist_A_norm {dist:.3f})", np.load(os.path.join(d, "runs", rid, "A.npy")),
                         os.path.join(d, "runs", rid, "Q.npy")))
    ax.set_xlabel("step")
    ax.set_ylabel("dist_A_norm")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if maps:
        Q = np.load(maps[0][2])
        maps.append(("true Q", Q, None))
        vmax = max(float(M.max()) for _, M, _ in maps)
        for i, (title, M, _) in enumerate(maps[: len(variants) + 1]):
            im = heat(fig.add_subplot(gs[1, i]), M, title, min(0.0, float(M.min())), vmax)
        fig.colorbar(im, ax=fig.axes[-1])
    finish(fig, path, "05: softmax vs linear attention, N=3, T=100 (median, band = min-max over 3 seeds; "
                      "bottom: learned A of the median run)")


def exp06(d, path):
    _, runs, curves = load_sweep(d, ["train.algorithm", "train.batch_size"])
    batches = sorted(runs["train.batch_size"].unique())
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9), gridspec_kw={"width_ratios": [1, 1.2, 1.2]})
    ax = axes[0]
    for i, alg in enumerate(["sgd", "proximal"]):
        med, lo, hi, ndiv = [], [], [], []
        for b in batches:
            cell = runs[(runs["train.algorithm"] == alg) & (runs["train.batch_size"] == b)]
            ok = cell.loc[cell["status"] == "ok", "dist_A_norm"].astype(float)
            ndiv.append(int((cell["status"] != "ok").sum()))
            med.append(ok.median() if len(ok) else np.nan)
            lo.append(ok.min() if len(ok) else np.nan)
            hi.append(ok.max() if len(ok) else np.nan)
        x = np.arange(len(batches)) + (i - 0.5) * 0.12
        ax.errorbar(x, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], fmt="o-", color=COLORS[alg],
                    capsize=3, label=alg)
        for xi, n, m in zip(x, ndiv, med):
            if n:
                ax.annotate(f"{n}/{len(runs[(runs['train.algorithm'] == alg)]) // len(batches)} div",
                            (xi, 1.25 if np.isnan(m) else m), fontsize=7, color=COLORS[alg],
                            xytext=(0, 6 + 8 * i), textcoords="offset points", ha="center")
        print(f"06 {alg}: final median dist_A_norm by B: " +
              ", ".join(f"B={b}: {m:.3f} ({n} diverged)" for b, m, n in zip(batches, med, ndiv)))
    ax.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax.set_xlabel("batch size B")
    ax.set_ylabel("final dist_A_norm (ok runs)")
    ax.set_ylim(0, 1.4)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("final distance; 'div' = diverged runs", fontsize=9)
    cmap = plt.cm.viridis(np.linspace(0, 0.9, len(batches)))
    for ax, alg in zip(axes[1:], ["sgd", "proximal"]):
        for color, b in zip(cmap, batches):
            ids, bad = ok_ids(runs, (runs["train.algorithm"] == alg) & (runs["train.batch_size"] == b))
            if len(ids):
                band(ax, curves, ids, "samples", "dist_A_norm", color, f"B={b} (n={len(ids)})")
        ax.set_xscale("log")
        ax.set_xlabel("samples")
        ax.set_ylabel("dist_A_norm")
        ax.set_title(alg, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    finish(fig, path, "06: batch size, N=3, T=100, 16,000 steps (median, bar/band = min-max over 3 seeds)")


def exp03c(d, path):
    """Real proximal SGD against population + matched Gaussian noise on a ladder of (N, T), and the
    noise-level probe at T = 1,000 (configs/paper/03c_gaussian_ladder.sh; d is its OUT)."""
    import scaling
    _, runs, curves = load_sweep(os.path.join(d, "sweep"), ["problem.N", "problem.T", "train.algorithm"])
    table = scaling.crossings(os.path.join(d, "sweep"), 0.3)
    reach = scaling.group_estimates(table, ["problem.N", "problem.T", "train.algorithm"])
    sizes = sorted({(int(n), int(t)) for n, t in zip(runs["problem.N"], runs["problem.T"])})
    cols = (len(sizes) + 2) // 2
    fig, grid = plt.subplots(2, cols, figsize=(4.6 * cols, 7.4))
    axes = list(grid.ravel())
    for ax, (N, T) in zip(axes, sizes):
        for alg, label in (("proximal", "real minibatches"), ("population", "population + matched noise")):
            cell = (runs["problem.N"] == N) & (runs["problem.T"] == T) & (runs["train.algorithm"] == alg)
            ids, _ = ok_ids(runs, cell)
            final = band(ax, curves, ids, "samples", "dist_A_norm", COLORS[alg], label)
            r = reach[(reach["problem.N"] == N) & (reach["problem.T"] == T) & (reach["train.algorithm"] == alg)].iloc[0]
            print(f"03c N={N} T={T} {alg}: final median dist_A_norm {final:.3f}; samples to 0.3 "
                  f"{'>= ' if r['lower_bound'] else ''}{r['median']:,.0f} ({r['n_reached']}/{r['n']} reached)")
        ax.set(xscale="log", yscale="log", xlabel="samples", title=f"N={N}, T={T}")
        ax.axhline(0.3, color="k", ls="--", lw=0.8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("dist_A_norm")
    axes[0].legend(fontsize=7)
    _, probe, pcurves = load_sweep(os.path.join(d, "probe"), ["train.noise", "train.precondition"])
    ax = axes[-1]
    levels = sorted(probe["train.noise"].unique())
    for pre, ls in ((True, "-"), (False, ":")):
        for color, level in zip(plt.cm.viridis(np.linspace(0, 0.85, len(levels))), levels):
            ids, _ = ok_ids(probe, (probe["train.noise"] == level) & (probe["train.precondition"] == pre))
            final = band(ax, pcurves, ids, "samples", "dist_A_norm", color,
                         f"noise {level:g}{'' if pre else ', no precond.'}", ls=ls)
            print(f"03c probe N=3 T=1000 noise={level:g} precondition={pre}: final median dist_A_norm {final:.3f}")
    ax.set(xscale="log", xlabel="samples", title="N=3, T=1000: simulation by noise level")
    ax.set_ylim(bottom=1e-3)
    ax.set_yscale("symlog", linthresh=1e-2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    finish(fig, path, "03c: real minibatch SGD against the population gradient + Gaussian noise at the matched level "
                      "(proximal, lr_A = 2/T, lambda 0.01; median, band = min-max over 4 seeds)")


def exp08d(d, path):
    """Plain SGD's floor: the best dist_A_norm a run reaches, against lr_A, per (T, N) point."""
    _, runs, _ = load_sweep(d, ["problem.T", "problem.N", "train.lr_A"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    cells = runs.groupby(["problem.T", "problem.N", "train.lr_A"])["best_dist_A_norm"].median().reset_index()
    for ax, (name, fixed, other) in zip(axes, (("problem.T", 3, "problem.N"), ("problem.N", 100, "problem.T"))):
        part = cells[cells[other] == fixed]
        values = sorted(part[name].unique())
        for color, v in zip(plt.cm.viridis(np.linspace(0, 0.9, len(values))), values):
            row = part[part[name] == v].sort_values("train.lr_A")
            ax.plot(row["train.lr_A"], row["best_dist_A_norm"], "o-", color=color, label=f"{name.split('.')[1]}={v}")
            best = row.loc[row["best_dist_A_norm"].idxmin()]
            print(f"08d {name}={v} ({other}={fixed}): lowest median best_dist_A_norm {best['best_dist_A_norm']:.3f} "
                  f"at lr_A={best['train.lr_A']:g}")
        ax.axhline(0.3, color="k", ls="--", lw=0.8)
        ax.set(xscale="log", xlabel="lr_A", ylabel="median best dist_A_norm (8,000 steps)",
               title=f"against {name.split('.')[1]} at {other.split('.')[1]} = {fixed}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    finish(fig, path, "08d: plain SGD never reaches 0.3 (dashed) at any lr_A: its floor grows with T and N "
                      "(median over 4 seeds)")


def exp07i(d, path):
    """07i: the second stage at lr_A 2e-5 and the third at 1e-5, each from the last one's state, on
    one axis of total samples, beside 07g's constant-lr_A run (docs/results/07g_curve.csv)."""
    here = os.path.dirname(os.path.abspath(__file__))
    stages, offset = [], 0
    for name, label, color in (("stage1", "stage 1: plain SGD", "tab:blue"),
                               ("stage2", "stage 2: proximal, lr_A 2e-5, lr_V 0.1", "tab:red"),
                               ("stage3", "stage 3: proximal, lr_A 1e-5 (seed 2)", "tab:purple"),
                               ("stage3_control", "stage 3's control: lr_A 2e-5 (seed 2)", "tab:orange")):
        f = os.path.join(d, name, "curves.csv")
        if not os.path.exists(f):
            continue
        cv = pd.read_csv(f, dtype={"run_id": str})
        if cv.empty:  # a sweep still running writes its curve when its run ends
            continue
        stages.append((cv, offset, label, color))
        if name in ("stage1", "stage2"):  # stage 3 and its control both start from stage 2's state
            offset += int(cv["samples"].max())
    ref = pd.read_csv(os.path.join(here, "..", "docs", "results", "07g_curve.csv"), dtype={"run_id": str})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, zoom in zip(axes, (False, True)):
        ax.plot(ref["samples"] / 1e6, ref["dist_A_norm"], color="0.6", lw=1.2, label="07g: lr_A 2e-5, lr_V 1 throughout")
        for cv, off, label, color in stages:
            ax.plot((cv["samples"] + off) / 1e6, cv["dist_A_norm"], color=color, label=label)
        ax.axhline(0.3, color="k", ls="--", lw=0.8)
        ax.set(xlabel="samples (millions)", ylabel="dist_A_norm", yscale="log")
        if zoom:
            ax.set(xlim=(12.5, None), ylim=(0.15, 5), title="after the first stage")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    for cv, off, label, _ in stages:
        last = cv.iloc[-1]
        print(f"07i {label}: {int(last['step'])} steps, {(last['samples'] + off) / 1e6:.2f} M samples in all, "
              f"dist_A_norm {last['dist_A_norm']:.4f} (best {cv['dist_A_norm'].min():.4f}), "
              f"dist_V_norm {last['dist_V_norm']:.3f}")
    finish(fig, path, "07i: N = 100, T = 100,000, B = 64; does a smaller lr_A break the floor of a constant one?")


def exp07j(d, path):
    """07j: the floor of 07g at a tenth of the context: B = 64 against B = 256 at the same lr_A."""
    _, runs, curves = load_sweep(d, ["train.batch_size", "train.stage1_steps"])
    miles = pd.read_csv(os.path.join(d, "milestones.csv"), dtype={"run_id": str})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for B, color in ((64, "tab:blue"), (256, "tab:red")):
        ids, bad = ok_ids(runs, runs["train.batch_size"] == B)
        stage1 = int(runs.loc[runs["train.batch_size"] == B, "train.stage1_steps"].iloc[0])
        for ax, x in zip(axes, ("samples", "step")):
            label = f"B = {B} (n={len(ids)}{f', {bad} diverged' if bad else ''}), first stage {stage1:,} steps"
            band(ax, curves.assign(samples=curves["samples"] / 1e6), ids, x, "dist_A_norm", color, label)
        for rid in ids:
            cv = curves[curves["run_id"] == rid]
            last = cv.iloc[-1]
            m = miles[miles["run_id"] == rid].set_index(["metric", "threshold"], drop=False)
            cross = {t: m.loc[("dist_A_norm", t), "samples"] for t in (0.5, 0.3, 0.1) if ("dist_A_norm", t) in m.index}
            sup = miles[(miles["run_id"] == rid) & (miles["metric"] == "support_recovered")]["step"]
            print(f"07j B={B} {rid}: {int(last['step'])} steps, {last['samples'] / 1e6:.2f} M samples, dist_A_norm "
                  f"{last['dist_A_norm']:.4f} (best {cv['dist_A_norm'].min():.4f}), dist_V_norm {last['dist_V_norm']:.3f}, "
                  f"nnz_A {int(last['nnz_A']):,}; samples to 0.5/0.3/0.1: "
                  + " / ".join("never" if pd.isna(v) else f"{v / 1e6:.2f} M" for v in cross.values())
                  + f"; support at step {'never' if sup.isna().all() else int(sup.iloc[0])}")
    for ax, x in zip(axes, ("samples (millions)", "steps")):
        ax.axhline(0.3, color="k", ls="--", lw=0.8)
        ax.set(xlabel=x, ylabel="dist_A_norm", yscale="log", ylim=(0.05, 6))
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    finish(fig, path, "07j: N = 100, T = 10,000, lr_A = 2/T, lambda 0.01: four times the batch at the same lr_A "
                      "(median of 2 seeds)")


def exp07k(d, path):
    """07k: the second stage at N = 100, T = 10,000 against lambda, from one first stage (07j's
    B = 64 replicate 0, whose curve docs/results/07j_curves.csv holds, is lambda 0.01)."""
    here = os.path.dirname(os.path.abspath(__file__))
    _, runs, curves = load_sweep(d, ["train.lambda"])
    ref_runs = pd.read_csv(os.path.join(here, "..", "docs", "results", "07j_runs.csv"), dtype={"run_id": str})
    ref_id = ref_runs[(ref_runs["train.batch_size"] == 64) & (ref_runs["replicate"] == 0)]["run_id"].iloc[0]
    ref = pd.read_csv(os.path.join(here, "..", "docs", "results", "07j_curves.csv"), dtype={"run_id": str})
    lines = [(float(r["train.lambda"]), curves[curves["run_id"] == r["run_id"]]) for _, r in runs.iterrows()]
    lines.append((0.01, ref[ref["run_id"] == ref_id]))
    lines.sort(key=lambda x: x[0])
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for color, (lam, cv) in zip(plt.cm.viridis(np.linspace(0, 0.9, len(lines))), lines):
        cv = cv[cv["step"] >= 80000]
        ax.plot(cv["step"] - 80000, cv["dist_A_norm"], color=color, label=f"lambda {lam:g}")
        best = cv.loc[cv["dist_A_norm"].idxmin()]
        print(f"07k lambda={lam:g}: best dist_A_norm {best['dist_A_norm']:.4f} at stage-2 step {int(best['step']) - 80000:,}, "
              f"{cv['dist_A_norm'].iloc[-1]:.4f} at {int(cv['step'].iloc[-1]) - 80000:,}, nnz_A {int(cv['nnz_A'].iloc[-1]):,}")
    ax.axhline(0.3, color="k", ls="--", lw=0.8)
    ax.set(xlabel="proximal steps after the first stage (80,000 plain-SGD steps)", ylabel="dist_A_norm", yscale="log",
           ylim=(0.15, 5))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    finish(fig, path, "07k: N = 100, T = 10,000, B = 64, lr_A = 2/T: the second stage against lambda")


def against_07g(d, path, label, title, plateau=False):
    """The run of sweep d against 07g (real SGD at lr_A = 2e-5, 07d's schedule to 340,000 steps,
    docs/results/07g_curve.csv): dist_A_norm and dist_V_norm against samples, support recovery
    dotted; prints each curve's end, best, support and threshold crossings. plateau: a third panel
    of the progress on the plateau, dist_A_norm at step 0 minus dist_A_norm (symlog: it starts
    negative where A first drifts away)."""
    here = os.path.dirname(os.path.abspath(__file__))
    _, runs, curves = load_sweep(d)
    miles = pd.read_csv(os.path.join(d, "milestones.csv"), dtype={"run_id": str})
    ref = pd.read_csv(os.path.join(here, "..", "docs", "results", "07g_curve.csv"), dtype={"run_id": str})
    ref_miles = pd.read_csv(os.path.join(here, "..", "docs", "results", "07g_milestones.csv"), dtype={"run_id": str})
    fig, axes = plt.subplots(1, 3 if plateau else 2, figsize=(18 if plateau else 12, 4.2))
    for cv, m, color, name in ((ref, ref_miles, "tab:blue", "07g: real SGD, lr_A = 2e-5"),
                               (curves, miles, "tab:red", label)):
        x = cv["samples"] / 1e6
        axes[0].plot(x, cv["dist_A_norm"], color=color, label=name)
        axes[1].plot(x, cv["dist_V_norm"], color=color, label=name)
        if plateau:
            axes[2].plot(x, cv["dist_A_norm"].iloc[0] - cv["dist_A_norm"], color=color, label=name)
        sup = m[m["metric"] == "support_recovered"]["samples"].dropna()
        if not sup.empty:
            axes[0].axvline(sup.iloc[0] / 1e6, color=color, ls=":", lw=0.9)
        cross = {t: m[(m["metric"] == "dist_A_norm") & (m["threshold"] == t)]["samples"].dropna() for t in (0.5, 0.3, 0.1)}
        best = cv.loc[cv["dist_A_norm"].idxmin()]
        print(f"{name}: {int(cv['step'].iloc[-1]):,} steps, dist_A_norm {cv['dist_A_norm'].iloc[-1]:.4f} (best "
              f"{best['dist_A_norm']:.4f} at step {int(best['step']):,}), dist_V_norm {cv['dist_V_norm'].iloc[-1]:.3f}, "
              f"nnz_A {int(cv['nnz_A'].iloc[-1]):,}; support at {'never' if sup.empty else f'{sup.iloc[0] / 1e6:.2f} M'} "
              "samples; to 0.5/0.3/0.1: " + " / ".join("never" if v.empty else f"{v.iloc[0] / 1e6:.2f} M" for v in cross.values()))
    axes[0].axhline(0.3, color="k", ls="--", lw=0.8)
    axes[0].set(xlabel="samples (millions); dotted: support recovered", ylabel="dist_A_norm", yscale="log", ylim=(0.1, 6))
    axes[1].set(xlabel="samples (millions)", ylabel="dist_V_norm")
    if plateau:
        axes[2].set(xlabel="samples (millions)", ylabel="dist_A_norm(0) - dist_A_norm", yscale="symlog",
                    title="progress on the plateau")
        axes[2].set_yscale("symlog", linthresh=1e-5)
    for ax in axes:
        ax.axvline(12.8, color="gray", lw=0.8)  # the end of the first stage: 200,000 steps of B = 64
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    finish(fig, path, title)


def exp07m(d, path):
    """07m: 07d's schedule at half the step (lr_A = 1e-5) at N = 100, T = 100,000, against 07g."""
    against_07g(d, path, "07m: lr_A = 1e-5",
                "07m: N = 100, T = 100,000, B = 64, lambda 0.01: the step halved (first stage 200,000 steps)")


def exp07s(d, path):
    """07s: the population-plus-noise simulation at the noise of B = 64 on the plateau (07d's
    schedule and step), against real SGD (07g; a simulated step counts B = 64 samples)."""
    against_07g(d, path, "07s: population + matched noise",
                "07s: N = 100, T = 100,000, lr_A = 2e-5: real minibatch SGD against its Gaussian simulation",
                plateau=True)


EXPERIMENTS = {"01_l1_vs_sgd": exp01, "02_scaling_N_T": exp02, "03_population_large": exp03,
               "03b_population_vs_sampled": exp03b, "04_transfer": exp04, "05_softmax_vs_linear": exp05,
               "06_batch_size": exp06, "03c_gaussian_ladder": exp03c, "08d_sgd_tuned": exp08d,
               "07i_lr_steps": exp07i, "07j_batch_floor": exp07j,
               "07k_lambda_at_1e4": exp07k, "07m_half_step": exp07m, "07s_population_matched": exp07s}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=sorted(EXPERIMENTS))
    ap.add_argument("out_dir")
    ap.add_argument("--img", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img",
                                                  "results"))
    a = ap.parse_args()
    os.makedirs(a.img, exist_ok=True)
    EXPERIMENTS[a.experiment](a.out_dir, os.path.join(os.path.normpath(a.img), a.experiment + ".png"))


if __name__ == "__main__":
    main()
