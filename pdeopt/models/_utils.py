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


# The parameter dtypes a model trains in. Pointwise models (MLP, DeepONet) are matmuls and
# elementwise functions, which XLA runs in each of these, values and gradients. float16 is
# left out: its range (up to 6.6e4) overflows in training on the physics losses (on
# problem=heat an MLP's loss, or with the hard constraint its adjoint solve, turns NaN at the
# second step), where bfloat16, with float32's range, trains; 8-bit floats have too few
# mantissa bits to hold a trained weight.
_TRAINING_DTYPES = ("float32", "float64", "bfloat16")


def _default_dtype(
    dtype: Any,
    supported: tuple[str, ...] = _TRAINING_DTYPES,
    why: str = ": parameters need a real float with float32's range (float16 overflows)",
) -> Any:
    """`dtype` as a NumPy dtype (JAX's default float dtype for `None`), refused unless it is
    one of `supported`, with `why` (": reason") in the message."""
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if dtype.name not in supported:
        *others, last = [f"`dtype={d}`" for d in supported]
        raise ValueError(
            f"`dtype={dtype}` is not supported{why}; pass {', '.join(others)} or {last}."
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
