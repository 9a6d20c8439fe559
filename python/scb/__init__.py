"""scb: the Sparse Contextual Bigram training engine from Python.

    import scb
    run = scb.train("configs/reference.json", overrides={"train.lambda": 0.01})
    run.curves            # pandas DataFrame, the columns of curves.csv
    run.summary["final"]  # dict, as summary.json
    run.A, run.Q          # numpy arrays (T x N), as A.npy and Q.npy
    sw = scb.sweep("configs/sweep_quick.json", "out/quick")
    sw.runs               # DataFrame of runs.csv

Bad input raises scb.ConfigError (a ValueError) with the one-line message `scb` prints. Training
releases the GIL; Ctrl-C stops it with KeyboardInterrupt (a sweep directory stays resumable).
README.md, section "Python", describes every function; docs/notebooks/quickstart.ipynb shows them.
"""
from ._scb import ConfigError
from ._run import Run, load_run, train
from ._problem import make_problem, metrics, population_loss
from ._sweep import Sweep, load_sweep, sweep

__all__ = ["ConfigError", "Run", "Sweep", "train", "sweep", "load_run", "load_sweep",
           "make_problem", "population_loss", "metrics"]
