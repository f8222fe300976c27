"""Tensor-product grids: one `Axis` per dimension, combined into a `Grid`."""

import equinox as eqx
import numpy as np
from jaxtyping import Float

_CENTERINGS = ("vertex", "cell")


class Axis(eqx.Module):
    """One uniformly spaced coordinate axis on the interval `[lo, hi]`.

    Everything about an axis is static (Python numbers), so stencil weights built from it are
    computed once in NumPy at trace time.

    - `centering="vertex"`, non-periodic: the `n` points `lo + i h` with `h = (hi - lo)/(n - 1)`;
      the first and last points lie on the boundaries.
    - `centering="cell"`, non-periodic: the `n` cell centres `lo + (i + 1/2) h` with
      `h = (hi - lo)/n`; the boundaries are faces half a cell outside the first and last points.
    - `periodic=True`: the period is `hi - lo` and `h = (hi - lo)/n`; the points are `lo + i h`
      (vertex) or `lo + (i + 1/2) h` (cell), so `hi` itself is not a grid point.

    **Arguments:**

    - `n`: the number of grid points, at least 2.
    - `lo`, `hi`: the ends of the interval, `lo < hi`.
    - `centering`: `"vertex"` or `"cell"`, see above.
    - `periodic`: whether the axis wraps around.
    - `input_extent`: the length that a model's normalised coordinate maps to 1, measured
        from `lo` (default `hi - lo`). A problem trained on the first part of a longer
        interval (temporal extrapolation) sets it to the whole interval's length, so that a
        time has one coordinate on the short and the long grid.
    """

    n: int = eqx.field(static=True)
    lo: float = eqx.field(static=True, converter=float)
    hi: float = eqx.field(static=True, converter=float)
    centering: str = eqx.field(static=True, default="vertex")
    periodic: bool = eqx.field(static=True, default=False)
    input_extent: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if not isinstance(self.n, int | np.integer) or isinstance(self.n, bool):
            raise ValueError(f"`Axis(n={self.n!r})`: `n` must be a Python int, e.g. `n=64`.")
        if self.n < 2:
            raise ValueError(f"`Axis(n={self.n})` has too few points; use `n >= 2`.")
        if not self.hi > self.lo:
            raise ValueError(
                f"`Axis(lo={self.lo}, hi={self.hi})` is empty; `hi` must be greater than `lo`."
            )
        if self.centering not in _CENTERINGS:
            raise ValueError(
                f"`Axis(centering={self.centering!r})` is not supported; use `centering='vertex'` "
                "or `centering='cell'`."
            )
        if self.input_extent is not None and not self.input_extent > 0:
            raise ValueError(f"`Axis(input_extent={self.input_extent})` must be positive.")

    @property
    def input_width(self) -> float:
        """The length a model's normalised coordinate maps to 1 (see `input_extent`)."""
        return self.hi - self.lo if self.input_extent is None else float(self.input_extent)

    @property
    def spacing(self) -> float:
        """The distance `h` between neighbouring points."""
        if self.periodic or self.centering == "cell":
            return (self.hi - self.lo) / self.n
        return (self.hi - self.lo) / (self.n - 1)

    @property
    def points(self) -> Float[np.ndarray, " n"]:
        """The coordinates of the grid points, as a float64 NumPy array of shape `(n,)`."""
        offset = 0.5 if self.centering == "cell" else 0.0
        return self.lo + (np.arange(self.n, dtype=np.float64) + offset) * self.spacing

    @property
    def boundaries(self) -> tuple[float, float]:
        """The boundary locations `(lo, hi)`."""
        return self.lo, self.hi


class Grid(eqx.Module):
    """A tensor-product grid: one `Axis` per array dimension, in order.

    **Arguments:**

    - `axes`: the axes, e.g. `(Axis(n=65, lo=0.0, hi=1.0), Axis(n=64, lo=0.0, hi=1.0,
      periodic=True))` for a (t, x) grid.
    """

    axes: tuple[Axis, ...] = eqx.field(converter=tuple)

    def __check_init__(self):
        if len(self.axes) == 0:
            raise ValueError("`Grid(axes=())` is empty; pass at least one `Axis`.")
        for i, axis in enumerate(self.axes):
            if not isinstance(axis, Axis):
                raise ValueError(
                    f"`Grid(axes=...)`: entry {i} is a {type(axis).__name__}, not an `Axis`."
                )

    @property
    def shape(self) -> tuple[int, ...]:
        """The number of points along each axis."""
        return tuple(axis.n for axis in self.axes)

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.axes)

    def meshgrid(self) -> Float[np.ndarray, "*shape ndim"]:
        """The coordinates of every grid point.

        **Returns:**

        A float64 NumPy array of shape `(*shape, ndim)` ("ij" indexing): entry `[i, j, ..., k]`
        holds the coordinates of the point with index `(i, j, ...)` along each axis.
        """
        mesh = np.meshgrid(*(axis.points for axis in self.axes), indexing="ij")
        return np.stack(mesh, axis=-1)
