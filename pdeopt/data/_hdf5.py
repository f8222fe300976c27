"""HDF5 storage in PDEBench's per-seed layout, written atomically and checksummed."""

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

CHECKSUM_ATTR = "sha256"


class DataFileError(ValueError):
    """A data file is missing, unreadable, corrupt, or does not match what was asked for.

    The message names the file and what to do about it.
    """


def _checksum(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def write_seed_file(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Mapping[str, np.ndarray],
    attrs: Mapping[str, object] | None = None,
    *,
    first_seed: int = 0,
) -> Path:
    """Write trajectories in PDEBench's per-seed layout, atomically.

    One group per sample, named by its zero-padded seed (`"0000"`, `"0001"`, …), each holding
    `data` with shape `[T, X(, Y), C]` and `grid/x`, `grid/t` (and `grid/y`), as in PDEBench's
    `1D_diff-sorp_NA_NA.h5`. pdeopt adds a SHA-256 checksum of every `data` array as a group
    attribute and the generator's parameters as file attributes, so that a truncated or
    mismatched cache is detected on read.

    The file is written to a temporary name in the same folder and moved into place with
    `os.replace`, so an interrupted write never leaves a partial file at `path`.

    **Arguments:**

    - `path`: the `.h5`/`.hdf5` file to write.
    - `data`: array of shape `[n_samples, T, X(, Y), C]`.
    - `grid`: coordinate arrays, keys among `"x"`, `"y"`, `"t"`.
    - `attrs`: file-level metadata (numbers, strings); stored as HDF5 attributes.
    - `first_seed`: the seed number of the first sample.

    **Returns:** the path written.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim < 3:
        raise ValueError(
            f"`data` must have shape [n_samples, T, X(, Y), C]; got shape {data.shape}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tmp", prefix=path.name + ".", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            f.attrs["layout"] = "pdebench-per-seed"
            for i, sample in enumerate(data):
                group = f.create_group(f"{first_seed + i:04d}")
                group.create_dataset("data", data=sample)
                group.attrs[CHECKSUM_ATTR] = _checksum(sample)
                for name, coords in grid.items():
                    group.create_dataset(f"grid/{name}", data=np.asarray(coords))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_seed_file(
    path: str | os.PathLike,
    seeds: Sequence[str] | None = None,
    *,
    expected_attrs: Mapping[str, object] | None = None,
    verify: bool = True,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, object]]:
    """Read trajectories from a PDEBench per-seed HDF5 file (`.h5` or `.hdf5`).

    **Arguments:**

    - `path`: the file.
    - `seeds`: group names to read, in order; default all groups, sorted (PDEBench's
        `FNODatasetMult` order).
    - `expected_attrs`: file attributes that must match (e.g. the grid sizes and the
        generator's parameters of a cache); a mismatch raises `DataFileError`.
    - `verify`: check each group's stored SHA-256 checksum, when present.

    **Returns:** `(data, grid, attrs)` with `data` of shape `[n, T, X(, Y), C]`, the grid
    arrays of the first group and the file attributes.

    **Raises:** `DataFileError` naming the file and the fix, when the file is missing,
    unreadable, not in the per-seed layout, corrupt, or mismatched.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Data file '{path}' does not exist.")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataFileError(
            f"Data file '{path}' is not a readable HDF5 file ({e}). It is probably corrupt or "
            "truncated: delete it (pdeopt regenerates cached data on the next run) or point "
            "the config at a valid file."
        ) from e
    with f:
        attrs = {k: _to_python(v) for k, v in f.attrs.items()}
        for key, want in (expected_attrs or {}).items():
            have = attrs.get(key)
            if not _attr_equal(have, want):
                raise DataFileError(
                    f"Data file '{path}' does not match the requested configuration: attribute "
                    f"'{key}' is {have!r} in the file but {want!r} was requested. Delete the file "
                    "to regenerate it, or change the config to match it."
                )
        names = sorted(k for k in f.keys() if isinstance(f[k], h5py.Group))
        if not names or "data" not in f[names[0]]:
            raise DataFileError(
                f"Data file '{path}' is not in PDEBench's per-seed layout (numbered groups "
                "holding `data` and `grid/...`)."
            )
        seeds = names if seeds is None else list(seeds)
        arrays = []
        for name in seeds:
            if name not in f or "data" not in f[name]:
                raise DataFileError(f"Data file '{path}' has no sample group '{name}/data'.")
            group = f[name]
            try:
                sample = group["data"][()]
            except OSError as e:
                raise DataFileError(
                    f"Sample '{name}' of data file '{path}' cannot be read ({e}); the file is "
                    "corrupt. Delete it to regenerate it."
                ) from e
            stored = group.attrs.get(CHECKSUM_ATTR)
            if verify and stored is not None and _checksum(sample) != _to_python(stored):
                raise DataFileError(
                    f"Sample '{name}' of data file '{path}' fails its checksum; the file is "
                    "corrupt. Delete it to regenerate it."
                )
            arrays.append(sample)
        grid = {k: group["grid"][k][()] for k in group.get("grid", {})}
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataFileError(f"Data file '{path}' holds samples of different shapes {shapes}.")
    return np.stack(arrays), grid, attrs


def _to_python(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attr_equal(have, want) -> bool:
    if have is None:
        return False
    if isinstance(want, float) or isinstance(have, float):
        try:
            return bool(np.isclose(float(have), float(want), rtol=1e-12, atol=0.0))
        except (TypeError, ValueError):
            return False
    return have == want
