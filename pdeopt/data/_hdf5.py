"""HDF5 storage in both PDEBench layouts, written atomically and checksummed.

- *single-file* (PDEBench `.hdf5`, e.g. `1D_Advection_Sols_beta0.1.hdf5`, `2D_DarcyFlow_*.hdf5`):
  one dataset `tensor` of shape `[N, T, X(, Y)]` (Darcy: `[N, 1, X, Y]`, input coefficient
  `nu` `[N, X, Y]`), or one dataset per channel (`density`, `pressure`, `Vx`, … for
  compressible Navier–Stokes), plus `x-coordinate`, `y-coordinate`, `t-coordinate`.
- *per-seed* (PDEBench `.h5`, e.g. `1D_diff-sorp_NA_NA.h5`): groups `"0000"`, `"0001"`, …
  each holding `data` `[T, X(, Y), C]` and `grid/{x,y,t}`.

`read_data_file` reads either, detected from the file's keys (never from its suffix).
"""

import contextlib
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

CHECKSUM_ATTR = "sha256"
_CHECKSUM_GROUP = "sha256"  # single-file layout: one [N] dataset of per-sample digests per field
_SPACE = ("x", "y", "z")
_CHANNEL_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")  # compressible NS, in this order
_COORDINATE = "{}-coordinate"
_FIX_MISSING = (
    "Check the path (e.g. problem.data_path), or generate the data with "
    "`python -m experiments.generate problem=<name>`."
)
_FIX_CORRUPT = "Delete it (pdeopt regenerates cached data on the next run) or re-download it."


class DataFileError(ValueError):
    """A data file is missing, unreadable, corrupt, or does not match what was asked for.

    The message names the file and what to do about it.
    """


@dataclasses.dataclass(frozen=True)
class DataFile:
    """The contents of a PDEBench-style data file, in one array layout whatever the file's.

    **Fields:**

    - `data`: the solution fields, `[N, T, X(, Y(, Z)), C]` (a steady problem such as Darcy
        has `T = 1`).
    - `grid`: coordinate arrays by name among `"x"`, `"y"`, `"z"`, `"t"`.
    - `attrs`: file-level metadata.
    - `inputs`: further per-sample arrays, e.g. Darcy's coefficient `"nu"` `[N, X, Y]`.
    - `channels`: the name of each channel of `data`.
    - `seeds`: the sample names: group names (per-seed) or zero-padded indices (single-file).
    - `layout`: `"single-file"` or `"per-seed"`.
    """

    data: np.ndarray
    grid: dict[str, np.ndarray]
    attrs: dict[str, object]
    inputs: dict[str, np.ndarray]
    channels: tuple[str, ...]
    seeds: tuple[str, ...]
    layout: str


def _checksum(array: np.ndarray | np.generic) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@contextlib.contextmanager
def _atomic_h5(path: Path) -> Iterator[h5py.File]:
    """An `h5py.File` on a temporary name next to `path`, moved into place on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".tmp", prefix=path.name + ".", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.replace(tmp, path)
        _sidecar(path).unlink(missing_ok=True)  # A digest of the replaced file is stale.
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_seed_file(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Mapping[str, np.ndarray],
    attrs: Mapping[str, object] | None = None,
    *,
    first_seed: int = 0,
    inputs: Mapping[str, np.ndarray] | None = None,
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
    - `inputs`: further per-sample arrays `[n_samples, ...]` (e.g. a coefficient field),
        stored next to `data` in each group under their names.

    **Returns:** the path written.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim < 3:
        raise ValueError(
            f"`data` must have shape [n_samples, T, X(, Y), C]; got shape {data.shape}."
        )
    inputs = {k: np.asarray(v) for k, v in (inputs or {}).items()}
    with _atomic_h5(path) as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        f.attrs["layout"] = "pdebench-per-seed"
        for i, sample in enumerate(data):
            group = f.create_group(f"{first_seed + i:04d}")
            group.create_dataset("data", data=sample)
            group.attrs[CHECKSUM_ATTR] = _checksum(sample)
            for name, value in inputs.items():
                group.create_dataset(name, data=value[i])
                group[name].attrs[CHECKSUM_ATTR] = _checksum(value[i])
            for name, coords in grid.items():
                group.create_dataset(f"grid/{name}", data=np.asarray(coords))
    return path


def write_single_file(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Mapping[str, np.ndarray],
    attrs: Mapping[str, object] | None = None,
    *,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write samples in PDEBench's single-file layout, atomically.

    `data` `[N, T, X(, Y), C]` becomes `tensor` `[N, T, X(, Y)]` when `C = 1` (PDEBench's shape;
    a steady field has `T = 1`, as in `2D_DarcyFlow_*.hdf5`) and `[N, T, X(, Y), C]` otherwise.
    Coordinates go to `x-coordinate`, `y-coordinate`, `t-coordinate`; `inputs` (e.g. Darcy's
    `nu` `[N, X, Y]`) to top-level datasets. pdeopt adds per-sample SHA-256 digests of every
    per-sample dataset under `sha256/<name>`, which PDEBench's loaders ignore. Written to a
    temporary name and moved into place, like `write_seed_file`.

    **Arguments:** as `write_seed_file`, without `first_seed`.

    **Returns:** the path written.
    """
    path = Path(path)
    data = np.asarray(data)
    if data.ndim < 4:
        raise ValueError(
            f"`data` must have shape [n_samples, T, X(, Y), C]; got shape {data.shape}."
        )
    tensor = data[..., 0] if data.shape[-1] == 1 else data
    fields = {"tensor": tensor, **{k: np.asarray(v) for k, v in (inputs or {}).items()}}
    with _atomic_h5(path) as f:
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        f.attrs["layout"] = "pdebench-single-file"
        for name, value in fields.items():
            f.create_dataset(name, data=value)
            digests = np.array([_checksum(v) for v in value], dtype="S64")
            f.create_dataset(f"{_CHECKSUM_GROUP}/{name}", data=digests)
        for name, coords in grid.items():
            f.create_dataset(_COORDINATE.format(name), data=np.asarray(coords))
    return path


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def file_digest(path: str | os.PathLike) -> str:
    """The SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_file_digest(path: str | os.PathLike) -> Path:
    """Write `<path>.sha256` (`sha256sum` format) next to a finished data file, atomically."""
    path = Path(path)
    sidecar = _sidecar(path)
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(f"{file_digest(path)}  {path.name}\n")
    os.replace(tmp, sidecar)
    return sidecar


def _open(path: Path, verify: bool) -> h5py.File:
    if not path.is_file():
        raise DataFileError(f"Data file '{path}' does not exist. {_FIX_MISSING}")
    sidecar = _sidecar(path)
    if verify and sidecar.is_file():
        stored = sidecar.read_text().split()[0]
        if file_digest(path) != stored:
            raise DataFileError(
                f"Data file '{path}' fails its file checksum ({sidecar.name}); the file is "
                f"corrupt or was replaced. {_FIX_CORRUPT} If you replaced it on purpose, "
                f"delete '{sidecar}'."
            )
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataFileError(
            f"Data file '{path}' is not a readable HDF5 file ({e}). It is probably corrupt or "
            f"truncated: {_FIX_CORRUPT}"
        ) from e


def _check_attrs(path: Path, attrs: dict, expected: Mapping[str, object] | None) -> None:
    for key, want in (expected or {}).items():
        have = attrs.get(key)
        if not _attr_equal(have, want):
            raise DataFileError(
                f"Data file '{path}' does not match the requested configuration: attribute "
                f"'{key}' is {have!r} in the file but {want!r} was requested. Delete the file "
                "to regenerate it, or change the config to match it."
            )


def _read_dataset(path: Path, dataset: h5py.Dataset, index=()) -> np.ndarray | np.generic:
    try:
        return dataset[index]
    except (OSError, ValueError) as e:
        raise DataFileError(
            f"Dataset '{dataset.name}' of data file '{path}' cannot be read ({e}); the file is "
            f"corrupt. {_FIX_CORRUPT}"
        ) from e


def _verify(path: Path, where: str, array: np.ndarray | np.generic, stored) -> None:
    if stored is not None and _checksum(array) != _to_python(stored):
        raise DataFileError(
            f"Sample '{where}' of data file '{path}' fails its checksum; the file is corrupt. "
            f"{_FIX_CORRUPT}"
        )


def _seed_groups(f: h5py.File) -> list[str]:
    return sorted(k for k, v in f.items() if isinstance(v, h5py.Group) and "data" in v)


def _detect_layout(path: Path, f: h5py.File) -> str:
    if "tensor" in f or "nu" in f or any(name in f for name in _CHANNEL_FIELDS):
        return "single-file"
    if _seed_groups(f):
        return "per-seed"
    raise DataFileError(
        f"Data file '{path}' is in no known layout: its top-level keys are {sorted(f.keys())}. "
        "pdeopt reads PDEBench's single-file layout (`tensor`, or `density`/`pressure`/`Vx`…, "
        "or `nu`, with `x-coordinate`/`t-coordinate`) and its per-seed layout (groups "
        "'0000', '0001', … holding `data` and `grid/x`, `grid/t`). Convert the file to one "
        "of these, or point the config at a PDEBench file."
    )


def _read_per_seed(
    path: Path, f: h5py.File, seeds: Sequence[str] | None, verify: bool
) -> tuple[np.ndarray, dict, dict, tuple[str, ...]]:
    names = _seed_groups(f)
    if not names:
        raise DataFileError(
            f"Data file '{path}' is not in PDEBench's per-seed layout (numbered groups "
            "holding `data` and `grid/...`)."
        )
    seeds = names if seeds is None else list(seeds)
    arrays, inputs = [], {}
    group = None
    for name in seeds:
        if name not in f or "data" not in f[name]:
            raise DataFileError(f"Data file '{path}' has no sample group '{name}/data'.")
        group = f[name]
        sample = _read_dataset(path, group["data"], ())
        if verify:
            _verify(path, name, sample, group.attrs.get(CHECKSUM_ATTR))
        arrays.append(sample)
        for key, item in group.items():
            if key in ("data", "grid") or not isinstance(item, h5py.Dataset):
                continue
            value = _read_dataset(path, item, ())
            if verify:
                _verify(path, f"{name}/{key}", value, item.attrs.get(CHECKSUM_ATTR))
            inputs.setdefault(key, []).append(value)
    grid = {k: group["grid"][k][()] for k in group.get("grid", {})}
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataFileError(f"Data file '{path}' holds samples of different shapes {shapes}.")
    return np.stack(arrays), grid, {k: np.stack(v) for k, v in inputs.items()}, tuple(seeds)


def _read_single(
    path: Path, f: h5py.File, samples: Sequence[int] | None, verify: bool
) -> tuple[np.ndarray, dict, dict, tuple[str, ...], tuple[str, ...]]:
    grid = {
        name: np.asarray(f[_COORDINATE.format(name)][()])
        for name in (*_SPACE, "t")
        if _COORDINATE.format(name) in f
    }
    fields = ["tensor"] if "tensor" in f else [c for c in _CHANNEL_FIELDS if c in f]
    num = f[fields[0] if fields else "nu"].shape[0]
    index = np.arange(num) if samples is None else np.asarray(samples, dtype=int)
    if index.size and (index.min() < -num or index.max() >= num):
        raise DataFileError(
            f"Data file '{path}' holds {num} samples; sample indices {list(index)} are out of "
            "range."
        )
    index = index % num if index.size else index
    unique, inverse = np.unique(index, return_inverse=True)  # h5py wants increasing indices

    def read(name: str) -> np.ndarray:
        values = _read_dataset(path, f[name], unique)
        digests = f.get(f"{_CHECKSUM_GROUP}/{name}")
        if verify and digests is not None:
            stored = _read_dataset(path, digests, unique)
            for i, value, digest in zip(unique, values, stored):
                _verify(path, f"{name}[{i}]", value, digest)
        return values[inverse]

    per_sample = [
        k
        for k, v in f.items()
        if isinstance(v, h5py.Dataset)
        and v.ndim >= 1
        and v.shape[0] == num
        and not k.endswith("-coordinate")
    ]
    inputs = {k: read(k) for k in per_sample if k not in fields}
    n_space = sum(name in grid for name in _SPACE)
    if fields == ["tensor"]:
        tensor = read("tensor")
        has_channels = n_space and tensor.ndim == 2 + n_space + 1
        data = tensor if has_channels else tensor[..., None]
        channels = tuple(f"u{c}" for c in range(data.shape[-1])) if has_channels else ("u",)
    elif fields:
        data = np.stack([read(c) for c in fields], axis=-1)
        channels = tuple(fields)
    else:  # Only an input field: a file of coefficients without solutions.
        data = np.zeros((len(index), 0))
        channels = ()
    return data, grid, inputs, channels, tuple(f"{i:04d}" for i in index)


def read_data_file(
    path: str | os.PathLike,
    samples: Sequence[int] | Sequence[str] | None = None,
    *,
    expected_attrs: Mapping[str, object] | None = None,
    verify: bool = True,
) -> DataFile:
    """Read a PDEBench data file in either layout (`.h5` or `.hdf5`), detected from its keys.

    Single-file files (`tensor`, or `density`/`pressure`/`Vx`/…, or `nu`) and per-seed files
    (numbered groups holding `data`) are both returned as `DataFile(data=[N, T, X(, Y), C],
    ...)`. A PDEBench `tensor` `[N, T, X(, Y)]` gains a channel axis; compressible-NS fields are
    stacked as channels in the order density, pressure, Vx, Vy, Vz; Darcy's `tensor`
    `[N, 1, X, Y]` is one steady frame and its `nu` is returned in `inputs`.

    **Arguments:**

    - `path`: the file.
    - `samples`: which samples to read, in order: integer positions (either layout; per-seed
        positions count the sorted group names, PDEBench's `FNODatasetMult` order) or group
        names (per-seed). Default: all.
    - `expected_attrs`: file attributes that must match (e.g. a cache's grid sizes and
        generator parameters); a mismatch raises `DataFileError`.
    - `verify`: check the stored SHA-256 digests, where the file has them (pdeopt-written
        files; PDEBench's own files have none).

    **Returns:** a `DataFile`.

    **Raises:** `DataFileError` naming the file and the fix, when the file is missing,
    unreadable, in no known layout, corrupt, or mismatched.
    """
    path = Path(path)
    with _open(path, verify) as f:
        attrs = {k: _to_python(v) for k, v in f.attrs.items()}
        _check_attrs(path, attrs, expected_attrs)
        layout = _detect_layout(path, f)
        if layout == "per-seed":
            names = _seed_groups(f)
            if samples is not None:
                samples = [names[s] if not isinstance(s, str) else s for s in samples]
            data, grid, inputs, seeds = _read_per_seed(path, f, samples, verify)
            channels = tuple(f"u{c}" for c in range(data.shape[-1]))
            channels = ("u",) if len(channels) == 1 else channels
        else:
            if samples is not None and any(isinstance(s, str) for s in samples):
                raise DataFileError(
                    f"Data file '{path}' is in the single-file layout, which has no sample "
                    "names; select samples by integer position."
                )
            data, grid, inputs, channels, seeds = _read_single(path, f, samples, verify)
    return DataFile(data, grid, attrs, inputs, channels, seeds, layout)


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
    arrays of the last group read and the file attributes.

    **Raises:** `DataFileError` naming the file and the fix, when the file is missing,
    unreadable, not in the per-seed layout, corrupt, or mismatched.
    """
    path = Path(path)
    with _open(path, verify) as f:
        attrs = {k: _to_python(v) for k, v in f.attrs.items()}
        _check_attrs(path, attrs, expected_attrs)
        data, grid, _, _ = _read_per_seed(path, f, seeds, verify)
    return data, grid, attrs


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
