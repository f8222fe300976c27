"""2-D Darcy flow on cell centres: face differences, harmonic-mean face coefficients."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from pdeopt.constraints import AbstractPDE
from pdeopt.discretizations import Axis, boundary_trace


def _differences(u: Array, axis: int, h: float) -> tuple[Array, Array]:
    """Forward and backward differences along `axis`, with u = 0 on the faces half a cell out."""
    u = jnp.moveaxis(u, axis, 0)
    inner = (u[1:] - u[:-1]) / h
    forward = jnp.concatenate([inner, -u[-1:] / (h / 2)])
    backward = jnp.concatenate([u[:1] / (h / 2), inner])
    return jnp.moveaxis(forward, 0, axis), jnp.moveaxis(backward, 0, axis)


def _face_coefficients(a: Array, axis: int) -> tuple[Array, Array]:
    """Harmonic means of neighbouring cells; a boundary face takes its cell's value."""
    a = jnp.moveaxis(a, axis, 0)
    inner = 2 * a[1:] * a[:-1] / (a[1:] + a[:-1])
    plus = jnp.concatenate([inner, a[-1:]])
    minus = jnp.concatenate([a[:1], inner])
    return jnp.moveaxis(plus, 0, axis), jnp.moveaxis(minus, 0, axis)


class Darcy(AbstractPDE):
    """Steady 2-D Darcy flow −∇·(a∇u) = f on (0, 1)², u = 0 on the boundary.

    The grid is `n × n` cell centres (spacing h = 1/n); the boundary is the faces half a cell
    outside the outer centres. The discretisation is the conservative 5-point scheme: face
    fluxes a_f·(u_nb − u)/h with the harmonic mean a_f of the two cells' coefficients
    (exact for a coefficient jump on the face), and at a boundary face a_cell·(0 − u)/(h/2).

    Linear quantities (for the hard constraints) are the four one-sided differences
    `dx_plus`, `dx_minus`, `dy_plus`, `dy_minus` of u, with the zero boundary value built
    in; the residual combines them with the face coefficients of the condition a
    (`interior_coefficients`, gathered at the same points):
    −[(a_e·dx_plus − a_w·dx_minus) + (a_n·dy_plus − a_s·dy_minus)]/h − f. It works on the
    whole grid or at any collocation points, so soft and hard constraints both apply.

    Boundary rows `bc`: u extrapolated (second order) to the four boundary faces, = 0.

    **Arguments:**

    - `n`: cells per side.
    - `forcing`: the constant right-hand side f (PDEBench's β; FNO's f = 1).
    """

    n: int = eqx.field(static=True)
    forcing: float = eqx.field(static=True, default=1.0)

    def __check_init__(self):
        if not isinstance(self.n, int) or self.n < 4:
            raise ValueError(f"problem.n must be an integer >= 4, got {self.n!r}.")

    @property
    def axis(self) -> Axis:
        return Axis(self.n, 0.0, 1.0, centering="cell")

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """`(x, y)` cell-centre coordinates."""
        points = np.asarray(self.axis.points)
        return points, points

    def inputs(self, condition: Float[Array, "n n"]) -> Float[Array, "n n 3"]:
        x, y = self.coordinates()
        xx, yy = jnp.meshgrid(x, y, indexing="ij")
        return jnp.stack([xx, yy, jnp.asarray(condition, xx.dtype)], axis=-1)

    def interior_quantities(self, u: Float[Array, "n n"]) -> dict[str, Float[Array, "n n"]]:
        h = self.axis.spacing
        dx_plus, dx_minus = _differences(u, 0, h)
        dy_plus, dy_minus = _differences(u, 1, h)
        return {
            "u": u,
            "dx_plus": dx_plus,
            "dx_minus": dx_minus,
            "dy_plus": dy_plus,
            "dy_minus": dy_minus,
        }

    def interior_coefficients(self, condition: Float[Array, "n n"]) -> dict[str, Array]:
        """The four harmonic-mean face coefficients of a at every cell."""
        a_e, a_w = _face_coefficients(condition, 0)
        a_n, a_s = _face_coefficients(condition, 1)
        return {"a_e": a_e, "a_w": a_w, "a_n": a_n, "a_s": a_s}

    def interior_residual(self, q, condition):
        flux = (
            q["a_e"] * q["dx_plus"]
            - q["a_w"] * q["dx_minus"]
            + q["a_n"] * q["dy_plus"]
            - q["a_s"] * q["dy_minus"]
        )
        return -flux / self.axis.spacing - self.forcing

    def boundary_quantities(self, u: Float[Array, "n n"]) -> dict[str, Array]:
        ax = self.axis
        return {
            "west": boundary_trace(u, ax, "lo", dim=0),
            "east": boundary_trace(u, ax, "hi", dim=0),
            "south": boundary_trace(u, ax, "lo", dim=1),
            "north": boundary_trace(u, ax, "hi", dim=1),
        }

    def boundary_locations(self) -> dict[str, np.ndarray]:
        i, last = np.arange(self.n), np.full(self.n, self.n - 1)
        zero = np.zeros_like(i)
        sides = [(zero, i), (last, i), (i, zero), (i, last)]
        return {"bc": np.concatenate([np.stack(s, axis=-1) for s in sides])}

    def boundary_residuals(self, qb, condition):
        return {"bc": jnp.concatenate([qb[k] for k in ("west", "east", "south", "north")])}
