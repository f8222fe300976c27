"""Deep operator network (Lu et al., 2021) with N outputs, and its basis mode."""

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._mlp import MLP
from ._utils import _check_positive, _default_dtype


class DeepONet(eqx.Module):
    """Unstacked DeepONet with `out_channels` outputs, or a trunk-only basis network.

    **Operator mode** (`basis=False`). A branch MLP maps the input function sampled at
    `num_sensors` sensors to coefficients `b(u)` of shape `(latent, out_channels)`; a trunk
    MLP maps a query point `y` to `t(y)` of the same shape; output `n` is

    `G(u)(y)_n = Σ_k b_{k n}(u) t_{k n}(y) + β_n`,

    a `latent`-term expansion per output (the branch and trunk each emit `latent ×
    out_channels` values).

    **Basis mode** (`basis=True`). There is no branch: the trunk's `out_channels` outputs
    `φ_n(y)` are basis fields, and a hard-constraint layer supplies the per-sample
    coefficients that the branch would (`u = Σ_n ω_n φ_n`, Négiar et al. 2023).

    **Evaluation.** [`pdeopt.models.DeepONet.operator`][] evaluates one input function at any
    point set; [`pdeopt.models.DeepONet.cartesian`][] evaluates a batch of inputs at a shared
    point set (Cartesian product) with the branch run once per input, the trunk once per
    point and one einsum. `__call__` takes the grid input of a problem,
    `AbstractPDE.inputs(condition)` of shape `(*grid, in_channels)`, whose first
    `coordinate_channels` channels are coordinates and whose remaining channels are the
    condition broadcast over the grid: the trunk sees the coordinates at every grid point;
    the branch sees the condition channels on the slice at index 0 of the first
    `sensor_axes` grid axes (for a time-first grid and `sensor_axes=1`: the initial
    condition on the spatial grid), flattened.

    **Initialisation.** Branch and trunk as [`pdeopt.models.MLP`][] (Glorot-normal weights,
    zero biases); `β = 0`.

    ??? cite "References"

        ```bibtex
        @article{lu2021learning,
            title={Learning nonlinear operators via DeepONet based on the universal
                   approximation theorem of operators},
            author={Lu, Lu and Jin, Pengzhan and Pang, Guofei and Zhang, Zhongqiang and
                    Karniadakis, George Em},
            journal={Nature Machine Intelligence},
            volume={3},
            number={3},
            pages={218--229},
            year={2021}
        }
        @inproceedings{negiar2023learning,
            title={Learning differentiable solvers for systems with hard constraints},
            author={N{\\'e}giar, Geoffrey and Mahoney, Michael W. and Krishnapriyan, Aditi S.},
            booktitle={International Conference on Learning Representations},
            year={2023}
        }
        ```
    """

    branch: MLP | None
    trunk: MLP
    bias: Float[Array, " out_channels"]
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    coordinate_channels: int = eqx.field(static=True)
    num_sensors: int | None = eqx.field(static=True)
    latent: int = eqx.field(static=True)
    sensor_axes: int = eqx.field(static=True)
    basis: bool = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        coordinate_channels: int,
        num_sensors: int | None = None,
        latent: int = 32,
        branch_width: int = 64,
        branch_depth: int = 3,
        trunk_width: int = 64,
        trunk_depth: int = 3,
        activation: Callable[[Array], Array] = jnp.tanh,
        trunk_final_activation: Callable[[Array], Array] | None = jnp.tanh,
        sensor_axes: int = 1,
        basis: bool = False,
        dtype: Any = None,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_channels`: channels of the grid input of `__call__`: `coordinate_channels`
            coordinates followed by the condition channels.
        - `out_channels`: number of outputs N (solution channels, or basis fields in basis
            mode).
        - `coordinate_channels`: number of leading input channels that are coordinates (the
            trunk's input size), e.g. 2 for `(t, x)`.
        - `num_sensors`: number of sensor points of the input function; the branch sees
            `num_sensors * (in_channels - coordinate_channels)` values. Required in operator
            mode; unused in basis mode. With `__call__` on a grid it must equal the number of
            points of the sensor slice (e.g. `nx`).
        - `latent`: the number p of terms per output in operator mode.
        - `branch_width`, `branch_depth`, `trunk_width`, `trunk_depth`: hidden sizes and
            layer counts of the two MLPs.
        - `activation`: hidden nonlinearity of both MLPs.
        - `trunk_final_activation`: applied to the trunk's outputs (the DeepONet convention,
            and in basis mode the basis head's final activation); `None` for the identity.
        - `sensor_axes`: how many leading grid axes `__call__` takes index 0 of to read the
            sensors.
        - `basis`: `True` for basis mode (trunk only).
        - `dtype`: dtype of all parameters, float32, float64 or bfloat16 (float16
            overflows in training); JAX's default float dtype if `None`.
        - `key`: PRNG key for the initialisation. (Keyword only.)
        """
        _check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            coordinate_channels=coordinate_channels,
            latent=latent,
        )
        if not isinstance(sensor_axes, int) or sensor_axes < 0:
            raise ValueError(f"`sensor_axes` must be an integer >= 0, got {sensor_axes!r}.")
        condition_channels = in_channels - coordinate_channels
        if not basis:
            if condition_channels < 1:
                raise ValueError(
                    f"DeepONet with `in_channels={in_channels}` and `coordinate_channels="
                    f"{coordinate_channels}` has no condition channel for the branch; use "
                    "`coordinate_channels < in_channels`, or `basis=True` for a trunk-only "
                    "basis network."
                )
            if num_sensors is None:
                raise ValueError(
                    "DeepONet needs `num_sensors` (the number of sensor points of the input "
                    "function, e.g. `num_sensors=nx`) unless `basis=True`."
                )
            _check_positive(num_sensors=num_sensors)
        dtype = _default_dtype(dtype)
        bkey, tkey = jr.split(key)
        size = out_channels if basis else latent * out_channels
        self.branch = (
            None
            if basis
            else MLP(
                num_sensors * condition_channels,
                size,
                branch_width,
                branch_depth,
                activation=activation,
                dtype=dtype,
                key=bkey,
            )
        )
        self.trunk = MLP(
            coordinate_channels,
            size,
            trunk_width,
            trunk_depth,
            activation=activation,
            final_activation=trunk_final_activation,
            dtype=dtype,
            key=tkey,
        )
        self.bias = jnp.zeros((out_channels,), dtype)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.coordinate_channels = coordinate_channels
        self.num_sensors = None if basis else num_sensors
        self.latent = latent
        self.sensor_axes = sensor_axes
        self.basis = basis

    def branch_coefficients(
        self, u: Float[ArrayLike, "..."]
    ) -> Float[Array, "latent out_channels"]:
        """**Arguments:**

        - `u`: one input function at the sensors: `num_sensors * (in_channels -
            coordinate_channels)` values in any shape (flattened in C order).

        **Returns:**

        The branch coefficients `b(u)`, shape `(latent, out_channels)`.
        """
        if self.branch is None:
            raise ValueError("A DeepONet with `basis=True` has no branch.")
        u = jnp.asarray(u, self.bias.dtype).reshape(-1)
        if u.shape[0] != self.branch.in_channels:
            raise ValueError(
                f"The branch expects {self.branch.in_channels} sensor values (num_sensors="
                f"{self.num_sensors} × {self.in_channels - self.coordinate_channels} condition "
                f"channels); got {u.shape[0]}."
            )
        return self.branch(u).reshape(self.latent, self.out_channels)

    def trunk_basis(
        self, y: Float[ArrayLike, "*points coordinate_channels"]
    ) -> Float[Array, "..."]:
        """**Arguments:**

        - `y`: query points `(*points, coordinate_channels)`.

        **Returns:**

        The trunk outputs: `(*points, out_channels)` in basis mode (the basis fields),
        `(*points, latent, out_channels)` in operator mode. Pass a single point `(dim,)` to
        [`pdeopt.discretizations.derivatives`][] for coordinate derivatives of every basis
        function.
        """
        t = self.trunk(y)
        return t if self.basis else t.reshape(*t.shape[:-1], self.latent, self.out_channels)

    def operator(
        self, u: Float[ArrayLike, "..."], y: Float[ArrayLike, "*points coordinate_channels"]
    ) -> Float[Array, "*points out_channels"]:
        """`G(u)(y)` for one input function `u` (sensor values, see `branch_coefficients`)
        at the query points `y` `(*points, coordinate_channels)`. In basis mode `u` is
        ignored and the basis fields are returned."""
        if self.basis:
            return self.trunk_basis(y)
        return jnp.einsum("kn,...kn->...n", self.branch_coefficients(u), self.trunk_basis(y)) + (
            self.bias
        )

    def cartesian(
        self,
        us: Float[ArrayLike, "batch ..."],
        y: Float[ArrayLike, "*points coordinate_channels"],
    ) -> Float[Array, "batch *points out_channels"]:
        """`G(u_b)(y_p)` for every input `u_b` of a batch and every point `y_p` of one point
        set: the branch once per input, the trunk once per point, one einsum.

        **Arguments:**

        - `us`: a batch of sensor values, leading axis the batch.
        - `y`: the shared query points `(*points, coordinate_channels)`.

        **Returns:**

        The array `(batch, *points, out_channels)`.
        """
        trunk = self.trunk_basis(y)
        us = jnp.asarray(us)
        if self.basis:
            return jnp.broadcast_to(trunk, (us.shape[0], *trunk.shape))
        coefficients = jax.vmap(self.branch_coefficients)(us)
        return jnp.einsum("bkn,...kn->b...n", coefficients, trunk) + self.bias

    def __call__(
        self, x: Float[ArrayLike, "*grid in_channels"]
    ) -> Float[Array, "*grid out_channels"]:
        """**Arguments:**

        - `x`: one sample's grid input `(*grid, in_channels)`: coordinates first, then the
            condition broadcast over the grid (see the class docstring).

        **Returns:**

        The array `(*grid, out_channels)` in the parameter dtype.
        """
        x = jnp.asarray(x, self.bias.dtype)
        if x.ndim < 2 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"DeepONet with in_channels={self.in_channels} expects a single grid sample "
                f"(*grid, {self.in_channels}); got shape {x.shape}."
            )
        coordinates = x[..., : self.coordinate_channels]
        if self.basis:
            return self.trunk_basis(coordinates)
        if self.sensor_axes > x.ndim - 1:
            raise ValueError(
                f"`sensor_axes={self.sensor_axes}` exceeds the {x.ndim - 1} grid axes of the "
                f"input of shape {x.shape}."
            )
        sensors = x[(0,) * self.sensor_axes][..., self.coordinate_channels :]
        if math.prod(sensors.shape[:-1]) != self.num_sensors:
            raise ValueError(
                f"DeepONet with num_sensors={self.num_sensors} got a sensor slice of shape "
                f"{sensors.shape[:-1]} from the grid input {x.shape}; set `num_sensors="
                f"{math.prod(sensors.shape[:-1])}` (e.g. `model.num_sensors=${{problem.nx}}`)."
            )
        return self.operator(sensors, coordinates)
