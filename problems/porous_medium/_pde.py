"""The porous medium equation, its travelling-wave solution, residuals on grid fields."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from pdeopt.constraints import AbstractPDE
from pdeopt.discretizations import Axis, boundary_trace, derivative


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
    - `accuracy`: finite-difference order of accuracy (2 or 4).

    ??? cite "References"

        Hansen, Maddix, Alizadeh, Gupta, Mahoney, *Learning Physical Models that Can Respect
        Conservation Laws*, ICML 2023 (ProbConserv); Vázquez, *The Porous Medium Equation:
        Mathematical Theory*, Oxford 2007, §4.3 (travelling waves).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    t_final: float = eqx.field(static=True, default=1.0)
    speed: float = eqx.field(static=True, default=1.0)
    accuracy: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        for name in ("nx", "nt"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 4:
                raise ValueError(f"problem.{name} must be an integer >= 4, got {value!r}.")
        for name in ("t_final", "speed"):
            if getattr(self, name) <= 0:
                raise ValueError(f"problem.{name} must be > 0, got {getattr(self, name)!r}.")
        if self.speed * self.t_final > 1:
            raise ValueError(
                f"problem.speed * problem.t_final = {self.speed * self.t_final:g} > 1: the "
                "front would leave the domain, where u(1, t) = 0 no longer holds. Lower "
                "problem.t_final or problem.speed."
            )

    @property
    def x_axis(self) -> Axis:
        return Axis(self.nx, 0.0, 1.0, centering="cell")

    @property
    def t_axis(self) -> Axis:
        return Axis(self.nt, 0.0, self.t_final, centering="vertex")

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.nt, self.nx)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """`(t, x)` coordinate vectors of the grid."""
        return np.asarray(self.t_axis.points), np.asarray(self.x_axis.points)

    def exact(self, t: ArrayLike, x: ArrayLike, m: ArrayLike) -> Array:
        """The travelling wave (m·V·(V·t − x))₊^(1/m)."""
        return positive_power(m * self.speed * (self.speed * t - x), 1 / m)

    def inflow_value(self, t: ArrayLike, m: ArrayLike) -> Array:
        """The Dirichlet value u(0, t) = (m·V²·t)^(1/m)."""
        return self.exact(t, 0.0, m)

    def inputs(self, condition: Float[Array, ""]) -> Float[Array, "nt nx 3"]:
        t, x = self.coordinates()
        tt, xx = jnp.meshgrid(t / self.t_final, x, indexing="ij")
        return jnp.stack([tt, xx, jnp.broadcast_to(condition, tt.shape).astype(tt.dtype)], -1)

    def interior_quantities(self, u: Float[Array, "nt nx"]) -> dict[str, Float[Array, "nt nx"]]:
        x, a = self.x_axis, self.accuracy
        return {
            "u": u,
            "u_t": derivative(u, self.t_axis, 1, dim=0, accuracy=a),
            "u_x": derivative(u, x, 1, dim=1, accuracy=a),
            "u_xx": derivative(u, x, 2, dim=1, accuracy=a),
        }

    def interior_residual(self, q, condition):
        m = condition
        flux_divergence = (
            positive_power(q["u"], m) * q["u_xx"]
            + m * positive_power(q["u"], m - 1) * q["u_x"] ** 2
        )
        return self.t_final * (q["u_t"] - flux_divergence)

    def boundary_quantities(self, u: Float[Array, "nt nx"]) -> dict[str, Array]:
        x, a = self.x_axis, self.accuracy
        return {
            "initial": u[0],
            "left": boundary_trace(u[1:], x, "lo", dim=1, accuracy=a),
            "right": boundary_trace(u[1:], x, "hi", dim=1, accuracy=a),
        }

    def boundary_locations(self) -> dict[str, np.ndarray]:
        x = np.arange(self.nx)
        t = np.arange(1, self.nt)
        initial = np.stack([np.zeros_like(x), x], axis=-1)
        left = np.stack([t, np.zeros_like(t)], axis=-1)
        right = np.stack([t, np.full_like(t, self.nx - 1)], axis=-1)
        return {"ic": initial, "bc": np.concatenate([left, right])}

    def boundary_residuals(self, qb, condition):
        t = jnp.asarray(self.coordinates()[0][1:])
        left = qb["left"] - self.inflow_value(t, condition)
        return {"ic": qb["initial"], "bc": jnp.concatenate([left, qb["right"]])}
