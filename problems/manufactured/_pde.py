"""1-D heat and 2-D Poisson equations with exact sine-series solutions."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from pdeopt.constraints import (
    AbstractDerivatives,
    AbstractPDE,
    Boundary,
    FiniteDifference,
    check_parameters,
    initial_condition,
)
from pdeopt.discretizations import Axis, Grid


def _modes(coefficients: Array, x: np.ndarray) -> Array:
    """Σ_k c_k sin(kπx), k = 1 … len(c): the sine modes of the unit interval."""
    k = jnp.arange(1, coefficients.shape[-1] + 1)
    return coefficients @ jnp.sin(jnp.pi * k[:, None] * jnp.asarray(x)[None, :])


class Heat(AbstractPDE):
    """u_t = κ u_xx on x ∈ (0, 1), t ∈ (0, T], u(0, t) = u(1, t) = 0, u(x, 0) = u0(x).

    Vertex grid (`nx` points including x = 0, 1; `nt` times including 0 and T); second-order
    finite differences (one-sided at the ends, so the quantities are linear in u). For
    u0 = Σ c_k sin(kπx) the solution is Σ c_k exp(−κk²π²t) sin(kπx) (`exact`). The residual
    row is T·(u_t − κu_xx), O(1) in τ = t/T.

    **Arguments:** `nx`, `nt`, `kappa` (κ), `t_final` (T).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    kappa: float = eqx.field(static=True, default=1.0)
    t_final: float = eqx.field(static=True, default=0.1)
    derivatives: AbstractDerivatives = FiniteDifference()

    quantities: ClassVar = {"u_t": (1, 0), "u_xx": (0, 2)}

    def __check_init__(self):
        check_parameters(self, sizes={"nx": 5, "nt": 5}, positive=("kappa", "t_final"))

    @property
    def grid(self) -> Grid:
        return Grid((Axis(self.nt, 0.0, self.t_final), Axis(self.nx, 0.0, 1.0)))

    def exact(self, coefficients: Float[Array, " modes"]) -> Float[Array, "nt nx"]:
        """The solution for u0 = Σ c_k sin(kπx) on the grid."""
        t, x = self.coordinates()
        k = jnp.arange(1, coefficients.shape[-1] + 1)
        decay = jnp.exp(-self.kappa * (k * jnp.pi) ** 2 * jnp.asarray(t)[:, None])
        return _modes(decay * coefficients, x)

    def interior_residual(self, q, condition):
        return self.t_final * (q["u_t"] - self.kappa * q["u_xx"])

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        later = (slice(1, None),)  # The boundary rows skip t = 0.
        zero = lambda u, c, x: u[0]
        return (
            initial_condition(),
            Boundary("bc", 1, "lo", zero, rows=later),
            Boundary("bc", 1, "hi", zero, rows=later),
        )


class Poisson(AbstractPDE):
    """−Δu = f on (0, 1)², u = 0 on the boundary.

    Vertex grid of `n × n` points including the boundary; second-order finite differences.
    For f = Σ c_kl sin(kπx) sin(lπy) the solution is Σ c_kl/(π²(k² + l²)) sin(kπx) sin(lπy)
    (`exact`). The condition is f on the grid; like Darcy, the residual needs it at every
    point, so it takes quantities on the whole grid.

    **Arguments:** `n`.
    """

    n: int = eqx.field(static=True)
    derivatives: AbstractDerivatives = FiniteDifference()

    quantities: ClassVar = {"u_xx": (2, 0), "u_yy": (0, 2)}

    def __check_init__(self):
        check_parameters(self, sizes={"n": 5})

    @property
    def axis(self) -> Axis:
        return Axis(self.n, 0.0, 1.0)

    @property
    def grid(self) -> Grid:
        return Grid((self.axis, self.axis))

    def _series(self, coefficients: Float[Array, "modes modes"]) -> Array:
        x, _ = self.coordinates()
        k = jnp.arange(1, coefficients.shape[-1] + 1)
        s = jnp.sin(jnp.pi * k[:, None] * jnp.asarray(x)[None, :])
        return s.T @ coefficients @ s

    def forcing(self, coefficients: Float[Array, "modes modes"]) -> Float[Array, "n n"]:
        return self._series(coefficients)

    def exact(self, coefficients: Float[Array, "modes modes"]) -> Float[Array, "n n"]:
        k = jnp.arange(1, coefficients.shape[-1] + 1)
        eigen = jnp.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2)
        return self._series(coefficients / eigen)

    def interior_coefficients(self, condition: Float[Array, "n n"]) -> dict[str, Array]:
        return {"f": condition}

    def interior_residual(self, q, condition):
        return -(q["u_xx"] + q["u_yy"]) - q["f"]

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        zero = lambda u, c, x: u[0]
        inner = (slice(1, -1),)  # The corners belong to the x-faces.
        return (
            Boundary("bc", 0, "lo", zero),
            Boundary("bc", 0, "hi", zero),
            Boundary("bc", 1, "lo", zero, rows=inner),
            Boundary("bc", 1, "hi", zero, rows=inner),
        )
