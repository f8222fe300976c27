"""Atomic checkpoints and JSON files."""

import json
import os
import tempfile
from pathlib import Path

import equinox as eqx


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, model: eqx.Module) -> Path:
    """Serialise the model's array leaves (`eqx.tree_serialise_leaves`), atomically.

    Load with `load_checkpoint(path, like)`, where `like` is a model built with the same
    configuration (e.g. from the run directory's resolved config).
    """
    return _atomic_write(Path(path), lambda f: eqx.tree_serialise_leaves(f, model))


def load_checkpoint(path: str | os.PathLike, like: eqx.Module) -> eqx.Module:
    """Load a checkpoint written by `save_checkpoint` into a model shaped like `like`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint '{path}' does not exist.")
    try:
        return eqx.tree_deserialise_leaves(path, like)
    except Exception as e:
        raise ValueError(
            f"Checkpoint '{path}' does not match the model built from the config ({e}); build "
            "the model with the configuration the checkpoint was trained with."
        ) from e


def save_json(path: str | os.PathLike, obj) -> Path:
    """Write `obj` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True).encode()
    return _atomic_write(Path(path), lambda f: f.write(text))
