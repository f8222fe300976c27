"""Soft constraints: the PDE, initial and boundary residuals as weighted penalties."""

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._base import AbstractConstraint, assemble, check_weights, field_residuals, rms
from ._derivatives import BasisQuantities
from ._partition import Partition, partition
from ._pde import AbstractPDE


class LearningRateAnnealing(eqx.Module):
    """Loss balancing by learning-rate annealing (Wang, Teng & Perdikaris 2021, Algorithm 1).

    Every `every` training steps, each non-reference term `L_i` of the loss
    `λ_r L_r + Σ_i λ_i L_i` gets the estimate

    `λ̂_i = max_θ |λ_r ∇_θ L_r| / mean_θ |λ_i ∇_θ L_i|`

    (max and mean over all trainable parameters θ, with the current λ_i) and the update
    `λ_i <- (1 - α) λ_i + α λ̂_i`; the reference weight `λ_r` stays at its configured value
    (1 in the paper, where `L_r` is the PDE residual). The gradient step of that training
    step then uses the updated weights. A term whose gradient is identically zero keeps its
    weight.

    The weights are explicit state: `init` builds them from the constraint's `loss_weights`,
    `update` returns new ones; [`pdeopt.training.fit`][] threads them through the loop and
    logs them as `weight_<name>`.

    ??? cite "References"

        Wang, Teng & Perdikaris (2021), *Understanding and Mitigating Gradient Flow
        Pathologies in Physics-Informed Neural Networks*, SIAM J. Sci. Comput. 43(5); the
        entry is under [`pdeopt.models.ModifiedMLP`][].

    **Arguments:**

    - `alpha`: the moving-average factor α in `(0, 1]` (0.9 in the paper).
    - `every`: update the weights every `every` steps (at steps 1, 1 + every, ...).
    - `reference`: the name of the reference term `L_r`.
    """

    alpha: float = eqx.field(static=True, default=0.9)
    every: int = eqx.field(static=True, default=10)
    reference: str = eqx.field(static=True, default="pde")

    def __check_init__(self):
        if isinstance(self.alpha, (int, float)) and not 0 < self.alpha <= 1:
            raise ValueError(f"LearningRateAnnealing needs 0 < alpha <= 1, got {self.alpha}.")
        if not isinstance(self.every, int) or self.every < 1:
            raise ValueError(
                f"LearningRateAnnealing needs a positive integer `every`, got {self.every!r}."
            )

    def init(self, loss_weights: Mapping[str, float]) -> dict[str, Float[Array, ""]]:
        """**Arguments:**

        - `loss_weights`: the initial weight of every term, the reference included.

        **Returns:**

        The weights as a dict of scalar arrays (the state to thread through training).
        """
        if self.reference not in loss_weights:
            raise ValueError(
                f"LearningRateAnnealing(reference={self.reference!r}) needs a loss term of "
                f"that name; the terms are {sorted(loss_weights)}."
            )
        return {name: jnp.asarray(w, float) for name, w in loss_weights.items()}

    def update(
        self, weights: Mapping[str, Float[Array, ""]], grads: Mapping[str, PyTree[Array]]
    ) -> dict[str, Float[Array, ""]]:
        """**Arguments:**

        - `weights`: the current weights (from `init` or a previous `update`).
        - `grads`: the gradient of every *unweighted* term with respect to the trainable
            parameters, one pytree per term name.

        **Returns:**

        The new weights.
        """

        def flat(name):
            leaves = jax.tree.leaves(grads[name])
            return jnp.abs(weights[name] * jnp.concatenate([g.ravel() for g in leaves]))

        top = jnp.max(flat(self.reference))
        new = dict(weights)
        for name in weights:
            if name == self.reference:
                continue
            mean = jnp.mean(flat(name))
            estimate = top / jnp.where(mean > 0, mean, 1)
            updated = (1 - self.alpha) * weights[name] + self.alpha * estimate
            new[name] = jnp.where(mean > 0, updated, weights[name]).astype(weights[name].dtype)
        return new


class SoftConstraint(AbstractConstraint):
    """Physics-informed soft constraint (PI-SC): a weighted sum of mean-squared residuals.

    The model emits the solution itself (one field, after the PDE's `ansatz`); the training
    loss is Σ_b w_b · mean(r_b²) over the residual blocks b of the PDE (`"pde"` and its
    initial/boundary blocks, e.g. `"ic"`, `"bc"`), evaluated from the quantities the PDE's
    `derivatives` provide (grid operators, or autodiff of a coordinate model).

    **Arguments:**

    - `weights`: one non-negative weight per residual block, or `None` (default) for weight
        1 on every block the PDE has; a missing or unknown name is an error at trace time.
    - `balancing`: `None` (fixed weights), or a [`pdeopt.constraints.LearningRateAnnealing`][]
        that adapts the weights during training, starting from `weights`.
    """

    loss_weights: dict[str, float] | None = eqx.field(static=True)
    balancing: LearningRateAnnealing | None

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        balancing: LearningRateAnnealing | None = None,
    ):
        self.loss_weights = None if weights is None else dict(weights)
        self.balancing = balancing

    def __check_init__(self):
        check_weights("SoftConstraint", self.loss_weights)

    @property
    def num_outputs(self) -> int:
        return 1

    def check(self, pde: AbstractPDE) -> None:
        """Raise now what training on `pde` would raise: `weights` naming other blocks than
        the PDE's, or a `balancing` reference term the PDE does not have."""
        weights = self.weights_for(pde)
        if self.balancing is not None:
            self.balancing.init(weights)

    def _basis(self, pde: AbstractPDE, output, condition) -> BasisQuantities:
        basis = pde.derivatives.basis(pde, output, condition)
        if basis.num_basis != 1:
            raise ValueError(
                f"SoftConstraint expects a model with out_channels=1; got {basis.num_basis} fields."
            )
        return basis

    def _residuals(self, pde, output, condition):
        basis = self._basis(pde, output, condition)
        one = jnp.ones((1, 2), basis.fields.dtype)
        return field_residuals(pde, basis, one, single(pde), condition)

    def __call__(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*points channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Float[Array, "*grid"], None]:
        del key
        basis = self._basis(pde, output, condition)
        return assemble(basis, jnp.ones((1, 2), basis.fields.dtype), single(pde)), None

    def loss_terms(self, pde, output, condition, *, key=None):
        del key
        interior, blocks = self._residuals(pde, output, condition)
        return self.mean_squares(pde, {"pde": interior, **blocks}), jnp.array(True), None

    def report(self, pde, output, condition, *, key=None):
        """RMS of each residual block over the whole grid (no collocation set, no seams)."""
        del key
        interior, blocks = self._residuals(pde, output, condition)
        out = {"pde_rms_heldout": rms(interior)}
        out.update({f"{name}_rms": rms(block) for name, block in blocks.items()})
        return out


def single(pde: AbstractPDE) -> Partition:
    """The one-expert partition of the PDE's grid."""
    return partition(pde.grid.shape, (1,) * pde.grid.ndim)
