"""The diffusion–reaction learning problem: PDE, reference data and its HDF5 cache."""

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
from ._pde import DiffusionReaction
from ._solver import ReferenceSolver, sample_initial_condition

GENERATOR_VERSION = 1


@eqx.filter_jit
def _solve_batch(solver: ReferenceSolver, pde: DiffusionReaction, u0):
    return jax.vmap(lambda u: solver.solve(pde, u))(u0)


@dataclasses.dataclass(frozen=True)
class DiffusionReactionProblem:
    """1-D diffusion–reaction as a learning problem: u0 ↦ u (the Hydra `problem` node).

    Sample i's initial condition is `sample_initial_condition(pde, key=jr.fold_in(jr.key(seed),
    i))`; data are cached in PDEBench's single-file layout (`tensor` `[N, nt, nx]`,
    `x-coordinate`, `t-coordinate`), like `ReacDiff_Nu0.5_Rho1.0.hdf5`, which is read instead
    by setting `data_path` (its grid must be `nt × nx`).

    **Arguments:** `nx`, `nt`, `nu`, `rho`, `t_final`, `accuracy` (see `DiffusionReaction`),
    `n_train`, `n_test`, `seed`, `data_dir`, `data_path`, `solver`, `batch_size`.
    """

    nx: int = 64
    nt: int = 21
    nu: float = 0.5
    rho: float = 1.0
    t_final: float = 1.0
    accuracy: int = 2
    n_train: int = 32
    n_test: int = 8
    seed: int = 0
    data_dir: str = "data"
    data_path: str | None = None
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)
    batch_size: int = 16

    def __post_init__(self):
        check_positive_integers(self, ("n_train", "n_test", "batch_size"))
        _ = self.pde

    @property
    def pde(self) -> DiffusionReaction:
        return DiffusionReaction(
            nx=self.nx,
            nt=self.nt,
            nu=self.nu,
            rho=self.rho,
            t_final=self.t_final,
            accuracy=self.accuracy,
        )

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def cache_path(self) -> Path:
        name = (
            f"diffusion_reaction_nx{self.nx}_nt{self.nt}_nu{self.nu:g}_rho{self.rho:g}"
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
        names = ("nx", "nt", "nu", "rho", "t_final", "accuracy", "seed")
        return {
            "generator": "problems.diffusion_reaction",
            "generator_version": GENERATOR_VERSION,
            **{k: getattr(self, k) for k in names},
            "num_samples": self.num_samples,
            "solver_rtol": self.solver.rtol,
            "solver_atol": self.solver.atol,
        }

    def initial_conditions(self, seeds: Sequence[int]) -> np.ndarray:
        keys = sample_keys(self.seed, seeds)
        return np.asarray(jax.vmap(lambda k: sample_initial_condition(self.pde, key=k))(keys))

    def generate_samples(self, seeds: Sequence[int]) -> Samples:
        u0 = self.initial_conditions(seeds)
        u = solve_in_batches(lambda b: _solve_batch(self.solver, self.pde, b), u0, self.batch_size)
        return Samples(data=u[..., None])

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits, generating and caching them on first use."""
        path, file = read_problem_data(self)
        if file.data.shape[1:] != (self.nt, self.nx, 1):
            raise DataFileError(
                f"Data file '{path}' holds fields of shape {file.data.shape[1:-1]}, not "
                f"(nt, nx) = ({self.nt}, {self.nx}). Set problem.nt/problem.nx to the file's grid."
            )
        u = file.data[..., 0].astype(np.float64)
        return train_test_split(u[:, 0], u, file.seeds, self.n_train, self.n_test, path)
