"""Soft constraints: the PDE, initial and boundary residuals as weighted penalties."""

from collections.abc import Mapping

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from ._base import AbstractConstraint, check_weights, rms
from ._pde import AbstractPDE


class SoftConstraint(AbstractConstraint):
    """Physics-informed soft constraint (PI-SC): a weighted sum of mean-squared residuals.

    The model emits the solution itself (one channel); the training loss is
    Σ_b w_b · mean(r_b²) over the residual blocks b of `AbstractPDE.residuals`
    (`"pde"` and the problem's initial/boundary blocks, e.g. `"ic"`, `"bc"`).

    **Arguments:**

    - `weights`: one non-negative weight per residual block; every block the PDE produces
        must have a weight (a missing or unknown name is an error at trace time).
    """

    loss_weights: dict[str, float] = eqx.field(static=True)

    def __init__(self, weights: Mapping[str, float] | None = None):
        self.loss_weights = dict({"pde": 1.0, "ic": 1.0, "bc": 1.0} if weights is None else weights)

    def __check_init__(self):
        check_weights("SoftConstraint", self.loss_weights)

    @property
    def num_outputs(self) -> int:
        return 1

    def __call__(
        self,
        pde: AbstractPDE,
        output: Float[Array, "*grid channels"],
        condition: PyTree[Array],
        *,
        key: PRNGKeyArray | None = None,
    ) -> tuple[Float[Array, "*grid"], dict[str, Array]]:
        del pde, condition, key
        if output.shape[-1] != 1:
            raise ValueError(
                f"SoftConstraint expects a model with out_channels=1; got {output.shape[-1]}."
            )
        return output[..., 0], {}

    def report(self, pde, output, condition, *, key=None):
        """RMS of each residual block over the whole grid (no collocation set, no seams)."""
        u, _ = self(pde, output, condition, key=key)
        residuals = pde.residuals(u, condition)
        out = {"pde_rms_heldout": rms(residuals.pop("pde"))}
        out.update({f"{name}_rms": rms(block) for name, block in residuals.items()})
        return out
