#!/usr/bin/env python3
"""A JAX peer of the engine's sweep: the SCB training step (docs/model.md sections 3 and 5) of ONE run written as a
pure function, jax.vmap over R runs (each with its own lambda and random key), jit-compiled, with
the engine's proximal SGD and defaults (bench/peers/peer_common.py). It reports the same JSON keys
as `torch_scb.py --runs R`, so the engine, PyTorch and JAX are compared on one footing:
sample-tokens/s and run-steps/s of an SGD and a proximal step, and whole runs/s.

One step of one run, B samples (vmapped over samples inside, over runs outside):
  tokens X (B, T) i.i.d. from mu by inverse-CDF sampling; query k ~ mu; position s ~ q^(k);
  output x_o ~ P[:, x_s];  h = X a^(k) by scatter-add;  r = V h - e_{x_o};  g = V^T r;
  dV = r h^T / B;  dA[k] += g[X] / B;  projection (subtract the column mean), preconditioning
  (divide column k by mu_k);  V -= lr_V dV;  A -= lr_A dA;  proximal stage: soft-threshold
  (tau = lr_A * lambda) and renormalise every column to sum 1.
The two stages are two compiled functions (the stage is a static argument), so an SGD step does
no thresholding work. Parameters are float32 like the engine's; the problem is generated with
numpy (P by Dirichlet(1) columns, sparse Q with uniform weights).

Usage:
  python3 bench/peers/jax_scb.py --runs 100 --N 20 --T 1000 [--device cuda|cpu] [--full]
Prints one JSON object on stdout; exits 3 with {"skipped": ...} when JAX is not importable.
"""
import argparse
import functools
import json
import os
import sys
import time


def parse_args():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import peer_common
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--N", type=int, default=3)
    ap.add_argument("--T", type=int, default=10000)
    ap.add_argument("--B", type=int, default=peer_common.ENGINE_DEFAULTS["B"])
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="JAX platform (auto: JAX's default, the GPU where its plugin finds one)")
    ap.add_argument("--seconds", type=float, default=2.0, help="time budget of the timed repetitions")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=0, help="steps per repetition (0 = from --seconds)")
    ap.add_argument("--seed", type=int, default=0)
    peer_common.add_runs_arguments(ap)
    args = ap.parse_args()
    args.runs = max(args.runs, 1)
    return args, peer_common


ARGS, peer_common = parse_args()
if ARGS.device != "auto":  # must be set before JAX initialises its backends
    os.environ["JAX_PLATFORMS"] = ARGS.device
try:
    import jax
    import jax.numpy as jnp
    import numpy as np
except ImportError as e:
    print(json.dumps({"peer": "jax", "mode": "runs", "skipped": "JAX is not importable by %s (%s)" % (sys.executable, e)}))
    sys.exit(3)


def make_problem(N, T, Q, rng):
    """P (N x N, column-stochastic, Dirichlet(1) columns), mu (P mu = mu), q supports (N x Q)."""
    cols = rng.exponential(size=(N, N))
    P = cols / cols.sum(0, keepdims=True)          # P[i, j] = Pr(next = i | current = j)
    mu = np.full(N, 1.0 / N)
    for _ in range(10000):                          # power iteration: P mu = mu
        nxt = P @ mu
        done = np.max(np.abs(nxt - mu)) < 1e-15
        mu = nxt
        if done:
            break
    mu = mu / mu.sum()
    q_pos = np.stack([rng.permutation(T)[:Q] for _ in range(N)])  # (N, Q)
    return P, mu, q_pos


def make_step(N, T, B, Q, P, mu, q_pos, d):
    """The jitted pack step: (V (R,N,N), A (R,N,T), key, tau (R,1,1), proximal) -> (V, A, key)."""
    mu32 = jnp.asarray(mu, jnp.float32)
    mu_cdf = jnp.cumsum(mu32)
    P_cdf = jnp.cumsum(jnp.asarray(P.T, jnp.float32), axis=1)  # row j: CDF of column P[:, j]
    q = jnp.asarray(q_pos, jnp.int32)
    lr_V, lr_A = d["lr_V"], d["lr_A"]

    def draw(cdf, u):
        return jnp.minimum(jnp.searchsorted(cdf, u), cdf.shape[-1] - 1)

    def run_step(V, A, key, tau, proximal):
        kx, kk, ks, ko = jax.random.split(key, 4)
        X = draw(mu_cdf, jax.random.uniform(kx, (B, T)))                       # tokens (B, T)
        k = draw(mu_cdf, jax.random.uniform(kk, (B,)))                         # query tokens
        s = q[k, jax.random.randint(ks, (B,), 0, Q)]                           # attended positions
        xs = jnp.take_along_axis(X, s[:, None], axis=1)[:, 0]
        xo = jax.vmap(draw)(P_cdf[xs], jax.random.uniform(ko, (B,)))           # outputs
        a = A[k]                                                               # (B, T)
        h = jax.vmap(lambda x, w: jnp.zeros(N, jnp.float32).at[x].add(w))(X, a)  # h = X a^(k)
        r = (h @ V.T).at[jnp.arange(B), xo].add(-1.0)                          # V h - e_{x_o}
        g = r @ V                                                              # V^T r
        dV = r.T @ h / B
        dA = jnp.zeros((N, T), jnp.float32).at[k].add(jnp.take_along_axis(g, X, axis=1)) / B
        dA = (dA - dA.mean(axis=1, keepdims=True)) / mu32[:, None]            # project, precondition
        V = V - lr_V * dV
        A = A - lr_A * dA
        if proximal:
            A = jnp.sign(A) * jnp.maximum(jnp.abs(A) - tau, 0.0)
            A = A / A.sum(axis=1, keepdims=True)                               # renormalise
        return V, A

    def pack_step(V, A, key, tau, proximal):  # proximal: a Python bool (static), closed over
        key, sub = jax.random.split(key)
        keys = jax.random.split(sub, V.shape[0])
        V, A = jax.vmap(functools.partial(run_step, proximal=proximal))(V, A, keys, tau)
        return V, A, key

    return jax.jit(pack_step, static_argnums=4, donate_argnums=(0, 1))


def dist_A_norm_all(A, q_pos, T):
    """Frobenius distance of every run's normalised A (a-hat = [a]_+ / 1^T [a]_+) to Q."""
    a = np.clip(np.asarray(A, np.float64), 0.0, None)
    sums = a.sum(2, keepdims=True)
    a = np.where(sums > 0, a / np.where(sums > 0, sums, 1.0), 1.0 / T)
    Qd = np.zeros(a.shape[1:])
    np.put_along_axis(Qd, q_pos, 1.0 / q_pos.shape[1], axis=1)
    return [float(x) for x in np.linalg.norm((a - Qd).reshape(a.shape[0], -1), axis=1)]


class Pack:
    """The R runs' parameters and the compiled step; step() advances every run by one step."""

    def __init__(self, args, lambdas):
        d = peer_common.ENGINE_DEFAULTS
        self.args, self.Q = args, min(d["Q"], args.T)
        P, self.mu, self.q_pos = make_problem(args.N, args.T, self.Q, np.random.default_rng(1000 + args.seed))
        self.tau = jnp.asarray([d["lr_A"] * lam for lam in lambdas], jnp.float32)[:, None, None]
        self.fn = make_step(args.N, args.T, args.B, self.Q, P, self.mu, self.q_pos, d)
        self.proximal = False
        self.reset()

    def reset(self):
        """The initial parameters (V = mu 1^T, a_t = 1/T) and key; the compiled step stays."""
        R, N, T = self.args.runs, self.args.N, self.args.T
        self.V = jnp.broadcast_to(jnp.asarray(self.mu, jnp.float32)[None, :, None], (R, N, N)) + 0.0
        self.A = jnp.full((R, N, T), 1.0 / T, jnp.float32)
        make_key = getattr(jax.random, "key", None) or jax.random.PRNGKey
        self.key = make_key(self.args.seed)

    def step(self):
        self.V, self.A, self.key = self.fn(self.V, self.A, self.key, self.tau, self.proximal)

    def sync(self):
        self.A.block_until_ready()

    def compile_seconds(self):
        """Compiles both stages (one step each) and returns the wall seconds it took."""
        t0 = time.perf_counter()
        for stage in (False, True):
            self.proximal = stage
            self.step()
        self.sync()
        return time.perf_counter() - t0


def main(args):
    d = peer_common.ENGINE_DEFAULTS
    R = args.runs
    lambdas = peer_common.parse_lambdas(args.lambdas, R)
    try:
        dev = jax.devices()[0]
    except RuntimeError as e:  # e.g. --device cuda where JAX finds no GPU
        print(json.dumps({"peer": "jax", "mode": "runs", "skipped": "JAX has no %s device: %s" % (args.device, e)}))
        return 3
    base = {"peer": "jax", "N": args.N, "T": args.T, "B": args.B, "device": dev.platform,
            "device_kind": getattr(dev, "device_kind", ""), "jax": jax.__version__,
            "bytes": R * args.B * args.T * (4 + 4 + 4 + 4) + R * args.N * args.T * 4 * 5}
    pack = Pack(args, lambdas)
    base["compile_seconds"] = pack.compile_seconds()
    if args.full:
        pack.reset()
        stage1 = min(args.stage1_steps, args.train_steps)
        t0 = time.perf_counter()
        for i in range(args.train_steps):
            pack.proximal = i >= stage1
            pack.step()
        pack.sync()
        seconds = time.perf_counter() - t0
        A = np.asarray(pack.A)
        diverged = int(np.sum(~np.isfinite(A).all(axis=(1, 2))))
        base = peer_common.full_report(base, R, seconds, dist_A_norm_all(A, pack.q_pos, args.T), lambdas, diverged)
    pack.proximal = False
    sgd = peer_common.time_stage(pack.step, pack.sync, args.seconds / 2, args.reps, args.steps)
    pack.proximal = True
    prox = peer_common.time_stage(pack.step, pack.sync, args.seconds / 2, args.reps, args.steps)
    base = peer_common.runs_report(base, args, lambdas, sgd, prox)
    base.setdefault("diverged_runs", int(np.sum(~np.isfinite(np.asarray(pack.A)).all(axis=(1, 2)))))
    print(json.dumps(base))
    return 0


if __name__ == "__main__":
    sys.exit(main(ARGS))
