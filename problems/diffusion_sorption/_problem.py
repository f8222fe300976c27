"""The diffusion–sorption learning problem: PDE, reference data, and its HDF5 cache."""

import dataclasses
from typing import ClassVar

import jax.random as jr
import numpy as np

from pdeopt.constraints import FiniteDifference

from .._base import AbstractProblem, TestView
from ._pde import T_FINAL, DiffusionSorption
from ._solver import ReferenceSolver, sample_initial_conditions


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiffusionSorptionProblem(AbstractProblem):
    """1-D diffusion–sorption as a learning problem (the Hydra `problem` node): u0 ↦ u.

    Data are generated with `ReferenceSolver` and cached in PDEBench's per-seed layout
    (`data` `[nt, nx, 1]` and `grid/{x,t}` per sample); a PDEBench file the user already
    has (`1D_diff-sorp_NA_NA.h5`) is read instead through `data_path` (its grid must match).
    Sample i's initial condition is the i-th of `sample_initial_conditions(..., key=
    jr.key(seed))`.

    **Arguments:**

    - `nx`, `nt`: grid sizes.
    - `ic`: `"constant"` (PDEBench) or `"smooth"` initial conditions.
    - `outflow_sign`, `accuracy`: see `DiffusionSorption` (`accuracy`: of its finite
        differences).
    - `solver`: the reference solver.
    - `train_until`: train on the saved times t ≤ `train_until` only and test on all of
        them, the error over the later times reported as the test view `extrapolation`
        (`None`: train and test on the whole horizon). It must be one of the saved times.
    - the common arguments of `problems.AbstractProblem`.
    """

    nx: int = 64
    nt: int = 26
    ic: str = "constant"
    outflow_sign: float = -1.0
    accuracy: int = 2
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)
    train_until: float | None = None

    name: ClassVar[str] = "diffusion_sorption"
    data_layout: ClassVar[str] = "per-seed"

    def __post_init__(self):
        if self.ic not in ("constant", "smooth"):
            raise ValueError(f"problem.ic must be 'constant' or 'smooth', got {self.ic!r}.")
        super().__post_init__()

    @property
    def _train_frames(self) -> int:
        """The saved times a run trains on: all, or those up to `train_until`."""
        if self.train_until is None:
            return self.nt
        times = self.test_pde.grid.axes[0].points
        matches = np.flatnonzero(np.isclose(times, self.train_until, rtol=0, atol=1e-9))
        if not matches.size or not 3 <= matches[0] < len(times) - 1:
            raise ValueError(
                f"problem.train_until={self.train_until} is not a saved time between the "
                f"fourth and the last (the saved times are {times[0]:g}, {times[1]:g}, "
                f"..., {times[-1]:g}); choose one of them, or null."
            )
        return int(matches[0]) + 1

    @property
    def pde(self) -> DiffusionSorption:
        if self.train_until is None:
            return self.test_pde
        return self._pde(self._train_frames, self.train_until, t_extent=T_FINAL)

    @property
    def test_pde(self) -> DiffusionSorption:
        return self._pde(self.nt, T_FINAL)

    def _pde(self, nt: int, t_final: float, t_extent: float | None = None) -> DiffusionSorption:
        return DiffusionSorption(
            nx=self.nx,
            nt=nt,
            t_final=t_final,
            t_extent=t_extent,
            outflow_sign=self.outflow_sign,
            derivatives=FiniteDifference(accuracy=self.accuracy),
        )

    def test_views(self):
        if self.train_until is None:
            return {}
        window = (slice(self._train_frames, None), slice(None))
        return {"extrapolation": TestView(self.test_pde, (1, 1), window)}

    def sample_inputs(self, pde, seeds):
        u0 = sample_initial_conditions(pde, int(seeds.max()) + 1, self.ic, key=jr.key(self.seed))
        return np.asarray(u0)[seeds]
