"""What the peers' sweep mode (--runs R) shares, so the PyTorch and the JAX peer measure and
report the same figures in the same JSON keys: the per-run lambdas, the engine's training
defaults, the timing of one stage's steps and the whole-run throughput derived from both stages.

The sweep mode trains R runs of one problem as one program with a leading run dimension, each
run with its own lambda, the engine's proximal SGD with the engine's defaults (B = 64,
lr_V = 1, lr_A = 0.02, 16,000 steps of which the first 4,000 are plain SGD, Q = 2, project,
precondition and renormalise on). It times steps of both stages, since a proximal step costs more
than an SGD step, and reports per-stage rates plus runs/s: whole runs of --train-steps steps
finished per second (estimated from the two stage rates, or measured with --full).
"""
import math
import statistics
import time

ENGINE_DEFAULTS = {"B": 64, "lr_V": 1.0, "lr_A": 0.02, "lambda": 0.005, "train_steps": 16000,
                   "stage1_steps": 4000, "Q": 2}


def parse_lambdas(spec, runs):
    """'LO:HI' (log-spaced over the runs), 'X' (every run) or 'X1,...,XR' (one per run)."""
    if spec is None:  # a decade either side of the engine's default
        spec = "%g:%g" % (ENGINE_DEFAULTS["lambda"] / 10, ENGINE_DEFAULTS["lambda"] * 10)
    if ":" in spec:
        lo, hi = (float(x) for x in spec.split(":"))
        if runs == 1:
            return [lo]
        return [math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * r / (runs - 1)) for r in range(runs)]
    values = [float(x) for x in spec.split(",")]
    if len(values) == 1:
        return values * runs
    if len(values) != runs:
        raise SystemExit("--lambdas: %d values for %d runs (give one, R, or LO:HI)" % (len(values), runs))
    return values


def add_runs_arguments(ap):
    ap.add_argument("--runs", type=int, default=0,
                    help="sweep mode: R runs of one problem as one program, a lambda per run, the engine's "
                         "two-stage schedule and defaults (B = 64); reports runs/s and sample-tokens/s")
    ap.add_argument("--lambdas", default=None, help="sweep mode: LO:HI (log-spaced), X, or X1,...,XR "
                                                    "(default 5e-4:5e-2, a decade either side of 0.005)")
    ap.add_argument("--train-steps", type=int, default=ENGINE_DEFAULTS["train_steps"],
                    help="sweep mode: steps of a whole run (default 16000)")
    ap.add_argument("--stage1-steps", type=int, default=ENGINE_DEFAULTS["stage1_steps"],
                    help="sweep mode: plain SGD steps before the proximal ones (default 4000)")
    ap.add_argument("--full", action="store_true",
                    help="sweep mode: train the whole runs and report the measured runs/s and each run's final "
                         "normalised distance of A to Q")


def time_stage(step, sync, seconds, reps, steps):
    """Median wall seconds per step over `reps` repetitions of K steps (after one warm-up step);
    K = `steps`, or from the `seconds` budget. `sync` waits for a device's queued work."""
    step()
    sync()
    t0 = time.perf_counter()
    step()
    sync()
    warm = time.perf_counter() - t0
    K = steps if steps > 0 else max(1, int(round(seconds / reps / max(warm, 1e-6))))
    per_step = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(K):
            step()
        sync()
        per_step.append((time.perf_counter() - t0) / K)
    return {"reps": reps, "steps_per_rep": K, "step_seconds": per_step,
            "step_seconds_median": statistics.median(per_step)}


def stage_rates(timing, runs, B, T):
    med = timing["step_seconds_median"]
    timing.update({"steps_per_s": 1.0 / med, "run_steps_per_s": runs / med, "sample_tokens_per_s": runs * B * T / med})
    return timing


def runs_report(base, args, lambdas, sgd, prox):
    """The sweep mode's JSON: per-stage figures, the proximal stage's at the top level (as the
    single-run mode reports its --stage proximal default), and whole runs per second."""
    R, B, T = args.runs, args.B, args.T
    stage1 = min(args.stage1_steps, args.train_steps)
    sgd, prox = stage_rates(sgd, R, B, T), stage_rates(prox, R, B, T)
    run_seconds = stage1 * sgd["step_seconds_median"] + (args.train_steps - stage1) * prox["step_seconds_median"]
    base.update({"mode": "runs", "runs": R, "lambda_min": min(lambdas), "lambda_max": max(lambdas),
                 "train_steps": args.train_steps, "stage1_steps": stage1, "sgd": sgd, "proximal": prox,
                 "step_seconds_median": prox["step_seconds_median"], "steps_per_s": prox["steps_per_s"],
                 "run_steps_per_s": prox["run_steps_per_s"], "sample_tokens_per_s": prox["sample_tokens_per_s"],
                 "pack_seconds_estimated": run_seconds, "runs_per_s": R / run_seconds if run_seconds > 0 else None})
    return base


def full_report(base, runs, seconds, dist_A_norm, lambdas, diverged):
    base.update({"runs_per_s_measured": runs / seconds, "pack_seconds_measured": seconds,
                 "final_dist_A_norm": dist_A_norm, "lambdas": lambdas, "diverged_runs": diverged})
    return base
