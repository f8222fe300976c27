"""A pointwise coordinate model's outputs and their coordinate derivatives, as channels."""

import inspect
import math
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
    its per-basis quantities; `Autodiff().model_options(pde)` gives the `orders`,
    `coordinate_channels` and `periods` it expects.

    **Periodic coordinates.** With `harmonics = K > 0`, every coordinate channel that has a
    period p in `periods` reaches the model as the 2K features `cos(2πk y/p)`, `sin(2πk y/p)`,
    k = 1…K, in place of y. Every output is then exactly periodic along that axis, and so are
    all its derivatives (the embedding is differentiated with the model): the rows a PDE adds
    to tie the two ends of a periodic axis together vanish identically, and the low
    wavenumbers a periodic solution is made of are in the model's reach from the first step.
    The model's input has 2K channels in place of each periodic coordinate.

    ??? cite "References"

        G. Négiar, M. W. Mahoney, A. Krishnapriyan, "Learning differentiable solvers for
        systems with hard constraints", ICLR 2023 (DeepONet basis, autodiff derivatives).
    """

    model: eqx.Module
    orders: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    coordinate_channels: int = eqx.field(static=True)
    periods: tuple[float | None, ...] = eqx.field(static=True)
    harmonics: int = eqx.field(static=True)

    def __init__(
        self,
        model: Callable[[Float[Array, "1 in_channels"]], Float[Array, "1 n"]],
        orders: Sequence[Sequence[int]],
        coordinate_channels: int,
        periods: Sequence[float | None] | None = None,
        harmonics: int = 0,
    ):
        """**Arguments:**

        - `model`: a pointwise model: applied to `(1, in_channels)` it returns `(1, N)`
            (`pdeopt.models.DeepONet(basis=True)`, `pdeopt.models.MLP`).
        - `orders`: derivative multi-indices, one order per coordinate channel, e.g.
            `((0, 0), (1, 0), (0, 1), (0, 2))` for u, u_t, u_x, u_xx on `(t, x)`.
        - `coordinate_channels`: number of leading input channels that are coordinates.
        - `periods`: per coordinate channel, its period in the input's units, or `None` for
            a non-periodic one (`None`: no periodic channel).
        - `harmonics`: wavenumbers K of the periodic embedding (0: coordinates as they are).
        """
        self.model = model
        self.orders = tuple(tuple(o) for o in orders)
        self.coordinate_channels = coordinate_channels
        self.periods = (None,) * coordinate_channels if periods is None else tuple(periods)
        self.harmonics = harmonics

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
        if len(self.periods) != self.coordinate_channels or any(
            p is not None and not p > 0 for p in self.periods
        ):
            raise ValueError(
                f"AutodiffBasis `periods={self.periods}` needs one entry per coordinate channel "
                f"({self.coordinate_channels}): a positive period, or None."
            )
        if not isinstance(self.harmonics, int) or self.harmonics < 0:
            raise ValueError(
                f"AutodiffBasis needs `harmonics` >= 0 (0: no periodic embedding), got "
                f"{self.harmonics!r}."
            )

    def embed(self, y: Float[Array, " coordinate_channels"]) -> Float[Array, " features"]:
        """The coordinates of one point as the model sees them (see the class docstring)."""
        if not self.harmonics:
            return y
        k = jnp.arange(1, self.harmonics + 1, dtype=y.dtype)
        parts = []
        for c, period in enumerate(self.periods):
            if period is None:
                parts.append(y[c : c + 1])
            else:
                phase = (2 * math.pi / period) * k * y[c]
                parts += [jnp.cos(phase), jnp.sin(phase)]
        return jnp.concatenate(parts)

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
            fn = lambda y: self.model(jnp.concatenate([self.embed(y), z[d:]])[None])[0]
            out = derivatives(fn, z[None, :d], orders)
            return jnp.concatenate([out[str(q)][0] for q in range(len(self.orders))])

        flat = jax.vmap(point)(x.reshape(-1, x.shape[-1]))
        return flat.reshape(*x.shape[:-1], flat.shape[-1])


def _embedded_channels(
    coordinate_channels: int, periods: Sequence[float | None] | None, harmonics: int
) -> int:
    """The number of coordinate features the model of an `AutodiffBasis` sees."""
    periodic = 0 if periods is None or not harmonics else sum(p is not None for p in periods)
    return coordinate_channels + (2 * harmonics - 1) * periodic


def autodiff_basis(
    in_channels: int,
    out_channels: int,
    *,
    model: Callable[..., eqx.Module],
    orders: Sequence[Sequence[int]],
    coordinate_channels: int,
    periods: Sequence[float | None] | None = None,
    periodic_harmonics: int = 0,
    key: PRNGKeyArray,
) -> AutodiffBasis:
    """Build an [`pdeopt.models.AutodiffBasis`][] around `model(in_channels, out_channels,
    key=key)` (the Hydra entry point: `model` is a partial model config). With
    `periodic_harmonics > 0` the periodic coordinates are embedded (see `AutodiffBasis`): the
    model gets the embedded channel count, and a model that takes `coordinate_channels` (a
    DeepONet) is told how many of its inputs are coordinate features."""
    features = _embedded_channels(coordinate_channels, periods, periodic_harmonics)
    options = {}
    if "coordinate_channels" in inspect.signature(model).parameters:
        options["coordinate_channels"] = features
    inner = model(
        in_channels=in_channels - coordinate_channels + features,
        out_channels=out_channels,
        key=key,
        **options,
    )
    return AutodiffBasis(inner, orders, coordinate_channels, periods, periodic_harmonics)
