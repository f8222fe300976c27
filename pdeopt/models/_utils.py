"""Small helpers for models."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PyTree


def parameter_count(model: PyTree) -> int:
    """Number of real trainable parameters in a model.

    **Arguments:**

    - `model`: any pytree, e.g. an `eqx.Module`; every floating or complex array leaf counts.

    **Returns:**

    The total number of real scalars: a complex entry counts as 2, integer and boolean arrays
    and non-array leaves count as 0.
    """
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    return sum(x.size * (2 if jnp.issubdtype(x.dtype, jnp.complexfloating) else 1) for x in leaves)
