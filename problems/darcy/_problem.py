"""The Darcy learning problem: PDE, coefficient samples, reference data and its HDF5 cache."""

import dataclasses
from typing import ClassVar

import jax
import numpy as np

from .._base import AbstractProblem
from ._pde import Darcy
from ._solver import ReferenceSolver, sample_coefficients


@dataclasses.dataclass(frozen=True, kw_only=True)
class DarcyProblem(AbstractProblem):
    """2-D Darcy flow as a learning problem (the Hydra `problem` node): coefficient a ↦ u.

    Sample i's coefficient is `sample_coefficients(pde, key=jr.fold_in(jr.key(seed), i))`;
    data are cached in PDEBench's single-file Darcy layout: `tensor` `[N, 1, n, n]` (u), `nu`
    `[N, n, n]` (a), `x-coordinate`, `y-coordinate`. A PDEBench `2D_DarcyFlow_*.hdf5` is read
    instead by setting `data_path` (its grid must be `n × n`; its β is `forcing`).

    **Arguments:**

    - `n`: cells per side.
    - `forcing`: the constant right-hand side f.
    - `high`, `low`: the two coefficient values.
    - `solver`: the reference solver.
    - the common arguments of `problems.AbstractProblem`.
    """

    n: int = 32
    n_train: int = 32
    n_test: int = 8
    forcing: float = 1.0
    high: float = 12.0
    low: float = 3.0
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)

    name: ClassVar[str] = "darcy"
    time_dependent: ClassVar[bool] = False
    condition_input: ClassVar[str] = "nu"

    def __post_init__(self):
        if not (self.high > 0 and self.low > 0):
            raise ValueError(
                f"problem.high and problem.low must be > 0, got {self.high!r}, {self.low!r}."
            )
        super().__post_init__()

    @property
    def pde(self) -> Darcy:
        return Darcy(n=self.n, forcing=self.forcing)

    def sample_inputs(self, pde, seeds):
        keys = self.sample_keys(seeds)
        sample = lambda k: sample_coefficients(pde, key=k, high=self.high, low=self.low)
        return np.asarray(jax.vmap(sample)(keys))
