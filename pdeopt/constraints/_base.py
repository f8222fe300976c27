"""The interface shared by soft and hard constraints."""

import abc
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from ._pde import AbstractPDE


class AbstractConstraint(eqx.Module):
    """Turns a model's output channels into a solution field, and weights the training loss.

    Subclasses provide `num_outputs` (channels the model must emit), `loss_weights` (one
    weight per residual block of the PDE, for the training loss) and `__call__`.
    """

    loss_weights: eqx.AbstractVar[dict[str, float]]

    @property
    @abc.abstractmethod
    def num_outputs(self) -> int:
        """Number of channels the model must emit."""

    @abc.abstractmethod
    def __call__(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*grid channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, "*grid"], dict[str, Array]]:
        """The solution field for one sample, and the constraint's statistics."""

    @abc.abstractmethod
    def report(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*grid channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ) -> dict[str, Float[Array, ""]]:
        """Constraint satisfaction of one sample: RMS residuals by block (see the docs)."""

    def terms(
        self, pde: AbstractPDE, u: Float[Array, "*grid"], condition: PyTree[Array]
    ) -> dict[str, Float[Array, ""]]:
        """Mean-squared residual of every block of `pde.residuals(u, condition)`, unweighted."""
        residuals = pde.residuals(u, condition)
        return self.checked({name: jnp.mean(jnp.square(r)) for name, r in residuals.items()})

    def checked(self, terms: dict[str, Array]) -> dict[str, Array]:
        """`terms`, after checking that `loss_weights` names exactly their blocks."""
        missing = set(terms) - set(self.loss_weights)
        unknown = set(self.loss_weights) - set(terms)
        if missing or unknown:
            raise ValueError(
                f"{type(self).__name__} loss weights must name exactly the loss terms "
                f"{sorted(terms)}; missing {sorted(missing)}, unknown {sorted(unknown)}."
            )
        return terms

    def loss_terms(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*grid channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ) -> tuple[dict[str, Float[Array, ""]], Bool[Array, ""], dict[str, Array]]:
        """The unweighted training terms of one sample, whether it counts, and statistics.

        A sample does not count when its constraint solve did not converge (statistics
        `converged`); its terms are then those of a zero field, so that no NaN reaches the
        backward pass, and the training loss leaves it out.
        """
        u, stats = self(pde, output, condition, key=key)
        ok = jnp.all(stats["converged"]) if "converged" in stats else jnp.array(True)
        u = jnp.where(ok, u, jax.lax.stop_gradient(jnp.zeros_like(u)))
        return self.terms(pde, u, condition), ok, stats

    def loss(self, terms: Mapping[str, Float[Array, ""]]) -> Float[Array, ""]:
        """The weighted sum of the terms."""
        return sum(self.loss_weights[name] * value for name, value in terms.items())


def check_weights(owner: str, weights: Mapping[str, float]) -> None:
    """Raise if a (Python-number) weight is negative."""
    for name, w in weights.items():
        if isinstance(w, (int, float)) and w < 0:
            raise ValueError(f"{owner} weight '{name}' must be >= 0, got {w}.")


def rms(x: Array, mask: Array | None = None) -> Array:
    """Root mean square of `x`, over the entries where `mask` holds (all by default)."""
    if mask is None:
        return jnp.sqrt(jnp.mean(jnp.square(x)))
    return jnp.sqrt(jnp.sum(jnp.where(mask, jnp.square(x), 0.0)) / jnp.maximum(mask.sum(), 1))
