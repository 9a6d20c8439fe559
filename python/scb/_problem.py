"""The engine's problems and its exact population loss, on a config or on a user's arrays."""
import numpy as np

from . import _scb
from ._config import config_document


def make_problem(config):
    """(P, Q, mu) of a config's problem as numpy arrays: P is N x N with P[i, j] = Pr(i | j),
    Q is T x N (column k is q^(k)), mu the stationary distribution."""
    text, base = config_document(config)
    h = _scb.make_problem(text, base)
    return h.P, h.Q, h.mu


def _arrays(P, Q, mu, V, A):
    return (np.asarray(P, dtype=np.float64), np.asarray(Q, dtype=np.float64),
            None if mu is None else np.asarray(mu, dtype=np.float64),
            np.asarray(V, dtype=np.float64), np.asarray(A, dtype=np.float64))


def population_loss(P, Q, mu, V, A):
    """The exact population loss L(V, A) in double precision (V: N x N, A: T x N). mu may be
    None; when given it must be P's stationary distribution."""
    return _scb.population_loss(*_arrays(P, Q, mu, V, A))


def metrics(P, Q, mu, V, A):
    """Every metric of curves.csv except step and samples, as a dict."""
    return _scb.metrics(*_arrays(P, Q, mu, V, A))
