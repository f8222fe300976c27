"""Coordinate networks for PINNs: the MLP, the modified MLP of Wang, Teng & Perdikaris
(2021), and random Fourier-feature embeddings (Tancik et al., 2020)."""

import abc
import functools
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._utils import _check_positive, _default_dtype, _identity


@functools.partial(jax.jit, static_argnums=(1, 2))
def _dense_stack(
    key: PRNGKeyArray, shapes: tuple[tuple[int, int], ...], dtype: Any
) -> list[tuple[Array, Array]]:
    """Glorot-normal weights (variance `2 / (fan_in + fan_out)`) and zero biases for dense
    layers of the given `(fan_in, fan_out)` shapes, sliced from one flat draw, jitted:
    op-by-op initialisation compiles every small op separately, which dominates model
    construction time on CPU."""
    flat = jr.normal(key, (sum(i * o for i, o in shapes),), dtype)
    out, start = [], 0
    for fan_in, fan_out in shapes:
        std = math.sqrt(2 / (fan_in + fan_out))
        weight = std * flat[start : start + fan_in * fan_out].reshape(fan_in, fan_out)
        out.append((weight, jnp.zeros((fan_out,), dtype)))
        start += fan_in * fan_out
    return out


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def _gaussian_matrix(key, rows: int, cols: int, scale, dtype: Any) -> Array:
    return scale * jr.normal(key, (rows * cols,), dtype).reshape(rows, cols)


class _Dense(eqx.Module):
    """`x @ weight + bias` on a single vector."""

    weight: Float[Array, "in_features out_features"]
    bias: Float[Array, " out_features"]

    def __call__(self, x: Float[Array, " in_features"]) -> Float[Array, " out_features"]:
        return x @ self.weight + self.bias


def _dense_layers(key, shapes, dtype) -> list[_Dense]:
    return [_Dense(w, b) for w, b in _dense_stack(key, tuple(shapes), jnp.dtype(dtype))]


class FourierFeatures(eqx.Module):
    """Random Fourier-feature embedding `x -> [cos(2π B x), sin(2π B x)]`.

    `B` has shape `(num_features, in_features)` with entries drawn once from N(0, σ²). It is
    not trained: it is wrapped in `jax.lax.stop_gradient` where it is used, so its gradient is
    zero (an optimiser still sees the leaf; its updates are zero with plain gradient methods
    without weight decay).

    The scale σ sets the bandwidth the network can fit easily: larger σ, higher frequencies.
    Inputs are best normalised to about `[0, 1]` or `[-1, 1]`.

    ??? cite "References"

        ```bibtex
        @inproceedings{tancik2020fourier,
            title={Fourier Features Let Networks Learn High Frequency Functions in Low
                   Dimensional Domains},
            author={Tancik, Matthew and Srinivasan, Pratul P. and Mildenhall, Ben and
                    Fridovich-Keil, Sara and Raghavan, Nithin and Singhal, Utkarsh and
                    Ramamoorthi, Ravi and Barron, Jonathan T. and Ng, Ren},
            booktitle={Advances in Neural Information Processing Systems},
            year={2020}
        }
        ```
    """

    matrix: Float[Array, "num_features in_features"]
    scale: float = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        num_features: int,
        scale: float = 1.0,
        dtype: Any = None,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_features`: length of the input vector.
        - `num_features`: number of random frequencies; the embedding has `2 * num_features`
            entries.
        - `scale`: standard deviation σ of the Gaussian entries of `B`.
        - `dtype`: dtype of `B`, float32, float64 or bfloat16; JAX's default float dtype if
            `None`.
        - `key`: PRNG key for `B`. (Keyword only.)
        """
        _check_positive(in_features=in_features, num_features=num_features)
        dtype = _default_dtype(dtype)
        self.matrix = _gaussian_matrix(key, num_features, in_features, scale, dtype)
        self.scale = scale

    def __check_init__(self):
        if isinstance(self.scale, (int, float)) and not self.scale > 0:
            raise ValueError(f"FourierFeatures needs `scale > 0`, got `scale={self.scale}`.")

    def __call__(self, x: Float[Array, " in_features"]) -> Float[Array, " embedding"]:
        """**Arguments:**

        - `x`: one input vector.

        **Returns:**

        `[cos(2π B x), sin(2π B x)]`, cosines first: `embedding = 2 * num_features` entries.
        """
        proj = 2 * jnp.pi * (jax.lax.stop_gradient(self.matrix) @ x)
        return jnp.concatenate([jnp.cos(proj), jnp.sin(proj)])


class AbstractMLP(eqx.Module):
    """A coordinate network applied pointwise: the same map `R^in_channels -> R^out_channels`
    at every point of any leading axes.

    Subclasses provide `_point`, the map on one vector. `__call__` checks and casts the
    input, flattens the leading axes and `vmap`s `_point` over them, so one model serves as a
    PINN on a point set `(num_points, in_channels)`, on a single point `(in_channels,)`, and on
    a grid `(*grid, in_channels)` such as `AbstractPDE.inputs(condition)` (coordinates plus the
    broadcast condition, giving `(*grid, out_channels)`).
    """

    in_channels: eqx.AbstractVar[int]
    out_channels: eqx.AbstractVar[int]
    embedding: eqx.AbstractVar[FourierFeatures | None]
    output: eqx.AbstractVar[_Dense]
    final_activation: eqx.AbstractVar[Callable[[Array], Array]]

    @abc.abstractmethod
    def _hidden(self, x: Float[Array, " features"]) -> Float[Array, " width"]:
        """The last hidden state for one (embedded) input vector."""

    @property
    def dtype(self) -> Any:
        """The parameter dtype."""
        return self.output.weight.dtype

    def _point(self, x: Float[Array, " in_channels"]) -> Float[Array, " out_channels"]:
        if self.embedding is not None:
            x = self.embedding(x)
        return self.final_activation(self.output(self._hidden(x)))

    def __call__(
        self, x: Float[ArrayLike, "*points in_channels"]
    ) -> Float[Array, "*points out_channels"]:
        """**Arguments:**

        - `x`: one input vector `(in_channels,)`, or any array `(*points, in_channels)`; the
            network is applied to each vector along the last axis independently. Cast to the
            parameter dtype.

        **Returns:**

        The array `(*points, out_channels)` in the parameter dtype.
        """
        x = jnp.asarray(x, self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} with in_channels={self.in_channels} expects an array "
                f"of shape (..., {self.in_channels}) (channels last); got shape {x.shape}."
            )
        points = x.shape[:-1]
        out = jax.vmap(self._point)(x.reshape(-1, self.in_channels))
        return out.reshape(*points, self.out_channels)


def _init_layers(
    in_channels: int,
    out_channels: int,
    width: int,
    depth: int,
    num_fourier_features: int,
    fourier_scale: float,
    dtype: Any,
    num_encoders: int,
    key: PRNGKeyArray,
) -> tuple[FourierFeatures | None, list[_Dense], tuple[_Dense, ...], _Dense]:
    """The parameters of an `MLP` (`num_encoders=0`) or a `ModifiedMLP` (`num_encoders=2`),
    after checking the arguments the two share: the embedding (or `None`), `num_encoders`
    layers from the embedded input to `width`, the `depth` hidden layers and the output layer,
    all dense layers from one draw."""
    _check_positive(in_channels=in_channels, out_channels=out_channels, width=width, depth=depth)
    if not isinstance(num_fourier_features, int) or num_fourier_features < 0:
        raise ValueError(
            "`num_fourier_features` must be an integer >= 0 (0: no embedding), got "
            f"`num_fourier_features={num_fourier_features!r}`."
        )
    dtype = _default_dtype(dtype)
    ekey, lkey = jr.split(key)
    if num_fourier_features == 0:
        embedding, features = None, in_channels
    else:
        embedding = FourierFeatures(
            in_channels, num_fourier_features, fourier_scale, dtype, key=ekey
        )
        features = 2 * num_fourier_features
    sizes = [features] + [width] * depth + [out_channels]
    shapes = [(features, width)] * num_encoders + list(zip(sizes[:-1], sizes[1:]))
    *layers, output = _dense_layers(lkey, shapes, dtype)
    return embedding, layers[:num_encoders], tuple(layers[num_encoders:]), output


class MLP(AbstractMLP):
    """Multilayer perceptron, optionally with a random Fourier-feature embedding.

    `h_1 = φ(e(x) W_1 + b_1)`, `h_{k+1} = φ(h_k W_{k+1} + b_{k+1})` for `k < depth`,
    output `ψ(h_depth W + b)`, where `e` is the Fourier-feature embedding (or the identity),
    φ the activation and ψ the final activation. Applied pointwise over leading axes (see
    [`pdeopt.models.AbstractMLP`][]); batch samples with `jax.vmap`.

    ??? cite "References"

        ```bibtex
        @article{raissi2019physics,
            title={Physics-informed neural networks: A deep learning framework for solving
                   forward and inverse problems involving nonlinear partial differential
                   equations},
            author={Raissi, Maziar and Perdikaris, Paris and Karniadakis, George E.},
            journal={Journal of Computational Physics},
            volume={378},
            pages={686--707},
            year={2019}
        }
        ```
    """

    layers: tuple[_Dense, ...]
    output: _Dense
    embedding: FourierFeatures | None
    activation: Callable[[Array], Array]
    final_activation: Callable[[Array], Array]
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        depth: int = 4,
        *,
        activation: Callable[[Array], Array] = jnp.tanh,
        final_activation: Callable[[Array], Array] | None = None,
        num_fourier_features: int = 0,
        fourier_scale: float = 1.0,
        dtype: Any = None,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_channels`: length of the input vector (e.g. 2 for `(t, x)`).
        - `out_channels`: length of the output vector, e.g. the number of basis functions.
        - `width`: hidden units per layer.
        - `depth`: number of hidden layers (>= 1).
        - `activation`: the hidden nonlinearity, e.g. `jnp.tanh` (default), `jax.nn.gelu`,
            `jax.nn.silu` or `jnp.sin`.
        - `final_activation`: applied to the output; `None` for the identity.
        - `num_fourier_features`: `0` for none; `m > 0` to embed the input by
            [`pdeopt.models.FourierFeatures`][] with `m` frequencies first (the first layer then
            sees `2 m` features).
        - `fourier_scale`: standard deviation σ of the Fourier-feature matrix.
        - `dtype`: dtype of all parameters, float32, float64 or bfloat16 (float16
            overflows in training); JAX's default float dtype if `None`.
        - `key`: PRNG key for the initialisation: Glorot-normal weights (variance
            `2 / (fan_in + fan_out)`), zero biases; the Fourier matrix from N(0, σ²).
            (Keyword only.)
        """
        self.embedding, _, self.layers, self.output = _init_layers(
            in_channels,
            out_channels,
            width,
            depth,
            num_fourier_features,
            fourier_scale,
            dtype,
            num_encoders=0,
            key=key,
        )
        self.activation = activation
        self.final_activation = _identity if final_activation is None else final_activation
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.width = width
        self.depth = depth

    def _hidden(self, x):
        for layer in self.layers:
            x = self.activation(layer(x))
        return x


class ModifiedMLP(AbstractMLP):
    """The modified MLP of Wang, Teng & Perdikaris (2021): hidden layers gated between two
    encodings of the input.

    With `X` the (optionally Fourier-embedded) input and φ the activation:

    - `U = φ(X W¹ + b¹)`, `V = φ(X W² + b²)` (the two encoders);
    - `H¹ = φ(X W^{z,1} + b^{z,1})`;
    - `Z^k = φ(H^k W^{z,k+1} + b^{z,k+1})` and `H^{k+1} = (1 - Z^k) ⊙ U + Z^k ⊙ V` for
        `k = 1, ..., depth - 1`;
    - output `ψ(H^{depth} W + b)` with ψ the final activation.

    So `depth` counts the hidden states `H^k` as for [`pdeopt.models.MLP`][] (the paper's L is
    `depth - 1`), and the model has the MLP's parameters plus the two encoders.
    Applied pointwise over leading axes (see [`pdeopt.models.AbstractMLP`][]).

    ??? cite "References"

        ```bibtex
        @article{wang2021understanding,
            title={Understanding and Mitigating Gradient Flow Pathologies in
                   Physics-Informed Neural Networks},
            author={Wang, Sifan and Teng, Yujun and Perdikaris, Paris},
            journal={SIAM Journal on Scientific Computing},
            volume={43},
            number={5},
            pages={A3055--A3081},
            year={2021}
        }
        ```
    """

    encoder_u: _Dense
    encoder_v: _Dense
    layers: tuple[_Dense, ...]
    output: _Dense
    embedding: FourierFeatures | None
    activation: Callable[[Array], Array]
    final_activation: Callable[[Array], Array]
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        depth: int = 4,
        *,
        activation: Callable[[Array], Array] = jnp.tanh,
        final_activation: Callable[[Array], Array] | None = None,
        num_fourier_features: int = 0,
        fourier_scale: float = 1.0,
        dtype: Any = None,
        key: PRNGKeyArray,
    ):
        """**Arguments:** as for [`pdeopt.models.MLP`][]; the encoders `W¹`, `W²` are
        initialised like the other layers (Glorot-normal weights, zero biases).
        """
        self.embedding, (self.encoder_u, self.encoder_v), self.layers, self.output = _init_layers(
            in_channels,
            out_channels,
            width,
            depth,
            num_fourier_features,
            fourier_scale,
            dtype,
            num_encoders=2,
            key=key,
        )
        self.activation = activation
        self.final_activation = _identity if final_activation is None else final_activation
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.width = width
        self.depth = depth

    def _hidden(self, x):
        u = self.activation(self.encoder_u(x))
        v = self.activation(self.encoder_v(x))
        h = self.activation(self.layers[0](x))
        for layer in self.layers[1:]:
            z = self.activation(layer(h))
            h = (1 - z) * u + z * v
        return h
