"""The package under test is python/scb with its built module (CMake puts _scb there); the CLI
is the build's `scb` (SCB_BINARY, default build/scb) for the tests that compare with it."""
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "python"))


@pytest.fixture
def repo():
    return REPO


@pytest.fixture
def scb_binary():
    path = pathlib.Path(os.environ.get("SCB_BINARY", REPO / "build" / "scb"))
    if not path.exists():
        pytest.skip(f"no scb binary at {path} (set SCB_BINARY)")
    return str(path)


def small_config(**train):
    cfg = {"problem": {"N": 3, "T": 40, "Q": 2, "seed": 1},
           "train": {"steps": 60, "batch_size": 16, "stage1_steps": 20, "seed": 2},
           "eval": {"every": 20}}
    cfg["train"].update(train)
    return cfg
