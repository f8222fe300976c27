"""The Darcy learning problem: PDE, coefficient samples, reference data and its HDF5 cache."""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from pdeopt.data import (
    DataFile,
    DataFileError,
    Dataset,
    Samples,
    train_test_split,
)

from .._common import check_positive_integers, read_problem_data, sample_keys, solve_in_batches
from ._pde import Darcy
from ._solver import ReferenceSolver, sample_coefficients

GENERATOR_VERSION = 1


@eqx.filter_jit
def _solve_batch(solver: ReferenceSolver, pde: Darcy, a):
    return jax.vmap(lambda c: solver.solve(pde, c))(a)


@dataclasses.dataclass(frozen=True)
class DarcyProblem:
    """2-D Darcy flow as a learning problem (the Hydra `problem` node): coefficient a ↦ u.

    Sample i's coefficient is `sample_coefficients(pde, key=jr.fold_in(jr.key(seed), i))`;
    data are generated on first use (or by `python -m experiments.generate problem=darcy`) and
    cached in PDEBench's single-file Darcy layout: `tensor` `[N, 1, n, n]` (u), `nu`
    `[N, n, n]` (a), `x-coordinate`, `y-coordinate`. The first `n_train` samples train, the last
    `n_test` test. A PDEBench `2D_DarcyFlow_*.hdf5` is read instead by setting `data_path` (its
    grid must be `n × n`; its β is `forcing`).

    **Arguments:**

    - `n`: cells per side.
    - `n_train`, `n_test`: split sizes.
    - `forcing`: the constant right-hand side f.
    - `high`, `low`: the two coefficient values.
    - `seed`: PRNG seed of the coefficients.
    - `data_dir`, `data_path`: cache folder; an existing file to read instead.
    - `solver`: the reference solver.
    - `batch_size`: coefficients solved per `vmap` call while generating.
    """

    n: int = 32
    n_train: int = 32
    n_test: int = 8
    forcing: float = 1.0
    high: float = 12.0
    low: float = 3.0
    seed: int = 0
    data_dir: str = "data"
    data_path: str | None = None
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)
    batch_size: int = 16

    def __post_init__(self):
        check_positive_integers(self, ("n_train", "n_test", "batch_size"))
        if not (self.high > 0 and self.low > 0):
            raise ValueError(
                f"problem.high and problem.low must be > 0, got {self.high!r}, {self.low!r}."
            )
        _ = self.pde

    @property
    def pde(self) -> Darcy:
        return Darcy(n=self.n, forcing=self.forcing)

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def cache_path(self) -> Path:
        name = f"darcy_n{self.n}_f{self.forcing:g}_n{self.num_samples}_seed{self.seed}.hdf5"
        return Path(self.data_dir) / name

    # pdeopt.data.SampleGenerator

    @property
    def num_samples(self) -> int:
        return self.n_train + self.n_test

    @property
    def data_layout(self) -> str:
        return "single-file"  # PDEBench's `2D_DarcyFlow_beta*.hdf5`

    def data_grid(self) -> dict[str, np.ndarray]:
        x, y = self.pde.coordinates()
        return {"x": x, "y": y}

    def data_attrs(self) -> dict[str, object]:
        return {
            "generator": "problems.darcy",
            "generator_version": GENERATOR_VERSION,
            "n": self.n,
            "num_samples": self.num_samples,
            "forcing": self.forcing,
            "high": self.high,
            "low": self.low,
            "seed": self.seed,
            "solver": type(self.solver.linear_solver).__name__,
        }

    def coefficients(self, seeds: Sequence[int]) -> np.ndarray:
        """The coefficient fields of these seeds, `[len(seeds), n, n]`."""
        keys = sample_keys(self.seed, seeds)
        sample = lambda k: sample_coefficients(self.pde, key=k, high=self.high, low=self.low)
        return np.asarray(jax.vmap(sample)(keys))

    def generate_samples(self, seeds: Sequence[int]) -> Samples:
        a = self.coefficients(seeds)
        u = solve_in_batches(lambda b: _solve_batch(self.solver, self.pde, b), a, self.batch_size)
        return Samples(data=u[:, None, :, :, None], inputs={"nu": a})

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits, generating and caching them on first use."""
        path, file = read_problem_data(self, chunk_size=self.batch_size)
        a, u = self._check(file, path)
        return train_test_split(a, u, file.seeds, self.n_train, self.n_test, path)

    def _check(self, file: DataFile, path) -> tuple[np.ndarray, np.ndarray]:
        if "nu" not in file.inputs or file.data.shape[1:] != (1, self.n, self.n, 1):
            raise DataFileError(
                f"Data file '{path}' is not a Darcy file on a {self.n} × {self.n} grid (want "
                f"`tensor` [N, 1, {self.n}, {self.n}] and `nu` [N, {self.n}, {self.n}]; got data "
                f"{file.data.shape} and inputs {sorted(file.inputs)}). Set problem.n to the "
                "file's grid."
            )
        u = file.data[:, 0, ..., 0].astype(np.float64)
        a = file.inputs["nu"].astype(np.float64)
        if not (np.all(np.isfinite(u)) and np.all(np.isfinite(a))):
            raise DataFileError(f"Data file '{path}' holds NaN/inf.")
        return a, u
