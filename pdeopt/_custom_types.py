"""jaxtyping aliases shared across pdeopt."""

from typing import TypeAlias

from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree, Shaped

Scalar: TypeAlias = Float[Array, ""]
ScalarLike: TypeAlias = float | Float[ArrayLike, ""]
Field: TypeAlias = Float[Array, "*grid"]
"""A scalar field sampled on a grid, e.g. shape (nt, nx)."""
BasisStack: TypeAlias = Float[Array, "*grid n_basis"]
"""N basis fields sampled on a grid, basis index last."""
Y: TypeAlias = PyTree[Shaped[Array, "..."]]
Key: TypeAlias = PRNGKeyArray

__all__ = ["Array", "ArrayLike", "BasisStack", "Field", "Float", "Key", "Scalar", "ScalarLike", "Y"]
