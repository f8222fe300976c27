"""Fourier pseudo-spectral operators on periodic uniform grids (1-D, 2-D, 3-D).

Every operator acts on the *trailing* dimensions of a field, one per axis of the `Grid`
(leading dimensions are batch dimensions, e.g. time or a stack of basis fields), and is built
on real FFTs (`jnp.fft.rfftn`), so it is linear, real-in/real-out, and works under `jit`,
`vmap`, `grad` and in float64. Wavenumbers and masks are computed in NumPy float64 at trace
time from the static axes.

Conventions, for an axis of period `L = hi - lo` with `n` points:

- the angular wavenumber of mode `m` is `k = 2π m / L`, with `m` in `fftfreq(n) * n`;
- for even `n` the Nyquist mode `m = n/2` is dropped by odd-order derivatives (its derivative
  vanishes at the grid points, and keeping it would make the result non-real), and kept by
  even-order ones;
- the point offset (vertex or cell centring) does not matter: spectral derivatives of a
  periodic grid function are translation invariant.
"""

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from ._grid import Axis, Grid


def _check_periodic(grid: Grid, name: str) -> None:
    if not isinstance(grid, Grid):
        raise ValueError(f"`{name}(grid=...)` must be a `Grid`, got {type(grid).__name__}.")
    if grid.ndim > 3:
        raise ValueError(f"`{name}` supports 1-D, 2-D and 3-D grids; got {grid.ndim} axes.")
    for i, axis in enumerate(grid.axes):
        if not axis.periodic:
            raise ValueError(
                f"`{name}`: axis {i} of the grid is not periodic; spectral operators need "
                "`Axis(..., periodic=True)` (use `derivative` for non-periodic axes)."
            )


def _as_field(u, grid: Grid, name: str):
    u = jnp.asarray(u)
    if not jnp.issubdtype(u.dtype, jnp.inexact):
        u = u.astype(float)
    if jnp.iscomplexobj(u):
        raise ValueError(f"`{name}` takes real fields; got dtype {u.dtype}.")
    if u.ndim < grid.ndim or u.shape[u.ndim - grid.ndim :] != grid.shape:
        raise ValueError(
            f"`{name}`: the trailing dimensions of `u` (shape {u.shape}) must be the grid "
            f"shape {grid.shape}."
        )
    return u


def _axes(grid: Grid) -> tuple[int, ...]:
    return tuple(range(-grid.ndim, 0))


def _rfftn(u, grid: Grid):
    return jnp.fft.rfftn(u, axes=_axes(grid))


def _irfftn(u_hat, grid: Grid):
    return jnp.fft.irfftn(u_hat, s=grid.shape, axes=_axes(grid))


def _modes(n: int, real: bool) -> np.ndarray:
    """Integer mode numbers of a length-`n` (r)FFT."""
    return np.fft.rfftfreq(n, 1.0 / n) if real else np.fft.fftfreq(n, 1.0 / n)


def wavenumbers(grid: Grid, *, nyquist: bool = True) -> tuple[Float[np.ndarray, "..."], ...]:
    """Angular wavenumbers `k_d = 2π m_d / L_d` in the layout of `rfftn` over the grid.

    **Arguments:**

    - `grid`: a `Grid` of periodic axes.
    - `nyquist`: keep the Nyquist mode of even-length axes (True) or set its wavenumber to
        zero (False, as used for odd-order derivatives).

    **Returns:**

    One float64 NumPy array per axis, each broadcastable against the spectrum of shape
    `(n_1, ..., n_{d-1}, n_d // 2 + 1)`.
    """
    _check_periodic(grid, "wavenumbers")
    out = []
    for i, axis in enumerate(grid.axes):
        m = _modes(axis.n, real=i == grid.ndim - 1)
        if not nyquist and axis.n % 2 == 0:
            m = np.where(np.abs(m) == axis.n // 2, 0.0, m)
        k = 2 * np.pi * m / (axis.hi - axis.lo)
        shape = [1] * grid.ndim
        shape[i] = k.size
        out.append(k.reshape(shape))
    return tuple(out)


def _k_squared(grid: Grid) -> np.ndarray:
    return sum(k**2 for k in wavenumbers(grid))


def _multiply(u_hat, symbol):
    """`u_hat * symbol` with the symbol cast to `u_hat`'s precision."""
    return u_hat * jnp.asarray(symbol, dtype=u_hat.dtype)


def _apply_symbol(u, grid: Grid, symbol, name: str):
    """The Fourier multiplier `symbol` applied to the periodic field(s) `u` (checked for `name`)."""
    _check_periodic(grid, name)
    u = _as_field(u, grid, name)
    return _irfftn(_multiply(_rfftn(u, grid), symbol), grid)


def spectral_derivative(
    u: Float[ArrayLike, "..."], axis: Axis, order: int = 1, *, dim: int = -1
) -> Float[Array, "..."]:
    """The `order`-th derivative of a periodic field along one dimension, by FFT.

    Exact (to rounding) for trigonometric polynomials with modes `|m| < n/2`; for smooth
    periodic functions the error decays faster than any power of `1/n`.

    **Arguments:**

    - `u`: the field(s), with `axis.n` points along dimension `dim`.
    - `axis`: the periodic axis that dimension `dim` samples.
    - `order`: the derivative order, a positive int.
    - `dim`: the array dimension to differentiate along (keyword-only).

    **Returns:**

    An array of the same shape and (real) dtype as `u`.
    """
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise ValueError(f"`spectral_derivative(order={order!r})`: use a positive int order.")
    if not isinstance(axis, Axis):
        raise ValueError(
            f"`spectral_derivative(axis=...)` must be an `Axis`, got {type(axis).__name__}."
        )
    grid = Grid((axis,))
    u = jnp.asarray(u)
    if not -u.ndim <= dim < u.ndim:
        raise ValueError(f"`spectral_derivative(dim={dim})` is out of range for ndim={u.ndim}.")
    u = jnp.moveaxis(u, dim, -1)
    u = _as_field(u, grid, "spectral_derivative")
    (k,) = wavenumbers(grid, nyquist=order % 2 == 0)
    out = _irfftn(_multiply(_rfftn(u, grid), (1j * k) ** order), grid)
    return jnp.moveaxis(out, -1, dim)


def spectral_gradient(u: Float[ArrayLike, "..."], grid: Grid) -> tuple[Float[Array, "..."], ...]:
    """The gradient `(∂_1 u, ..., ∂_d u)` of a periodic field over the grid's trailing axes.

    **Arguments:**

    - `u`: the field(s); the trailing `grid.ndim` dimensions have the grid's shape.
    - `grid`: a `Grid` of periodic axes.

    **Returns:**

    A tuple of `grid.ndim` arrays, each of the shape of `u`.
    """
    _check_periodic(grid, "spectral_gradient")
    u = _as_field(u, grid, "spectral_gradient")
    u_hat = _rfftn(u, grid)
    ks = wavenumbers(grid, nyquist=False)
    return tuple(_irfftn(_multiply(u_hat, 1j * k), grid) for k in ks)


def spectral_laplacian(u: Float[ArrayLike, "..."], grid: Grid) -> Float[Array, "..."]:
    """The Laplacian `Σ_d ∂_d² u` of a periodic field over the grid's trailing axes.

    **Arguments:**

    - `u`: the field(s); the trailing `grid.ndim` dimensions have the grid's shape.
    - `grid`: a `Grid` of periodic axes.

    **Returns:**

    An array of the shape of `u`.
    """
    return _apply_symbol(u, grid, -_k_squared(grid), "spectral_laplacian")


def _inverse_k_squared(grid: Grid) -> np.ndarray:
    """`1/|k|²`, with the mean mode mapped to zero."""
    k2 = _k_squared(grid)
    safe = np.where(k2 == 0, 1.0, k2)
    return np.where(k2 == 0, 0.0, 1.0 / safe)


def inverse_laplacian(u: Float[ArrayLike, "..."], grid: Grid) -> Float[Array, "..."]:
    """The zero-mean solution `ψ` of `Δψ = u` on the periodic grid.

    The Poisson problem is solvable only for zero-mean `u`; the mean of `u` is ignored
    (projected out), and the returned `ψ` has zero mean.

    **Arguments:**

    - `u`: the field(s); the trailing `grid.ndim` dimensions have the grid's shape.
    - `grid`: a `Grid` of periodic axes.

    **Returns:**

    An array of the shape of `u`.
    """
    return _apply_symbol(u, grid, -_inverse_k_squared(grid), "inverse_laplacian")


def velocity_from_vorticity(
    w: Float[ArrayLike, "*batch nx ny"], grid: Grid
) -> tuple[Float[Array, "*batch nx ny"], Float[Array, "*batch nx ny"]]:
    """The 2-D incompressible velocity of a periodic vorticity field (Biot–Savart).

    With the stream function `ψ` solving `Δψ = -w` (zero mean), `v_x = ∂_y ψ` and
    `v_y = -∂_x ψ`; in Fourier space `v_x = irfft(ŵ · i k_y / |k|²)` and
    `v_y = irfft(-ŵ · i k_x / |k|²)`. The result is divergence-free and its curl
    `∂_x v_y - ∂_y v_x` is `w` minus its mean (and minus its Nyquist modes).

    **Arguments:**

    - `w`: the vorticity; the trailing two dimensions are the grid's `(x, y)`.
    - `grid`: a 2-D `Grid` of periodic axes, `x` first.

    **Returns:**

    `(v_x, v_y)`, each of the shape of `w`.
    """
    _check_periodic(grid, "velocity_from_vorticity")
    if grid.ndim != 2:
        raise ValueError(
            f"`velocity_from_vorticity` needs a 2-D grid (x, y); got {grid.ndim} axes."
        )
    w = _as_field(w, grid, "velocity_from_vorticity")
    w_hat = _rfftn(w, grid)
    kx, ky = wavenumbers(grid, nyquist=False)
    inv = _inverse_k_squared(grid)
    v_x = _irfftn(_multiply(w_hat, 1j * ky * inv), grid)
    v_y = _irfftn(_multiply(w_hat, -1j * kx * inv), grid)
    return v_x, v_y


def dealias_mask(
    grid: Grid, fraction: float = 2 / 3, *, radial: bool = False
) -> Bool[np.ndarray, "..."]:
    """Which modes of the `rfftn` spectrum survive dealiasing (Orszag's 2/3 rule).

    Mode `m` of an axis with `n` points is kept when `|m| < fraction · n/2`. With
    `radial=True` the kept set is the ellipsoid `Σ_d (m_d / (n_d/2))² < fraction²` instead of
    the box (for a square unit grid: `|k|² < (fraction · π n)²`, the rule of the Navier–Stokes
    data recipe). For a quadratic nonlinearity, `fraction = 2/3` confines every alias to modes
    that the mask removes.

    **Arguments:**

    - `grid`: a `Grid` of periodic axes.
    - `fraction`: the kept fraction of the highest resolved mode, in `(0, 1]`.
    - `radial`: ellipsoidal (True) or box (False) mask (keyword-only).

    **Returns:**

    A boolean NumPy array of the spectrum's shape `(n_1, ..., n_d // 2 + 1)`.

    ??? cite "References"

        ```bibtex
        @article{orszag1971elimination,
            author={Orszag, Steven A.},
            title={On the elimination of aliasing in finite-difference schemes by filtering
                   high-wavenumber components},
            journal={Journal of the Atmospheric Sciences},
            volume={28},
            number={6},
            pages={1074--1074},
            year={1971},
        }
        ```
    """
    _check_periodic(grid, "dealias_mask")
    if isinstance(fraction, int | float) and not 0 < fraction <= 1:
        raise ValueError(f"`dealias_mask(fraction={fraction})`: use a fraction in (0, 1].")
    scaled = []
    for i, axis in enumerate(grid.axes):
        m = _modes(axis.n, real=i == grid.ndim - 1) / (axis.n / 2)
        shape = [1] * grid.ndim
        shape[i] = m.size
        scaled.append(m.reshape(shape))
    if radial:
        return sum(s**2 for s in scaled) < fraction**2
    return np.logical_and.reduce(np.broadcast_arrays(*(np.abs(s) < fraction for s in scaled)))


def spectral_resample(
    u: Float[ArrayLike, "..."], grid: Grid, shape: tuple[int, ...]
) -> Float[Array, "..."]:
    """Resample a periodic field to another number of points per axis by Fourier padding.

    Upsampling (`shape[d] >= n_d`) evaluates the trigonometric interpolant of `u` on the finer
    grid: the result is exact for band-limited fields, and for even `n_d` the Nyquist
    coefficient is split evenly between `±n_d/2` (the symmetric interpolant). Downsampling
    keeps the modes `|m| < shape[d]/2` (a low-pass projection) and samples them on the coarser
    grid. Axes are resampled one after another. The new grid covers the same period with the
    same centring: points `lo + i L/m` (vertex) or the new cell centres `lo + (i + 1/2) L/m`
    (cell; the half-cell shift is applied in Fourier space).

    **Arguments:**

    - `u`: the field(s); the trailing `grid.ndim` dimensions have the grid's shape.
    - `grid`: a `Grid` of periodic axes describing `u`.
    - `shape`: the new number of points per axis.

    **Returns:**

    An array of shape `(*batch, *shape)`.
    """
    _check_periodic(grid, "spectral_resample")
    shape = tuple(shape)
    if len(shape) != grid.ndim or not all(isinstance(s, int) and s >= 2 for s in shape):
        raise ValueError(
            f"`spectral_resample(shape={shape})` needs one int >= 2 per grid axis "
            f"({grid.ndim} axes)."
        )
    u = _as_field(u, grid, "spectral_resample")
    for i, (axis, m) in enumerate(zip(grid.axes, shape, strict=True)):
        u = _resample_last(jnp.moveaxis(u, i - grid.ndim, -1), axis, m)
        u = jnp.moveaxis(u, -1, i - grid.ndim)
    return u


def _resample_last(u, axis: Axis, m: int):
    n = axis.n
    if m == n:
        return u
    u_hat = jnp.fft.rfft(u, axis=-1) * (m / n)
    keep = min(n, m) // 2 + 1
    u_hat = u_hat[..., :keep]
    # The mode at index n/2 (even n) or m/2 (even m), whichever is smaller, is a Nyquist
    # mode of one of the two grids: split it (upsampling) or drop it (downsampling).
    edge = min(n, m)
    if edge % 2 == 0:
        scale = 0.5 if m > n else 0.0
        u_hat = u_hat.at[..., edge // 2].multiply(scale)
    if axis.centering == "cell":
        # Grid points sit at lo + (i + 1/2) h: shift by half an old cell, evaluate, and shift
        # back by half a new cell, so that the result lives on the new cell centres.
        k = np.arange(keep)
        phase = np.exp(2j * np.pi * k * (0.5 / n - 0.5 / m) * -1.0)
        u_hat = u_hat * jnp.asarray(phase, dtype=u_hat.dtype)
    pad = [(0, 0)] * (u.ndim - 1) + [(0, m // 2 + 1 - keep)]
    return jnp.fft.irfft(jnp.pad(u_hat, pad), n=m, axis=-1)
