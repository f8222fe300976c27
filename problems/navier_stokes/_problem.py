"""The 2-D Navier–Stokes learning problem: PDE, reference data, and its HDF5 caches."""

import dataclasses
import logging
from pathlib import Path

import jax
import jax.random as jr
import numpy as np

from pdeopt.data import DataFileError, Dataset, read_seed_file, write_seed_file

from .._common import check_positive_integers
from ._pde import VISCOSITY, NavierStokes2D
from ._solver import IC_RESOLUTION, LENGTH_SCALE, ReferenceSolver, sample_initial_conditions

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1


@dataclasses.dataclass(frozen=True)
class NavierStokesProblem:
    """2-D Navier–Stokes (vorticity, periodic, unforced) as a learning problem (Hydra node).

    Holds the PDE and its data, generated on first use by `ReferenceSolver` from
    Gaussian-random-field initial conditions (`sample_initial_conditions`) and cached as HDF5
    in PDEBench's per-seed layout (`data` of shape `[nt, nx, nx, 1]`, `grid/{t,x,y}`). The
    training split has resolution `nx`, the test split `nx_test` (paper: 64² and 256²), so
    each split is its own file; seeds `0 … n_train − 1` are training samples and
    `n_train … n_train + n_test − 1` test samples, and sample `i`'s initial condition depends
    only on (`seed`, `i`). A cache whose grid, physics, generator settings or size differ from
    the config, or whose checksums fail, is refused with a message saying to delete it.

    `pde` is the PDE at the training resolution, `test_pde` at the test resolution.
    Building the problem is cheap: nothing is generated before `load()`.

    **Arguments:**

    - `nx`, `nx_test`: points per space axis of the training and test data.
    - `nt`: saved times, including t = 0 and t = T.
    - `n_train`, `n_test`: split sizes.
    - `viscosity`, `t_final`: ν and T.
    - `length_scale`, `ic_resolution`: the initial conditions' kernel length scale and
        sampling grid.
    - `seed`: PRNG seed of the initial conditions.
    - `data_dir`: folder of the caches.
    - `accuracy`: order of the time finite differences in the residual.
    - `mollifier`: the initial-condition mollifier scale of the solution ansatz, or `None`.
    - `solver`: the reference solver.
    - `batch_size`: initial conditions solved per `vmap` call while generating.
    """

    nx: int = 32
    nx_test: int = 32
    nt: int = 16
    n_train: int = 8
    n_test: int = 4
    viscosity: float = VISCOSITY
    t_final: float = 5.0
    length_scale: float = LENGTH_SCALE
    ic_resolution: int = IC_RESOLUTION
    seed: int = 0
    data_dir: str = "data"
    accuracy: int = 2
    mollifier: float | None = 0.005
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)
    batch_size: int = 8

    def __post_init__(self):
        check_positive_integers(self, ("n_train", "n_test", "batch_size"))
        for name in ("nx_test", "ic_resolution"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 4:
                raise ValueError(f"problem.{name} must be an integer >= 4, got {value!r}.")
        if not self.length_scale > 0:
            raise ValueError(f"problem.length_scale must be > 0, got {self.length_scale!r}.")
        _ = self.pde  # Validates the grid and constants now, not at first use.

    @property
    def pde(self) -> NavierStokes2D:
        return self._pde(self.nx)

    @property
    def test_pde(self) -> NavierStokes2D:
        return self._pde(self.nx_test)

    def _pde(self, nx: int) -> NavierStokes2D:
        return NavierStokes2D(
            nx=nx,
            nt=self.nt,
            viscosity=self.viscosity,
            t_final=self.t_final,
            accuracy=self.accuracy,
            mollifier=self.mollifier,
        )

    @property
    def in_channels(self) -> int:
        return 4

    def cache_path(self, split: str) -> Path:
        """The cache file of `split` (`"train"` or `"test"`)."""
        nx, num = self._split_size(split)
        name = (
            f"navier_stokes_{split}_nx{nx}_nt{self.nt}_nu{self.viscosity:g}_T{self.t_final:g}"
            f"_l{self.length_scale:g}_n{num}_seed{self.seed}.h5"
        )
        return Path(self.data_dir) / name

    def _split_size(self, split: str) -> tuple[int, int]:
        if split == "train":
            return self.nx, self.n_train
        if split == "test":
            return self.nx_test, self.n_test
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")

    def _first_seed(self, split: str) -> int:
        return 0 if split == "train" else self.n_train

    def _cache_attrs(self, split: str) -> dict[str, object]:
        nx, num = self._split_size(split)
        return {
            "generator": "pdeopt.problems.navier_stokes",
            "generator_version": GENERATOR_VERSION,
            "split": split,
            "nx": nx,
            "nt": self.nt,
            "num_samples": num,
            "first_seed": self._first_seed(split),
            "seed": self.seed,
            "viscosity": self.viscosity,
            "t_final": self.t_final,
            "length_scale": self.length_scale,
            "ic_resolution": self.ic_resolution,
            "solver_dt": self.solver.dt,
            "dealias_fraction": self.solver.dealias_fraction,
            "radial_dealias": int(self.solver.radial_dealias),
        }

    def initial_conditions(self, split: str) -> np.ndarray:
        """The split's initial vorticities `[n, nx, nx]` (float64)."""
        nx, num = self._split_size(split)
        first = self._first_seed(split)
        w0 = sample_initial_conditions(
            first + num,
            nx,
            key=jr.key(self.seed),
            length_scale=self.length_scale,
            ic_resolution=self.ic_resolution,
        )
        return np.asarray(w0[first:])

    def generate(self, split: str) -> np.ndarray:
        """Solve every sample of a split: returns `[n, nt, nx, nx]` float64."""
        nx, num = self._split_size(split)
        pde = self._pde(nx)
        w0 = self.initial_conditions(split)
        solve = jax.jit(jax.vmap(lambda w: self.solver.solve(pde, w)))
        out = [
            np.asarray(solve(w0[start : start + self.batch_size]))
            for start in range(0, num, self.batch_size)
        ]
        solutions = np.concatenate(out)
        if not np.all(np.isfinite(solutions)):
            raise FloatingPointError(
                "The Navier–Stokes reference solver produced non-finite values; lower "
                "problem.solver.dt or raise the resolution problem.nx."
            )
        return solutions

    def _load_split(self, split: str) -> Dataset:
        path = self.cache_path(split)
        attrs = self._cache_attrs(split)
        if not path.exists():
            log.info("Generating %d %s solutions into %s", attrs["num_samples"], split, path)
            solutions = self.generate(split)
            t, x, y = self._pde(attrs["nx"]).coordinates()
            write_seed_file(
                path,
                solutions[..., None],
                {"t": t, "x": x, "y": y},
                attrs,
                first_seed=attrs["first_seed"],
            )
        data, grid, _ = read_seed_file(path, expected_attrs=attrs)
        t, x, y = self._pde(attrs["nx"]).coordinates()
        for name, want in (("t", t), ("x", x), ("y", y)):
            have = grid.get(name)
            if have is None or have.shape != want.shape or not np.allclose(have, want, atol=1e-9):
                raise DataFileError(
                    f"Data file '{path}' has a grid/{name} that does not match the problem's; "
                    "delete it to regenerate it."
                )
        data = data[..., 0].astype(np.float64)
        first = attrs["first_seed"]
        seeds = tuple(f"{first + i:04d}" for i in range(len(data)))
        return Dataset(conditions=data[:, 0], solutions=data, seeds=seeds)

    def load(self) -> tuple[Dataset, Dataset]:
        """The train and test splits, generating and caching them on first use."""
        return self._load_split("train"), self._load_split("test")
