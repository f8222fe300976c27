"""The diffusion–sorption learning problem: PDE, reference data, and its HDF5 cache."""

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import equinox as eqx
import jax
import jax.random as jr
import numpy as np

from pdeopt.data import DataFileError, Dataset, Samples, read_seed_file, write_seed_file

from .._common import check_positive_integers
from ._pde import DiffusionSorption
from ._solver import ReferenceSolver, sample_initial_conditions

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1


@eqx.filter_jit
def _solve_batch(solver: ReferenceSolver, pde: DiffusionSorption, u0):
    return jax.vmap(lambda u: solver.solve(pde, u))(u0)


@dataclasses.dataclass(frozen=True)
class DiffusionSorptionProblem:
    """1-D diffusion–sorption as a learning problem (the Hydra `problem` node).

    Holds the PDE and its data. Data are generated on first use with `ReferenceSolver` and
    cached as HDF5 in PDEBench's per-seed layout (`data` of shape `[nt, nx, 1]` and
    `grid/{x,t}` per sample). Samples are numbered by seed; the first `n_train` are the
    training split and the last `n_test` the test split (PDEBench's `FNODatasetMult` rule).
    A cache whose grid, constants, initial-condition kind, seed or size differs from the
    config, or whose checksums fail, is refused with a message saying to delete it.

    A PDEBench file the user already has (e.g. `1D_diff-sorp_NA_NA.h5`) is used instead by
    setting `data_path`; its grid must match `nx` × `nt`.

    **Arguments:**

    - `nx`, `nt`: grid sizes.
    - `n_train`, `n_test`: split sizes.
    - `ic`: `"constant"` (PDEBench) or `"smooth"` initial conditions.
    - `seed`: PRNG seed of the initial conditions.
    - `data_dir`: folder of the cache.
    - `data_path`: an existing per-seed HDF5 file to read instead of generating.
    - `outflow_sign`, `accuracy`: see `DiffusionSorption`.
    - `solver`: the reference solver.
    - `batch_size`: initial conditions solved per `vmap` call while generating.
    """

    nx: int = 64
    nt: int = 26
    n_train: int = 64
    n_test: int = 16
    ic: str = "constant"
    seed: int = 0
    data_dir: str = "data"
    data_path: str | None = None
    outflow_sign: float = -1.0
    accuracy: int = 2
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)
    batch_size: int = 16

    def __post_init__(self):
        check_positive_integers(self, ("n_train", "n_test", "batch_size"))
        if self.ic not in ("constant", "smooth"):
            raise ValueError(f"problem.ic must be 'constant' or 'smooth', got {self.ic!r}.")
        _ = self.pde  # Validates the grid and constants now, not at first use.

    @property
    def pde(self) -> DiffusionSorption:
        return DiffusionSorption(
            nx=self.nx, nt=self.nt, outflow_sign=self.outflow_sign, accuracy=self.accuracy
        )

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def cache_path(self) -> Path:
        name = (
            f"diffusion_sorption_nx{self.nx}_nt{self.nt}_{self.ic}_sigma{self.outflow_sign:+.0f}"
            f"_n{self.n_train + self.n_test}_seed{self.seed}.h5"
        )
        return Path(self.data_dir) / name

    def _cache_attrs(self) -> dict[str, object]:
        pde = self.pde
        return {
            "generator": "pdeopt.problems.diffusion_sorption",
            "generator_version": GENERATOR_VERSION,
            "nx": self.nx,
            "nt": self.nt,
            "num_samples": self.n_train + self.n_test,
            "ic": self.ic,
            "seed": self.seed,
            "t_final": pde.t_final,
            "diffusivity": pde.diffusivity,
            "porosity": pde.porosity,
            "bulk_density": pde.bulk_density,
            "freundlich_k": pde.freundlich_k,
            "freundlich_n": pde.freundlich_n,
            "outflow_sign": pde.outflow_sign,
            "solver_rtol": self.solver.rtol,
            "solver_atol": self.solver.atol,
        }

    # The `pdeopt.data.SampleGenerator` interface (`python -m experiments.generate`).

    @property
    def num_samples(self) -> int:
        return self.n_train + self.n_test

    @property
    def data_layout(self) -> str:
        return "per-seed"  # PDEBench's `1D_diff-sorp_NA_NA.h5`

    def data_grid(self) -> dict[str, np.ndarray]:
        t, x = self.pde.coordinates()
        return {"x": x, "t": t}

    def data_attrs(self) -> dict[str, object]:
        return self._cache_attrs()

    def generate_samples(self, seeds: Sequence[int]) -> Samples:
        """Solve the samples with these seeds: `data` `[len(seeds), nt, nx, 1]` float64.

        Sample i's initial condition is the i-th of `sample_initial_conditions(..., key=
        jr.key(seed))`, whatever the other seeds, so chunks equal one whole generation.
        """
        seeds = np.asarray(seeds, dtype=int)
        pde = self.pde
        u0 = sample_initial_conditions(pde, int(seeds.max()) + 1, self.ic, key=jr.key(self.seed))
        u0 = u0[seeds]
        out = []
        for start in range(0, len(seeds), self.batch_size):
            out.append(
                np.asarray(_solve_batch(self.solver, pde, u0[start : start + self.batch_size]))
            )
        return Samples(data=np.concatenate(out)[..., None])

    def generate(self) -> np.ndarray:
        """Solve every sample: returns `[n_train + n_test, nt, nx]` float64."""
        solutions = self.generate_samples(range(self.num_samples)).data[..., 0]
        if not np.all(np.isfinite(solutions)):
            raise FloatingPointError(
                "The reference solver produced non-finite values; tighten problem.solver.rtol "
                "or use an implicit solver (problem.solver.solver._target_=diffrax.Kvaerno5)."
            )
        return solutions

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits, generating and caching them on first use."""
        if self.data_path is not None:
            data, grid, _ = read_seed_file(self.data_path)
            self._check_grid(grid, self.data_path)
            if len(data) < self.n_train + self.n_test:
                raise DataFileError(
                    f"Data file '{self.data_path}' holds {len(data)} samples but "
                    f"problem.n_train + problem.n_test = {self.n_train + self.n_test}."
                )
        else:
            path = self.cache_path
            if not path.exists():
                total = self.n_train + self.n_test
                log.info("Generating %d reference solutions into %s", total, path)
                solutions = self.generate()
                t, x = self.pde.coordinates()
                write_seed_file(path, solutions[..., None], {"x": x, "t": t}, self._cache_attrs())
            data, grid, _ = read_seed_file(path, expected_attrs=self._cache_attrs())
            self._check_grid(grid, path)
        names = [f"{i:04d}" for i in range(len(data))]
        data = data[..., 0].astype(np.float64)
        if not np.all(np.isfinite(data)):
            raise DataFileError(f"Data file '{self.data_path or self.cache_path}' holds NaN/inf.")
        train = slice(0, self.n_train)
        test = slice(len(data) - self.n_test, len(data))
        return self._split(data, names, train), self._split(data, names, test)

    @staticmethod
    def _split(data: np.ndarray, names: list[str], index: slice) -> Dataset:
        return Dataset(conditions=data[index, 0], solutions=data[index], seeds=tuple(names[index]))

    def _check_grid(self, grid: dict[str, np.ndarray], path) -> None:
        t, x = self.pde.coordinates()
        for name, want in (("x", x), ("t", t)):
            have = grid.get(name)
            if have is None or have.shape != want.shape or not np.allclose(have, want, atol=1e-9):
                shape = None if have is None else have.shape
                raise DataFileError(
                    f"Data file '{path}' has grid/{name} of shape {shape}, but the problem "
                    f"expects {want.shape} (problem.nx={self.nx}, problem.nt={self.nt}). Set "
                    "problem.nx/problem.nt to the file's grid."
                )
