"""1-D heat and 2-D Poisson equations with exact sine-series solutions."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from pdeopt.constraints import AbstractPDE
from pdeopt.discretizations import Axis, derivative


def _check_sizes(**sizes):
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 5:
            raise ValueError(f"problem.{name} must be an integer >= 5, got {value!r}.")


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

    def __check_init__(self):
        _check_sizes(nx=self.nx, nt=self.nt)
        if self.kappa <= 0 or self.t_final <= 0:
            raise ValueError("problem.kappa and problem.t_final must be > 0.")

    @property
    def x_axis(self) -> Axis:
        return Axis(self.nx, 0.0, 1.0)

    @property
    def t_axis(self) -> Axis:
        return Axis(self.nt, 0.0, self.t_final)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.nt, self.nx)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.t_axis.points), np.asarray(self.x_axis.points)

    def exact(self, coefficients: Float[Array, " modes"]) -> Float[Array, "nt nx"]:
        """The solution for u0 = Σ c_k sin(kπx) on the grid."""
        t, x = self.coordinates()
        k = jnp.arange(1, coefficients.shape[-1] + 1)
        decay = jnp.exp(-self.kappa * (k * jnp.pi) ** 2 * jnp.asarray(t)[:, None])
        return _modes(decay * coefficients, x)

    def inputs(self, condition: Float[Array, " nx"]) -> Float[Array, "nt nx 3"]:
        t, x = self.coordinates()
        tt, xx = jnp.meshgrid(t / self.t_final, x, indexing="ij")
        return jnp.stack([tt, xx, jnp.broadcast_to(condition, tt.shape)], axis=-1)

    def interior_quantities(self, u):
        return {
            "u_t": derivative(u, self.t_axis, 1, dim=0),
            "u_xx": derivative(u, self.x_axis, 2, dim=1),
        }

    def interior_residual(self, q, condition):
        return self.t_final * (q["u_t"] - self.kappa * q["u_xx"])

    def boundary_quantities(self, u):
        return {"initial": u[0], "left": u[1:, 0], "right": u[1:, -1]}

    def boundary_locations(self):
        x, t = np.arange(self.nx), np.arange(1, self.nt)
        initial = np.stack([np.zeros_like(x), x], axis=-1)
        left = np.stack([t, np.zeros_like(t)], axis=-1)
        right = np.stack([t, np.full_like(t, self.nx - 1)], axis=-1)
        return {"ic": initial, "bc": np.concatenate([left, right])}

    def boundary_residuals(self, qb, condition):
        return {
            "ic": qb["initial"] - condition,
            "bc": jnp.concatenate([qb["left"], qb["right"]]),
        }


class Poisson(AbstractPDE):
    """−Δu = f on (0, 1)², u = 0 on the boundary.

    Vertex grid of `n × n` points including the boundary; second-order finite differences.
    For f = Σ c_kl sin(kπx) sin(lπy) the solution is Σ c_kl/(π²(k² + l²)) sin(kπx) sin(lπy)
    (`exact`). The condition is f on the grid; like Darcy, the residual needs it at every
    point, so it takes quantities on the whole grid.

    **Arguments:** `n`.
    """

    n: int = eqx.field(static=True)

    def __check_init__(self):
        _check_sizes(n=self.n)

    @property
    def axis(self) -> Axis:
        return Axis(self.n, 0.0, 1.0)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(self.axis.points)
        return x, x

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

    def inputs(self, condition: Float[Array, "n n"]) -> Float[Array, "n n 3"]:
        x, y = self.coordinates()
        xx, yy = jnp.meshgrid(x, y, indexing="ij")
        return jnp.stack([xx, yy, jnp.asarray(condition, xx.dtype)], axis=-1)

    def interior_quantities(self, u):
        return {
            "u_xx": derivative(u, self.axis, 2, dim=0),
            "u_yy": derivative(u, self.axis, 2, dim=1),
        }

    def interior_coefficients(self, condition: Float[Array, "n n"]) -> dict[str, Array]:
        return {"f": condition}

    def interior_residual(self, q, condition):
        return -(q["u_xx"] + q["u_yy"]) - q["f"]

    def boundary_quantities(self, u):
        return {"west": u[0], "east": u[-1], "south": u[1:-1, 0], "north": u[1:-1, -1]}

    def boundary_locations(self):
        i, inner = np.arange(self.n), np.arange(1, self.n - 1)
        last = self.n - 1
        sides = [
            (np.zeros_like(i), i),
            (np.full_like(i, last), i),
            (inner, np.zeros_like(inner)),
            (inner, np.full_like(inner, last)),
        ]
        return {"bc": np.concatenate([np.stack(s, axis=-1) for s in sides])}

    def boundary_residuals(self, qb, condition):
        return {"bc": jnp.concatenate([qb[k] for k in ("west", "east", "south", "north")])}
