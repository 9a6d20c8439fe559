"""Bad input raises scb.ConfigError, a ValueError, with the CLI's one-line message naming the key."""
import subprocess
import json

import numpy as np
import pytest

import scb
from conftest import small_config


@pytest.mark.parametrize("patch, key", [
    ({"train": {"lamda": 0.1}}, "train.lamda"),
    ({"train": {"batch_size": 0}}, "train.batch_size"),
    ({"problem": {"N": 1}}, "problem.N"),
])
def test_config_errors_name_the_key(patch, key):
    with pytest.raises(scb.ConfigError) as e:
        scb.train(patch, progress=False)
    assert isinstance(e.value, ValueError)
    assert str(e.value).startswith(key + ":")


def test_message_matches_the_cli(tmp_path, scb_binary):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"train": {"lamda": 0.1}}))
    cli = subprocess.run([scb_binary, "train", str(path)], capture_output=True, text=True)
    assert cli.returncode == 2
    with pytest.raises(scb.ConfigError) as e:
        scb.train(path, progress=False)
    assert cli.stderr.strip() == f"scb train: {e.value}"


def test_bad_override_and_device():
    with pytest.raises(scb.ConfigError, match="train.lambda"):
        scb.train(small_config(), progress=False, overrides={"train.lambda": "much"})
    with pytest.raises(scb.ConfigError, match="--device"):
        scb.train(small_config(), progress=False, device="tpu")


def test_array_errors():
    P, Q, mu = scb.make_problem(small_config())
    V, A = np.eye(3), Q.copy()
    with pytest.raises(scb.ConfigError, match="V: expected shape"):
        scb.population_loss(P, Q, mu, np.eye(4), A)
    with pytest.raises(scb.ConfigError, match="mu:"):
        scb.population_loss(P, Q, mu[::-1] + 0.01, V, A)
    with pytest.raises(scb.ConfigError, match="Q: column"):
        scb.population_loss(P, Q * 2, None, V, A)


def test_missing_config_file():
    with pytest.raises(scb.ConfigError, match="cannot read"):
        scb.train("/nonexistent/config.json", progress=False)
