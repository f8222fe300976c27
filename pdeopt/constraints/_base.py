"""The interface shared by soft and hard constraints, and the residuals of weighted bases."""

import abc
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from .._results import RESULTS
from ._derivatives import BasisQuantities
from ._partition import Partition
from ._pde import AbstractPDE, group_blocks, merge_coefficients


class SolveStats(eqx.Module):
    """Statistics of the constraint solves of one sample, one entry per expert (with leading
    batch axes when the layer is `vmap`ped over samples).

    - `result`: the solver's [`pdeopt.RESULTS`][] per expert.
    - `num_steps`: solver iterations per expert.
    - `residual_norm`: ‖r(ω)‖ at the solution, per expert.
    - `finite`: whether the model's output was finite.
    - `collocation`: flat grid indices of every expert's collocation points.
    - `seam_rms`, `seam_max`: the jump of the solution across expert faces (0 for one expert).
    """

    result: RESULTS
    num_steps: Int[Array, "*batch experts"]
    residual_norm: Float[Array, "*batch experts"]
    finite: Bool[Array, "*batch"]
    collocation: Int[Array, "*batch experts points"]
    seam_rms: Float[Array, "*batch"]
    seam_max: Float[Array, "*batch"]

    @property
    def converged(self) -> Bool[Array, "*batch experts"]:
        """Per expert: the solve succeeded on a finite basis."""
        return (self.result == RESULTS.successful) & self.finite[..., None]

    @property
    def max_steps_reached(self) -> Bool[Array, "*batch experts"]:
        return self.result == RESULTS.nonlinear_max_steps_reached


class AbstractConstraint(eqx.Module):
    """Turns a model's output channels into a solution field, and weights the training loss.

    Subclasses provide `num_outputs` (channels the model must emit), `loss_weights` (one
    weight per training term, or `None` for weight 1 on every term the PDE has), `__call__`,
    `loss_terms` and `report`.
    """

    loss_weights: eqx.AbstractVar[dict[str, float] | None]

    @property
    @abc.abstractmethod
    def num_outputs(self) -> int:
        """Number of basis fields the model must emit."""

    @property
    def skips_failures(self) -> bool:
        """Whether a sample whose solve fails, or whose input or basis is non-finite, is left
        out of the training loss and counted (True), or raises (False)."""
        return False

    @property
    def vectorize_samples(self) -> bool:
        """Whether a batch's samples are `vmap`ped through the constraint (True: one batched
        computation) or mapped one after another with `lax.map` (False: a sample whose
        iterative solve has converged does not wait for the batch's slowest)."""
        return True

    @abc.abstractmethod
    def __call__(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*points channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ) -> tuple[Float[Array, "*grid"], SolveStats | None]:
        """The solution field for one sample, and the solve statistics (`None`: no solve)."""

    @abc.abstractmethod
    def loss_terms(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*points channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ) -> tuple[dict[str, Float[Array, ""]], Bool[Array, ""], SolveStats | None]:
        """The unweighted training terms of one sample, whether it counts, and statistics.

        A sample does not count when its constraint solve failed; its terms are then finite
        placeholders without gradient, and the training loss leaves it out.
        """

    @abc.abstractmethod
    def report(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*points channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray,
    ) -> dict[str, Float[Array, ""]]:
        """Constraint satisfaction of one sample: RMS residuals by block (see the docs)."""

    def check(self, pde: AbstractPDE) -> None:
        """Raise now what training on `pde` would raise at trace time: here, `loss_weights`
        naming other terms than the PDE's. Subclasses extend it with their own sizes.

        **Arguments:**

        - `pde`: the PDE the constraint will be applied to.

        **Returns:** nothing; raises `ValueError` naming the option and the fix.
        """
        self.weights_for(pde)

    def term_names(self, pde: AbstractPDE) -> tuple[str, ...]:
        """The names of the training terms on `pde` (default: its residual blocks)."""
        return pde.block_names()

    def weights_for(self, pde: AbstractPDE) -> dict[str, float]:
        """The loss weight of every term on `pde`: `loss_weights`, or 1 for each term."""
        names = self.term_names(pde)
        if self.loss_weights is None:
            return {name: 1.0 for name in names}
        return check_names(f"{type(self).__name__} loss_weights", self.loss_weights, names)

    def loss(self, terms: Mapping[str, Float[Array, ""]]) -> Float[Array, ""]:
        """The weighted sum of the terms (weight 1 where `loss_weights` is `None`)."""
        weights = self.loss_weights or {}
        return sum(weights.get(name, 1.0) * value for name, value in terms.items())

    def mean_squares(
        self, pde: AbstractPDE, terms: dict[str, Float[Array, "..."]]
    ) -> dict[str, Float[Array, ""]]:
        """Mean square of every residual block, after checking the names of the weights."""
        self.weights_for(pde)
        return {name: jnp.mean(jnp.square(r)) for name, r in terms.items()}


def check_names(owner: str, weights: Mapping[str, float], names) -> dict[str, float]:
    """`weights` as a dict, after checking that it names exactly `names`."""
    missing = set(names) - set(weights)
    unknown = set(weights) - set(names)
    if missing or unknown:
        raise ValueError(
            f"{owner} must name exactly the blocks {list(names)} (or be null for weight 1 "
            f"each); missing {sorted(missing)}, unknown {sorted(unknown)}."
        )
    return dict(weights)


def check_weights(owner: str, weights: Mapping[str, float] | None) -> None:
    """Raise if a (Python-number) weight is negative."""
    for name, w in (weights or {}).items():
        if isinstance(w, (int, float)) and w < 0:
            raise ValueError(f"{owner} weight '{name}' must be >= 0, got {w}.")


def all_finite(tree: PyTree[Array]) -> Bool[Array, ""]:
    """Whether every entry of every array in `tree` is finite."""
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))


def rms(x: Array, mask: Array | None = None) -> Array:
    """Root mean square of `x`, over the entries where `mask` holds (all by default)."""
    if mask is None:
        return jnp.sqrt(jnp.mean(jnp.square(x)))
    return jnp.sqrt(jnp.sum(jnp.where(mask, jnp.square(x), 0.0)) / jnp.maximum(mask.sum(), 1))


def augment(omega: Float[Array, "*experts n"]) -> Float[Array, "*experts n1"]:
    """ω with the offset's fixed weight 1 appended."""
    return jnp.concatenate([omega, jnp.ones((*omega.shape[:-1], 1), omega.dtype)], axis=-1)


def flat_coefficients(pde: AbstractPDE, condition, dtype) -> dict[str, Float[Array, " points"]]:
    """The PDE's pointwise coefficient fields, flattened over the grid."""
    fields = pde.interior_coefficients(condition)
    return {k: jnp.asarray(v, dtype).reshape(-1) for k, v in fields.items()}


def assemble(
    basis: BasisQuantities, weights: Float[Array, "experts n1"], part: Partition
) -> Float[Array, "*grid"]:
    """u = fields · w_k on each expert k's block."""
    n1 = basis.fields.shape[-1]
    owner = jnp.asarray(part.owner)
    return jnp.sum(basis.fields.reshape(-1, n1) * weights[owner], -1).reshape(part.grid_shape)


def field_residuals(
    pde: AbstractPDE,
    basis: BasisQuantities,
    weights: Float[Array, "experts n1"],
    part: Partition,
    condition: PyTree[Array],
) -> tuple[Float[Array, " points"], dict[str, Float[Array, "..."]]]:
    """The residuals of the field whose every point (and row) uses its owner's weights.

    The PDE residual at every grid point (flat) is formed from the per-basis quantities with
    the weights of the expert owning the point, so no stencil straddles a seam; the rows of
    every block likewise, from the per-basis traces. With one expert this is the residual
    of u = fields · w, exactly (the quantities are linear).
    """
    n1 = basis.fields.shape[-1]
    w = weights[jnp.asarray(part.owner)]
    q = {k: jnp.sum(v.reshape(-1, n1) * w, -1) for k, v in basis.interior.items()}
    q = merge_coefficients(q, flat_coefficients(pde, condition, basis.fields.dtype))
    interior = pde.interior_residual(q, condition)
    traces = []
    for block, trace in zip(pde.residual_blocks(), basis.traces):
        owner = part.owner_of(block.locations(pde.grid))
        traces.append(jnp.einsum("o...n,...n->o...", trace, weights[owner]))
    return interior, group_blocks(pde, condition, traces)
