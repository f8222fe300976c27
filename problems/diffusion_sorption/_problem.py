"""The diffusion–sorption learning problem: PDE, reference data, and its HDF5 cache."""

import dataclasses
from typing import ClassVar

import jax.random as jr
import numpy as np

from pdeopt.constraints import FiniteDifference

from .._base import AbstractProblem
from ._pde import DiffusionSorption
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
    - the common arguments of `problems.AbstractProblem`.
    """

    nx: int = 64
    nt: int = 26
    ic: str = "constant"
    outflow_sign: float = -1.0
    accuracy: int = 2
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)

    name: ClassVar[str] = "diffusion_sorption"
    data_layout: ClassVar[str] = "per-seed"

    def __post_init__(self):
        if self.ic not in ("constant", "smooth"):
            raise ValueError(f"problem.ic must be 'constant' or 'smooth', got {self.ic!r}.")
        super().__post_init__()

    @property
    def pde(self) -> DiffusionSorption:
        return DiffusionSorption(
            nx=self.nx,
            nt=self.nt,
            outflow_sign=self.outflow_sign,
            derivatives=FiniteDifference(accuracy=self.accuracy),
        )

    def sample_inputs(self, pde, seeds):
        u0 = sample_initial_conditions(pde, int(seeds.max()) + 1, self.ic, key=jr.key(self.seed))
        return np.asarray(u0)[seeds]
