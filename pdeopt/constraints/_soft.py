"""Soft constraints: the PDE, initial and boundary residuals as weighted penalties."""

from collections.abc import Mapping

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from ._pde import AbstractPDE


class SoftConstraint(eqx.Module):
    """Physics-informed soft constraint (PI-SC): a weighted sum of mean-squared residuals.

    loss = Σ_b w_b · mean(r_b²) over the residual blocks b of `AbstractPDE.residuals`
    (`"pde"` and the problem's initial/boundary blocks, e.g. `"ic"`, `"bc"`).

    **Arguments:**

    - `weights`: one non-negative weight per residual block; every block the PDE produces
        must have a weight (a missing or unknown name is an error at trace time).
    """

    weights: dict[str, float] = eqx.field(static=True)

    def __init__(self, weights: Mapping[str, float] | None = None):
        self.weights = dict({"pde": 1.0, "ic": 1.0, "bc": 1.0} if weights is None else weights)

    def __check_init__(self):
        for name, w in self.weights.items():
            if isinstance(w, (int, float)) and w < 0:
                raise ValueError(f"SoftConstraint weight '{name}' must be >= 0, got {w}.")

    @property
    def num_outputs(self) -> int:
        """The model emits one channel: the solution itself."""
        return 1

    def __call__(
        self, pde: AbstractPDE, output: Float[Array, "*grid channels"], condition: PyTree[Array]
    ) -> Float[Array, "*grid"]:
        """The solution field: the model's single output channel."""
        del pde, condition
        if output.shape[-1] != 1:
            raise ValueError(
                f"SoftConstraint expects a model with out_channels=1; got {output.shape[-1]}."
            )
        return output[..., 0]

    def terms(
        self, pde: AbstractPDE, u: Float[Array, "*grid"], condition: PyTree[Array]
    ) -> dict[str, Float[Array, ""]]:
        """Mean-squared residual of every block, unweighted."""
        residuals = pde.residuals(u, condition)
        missing = set(residuals) - set(self.weights)
        unknown = set(self.weights) - set(residuals)
        if missing or unknown:
            raise ValueError(
                f"SoftConstraint weights must name exactly the residual blocks "
                f"{sorted(residuals)}; missing {sorted(missing)}, unknown {sorted(unknown)}."
            )
        return {name: jnp.mean(jnp.square(r)) for name, r in residuals.items()}

    def loss(self, terms: Mapping[str, Float[Array, ""]]) -> Float[Array, ""]:
        """The weighted sum of the terms."""
        return sum(self.weights[name] * value for name, value in terms.items())
