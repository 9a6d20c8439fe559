#!/usr/bin/env python3
"""The parts of bench/gpu_session.sh that read JSON: CPU-against-CUDA parity of `scb train`
summaries, the peers' one-line JSON results gathered into one file, and one-line digests of
those and of scb_gpu_bench's results for the session summary. Standard library only, since it
runs on whatever python3 the GPU machine has.

  session_report.py parity OUT.json NAME CPU_DIR CUDA_DIR [NAME CPU_DIR CUDA_DIR ...]
  session_report.py peers OUT.json NAME=FILE [NAME=FILE ...]
  session_report.py bench GPU_BENCH.json
Each prints short lines for the summary on stdout.
"""
import json
import os
import sys

PARITY_FLAG = 1e-3  # a relative difference above this is reported as "differs" (not a failure)


def load(path):
    with open(path) as f:
        return json.load(f)


def rel_diff(a, b):
    if a == b:
        return 0.0
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def parity_one(name, cpu_dir, cuda_dir):
    out = {"cpu_dir": cpu_dir, "cuda_dir": cuda_dir}
    runs = {}
    for side, d in (("cpu", cpu_dir), ("cuda", cuda_dir)):
        try:
            runs[side] = load(os.path.join(d, "summary.json"))
        except (OSError, ValueError) as e:
            out["error"] = "no %s summary.json (the %s run failed or was skipped): %s" % (side, side, e)
            out["final"] = {k: v.get("final") for k, v in runs.items()}
            return out, "%s: no comparison, %s" % (name, out["error"])
    cpu, cuda = runs["cpu"], runs["cuda"]
    out.update({"status": {"cpu": cpu.get("status"), "cuda": cuda.get("status")},
                "wall_seconds": {"cpu": cpu.get("wall_seconds"), "cuda": cuda.get("wall_seconds")},
                "tokens_per_second": {"cpu": cpu.get("tokens_per_second"), "cuda": cuda.get("tokens_per_second")},
                "final": {"cpu": cpu.get("final"), "cuda": cuda.get("final")}, "rel_diff": {}})
    for key, a in (cpu.get("final") or {}).items():
        b = (cuda.get("final") or {}).get(key)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            out["rel_diff"][key] = rel_diff(float(a), float(b))
    worst = max(out["rel_diff"].items(), key=lambda kv: kv[1], default=("-", 0.0))
    out["max_rel_diff"] = worst[1]
    out["verdict"] = "differs" if worst[1] > PARITY_FLAG or cpu.get("status") != cuda.get("status") else "matches"
    diffs = ", ".join("%s %.1e" % kv for kv in sorted(out["rel_diff"].items()))
    return out, "%s: %s (max rel diff %.2e in %s); %s" % (name, out["verdict"], worst[1], worst[0], diffs)


def parity(out_path, triples):
    doc, lines = {"flag_above": PARITY_FLAG}, []
    for i in range(0, len(triples) - 2, 3):
        doc[triples[i]], line = parity_one(*triples[i:i + 3])
        lines.append(line)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    return lines


def peer_line(name, res):
    if "skipped" in res or "error" in res:
        return "%s: %s" % (name, res.get("skipped") or res.get("error"))
    line = "%s: %.3g sample-tokens/s, %.3g run-steps/s" % (name, res["sample_tokens_per_s"], res["run_steps_per_s"])
    if res.get("runs_per_s"):
        line += ", %.3g runs/s (%d steps)" % (res["runs_per_s"], res["train_steps"])
    return line


def peers(out_path, pairs):
    doc, lines = {}, []
    for pair in pairs:
        name, path = pair.split("=", 1)
        try:
            with open(path) as f:
                text = [ln for ln in f.read().splitlines() if ln.startswith("{")]
            doc[name] = json.loads(text[-1]) if text else {"error": "no JSON line in the peer's output"}
        except (OSError, ValueError) as e:
            doc[name] = {"error": "unreadable result: %s" % e}
        lines.append(peer_line(name, doc[name]))
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    return lines


def bench(path):
    try:
        doc = load(path)
    except (OSError, ValueError) as e:
        return ["gpu bench: no results (%s)" % e]
    rows = doc.get("results", [])
    ran = [r for r in rows if "gpu_sample_tokens_per_s" in r]
    lines = ["gpu bench on %s: %d cases measured, %d skipped, %d errors, %.0f s" %
             (doc.get("device"), len(ran), sum("skipped" in r for r in rows), sum("error" in r for r in rows),
              doc.get("wall_seconds", 0))]
    for r in ran:
        speed = " (%.1fx CPU)" % r["speedup"] if "speedup" in r else ""
        lines.append("  N=%d T=%d R=%d %s/%s: %.3g tok/s%s" % (r["N"], r["T"], r["runs"], r["algorithm"], r.get("dense"),
                                                               r["gpu_sample_tokens_per_s"], speed))
    for r in rows:
        if "skipped" in r or "error" in r:
            lines.append("  N=%d T=%d R=%d %s: %s" % (r["N"], r["T"], r["runs"], r["algorithm"],
                                                      r.get("skipped") or "error: " + r["error"]))
    return lines


def main(argv):
    if len(argv) < 3 or argv[1] not in ("parity", "peers", "bench"):
        sys.stderr.write(__doc__)
        return 2
    lines = {"parity": lambda: parity(argv[2], argv[3:]), "peers": lambda: peers(argv[2], argv[3:]),
             "bench": lambda: bench(argv[2])}[argv[1]]()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
