"""The physics-informed training loss of a grid model under a constraint."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ..constraints import AbstractPDE, SoftConstraint


class PhysicsLoss(eqx.Module):
    """Data-free physics loss of a model that maps a PDE condition to fields on the grid.

    Per sample: the model sees `pde.inputs(condition)` and emits `constraint.num_outputs`
    channels; the constraint turns them into the solution field u (for a soft constraint, the
    single channel itself); the loss is the constraint's weighted sum of the PDE, initial and
    boundary residual terms of u. The batch loss is the mean over samples.

    **Arguments:**

    - `pde`: the PDE (an `AbstractPDE`).
    - `constraint`: how model outputs become u and how residual terms are weighted.
    """

    pde: AbstractPDE
    constraint: SoftConstraint

    def predict_one(self, model, condition: PyTree[Array]) -> Float[Array, "*grid"]:
        """The solution field u for one sample."""
        return self.constraint(self.pde, model(self.pde.inputs(condition)), condition)

    def __call__(
        self, model, conditions: PyTree[Array], key: PRNGKeyArray | None = None
    ) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        """Batch loss and its unweighted terms (each averaged over the batch)."""
        del key  # Soft constraints are deterministic; hard constraints sample collocation sets.

        def per_sample(condition):
            u = self.predict_one(model, condition)
            return self.constraint.terms(self.pde, u, condition)

        terms = jax.tree.map(jnp.mean, jax.vmap(per_sample)(conditions))
        return self.constraint.loss(terms), terms
