#!/usr/bin/python3
"""The `train.noise` that matches real minibatch SGD, for `population` runs (docs/model.md section 5).

    /usr/bin/python3 scripts/matched_noise.py RUN_DIR... [--samples 20000] [--at bayes|init|final]

RUN_DIR is any `scb train` output (P.npy, mu.npy, Q.npy; with --at final also V.npy, A.npy).
The population algorithm adds i.i.d. Gaussian noise of std noise / sqrt(B) to every coordinate
of dL/dA and dL/dV; a real minibatch of B samples has per-coordinate std s / sqrt(B), where s is
the std of ONE sample's gradient coordinate. This script estimates s by Monte Carlo at the chosen
point (bayes: V = P, A = Q; init: V = mu 1^T, a = 1/T; final: the run's V.npy, A.npy), for
  A: the projected gradient (column mean subtracted, as train.project does), before the 1/mu_k
     preconditioning (the engine adds the noise before it too), RMS over all T x N coordinates;
  V: RMS over all N x N coordinates.
So `train.noise = s_A` gives the simulated run the same A-noise as real SGD (on average over
columns; real noise is larger in frequent columns, proportional to sqrt(mu_k), and is correlated
across positions, which i.i.d. noise is not).
"""
import argparse
import os

import numpy as np


def estimate(P, mu, Q, V, A, samples, rng):
    N, T = P.shape[0], Q.shape[0]
    sumsq_A = 0.0
    sumsq_V = np.zeros((N, N))
    mean_V = np.zeros((N, N))
    chunk = 2000
    done = 0
    while done < samples:
        m = min(chunk, samples - done)
        X = rng.choice(N, size=(m, T), p=mu)                # tokens
        k = rng.choice(N, size=m, p=mu)                     # query
        cdf = np.cumsum(Q[:, k].T, axis=1)                  # m x T
        s = np.minimum((rng.random((m, 1)) < cdf).argmax(axis=1), T - 1)
        xs = X[np.arange(m), s]
        cdfP = np.cumsum(P[:, xs].T, axis=1)                # m x N
        o = np.minimum((rng.random((m, 1)) < cdfP).argmax(axis=1), N - 1)
        a = A[:, k].T                                        # m x T
        h = np.zeros((m, N))
        np.add.at(h, (np.repeat(np.arange(m), T), X.ravel()), a.ravel())
        r = h @ V.T                                          # f = V h
        r[np.arange(m), o] -= 1.0
        g = r @ V                                            # (V^T r), m x N
        gt = np.take_along_axis(g, X, axis=1)                # m x T: dL/da_t of column k
        gt -= gt.mean(axis=1, keepdims=True)                 # projection
        sumsq_A += float((gt ** 2).sum())                    # zero in the other N-1 columns
        dV = r[:, :, None] * h[:, None, :]                   # m x N x N
        sumsq_V += (dV ** 2).sum(axis=0)
        mean_V += dV.sum(axis=0)
        done += m
    s_A = np.sqrt(sumsq_A / samples / (T * N))              # mean of the A-gradient is ~0 here
    var_V = sumsq_V / samples - (mean_V / samples) ** 2
    s_V = np.sqrt(var_V.mean())
    return s_A, s_V


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+")
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--at", choices=["bayes", "init", "final"], default="bayes")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    for d in a.run_dirs:
        P, mu, Q = (np.load(os.path.join(d, f)).astype(np.float64) for f in ("P.npy", "mu.npy", "Q.npy"))
        N, T = P.shape[0], Q.shape[0]
        if a.at == "bayes":
            V, A = P, Q
        elif a.at == "init":
            V, A = np.outer(mu, np.ones(N)), np.full((T, N), 1.0 / T)
        else:
            V, A = (np.load(os.path.join(d, f)).astype(np.float64) for f in ("V.npy", "A.npy"))
        s_A, s_V = estimate(P, mu, Q, V, A, a.samples, rng)
        print(f"{d}: N={N} T={T} at={a.at}: matched noise s_A={s_A:.4g} s_V={s_V:.4g}")


if __name__ == "__main__":
    main()
