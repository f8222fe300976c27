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

from pdeopt.constraints import AbstractPDE
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
        resumably (`pdeopt.data.generate_file`). Every load checks the sample count, the
        grid's shape and coordinates and finiteness, and names the file and the fix.
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
        _ = self.pde, self.test_pde  # Validate the grid and constants now, not at first use.

    @property
    @abc.abstractmethod
    def pde(self) -> AbstractPDE:
        """The training PDE."""

    @property
    def test_pde(self) -> AbstractPDE:
        """The PDE of the test split (default: `pde`)."""
        return self.pde

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
        """The train and test splits, generating and caching them on first use."""
        splits = self.splits()
        if self.data_path is not None:
            if len(splits) > 1:
                raise ValueError(
                    f"problem.data_path reads one file, but {type(self).__name__} tests on "
                    "another grid than it trains on; set the test grid equal to the training "
                    "grid (or leave data_path unset to generate both)."
                )
            (split,) = splits
            return self._split(read_data_file(self.data_path), self.data_path, split.pde)
        datasets = []
        for split in splits:
            file = read_or_generate(split, split.path, chunk_size=self.batch_size)
            data = self._dataset(file, split.path, split.pde, split.num_samples)
            # A split's file numbers its samples from 0; name them by their seeds.
            seeds = tuple(f"{split.first_seed + i:04d}" for i in range(len(data.seeds)))
            datasets.append(dataclasses.replace(data, seeds=seeds))
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

    def _split(self, file: DataFile, path, pde) -> tuple[Dataset, Dataset]:
        data = self._dataset(file, path, pde, self.num_samples, at_least=True)
        return train_test_split(
            data.conditions, data.solutions, data.seeds, self.n_train, self.n_test, path
        )

    def _dataset(self, file: DataFile, path, pde, num: int, at_least: bool = False) -> Dataset:
        """The conditions and solutions of a file, after checking it against `pde`."""
        grid = pde.grid_shape
        frames = grid if self.time_dependent else (1, *grid)
        shape = file.data.shape[1:]
        if shape != (*frames, 1):
            sizes = [f"problem.{f.name}" for f in dataclasses.fields(self) if f.name in _SIZES]
            raise DataFileError(
                f"Data file '{path}' holds fields of shape {shape}, not {(*frames, 1)} "
                f"({', '.join(self.axis_names)} grid {grid}, one channel). Set "
                f"{'/'.join(sizes) or 'the grid sizes'} to the file's grid, or point "
                "problem.data_path at a matching file."
            )
        count = len(file.data)
        if count < num if at_least else count != num:
            raise DataFileError(
                f"Data file '{path}' holds {count} samples but the problem needs {num} "
                "(problem.n_train + problem.n_test); delete a cache to regenerate it."
            )
        for name, want in zip(self.axis_names, pde.coordinates()):
            have = file.grid.get(name)
            if have is not None and (
                have.shape != want.shape or not np.allclose(have, want, atol=1e-9)
            ):
                raise DataFileError(
                    f"Data file '{path}' has {name}-coordinates that differ from the problem's "
                    f"grid ({have.shape} values, not {want.shape}, or other values); use a file "
                    "on this grid, or set the problem's grid to the file's."
                )
        solutions = file.data[..., 0] if self.time_dependent else file.data[:, 0, ..., 0]
        if self.condition_input is None:
            conditions = solutions[:, 0]
        elif self.condition_input in file.inputs:
            conditions = file.inputs[self.condition_input]
        else:
            raise DataFileError(
                f"Data file '{path}' lacks the per-sample input {self.condition_input!r} that "
                f"{type(self).__name__} reads as its condition (it has {sorted(file.inputs)})."
            )
        solutions = solutions.astype(np.float64)
        conditions = np.asarray(conditions, np.float64)
        if not (np.all(np.isfinite(solutions)) and np.all(np.isfinite(conditions))):
            raise DataFileError(f"Data file '{path}' holds NaN/inf.")
        return Dataset(conditions, solutions, tuple(file.seeds))
