"""Heat and Poisson learning problems; data are their exact solutions on the grid."""

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.random as jr
import numpy as np

from pdeopt.data import (
    DataFileError,
    Dataset,
    Samples,
    train_test_split,
)

from .._common import check_positive_integers, read_problem_data, sample_keys
from ._pde import Heat, Poisson

GENERATOR_VERSION = 1


def _coefficients(seed: int, seeds: Sequence[int], shape: tuple[int, ...]) -> np.ndarray:
    """Sample i: N(0, 1)/k² (1-D) or N(0, 1)/(k² + l²) (2-D) sine coefficients, key fold_in(i)."""
    k = np.arange(1, shape[0] + 1, dtype=np.float64)
    decay = k**-2 if len(shape) == 1 else 1.0 / (k[:, None] ** 2 + k[None, :] ** 2)
    keys = sample_keys(seed, seeds)
    return np.asarray(jax.vmap(lambda key: jr.normal(key, shape))(keys)) * decay


@dataclasses.dataclass(frozen=True)
class HeatProblem:
    """The 1-D heat equation as a learning problem: u0 ↦ u (the Hydra `problem` node).

    Sample i has u0 = Σ_{k ≤ modes} c_k sin(kπx), c_k ~ N(0, 1)/k² drawn with
    `jr.fold_in(jr.key(seed), i)`; its data are the exact solution, cached in PDEBench's
    single-file layout (`tensor` `[N, nt, nx]`, `x-coordinate`, `t-coordinate`).

    **Arguments:** `nx`, `nt`, `kappa`, `t_final` (see `Heat`), `modes`, `n_train`, `n_test`,
    `seed`, `data_dir`, `data_path` (an existing file to read instead).
    """

    nx: int = 33
    nt: int = 17
    kappa: float = 1.0
    t_final: float = 0.1
    modes: int = 4
    n_train: int = 32
    n_test: int = 8
    seed: int = 0
    data_dir: str = "data"
    data_path: str | None = None

    def __post_init__(self):
        check_positive_integers(self, ("modes", "n_train", "n_test"))
        _ = self.pde

    @property
    def pde(self) -> Heat:
        return Heat(nx=self.nx, nt=self.nt, kappa=self.kappa, t_final=self.t_final)

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def cache_path(self) -> Path:
        name = f"heat_nx{self.nx}_nt{self.nt}_k{self.kappa:g}_n{self.num_samples}_seed{self.seed}"
        return Path(self.data_dir) / f"{name}.hdf5"

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
        return {
            "generator": "problems.manufactured.heat",
            "generator_version": GENERATOR_VERSION,
            **{k: getattr(self, k) for k in ("nx", "nt", "kappa", "t_final", "modes", "seed")},
            "num_samples": self.num_samples,
        }

    def generate_samples(self, seeds: Sequence[int]) -> Samples:
        c = _coefficients(self.seed, seeds, (self.modes,))
        return Samples(data=np.asarray(jax.vmap(self.pde.exact)(c))[..., None])

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


@dataclasses.dataclass(frozen=True)
class PoissonProblem:
    """The 2-D Poisson equation as a learning problem: f ↦ u (the Hydra `problem` node).

    Sample i has f = Σ_{k, l ≤ modes} c_kl sin(kπx) sin(lπy), c_kl ~ N(0, 1)/(k² + l²) drawn
    with `jr.fold_in(jr.key(seed), i)`; its data are the exact solution, cached in PDEBench's
    single-file Darcy-like layout (`tensor` `[N, 1, n, n]` = u, `f` `[N, n, n]`).

    **Arguments:** `n` (see `Poisson`), `modes`, `n_train`, `n_test`, `seed`, `data_dir`,
    `data_path`.
    """

    n: int = 33
    modes: int = 4
    n_train: int = 32
    n_test: int = 8
    seed: int = 0
    data_dir: str = "data"
    data_path: str | None = None

    def __post_init__(self):
        check_positive_integers(self, ("modes", "n_train", "n_test"))
        _ = self.pde

    @property
    def pde(self) -> Poisson:
        return Poisson(n=self.n)

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def cache_path(self) -> Path:
        return Path(self.data_dir) / f"poisson_n{self.n}_n{self.num_samples}_seed{self.seed}.hdf5"

    @property
    def num_samples(self) -> int:
        return self.n_train + self.n_test

    @property
    def data_layout(self) -> str:
        return "single-file"

    def data_grid(self) -> dict[str, np.ndarray]:
        x, y = self.pde.coordinates()
        return {"x": x, "y": y}

    def data_attrs(self) -> dict[str, object]:
        return {
            "generator": "problems.manufactured.poisson",
            "generator_version": GENERATOR_VERSION,
            "n": self.n,
            "modes": self.modes,
            "seed": self.seed,
            "num_samples": self.num_samples,
        }

    def generate_samples(self, seeds: Sequence[int]) -> Samples:
        c = _coefficients(self.seed, seeds, (self.modes, self.modes))
        u = np.asarray(jax.vmap(self.pde.exact)(c))
        f = np.asarray(jax.vmap(self.pde.forcing)(c))
        return Samples(data=u[:, None, ..., None], inputs={"f": f})

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits, generating and caching them on first use."""
        path, file = read_problem_data(self)
        if "f" not in file.inputs or file.data.shape[1:] != (1, self.n, self.n, 1):
            raise DataFileError(
                f"Data file '{path}' is not a Poisson file on a {self.n} × {self.n} grid (want "
                f"`tensor` [N, 1, {self.n}, {self.n}] and `f`). Set problem.n to the file's grid."
            )
        u = file.data[:, 0, ..., 0].astype(np.float64)
        f = file.inputs["f"].astype(np.float64)
        return train_test_split(f, u, file.seeds, self.n_train, self.n_test, path)
