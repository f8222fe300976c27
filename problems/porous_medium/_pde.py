"""The porous medium equation, its travelling-wave solution, residuals on grid fields."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

from pdeopt.constraints import (
    AbstractDerivatives,
    AbstractPDE,
    Boundary,
    FiniteDifference,
    check_parameters,
    initial_condition,
)
from pdeopt.discretizations import Axis, Grid


def positive_power(u: ArrayLike, p: ArrayLike) -> Array:
    """u₊^p: u^p for u > 0 and 0 otherwise, with finite derivatives everywhere (double
    `where`; for p ≥ 1 the result is continuously differentiable at 0)."""
    u = jnp.asarray(u)
    positive = u > 0
    return jnp.where(positive, jnp.where(positive, u, 1.0) ** p, 0.0)


class PorousMedium(AbstractPDE):
    """u_t = (k(u) u_x)_x with k(u) = u^m on x ∈ (0, 1), t ∈ (0, T].

    The generalised porous medium equation of ProbConserv (Hansen et al. 2023) in its
    degenerate porous-medium case. The diffusivity vanishes where u = 0, so a front moves at
    finite speed and u_x is unbounded there. pdeopt uses the travelling-wave solution

        u(x, t) = (m·V·(V·t − x))₊^(1/m),

    a front at x = V·t moving right at speed V into u = 0, with u(x, 0) = 0,
    u(0, t) = (m·V²·t)^(1/m) (Dirichlet inflow) and u(1, t) = 0 (exact while V·T ≤ 1).
    The exponent m is the per-sample condition (a scalar), so one PDE object serves every m.

    The grid is `nx` cell centres in x and `nt` times including 0 and T. Residuals use
    τ = t/T: the PDE row is T·(u_t − u^m·u_xx − m·u^(m−1)·u_x²), with the powers taken of u₊
    (NaN-safe for u ≤ 0); the boundary rows skip t = 0.

    **Arguments:**

    - `nx`, `nt`: grid sizes.
    - `t_final`: T (default 1: the front reaches x = 1 at T when V = 1).
    - `speed`: V, the front speed.
    - `derivatives`: the source of the quantities (default `FiniteDifference(accuracy=2)`).

    ??? cite "References"

        Hansen, Maddix, Alizadeh, Gupta, Mahoney, *Learning Physical Models that Can Respect
        Conservation Laws*, ICML 2023 (ProbConserv); Vázquez, *The Porous Medium Equation:
        Mathematical Theory*, Oxford 2007, §4.3 (travelling waves).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    t_final: float = eqx.field(static=True, default=1.0)
    speed: float = eqx.field(static=True, default=1.0)
    derivatives: AbstractDerivatives = FiniteDifference()

    quantities: ClassVar = {"u": (0, 0), "u_t": (1, 0), "u_x": (0, 1), "u_xx": (0, 2)}

    def __check_init__(self):
        check_parameters(self, sizes={"nx": 4, "nt": 4}, positive=("t_final", "speed"))
        if self.speed * self.t_final > 1:
            raise ValueError(
                f"problem.speed * problem.t_final = {self.speed * self.t_final:g} > 1: the "
                "front would leave the domain, where u(1, t) = 0 no longer holds. Lower "
                "problem.t_final or problem.speed."
            )

    @property
    def grid(self) -> Grid:
        x = Axis(self.nx, 0.0, 1.0, centering="cell")
        return Grid((Axis(self.nt, 0.0, self.t_final, centering="vertex"), x))

    def exact(self, t: ArrayLike, x: ArrayLike, m: ArrayLike) -> Array:
        """The travelling wave (m·V·(V·t − x))₊^(1/m)."""
        return positive_power(m * self.speed * (self.speed * t - x), 1 / m)

    def inflow_value(self, t: ArrayLike, m: ArrayLike) -> Array:
        """The Dirichlet value u(0, t) = (m·V²·t)^(1/m)."""
        return self.exact(t, 0.0, m)

    def interior_residual(self, q, condition):
        m = condition
        flux_divergence = (
            positive_power(q["u"], m) * q["u_xx"]
            + m * positive_power(q["u"], m - 1) * q["u_x"] ** 2
        )
        return self.t_final * (q["u_t"] - flux_divergence)

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        later = (slice(1, None),)  # The boundary rows skip t = 0.
        inflow = lambda u, m, x: u[0] - self.inflow_value(x[..., 0], m)
        return (
            initial_condition(lambda u, m, x: u[0]),
            Boundary("bc", 1, "lo", inflow, rows=later),
            Boundary("bc", 1, "hi", lambda u, m, x: u[0], rows=later),
        )
