"""Atomic checkpoints and JSON files."""

import json
import os
from pathlib import Path

import equinox as eqx

from .._files import atomic_write


def save_checkpoint(path: str | os.PathLike, model: eqx.Module) -> Path:
    """Serialise the model's array leaves (`eqx.tree_serialise_leaves`), atomically.

    Load with `load_checkpoint(path, like)`, where `like` is a model built with the same
    configuration (e.g. from the run directory's resolved config). The file gets the umask's
    permissions (`0o644` by default).
    """
    path = Path(path)
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        eqx.tree_serialise_leaves(f, model)
    return path


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
    """Write `obj` as indented JSON, atomically (with the umask's permissions)."""
    path = Path(path)
    text = json.dumps(obj, indent=2, sort_keys=True)
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return path
