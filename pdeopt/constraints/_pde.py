"""The interface a PDE implements to be learned with soft or hard constraints."""

import abc

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float, Int, PyTree


class AbstractPDE(eqx.Module):
    """A PDE on a fixed space–time grid, written on *linear quantities* of a field.

    A PDE is described by two linear maps and two pointwise functions:

    - `interior_quantities(u)`: linear quantities of a grid field (`u`, `u_t`, `u_xx`, …),
        each an array on the grid. Because the map is linear, the same function applied to
        each of N basis fields gives the per-basis quantities that the hard-constraint layers
        combine with weights ω.
    - `interior_residual(q, condition)`: the PDE residual, pointwise in those quantities;
        it may be nonlinear. It accepts quantities on the whole grid or gathered at any set
        of collocation points.
    - `boundary_quantities(u)`: linear traces of the field used by the initial and boundary
        conditions (the initial slice, boundary values and derivatives).
    - `boundary_residuals(qb, condition)`: named residual rows of the initial and boundary
        conditions, each an array; `boundary_locations()` gives the grid point of each row.

    `condition` is the per-sample PDE input (initial condition, coefficients): whatever the
    problem's data provide. `inputs(condition)` lays it out, together with the grid
    coordinates, as the model's input array.
    """

    @property
    @abc.abstractmethod
    def grid_shape(self) -> tuple[int, ...]:
        """Shape of the space–time grid, time first."""

    @abc.abstractmethod
    def inputs(self, condition: PyTree[Array]) -> Float[Array, "*grid channels"]:
        """The model's input for one sample: coordinates and the broadcast condition."""

    @abc.abstractmethod
    def interior_quantities(self, u: Float[Array, "*grid"]) -> dict[str, Float[Array, "*grid"]]:
        """Linear quantities of the field `u` on the grid."""

    @abc.abstractmethod
    def interior_residual(
        self, q: dict[str, Float[Array, "*points"]], condition: PyTree[Array]
    ) -> Float[Array, "*points"]:
        """The PDE residual, pointwise in the quantities `q`."""

    @abc.abstractmethod
    def boundary_quantities(self, u: Float[Array, "*grid"]) -> dict[str, Float[Array, "..."]]:
        """Linear traces of `u` needed by the initial and boundary conditions."""

    @abc.abstractmethod
    def boundary_residuals(
        self, qb: dict[str, Float[Array, "..."]], condition: PyTree[Array]
    ) -> dict[str, Float[Array, "..."]]:
        """Named residual rows of the initial and boundary conditions."""

    @abc.abstractmethod
    def boundary_locations(self) -> dict[str, Int[np.ndarray, "... ndim"]]:
        """Grid multi-index of every row of `boundary_residuals`, block by block.

        Each array has the shape of its residual block plus a trailing axis of length
        `len(grid_shape)`: the grid point nearest to where the row applies. The
        mixture-of-experts layer uses it to give each expert the rows inside its subdomain.
        """

    def residuals(self, u: Float[Array, "*grid"], condition: PyTree[Array]) -> dict[str, Array]:
        """All residual blocks of a grid field: `{"pde": ..., **boundary_residuals}`."""
        pde = self.interior_residual(self.interior_quantities(u), condition)
        return {"pde": pde, **self.boundary_residuals(self.boundary_quantities(u), condition)}
