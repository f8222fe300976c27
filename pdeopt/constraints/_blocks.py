"""Initial- and boundary-condition blocks: a face of the grid, its traces and residual rows."""

from collections.abc import Callable

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float, Int, PyTree

from ..discretizations import Grid


class Boundary(eqx.Module):
    """One block of initial- or boundary-condition rows: a face of the grid and its residual.

    The face is the side `side` (`"lo"` or `"hi"`) of grid axis `axis`; the rows are the
    face's points (the grid without `axis`), optionally cut by `rows`. The block needs the
    traces of the field on the face, its value and normal derivatives of the given
    `orders` (with respect to the coordinate along `axis`), and turns them into residual rows:

    `residual(trace, condition, x)`, with `trace` of shape `(len(orders), *rows)`, the
    sample's condition and the coordinates `x` of every row, `(*rows, ndim)` (the face's
    coordinate along `axis`, the grid's elsewhere). It must be linear-affine in `trace` for
    the hard-constraint solve to stay a least-squares problem in the basis weights... but it
    may be any function; the layers only ask it to be differentiable.

    An initial condition is the face `axis=0, side="lo"` of a time-first grid:
    `Boundary("ic", 0, "lo", lambda u, u0, x: u[0] - u0)`.

    How the traces are taken is the PDE's `derivatives`' business: a one-sided stencil on a
    grid (exact for the value on a vertex-centred axis, extrapolated to the face of a
    cell-centred one), or autodiff of a coordinate model evaluated on the face.

    Several blocks may share a `name`: they are one residual block for the weights (one row
    weight, one loss term), e.g. the left and right boundary of a 1-D problem, `"bc"`.

    **Arguments:**

    - `name`: the block's name in `row_weights`, `loss_weights` and the report.
    - `axis`: the grid axis the face is normal to.
    - `side`: `"lo"` or `"hi"`; `"wrap"` (made by [`pdeopt.constraints.Autodiff`][] on a
        periodic axis) is the jump between the two: trace(lo) − trace(hi), at the lo face.
    - `residual`: the residual rows, as above.
    - `orders`: the normal-derivative orders of the traces, e.g. `(0,)` (Dirichlet) or
        `(0, 1)` (Robin).
    - `rows`: slices of the face's axes (the grid's axes without `axis`, in order) that
        select the rows, e.g. `(slice(1, None),)` to skip t = 0 on the face x = 0 of a
        `(t, x)` grid. Default: every point of the face.
    """

    name: str = eqx.field(static=True)
    axis: int = eqx.field(static=True)
    side: str = eqx.field(static=True)
    residual: Callable[[Array, PyTree[Array], Array], Array]
    orders: tuple[int, ...] = eqx.field(static=True, default=(0,), converter=tuple)
    rows: tuple[slice, ...] = eqx.field(default=(), converter=tuple)

    def __check_init__(self):
        if self.side not in ("lo", "hi", "wrap"):
            raise ValueError(
                f"Boundary {self.name!r}: side must be 'lo' or 'hi', got {self.side!r}."
            )
        if not self.orders or any(not isinstance(k, int) or k < 0 for k in self.orders):
            raise ValueError(
                f"Boundary {self.name!r}: orders must be non-negative ints, e.g. (0,) or (0, 1); "
                f"got {self.orders!r}."
            )

    def _check_axis(self, grid: Grid) -> None:
        if not 0 <= self.axis < grid.ndim:
            raise ValueError(
                f"Boundary {self.name!r}: axis {self.axis} does not exist on a {grid.ndim}-D grid."
            )

    def locations(self, grid: Grid) -> Int[np.ndarray, "*rows ndim"]:
        """The grid multi-index nearest to every row (the first or last point along `axis`)."""
        self._check_axis(grid)
        index = np.indices(grid.shape)
        end = grid.shape[self.axis] - 1 if self.side == "hi" else 0
        face = np.take(np.moveaxis(index, 0, -1), end, axis=self.axis)
        return face[self.rows]

    def coordinates(self, grid: Grid) -> Float[np.ndarray, "*rows ndim"]:
        """The coordinates of every row: the face along `axis`, the grid points elsewhere."""
        self._check_axis(grid)
        axis = grid.axes[self.axis]
        points = np.take(grid.meshgrid(), 0, axis=self.axis)
        points[..., self.axis] = axis.hi if self.side == "hi" else axis.lo
        return points[self.rows]


def initial_condition(residual: Callable | None = None, name: str = "ic") -> Boundary:
    """The initial-condition block of a time-first grid: the face t = t_0.

    **Arguments:**

    - `residual`: `(trace, condition, x) -> rows`; the default `u(0) − condition` fits a
        condition that is the initial field itself.
    - `name`: the block's name.
    """
    if residual is None:
        residual = _initial_value
    return Boundary(name, 0, "lo", residual)


def _initial_value(trace, condition, x):
    del x
    return trace[0] - condition
