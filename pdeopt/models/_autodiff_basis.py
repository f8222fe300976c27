"""A pointwise coordinate model's outputs and their coordinate derivatives, as channels."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ..discretizations import derivatives


class AutodiffBasis(eqx.Module):
    """Evaluates a pointwise model and its autodiff coordinate derivatives at every input point.

    The wrapped `model` maps one input point `(in_channels,)` — coordinates first, then the
    condition channels — to N outputs (a DeepONet trunk in basis mode, a PINN MLP). For each
    point of `x` `(*points, in_channels)`, `AutodiffBasis` returns the derivatives of the N
    outputs with respect to the first `coordinate_channels` channels, one multi-index of
    `orders` after another, stacked on the channel axis: shape `(*points, Q * N)` for
    `Q = len(orders)`, reshaping to `(*points, Q, N)`. The derivatives come from
    [`pdeopt.discretizations.derivatives`][] (nested forward-mode jvps), so they are exact
    for the network, and differentiable in its parameters.

    A PDE whose `derivatives` are [`pdeopt.constraints.Autodiff`][] reads these channels as
    its per-basis quantities; `Autodiff().model_options(pde)` gives the `orders` and
    `coordinate_channels` it expects.

    ??? cite "References"

        G. Négiar, M. W. Mahoney, A. Krishnapriyan, "Learning differentiable solvers for
        systems with hard constraints", ICLR 2023 (DeepONet basis, autodiff derivatives).
    """

    model: eqx.Module
    orders: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    coordinate_channels: int = eqx.field(static=True)

    def __init__(
        self,
        model: Callable[[Float[Array, "1 in_channels"]], Float[Array, "1 n"]],
        orders: Sequence[Sequence[int]],
        coordinate_channels: int,
    ):
        """**Arguments:**

        - `model`: a pointwise model: applied to `(1, in_channels)` it returns `(1, N)`
            (`pdeopt.models.DeepONet(basis=True)`, `pdeopt.models.MLP`).
        - `orders`: derivative multi-indices, one order per coordinate channel, e.g.
            `((0, 0), (1, 0), (0, 1), (0, 2))` for u, u_t, u_x, u_xx on `(t, x)`.
        - `coordinate_channels`: number of leading input channels that are coordinates.
        """
        self.model = model
        self.orders = tuple(tuple(o) for o in orders)
        self.coordinate_channels = coordinate_channels

    def __check_init__(self):
        if not isinstance(self.coordinate_channels, int) or self.coordinate_channels < 1:
            raise ValueError(
                f"AutodiffBasis needs `coordinate_channels` >= 1, got {self.coordinate_channels!r}."
            )
        if not self.orders or any(len(o) != self.coordinate_channels for o in self.orders):
            raise ValueError(
                f"AutodiffBasis `orders={self.orders}` must be a non-empty list of multi-"
                f"indices of length coordinate_channels={self.coordinate_channels}, e.g. "
                f"{[(0,) * self.coordinate_channels]}."
            )

    def __call__(
        self, x: Float[ArrayLike, "*points in_channels"]
    ) -> Float[Array, "*points q_times_n"]:
        """**Arguments:**

        - `x`: the input points `(*points, in_channels)`, coordinates first.

        **Returns:**

        `(*points, Q * N)`: channel `q * N + n` is `D^{orders[q]}` of output n.
        """
        x = jnp.asarray(x)
        d = self.coordinate_channels
        orders = {str(q): o for q, o in enumerate(self.orders)}

        def point(z):
            fn = lambda y: self.model(jnp.concatenate([y, z[d:]])[None])[0]
            out = derivatives(fn, z[None, :d], orders)
            return jnp.concatenate([out[str(q)][0] for q in range(len(self.orders))])

        flat = jax.vmap(point)(x.reshape(-1, x.shape[-1]))
        return flat.reshape(*x.shape[:-1], flat.shape[-1])


def autodiff_basis(
    in_channels: int,
    out_channels: int,
    *,
    model: Callable[..., eqx.Module],
    orders: Sequence[Sequence[int]],
    coordinate_channels: int,
    key: PRNGKeyArray,
) -> AutodiffBasis:
    """Build an [`pdeopt.models.AutodiffBasis`][] around `model(in_channels, out_channels,
    key=key)` (the Hydra entry point: `model` is a partial model config)."""
    inner = model(in_channels=in_channels, out_channels=out_channels, key=key)
    return AutodiffBasis(inner, orders, coordinate_channels)
