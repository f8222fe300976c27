"""The interface a PDE implements to be learned with soft or hard constraints."""

import abc

import equinox as eqx
import jax.numpy as jnp
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
    problem's data provide. Coefficient fields that the residual needs point by point (a
    diffusivity a(x), a forcing f(x)) come from `interior_coefficients(condition)`: arrays on
    the grid that are gathered at the same points as the quantities and merged into `q`, so
    that `interior_residual` reads them as `q["a"]` wherever it is evaluated.
    `inputs(condition)` lays the condition out, together with the grid coordinates, as the
    model's input array.

    Coordinate-model formulations instead read the per-basis quantities from the model's
    output, autodiff derivatives at the points of `inputs`: see `quantities_from_output`.
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

    def ansatz(
        self, fields: Float[Array, "*grid n"], condition: PyTree[Array]
    ) -> tuple[Float[Array, "*grid n"], Float[Array, "*grid"]]:
        """The solution ansatz u = offset + Σ_k ω_k f_k built from the model's output fields.

        Returns the fields f (any transformation of the model's channels) and the offset (a
        field that may depend on the condition). Soft constraints use u = offset + f_1; the
        hard-constraint layers solve for ω with f_k as the basis. The default is the model's
        output unchanged and no offset; a PDE overrides it to make a condition hold by
        construction (the Navier–Stokes initial-condition mollifier).
        """
        del condition
        return fields, jnp.zeros(fields.shape[:-1], fields.dtype)

    def quantities_from_output(
        self, output: Float[Array, "*points channels"]
    ) -> (
        tuple[
            Float[Array, "*grid n"],
            dict[str, Float[Array, "*grid n"]],
            dict[str, Float[Array, "... n"]],
        ]
        | None
    ):
        """Per-basis quantities read from the model's output instead of computed from fields.

        The default, `None`, is the grid formulation: the hard-constraint layers apply
        `interior_quantities` and `boundary_quantities` to each of the `ansatz` fields. A PDE
        for coordinate models (a DeepONet trunk or PINN wrapped in
        [`pdeopt.models.AutodiffBasis`][], whose output channels are the basis functions and
        their autodiff derivatives at the points of `inputs`) returns instead

        - `fields`: the N basis values on the grid, `(*grid, N)`;
        - `interior`: {name: `(*grid, N)`}, the per-basis quantities of `interior_residual`;
        - `boundary`: {name: `(..., N)`}, the per-basis traces of `boundary_residuals`
            (they may lie off the grid, e.g. at x = 0 and x = 1 of a cell-centred grid).

        The solution is then u = fields·ω: `ansatz` is not used (no offset), and every
        residual the layer forms — solve, training loss, report — is built from these
        quantities, so no derivative is taken on the grid.
        """
        del output
        return None

    def interior_coefficients(self, condition: PyTree[Array]) -> dict[str, Float[Array, "*grid"]]:
        """Fields of the condition needed pointwise by `interior_residual` (default: none)."""
        del condition
        return {}

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
        q = merge_coefficients(self.interior_quantities(u), self.interior_coefficients(condition))
        pde = self.interior_residual(q, condition)
        return {"pde": pde, **self.boundary_residuals(self.boundary_quantities(u), condition)}


def merge_coefficients(q: dict[str, Array], coefficients: dict[str, Array]) -> dict[str, Array]:
    """`q | coefficients`, refusing a coefficient that has the name of a quantity."""
    clash = set(q) & set(coefficients)
    if clash:
        raise ValueError(
            f"interior_coefficients and interior_quantities both define {sorted(clash)}; "
            "give the coefficient fields names of their own."
        )
    return q | coefficients
