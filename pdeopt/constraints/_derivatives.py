"""Where a PDE's linear quantities come from: grid operators, or autodiff of a coordinate model."""

import abc
import math
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PyTree

from ..discretizations import Axis, Grid, boundary_trace, derivative, spectral_derivative
from ._blocks import Boundary

# `pde` arguments are `AbstractPDE`s; annotated as `eqx.Module` to keep the import acyclic.
_PDE = eqx.Module


class BasisQuantities(eqx.Module):
    """The linear quantities of one sample's basis, one column per basis field.

    The last column is the ansatz offset (its weight is fixed at 1), so a field with weights
    ω is `fields @ [ω, 1]`, and likewise every quantity and trace.

    - `fields`: the basis fields on the grid, `(*grid, N + 1)`.
    - `interior`: `{name: (*grid, N + 1)}`, the PDE's `quantities` of every column.
    - `traces`: one `(orders, *rows, N + 1)` array per residual block of the PDE.
    """

    fields: Float[Array, "*grid n1"]
    interior: dict[str, Float[Array, "*grid n1"]]
    traces: tuple[Float[Array, "..."], ...]

    @property
    def num_basis(self) -> int:
        return self.fields.shape[-1] - 1


class AbstractDerivatives(eqx.Module):
    """The source of a PDE's per-basis linear quantities: the injected half of a PDE.

    A PDE names the derivatives its residual needs (`AbstractPDE.quantities`); an instance
    of this class says how they are obtained from a model's output, and so what the model's
    input is (`inputs`).
    """

    @abc.abstractmethod
    def inputs(self, pde: _PDE, condition: PyTree[Array]) -> Float[Array, "*points channels"]:
        """The model's input for one sample."""

    @abc.abstractmethod
    def basis(
        self, pde: _PDE, output: Float[Array, "*points channels"], condition: PyTree[Array]
    ) -> BasisQuantities:
        """The per-basis quantities and traces of one sample's model output."""

    @abc.abstractmethod
    def apply(
        self, grid: Grid, u: Float[Array, "*grid"], orders: Mapping[str, tuple[int, ...]]
    ) -> dict[str, Float[Array, "*grid"]]:
        """The derivatives `orders` (name -> multi-index) of a grid field."""

    @abc.abstractmethod
    def traces(self, pde: _PDE, u: Float[Array, "*grid"]) -> tuple[Float[Array, "..."], ...]:
        """The traces of a grid field on every residual block, `(orders, *rows)` each."""

    def blocks(self, pde: _PDE) -> tuple[Boundary, ...]:
        """The residual blocks: the PDE's own (sources may add rows, see `Autodiff`)."""
        return tuple(pde.blocks)

    def model_options(self, pde: _PDE) -> dict:
        """Keyword arguments the model factory needs for this source (default: none)."""
        del pde
        return {}


def _overrides(pde: _PDE, method: str) -> bool:
    """Whether the PDE's class overrides an `AbstractPDE` hook."""
    return not getattr(type(pde), method).__qualname__.startswith("AbstractPDE.")


def _check_orders(grid: Grid, orders: Mapping[str, tuple[int, ...]]) -> None:
    for name, alpha in orders.items():
        if len(alpha) != grid.ndim or any(not isinstance(k, int) or k < 0 for k in alpha):
            raise ValueError(
                f"quantity {name!r}: {tuple(alpha)} is not a multi-index of {grid.ndim} "
                f"non-negative derivative orders, one per grid axis (e.g. {(0,) * grid.ndim})."
            )


def check_linear(pde: _PDE, dtype) -> None:
    """Raise if the PDE's `linear_quantities` is not linear in the field (trace time only)."""
    if not _overrides(pde, "linear_quantities"):
        return
    example = jax.ShapeDtypeStruct(pde.grid.shape, dtype)
    jax.eval_shape(pde.linear_quantities, example)  # Its own errors surface as they are.
    transpose = lambda u: jax.linear_transpose(pde.linear_quantities, u)
    try:
        jax.eval_shape(lambda u: transpose(u)(pde.linear_quantities(u)), example)
    except Exception as error:  # noqa: BLE001 - a function that runs but cannot be transposed.
        raise ValueError(
            f"{type(pde).__name__}.linear_quantities is not linear in the field ({error}). "
            "The hard-constraint layers combine per-basis quantities with weights, which is "
            "exact only for linear quantities: return linear ones (u, u_x, ...) and form the "
            "nonlinear terms (u·u_x) in interior_residual."
        ) from None


class AbstractGridDerivatives(AbstractDerivatives):
    """Quantities of grid fields by linear operators on the PDE's grid (an FNO's output).

    The model emits its channels on the grid, `pde.grid_inputs(condition)` is its input,
    `pde.ansatz` turns the channels into basis fields and an offset, and every quantity is
    the PDE's `linear_quantities` of each field. Traces on a block's face are one-sided
    stencils: the end value on a vertex-centred axis, extrapolated to the face of a
    cell-centred one (`pdeopt.discretizations.boundary_trace`).
    """

    accuracy: eqx.AbstractVar[int]

    @abc.abstractmethod
    def derivative(self, u: Array, axis: Axis, order: int, dim: int) -> Array:
        """The `order`-th derivative of `u` along array dimension `dim`, sampled by `axis`."""

    def inputs(self, pde, condition):
        return pde.grid_inputs(condition)

    def apply(self, grid, u, orders):
        _check_orders(grid, orders)
        out = {}
        for name, alpha in orders.items():
            v = u
            for dim, k in enumerate(alpha):
                if k:
                    v = self.derivative(v, grid.axes[dim], k, dim)
            out[name] = v
        return out

    def traces(self, pde, u):
        out = []
        for block in self.blocks(pde):
            axis = pde.grid.axes[block.axis]
            if axis.periodic:
                raise ValueError(
                    f"{type(pde).__name__}: block {block.name!r} lies on the periodic axis "
                    f"{block.axis}, which has no boundary; drop the block (periodicity is "
                    "built into the grid)."
                )
            trace = jnp.stack(
                [
                    boundary_trace(
                        u, axis, block.side, dim=block.axis, order=k, accuracy=self.accuracy
                    )
                    for k in block.orders
                ]
            )
            out.append(trace[(slice(None), *block.rows)])
        return tuple(out)

    def basis(self, pde, output, condition):
        if output.shape[:-1] != pde.grid.shape:
            raise ValueError(
                f"{type(pde).__name__} expects model output on its grid, shape "
                f"{(*pde.grid.shape, 'channels')}; got {output.shape}."
            )
        check_linear(pde, output.dtype)
        fields, offset = pde.ansatz(output, condition)
        columns = jnp.concatenate([fields, offset[..., None]], axis=-1)
        per_field = lambda u: (pde.linear_quantities(u), self.traces(pde, u))
        interior, traces = jax.vmap(per_field, in_axes=-1, out_axes=-1)(columns)
        return BasisQuantities(columns, interior, traces)


def _check_accuracy(accuracy) -> None:
    if accuracy not in (2, 4):
        raise ValueError(f"accuracy must be 2 or 4, got {accuracy!r}.")


def _fd(u: Array, axis: Axis, order: int, dim: int, accuracy: int) -> Array:
    """Finite-difference derivative of any order: orders above 2 compose 2nd and 1st ones."""
    while order > 2:
        u = derivative(u, axis, 2, dim=dim, accuracy=accuracy)
        order -= 2
    return derivative(u, axis, order, dim=dim, accuracy=accuracy)


class FiniteDifference(AbstractGridDerivatives):
    """Finite differences on every axis: central in the interior and on periodic axes,
    one-sided next to a boundary, of order of accuracy `accuracy` (2 or 4). Orders above 2
    compose second and first derivatives (so lose accuracy near boundaries).

    **Arguments:**

    - `accuracy`: 2 or 4.
    """

    accuracy: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        _check_accuracy(self.accuracy)

    def derivative(self, u, axis, order, dim):
        return _fd(u, axis, order, dim, self.accuracy)


class Spectral(AbstractGridDerivatives):
    """Fourier pseudo-spectral derivatives on periodic axes, finite differences of order of
    accuracy `accuracy` on the others (time).

    **Arguments:**

    - `accuracy`: 2 or 4, for the non-periodic axes and the boundary traces.
    """

    accuracy: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        _check_accuracy(self.accuracy)

    def derivative(self, u, axis, order, dim):
        if axis.periodic:
            return spectral_derivative(u, axis, order, dim=dim)
        return _fd(u, axis, order, dim, self.accuracy)


def _unit(ndim: int, axis: int, k: int) -> tuple[int, ...]:
    return tuple(k if d == axis else 0 for d in range(ndim))


def _wrap_residual(trace, condition, x):
    del condition, x
    return trace[0]


class Autodiff(AbstractDerivatives):
    """Quantities of a coordinate model by automatic differentiation (PINN, DeepONet trunk).

    The model is a pointwise network wrapped in [`pdeopt.models.AutodiffBasis`][]: it is
    evaluated at the grid points and at the points of every block's face, and emits the
    basis functions and their coordinate derivatives there. `model_options(pde)` gives the
    wrapper's `orders` and `coordinate_channels`, so the derivatives match the PDE's
    `quantities` and blocks. No stencil is involved: traces are exact on the faces (x = 0
    and x = 1 of a cell-centred grid, say).

    The model's input is the coordinates, normalised to [0, 1] per axis, and the derivatives
    are rescaled to the PDE's coordinates. The condition is not a pointwise input: a field
    such as u0(x) given at x would vary with x while the autodiff derivative held it fixed,
    so every derivative would be wrong. By default per-sample information enters only through
    the weights the hard-constraint layer solves for. With `condition_input=True` the whole
    condition, flattened (for Burgers: u0 at every grid x), follows the coordinates at every
    point: it is the same at all points of a sample, so holding it fixed is exact, and the
    basis becomes a function of the sample (a DeepONet's branch reads it as its sensors; an
    MLP reads it beside the coordinates). A soft-constrained model then is an operator
    network that can tell samples apart.

    A periodic axis has no rows on a grid, but a coordinate model is not periodic by
    construction: `blocks` adds the rows u(lo) − u(hi) and ∂u(lo) − ∂u(hi) on each periodic
    axis, named `"periodic"`. `model_options` also gives each axis's period in the model's
    coordinates, so that `AutodiffBasis(harmonics=K)` can make the model periodic by
    construction (the rows then vanish identically).

    Grid-field operations (`apply`, `traces`, `AbstractPDE.residuals`) are not available:
    a grid field carries no derivatives.

    **Arguments:**

    - `condition_input`: append the flattened condition to every point's input.
    """

    condition_input: bool = eqx.field(static=True, default=False)

    def blocks(self, pde):
        extra = []
        for d, axis in enumerate(pde.grid.axes):
            if axis.periodic:
                for k in (0, 1):
                    extra.append(Boundary("periodic", d, "wrap", _wrap_residual, orders=(k,)))
        return tuple(pde.blocks) + tuple(extra)

    def _refuse(self, what: str):
        raise TypeError(
            f"{what} needs derivatives of a grid field; with Autodiff the quantities come "
            "from the model's own derivatives. Use the hard or soft constraint layers (they "
            "read `basis`), or a grid source (FiniteDifference, Spectral) for grid fields."
        )

    def apply(self, grid, u, orders):
        self._refuse("apply")

    def traces(self, pde, u):
        self._refuse("traces")

    def _point_sets(self, pde, blocks) -> list[tuple[int, np.ndarray]]:
        """Per block face (a wrap block has two, lo then hi): (block index, coordinates of
        its rows)."""
        sets = []
        for i, block in enumerate(blocks):
            sides = ("lo", "hi") if block.side == "wrap" else (block.side,)
            for side in sides:
                face = Boundary(
                    block.name, block.axis, side, block.residual, block.orders, block.rows
                )
                sets.append((i, face.coordinates(pde.grid)))
        return sets

    def orders(self, pde) -> tuple[tuple[int, ...], ...]:
        """The derivative multi-indices the model must emit, value first."""
        ndim = pde.grid.ndim
        _check_orders(pde.grid, pde.quantities)
        wanted = {(0,) * ndim, *map(tuple, pde.quantities.values())}
        for block in self.blocks(pde):
            wanted |= {_unit(ndim, block.axis, k) for k in block.orders}
        return tuple(sorted(wanted, key=lambda a: (sum(a), a)))

    def model_options(self, pde):
        periods = tuple(
            (a.hi - a.lo) / a.input_width if a.periodic else None for a in pde.grid.axes
        )
        return {
            "orders": self.orders(pde),
            "coordinate_channels": pde.grid.ndim,
            "periods": periods,
        }

    def inputs(self, pde, condition):
        for hook in ("linear_quantities", "ansatz"):
            if _overrides(pde, hook):
                raise ValueError(
                    f"{type(pde).__name__} overrides `{hook}`, which works on grid fields; "
                    "Autodiff derivatives cannot provide it. Use a grid source "
                    "(FiniteDifference or Spectral) for this PDE."
                )
        grid = pde.grid
        lo = np.array([a.lo for a in grid.axes])
        width = np.array([a.input_width for a in grid.axes])
        points = [grid.meshgrid().reshape(-1, grid.ndim)]
        points += [c.reshape(-1, grid.ndim) for _, c in self._point_sets(pde, self.blocks(pde))]
        coordinates = jnp.asarray((np.concatenate(points) - lo) / width)
        if not self.condition_input:
            return coordinates
        flat = jnp.concatenate([jnp.ravel(c) for c in jax.tree.leaves(condition)])
        flat = jnp.broadcast_to(flat.astype(coordinates.dtype), (len(coordinates), flat.size))
        return jnp.concatenate([coordinates, flat], axis=-1)

    def basis(self, pde, output, condition):
        del condition
        grid, orders, blocks = pde.grid, self.orders(pde), self.blocks(pde)
        sets = self._point_sets(pde, blocks)
        num_points = math.prod(grid.shape) + sum(c[..., 0].size for _, c in sets)
        q = len(orders)
        if output.ndim != 2 or output.shape[0] != num_points or output.shape[1] % q:
            raise ValueError(
                f"{type(pde).__name__} with Autodiff expects model output of shape "
                f"({num_points}, {q} * N): N basis functions and their derivatives {orders} "
                f"at the points of `inputs`; got {output.shape}. Wrap the basis network in "
                "pdeopt.models.AutodiffBasis with **pde.derivatives.model_options(pde)."
            )
        widths = np.array([a.input_width for a in grid.axes])
        jets = output.reshape(num_points, q, -1)
        jets = jets * jnp.asarray([np.prod(widths ** -np.array(a)) for a in orders])[:, None]
        jets = jnp.concatenate([jets, jnp.zeros((*jets.shape[:-1], 1), jets.dtype)], axis=-1)
        column = {a: k for k, a in enumerate(orders)}
        size = math.prod(grid.shape)
        on_grid = jets[:size].reshape(*grid.shape, q, -1)
        interior = {name: on_grid[..., column[tuple(a)], :] for name, a in pde.quantities.items()}
        fields = on_grid[..., column[(0,) * grid.ndim], :]
        start, faces = size, [[] for _ in blocks]
        for i, coords in sets:
            count = coords[..., 0].size
            rows = jets[start : start + count].reshape(*coords.shape[:-1], q, -1)
            start += count
            axis, ks = blocks[i].axis, blocks[i].orders
            faces[i].append(
                jnp.stack([rows[..., column[_unit(grid.ndim, axis, k)], :] for k in ks])
            )
        traces = tuple(
            found[0] - found[1] if block.side == "wrap" else found[0]
            for block, found in zip(blocks, faces)
        )
        return BasisQuantities(fields, interior, traces)
