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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from .._files import atomic_write

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
    with atomic_write(path) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f
    _sidecar(path).unlink(missing_ok=True)  # A digest of the replaced file is stale.


def _fixed(value: object) -> object:
    """A string as a fixed-length byte string, stored inside its attribute. h5py would store
    a `str` in the file's global heap, where one damaged length field makes reading it hang
    instead of fail."""
    if not isinstance(value, str):
        return value
    encoded = value.encode()
    return np.array(encoded, dtype=f"S{max(len(encoded), 1)}")


def _write_attrs(
    f: h5py.File, attrs: Mapping[str, object] | None, layout: str, num: int, first_seed: int
) -> None:
    """The caller's attributes, then the layout, sample count and first seed the file holds."""
    facts = {"layout": f"pdebench-{layout}", "num_samples": num, "first_seed": first_seed}
    attrs = dict(attrs or {})
    for key, value in facts.items():
        if key in attrs and attrs[key] != value:
            raise ValueError(
                f"`attrs[{key!r}]` is {attrs[key]!r}, but the file holds {value!r}; leave it "
                "out (the writer records it)."
            )
    for key, value in (attrs | facts).items():
        f.attrs[key] = _fixed(value)


def _create_checked(group: h5py.Group, name: str, value) -> None:
    """A dataset with the SHA-256 digest of its contents as its `sha256` attribute."""
    value = np.asarray(value)
    group.create_dataset(name, data=value)
    group[name].attrs[CHECKSUM_ATTR] = _fixed(_checksum(value))


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
    attribute (and of every input and coordinate array as a dataset attribute), the
    generator's parameters, and the `layout`, `num_samples` and `first_seed` of the file as
    file attributes, so that a truncated, damaged or mismatched file is detected on read.

    The file is written to a temporary name in the same folder and moved into place with
    `os.replace`, so an interrupted write never leaves a partial file at `path`; it gets the
    umask's permissions (`0o644` by default).

    **Arguments:**

    - `path`: the `.h5`/`.hdf5` file to write.
    - `data`: array of shape `[n_samples, T, X(, Y), C]`.
    - `grid`: coordinate arrays, keys among `"x"`, `"y"`, `"t"`.
    - `attrs`: file-level metadata (numbers, strings); stored as HDF5 attributes. The writer
        records `layout`, `num_samples` and `first_seed` itself; `attrs` may repeat them but
        not contradict them.
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
        _write_attrs(f, attrs, "per-seed", len(data), first_seed)
        for i, sample in enumerate(data):
            group = f.create_group(f"{first_seed + i:04d}")
            group.create_dataset("data", data=sample)
            group.attrs[CHECKSUM_ATTR] = _fixed(_checksum(sample))
            for name, value in inputs.items():
                _create_checked(group, name, value[i])
            for name, coords in grid.items():
                _create_checked(group, f"grid/{name}", coords)
    return path


def write_single_file(
    path: str | os.PathLike,
    data: np.ndarray,
    grid: Mapping[str, np.ndarray],
    attrs: Mapping[str, object] | None = None,
    *,
    first_seed: int = 0,
    inputs: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write samples in PDEBench's single-file layout, atomically.

    `data` `[N, T, X(, Y), C]` becomes `tensor` `[N, T, X(, Y)]` when `C = 1` (PDEBench's shape;
    a steady field has `T = 1`, as in `2D_DarcyFlow_*.hdf5`) and `[N, T, X(, Y), C]` otherwise.
    Coordinates go to `x-coordinate`, `y-coordinate`, `t-coordinate`; `inputs` (e.g. Darcy's
    `nu` `[N, X, Y]`) to top-level datasets. pdeopt adds per-sample SHA-256 digests of every
    per-sample dataset under `sha256/<name>` and a digest of each coordinate array, which
    PDEBench's loaders ignore; the seeds are `first_seed` plus the sample's index. Written to a
    temporary name and moved into place, like `write_seed_file`.

    **Arguments:** as `write_seed_file`.

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
        _write_attrs(f, attrs, "single-file", len(data), first_seed)
        for name, value in fields.items():
            f.create_dataset(name, data=value)
            digests = np.array([_checksum(v) for v in value], dtype="S64")
            f.create_dataset(f"{_CHECKSUM_GROUP}/{name}", data=digests)
        for name, coords in grid.items():
            _create_checked(f, _COORDINATE.format(name), coords)
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
    with atomic_write(sidecar) as tmp:
        tmp.write_text(f"{file_digest(path)}  {path.name}\n")
    return sidecar


# What h5py and NumPy raise on a damaged file: a bad header or B-tree (OSError, RuntimeError,
# KeyError), undecodable or odd-typed attributes (ValueError, UnicodeDecodeError, TypeError),
# shapes that do not fit (ValueError, IndexError), impossible sizes (OverflowError, MemoryError).
_READ_ERRORS = (
    OSError,
    RuntimeError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    OverflowError,
    MemoryError,
)


@contextlib.contextmanager
def _reading(path: Path, what: str | None = None) -> Iterator[None]:
    """Turn any failure of h5py or NumPy inside the block into a `DataFileError` on `path`."""
    try:
        yield
    except DataFileError:
        raise
    except _READ_ERRORS as e:
        where = f" ({what})" if what else ""
        raise DataFileError(
            f"Data file '{path}' cannot be read{where}: {type(e).__name__}: {e}. The file is "
            f"corrupt or truncated. {_FIX_CORRUPT}"
        ) from e


def _open(path: Path, verify: bool) -> h5py.File:
    if not path.is_file():
        raise DataFileError(f"Data file '{path}' does not exist. {_FIX_MISSING}")
    sidecar = _sidecar(path)
    if verify and sidecar.is_file():
        with _reading(path, f"its digest file '{sidecar.name}'"):
            stored = (sidecar.read_text().split() or [""])[0]
        if file_digest(path) != stored:
            raise DataFileError(
                f"Data file '{path}' fails its file checksum ({sidecar.name}); the file is "
                f"corrupt or was replaced. {_FIX_CORRUPT} If you replaced it on purpose, "
                f"delete '{sidecar}'."
            )
    with _reading(path, "not a readable HDF5 file"):
        return h5py.File(path, "r")


def _read_attrs(path: Path, f: h5py.File) -> dict[str, object]:
    attrs = {}
    for key in f.attrs:
        with _reading(path, f"file attribute {key!r}"):
            attrs[key] = _to_python(f.attrs[key])
    return attrs


def _check_attrs(path: Path, attrs: dict, expected: Mapping[str, object] | None) -> None:
    for key, want in (expected or {}).items():
        have = attrs.get(key)
        if not _attr_equal(have, want):
            raise DataFileError(
                f"Data file '{path}' does not match the requested configuration: attribute "
                f"'{key}' is {have!r} in the file but {want!r} was requested. Delete the file "
                "to regenerate it, or change the config to match it."
            )


def _read_dataset(
    path: Path,
    item: object,
    stored: object = None,
    *,
    required: bool = False,
    index=(),
    kinds: str = "biufc",
) -> np.ndarray:
    """A dataset's values (at `index` along its first axis), checked against the SHA-256
    digest `stored` when given; `required`: a missing digest is an error; `kinds`: the NumPy
    dtype kinds it may hold (numbers)."""
    name = getattr(item, "name", repr(item))
    if not isinstance(item, h5py.Dataset):
        raise DataFileError(
            f"Data file '{path}': '{name}' is not a dataset; the file is corrupt or not in a "
            f"PDEBench layout. {_FIX_CORRUPT}"
        )
    with _reading(path, f"dataset '{name}'"):
        if item.dtype.kind not in kinds:
            raise DataFileError(
                f"Data file '{path}': dataset '{name}' holds {item.dtype} values, of another "
                f"type than expected; the file is corrupt or not a PDEBench file. {_FIX_CORRUPT}"
            )
        if item.compression is None and item.nbytes > path.stat().st_size:
            raise DataFileError(
                f"Data file '{path}': dataset '{name}' claims shape {item.shape} "
                f"({item.nbytes} bytes), more than the whole file; the file is corrupt. "
                f"{_FIX_CORRUPT}"
            )
        value = np.asarray(item[index])
    if stored is None and required:
        raise DataFileError(
            f"Data file '{path}': dataset '{name}' has no checksum, although pdeopt wrote the "
            f"file with one; the file is corrupt. {_FIX_CORRUPT}"
        )
    if stored is not None and _checksum(value) != _to_python(stored):
        raise DataFileError(
            f"Data file '{path}': dataset '{name}' fails its checksum; the file is corrupt. "
            f"{_FIX_CORRUPT}"
        )
    return value


def _digest(path: Path, node: h5py.HLObject, verify: bool) -> object:
    """The `sha256` attribute of `node` (`None` without one, or when not verifying)."""
    if not verify:
        return None
    with _reading(path, f"the checksum of '{node.name}'"):
        return node.attrs.get(CHECKSUM_ATTR)


def _detect_layout(path: Path, f: h5py.File) -> str:
    if "tensor" in f or "nu" in f or any(name in f for name in _CHANNEL_FIELDS):
        return "single-file"
    if any(isinstance(v, h5py.Group) and "data" in v for v in f.values()):
        return "per-seed"
    raise DataFileError(
        f"Data file '{path}' is in no known layout: its top-level keys are {sorted(f.keys())}. "
        "pdeopt reads PDEBench's single-file layout (`tensor`, or `density`/`pressure`/`Vx`…, "
        "or `nu`, with `x-coordinate`/`t-coordinate`) and its per-seed layout (groups "
        "'0000', '0001', … holding `data` and `grid/x`, `grid/t`). Convert the file to one "
        "of these, or point the config at a PDEBench file."
    )


def _seed_groups(path: Path, f: h5py.File) -> list[str]:
    """The sample groups of a per-seed file, sorted; any other top-level member is an error."""
    names = sorted(f.keys())
    for name in names:
        with _reading(path, f"member '{name}'"):
            item = f[name]
            if not (isinstance(item, h5py.Group) and "data" in item):
                raise DataFileError(
                    f"Data file '{path}' is in the per-seed layout, but its member '{name}' is "
                    f"not a sample group holding `data`; the file is corrupt. {_FIX_CORRUPT}"
                )
    return names


def _check_count(path: Path, attrs: dict, count: int, names: Sequence[str] | None = None) -> None:
    """The number of samples a file holds (and the names of its sample groups) against the
    count and first seed pdeopt recorded in it."""
    recorded, first = attrs.get("num_samples"), attrs.get("first_seed")
    if names is not None and isinstance(recorded, int) and isinstance(first, int):
        expected = [_seed_name(first + i) for i in range(recorded)]
        if list(names) != expected:
            missing = sorted(set(expected) - set(names))
            unknown = sorted(set(names) - set(expected))
            raise DataFileError(
                f"Data file '{path}' records {recorded} samples from seed {first} on "
                f"(attributes 'num_samples', 'first_seed'), but sample groups {missing} are "
                f"missing and {unknown} unexpected; the file is corrupt. {_FIX_CORRUPT}"
            )
    if recorded is not None and not (isinstance(recorded, int) and recorded == count):
        raise DataFileError(
            f"Data file '{path}' records {recorded!r} samples (attribute 'num_samples') but "
            f"holds {count}; the file is corrupt or incomplete. {_FIX_CORRUPT}"
        )


def _seed_name(seed: int) -> str:
    return f"{seed:04d}"


def _read_grid(
    path: Path, group: h5py.Group, names: Sequence[tuple[str, str]], verify: bool
) -> dict:
    grid = {}
    for name, key in names:
        if key in group:
            item = group[key]
            grid[name] = _read_dataset(path, item, _digest(path, item, verify))
    return grid


def _same_grid(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _stack(path: Path, arrays: list[np.ndarray], what: str) -> np.ndarray:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataFileError(f"Data file '{path}' holds {what} of different shapes {shapes}.")
    return np.stack(arrays)


def _read_per_seed(
    path: Path, f: h5py.File, seeds: Sequence[str], verify: bool, required: bool
) -> tuple[np.ndarray, dict, dict]:
    arrays, inputs = [], {}
    grid, first, members = {}, None, None
    for name in seeds:
        with _reading(path, f"sample group '{name}'"):
            if name not in f or "data" not in f[name]:
                raise DataFileError(f"Data file '{path}' has no sample group '{name}/data'.")
            group = f[name]
            stored = _digest(path, group, verify)
            arrays.append(_read_dataset(path, group["data"], stored, required=required))
            keys = sorted(k for k in group if k not in ("data", "grid"))
            if members is not None and keys != members:
                raise DataFileError(
                    f"Data file '{path}': sample group '{name}' holds the inputs {keys}, but "
                    f"'{first}' holds {members}; the file is corrupt. {_FIX_CORRUPT}"
                )
            for key in keys:
                item = group[key]
                value = _read_dataset(path, item, _digest(path, item, verify), required=required)
                inputs.setdefault(key, []).append(value)
            coords = [(k, f"grid/{k}") for k in group.get("grid", {})]
            here = _read_grid(path, group, coords, verify)
            if first is not None and not _same_grid(here, grid):
                raise DataFileError(
                    f"Data file '{path}': the grid of sample group '{name}' differs from that "
                    f"of '{first}'; the file is corrupt. {_FIX_CORRUPT}"
                )
            grid, first, members = here, first or name, keys
    data = _stack(path, arrays, "samples")
    return data, grid, {k: _stack(path, v, f"'{k}' arrays") for k, v in inputs.items()}


def _read_single(
    path: Path,
    f: h5py.File,
    attrs: dict,
    samples: Sequence[int] | None,
    verify: bool,
    required: bool,
) -> tuple[np.ndarray, dict, dict, tuple[str, ...], tuple[str, ...]]:
    first_seed = attrs.get("first_seed", 0)
    if not isinstance(first_seed, int):
        raise DataFileError(
            f"Data file '{path}' has a 'first_seed' attribute {first_seed!r} that is not an "
            f"integer; the file is corrupt. {_FIX_CORRUPT}"
        )
    grid = _read_grid(path, f, [(n, _COORDINATE.format(n)) for n in (*_SPACE, "t")], verify)
    fields = ["tensor"] if "tensor" in f else [c for c in _CHANNEL_FIELDS if c in f]
    num = f[fields[0] if fields else "nu"].shape[0]
    _check_count(path, attrs, num)
    index = np.arange(num) if samples is None else np.asarray(samples, dtype=int)
    if index.size and (index.min() < -num or index.max() >= num):
        raise DataFileError(
            f"Data file '{path}' holds {num} samples; sample indices {list(index)} are out of "
            "range."
        )
    index = index % num if index.size else index
    unique, inverse = np.unique(index, return_inverse=True)  # h5py wants increasing indices
    rows = () if samples is None else unique

    def read(name: str) -> np.ndarray:
        values = _read_dataset(path, f[name], index=rows)
        digests = f.get(f"{_CHECKSUM_GROUP}/{name}") if verify else None
        if digests is None and verify and required:
            raise DataFileError(
                f"Data file '{path}' has no checksums for '{name}' ('{_CHECKSUM_GROUP}/{name}'), "
                f"although pdeopt wrote the file with them; the file is corrupt. {_FIX_CORRUPT}"
            )
        if digests is not None:
            stored = _read_dataset(path, digests, index=rows, kinds="S")
            if len(stored) != len(values):
                raise DataFileError(
                    f"Data file '{path}' holds {len(stored)} checksums for {len(values)} "
                    f"samples of '{name}'; the file is corrupt. {_FIX_CORRUPT}"
                )
            for i, value, digest in zip(unique, values, stored):
                if _checksum(value) != _to_python(digest):
                    raise DataFileError(
                        f"Data file '{path}': sample {i} of dataset '{name}' fails its "
                        f"checksum; the file is corrupt. {_FIX_CORRUPT}"
                    )
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
    return data, grid, inputs, channels, tuple(_seed_name(first_seed + int(i)) for i in index)


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

    The seeds are read from the file: the group names (per-seed), or the `first_seed`
    attribute (default 0) plus the sample's index (single-file). A file that pdeopt wrote
    (with a `layout` attribute) must hold exactly the `num_samples` samples it records, named
    from its `first_seed` on, and a checksum for every per-sample array; in a per-seed file
    every top-level member must be a sample group and all groups must hold the same inputs on
    the same grid.

    **Arguments:**

    - `path`: the file.
    - `samples`: which samples to read, in order: integer positions (either layout; per-seed
        positions count the sorted group names, PDEBench's `FNODatasetMult` order) or group
        names (per-seed). Default: all.
    - `expected_attrs`: file attributes that must match (e.g. a cache's grid sizes and
        generator parameters); a mismatch raises `DataFileError`.
    - `verify`: check the stored SHA-256 digests of samples and coordinates, where the file
        has them (pdeopt-written files; PDEBench's own files have none), and the whole-file
        digest `<path>.sha256` when it exists.

    **Returns:** a `DataFile`.

    **Raises:** `DataFileError` naming the file and the fix, when the file is missing,
    unreadable, in no known layout, corrupt, or mismatched; every error of h5py or NumPy
    while reading becomes one (the original is its `__cause__`).
    """
    path = Path(path)
    with _reading(path), _open(path, verify) as f:
        attrs = _read_attrs(path, f)
        _check_attrs(path, attrs, expected_attrs)
        layout = _detect_layout(path, f)
        recorded = attrs.get("layout")
        if recorded is not None and recorded != f"pdebench-{layout}":
            raise DataFileError(
                f"Data file '{path}' records the layout {recorded!r} but holds the {layout} "
                f"layout; the file is corrupt. {_FIX_CORRUPT}"
            )
        required = verify and recorded is not None  # pdeopt wrote it, with checksums.
        if layout == "per-seed":
            names = _seed_groups(path, f)
            _check_count(path, attrs, len(names), names)
            if samples is not None:
                samples = [names[s] if not isinstance(s, str) else s for s in samples]
            seeds = tuple(names if samples is None else samples)
            data, grid, inputs = _read_per_seed(path, f, seeds, verify, required)
            channels = tuple(f"u{c}" for c in range(data.shape[-1]))
            channels = ("u",) if len(channels) == 1 else channels
        else:
            if samples is not None and any(isinstance(s, str) for s in samples):
                raise DataFileError(
                    f"Data file '{path}' is in the single-file layout, which has no sample "
                    "names; select samples by integer position."
                )
            data, grid, inputs, channels, seeds = _read_single(
                path, f, attrs, samples, verify, required
            )
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
    file = read_data_file(path, seeds, expected_attrs=expected_attrs, verify=verify)
    if file.layout != "per-seed":
        raise DataFileError(
            f"Data file '{path}' is not in PDEBench's per-seed layout (numbered groups "
            "holding `data` and `grid/...`)."
        )
    return file.data, file.grid, file.attrs


def _to_python(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attr_equal(have, want) -> bool:
    if have is None:
        return False
    if isinstance(have, np.ndarray) or isinstance(want, np.ndarray):
        return np.array_equal(have, want)
    if isinstance(want, float) or isinstance(have, float):
        try:
            return bool(np.isclose(float(have), float(want), rtol=1e-12, atol=0.0))
        except (TypeError, ValueError):
            return False
    return have == want
