"""jaxtyping aliases shared across pdeopt."""

from typing import TypeAlias

from jaxtyping import ArrayLike, Float, PRNGKeyArray

ScalarLike: TypeAlias = float | Float[ArrayLike, ""]
Key: TypeAlias = PRNGKeyArray
