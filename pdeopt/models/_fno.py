"""Fourier neural operator (Li et al., 2021) and its spectral convolution."""

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._utils import _check_positive, _default_dtype, _identity


def _fft_dtype(dtype: Any) -> Any:
    """`_default_dtype` of a Fourier layer: float32 or float64, since `jnp.fft` and
    `lax.complex` compute in complex64 and complex128 only (float16 and bfloat16 fail)."""
    why = " by FNO and SpectralConv: their FFTs compute in complex64 or complex128 only"
    return _default_dtype(dtype, ("float32", "float64"), why)


def _uniform(key: PRNGKeyArray, shape: tuple[int, ...], dtype: Any, minval, maxval) -> Array:
    # Drawn flat and reshaped: `jr.uniform` with a multi-axis shape takes seconds to compile on
    # CPU (jax 0.10, partitionable threefry), a flat draw a fraction of a second.
    return jr.uniform(key, (math.prod(shape),), dtype, minval, maxval).reshape(shape)


def _check_modes(modes: Any) -> tuple[int, ...]:
    modes = tuple(modes)
    if len(modes) not in (1, 2, 3):
        raise ValueError(
            f"`modes={modes}` has length {len(modes)}; its length is the spatial dimension and "
            "must be 1, 2 or 3, e.g. `modes=(16,)`, `modes=(12, 12)` or `modes=(8, 8, 8)`."
        )
    for m in modes:
        _check_positive(modes=m)
    return modes


def _affine_unbatched(
    weight: Float[Array, "o i"], bias: Float[Array, " o"], x: Float[Array, "i p"]
) -> Float[Array, "o p"]:
    return weight @ x + bias[:, None]


@jax.custom_batching.custom_vmap
def _affine_batchable(weight, bias, x):
    return _affine_unbatched(weight, bias, x)


@_affine_batchable.def_vmap
def _affine_vmap(axis_size, in_batched, weight, bias, x):
    # JAX's batching rule for `weight @ x` with only `x` batched contracts `(b, i, p)` into
    # `(o, b, p)` and transposes that to `(b, o, p)`: a copy of the activations per layer, and
    # more in the backward pass (about a quarter of an FNO training step on CPU; see
    # docs/models.md). A batched matmul with the weight broadcast over the batch writes
    # `(b, o, p)` directly.
    weight_batched, bias_batched, x_batched = in_batched
    if weight_batched or bias_batched:  # e.g. a vmapped ensemble: no shared weight to reuse
        axes = tuple(0 if batched else None for batched in in_batched)
        return jax.vmap(_affine_unbatched, axes)(weight, bias, x), True
    if not x_batched:
        x = jnp.broadcast_to(x, (axis_size, *x.shape))
    weight = jnp.broadcast_to(weight, (axis_size, *weight.shape))
    return jnp.einsum("boi,bip->bop", weight, x) + bias[:, None], True


@jax.custom_jvp
def _affine(weight, bias, x):
    """`weight @ x + bias[:, None]`, with a batching rule that writes the batch first."""
    return _affine_batchable(weight, bias, x)


@_affine.defjvp
def _affine_jvp(primals, tangents):
    # `custom_vmap` alone cannot be linearised outside `vmap` (reverse mode fails on it); the
    # tangent map is written out in plain operations.
    weight, bias, x = primals
    dweight, dbias, dx = tangents
    return _affine(weight, bias, x), dweight @ x + weight @ dx + dbias[:, None]


class _Pointwise(eqx.Module):
    """A 1x1 convolution: the same affine map applied to every grid point of a channel-first
    array. Initialised like `eqx.nn.Linear` (uniform in ±1/sqrt(in_channels))."""

    weight: Float[Array, "out_channels in_channels"]
    bias: Float[Array, " out_channels"]

    def __init__(self, in_channels: int, out_channels: int, dtype: Any, *, key: PRNGKeyArray):
        wkey, bkey = jr.split(key)
        lim = 1 / math.sqrt(in_channels)
        self.weight = _uniform(wkey, (out_channels, in_channels), dtype, -lim, lim)
        self.bias = _uniform(bkey, (out_channels,), dtype, -lim, lim)

    def __call__(
        self, x: Float[Array, " in_channels *spatial"]
    ) -> Float[Array, " out_channels *spatial"]:
        # A plain (out, in) @ (in, points) matmul: contracting over several spatial axes at once
        # is about 3x slower in the backward pass on CPU.
        y = _affine(self.weight, self.bias, x.reshape(x.shape[0], -1))
        return y.reshape(y.shape[:1] + x.shape[1:])


def _retained(n: int, m: int, last: bool) -> tuple[int, int]:
    """How many non-negative and negative frequencies of a length-`n` axis are kept when `m`
    modes are requested, clipped to the frequencies the grid has. The last axis is a real FFT
    axis and keeps no negative frequencies."""
    if last:
        return min(m, n // 2 + 1), 0
    return min(m, (n + 1) // 2), min(m, n // 2)


class SpectralConv(eqx.Module):
    """N-D spectral convolution: a learned complex multiplier on the lowest Fourier modes.

    Acts on a channel-first array `(in_channels, *spatial)`: real FFT over the spatial axes,
    multiply the retained modes by a complex `(out_channels, in_channels)` matrix per mode,
    inverse FFT; every other mode is set to zero. Where few modes are retained on the last
    axis (at most 4 log2 n of its n points), its truncated real DFT and the inverse are
    matrix products instead of FFTs: the same result to rounding, and faster on CPU
    (measured in `docs/models.md`).

    On an axis other than the last, the retained modes are the frequencies `0, ..., m-1` and
    `-m, ..., -1` (as in the reference FNO); on the last (real-FFT) axis they are `0, ..., m-1`.
    The weights therefore hold `2^(d-1)` blocks of shape `(*modes, out_channels, in_channels)`,
    one per corner of the retained low-frequency region; they are stored concatenated along
    each non-last mode axis (non-negative block first, then negative), so `weight_real` has
    shape `(2 m_0, ..., 2 m_{d-2}, m_{d-1}, out_channels, in_channels)`. This layout lets the
    per-mode matrix products and their gradients read and write the weights in place; stored
    channel-first, they are transposed on every call (a third of a 3-D FNO training step on
    CPU).

    On a grid with fewer frequencies than `modes` the multiplier is truncated to the frequencies
    the grid has (those nearest zero), so the same weights run on any grid of size >= 1 and, for
    an input whose spectrum lies within the retained modes, give the same function at every
    resolution that resolves it (discretisation invariance).

    ??? cite "References"

        Li et al. (2021), *Fourier Neural Operator for Parametric Partial Differential
        Equations*; the entry is under [`pdeopt.models.FNO`][].
    """

    weight_real: Float[Array, "*modes out_channels in_channels"]
    weight_imag: Float[Array, "*modes out_channels in_channels"]
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    modes: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: Sequence[int],
        dtype: Any = None,
        *,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_channels`: number of input channels.
        - `out_channels`: number of output channels.
        - `modes`: number of retained Fourier modes per spatial axis; its length (1, 2 or 3) is
            the spatial dimension.
        - `dtype`: float32 or float64 (the FFTs have no half-precision form), the dtype of
            the weights; the complex weights are `weight_real + 1j * weight_imag`. Defaults
            to JAX's default float dtype (float64 when x64 is enabled, else float32).
        - `key`: PRNG key for the initialisation: real and imaginary parts uniform in
            `[0, 1/(in_channels * out_channels))`, as in the reference FNO. (Keyword only.)
        """
        _check_positive(in_channels=in_channels, out_channels=out_channels)
        modes = _check_modes(modes)
        dtype = _fft_dtype(dtype)
        # Drawn in the reference FNO's (in, out, *modes) order and moved to (*modes, out, in),
        # so that a key gives the same weights as with the reference layout.
        shape = (in_channels, out_channels, *(2 * m for m in modes[:-1]), modes[-1])
        order = (*range(2, len(shape)), 1, 0)
        scale = 1 / (in_channels * out_channels)
        rkey, ikey = jr.split(key)
        self.weight_real = _uniform(rkey, shape, dtype, 0.0, scale).transpose(order)
        self.weight_imag = _uniform(ikey, shape, dtype, 0.0, scale).transpose(order)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes = modes

    def __call__(
        self, x: Float[Array, " in_channels *spatial"]
    ) -> Float[Array, " out_channels *spatial"]:
        """**Arguments:**

        - `x`: a channel-first array `(in_channels, *spatial)` with `len(spatial) ==
            len(modes)`, treated as periodic on every spatial axis.

        **Returns:**

        The array `(out_channels, *spatial)`. The input is cast to the weights' (real) dtype
        first, so a float32 layer returns float32 for float64 input.
        """
        d = len(self.modes)
        if x.ndim != d + 1 or x.shape[0] != self.in_channels:
            raise ValueError(
                f"SpectralConv with in_channels={self.in_channels} and modes={self.modes} expects "
                f"a channel-first array of shape (in_channels, *spatial) = ({self.in_channels}, "
                f"{', '.join(['n'] * d)}); got shape {x.shape}."
            )
        x = jnp.asarray(x, self.weight_real.dtype)
        spatial = x.shape[1:]
        keep = [
            _retained(n, m, a == d)
            for a, (n, m) in enumerate(zip(spatial, self.modes, strict=True), 1)
        ]
        # rfftn, computed axis by axis so that the full-FFT axes only transform the modes
        # retained on the (last) real-FFT axis; likewise for irfftn below.
        n, retained = spatial[-1], keep[-1][0]
        dense = _dense_transform(n, retained)
        if dense:
            forward, inverse = _real_dft_matrices(n, retained)
            x_ft = _matmul(x, forward)
            x_ft = jax.lax.complex(x_ft[..., :retained], x_ft[..., retained:])
        else:
            x_ft = jnp.fft.rfft(x, axis=d)[..., :retained]
        for a in range(d - 1, 0, -1):
            x_ft = _take_modes(jnp.fft.fft(x_ft, axis=a), *keep[a - 1], axis=a)
        weight = jax.lax.complex(self.weight_real, self.weight_imag)
        for a, ((pos, neg), m) in enumerate(zip(keep, self.modes, strict=True), 1):
            size = m if a == d else 2 * m
            if pos + neg < size:  # fewer frequencies on the grid than `modes`
                weight = _take_modes(weight, pos, neg, axis=a - 1)
        y_ft = jnp.einsum("...oi,i...->o...", weight, x_ft)
        for a in range(1, d):
            y_ft = jnp.fft.ifft(_place_modes(y_ft, keep[a - 1][0], spatial[a - 1], axis=a), axis=a)
        if dense:
            y = _matmul(jnp.concatenate([y_ft.real, y_ft.imag], axis=-1), inverse)
        else:
            # irfft zero-pads the retained modes of the last axis to n // 2 + 1.
            y = jnp.fft.irfft(y_ft, n=n, axis=d)
        return y.astype(self.weight_real.dtype)


def _dense_transform(n: int, retained: int) -> bool:
    """Whether the last axis's truncated real DFT is cheaper as a matmul than as an FFT.

    A matmul against the `(n, 2 · retained)` DFT matrix costs `4 n · retained` flops per line,
    an FFT about `2.5 n log2 n`, but the matmul runs at several times the FFT's flop rate
    on CPU (multi-threaded, with no transposes around it). Measured on a 2-core CPU (FNO
    training steps, `docs/models.md`): the matmul is faster for 16 and 32 retained modes at
    n = 1024 and for 8 to 32 at n = 256, and slower for 64, hence `retained <= 4 log2 n`.
    """
    return retained <= _DENSE_DFT_FACTOR * math.log2(max(n, 2))


_DENSE_DFT_FACTOR = 4.0


@functools.cache
def _real_dft_matrices(n: int, retained: int) -> tuple[np.ndarray, np.ndarray]:
    """The real matrices of the truncated `rfft` and of its `irfft`, in float64.

    `x @ forward` is `[Re, Im]` of `rfft(x)[:retained]` (length `2 · retained`);
    `[Re, Im] @ inverse` is `irfft` of those modes zero-padded to `n // 2 + 1`, which counts
    the zero mode (and the Nyquist mode of an even `n`) once and ignores its imaginary part.
    """
    k = np.arange(retained)
    angle = 2 * np.pi * np.outer(np.arange(n), k) / n
    forward = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
    weight = np.where((k == 0) | (2 * k == n), 1.0, 2.0) / n
    inverse = np.concatenate([weight * np.cos(angle), -weight * np.sin(angle)], axis=1).T
    return forward, inverse


def _matmul(x: Array, matrix: np.ndarray) -> Array:
    # Full precision: a GPU would otherwise round float32 matmuls to TF32.
    return jnp.matmul(x, jnp.asarray(matrix, x.dtype), precision=jax.lax.Precision.HIGHEST)


def _take_modes(x: Array, pos: int, neg: int, axis: int) -> Array:
    """The first `pos` and last `neg` entries of `x` along `axis`, concatenated."""
    n = x.shape[axis]
    return jnp.concatenate(
        [
            jax.lax.slice_in_dim(x, 0, pos, axis=axis),
            jax.lax.slice_in_dim(x, n - neg, n, axis=axis),
        ],
        axis=axis,
    )


def _place_modes(y: Array, pos: int, n: int, axis: int) -> Array:
    """Inverse of `_take_modes`: insert zeros after the first `pos` entries up to length `n`."""
    zeros_shape = y.shape[:axis] + (n - y.shape[axis],) + y.shape[axis + 1 :]
    return jnp.concatenate(
        [
            jax.lax.slice_in_dim(y, 0, pos, axis=axis),
            jnp.zeros(zeros_shape, y.dtype),
            jax.lax.slice_in_dim(y, pos, y.shape[axis], axis=axis),
        ],
        axis=axis,
    )


class FNO(eqx.Module):
    """Fourier neural operator on a 1-D, 2-D or 3-D grid.

    Maps a channel-last input `(*spatial, in_channels)` (typically grid coordinates
    concatenated with an initial condition broadcast over the grid) to `(*spatial,
    out_channels)`, e.g. `out_channels` basis fields for a hard-constraint layer:

    1. lift: a pointwise linear map to `width` channels (or a two-layer pointwise MLP through
       `lifting_channels` channels);
    2. zero-pad the end of each spatial axis by `padding` points (for non-periodic data);
    3. `depth` Fourier layers `v <- activation(SpectralConv(v) + W v)` with `W` pointwise, the
       activation omitted after the last layer;
    4. remove the padding;
    5. project: pointwise linear to `projection_channels`, activation, pointwise linear to
       `out_channels`, then `final_activation` if given.

    All parameters are created in `dtype`. The input is cast to that dtype before the first
    layer, so a float32 model accepts float64 input and returns float32 output; cast the
    output yourself (e.g. to float64 before a hard-constraint solve) where needed.

    Single sample; batch with `jax.vmap`.

    ??? cite "References"

        ```bibtex
        @inproceedings{li2021fourier,
            title={Fourier Neural Operator for Parametric Partial Differential Equations},
            author={Li, Zongyi and Kovachki, Nikola and Azizzadenesheli, Kamyar and Liu,
                    Burigede and Bhattacharya, Kaushik and Stuart, Andrew and Anandkumar, Anima},
            booktitle={International Conference on Learning Representations},
            year={2021}
        }
        ```
    """

    lifting: tuple[_Pointwise, ...]
    spectral: tuple[SpectralConv, ...]
    skips: tuple[_Pointwise, ...]
    projection: tuple[_Pointwise, _Pointwise]
    activation: Callable[[Array], Array]
    final_activation: Callable[[Array], Array]
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    modes: tuple[int, ...] = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    padding: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int,
        modes: Sequence[int],
        depth: int = 4,
        *,
        lifting_channels: int | None = None,
        projection_channels: int = 128,
        activation: Callable[[Array], Array] = jax.nn.gelu,
        final_activation: Callable[[Array], Array] | None = None,
        padding: Sequence[int] | int = 0,
        dtype: Any = None,
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `in_channels`: channels of the input (trailing axis).
        - `out_channels`: channels of the output (trailing axis), e.g. the number of basis
            fields.
        - `width`: channels of the Fourier layers.
        - `modes`: Fourier modes retained per spatial axis; its length (1, 2 or 3) is the
            spatial dimension. See [`pdeopt.models.SpectralConv`][].
        - `depth`: number of Fourier layers.
        - `lifting_channels`: `None` for a pointwise linear lift to `width`; an integer for a
            pointwise two-layer lift `in_channels -> lifting_channels -> width` with
            `activation` in between.
        - `projection_channels`: hidden channels of the pointwise projection.
        - `activation`: nonlinearity of the Fourier layers, lifting and projection.
        - `final_activation`: applied to the output; `None` for the identity. (The PI-HC-MoE
            basis head uses `jax.nn.gelu`.)
        - `padding`: zero padding added at the end of each spatial axis before the Fourier
            layers and removed after them; one integer for all axes or one per axis. Use 0 on
            periodic axes.
        - `dtype`: float32 or float64 (the FFTs have no half-precision form), the dtype of all
            parameters. Defaults to JAX's default float dtype (float64 when x64 is enabled,
            else float32).
        - `key`: PRNG key for the initialisation. (Keyword only.)
        """
        _check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            width=width,
            depth=depth,
            projection_channels=projection_channels,
        )
        if lifting_channels is not None:
            _check_positive(lifting_channels=lifting_channels)
        modes = _check_modes(modes)
        d = len(modes)
        padding = (padding,) * d if isinstance(padding, int) else tuple(padding)
        if len(padding) != d or any(
            not isinstance(p, int) or isinstance(p, bool) or p < 0 for p in padding
        ):
            raise ValueError(
                f"`padding={padding}` must be a non-negative integer or {d} of them (one per "
                f"spatial axis of `modes={modes}`), e.g. `padding={(8,) * d}`."
            )
        dtype = _fft_dtype(dtype)

        lkey, skey, wkey, pkey = jr.split(key, 4)
        lift_sizes = (
            [in_channels, width]
            if lifting_channels is None
            else [in_channels, lifting_channels, width]
        )
        self.lifting = tuple(
            _Pointwise(i, o, dtype, key=k)
            for i, o, k in zip(
                lift_sizes[:-1], lift_sizes[1:], jr.split(lkey, len(lift_sizes) - 1), strict=True
            )
        )
        self.spectral = tuple(
            SpectralConv(width, width, modes, dtype, key=k) for k in jr.split(skey, depth)
        )
        self.skips = tuple(_Pointwise(width, width, dtype, key=k) for k in jr.split(wkey, depth))
        pkey1, pkey2 = jr.split(pkey)
        self.projection = (
            _Pointwise(width, projection_channels, dtype, key=pkey1),
            _Pointwise(projection_channels, out_channels, dtype, key=pkey2),
        )
        self.activation = activation
        self.final_activation = _identity if final_activation is None else final_activation
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.width = width
        self.modes = modes
        self.depth = depth
        self.padding = padding

    def __call__(
        self, x: Float[ArrayLike, "*spatial in_channels"]
    ) -> Float[Array, "*spatial out_channels"]:
        """**Arguments:**

        - `x`: the input `(*spatial, in_channels)` with `len(spatial) == len(modes)`; cast to
            the parameter dtype.

        **Returns:**

        The output `(*spatial, out_channels)` in the parameter dtype.
        """
        x = jnp.asarray(x, self.projection[-1].weight.dtype)
        d = len(self.modes)
        if x.ndim != d + 1 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"FNO with modes={self.modes} and in_channels={self.in_channels} expects a "
                f"single channel-last sample of shape (*spatial, in_channels) = "
                f"({', '.join(['n'] * d)}, {self.in_channels}); got shape {x.shape}. Batch "
                "with `jax.vmap`."
            )
        spatial = x.shape[:-1]
        x = jnp.moveaxis(x, -1, 0)
        for i, layer in enumerate(self.lifting):
            x = layer(x)
            if i < len(self.lifting) - 1:
                x = self.activation(x)
        if any(self.padding):
            x = jnp.pad(x, [(0, 0)] + [(0, p) for p in self.padding])
        for i, (spectral, skip) in enumerate(zip(self.spectral, self.skips, strict=True)):
            x = spectral(x) + skip(x)
            if i < self.depth - 1:
                x = self.activation(x)
        if any(self.padding):
            x = x[(slice(None), *(slice(0, n) for n in spatial))]
        x = self.activation(self.projection[0](x))
        x = self.final_activation(self.projection[1](x))
        return jnp.moveaxis(x, 0, -1)
