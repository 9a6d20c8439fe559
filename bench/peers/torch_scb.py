#!/usr/bin/python3
"""A peer for `scb bench --peer`: the SCB training step of docs/model.md sections 3 and 5 written the way a
researcher would write it in plain, vectorised PyTorch (CPU, or CUDA with --device cuda), to
compare the engine with.

One step of every run of a pack of R runs (vectorised over runs and samples):
  tokens X (R, B, T) i.i.d. from mu by inverse-CDF sampling (torch.searchsorted on torch.rand,
  or torch.multinomial with --sampler multinomial); query k ~ mu; position s ~ q^(k); output
  x_o ~ P[:, x_s];  h = X a^(k) by scatter_add;  r = V h - e_{x_o};  g = V^T r;
  dV = r h^T / B;  dA[k] += g[X] (gather, then index_add over the queried columns) / B;
  projection (subtract the column mean), preconditioning (divide column k by mu_k), then
  V -= lr_V dV;  A -= lr_A dA;  proximal stage: soft-threshold (tau = lr_A * lambda) and
  renormalise every column to sum 1.
Parameters are float32 like the engine's. The problem (P by Dirichlet(1) columns, sparse Q with
uniform weights) is generated with torch's own generator: the work per step does not depend on
the values, and bit-identical tokens are not the point here.

Sweep mode (--runs R, bench/peers/peer_common.py): R runs of one problem, each with its own
lambda (tau is an (R, 1, 1) tensor), the engine's defaults and two-stage schedule; it times an
SGD and a proximal step and reports sample-tokens/s, run-steps/s and whole runs/s. The JAX peer
(bench/peers/jax_scb.py) reports the same keys.

Usage (run by `scb bench --peer`; needs Debian's python3-torch for /usr/bin/python3):
  /usr/bin/python3 bench/peers/torch_scb.py --N 3 --T 10000 --B 128 --pack 1 --seconds 2 --reps 5
  /usr/bin/python3 bench/peers/torch_scb.py --runs 100 --N 20 --T 1000 [--device cuda] [--full]
  /usr/bin/python3 bench/peers/torch_scb.py --selftest     # the docs/model.md section 5 reference point
Prints one JSON object on stdout (exit status 3 with {"skipped": ...} when it cannot run).
"""
import argparse
import json
import os
import statistics
import sys
import time

# glibc's defaults give every step's large temporaries fresh pages (mmap for big blocks, heap
# trimming after each free): page faults then cost as much as the arithmetic, and the timing
# swings 2-5x with the history of the process. Give the peer its best case: keep freed memory
# (set before the interpreter starts, so re-exec once). SCB_PEER_PLAIN_MALLOC=1 keeps the defaults.
MALLOC_TUNING = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "17179869184",
                 "MALLOC_TOP_PAD_": "268435456"}
if os.environ.get("SCB_PEER_PLAIN_MALLOC") != "1" and any(os.environ.get(k) != v for k, v in MALLOC_TUNING.items()):
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **MALLOC_TUNING})
MALLOC_TUNED = os.environ.get("SCB_PEER_PLAIN_MALLOC") != "1"

try:
    import torch
except ImportError:  # scb bench checks this first; keep a clear message for direct use
    print(json.dumps({"skipped": "PyTorch is not importable by %s (apt-get install -y python3-torch)" % sys.executable}))
    sys.exit(3)

import peer_common  # noqa: E402  (beside this file; after the re-exec and the torch check)


def make_problem(N, T, Q, gen):
    """P (N x N, column-stochastic, Dirichlet(1) columns), mu (P mu = mu), q supports (N x Q)."""
    cols = -torch.log(torch.rand(N, N, dtype=torch.float64, generator=gen))  # Gamma(1) = Exp(1): Dirichlet(1)
    P = cols / cols.sum(0, keepdim=True)            # P[i, j] = Pr(next = i | current = j)
    mu = torch.full((N,), 1.0 / N, dtype=torch.float64)
    for _ in range(10000):                          # power iteration: P mu = mu
        nxt = P @ mu
        if torch.max(torch.abs(nxt - mu)) < 1e-15:
            mu = nxt
            break
        mu = nxt
    mu = mu / mu.sum()
    q_pos = torch.stack([torch.randperm(T, generator=gen)[:Q] for _ in range(N)])  # (N, Q)
    q_w = torch.full((N, Q), 1.0 / Q, dtype=torch.float64)
    return P, mu, q_pos, q_w


class TorchSCB:
    def __init__(self, N, T, B, R, Q=2, lr_V=1.0, lr_A=0.02, lam=None, stage1_steps=0, proximal=True,
                 project=True, precondition=True, renormalize=True, sampler="searchsorted", seed=0, device="cpu"):
        self.N, self.T, self.B, self.R, self.Q = N, T, B, R, min(Q, T)
        self.dev = torch.device(device)
        self.gen = torch.Generator(device=self.dev).manual_seed(seed)
        P, mu, q_pos, q_w = make_problem(N, T, self.Q, torch.Generator().manual_seed(1000 + seed))
        self.P, self.mu64, self.q_pos, self.q_w = P, mu, q_pos.to(self.dev), q_w
        self.mu = mu.float().to(self.dev)
        self.mu_cdf = torch.cumsum(self.mu, 0)
        self.P_cdf = torch.cumsum(P.T.float(), 1).to(self.dev)    # row j: CDF of column P[:, j]
        self.lr_V, self.lr_A = lr_V, lr_A
        self.lam = 0.5 / T if lam is None else lam  # the threshold keeps its size relative to 1/T
        if isinstance(self.lam, (list, tuple)):     # sweep mode: one lambda per run
            self.lam = torch.tensor(self.lam, dtype=torch.float32, device=self.dev).view(R, 1, 1)
        self.stage1_steps, self.proximal = stage1_steps, proximal
        self.project, self.precondition, self.renormalize = project, precondition, renormalize
        self.sampler = sampler
        self.V = self.mu[None, :, None].expand(R, N, N).clone()   # V = mu 1^T (stationary init)
        self.A = torch.full((R, N, T), 1.0 / T, device=self.dev)   # row k of A[r] is a^(k)
        self.run_offset = (torch.arange(R, device=self.dev) * N)[:, None]  # (R, 1)
        self.steps_done = 0
        self.diverged = torch.zeros(R, dtype=torch.bool, device=self.dev)

    def draw(self, shape, cdf):
        u = torch.rand(shape, generator=self.gen, device=self.dev)
        return torch.searchsorted(cdf, u).clamp_(max=cdf.shape[-1] - 1)

    def step(self):
        N, T, B, R = self.N, self.T, self.B, self.R
        if self.sampler == "multinomial":
            X = torch.multinomial(self.mu, R * B * T, replacement=True, generator=self.gen).view(R, B, T)
        else:
            X = self.draw((R, B, T), self.mu_cdf)                              # tokens (R, B, T)
        k = self.draw((R, B), self.mu_cdf)                                     # query tokens
        slot = torch.randint(self.Q, (R, B), generator=self.gen, device=self.dev)  # uniform weights
        s = self.q_pos[k, slot]                                                # attended positions
        xs = X.gather(2, s.unsqueeze(2))                                       # (R, B, 1)
        u = torch.rand((R, B, 1), generator=self.gen, device=self.dev)
        xo = torch.searchsorted(self.P_cdf[xs.squeeze(2)], u).clamp_(max=N - 1)  # (R, B, 1)
        # Forward: h = X a^(k) by scatter, residual and back-projection.
        a = self.A.gather(1, k.unsqueeze(2).expand(R, B, T))                   # (R, B, T)
        h = torch.zeros(R, B, N, device=self.dev).scatter_add_(2, X, a)        # (R, B, N)
        r = torch.bmm(h, self.V.transpose(1, 2))                               # V h
        r.scatter_add_(2, xo, torch.full((R, B, 1), -1.0, device=self.dev))    # - e_{x_o}
        g = torch.bmm(r, self.V)                                               # V^T r
        # Gradients.
        dV = torch.bmm(r.transpose(1, 2), h) / B                               # r h^T
        G = g.gather(2, X)                                                     # dl/da_t = g[x_t]
        dA = torch.zeros(R * N, T, device=self.dev).index_add_(0, (k + self.run_offset).view(-1), G.view(R * B, T))
        dA = dA.view(R, N, T) / B
        if self.project:
            dA -= dA.mean(2, keepdim=True)
        if self.precondition:
            dA /= self.mu[None, :, None]
        # Updates.
        self.V -= self.lr_V * dV
        A = self.A - self.lr_A * dA
        if self.proximal and self.steps_done >= self.stage1_steps:
            tau = self.lr_A * self.lam
            A = torch.sign(A) * torch.clamp(torch.abs(A) - tau, min=0.0)
            if self.renormalize:
                sums = A.sum(2, keepdim=True)
                self.diverged |= (sums <= 0).any(1).view(R)
                A = A / sums
        self.A = A
        self.steps_done += 1

    def dist_A_norm(self, run=0):
        """Frobenius distance of the normalised A (a-hat = [a]_+ / 1^T [a]_+) to Q."""
        return self.dist_A_norm_all()[run]

    def dist_A_norm_all(self):
        """dist_A_norm of every run (a list of R floats)."""
        a = torch.clamp(self.A.double().cpu(), min=0.0)
        sums = a.sum(2, keepdim=True)
        a = torch.where(sums > 0, a / torch.where(sums > 0, sums, torch.ones_like(sums)), torch.full_like(a, 1.0 / self.T))
        Qd = torch.zeros(self.N, self.T, dtype=torch.float64)
        Qd.scatter_(1, self.q_pos.cpu(), self.q_w)
        return [float(x) for x in torch.linalg.norm((a - Qd).view(self.R, -1), dim=1)]

    def sync(self):
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)


def peer_bytes(N, T, B, R):
    # X int64 + uniforms + gathered a + G, per sample-token; A, dA and two temporaries per entry.
    return R * B * T * (8 + 4 + 4 + 4 + 8) + R * N * T * 4 * 5 + R * N * N * 4 * 4


def device_check(args, need):
    """'' when the step fits the device (and --memory-cap), else why it is skipped."""
    if args.device == "cuda" and not torch.cuda.is_available():
        return "CUDA is not available to PyTorch %s (torch.cuda.is_available() is False)" % torch.__version__
    if args.memory_cap > 0 and need > args.memory_cap:
        return "needs %.2f GiB > memory cap %.2f GiB" % (need / 2**30, args.memory_cap / 2**30)
    if args.device == "cuda" and need > 0.9 * torch.cuda.mem_get_info()[0]:
        return "needs %.2f GiB > 90%% of free device memory" % (need / 2**30)
    return ""


def run_bench(args):
    torch.set_num_threads(args.threads if args.threads > 0 else (os.cpu_count() or 1))
    B = args.B or 128
    need = peer_bytes(args.N, args.T, B, args.pack)
    base = {"N": args.N, "T": args.T, "B": B, "pack": args.pack, "threads": torch.get_num_threads(),
            "sampler": args.sampler, "stage": args.stage, "torch": torch.__version__, "bytes": need,
            "malloc_tuned": MALLOC_TUNED}
    if args.device != "cpu":  # the CPU output keeps the keys `scb bench --peer` has always read
        base["device"] = args.device
    skip = device_check(args, need)
    if skip:
        base["skipped"] = skip
        return base
    model = TorchSCB(args.N, args.T, B, args.pack, proximal=(args.stage == "proximal"), sampler=args.sampler,
                     stage1_steps=0 if args.stage == "proximal" else 1 << 62, device=args.device)
    model.step()  # warm-up (allocations, thread pool)
    model.sync()
    t0 = time.perf_counter()
    model.step()
    model.sync()
    warm = time.perf_counter() - t0
    if args.max_step_seconds > 0 and warm > args.max_step_seconds:
        base.update({"capped": "one step took %.2f s > %.2f s: one repetition of one step" % (warm, args.max_step_seconds)})
        reps, K = 1, 1
    else:
        reps = args.reps
        K = args.steps if args.steps > 0 else max(1, int(round(args.seconds / reps / max(warm, 1e-6))))
    per_step, per_step_cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(K):
            model.step()
        model.sync()
        per_step.append((time.perf_counter() - t0) / K)
        per_step_cpu.append((time.process_time() - c0) / K)
    med = statistics.median(per_step)
    tokens = args.pack * B * args.T
    base.update({"reps": reps, "steps_per_rep": K, "step_seconds": per_step, "step_seconds_median": med,
                 "steps_per_s": 1.0 / med, "run_steps_per_s": args.pack / med,
                 "sample_tokens_per_s": tokens / med, "cpu_seconds_per_step": per_step_cpu,
                 "sample_tokens_per_cpu_s": tokens / statistics.median(per_step_cpu),
                 "diverged_runs": int(model.diverged.sum())})
    return base


def run_runs(args):
    """Sweep mode: R runs, a lambda per run, the engine's defaults (peer_common)."""
    torch.set_num_threads(args.threads if args.threads > 0 else (os.cpu_count() or 1))
    d = peer_common.ENGINE_DEFAULTS
    args.B = args.B or d["B"]
    R = args.runs
    lambdas = peer_common.parse_lambdas(args.lambdas, R)
    need = peer_bytes(args.N, args.T, args.B, R)
    base = {"peer": "torch", "N": args.N, "T": args.T, "B": args.B, "device": args.device,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "bytes": need}
    skip = device_check(args, need)
    if skip:
        base.update({"mode": "runs", "runs": R, "skipped": skip})
        return base
    model = TorchSCB(args.N, args.T, args.B, R, Q=d["Q"], lr_V=d["lr_V"], lr_A=d["lr_A"], lam=lambdas,
                     stage1_steps=args.stage1_steps, sampler=args.sampler, device=args.device)
    if args.full:
        model.sync()
        t0 = time.perf_counter()
        for _ in range(args.train_steps):
            model.step()
        model.sync()
        seconds = time.perf_counter() - t0
        base = peer_common.full_report(base, R, seconds, model.dist_A_norm_all(), lambdas, int(model.diverged.sum()))
    model.stage1_steps = 1 << 62  # every timed step plain SGD, however many the budget allows
    sgd = peer_common.time_stage(model.step, model.sync, args.seconds / 2, args.reps, args.steps)
    model.stage1_steps = 0        # every timed step proximal
    prox = peer_common.time_stage(model.step, model.sync, args.seconds / 2, args.reps, args.steps)
    base = peer_common.runs_report(base, args, lambdas, sgd, prox)
    base["diverged_runs"] = int(model.diverged.sum())
    return base


def selftest():
    """docs/model.md section 5 reference point: N=3, T=100, Q=2, B=64, 16,000 steps, stage1 4,000."""
    torch.set_num_threads(1)
    out = {}
    for name, proximal in (("sgd", False), ("proximal", True)):
        m = TorchSCB(3, 100, 64, 1, lam=0.005, stage1_steps=4000, proximal=proximal, seed=0)
        for _ in range(16000):
            m.step()
        out[name] = m.dist_A_norm()
    out["ok"] = out["proximal"] < 0.3 and out["proximal"] < out["sgd"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--N", type=int, default=3)
    ap.add_argument("--T", type=int, default=10000)
    ap.add_argument("--B", type=int, default=0, help="batch size (default 128; 64 in the sweep mode, as the engine)")
    ap.add_argument("--pack", type=int, default=1, help="runs trained together (vectorised over runs)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    ap.add_argument("--seconds", type=float, default=2.0, help="time budget of the timed repetitions")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=0, help="steps per repetition (0 = from --seconds)")
    ap.add_argument("--stage", choices=["proximal", "sgd"], default="proximal")
    ap.add_argument("--sampler", choices=["searchsorted", "multinomial"], default="searchsorted")
    ap.add_argument("--memory-cap", type=float, default=0, help="skip when the step needs more bytes")
    ap.add_argument("--max-step-seconds", type=float, default=0, help="one repetition of one step beyond this")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--selftest", action="store_true", help="check the step against the docs/model.md section 5 reference point")
    peer_common.add_runs_arguments(ap)
    args = ap.parse_args()
    res = selftest() if args.selftest else run_runs(args) if args.runs > 0 else run_bench(args)
    print(json.dumps(res))
    return 0 if res.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
