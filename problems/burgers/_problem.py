"""The 1-D Burgers learning problem: PDE, reference data, and its HDF5 cache."""

import dataclasses
import logging
from pathlib import Path

import jax
import jax.random as jr
import numpy as np

from pdeopt.data import DataFileError, Dataset, read_seed_file, write_seed_file

from .._common import check_positive_integers
from ._pde import T_FINAL, Burgers, BurgersAutodiff
from ._solver import ReferenceSolver, sample_initial_conditions

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1


@dataclasses.dataclass(frozen=True)
class BurgersProblem:
    """1-D viscous Burgers (PDEBench convention) as a learning problem (the Hydra node).

    Holds the PDE and its data, generated on first use by `ReferenceSolver` from
    `sample_initial_conditions` and cached as HDF5 in PDEBench's per-seed layout (`data` of
    shape `[nt, nx, 1]`, `grid/{x,t}`). The first `n_train` seeds are the training split, the
    last `n_test` the test split. A cache whose grid, viscosity, seed, solver tolerances or size
    differ from the config, or whose checksums fail, is refused with a message saying to
    delete it. Building the problem is cheap: nothing is generated before `load()`.

    **Arguments:**

    - `nx`, `nt`: grid sizes (PDEBench: 1024 × 201).
    - `viscosity`: PDEBench's ν ∈ {0.001, 0.01, 0.1, 1.0} (the diffusion is ν/π).
    - `t_final`: T (PDEBench: 2).
    - `n_train`, `n_test`: split sizes.
    - `seed`: PRNG seed of the initial conditions.
    - `data_dir`: folder of the cache.
    - `accuracy`: order of the time finite differences in the residual.
    - `solver`: the reference solver.
    - `batch_size`: initial conditions solved per `vmap` call while generating.
    - `autodiff`: the PDE formulation: `False`, `Burgers` (finite-difference/spectral
        quantities of grid fields, for grid models); `True`, `BurgersAutodiff` (autodiff
        quantities of a coordinate-model basis, `model=deeponet_basis constraint=hard`). The
        data are the same.
    """

    nx: int = 128
    nt: int = 41
    viscosity: float = 0.01
    t_final: float = T_FINAL
    n_train: int = 64
    n_test: int = 16
    seed: int = 0
    data_dir: str = "data"
    accuracy: int = 2
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)
    batch_size: int = 16
    autodiff: bool = False

    def __post_init__(self):
        check_positive_integers(self, ("n_train", "n_test", "batch_size"))
        _ = self.pde  # Validates the grid and constants now, not at first use.

    @property
    def pde(self) -> Burgers | BurgersAutodiff:
        if self.autodiff:
            return BurgersAutodiff(
                nx=self.nx, nt=self.nt, viscosity=self.viscosity, t_final=self.t_final
            )
        return self.burgers

    @property
    def burgers(self) -> Burgers:
        """The grid formulation (the reference solver's PDE)."""
        return Burgers(
            nx=self.nx,
            nt=self.nt,
            viscosity=self.viscosity,
            t_final=self.t_final,
            accuracy=self.accuracy,
        )

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def cache_path(self) -> Path:
        name = (
            f"burgers_nx{self.nx}_nt{self.nt}_nu{self.viscosity:g}_T{self.t_final:g}"
            f"_n{self.n_train + self.n_test}_seed{self.seed}.h5"
        )
        return Path(self.data_dir) / name

    def _cache_attrs(self) -> dict[str, object]:
        return {
            "generator": "pdeopt.problems.burgers",
            "generator_version": GENERATOR_VERSION,
            "nx": self.nx,
            "nt": self.nt,
            "num_samples": self.n_train + self.n_test,
            "seed": self.seed,
            "viscosity": self.viscosity,
            "t_final": self.t_final,
            "solver": type(self.solver.solver).__name__,
            "solver_rtol": self.solver.rtol,
            "solver_atol": self.solver.atol,
            "dealias_fraction": self.solver.dealias_fraction,
        }

    def generate(self) -> np.ndarray:
        """Solve every sample: returns `[n_train + n_test, nt, nx]` float64."""
        pde, total = self.burgers, self.n_train + self.n_test
        u0 = sample_initial_conditions(pde, total, key=jr.key(self.seed))
        solve = jax.jit(jax.vmap(lambda u: self.solver.solve(pde, u)))
        out = [
            np.asarray(solve(u0[start : start + self.batch_size]))
            for start in range(0, total, self.batch_size)
        ]
        solutions = np.concatenate(out)
        if not np.all(np.isfinite(solutions)):
            raise FloatingPointError(
                "The Burgers reference solver produced non-finite values; use an implicit or "
                "IMEX solver (problem.solver.solver._target_=diffrax.Kvaerno5) or tighten "
                "problem.solver.rtol."
            )
        return solutions

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits, generating and caching them on first use."""
        path = self.cache_path
        attrs = self._cache_attrs()
        t, x = self.burgers.coordinates()
        if not path.exists():
            log.info("Generating %d Burgers solutions into %s", attrs["num_samples"], path)
            write_seed_file(path, self.generate()[..., None], {"x": x, "t": t}, attrs)
        data, grid, _ = read_seed_file(path, expected_attrs=attrs)
        for name, want in (("x", x), ("t", t)):
            have = grid.get(name)
            if have is None or have.shape != want.shape or not np.allclose(have, want, atol=1e-9):
                raise DataFileError(
                    f"Data file '{path}' has a grid/{name} that does not match the problem's; "
                    "delete it to regenerate it."
                )
        data = data[..., 0].astype(np.float64)
        names = [f"{i:04d}" for i in range(len(data))]
        train = slice(0, self.n_train)
        test = slice(len(data) - self.n_test, len(data))
        return self._split(data, names, train), self._split(data, names, test)

    @staticmethod
    def _split(data: np.ndarray, names: list[str], index: slice) -> Dataset:
        return Dataset(conditions=data[index, 0], solutions=data[index], seeds=tuple(names[index]))
