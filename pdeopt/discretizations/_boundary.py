"""Boundary conditions for the finite-difference operators.

Every derivative here is the plain coordinate derivative d/dx, *not* the outward normal
derivative: at the `lo` end of an axis the outward normal derivative is `-du/dx`. So
`Neumann(value=g)` means `du/dx = g` on both ends.
"""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._custom_types import ScalarLike


class AbstractBoundaryCondition(eqx.Module):
    """A linear boundary condition `alpha u + beta du/dx = g` at one end of an axis.

    Values may be Python numbers or arrays that broadcast against the boundary slice (the field
    with the differentiated dimension removed), e.g. a time-dependent value on a (t, x) grid.
    """

    @abc.abstractmethod
    def residual(
        self, value: Float[ArrayLike, "*boundary"], dvalue: Float[ArrayLike, "*boundary"]
    ) -> Float[Array, "*boundary"]:
        """The boundary-condition row: zero where the condition holds.

        **Arguments:**

        - `value`: `u` at the boundary.
        - `dvalue`: `du/dx` (not the outward normal derivative) at the boundary.

        **Returns:**

        The residual, broadcast over `value`, `dvalue` and the condition's data.
        """

    @abc.abstractmethod
    def boundary_value(
        self, weight: float, interior_term: Float[Array, "*boundary"]
    ) -> Float[Array, "*boundary"]:
        """Solve the condition for the boundary value `u_b`.

        The derivative at the boundary is approximated by a one-sided stencil
        `du/dx(x_b) ≈ weight * u_b + interior_term`, where `interior_term = Σ_i w_i u_i` holds
        the interior points' contribution.

        **Arguments:**

        - `weight`: the stencil weight `w_0` of the boundary point.
        - `interior_term`: `Σ_i w_i u_i` over the interior points.

        **Returns:**

        The boundary value `u_b`, broadcast against `interior_term`.
        """


class Dirichlet(AbstractBoundaryCondition):
    """Prescribed value: `u = value` at the boundary.

    **Arguments:**

    - `value`: the boundary value `g`; a number or an array that broadcasts against the boundary
        slice. Defaults to zero.
    """

    value: ScalarLike | Float[ArrayLike, "*boundary"] = 0.0

    def residual(self, value, dvalue):
        return jnp.asarray(value) - self.value

    def boundary_value(self, weight, interior_term):
        return jnp.broadcast_to(jnp.asarray(self.value), jnp.shape(interior_term))


class Neumann(AbstractBoundaryCondition):
    """Prescribed derivative: `du/dx = value` at the boundary (d/dx, not the outward normal).

    **Arguments:**

    - `value`: the boundary derivative `g`; a number or an array that broadcasts against the
        boundary slice. Defaults to zero.
    """

    value: ScalarLike | Float[ArrayLike, "*boundary"] = 0.0

    def residual(self, value, dvalue):
        return jnp.asarray(dvalue) - self.value

    def boundary_value(self, weight, interior_term):
        return (self.value - interior_term) / weight


class Robin(AbstractBoundaryCondition):
    """Mixed condition: `alpha u + beta du/dx = value` at the boundary (d/dx, not the outward
    normal; at the `lo` end a "physical" Robin condition `alpha u + beta du/dn = g` is
    `Robin(alpha, -beta, g)`).

    **Arguments:**

    - `alpha`: the coefficient of `u`.
    - `beta`: the coefficient of `du/dx`. `alpha` and `beta` must not both be zero.
    - `value`: the right-hand side `g`; a number or an array that broadcasts against the boundary
        slice. Defaults to zero.
    """

    alpha: ScalarLike | Float[ArrayLike, "*boundary"]
    beta: ScalarLike | Float[ArrayLike, "*boundary"]
    value: ScalarLike | Float[ArrayLike, "*boundary"] = 0.0

    def __check_init__(self):
        if isinstance(self.alpha, int | float) and isinstance(self.beta, int | float):
            if self.alpha == 0 and self.beta == 0:
                raise ValueError(
                    "`Robin(alpha=0, beta=0)` constrains nothing; use `Dirichlet(value)` "
                    "(alpha=1, beta=0), `Neumann(value)` (alpha=0, beta=1), or a non-zero pair."
                )

    def residual(self, value, dvalue):
        return self.alpha * jnp.asarray(value) + self.beta * jnp.asarray(dvalue) - self.value

    def boundary_value(self, weight, interior_term):
        return (self.value - self.beta * interior_term) / (self.alpha + self.beta * weight)
