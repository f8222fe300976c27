"""Derivatives of coordinate models with respect to their input coordinates, by forward-mode
autodiff, for PINN residuals at arbitrary point sets."""

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float


def _directions(name: str, order: Sequence[int], dim: int) -> tuple[int, ...]:
    """The multi-index `order` as the sorted coordinate indices to differentiate along."""
    order = tuple(order)
    if len(order) != dim or any(
        not isinstance(k, int) or isinstance(k, bool) or k < 0 for k in order
    ):
        raise ValueError(
            f"`orders['{name}']={order}` must be {dim} non-negative integers, one derivative "
            f"order per input coordinate (e.g. {(0,) * (dim - 1) + (2,)} for the second "
            "derivative along the last coordinate)."
        )
    return tuple(i for i, k in enumerate(order) for _ in range(k))


def _chain(fn: Callable, tangents: Array, dirs: tuple[int, ...]) -> Callable:
    """`y -> [fn(y), D_{d1} fn(y), D_{d1 d2} fn(y), ..., D_{d1...dk} fn(y)]` for
    `dirs = (d1, ..., dk)`, by `k` nested `jax.jvp`s. Each level's primal output carries every
    lower-order derivative along the chain, so they cost nothing extra."""
    if not dirs:
        return lambda y: [fn(y)]
    inner = _chain(fn, tangents, dirs[:-1])

    def outer(y):
        primal, tangent = jax.jvp(inner, (y,), (tangents[dirs[-1]],))
        return primal + [tangent[-1]]

    return outer


def derivatives(
    fn: Callable[[Float[Array, " dim"]], Float[Array, "*out"]],
    x: Float[ArrayLike, "*points dim"],
    orders: Mapping[str, Sequence[int]],
) -> dict[str, Float[Array, "..."]]:
    """Partial derivatives of a pointwise function at every point of a point set.

    For each requested multi-index α (one derivative order per input coordinate) this
    returns D^α fn at every point, by nested forward-mode `jax.jvp` along coordinate unit
    vectors, `vmap`ped over the points. `fn` may return any shape, e.g. the N basis
    functions of a DeepONet trunk or the N outputs of a PINN, so all derivatives of all outputs
    come from one call: forward mode costs a small multiple of one evaluation of `fn` per
    derivative chain, whatever the number of outputs (reverse mode would need one pass per
    output).

    Requests are grouped into chains: the multi-indices `(0, 0)`, `(0, 1)` and `(0, 2)` (u,
    u_x, u_xx on `(t, x)`) share one chain of two nested jvps whose primal outputs are the
    lower orders; a separate chain gives `(1, 0)` (u_t). Common sub-computations of
    different chains (the value of `fn` in each) are merged by XLA under `jit`.

    **Arguments:**

    - `fn`: a function of one point `(dim,)`, e.g. `model` of a
        [`pdeopt.models.MLP`][] or `lambda y: deeponet.trunk_basis(y)`.
    - `x`: the points, `(*points, dim)`.
    - `orders`: name -> multi-index, e.g. `{"u": (0, 0), "u_t": (1, 0), "u_x": (0, 1),
        "u_xx": (0, 2)}` for points `(t, x)`.

    **Returns:**

    A dict with the keys of `orders`; each value has shape `(*points, *out)` where `out` is
    the output shape of `fn`.
    """
    x = jnp.asarray(x)
    if x.ndim == 0:
        raise ValueError("`x` must have shape (*points, dim) with the coordinates last.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    dim = x.shape[-1]
    wanted = {name: _directions(name, order, dim) for name, order in orders.items()}
    # Chains: the requested direction tuples that are not a prefix of another request.
    chains = sorted(
        {
            d
            for d in wanted.values()
            if not any(len(e) > len(d) and e[: len(d)] == d for e in wanted.values())
        }
    )
    tangents = jnp.eye(dim, dtype=x.dtype)

    def point(y):
        found = {}
        for dirs in chains:
            for k, value in enumerate(_chain(fn, tangents, dirs)(y)):
                found.setdefault(dirs[:k], value)
        return {name: found[d] for name, d in wanted.items()}

    points = x.shape[:-1]
    out = jax.vmap(point)(x.reshape(-1, dim))
    return {name: v.reshape(*points, *v.shape[1:]) for name, v in out.items()}
