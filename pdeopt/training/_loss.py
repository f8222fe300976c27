"""The physics-informed training loss of a grid model under a constraint."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Key, PRNGKeyArray, PyTree

from .._ordered import apply_per_sample, repeat
from ..constraints import AbstractConstraint, AbstractPDE, SolveStats, all_finite


class PhysicsLoss(eqx.Module):
    """Data-free physics loss of a model that maps a PDE condition to fields on the grid.

    Per sample: the model sees `pde.inputs(condition)` and emits `constraint.num_outputs`
    channels; the constraint turns them into the solution field u (a soft constraint takes
    the single channel; a hard constraint solves for basis weights); the loss is the
    constraint's weighted sum of the PDE, initial and boundary residual terms of u.

    Samples that fail (with a constraint whose `skips_failures` is set, e.g.
    `HardConstraint(throw=False)`) are left out of the batch mean and counted: a sample with a
    non-finite condition is replaced by zeros before the model, a non-finite basis or a solve
    that did not converge is masked by the constraint, so neither the model's backward pass
    nor the solve's implicit adjoint sees a NaN. The returned terms count them
    (`failed_fraction`: samples left out; `nonfinite_samples`; the solver's statistics).

    The model runs on the whole batch; the constraint on every sample at once (`vmap`), or
    one sample after another (`lax.map`) when its `vectorize_samples` is False.

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

    def sample_terms(self, model, conditions: PyTree[Array], keys: Key[Array, " batch"]):
        """Per sample (leading axis of `conditions` and `keys`): the unweighted terms, whether
        the sample counts (`ok`), whether its condition was finite, and the solver's
        statistics (`None` without solves). `__call__` reduces them with `reduce`.

        The gradient with respect to the model's parameters is the sum of the per-sample
        gradients in sample order ([`pdeopt.training.sum_in_order`][]), so it does not depend
        on how a batch is split over devices ([`pdeopt.training.ShardedLoss`][])."""
        params, static = eqx.partition(model, eqx.is_inexact_array)
        num = jax.tree.leaves(conditions)[0].shape[0]
        return self.stacked_terms(repeat(params, num), static, conditions, keys)

    def stacked_terms(
        self,
        params,
        static,
        conditions: PyTree[Array],
        keys: Key[Array, " batch"],
        *,
        per_sample: bool = True,
    ):
        """`sample_terms` of the model `eqx.combine(params[i], static)` for sample i: `params`
        are the model's inexact arrays with a leading sample axis, copies of one another
        (`pdeopt.training.repeat`), so the gradient with respect to them is per sample
        ([`pdeopt.training.apply_per_sample`][]). With `per_sample=False`, `params` are one
        copy for the whole batch, whose gradient XLA sums over the samples in an order of its
        choice (the reference of `experiments/bench_devices.py`)."""
        skip = self.constraint.skips_failures

        def prepare(condition):
            finite = all_finite(condition)
            if skip:
                condition = jax.tree.map(lambda a: jnp.where(finite, a, 0), condition)
            return self.pde.inputs(condition), condition, finite

        def constrain(output, condition, key):
            return self.constraint.loss_terms(self.pde, output, condition, key=key)

        inputs, conditions, finite = jax.vmap(prepare)(conditions)
        model = lambda params, inputs: eqx.combine(params, static)(inputs)
        if per_sample:
            outputs = apply_per_sample(model, params, inputs)
        else:
            outputs = jax.vmap(model, in_axes=(None, 0))(params, inputs)
        if self.constraint.vectorize_samples:
            terms, ok, stats = jax.vmap(constrain)(outputs, conditions, keys)
        else:  # One sample after another: none waits for the batch's slowest solve.
            terms, ok, stats = jax.lax.map(lambda a: constrain(*a), (outputs, conditions, keys))
        return terms, ok & finite, finite, stats

    def reduce(
        self, terms, ok, finite, stats
    ) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        """The batch loss and its terms from the per-sample outputs of `sample_terms`."""
        weight = ok.astype(jax.tree.leaves(terms)[0].dtype)
        count = jnp.maximum(weight.sum(), 1.0)  # All failed: loss 0, and `fit` stops the run.
        terms = {k: jnp.sum(v * weight) / count for k, v in terms.items()}
        aux = dict(terms)
        aux["failed_fraction"] = 1.0 - jnp.mean(weight)
        aux["nonfinite_samples"] = jnp.sum(~finite).astype(weight.dtype)
        if stats is not None:
            aux["solve_failure_rate"] = 1.0 - jnp.mean(stats.converged.astype(weight.dtype))
            aux["solve_max_steps_rate"] = jnp.mean(stats.max_steps_reached.astype(weight.dtype))
            aux["solve_steps_mean"] = jnp.mean(stats.num_steps.astype(weight.dtype))
            aux["solve_steps_max"] = jnp.max(stats.num_steps).astype(weight.dtype)
            aux["seam_rms"] = jnp.mean(stats.seam_rms)
        return self.constraint.loss(terms), aux

    def __call__(
        self, model, conditions: PyTree[Array], key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
        """Batch loss, its unweighted terms (batch means) and the solver statistics."""
        num = jax.tree.leaves(conditions)[0].shape[0]
        return self.reduce(*self.sample_terms(model, conditions, jr.split(key, num)))
