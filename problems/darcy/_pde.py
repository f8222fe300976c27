"""2-D Darcy flow on cell centres: face differences, harmonic-mean face coefficients."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from pdeopt.constraints import (
    AbstractGridDerivatives,
    AbstractPDE,
    Boundary,
    FiniteDifference,
    check_parameters,
)
from pdeopt.discretizations import Axis, Grid


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
    derivatives: AbstractGridDerivatives = FiniteDifference()

    quantities: ClassVar = {}  # `linear_quantities` is its own.

    def __check_init__(self):
        check_parameters(self, sizes={"n": 4})

    @property
    def axis(self) -> Axis:
        return Axis(self.n, 0.0, 1.0, centering="cell")

    @property
    def grid(self) -> Grid:
        return Grid((self.axis, self.axis))

    def linear_quantities(self, u: Float[Array, "n n"]) -> dict[str, Float[Array, "n n"]]:
        """The one-sided face differences, with the zero boundary value built in."""
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

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        zero = lambda u, c, x: u[0]
        return tuple(Boundary("bc", d, side, zero) for d in (0, 1) for side in ("lo", "hi"))
