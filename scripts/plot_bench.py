#!/usr/bin/python3
"""Plots the JSON of `scb bench --json FILE` (one or more files, concatenated).

  /usr/bin/python3 scripts/plot_bench.py bench/results/cpu.json -o bench/results/cpu.png

Panels: sample-tokens/s against T (one line per N and B, pack of 1, all threads); seconds per
step against T and against B (linear scaling shows as slope 1 on the log-log axes); seconds per
step against N at fixed T; the fraction of the token-drawing limit; engine/peer when the file has
peer figures. Needs Debian's python3-matplotlib and python3-pandas.

  /usr/bin/python3 scripts/plot_bench.py bench/results/sweeps.json --sections -o bench/results/sweeps.png

--sections plots the `scb bench --sweeps` and `--contention` records instead: runs/s of each sweep
beside the PyTorch peer's, each sweep as a fraction of the token-drawing limit on all cores, and
the default and the fixed all-core thread counts against one thread, idle and beside a busy process.
"""
import argparse
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for r in doc.get("results", []):
            if r.get("status") not in ("ok", "diverged"):
                continue
            e, lim = r["engine"], r["limit"]
            row = {k: r[k] for k in ("N", "T", "B", "pack", "threads", "device", "stage")}
            row["run"] = r.get("run", 0)
            row["load"] = (r.get("load_average") or [float("nan")])[-1]
            row.update(step_s=e["step_seconds_median"], tok_s=e["sample_tokens_per_s"],
                       steps_s=e["steps_per_s"], lim1=lim["tokens_per_s_1thread"],
                       limA=lim["tokens_per_s_all_threads"], frac1=r["fraction_of_limit_1thread"],
                       fracA=r["fraction_of_limit_all_threads"], file=path)
            peer = r.get("peer") or {}
            row["peer_tok_s"] = peer.get("sample_tokens_per_s")
            row["peer_malloc_tuned"] = peer.get("malloc_tuned")
            row["ratio"] = r.get("engine_over_peer")
            if peer.get("malloc_tuned") is False:  # the peer with glibc's default malloc: shown in --table only
                row["ratio_plain_malloc"], row["ratio"], row["peer_tok_s"] = row["ratio"], None, None
            rows.append(row)
    return pd.DataFrame(rows)


def slope(x, y):
    """Least-squares slope of log y against log x (1 = linear)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(lx, ly, 1)[0]) if len(lx) > 1 else float("nan")


def print_table(df):
    def f(x, fmt):
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt % x
    print("| run | N | T | B | pack | thr | ms/step | Msample-tok/s | % 1-thr limit | % all-thr limit | peer Mtok/s | engine/peer | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for _, r in df.iterrows():
        plain = r.get("ratio_plain_malloc")
        plain = plain if plain is not None and plain == plain else None
        peer = r["peer_tok_s"] / 1e6 if r["peer_tok_s"] is not None and r["peer_tok_s"] == r["peer_tok_s"] else None
        tag = ""
        if plain is not None:
            r = r.copy()
            r["ratio"], tag = plain, " (peer with plain malloc)"
        print("| %d | %d | %d | %d | %d | %d | %.3f | %.1f | %.0f%% | %.0f%% | %s | %s | %.2f |" % (
            r["run"], r["N"], r["T"], r["B"], r["pack"], r["threads"], r["step_s"] * 1e3, r["tok_s"] / 1e6,
            100 * r["frac1"], 100 * r["fracA"], f(peer, "%.1f"), f(r["ratio"], "%.1fx") + tag, r["load"]))
    print()
    print("Scaling of seconds per step (log-log slopes; 1 = linear):")
    for key, over in (("T", ["N", "B", "pack", "threads"]), ("B", ["N", "T", "pack", "threads"]),
                      ("N", ["T", "B", "pack", "threads"]), ("pack", ["N", "T", "B", "threads"])):
        for vals, g in df.groupby(over):
            g = g.groupby(key, as_index=False)["step_s"].median()
            if len(g) > 1:
                desc = " ".join("%s=%s" % (k, v) for k, v in zip(over, vals))
                print("  vs %-4s at %-32s slope %.2f  (%s)" % (key, desc, slope(g[key], g["step_s"]),
                      ", ".join("%g: %.3g ms" % (a, b * 1e3) for a, b in zip(g[key], g["step_s"]))))


def plot_sections(paths, out):
    sweeps, contention = [], []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        sweeps += doc.get("sweeps", [])
        contention += doc.get("contention", [])
    if not sweeps and not contention:
        print("plot_bench: no --sweeps or --contention records in", " ".join(paths), file=sys.stderr)
        return 1
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    fig.suptitle("scb bench --sweeps --contention (medians; one run of the bench, side by side)")
    labels = ["N=%d T=%d R=%d" % (r["N"], r["T"], r["runs"]) for r in sweeps]
    y = np.arange(len(sweeps))
    ax = axes[0]
    ax.barh(y - 0.2, [r["runs_per_s"] for r in sweeps], height=0.4, label="engine")
    peer = [(r.get("peer") or {}).get("runs_per_s") or 0 for r in sweeps]
    ax.barh(y + 0.2, peer, height=0.4, label="PyTorch peer (--runs R)")
    for i, r in enumerate(sweeps):
        if r.get("engine_over_peer_runs_per_s"):
            ax.text(r["runs_per_s"], i - 0.2, " %.1fx" % r["engine_over_peer_runs_per_s"], va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set(xscale="log", xlabel="whole runs per second (16,000 steps)", title="sweeps: engine and peer")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.barh(y, [r["fraction_of_limit_all_threads"] for r in sweeps])
    ax.axvline(0.5, color="red", ls="--", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set(xlabel="sample-tokens/s / token-drawing limit on all cores", title="sweeps / limit (red: 50%)")
    ax = axes[2]
    clabels = ["%s N=%d T=%d R=%d" % ("+busy" if c.get("competing_process") else "no busy", c["N"], c["T"], c["runs"])
               for c in contention]
    cy = np.arange(len(contention))
    ax.barh(cy - 0.2, [c["default_over_one_thread"] for c in contention], height=0.4, label="default threads")
    ax.barh(cy + 0.2, [c["all_threads_fixed_over_one_thread"] for c in contention], height=0.4,
            label="all threads, fixed")
    ax.axvline(1.0, color="red", ls="--", lw=0.8)
    ax.set_yticks(cy)
    ax.set_yticklabels(clabels, fontsize=7)
    ax.set(xlabel="speed over --threads 1", title="contention (red: as fast as one thread)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    print("plot_bench: ->", out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+")
    ap.add_argument("-o", "--out", default="bench.png")
    ap.add_argument("--threads", type=int, default=0,
                    help="plot the figures measured with this many threads (default: 1 when present, else the most)")
    ap.add_argument("--table", action="store_true", help="print a Markdown table and the scaling slopes instead")
    ap.add_argument("--sections", action="store_true", help="plot the --sweeps and --contention records instead")
    args = ap.parse_args()
    if args.sections:
        return plot_sections(args.json, args.out)
    df = load(args.json)
    if df.empty:
        print("plot_bench: no measured configuration in", " ".join(args.json), file=sys.stderr)
        return 1
    if args.table:
        print_table(df)
        return 0
    thr = args.threads or (1 if (df["threads"] == 1).any() else df["threads"].max())
    keys = ["N", "T", "B", "pack", "threads"]
    # Repeated configurations (several runs in one file): the median of each figure.
    agg = df.groupby(keys, as_index=False).median(numeric_only=True)
    base = agg[agg["threads"] == thr].copy()
    base["lim"] = base["lim1"] if thr == 1 else base["limA"]
    base["frac"] = base["frac1"] if thr == 1 else base["fracA"]
    has_peer = base["ratio"].notna().any()
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    fig.suptitle("scb bench (%s, %d thread%s; medians over repetitions and runs)"
                 % (", ".join(sorted(df["device"].unique())), thr, "" if thr == 1 else "s"))

    ax = axes[0, 0]
    p1 = base[base["pack"] == base["pack"].min()]
    for (N, B), g in p1.groupby(["N", "B"]):
        g = g.sort_values("T")
        ax.plot(g["T"], g["tok_s"], marker="o", label="N=%d B=%d" % (N, B))
    for N, g in p1.groupby("N"):
        g = g.groupby("T", as_index=False)["lim"].median()
        ax.plot(g["T"], g["lim"], ls=":", color="grey")
    ax.set(xscale="log", yscale="log", xlabel="T", ylabel="sample-tokens/s",
           title="throughput, pack of %d (dotted: token-drawing limit)" % p1["pack"].min() if not p1.empty else "")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)

    ax = axes[0, 1]
    for (N, B, R), g in base.groupby(["N", "B", "pack"]):
        g = g.sort_values("T")
        if len(g) > 1:
            ax.plot(g["T"], g["step_s"], marker="o", label="N=%d B=%d pack=%d" % (N, B, R))
    ax.set(xscale="log", yscale="log", xlabel="T", ylabel="seconds per step", title="cost per step vs T (slope 1 = linear)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)

    ax = axes[0, 2]
    for (N, T, R), g in base.groupby(["N", "T", "pack"]):
        g = g.sort_values("B")
        if len(g) > 1:
            ax.plot(g["B"], g["step_s"], marker="o", label="N=%d T=%d pack=%d" % (N, T, R))
    ax.set(xscale="log", yscale="log", xlabel="B", ylabel="seconds per step", title="cost per step vs B")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)

    ax = axes[1, 0]
    for (T, B, R), g in base.groupby(["T", "B", "pack"]):
        g = g.sort_values("N")
        if len(g) > 1:
            ax.plot(g["N"], g["step_s"], marker="o", label="T=%d B=%d pack=%d" % (T, B, R))
    ax.set(xscale="log", yscale="log", xlabel="N", ylabel="seconds per step", title="cost per step vs N")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6)

    ax = axes[1, 1]
    labels = ["N=%d T=%d B=%d pack=%d" % tuple(x) for x in base[["N", "T", "B", "pack"]].values]
    ax.barh(range(len(base)), base["frac"])
    ax.set_yticks(range(len(base)))
    ax.set_yticklabels(labels, fontsize=5)
    ax.axvline(0.4, color="red", ls="--", lw=0.8)
    ax.set(xlabel="fraction of the %s token-drawing limit" % ("1-thread" if thr == 1 else "all-thread"),
           title="engine / limit (red: 40%)")

    ax = axes[1, 2]
    if has_peer:
        d = base[base["ratio"].notna()]
        labels = ["N=%d T=%d B=%d pack=%d" % tuple(x) for x in d[["N", "T", "B", "pack"]].values]
        ax.barh(range(len(d)), d["ratio"])
        ax.set_yticks(range(len(d)))
        ax.set_yticklabels(labels, fontsize=6)
        ax.set(xscale="log", xlabel="engine / PyTorch peer (sample-tokens/s)", title="speed-up over the peer")
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no peer figures (run scb bench --peer)", ha="center")
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print("plot_bench: ->", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
