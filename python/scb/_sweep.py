"""scb.sweep and scb.load_sweep: the sweep directory `scb sweep` writes, as DataFrames."""
import json
import os
import tempfile

import pandas as pd

from . import _scb
from ._progress import ProgressBar


class Sweep:
    """A sweep directory: .runs (runs.csv), .curves (curves.csv), .manifest (dict), .dir."""

    def __init__(self, dir, summary=None):
        self.dir = os.fspath(dir)
        self.runs = pd.read_csv(os.path.join(self.dir, "runs.csv"))
        self.curves = pd.read_csv(os.path.join(self.dir, "curves.csv"))
        with open(os.path.join(self.dir, "manifest.json"), encoding="utf-8") as f:
            self.manifest = json.load(f)
        self.summary = summary

    def run(self, run_id):
        """The saved parameters of one run (runs/<run_id>/), as scb.Run."""
        from ._run import load_run
        return load_run(os.path.join(self.dir, "runs", run_id))

    def __repr__(self):
        return f"<scb.Sweep {self.dir}: {len(self.runs)} runs>"


def _sweep_file(sweep):
    """A path for the engine: the file itself, or a dict written to a temporary file with its
    `base` made absolute (relative to the cwd, where the user's dict came from)."""
    if isinstance(sweep, (str, os.PathLike)):
        return os.fspath(sweep), None
    if not isinstance(sweep, dict):
        raise TypeError(f"sweep: expected a dict or a path, got {type(sweep).__name__}")
    doc = dict(sweep)
    if isinstance(doc.get("base"), str):
        doc["base"] = os.path.abspath(doc["base"])
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8")
    with f:
        json.dump(doc, f)
    return f.name, f.name


def sweep(sweep, out, *, resume=False, shard=None, device="auto", threads=0, progress=True):
    """Runs (or with resume=True continues) a sweep into `out`, like `scb sweep`; returns Sweep."""
    path, temporary = _sweep_file(sweep)
    try:
        with ProgressBar(progress, "scb.sweep") as bar:
            summary = _scb.sweep(path, os.fspath(out), resume, shard or "", device, threads, bar)
    finally:
        if temporary:
            os.unlink(temporary)
    return Sweep(out, summary)


def load_sweep(dir):
    """The tables of a sweep directory written by `scb sweep`, `scb merge` or scb.sweep."""
    return Sweep(dir)
