"""Finite-difference derivatives along one dimension of a grid field, with boundary closures.

All stencil weights are computed in NumPy float64 at trace time (they depend only on the static
`Axis`); at run time an operator is a handful of shifted slices plus small `tensordot`s for the
rows next to each boundary.
"""

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._boundary import AbstractBoundaryCondition
from ._grid import Axis

_ORDERS = (1, 2)
_ACCURACIES = (2, 4)


def fd_weights(
    x0: float, xs: Sequence[float] | Float[np.ndarray, " points"], order: int
) -> Float[np.ndarray, " points"]:
    """Finite-difference weights on arbitrarily spaced points (Fornberg's algorithm).

    Returns `w` such that `Σ_i w[i] f(xs[i]) ≈ f^{(order)}(x0)`, exact for polynomials of degree
    `len(xs) - 1`. Computed in NumPy float64; call it at trace time with static points.

    **Arguments:**

    - `x0`: where the derivative is approximated (need not be one of `xs`).
    - `xs`: the distinct points whose values the stencil combines.
    - `order`: the derivative order, `0 <= order < len(xs)` (0 interpolates).

    **Returns:**

    The weights, a float64 NumPy array of shape `(len(xs),)`.

    ??? cite "References"

        ```bibtex
        @article{fornberg1988generation,
            author={Fornberg, Bengt},
            title={Generation of finite difference formulas on arbitrarily spaced grids},
            journal={Mathematics of Computation},
            volume={51},
            number={184},
            pages={699--706},
            year={1988},
        }
        ```
    """
    xs = np.asarray(xs, dtype=np.float64).reshape(-1)
    x0 = float(x0)
    npts = xs.size
    if not isinstance(order, int | np.integer) or order < 0:
        raise ValueError(f"`fd_weights(order={order!r})`: use a non-negative int order.")
    if npts <= order:
        raise ValueError(
            f"`fd_weights` needs more points than the derivative order: order={order} with "
            f"{npts} points; pass at least {order + 1} points."
        )
    if np.unique(xs).size != npts:
        raise ValueError("`fd_weights` needs distinct points `xs`; got repeated coordinates.")
    # c[j, k]: weight of xs[j] for the k-th derivative, on the points seen so far.
    c = np.zeros((npts, order + 1))
    c[0, 0] = 1.0
    prod_prev = 1.0
    dx_prev = xs[0] - x0
    for i in range(1, npts):
        top = min(i, order)
        prod = 1.0
        dx_i = xs[i] - x0
        for j in range(i):
            diff = xs[i] - xs[j]
            prod *= diff
            if j == i - 1:
                for k in range(top, 0, -1):
                    c[i, k] = prod_prev * (k * c[i - 1, k - 1] - dx_prev * c[i - 1, k]) / prod
                c[i, 0] = -prod_prev * dx_prev * c[i - 1, 0] / prod
            for k in range(top, 0, -1):
                c[j, k] = (dx_i * c[j, k] - k * c[j, k - 1]) / diff
            c[j, 0] = dx_i * c[j, 0] / diff
        prod_prev = prod
        dx_prev = dx_i
    return c[:, order]


def _check_order_accuracy(name: str, order, orders, accuracy) -> None:
    if not isinstance(order, int) or isinstance(order, bool) or order not in orders:
        allowed = " or ".join(f"order={o}" for o in orders)
        raise ValueError(
            f"`{name}(order={order!r})` is not supported; use {allowed} "
            "(apply the operator twice for higher derivatives)."
        )
    if not isinstance(accuracy, int) or isinstance(accuracy, bool) or accuracy not in _ACCURACIES:
        raise ValueError(
            f"`{name}(accuracy={accuracy!r})` is not supported; use accuracy=2 or accuracy=4."
        )


def _to_last(u, dim: int, axis: Axis, name: str):
    u = jnp.asarray(u)
    if not jnp.issubdtype(u.dtype, jnp.inexact):
        u = u.astype(float)
    if not -u.ndim <= dim < u.ndim:
        raise ValueError(f"`{name}(dim={dim})` is out of range for an array with ndim={u.ndim}.")
    dim = dim % u.ndim
    if u.shape[dim] != axis.n:
        raise ValueError(
            f"`{name}`: dimension {dim} of `u` has {u.shape[dim]} points but the axis has "
            f"n={axis.n}; pass the `dim` that the axis describes."
        )
    return jnp.moveaxis(u, dim, -1), dim


def _apply(values, weights):
    """`values[..., m] @ weights.T` for weights of shape `(rows, m)` (or `(m,)`)."""
    weights = jnp.asarray(weights, dtype=values.dtype)
    return jnp.tensordot(values, weights.T, axes=1)


def _boundary_value(u, axis: Axis, side: str, bc: AbstractBoundaryCondition, accuracy: int):
    """Eliminate the boundary value `u_b` from the condition, using `accuracy + 2` interior
    points and the boundary point in a one-sided stencil for `du/dx(x_b)`."""
    q = accuracy + 2
    n, x = axis.n, axis.points
    skip = 1 if axis.centering == "vertex" else 0  # a vertex axis' end node *is* the boundary
    if side == "lo":
        xb, sl = axis.lo, slice(skip, skip + q)
    else:
        xb, sl = axis.hi, slice(n - skip - q, n - skip)
    w = fd_weights(xb, np.concatenate([[xb], x[sl]]), 1)
    interior_term = _apply(u[..., sl], w[1:])
    u_b = bc.boundary_value(float(w[0]), interior_term)
    return jnp.broadcast_to(jnp.asarray(u_b, dtype=u.dtype), u.shape[:-1])


def _min_points(axis: Axis, order: int, accuracy: int, has_bc: bool) -> int:
    if axis.periodic:
        return accuracy + 1
    need = order + accuracy
    if has_bc:
        # The elimination uses accuracy + 2 interior points, which on a vertex axis must not
        # reach the opposite (possibly replaced) end node.
        need = max(need, accuracy + (4 if axis.centering == "vertex" else 2))
    return need


def derivative(
    u: Float[ArrayLike, "..."],
    axis: Axis,
    order: int,
    *,
    dim: int = -1,
    accuracy: int = 2,
    bc: tuple[AbstractBoundaryCondition | None, AbstractBoundaryCondition | None] | None = None,
) -> Float[Array, "..."]:
    """The `order`-th derivative d^order u / dx^order along one dimension of `u`.

    The stencil weights come from [`pdeopt.discretizations.fd_weights`][] (Fornberg's
    algorithm, cited there). All other dimensions of `u` are batch dimensions. The result has
    the design accuracy
    `O(h^accuracy)` at *every* point, boundary rows included:

    - Periodic axis: central circulant stencils.
    - Interior of a non-periodic axis: central stencils; for `order=2` the compact
      `[1, -2, 1]/h²` (accuracy 2) or the 5-point stencil (accuracy 4), never a first
      derivative applied twice.
    - Next to a side without a boundary condition (`bc=None`, or that side `None`): one-sided /
      off-centre stencils over the `order + accuracy` nearest points. This mode is linear in
      `u` (apply it to stacks of basis fields).
    - Next to a side with a boundary condition: a ghost-free closure. The boundary value `u_b` is
      solved from the condition, with `du/dx(x_b)` approximated one-sidedly from `u_b` and
      `accuracy + 2` interior points (`AbstractBoundaryCondition.boundary_value`). The boundary
      point `(x_b, u_b)` then joins the near-boundary stencils. On a vertex-centred axis the
      boundary *is* the end node, whose value in `u` is ignored and replaced by `u_b`; on a
      cell-centred axis it is the face half a cell beyond the first/last point. This mode is
      affine in `u` (linear when the condition's value is zero).

    Derivatives are with respect to the coordinate x, not the outward normal, also inside the
    boundary conditions.

    **Arguments:**

    - `u`: the field(s), with `axis.n` points along dimension `dim`.
    - `axis`: the static axis that dimension `dim` samples.
    - `order`: 1 or 2.
    - `dim`: the array dimension to differentiate along (keyword-only).
    - `accuracy`: the order of accuracy, 2 or 4 (keyword-only).
    - `bc`: `None`, or a pair `(lo, hi)` of `AbstractBoundaryCondition`s or `None`s; must be
        `None` on a periodic axis (keyword-only).

    **Returns:**

    An array of the same shape as `u`.
    """
    _check_order_accuracy("derivative", order, _ORDERS, accuracy)
    if not isinstance(axis, Axis):
        raise ValueError(f"`derivative(axis=...)` must be an `Axis`, got {type(axis).__name__}.")
    if bc is None:
        bc = (None, None)
    if not isinstance(bc, tuple | list) or len(bc) != 2:
        raise ValueError(
            "`derivative(bc=...)` must be `None` or a pair `(lo, hi)`, e.g. "
            "`bc=(Dirichlet(0.0), Neumann(0.0))` or `bc=(Dirichlet(0.0), None)`."
        )
    for cond in bc:
        if cond is not None and not isinstance(cond, AbstractBoundaryCondition):
            raise ValueError(
                "`derivative(bc=...)` entries must be `AbstractBoundaryCondition`s or `None`, "
                f"got {type(cond).__name__}."
            )
    has_bc = any(cond is not None for cond in bc)
    if axis.periodic and has_bc:
        raise ValueError(
            "`derivative(bc=...)` on a periodic axis: a periodic axis has no boundary; pass "
            "`bc=None` or use `Axis(..., periodic=False)`."
        )
    need = _min_points(axis, order, accuracy, has_bc)
    if axis.n < need:
        kind = "periodic" if axis.periodic else f"{axis.centering}-centred"
        extra = " with boundary conditions" if has_bc else ""
        raise ValueError(
            f"`derivative(order={order}, accuracy={accuracy})`{extra} on a {kind} axis needs at "
            f"least {need} points, but the axis has n={axis.n}; use `Axis(n>={need}, ...)`"
            + (" or accuracy=2." if accuracy == 4 else ".")
        )
    u, dim = _to_last(u, dim, axis, "derivative")

    n, h, x = axis.n, axis.spacing, axis.points
    half = accuracy // 2
    central = fd_weights(0.0, h * np.arange(-half, half + 1), order)

    if axis.periodic:
        out = sum(
            float(w) * jnp.roll(u, -shift, axis=-1)
            for shift, w in zip(range(-half, half + 1), central, strict=True)
            if w != 0.0
        )
        return jnp.moveaxis(out, -1, dim)

    bc_lo, bc_hi = bc
    u_lo = None if bc_lo is None else _boundary_value(u, axis, "lo", bc_lo, accuracy)
    u_hi = None if bc_hi is None else _boundary_value(u, axis, "hi", bc_hi, accuracy)
    # Boundary points that are not grid points: the faces of a cell-centred axis.
    face_lo = face_hi = None
    if axis.centering == "vertex":
        if u_lo is not None:
            u = u.at[..., 0].set(u_lo)
        if u_hi is not None:
            u = u.at[..., -1].set(u_hi)
    else:
        face_lo, face_hi = u_lo, u_hi

    width = order + accuracy  # points per near-boundary stencil
    interior = sum(
        float(w) * u[..., k : n - 2 * half + k] for k, w in enumerate(central) if w != 0.0
    )

    if face_lo is None:
        coords, values = x[:width], u[..., :width]
    else:
        coords = np.concatenate([[axis.lo], x[: width - 1]])
        values = jnp.concatenate([face_lo[..., None], u[..., : width - 1]], axis=-1)
    rows_lo = _apply(values, np.stack([fd_weights(t, coords, order) for t in x[:half]]))

    if face_hi is None:
        coords, values = x[n - width :], u[..., n - width :]
    else:
        coords = np.concatenate([x[n - width + 1 :], [axis.hi]])
        values = jnp.concatenate([u[..., n - width + 1 :], face_hi[..., None]], axis=-1)
    rows_hi = _apply(values, np.stack([fd_weights(t, coords, order) for t in x[n - half :]]))

    out = jnp.concatenate([rows_lo, interior, rows_hi], axis=-1)
    return jnp.moveaxis(out, -1, dim)


def boundary_trace(
    u: Float[ArrayLike, "..."],
    axis: Axis,
    side: str,
    *,
    dim: int = -1,
    order: int = 0,
    accuracy: int = 2,
) -> Float[Array, "..."]:
    """The value or a derivative of `u` at one boundary of a non-periodic axis.

    Extrapolates with a one-sided stencil over the `order + accuracy + 1` points nearest the
    boundary, so the error is `O(h^(accuracy + 1))`. On a vertex-centred axis the value
    (`order=0`) is just the end value. Linear in `u`; use it to build boundary-condition rows
    (e.g. `Robin.residual(boundary_trace(u, axis, "lo"), boundary_trace(u, axis, "lo",
    order=1))`).

    **Arguments:**

    - `u`: the field(s), with `axis.n` points along dimension `dim`.
    - `axis`: the static, non-periodic axis that dimension `dim` samples.
    - `side`: `"lo"` or `"hi"`.
    - `dim`: the array dimension the axis describes (keyword-only).
    - `order`: 0 (value), 1 (d/dx, not the outward normal derivative) or 2 (keyword-only).
    - `accuracy`: 2 or 4 (keyword-only).

    **Returns:**

    `u` at the boundary, with dimension `dim` removed.
    """
    _check_order_accuracy("boundary_trace", order, (0, 1, 2), accuracy)
    if side not in ("lo", "hi"):
        raise ValueError(f"`boundary_trace(side={side!r})`: use side='lo' or side='hi'.")
    if axis.periodic:
        raise ValueError(
            "`boundary_trace` on a periodic axis: a periodic axis has no boundary; use a "
            "non-periodic `Axis`."
        )
    width = order + accuracy + 1
    if axis.n < width:
        raise ValueError(
            f"`boundary_trace(order={order}, accuracy={accuracy})` needs at least {width} points, "
            f"but the axis has n={axis.n}; use `Axis(n>={width}, ...)`"
            + (" or accuracy=2." if accuracy == 4 else ".")
        )
    u, _ = _to_last(u, dim, axis, "boundary_trace")
    n, x = axis.n, axis.points
    if axis.centering == "vertex" and order == 0:
        return u[..., 0] if side == "lo" else u[..., -1]
    if side == "lo":
        xb, sl = axis.lo, slice(0, width)
    else:
        xb, sl = axis.hi, slice(n - width, n)
    return _apply(u[..., sl], fd_weights(xb, x[sl], order))
