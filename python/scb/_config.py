"""Config documents from what a user passes: a dict, or a path to a JSON file (relative paths in
it resolve against the file's folder, as for `scb train`), plus dotted overrides that behave
exactly like `scb train --set key=value` (relative paths in them resolve against the cwd)."""
import json
import os


def config_document(config):
    """(JSON text, base folder) of a config given as a dict or a path."""
    if isinstance(config, dict):
        return json.dumps(config), os.getcwd()
    if isinstance(config, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(config))
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            from ._scb import ConfigError
            raise ConfigError(f"{config}: cannot read the config file ({e.strerror})") from None
        return text, os.path.dirname(path)
    raise TypeError(f"config: expected a dict or a path, got {type(config).__name__}")


def override_assignments(overrides, kwargs):
    """["train.lambda=0.01", ...] from {"train.lambda": 0.01} and keyword arguments, where a
    double underscore stands for the dot (train__lambda=0.01)."""
    merged = dict(overrides or {})
    merged.update({k.replace("__", "."): v for k, v in kwargs.items()})
    return [f"{key}={json.dumps(value)}" for key, value in merged.items()]
