"""1-D diffusion–reaction (Fisher–KPP) on a periodic grid."""

from typing import ClassVar

import equinox as eqx
from jaxtyping import Array

from pdeopt.constraints import (
    AbstractDerivatives,
    AbstractPDE,
    Boundary,
    FiniteDifference,
    check_parameters,
    initial_condition,
)
from pdeopt.discretizations import Axis, Grid


class DiffusionReaction(AbstractPDE):
    """u_t = ν u_xx + ρ u(1 − u) on the periodic interval [0, 1), t ∈ (0, T].

    PDEBench's 1-D diffusion–reaction (ν ∈ {0.5, 1, 2, 5}, ρ ∈ {1, 2, 5, 10}, T = 1). Grid:
    `nx` periodic points x_i = i/nx and `nt` times including 0 and T; periodic central
    differences in x, second-order differences in t. Quantities `u`, `u_t`, `u_xx` are
    linear in u; the residual T·(u_t − ν u_xx − ρ u(1 − u)) is pointwise. The initial
    condition is a row `ic`; periodicity is built into the grid, so there are no boundary rows.

    **Arguments:** `nx`, `nt`, `nu` (ν), `rho` (ρ), `t_final` (T), `derivatives` (default
    `FiniteDifference(accuracy=2)`).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    nu: float = eqx.field(static=True, default=0.5)
    rho: float = eqx.field(static=True, default=1.0)
    t_final: float = eqx.field(static=True, default=1.0)
    derivatives: AbstractDerivatives = FiniteDifference()

    quantities: ClassVar = {"u": (0, 0), "u_t": (1, 0), "u_xx": (0, 2)}

    def __check_init__(self):
        check_parameters(self, sizes={"nx": 5, "nt": 5}, positive=("nu", "t_final"))

    @property
    def grid(self) -> Grid:
        return Grid((Axis(self.nt, 0.0, self.t_final), Axis(self.nx, 0.0, 1.0, periodic=True)))

    def reaction(self, u: Array) -> Array:
        return self.rho * u * (1 - u)

    def interior_residual(self, q, condition):
        r = q["u_t"] - self.nu * q["u_xx"] - self.reaction(q["u"])
        return self.t_final * r

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        return (initial_condition(),)
