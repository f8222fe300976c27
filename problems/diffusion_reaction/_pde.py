"""1-D diffusion–reaction (Fisher–KPP) on a periodic grid."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from pdeopt.constraints import AbstractPDE
from pdeopt.discretizations import Axis, derivative


class DiffusionReaction(AbstractPDE):
    """u_t = ν u_xx + ρ u(1 − u) on the periodic interval [0, 1), t ∈ (0, T].

    PDEBench's 1-D diffusion–reaction (ν ∈ {0.5, 1, 2, 5}, ρ ∈ {1, 2, 5, 10}, T = 1). Grid:
    `nx` periodic points x_i = i/nx and `nt` times including 0 and T; periodic central
    differences in x, second-order differences in t. Quantities `u`, `u_t`, `u_xx` are
    linear in u; the residual T·(u_t − ν u_xx − ρ u(1 − u)) is pointwise. The initial
    condition is a row `ic`; periodicity is built into the grid, so there are no boundary rows.

    **Arguments:** `nx`, `nt`, `nu` (ν), `rho` (ρ), `t_final` (T), `accuracy` (2 or 4).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    nu: float = eqx.field(static=True, default=0.5)
    rho: float = eqx.field(static=True, default=1.0)
    t_final: float = eqx.field(static=True, default=1.0)
    accuracy: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        for name in ("nx", "nt"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 5:
                raise ValueError(f"problem.{name} must be an integer >= 5, got {value!r}.")
        for name in ("nu", "t_final"):
            if getattr(self, name) <= 0:
                raise ValueError(f"problem.{name} must be > 0, got {getattr(self, name)!r}.")

    @property
    def x_axis(self) -> Axis:
        return Axis(self.nx, 0.0, 1.0, periodic=True)

    @property
    def t_axis(self) -> Axis:
        return Axis(self.nt, 0.0, self.t_final)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.nt, self.nx)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.t_axis.points), np.asarray(self.x_axis.points)

    def reaction(self, u: Array) -> Array:
        return self.rho * u * (1 - u)

    def inputs(self, condition: Float[Array, " nx"]) -> Float[Array, "nt nx 3"]:
        t, x = self.coordinates()
        tt, xx = jnp.meshgrid(t / self.t_final, x, indexing="ij")
        return jnp.stack([tt, xx, jnp.broadcast_to(condition, tt.shape)], axis=-1)

    def interior_quantities(self, u):
        return {
            "u": u,
            "u_t": derivative(u, self.t_axis, 1, dim=0, accuracy=self.accuracy),
            "u_xx": derivative(u, self.x_axis, 2, dim=1, accuracy=self.accuracy),
        }

    def interior_residual(self, q, condition):
        r = q["u_t"] - self.nu * q["u_xx"] - self.reaction(q["u"])
        return self.t_final * r

    def boundary_quantities(self, u):
        return {"initial": u[0]}

    def boundary_locations(self):
        x = np.arange(self.nx)
        return {"ic": np.stack([np.zeros_like(x), x], axis=-1)}

    def boundary_residuals(self, qb, condition):
        return {"ic": qb["initial"] - condition}
