"""scb.make_problem gives the engine's P, Q, mu (a valid problem), and the exact loss on user arrays
is smallest at the Bayes predictor V = P, A = Q (the C++ suite checks it against Monte Carlo)."""
import numpy as np

import scb
from conftest import small_config


def test_problem_is_valid():
    P, Q, mu = scb.make_problem(small_config())
    assert P.shape == (3, 3) and Q.shape == (40, 3) and mu.shape == (3,)
    assert np.allclose(P.sum(axis=0), 1) and np.allclose(Q.sum(axis=0), 1)
    assert np.allclose(P @ mu, mu)
    assert ((Q > 0).sum(axis=0) <= 2).all()


def test_loss_is_smallest_at_the_truth():
    P, Q, mu = scb.make_problem(small_config())
    rng = np.random.default_rng(0)
    V = P + 0.1 * rng.standard_normal(P.shape)
    A = np.abs(Q + 0.05 * rng.random(Q.shape))
    A /= A.sum(axis=0)
    truth = scb.population_loss(P, Q, mu, P, Q)
    assert truth < scb.population_loss(P, Q, mu, V, A)
