"""scb.train and scb.load_run: one run, in memory or from the folder `scb train --out` wrote."""
import json
import os

import numpy as np
import pandas as pd

from . import _scb
from ._config import config_document, override_assignments
from ._progress import ProgressBar


class Run:
    """A trained run: .curves (DataFrame), .summary (dict), .config (resolved dict) and the
    arrays .V, .A (T x N attention), .P, .Q (T x N), .mu, and .W (softmax logits, else None)."""

    def __init__(self, curves, summary, config, arrays, engine=None):
        self.curves, self.summary, self.config = curves, summary, config
        self.V, self.A, self.P, self.Q, self.mu = (arrays[k] for k in ("V", "A", "P", "Q", "mu"))
        self.W = arrays.get("W")
        self._engine = engine

    def save(self, dir):
        """Writes the files of `scb train --out DIR` (DIR must be new or empty)."""
        if self._engine is None:
            raise ValueError("save: this run was loaded from files; it is saved already")
        self._engine.save(os.fspath(dir))

    def __repr__(self):
        final = self.summary.get("final", {})
        return (f"<scb.Run {self.summary.get('status')} steps={self.summary.get('steps')} "
                f"dist_A_norm={final.get('dist_A_norm')}>")


def train(config, *, device="auto", threads=0, progress=True, overrides=None, **kwargs):
    """Trains one run. `config` is a dict or a path in the config format; `overrides` a dict of
    dotted keys (or keyword arguments with __ for the dot: train__lambda=0.01)."""
    text, base = config_document(config)
    with ProgressBar(progress, "scb.train") as bar:
        engine = _scb.train(text, base, override_assignments(overrides, kwargs), os.getcwd(), device, threads, bar)
    arrays = {k: getattr(engine, k) for k in ("V", "A", "P", "Q", "mu", "W")}
    return Run(pd.DataFrame(engine.curves), json.loads(engine.summary_json), json.loads(engine.config_json),
               arrays, engine)


def load_run(dir):
    """A Run from the folder `scb train --out` (or Run.save, or a sweep's runs/<run_id>/) wrote."""
    dir = os.fspath(dir)
    with open(os.path.join(dir, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    with open(os.path.join(dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    arrays = {k: np.load(os.path.join(dir, f"{k}.npy")) for k in ("V", "A", "P", "Q", "mu")}
    if os.path.exists(os.path.join(dir, "W.npy")):
        arrays["W"] = np.load(os.path.join(dir, "W.npy"))
    return Run(pd.read_csv(os.path.join(dir, "curves.csv")), summary, config, arrays)
