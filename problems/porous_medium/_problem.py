"""The porous-medium learning problem: PDE, reference data and its HDF5 cache."""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from pdeopt.data import (
    DataFileError,
    Dataset,
    Samples,
    train_test_split,
)

from .._common import check_positive_integers, read_problem_data, sample_keys, solve_in_batches
from ._pde import PorousMedium
from ._solver import ReferenceSolver, sample_exponent

GENERATOR_VERSION = 1


@eqx.filter_jit
def _solve_batch(solver: ReferenceSolver, pde: PorousMedium, m):
    return jax.vmap(lambda mi: solver.solve(pde, mi))(m)


@dataclasses.dataclass(frozen=True)
class PorousMediumProblem:
    """The porous medium equation as a learning problem: m ↦ u (the Hydra `problem` node).

    Sample i's exponent is `sample_exponent(key=jr.fold_in(jr.key(seed), i), low=m_min,
    high=m_max)`; its solution is computed by `ReferenceSolver` (the analytic travelling wave
    is `pde.exact`, for measuring errors). Data are cached in PDEBench's single-file layout
    (`tensor` `[N, nt, nx]`, the exponents in `m` `[N]`, `x-coordinate`, `t-coordinate`).

    **Arguments:** `nx`, `nt`, `t_final`, `speed`, `accuracy` (see `PorousMedium`), `m_min`,
    `m_max` (the range of m), `n_train`, `n_test`, `seed`, `data_dir`, `data_path` (an
    existing file to read instead), `solver`, `batch_size`.
    """

    nx: int = 64
    nt: int = 21
    t_final: float = 1.0
    speed: float = 1.0
    accuracy: int = 2
    m_min: float = 1.0
    m_max: float = 4.0
    n_train: int = 32
    n_test: int = 8
    seed: int = 0
    data_dir: str = "data"
    data_path: str | None = None
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)
    batch_size: int = 16

    def __post_init__(self):
        check_positive_integers(self, ("n_train", "n_test", "batch_size"))
        if not 1 <= self.m_min <= self.m_max:
            raise ValueError(
                f"problem.m_min, problem.m_max must satisfy 1 <= m_min <= m_max, got "
                f"{self.m_min!r}, {self.m_max!r}."
            )
        _ = self.pde

    @property
    def pde(self) -> PorousMedium:
        return PorousMedium(
            nx=self.nx,
            nt=self.nt,
            t_final=self.t_final,
            speed=self.speed,
            accuracy=self.accuracy,
        )

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def cache_path(self) -> Path:
        name = (
            f"porous_medium_nx{self.nx}_nt{self.nt}_m{self.m_min:g}-{self.m_max:g}"
            f"_n{self.num_samples}_seed{self.seed}.hdf5"
        )
        return Path(self.data_dir) / name

    @property
    def num_samples(self) -> int:
        return self.n_train + self.n_test

    @property
    def data_layout(self) -> str:
        return "single-file"

    def data_grid(self) -> dict[str, np.ndarray]:
        t, x = self.pde.coordinates()
        return {"x": x, "t": t}

    def data_attrs(self) -> dict[str, object]:
        names = ("nx", "nt", "t_final", "speed", "m_min", "m_max", "seed")
        return {
            "generator": "problems.porous_medium",
            "generator_version": GENERATOR_VERSION,
            **{k: getattr(self, k) for k in names},
            "num_samples": self.num_samples,
            "solver_rtol": self.solver.rtol,
            "solver_atol": self.solver.atol,
        }

    def exponents(self, seeds: Sequence[int]) -> np.ndarray:
        keys = sample_keys(self.seed, seeds)
        sample = lambda k: sample_exponent(key=k, low=self.m_min, high=self.m_max)
        return np.asarray(jax.vmap(sample)(keys))

    def generate_samples(self, seeds: Sequence[int]) -> Samples:
        m = self.exponents(seeds)
        u = solve_in_batches(lambda b: _solve_batch(self.solver, self.pde, b), m, self.batch_size)
        return Samples(data=u[..., None], inputs={"m": m})

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits (conditions: the exponents m), generated on first use."""
        path, file = read_problem_data(self, chunk_size=self.batch_size)
        if "m" not in file.inputs or file.data.shape[1:] != (self.nt, self.nx, 1):
            raise DataFileError(
                f"Data file '{path}' is not a porous-medium file on an (nt, nx) = "
                f"({self.nt}, {self.nx}) grid (want `tensor` [N, {self.nt}, {self.nx}] and `m` "
                f"[N]; got data {file.data.shape} and inputs {sorted(file.inputs)}). Set "
                "problem.nt/problem.nx to the file's grid."
            )
        u = file.data[..., 0].astype(np.float64)
        m = file.inputs["m"].astype(np.float64)
        return train_test_split(m, u, file.seeds, self.n_train, self.n_test, path)
