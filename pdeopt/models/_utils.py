"""Small helpers for models."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree


def _check_positive(**values: Any) -> None:
    """Raise unless every keyword argument is a positive integer (booleans excluded)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got `{name}={value!r}`.")


def _default_dtype(dtype: Any) -> Any:
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(
            f"`dtype={dtype}` is not a real floating dtype; pass e.g. `dtype=jnp.float32` (complex "
            "spectral weights are stored as separate real and imaginary arrays)."
        )
    return dtype


def _identity(x: Array) -> Array:
    return x


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
