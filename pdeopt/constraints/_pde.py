"""The interface a PDE implements to be learned with soft or hard constraints."""

import abc

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from ..discretizations import Grid
from ._blocks import Boundary
from ._derivatives import AbstractDerivatives


class AbstractPDE(eqx.Module):
    """A PDE on a fixed grid, written as physics only: quantities, a residual, blocks.

    A PDE declares

    - `grid`: its tensor-product grid ([`pdeopt.discretizations.Grid`][]), time first for
        evolution problems;
    - `derivatives`: where the linear quantities come from, an instance of
        [`pdeopt.constraints.FiniteDifference`][], [`pdeopt.constraints.Spectral`][] (grid
        fields, e.g. an FNO's output) or [`pdeopt.constraints.Autodiff`][] (a coordinate
        model: PINN or DeepONet trunk);
    - `quantities` (class variable): the linear quantities of the field that the residual
        reads, as derivative multi-indices over the grid axes, e.g.
        `{"u": (0, 0), "u_t": (1, 0), "u_xx": (0, 2)}` on `(t, x)`;
    - `interior_residual(q, condition)`: the PDE residual, pointwise in those quantities (it
        may be nonlinear in them);
    - `blocks`: its initial and boundary conditions, a tuple of [`pdeopt.constraints.Boundary`][].

    Everything else is derived: the model's input (`inputs`), the per-basis quantities and
    traces of the hard-constraint layers, the residual blocks of a grid field (`residuals`),
    the names of the residual blocks and so the default row and loss weights (`block_names`).
    Because the quantities are linear in the field, the per-basis quantities of N basis
    fields combine with weights ω into those of u = Σ ω_n b_n; the same `interior_residual`
    serves grid fields and coordinate models.

    Optional hooks:

    - `interior_coefficients(condition)`: fields of the condition that the residual needs
        pointwise (a diffusivity a(x)); merged into `q` wherever it is evaluated.
    - `linear_quantities(u)`: override for quantities that are linear but not derivatives
        (a velocity from a vorticity, fluxes with a boundary value built in). It must stay
        linear: the hard-constraint layers check it and refuse a nonlinear one.
    - `ansatz(fields, condition)`: a solution ansatz built from the model's channels (a
        mollifier that makes the initial condition hold by construction).
    - `features(condition)`: the condition's channels of the model input (default: the
        condition broadcast to the grid).
    """

    grid: eqx.AbstractVar[Grid]
    derivatives: eqx.AbstractVar[AbstractDerivatives]
    quantities: eqx.AbstractClassVar[dict[str, tuple[int, ...]]]

    @abc.abstractmethod
    def interior_residual(
        self, q: dict[str, Float[Array, "*points"]], condition: PyTree[Array]
    ) -> Float[Array, "*points"]:
        """The PDE residual, pointwise in the quantities `q` (and the coefficients)."""

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        """The initial- and boundary-condition blocks (default: none)."""
        return ()

    # ---- derived ------------------------------------------------------------------------

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The grid's shape."""
        return self.grid.shape

    def coordinates(self) -> tuple[Float[np.ndarray, " n"], ...]:
        """The coordinate vector of every grid axis."""
        return tuple(axis.points for axis in self.grid.axes)

    def residual_blocks(self) -> tuple[Boundary, ...]:
        """Every block the constraints fit: `blocks`, plus those `derivatives` adds (the
        periodicity rows of a coordinate model)."""
        return self.derivatives.blocks(self)

    def block_names(self) -> tuple[str, ...]:
        """`"pde"` and the names of the residual blocks, in order: the keys of the weights."""
        names = ["pde"]
        for block in self.residual_blocks():
            if block.name == "pde":
                raise ValueError(f"{type(self).__name__}: a block may not be named 'pde'.")
            if block.name not in names:
                names.append(block.name)
        return tuple(names)

    def inputs(self, condition: PyTree[Array]) -> Float[Array, "*points channels"]:
        """The model's input for one sample: normalised coordinates, then `features`."""
        return self.derivatives.inputs(self, condition)

    def grid_inputs(self, condition: PyTree[Array]) -> Float[Array, "*grid channels"]:
        """Normalised coordinates (each axis's `[lo, lo + input_width]` mapped to [0, 1]) and
        the condition's channels."""
        mesh = self.grid.meshgrid()
        lo = np.array([a.lo for a in self.grid.axes])
        width = np.array([a.input_width for a in self.grid.axes])
        coords = jnp.asarray((mesh - lo) / width)
        features = self.features(condition).astype(coords.dtype)
        return jnp.concatenate([coords, features], axis=-1)

    def features(self, condition: PyTree[Array]) -> Float[Array, "*grid channels"]:
        """The condition's channels of the model input: the condition broadcast to the grid
        (a scalar, a field on the trailing axes such as u0(x), or a field on the grid)."""
        condition = jnp.asarray(condition)
        return jnp.broadcast_to(condition, self.grid.shape)[..., None]

    def linear_quantities(self, u: Float[Array, "*grid"]) -> dict[str, Float[Array, "*grid"]]:
        """The linear quantities of a grid field (default: the `quantities` derivatives)."""
        return self.derivatives.apply(self.grid, u, self.quantities)

    def interior_coefficients(self, condition: PyTree[Array]) -> dict[str, Float[Array, "*grid"]]:
        """Fields of the condition needed pointwise by `interior_residual` (default: none)."""
        del condition
        return {}

    def ansatz(
        self, fields: Float[Array, "*grid n"], condition: PyTree[Array]
    ) -> tuple[Float[Array, "*grid n"], Float[Array, "*grid"]]:
        """The solution ansatz u = offset + Σ_k ω_k f_k built from the model's output fields.

        Returns the fields f and the offset. The default is the model's output unchanged
        and no offset.
        """
        del condition
        return fields, jnp.zeros(fields.shape[:-1], fields.dtype)

    def residuals(
        self, u: Float[Array, "*grid"], condition: PyTree[Array]
    ) -> dict[str, Float[Array, "..."]]:
        """Every residual block of a grid field u: `{"pde": ..., block name: rows}`.

        Blocks that share a name are concatenated (flattened). Needs grid `derivatives`.
        """
        q = merge_coefficients(self.linear_quantities(u), self.interior_coefficients(condition))
        out = {"pde": self.interior_residual(q, condition)}
        traces = self.derivatives.traces(self, u)
        return out | group_blocks(self, condition, traces)


def check_parameters(
    owner: eqx.Module, *, sizes: dict[str, int] | None = None, positive: tuple[str, ...] = ()
) -> None:
    """Raise a `ValueError` naming `problem.<name>` for a grid size below its minimum
    (`sizes`: name -> minimum) or a parameter that is not > 0 (`positive`); for a PDE's
    `__check_init__`."""
    for name, low in (sizes or {}).items():
        value = getattr(owner, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"problem.{name} must be an integer >= {low}, got {value!r}.")
    for name in positive:
        value = getattr(owner, name)
        if not (isinstance(value, (int, float)) and value > 0):
            raise ValueError(f"problem.{name} must be > 0, got {value!r}.")


def group_blocks(pde: AbstractPDE, condition, traces) -> dict[str, Array]:
    """The residual rows of every block from its traces, blocks of one name concatenated."""
    rows: dict[str, list[Array]] = {}
    for block, trace in zip(pde.residual_blocks(), traces):
        x = jnp.asarray(block.coordinates(pde.grid))
        r = block.residual(trace, condition, x)
        if r.shape != trace.shape[1:]:
            raise ValueError(
                f"{type(pde).__name__}: block {block.name!r} residual has shape {r.shape}, "
                f"expected one row per trace point, {trace.shape[1:]}."
            )
        rows.setdefault(block.name, []).append(r.ravel())
    return {name: jnp.concatenate(r) for name, r in rows.items()}


def merge_coefficients(q: dict[str, Array], coefficients: dict[str, Array]) -> dict[str, Array]:
    """`q | coefficients`, refusing a coefficient that has the name of a quantity."""
    clash = set(q) & set(coefficients)
    if clash:
        raise ValueError(
            f"interior_coefficients and the quantities both define {sorted(clash)}; "
            "give the coefficient fields names of their own."
        )
    return q | coefficients
