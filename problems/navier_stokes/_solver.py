"""Gaussian-random-field initial conditions and the pseudo-spectral reference solver."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from pdeopt.discretizations import Axis, Grid, dealias_mask, spectral_resample, wavenumbers

from ._pde import NavierStokes2D

LENGTH_SCALE = 0.8
IC_RESOLUTION = 64


def periodic_kernel(
    dx: Float[np.ndarray, "..."], dy: Float[np.ndarray, "..."], length_scale: float
) -> Float[np.ndarray, "..."]:
    """k(x, y) = exp(−(2/ℓ²) Σ_d (sin(π (x_d − y_d)) / 2)²), the period-1 kernel of the recipe.

    Equal to exp(−Σ_d sin²(π Δ_d) / (2ℓ²)): a product of 1-D periodic ("exp-sine-squared")
    kernels, with unit variance.
    """
    return np.exp(
        -(2 / length_scale**2) * ((np.sin(np.pi * dx) / 2) ** 2 + (np.sin(np.pi * dy) / 2) ** 2)
    )


def grf_covariance(n: int, length_scale: float = LENGTH_SCALE) -> Float[np.ndarray, "n*n n*n"]:
    """The dense covariance of the field on the `n × n` grid `(i/n, j/n)` (row-major), float64.

    For tests and small grids: the sampler never forms it.
    """
    x = np.arange(n) / n
    xx, yy = (a.ravel() for a in np.meshgrid(x, x, indexing="ij"))
    return periodic_kernel(xx[:, None] - xx[None, :], yy[:, None] - yy[None, :], length_scale)


def grf_spectrum(n: int, length_scale: float = LENGTH_SCALE) -> Float[np.ndarray, "n n"]:
    """Eigenvalues of the covariance on the `n × n` periodic grid: the FFT of its first row.

    The kernel is stationary and periodic with the grid's period, so its covariance matrix is
    block-circulant and diagonalised by the 2-D DFT; its eigenvalues are `fft2(k(x_i, 0))`
    (real, since k is even; rounding negatives are clipped to zero).
    """
    x = np.arange(n) / n
    row = periodic_kernel(x[:, None], x[None, :], length_scale)
    return np.maximum(np.fft.fft2(row).real, 0.0)


def sample_initial_conditions(
    num: int,
    n: int,
    *,
    key: PRNGKeyArray,
    length_scale: float = LENGTH_SCALE,
    ic_resolution: int = IC_RESOLUTION,
) -> Float[Array, "num n n"]:
    """Zero-mean Gaussian-random-field vorticities, sampled coarse and resampled spectrally.

    Follows the data recipe of the PI-HC-MoE paper: a centred Gaussian process with the
    periodic kernel `periodic_kernel` (ℓ = 0.8, unit variance) is sampled on the
    `ic_resolution²` grid (64²), its spatial mean is subtracted, and it is Fourier-resampled
    to `n²` (`spectral_resample`; upsampling is exact trigonometric interpolation).

    Sampling is exact for the discrete covariance C: C is block-circulant with eigenvalues
    λ = `grf_spectrum`, so `C^{1/2} z = ifft2(√λ · fft2(z))` for white noise z ~ N(0, I) has
    covariance C. This is the spectral form of the SVD square root the reference generator
    uses (same distribution, O(n² log n) instead of an O(n⁶) SVD). Sample `i` uses the key
    `fold_in(key, i)`, so a sample does not depend on how many others are drawn.

    **Arguments:**

    - `num`: number of samples.
    - `n`: output points per axis.
    - `key`: PRNG key (keyword-only).
    - `length_scale`: ℓ.
    - `ic_resolution`: points per axis of the sampling grid.

    **Returns:**

    array `[num, n, n]` (float64 when x64 is enabled), every sample with zero spatial mean.
    """
    return _sample(key, num, n, float(length_scale), ic_resolution)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _sample(key, num: int, n: int, length_scale: float, ic_resolution: int):
    sqrt_eig = jnp.asarray(np.sqrt(grf_spectrum(ic_resolution, length_scale)))

    def one(i):
        z = jr.normal(jr.fold_in(key, i), (ic_resolution, ic_resolution), jnp.result_type(float))
        w = jnp.fft.ifft2(sqrt_eig * jnp.fft.fft2(z)).real
        return w - jnp.mean(w)

    w = jax.vmap(one)(jnp.arange(num))
    axis = Axis(ic_resolution, 0.0, 1.0, periodic=True)
    return spectral_resample(w, Grid((axis, axis)), (n, n))


class ReferenceSolver(eqx.Module):
    """Pseudo-spectral Crank–Nicolson/Heun solver for `NavierStokes2D` (the PI-HC-MoE paper's).

    The state is the vorticity's real FFT ŵ. One step of size h:

    1. N(ŵ) = mask · FFT(v·∇w) (`advection`), with v from ŵ by spectral multipliers;
    2. predictor: w̃ = [(1 − h ν |k|²/2) ŵ − h N(ŵ)] / (1 + h ν |k|²/2);
    3. corrector: ŵ ← [(1 − h ν |k|²/2) ŵ − h (N(ŵ) + N(w̃))/2] / (1 + h ν |k|²/2).

    `mask` is the 2/3-rule dealiasing mask with the mean mode zeroed (`mask`). It is applied
    to the nonlinear term and to the initial state, so the state stays in the masked band.
    The reference generator masks only each new state; there the predictor w̃ carries the
    aliased high modes of N(ŵ), whose products pollute N(w̃) at O(h), and the scheme is first
    order (measured on the setting of `test_time_stepping_second_order` in
    `tests/test_navier_stokes.py`: rates 0.91–0.96 with the state-only mask, 1.97–1.98 with
    these masks).

    Diffusion is Crank–Nicolson, advection Heun (explicit trapezoidal): second order in
    time. The saved times are those of the PDE's
    grid, t_j = j T/(nt − 1), and the step is the largest h ≤ `dt` that divides the save
    interval (for the paper's T = 5, nt = 64, dt = 1e-3: h = 5/63/80 ≈ 9.92e-4; the reference
    generator instead takes floor(interval/dt) steps of dt and one remainder step). Frame 0 is
    the initial condition itself. The solve is single-sample; batch it with `jax.vmap`.

    **Arguments:**

    - `dt`: the largest time step (paper: 1e-3).
    - `dealias_fraction`: the dealiasing fraction (2/3).
    - `radial_dealias`: the mask |k| < fraction·k_max of the recipe (True) or the box mask
        max_d |k_d| < fraction·k_max (False); see `dealias_mask`.
    """

    dt: float = eqx.field(static=True, default=1.0e-3)
    dealias_fraction: float = eqx.field(static=True, default=2 / 3)
    radial_dealias: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if not self.dt > 0:
            raise ValueError(f"problem.solver.dt must be > 0, got {self.dt!r}.")
        if not 0 < self.dealias_fraction <= 1:
            raise ValueError(
                "problem.solver.dealias_fraction must lie in (0, 1], got "
                f"{self.dealias_fraction!r}."
            )

    def substeps(self, pde: NavierStokes2D) -> int:
        """Steps per save interval."""
        interval = pde.t_final / (pde.nt - 1)
        return max(1, math.ceil(interval / self.dt - 1e-9))

    def mask(self, grid: Grid) -> np.ndarray:
        """The dealiasing mask on the `rfft2` spectrum, with the mean mode zeroed (float64)."""
        k2 = sum(k**2 for k in wavenumbers(grid))
        keep = dealias_mask(grid, self.dealias_fraction, radial=self.radial_dealias)
        return (keep & (k2 > 0)).astype(np.float64)

    def advection(self, grid: Grid, dtype=jnp.float64):
        """The dealiased advection term ŵ ↦ mask · FFT(v·∇w), as a function of `w_hat`.

        Evaluated in Basdevant's form (J. Comput. Phys. 50, 1983): for a divergence-free v,
        v·∇w = (∂_x² − ∂_y²)(v_x v_y) + ∂_x∂_y(v_y² − v_x²), so one evaluation takes four real
        FFTs (v_x and v_y back, two products forward) instead of the five of the advective
        form v_x ∂_x w + v_y ∂_y w. On masked input the quadratic products are alias-free on
        the kept modes, so both forms agree to rounding
        (`test_advection_matches_advective_form`). The transforms are separate calls, which
        XLA runs concurrently on a multi-core CPU.
        """
        kx, ky = np.broadcast_arrays(*wavenumbers(grid, nyquist=False))
        k2 = sum(k**2 for k in wavenumbers(grid))
        inv = np.where(k2 == 0, 0.0, 1.0 / np.where(k2 == 0, 1.0, k2))
        mask = self.mask(grid)
        # v = ∇^⊥ψ with Δψ = −w: v̂_x = i k_y ŵ/|k|², v̂_y = −i k_x ŵ/|k|².
        vx_symbol, vy_symbol = (jnp.asarray(s, dtype) for s in (ky * inv, -kx * inv))
        # The masked symbols of ∂_x² − ∂_y² and ∂_x∂_y.
        cross = jnp.asarray(mask * (ky**2 - kx**2), dtype)
        diagonal = jnp.asarray(-mask * kx * ky, dtype)

        def advection(w_hat):
            i_w_hat = 1j * w_hat
            vx = jnp.fft.irfft2(vx_symbol * i_w_hat, s=grid.shape)
            vy = jnp.fft.irfft2(vy_symbol * i_w_hat, s=grid.shape)
            return cross * jnp.fft.rfft2(vx * vy) + diagonal * jnp.fft.rfft2(vy * vy - vx * vx)

        return advection

    def stepper(self, grid: Grid, viscosity: float, h: float, dtype=jnp.float64):
        """The one-step map ŵ ↦ ŵ(t + h) on `grid`, as a function `step(w_hat)`.

        `w_hat` is the `rfft2` of a vorticity field (already multiplied by `mask(grid)`); the
        step's diagonal factors are computed once, here.
        """
        k2 = sum(k**2 for k in wavenumbers(grid))
        explicit = jnp.asarray(1 - 0.5 * h * viscosity * k2, dtype)
        implicit = jnp.asarray(1 / (1 + 0.5 * h * viscosity * k2), dtype)
        advection = self.advection(grid, dtype)

        def step(w_hat):
            n1 = advection(w_hat)
            kept = explicit * w_hat
            predicted = (kept - h * n1) * implicit
            n2 = advection(predicted)
            return (kept - 0.5 * h * (n1 + n2)) * implicit

        return step

    def solve(self, pde: NavierStokes2D, w0: Float[Array, "nx nx"]) -> Float[Array, "nt nx nx"]:
        """The vorticity at the PDE's `nt` times for one initial condition."""
        w0 = jnp.asarray(w0)
        if w0.shape != (pde.nx, pde.nx):
            raise ValueError(f"`w0` must have shape {(pde.nx, pde.nx)}, got {w0.shape}.")
        grid = pde.space_grid
        substeps = self.substeps(pde)
        step = self.stepper(grid, pde.viscosity, pde.t_final / (pde.nt - 1) / substeps, w0.dtype)

        def record(w_hat, _):
            w_hat = jax.lax.fori_loop(0, substeps, lambda _, w: step(w), w_hat)
            return w_hat, jnp.fft.irfft2(w_hat, s=grid.shape)

        w_hat = jnp.asarray(self.mask(grid), w0.dtype) * jnp.fft.rfft2(w0)
        _, frames = jax.lax.scan(record, w_hat, None, length=pde.nt - 1)
        return jnp.concatenate([w0[None], frames])
