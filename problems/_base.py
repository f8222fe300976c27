"""The base of every learning problem: its PDE, how its samples are drawn and solved, and its
data (a generated, checksummed cache, or a file the user already has)."""

import abc
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import PRNGKeyArray

from pdeopt.constraints import AbstractGridDerivatives, AbstractPDE, FiniteDifference
from pdeopt.data import (
    DataFile,
    DataFileError,
    Dataset,
    Samples,
    generate_file,
    read_data_file,
    read_or_generate,
    train_test_split,
)

_SIZES = ("n", "nx", "ny", "nz", "nt", "nx_test")


@eqx.filter_jit
def _solve_batch(solver: eqx.Module, pde: AbstractPDE, inputs):
    return jax.vmap(lambda c: solver.solve(pde, c))(inputs)


def _scalar_fields(obj, types: bool = False) -> dict[str, object]:
    """`obj`'s dataclass fields that are numbers, strings or booleans; with `types`, the other
    fields (solvers, linear solvers) by their class name."""
    out = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if isinstance(value, int | float | str | bool):
            out[field.name] = value
        elif types and value is not None:
            out[field.name] = type(value).__name__
    return out


def solve_in_batches(solve, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """`solve` applied to consecutive chunks of `batch_size` inputs, concatenated (NumPy)."""
    return np.concatenate(
        [np.asarray(solve(inputs[s : s + batch_size])) for s in range(0, len(inputs), batch_size)]
    )


@dataclasses.dataclass(frozen=True)
class DataSplit:
    """The samples of one data file: seeds `first … first + num_samples − 1` on `pde`'s grid.

    Implements `pdeopt.data.SampleGenerator`, so `generate_file` writes it resumably.
    """

    problem: "AbstractProblem"
    name: str
    pde: AbstractPDE
    first_seed: int
    num_samples: int

    @property
    def data_layout(self) -> str:
        return self.problem.data_layout

    def data_grid(self) -> dict[str, np.ndarray]:
        return dict(zip(self.problem.axis_names, self.pde.coordinates()))

    def data_attrs(self) -> dict[str, object]:
        problem = self.problem
        return {
            "generator": f"problems.{problem.name}",
            "generator_version": problem.generator_version,
            "grid": "x".join(map(str, self.pde.grid_shape)),
            "num_samples": self.num_samples,
            "first_seed": self.first_seed,
            "seed": problem.seed,
            **problem.parameters(),
        }

    @property
    def path(self) -> Path:
        """The cache file, named by the problem, grid, size and a digest of the attributes."""
        attrs = json.dumps(self.data_attrs(), sort_keys=True, default=str)
        digest = hashlib.sha256(attrs.encode()).hexdigest()[:10]
        grid = "x".join(map(str, self.pde.grid_shape))
        name = f"{self.problem.name}_{self.name}_{grid}_n{self.num_samples}_{digest}.h5"
        return Path(self.problem.data_dir) / name

    def generate_samples(self, seeds: Sequence[int]) -> Samples:
        problem = self.problem
        inputs = np.asarray(problem.sample_inputs(self.pde, self.first_seed + np.asarray(seeds)))
        solutions = problem.solve(self.pde, inputs)
        data = solutions[..., None] if problem.time_dependent else solutions[:, None, ..., None]
        if problem.condition_input is None:
            return Samples(data=data)
        condition = np.asarray(problem.stored_condition(self.pde, inputs))
        return Samples(data=data, inputs={problem.condition_input: condition})


@dataclasses.dataclass(frozen=True)
class TestView:
    """Another evaluation of the trained model on the test split.

    The model (and its constraint layer) predicts on `pde`'s grid from the test conditions,
    and the error is taken against the test solutions subsampled by `stride` (one step per
    grid axis, onto `pde`'s grid), over the `window` of the grid only (`None`: all of it).
    E.g. a test split at 256² also scored at 128² (`stride` (1, 2, 2)), or a model trained on
    t ≤ 400 scored on t > 400 (`window` the later frames).
    """

    pde: AbstractPDE
    stride: tuple[int, ...]
    window: tuple[slice, ...] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class AbstractProblem(abc.ABC):
    """A learning problem: a PDE, its conditions (initial fields, coefficients) and solutions.

    A problem provides `pde` and `sample_inputs(pde, seeds)` (what the reference solver takes
    per sample; sample i depends on i alone), plus either a `solver` with
    `solver.solve(pde, input)` (one sample, traceable) or its own `solve(pde, inputs)`. The
    model's condition is the initial slice of the solution, or (`condition_input`) a stored
    per-sample array, `stored_condition(pde, inputs)`, the inputs themselves by default. The
    base derives the rest:

    - `parameters()`: what the data depend on, stored in the file and part of the cache's
        name, from the problem's, the PDE's and the solver's fields.

    - `load()`: the train and test splits, from `data_path` (a file the user already has, in
        either PDEBench layout) or from the cache under `data_dir`, generated on first use
        resumably and under a file lock (`pdeopt.data.generate_file`). Every load checks the
        file before any sample is used (`check_data`) and names the file and the fix; a bad
        cache is regenerated with a warning, a bad `data_path` file is refused.
    - `generate()`: writes the data files (`python -m experiments.generate problem=<p>`).
    - Two grids: a problem whose `test_pde` has another grid than `pde` (trained at 64²,
        tested at 256²) keeps one file per split; otherwise one file holds both, the first
        `n_train` samples training and the last `n_test` testing (PDEBench's rule).

    **Arguments** (common to every problem):

    - `n_train`, `n_test`: split sizes.
    - `seed`: the seed of the conditions.
    - `data_dir`: folder of the generated cache.
    - `data_path`: a data file to read instead of generating (one grid only).
    - `batch_size`: samples solved per `vmap` call while generating.
    """

    n_train: int = 64
    n_test: int = 16
    seed: int = 0
    data_dir: str = "data"
    data_path: str | None = None
    batch_size: int = 16

    name: ClassVar[str]
    generator_version: ClassVar[int] = 1
    data_layout: ClassVar[str] = "single-file"
    time_dependent: ClassVar[bool] = True
    condition_input: ClassVar[str | None] = None
    model_fields: ClassVar[tuple[str, ...]] = ("accuracy",)
    """Fields that change the model's view of the PDE but not the data (left out of
    `parameters()`)."""
    """The name under which the conditions are stored in the file (Darcy's `"nu"`); `None`:
    the condition is the initial slice of the solution."""

    def __post_init__(self):
        for name in ("n_train", "n_test", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"problem.{name} must be a positive integer, got {value!r}.")
        if not isinstance(self.seed, int):
            raise ValueError(f"problem.seed must be an integer, got {self.seed!r}.")
        # Validate the grids and constants now, not at first use.
        _ = self.pde, self.test_pde, self.test_views()

    @property
    @abc.abstractmethod
    def pde(self) -> AbstractPDE:
        """The training PDE."""

    @property
    def test_pde(self) -> AbstractPDE:
        """The PDE of the test split (default: `pde`)."""
        return self.pde

    def test_views(self) -> dict[str, TestView]:
        """Further evaluations of the test split, by name (default: none): each gives the
        run's metrics `views.<name>.test_rel_l2` and more (`experiments.train`)."""
        return {}

    @abc.abstractmethod
    def sample_inputs(self, pde: AbstractPDE, seeds: np.ndarray) -> np.ndarray:
        """The reference solver's inputs of these sample seeds on `pde`'s grid."""

    def parameters(self) -> dict[str, object]:
        """Everything the data depend on besides the grid, size and seed (HDF5 attributes).

        Derived: the scalar fields of the problem and of its PDE (the physics, and how the
        conditions are sampled), less the grid sizes and `model_fields`, and the reference
        `solver`'s class and fields as `solver` and `solver.<field>`. A field added to a
        problem or a PDE therefore enters the cache key without further code.
        """
        skip = {f.name for f in dataclasses.fields(AbstractProblem)}
        skip |= {*_SIZES, "solver", *self.model_fields}
        params = {**_scalar_fields(self.pde), **_scalar_fields(self)}
        params = {k: v for k, v in sorted(params.items()) if k not in skip}
        solver = getattr(self, "solver", None)
        if solver is not None:
            params["solver"] = type(solver).__name__
            params |= {f"solver.{k}": v for k, v in _scalar_fields(solver, types=True).items()}
        return params

    def sample_keys(self, seeds: np.ndarray) -> PRNGKeyArray:
        """The key of each sample seed i, `fold_in(key(seed), i)`: a sample does not depend on
        which other samples are drawn."""
        return jax.vmap(lambda i: jr.fold_in(jr.key(self.seed), i))(jnp.asarray(seeds))

    def solve(self, pde: AbstractPDE, inputs: np.ndarray) -> np.ndarray:
        """Reference solutions of a batch of inputs, `[n, *grid]`, by `self.solver`."""
        solver = self.solver  # pyright: ignore[reportAttributeAccessIssue]
        solve = lambda c: _solve_batch(solver, pde, c)
        return solve_in_batches(solve, inputs, self.batch_size)

    def stored_condition(self, pde: AbstractPDE, inputs: np.ndarray) -> np.ndarray:
        """The model's conditions of sampled inputs, stored as `condition_input`."""
        del pde
        return inputs

    # ---- derived --------------------------------------------------------------------------

    @property
    def num_samples(self) -> int:
        return self.n_train + self.n_test

    @property
    def axis_names(self) -> tuple[str, ...]:
        names = ("t", "x", "y", "z") if self.time_dependent else ("x", "y", "z")
        return names[: self.pde.grid.ndim]

    @property
    def cache_path(self) -> Path:
        """The cache file of a one-file problem (see `splits` for a problem with two)."""
        splits = self.splits()
        if len(splits) > 1:
            raise ValueError(
                f"{type(self).__name__} keeps one cache file per split; use "
                "`[s.path for s in problem.splits()]`."
            )
        return splits[0].path

    def splits(self) -> tuple[DataSplit, ...]:
        """The data files: one, or one per split when the test grid differs."""
        if self.test_pde.grid_shape == self.pde.grid_shape:
            return (DataSplit(self, "all", self.pde, 0, self.num_samples),)
        return (
            DataSplit(self, "train", self.pde, 0, self.n_train),
            DataSplit(self, "test", self.test_pde, self.n_train, self.n_test),
        )

    def generate(self, *, chunk_size: int | None = None, progress: bool = True) -> list[Path]:
        """Generate (or complete) every data file; returns their paths."""
        size = self.batch_size if chunk_size is None else chunk_size
        return [generate_file(s, s.path, chunk_size=size, progress=progress) for s in self.splits()]

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits, generating and caching them on first use.

        Every file is checked before any sample is used (see `check_data`). A cache that
        fails is regenerated, with a logged warning; a `data_path` file that fails raises a
        `DataFileError` and is never modified.
        """
        splits = self.splits()
        if self.data_path is not None:
            if len(splits) > 1:
                raise ValueError(
                    f"problem.data_path reads one file, but {type(self).__name__} tests on "
                    "another grid than it trains on; set the test grid equal to the training "
                    "grid (or leave data_path unset to generate both)."
                )
            (split,) = splits
            path = Path(self.data_path)
            data = self.check_data(read_data_file(path), path, split.pde, user=True)
            return train_test_split(
                data.conditions, data.solutions, data.seeds, self.n_train, self.n_test, path
            )
        datasets = []
        for split in splits:
            file = read_or_generate(split, split.path, chunk_size=self.batch_size)
            datasets.append(self.check_data(file, split.path, split.pde, user=False))
        if len(datasets) == 1:
            (only,) = datasets
            return train_test_split(
                only.conditions,
                only.solutions,
                only.seeds,
                self.n_train,
                self.n_test,
                splits[0].path,
            )
        return datasets[0], datasets[1]

    def check_data(self, file: DataFile, path: Path, pde: AbstractPDE, *, user: bool) -> Dataset:
        """The conditions and solutions of a file, after checking them against `pde`.

        Checked, in this order, each with a `DataFileError` that names the file (and
        `problem.data_path` for a user's file) and says what differs: the coordinates are
        present; the rank, the channel count and the grid shape of the data; the coordinate
        values; the sample count (at least `n_train + n_test` in a user's file); the
        per-sample input that is the condition; every value of every sample finite; and, on a
        grid whose time axis has as many points as a space axis, that the data are not stored
        with those two axes swapped (the residual blocks of a few samples as stored are
        compared with those of the swapped samples). The seeds are those read from the file.
        """
        where = f"Data file '{path}'" + (" (problem.data_path)" if user else "")
        fix = (
            "Correct the file, or point problem.data_path at another one"
            if user
            else f"Delete the cache '{path}' to regenerate it"
        )
        sizes = [f"problem.{f.name}" for f in dataclasses.fields(self) if f.name in _SIZES]
        sizes = "/".join(sizes) or "the grid sizes"
        names, coordinates = self.axis_names, pde.coordinates()
        for axis, (name, want) in enumerate(zip(names, coordinates)):
            if name not in file.grid:
                raise DataFileError(
                    f"{where} has no {name}-coordinates: it lacks the dataset "
                    f"'{name}-coordinate' (single-file layout) or 'grid/{name}' in each sample "
                    f"group (per-seed layout). pdeopt needs every coordinate to check the file "
                    f"against the problem's grid; add it, e.g. with h5py: "
                    f"`f['{name}-coordinate'] = problem.pde.coordinates()[{axis}]` "
                    f"({want.size} values from {want[0]:g} to {want[-1]:g})."
                )
        frames = pde.grid_shape if self.time_dependent else (1, *pde.grid_shape)
        count = len(file.data)
        expected = (count, *frames, 1)
        axes = ", ".join(names if self.time_dependent else ("frame", *names))
        if file.data.shape != expected:
            have = file.data.shape
            differences = []
            if len(have) != len(expected):
                differences.append(
                    f"the rank differs ({len(have)} axes in the file, {len(expected)} expected)"
                )
            else:
                if have[-1] != 1:
                    differences.append(f"the file has {have[-1]} channels, the problem reads 1")
                if have[1:-1] != frames:
                    differences.append(
                        f"the grid differs ({have[1:-1]} in the file, {frames} expected)"
                    )
            raise DataFileError(
                f"{where} holds data of shape {have}, but {type(self).__name__} expects "
                f"{expected} (samples, {axes}, one channel): {'; '.join(differences)}. {fix}, "
                f"or set {sizes} to the file's grid."
            )
        for name, want in zip(names, coordinates):
            have = np.asarray(file.grid[name])
            extent = float(np.ptp(want)) or 1.0
            if have.shape != want.shape or not np.allclose(
                have, want, rtol=1e-6, atol=1e-6 * extent
            ):
                raise DataFileError(
                    f"{where} has {name}-coordinates that differ from the problem's grid "
                    f"({_describe(have)} in the file, {_describe(want)} expected). {fix}, or "
                    f"set the problem's grid to the file's."
                )
        needed = self.n_train + self.n_test  # A cache's count is checked on reading it.
        if user and count < needed:
            raise DataFileError(
                f"{where} holds {count} samples but the problem needs {needed} "
                f"(problem.n_train + problem.n_test). {fix}, or lower problem.n_train/n_test."
            )
        solutions = file.data[..., 0] if self.time_dependent else file.data[:, 0, ..., 0]
        if self.condition_input is None:
            conditions = solutions[:, 0]
        elif self.condition_input in file.inputs:
            conditions = file.inputs[self.condition_input]
        else:
            raise DataFileError(
                f"{where} lacks the per-sample input {self.condition_input!r} that "
                f"{type(self).__name__} reads as its condition (it has {sorted(file.inputs)})."
            )
        solutions = solutions.astype(np.float64)
        conditions = np.asarray(conditions, np.float64)
        for what, values in (("solution", solutions), (repr(self.condition_input), conditions)):
            bad = ~np.isfinite(values)
            if bad.any():
                sample, *at = (int(i) for i in np.argwhere(bad)[0])
                raise DataFileError(
                    f"{where} holds {int(bad.sum())} non-finite values (NaN/inf); the first is "
                    f"in the {what} of sample '{file.seeds[sample]}' (position {sample}) at "
                    f"index {tuple(at)}. {fix}."
                )
        if self.time_dependent:
            self._check_orientation(pde, solutions, conditions, where, fix)
        return Dataset(conditions, solutions, tuple(file.seeds))

    def _check_orientation(self, pde, solutions, conditions, where: str, fix: str) -> None:
        """Refuse data stored with the time axis swapped with an equally long space axis.

        The residual blocks (the PDE, the initial and boundary conditions) of a few samples
        are evaluated as stored and with the two axes swapped. Each block's RMS is divided by
        its sum over both orientations, so every block counts alike, however it is scaled;
        data whose swapped orientation scores less than half as much as the stored one are
        refused. Data on a grid too coarse to resolve their time derivative may go
        undetected: the check refuses only what clearly fits the PDE better swapped.
        """
        names = self.axis_names
        same = [a for a in range(1, len(names)) if pde.grid_shape[a] == pde.grid_shape[0]]
        if not same:
            return
        if not isinstance(pde.derivatives, AbstractGridDerivatives):
            pde = eqx.tree_at(lambda p: p.derivatives, pde, FiniteDifference())
        initial = self.condition_input is None
        u = jnp.asarray(solutions[:_ORIENTATION_SAMPLES])
        c = jnp.asarray(conditions[:_ORIENTATION_SAMPLES])
        stored = _residual_rms(pde, u, c, initial)
        for axis in same:
            swapped = _residual_rms(pde, jnp.swapaxes(u, 1, 1 + axis), c, initial)
            totals = {k: float(stored[k] + swapped[k]) for k in stored}
            floor = 1e-12 * max(totals.values())
            blocks = [k for k, total in totals.items() if total > floor]
            score_stored = sum(float(stored[k]) / totals[k] for k in blocks)
            score_swapped = sum(float(swapped[k]) / totals[k] for k in blocks)
            if blocks and score_swapped * _ORIENTATION_RATIO < score_stored:
                as_stored = ", ".join(f"{k} {float(stored[k]):.3g}" for k in blocks)
                as_swapped = ", ".join(f"{k} {float(swapped[k]):.3g}" for k in blocks)
                raise DataFileError(
                    f"{where} seems to store its samples with the t and {names[axis]} axes "
                    f"swapped: the residuals (RMS) of the data as stored are {as_stored}, "
                    f"and {as_swapped} with those axes swapped back. Store the data as "
                    f"[samples, {', '.join(names)}] (e.g. `np.swapaxes(u, 1, {1 + axis})`). "
                    f"{fix}."
                )


_ORIENTATION_SAMPLES = 4
_ORIENTATION_RATIO = 2.0


@eqx.filter_jit
def _residual_rms(pde: AbstractPDE, u, conditions, initial: bool) -> dict:
    """The RMS of each residual block of fields `u` `[n, *grid]`; `initial`: each field's
    condition is its first frame (else `conditions`)."""
    conditions = u[:, 0] if initial else conditions
    residuals = jax.vmap(pde.residuals)(u, conditions)
    return {k: jnp.sqrt(jnp.mean(r**2)) for k, r in residuals.items()}


def _describe(values: np.ndarray) -> str:
    if values.size == 0:
        return f"shape {values.shape}"
    return f"{values.size} values from {values.min():g} to {values.max():g}"
