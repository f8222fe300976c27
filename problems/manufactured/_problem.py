"""Heat and Poisson learning problems; data are their exact solutions on the grid."""

import dataclasses
from typing import ClassVar

import jax
import jax.random as jr
import numpy as np

from .._base import AbstractProblem
from ._pde import Heat, Poisson


def _coefficients(keys, shape: tuple[int, ...]) -> np.ndarray:
    """Per key: N(0, 1)/k² (1-D) or N(0, 1)/(k² + l²) (2-D) sine coefficients."""
    k = np.arange(1, shape[0] + 1, dtype=np.float64)
    decay = k**-2 if len(shape) == 1 else 1.0 / (k[:, None] ** 2 + k[None, :] ** 2)
    return np.asarray(jax.vmap(lambda key: jr.normal(key, shape))(keys)) * decay


def _check_modes(modes) -> None:
    if not isinstance(modes, int) or modes < 1:
        raise ValueError(f"problem.modes must be a positive integer, got {modes!r}.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeatProblem(AbstractProblem):
    """The 1-D heat equation as a learning problem: u0 ↦ u (the Hydra `problem` node).

    Sample i has u0 = Σ_{k ≤ modes} c_k sin(kπx), c_k ~ N(0, 1)/k² drawn with
    `jr.fold_in(jr.key(seed), i)`; its data are the exact solution, cached in PDEBench's
    single-file layout (`tensor` `[N, nt, nx]`, `x-coordinate`, `t-coordinate`).

    **Arguments:** `nx`, `nt`, `kappa`, `t_final` (see `Heat`), `modes`, and the common ones
    of `problems.AbstractProblem`.
    """

    nx: int = 33
    nt: int = 17
    kappa: float = 1.0
    t_final: float = 0.1
    modes: int = 4
    n_train: int = 32
    n_test: int = 8

    name: ClassVar[str] = "heat"

    def __post_init__(self):
        _check_modes(self.modes)
        super().__post_init__()

    @property
    def pde(self) -> Heat:
        return Heat(nx=self.nx, nt=self.nt, kappa=self.kappa, t_final=self.t_final)

    def sample_inputs(self, pde, seeds):
        return _coefficients(self.sample_keys(seeds), (self.modes,))

    def solve(self, pde, inputs):
        return np.asarray(jax.vmap(pde.exact)(inputs))


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoissonProblem(AbstractProblem):
    """The 2-D Poisson equation as a learning problem: f ↦ u (the Hydra `problem` node).

    Sample i has f = Σ_{k, l ≤ modes} c_kl sin(kπx) sin(lπy), c_kl ~ N(0, 1)/(k² + l²) drawn
    with `jr.fold_in(jr.key(seed), i)`; its data are the exact solution, cached in PDEBench's
    single-file Darcy-like layout (`tensor` `[N, 1, n, n]` = u, `f` `[N, n, n]`).

    **Arguments:** `n` (see `Poisson`), `modes`, and the common ones of
    `problems.AbstractProblem`.
    """

    n: int = 33
    modes: int = 4
    n_train: int = 32
    n_test: int = 8

    name: ClassVar[str] = "poisson"
    time_dependent: ClassVar[bool] = False
    condition_input: ClassVar[str] = "f"

    def __post_init__(self):
        _check_modes(self.modes)
        super().__post_init__()

    @property
    def pde(self) -> Poisson:
        return Poisson(n=self.n)

    def sample_inputs(self, pde, seeds):
        return _coefficients(self.sample_keys(seeds), (self.modes, self.modes))

    def solve(self, pde, inputs):
        return np.asarray(jax.vmap(pde.exact)(inputs))

    def stored_condition(self, pde, inputs):
        return np.asarray(jax.vmap(pde.forcing)(inputs))
