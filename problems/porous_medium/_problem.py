"""The porous-medium learning problem: PDE, reference data and its HDF5 cache."""

import dataclasses
from typing import ClassVar

import jax
import numpy as np

from pdeopt.constraints import FiniteDifference

from .._base import AbstractProblem
from ._pde import PorousMedium
from ._solver import ReferenceSolver, sample_exponent


@dataclasses.dataclass(frozen=True, kw_only=True)
class PorousMediumProblem(AbstractProblem):
    """The porous medium equation as a learning problem: m ↦ u (the Hydra `problem` node).

    Sample i's exponent is `sample_exponent(key=jr.fold_in(jr.key(seed), i), low=m_min,
    high=m_max)`; its solution is computed by `ReferenceSolver` (the analytic travelling wave
    is `pde.exact`, for measuring errors). Data are cached in PDEBench's single-file layout
    (`tensor` `[N, nt, nx]`, the exponents in `m` `[N]`, `x-coordinate`, `t-coordinate`).

    **Arguments:** `nx`, `nt`, `t_final`, `speed`, `accuracy` (see `PorousMedium`), `m_min`,
    `m_max` (the range of m), `solver`, and the common ones of `problems.AbstractProblem`.
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
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)

    name: ClassVar[str] = "porous_medium"
    condition_input: ClassVar[str] = "m"

    def __post_init__(self):
        if not 1 <= self.m_min <= self.m_max:
            raise ValueError(
                f"problem.m_min, problem.m_max must satisfy 1 <= m_min <= m_max, got "
                f"{self.m_min!r}, {self.m_max!r}."
            )
        super().__post_init__()

    @property
    def pde(self) -> PorousMedium:
        return PorousMedium(
            nx=self.nx,
            nt=self.nt,
            t_final=self.t_final,
            speed=self.speed,
            derivatives=FiniteDifference(accuracy=self.accuracy),
        )

    def sample_inputs(self, pde, seeds):
        keys = self.sample_keys(seeds)
        sample = lambda k: sample_exponent(key=k, low=self.m_min, high=self.m_max)
        return np.asarray(jax.vmap(sample)(keys))
