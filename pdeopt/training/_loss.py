"""The physics-informed training loss of a grid model under a constraint."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ..constraints import AbstractConstraint, AbstractPDE, SolveStats


class PhysicsLoss(eqx.Module):
    """Data-free physics loss of a model that maps a PDE condition to fields on the grid.

    Per sample: the model sees `pde.inputs(condition)` and emits `constraint.num_outputs`
    channels; the constraint turns them into the solution field u (a soft constraint takes
    the single channel; a hard constraint solves for basis weights); the loss is the
    constraint's weighted sum of the PDE, initial and boundary residual terms of u.

    Samples whose hard-constraint solve did not converge (reported by the constraint with
    `throw=False`) are left out of the batch mean — their implicit gradients would be
    wrong — and counted in the returned terms (`solve_failure_rate`,
    `samples_skipped`); the other statistics are logged alongside.

    **Arguments:**

    - `pde`: the PDE (an `AbstractPDE`).
    - `constraint`: how model outputs become u and how residual terms are weighted.
    """

    pde: AbstractPDE
    constraint: AbstractConstraint

    def predict_one(
        self, model, condition: PyTree[Array], key: PRNGKeyArray
    ) -> tuple[Float[Array, "*grid"], SolveStats | None]:
        """The solution field u for one sample, and the constraint's statistics."""
        output = model(self.pde.inputs(condition))
        return self.constraint(self.pde, output, condition, key=key)

    def report_one(self, model, condition: PyTree[Array], key: PRNGKeyArray):
        """The constraint-satisfaction report of one sample."""
        output = model(self.pde.inputs(condition))
        return self.constraint.report(self.pde, output, condition, key=key)

    def __call__(
        self, model, conditions: PyTree[Array], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        """Batch loss, its unweighted terms (batch means) and the solver statistics."""
        num = jax.tree.leaves(conditions)[0].shape[0]

        def per_sample(condition, key):
            output = model(self.pde.inputs(condition))
            return self.constraint.loss_terms(self.pde, output, condition, key=key)

        terms, ok, stats = jax.vmap(per_sample)(conditions, jr.split(key, num))
        weight = ok.astype(jax.tree.leaves(terms)[0].dtype)
        count = jnp.maximum(weight.sum(), 1.0)
        terms = {k: jnp.sum(v * weight) / count for k, v in terms.items()}
        aux = dict(terms)
        if stats is not None:
            aux["samples_skipped"] = num - weight.sum()
            aux["solve_failure_rate"] = 1.0 - jnp.mean(stats.converged.astype(weight.dtype))
            aux["solve_max_steps_rate"] = jnp.mean(stats.max_steps_reached.astype(weight.dtype))
            aux["solve_steps_mean"] = jnp.mean(stats.num_steps.astype(weight.dtype))
            aux["solve_steps_max"] = jnp.max(stats.num_steps).astype(weight.dtype)
            aux["seam_rms"] = jnp.mean(stats.seam_rms)
        return self.constraint.loss(terms), aux
