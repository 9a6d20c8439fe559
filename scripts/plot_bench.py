#!/usr/bin/python3
"""Plots the JSON of `scb bench --json FILE` (one or more files, concatenated).

  /usr/bin/python3 scripts/plot_bench.py bench/results/cpu.json -o bench/results/cpu.png

Panels: sample-tokens/s against T (one line per N and B, pack of 1, all threads); seconds per
step against T and against B (linear scaling shows as slope 1 on the log-log axes); seconds per
step against N at fixed T; the fraction of the token-drawing limit; engine/peer when the file has
peer figures. Needs Debian's python3-matplotlib and python3-pandas.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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
            row.update(step_s=e["step_seconds_median"], tok_s=e["sample_tokens_per_s"],
                       steps_s=e["steps_per_s"], lim1=lim["tokens_per_s_1thread"],
                       limA=lim["tokens_per_s_all_threads"], frac1=r["fraction_of_limit_1thread"],
                       fracA=r["fraction_of_limit_all_threads"], file=path)
            peer = r.get("peer") or {}
            row["peer_tok_s"] = peer.get("sample_tokens_per_s")
            row["ratio"] = r.get("engine_over_peer")
            rows.append(row)
    return pd.DataFrame(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="+")
    ap.add_argument("-o", "--out", default="bench.png")
    args = ap.parse_args()
    df = load(args.json)
    if df.empty:
        print("plot_bench: no measured configuration in", " ".join(args.json), file=sys.stderr)
        return 1
    thr = df["threads"].max()
    base = df[(df["threads"] == thr)]
    has_peer = df["ratio"].notna().any()
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    fig.suptitle("scb bench (%s, %d threads; medians)" % (", ".join(sorted(df["device"].unique())), thr))

    ax = axes[0, 0]
    p1 = base[base["pack"] == base["pack"].min()]
    for (N, B), g in p1.groupby(["N", "B"]):
        g = g.sort_values("T")
        ax.plot(g["T"], g["tok_s"], marker="o", label="N=%d B=%d" % (N, B))
    for N, g in p1.groupby("N"):
        g = g.sort_values("T")
        ax.plot(g["T"], g["limA"], ls=":", color="grey")
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
    labels = ["N=%d T=%d B=%d p=%d t=%d" % tuple(x) for x in df[["N", "T", "B", "pack", "threads"]].values]
    y = range(len(df))
    ax.barh([i - 0.2 for i in y], df["frac1"], height=0.4, label="of 1-thread limit")
    ax.barh([i + 0.2 for i in y], df["fracA"], height=0.4, label="of all-thread limit")
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=5)
    ax.axvline(0.4, color="red", ls="--", lw=0.8)
    ax.set(xlabel="fraction of the token-drawing limit", title="engine / limit (red: 40% target)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)

    ax = axes[1, 2]
    if has_peer:
        d = df[df["ratio"].notna()]
        labels = ["N=%d T=%d B=%d p=%d t=%d" % tuple(x) for x in d[["N", "T", "B", "pack", "threads"]].values]
        ax.barh(range(len(d)), d["ratio"])
        ax.set_yticks(range(len(d)))
        ax.set_yticklabels(labels, fontsize=6)
        ax.set(xscale="log", xlabel="engine / PyTorch peer (sample-tokens/s)", title="speed-up over the peer")
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no peer figures (run scb bench --peer)", ha="center")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("plot_bench: ->", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
