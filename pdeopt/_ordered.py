"""Sums whose order does not depend on how the work is split over devices."""

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree


def sum_in_order(tree: PyTree[Array]) -> PyTree[Array]:
    """The sum over the leading axis of every leaf, one entry after another in index order:
    the same rounding whichever devices computed the entries."""

    def total(a):
        return jax.lax.scan(lambda acc, x: (acc + x, None), a[0], a[1:])[0]

    return jax.tree.map(total, tree)


def repeat(tree: PyTree, num: int) -> PyTree:
    """Every array leaf of `tree` stacked `num` times along a new leading axis, for a `vmap`
    whose members each differentiate their own copy. The cotangent of the copies is summed
    by `sum_in_order`, so a gradient gathered from devices in pieces has the rounding of one
    computed on one device."""
    inexact, rest = eqx.partition(tree, eqx.is_inexact_array)
    rest = jax.tree.map(lambda a: jnp.broadcast_to(a, (num, *jnp.shape(a))), rest)
    return eqx.combine(_repeat(inexact, num), rest)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _repeat(tree, num: int):
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (num, *a.shape)), tree)


def _repeat_fwd(tree, num):
    return _repeat(tree, num), None


def _repeat_bwd(num, _, cotangent):
    return (sum_in_order(cotangent),)


_repeat.defvjp(_repeat_fwd, _repeat_bwd)


def apply_per_sample(fn: Callable, stacked: PyTree, inputs: PyTree) -> PyTree:
    """`vmap(fn)(stacked, inputs)` for parameters `stacked = repeat(params, n)`, one copy per
    sample: the forward pass applies the first copy to the whole batch, as
    `vmap(fn, in_axes=(None, 0))` would (so its values, and every quantity computed from
    them, round as an ordinary batched call), and the backward pass gives each sample's copy
    its own cotangent, by a vector–Jacobian product per sample (recomputing `fn` once)."""

    @jax.custom_vjp
    def apply(stacked, inputs):
        return jax.vmap(fn, in_axes=(None, 0))(jax.tree.map(lambda a: a[0], stacked), inputs)

    def forward(stacked, inputs):
        return apply(stacked, inputs), (stacked, inputs)

    def backward(residuals, cotangent):
        return jax.vmap(lambda p, x, c: jax.vjp(fn, p, x)[1](c))(*residuals, cotangent)

    apply.defvjp(forward, backward)
    return apply(stacked, inputs)


def at_least_two(fn: Callable) -> Callable:
    """`fn(*batched)`, whose arguments and outputs share a leading axis, never run on an axis
    of size one: a lone entry is computed beside a copy of itself and the copy dropped. XLA
    compiles an axis of size one into other kernels (a matrix–vector product where there
    was a matrix product), which round differently; this keeps a device that holds one
    sample or one expert bitwise equal to one that holds several, at twice its work."""

    def padded(*batched):
        if jax.tree.leaves(batched)[0].shape[0] != 1:
            return fn(*batched)
        pair = lambda a: jnp.concatenate([a, a]) if jnp.ndim(a) else a
        out = fn(*jax.tree.map(pair, batched))
        return jax.tree.map(lambda a: a[:1] if jnp.ndim(a) else a, out)

    return padded
