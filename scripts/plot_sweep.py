#!/usr/bin/python3
"""Pictures of an `scb sweep` directory (manifest.json, runs.csv, curves.csv, runs/<run_id>/).

    /usr/bin/python3 scripts/plot_sweep.py OUT_DIR [--plots DIR] [--run RUN_ID] [--lambda X]

writes into OUT_DIR/plots (or --plots):
  heatmap.png  final dist_A_norm over (train.lambda, train.batch_size): the median over
               replicates in each cell, with the interquartile range and diverged runs noted;
               one row per (algorithm, lambda).
  curves.png   dist_A_norm and dist_V_norm against samples, plain SGD next to l1 (proximal),
               one line per batch size (median over replicates, IQR band); the proximal panel
               uses the lambda with the lowest median final dist_A_norm (or --lambda).
  params.png   learned A next to the true Q (and V next to P) for one run with saved
               parameters: --run, else the best proximal run (scb sweep saves the best run of
               each algorithm by default; --save-params all saves every run).
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

KEYS = ["train.algorithm", "train.lambda", "train.batch_size"]


def dotted(doc, key):
    for part in key.split("."):
        doc = doc[part]
    return doc


def load(sweep_dir):
    with open(os.path.join(sweep_dir, "manifest.json")) as f:
        manifest = json.load(f)
    runs = pd.read_csv(os.path.join(sweep_dir, "runs.csv"), dtype={"run_id": str})
    curves = pd.read_csv(os.path.join(sweep_dir, "curves.csv"), dtype={"run_id": str})
    # Keys that are not axes come from the resolved base config.
    for key in KEYS:
        if key not in runs.columns:
            runs[key] = dotted(manifest["base"], key)
    runs["train.lambda"] = runs["train.lambda"].astype(float)
    runs["train.batch_size"] = runs["train.batch_size"].astype(int)
    return manifest, runs, curves


def row_label(alg, lam, lambdas_of_alg):
    if alg == "sgd" and len(lambdas_of_alg) == 1:
        return "sgd"
    return f"{alg}  λ={lam:g}"


def plot_heatmap(runs, path):
    rows = []
    for alg in sorted(runs["train.algorithm"].unique(), key=lambda a: (a != "sgd", a)):
        lams = sorted(runs.loc[runs["train.algorithm"] == alg, "train.lambda"].unique())
        rows += [(alg, lam, row_label(alg, lam, lams)) for lam in lams]
    batches = sorted(runs["train.batch_size"].unique())
    med = np.full((len(rows), len(batches)), np.nan)
    text = [["" for _ in batches] for _ in rows]
    for i, (alg, lam, _) in enumerate(rows):
        for j, b in enumerate(batches):
            cell = runs[(runs["train.algorithm"] == alg) & (runs["train.lambda"] == lam) & (runs["train.batch_size"] == b)]
            ok = cell.loc[cell["status"] == "ok", "dist_A_norm"].astype(float)
            ok = ok[np.isfinite(ok)]
            n_div = int((cell["status"] == "diverged").sum())
            if len(ok):
                q1, m, q3 = np.percentile(ok, [25, 50, 75])
                med[i, j] = m
                text[i][j] = f"{m:.3f}\nIQR {q3 - q1:.3f}\nn={len(ok)}"
            if n_div:
                text[i][j] += f"\n{n_div} diverged"
    fig, ax = plt.subplots(figsize=(1.9 * len(batches) + 3, 0.9 * len(rows) + 1.6))
    im = ax.imshow(med, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax.set_yticks(range(len(rows)), [r[2] for r in rows])
    ax.set_xlabel("train.batch_size")
    ax.set_ylabel("train.algorithm, train.lambda")
    finite = med[np.isfinite(med)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(len(rows)):
        for j in range(len(batches)):
            dark = np.isfinite(med[i, j]) and med[i, j] > mid
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=8, color="white" if dark else "black")
    fig.colorbar(im, ax=ax, label="final dist_A_norm (median over replicates)")
    ax.set_title("Final normalised distance to Q")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def best_lambda(runs, alg):
    sub = runs[(runs["train.algorithm"] == alg) & (runs["status"] == "ok")]
    if sub.empty:
        return None
    return sub.groupby("train.lambda")["dist_A_norm"].median().idxmin()


def plot_curves(runs, curves, path, lam_choice):
    algs = [a for a in ["sgd", "proximal"] if a in set(runs["train.algorithm"])]
    algs += [a for a in sorted(runs["train.algorithm"].unique()) if a not in algs]
    batches = sorted(runs["train.batch_size"].unique())
    colors = plt.cm.plasma(np.linspace(0.05, 0.8, max(1, len(batches))))
    fig, axes = plt.subplots(2, len(algs), figsize=(5.5 * len(algs), 7.5), squeeze=False, sharey="row")
    for c, alg in enumerate(algs):
        lam = lam_choice if (lam_choice is not None and alg != "sgd") else best_lambda(runs, alg)
        sel = runs[(runs["train.algorithm"] == alg) & (runs["status"] == "ok")]
        if lam is not None:
            sel = sel[np.isclose(sel["train.lambda"], lam)]
        for color, b in zip(colors, batches):
            ids = sel.loc[sel["train.batch_size"] == b, "run_id"]
            cv = curves[curves["run_id"].isin(ids)]
            if cv.empty:
                continue
            for r, metric in enumerate(["dist_A_norm", "dist_V_norm"]):
                g = cv.groupby("samples")[metric]
                x = g.median().index.values
                axes[r][c].plot(x, g.median().values, color=color, label=f"B={b} (n={len(ids)})")
                axes[r][c].fill_between(x, g.quantile(0.25).values, g.quantile(0.75).values, color=color, alpha=0.2)
        title = alg if alg == "sgd" or lam is None else f"{alg}, λ={lam:g}"
        axes[0][c].set_title(title)
        for r, metric in enumerate(["dist_A_norm", "dist_V_norm"]):
            axes[r][c].set_xscale("log")
            axes[r][c].set_xlabel("samples")
            axes[r][c].set_ylabel(metric)
            axes[r][c].grid(alpha=0.3)
        axes[0][c].legend(fontsize=8)
    fig.suptitle("Training curves: median over replicates, band = interquartile range")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def choose_run(sweep_dir, runs, wanted):
    saved = set(os.listdir(os.path.join(sweep_dir, "runs"))) if os.path.isdir(os.path.join(sweep_dir, "runs")) else set()
    if wanted:
        if wanted not in saved:
            sys.exit(f"plot_sweep: --run {wanted}: no runs/{wanted}/ in {sweep_dir} (sweep with --save-params all)")
        return wanted
    cand = runs[runs["run_id"].isin(saved) & (runs["status"] == "ok")].copy()
    if cand.empty:
        return None
    cand["pref"] = (cand["train.algorithm"] != "proximal").astype(int)
    return cand.sort_values(["pref", "dist_A_norm"]).iloc[0]["run_id"]


def plot_params(sweep_dir, runs, run_id, path):
    d = os.path.join(sweep_dir, "runs", run_id)
    A, Q = np.load(os.path.join(d, "A.npy")), np.load(os.path.join(d, "Q.npy"))  # T x N
    V, P = np.load(os.path.join(d, "V.npy")), np.load(os.path.join(d, "P.npy"))  # N x N
    row = runs[runs["run_id"] == run_id].iloc[0]
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.8), gridspec_kw={"width_ratios": [1, 1, 1, 1]})
    vmax = max(float(np.abs(A).max()), float(Q.max()))
    for ax, M, name in [(axes[0], A, "learned A (T x N)"), (axes[1], Q, "true Q (T x N)")]:
        im = ax.imshow(M, aspect="auto", cmap="magma", vmin=min(0.0, float(A.min())), vmax=vmax, interpolation="nearest")
        ax.set_title(name)
        ax.set_xticks(range(M.shape[1]))
        ax.set_xlabel("query token k")
        ax.set_ylabel("position t")
    fig.colorbar(im, ax=axes[1])
    vmax = max(float(np.abs(V).max()), float(P.max()))
    for ax, M, name in [(axes[2], V, "learned V"), (axes[3], P, "true P")]:
        im = ax.imshow(M, cmap="magma", vmin=min(0.0, float(V.min())), vmax=vmax)
        ax.set_xticks(range(M.shape[1]))
        ax.set_yticks(range(M.shape[0]))
        ax.set_xlabel("current token j")
        ax.set_ylabel("next token i")
        ax.set_title(name)
    fig.colorbar(im, ax=axes[3])
    fig.suptitle(f"run {run_id}: {row['train.algorithm']}, λ={row['train.lambda']:g}, B={row['train.batch_size']}, "
                 f"final dist_A_norm {row['dist_A_norm']:.3f}, dist_V_norm {row['dist_V_norm']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep_dir")
    ap.add_argument("--plots", help="output directory (default SWEEP_DIR/plots)")
    ap.add_argument("--run", help="run_id for params.png (needs runs/<run_id>/)")
    ap.add_argument("--lambda", dest="lam", type=float, help="lambda of the proximal curves (default: the best)")
    a = ap.parse_args()
    manifest, runs, curves = load(a.sweep_dir)
    if runs.empty:
        sys.exit(f"plot_sweep: {a.sweep_dir}/runs.csv has no finished runs yet")
    out = a.plots or os.path.join(a.sweep_dir, "plots")
    os.makedirs(out, exist_ok=True)
    written = []
    plot_heatmap(runs, os.path.join(out, "heatmap.png"))
    written.append("heatmap.png")
    plot_curves(runs, curves, os.path.join(out, "curves.png"), a.lam)
    written.append("curves.png")
    run_id = choose_run(a.sweep_dir, runs, a.run)
    if run_id:
        plot_params(a.sweep_dir, runs, run_id, os.path.join(out, "params.png"))
        written.append(f"params.png (run {run_id})")
    else:
        print("plot_sweep: no saved parameters (runs/<run_id>/A.npy); params.png skipped", file=sys.stderr)
    print(f"plot_sweep: {len(runs)} runs of sweep {manifest.get('sweep_id', '?')} -> {out}: {', '.join(written)}")


if __name__ == "__main__":
    main()
