"""PDEBench-style random initial conditions and the pseudo-spectral method-of-lines solver."""

import functools

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from pdeopt.discretizations import Grid, dealias_mask, solve_mol, wavenumbers

from ._pde import Burgers


def sample_initial_conditions(
    pde: Burgers,
    num: int,
    *,
    key: PRNGKeyArray,
    max_mode: int = 4,
    num_modes: int = 2,
    abs_probability: float = 0.1,
    window_probability: float = 0.1,
) -> Float[Array, "num nx"]:
    """Random initial conditions in the style of PDEBench's 1-D generators.

    Written from the description of PDEBench's `init_multi` (not copied; that file is
    non-commercial): per sample,

    1. u0(x) = Σ_{j=1}^{J} A_j sin(2π k_j x + φ_j) with J = `num_modes` wavenumbers k_j drawn
       uniformly from {1, …, `max_mode`} (with replacement), A_j ~ U(0, 1), φ_j ~ U(0, 2π);
    2. with probability `abs_probability`, u0 ← |u0|;
    3. a random sign, u0 ← ±u0;
    4. with probability `window_probability`, u0 is multiplied by the window
       ½(tanh((x − x_L)/0.01) − tanh((x − x_R)/0.01)), x_L ~ U(0.1, 0.45), x_R ~ U(0.55, 0.9).

    Differences from PDEBench: a wavenumber drawn twice appears twice here (PDEBench's one-hot
    sum doubles that wavenumber instead), and every sample uses its own key
    `fold_in(key, i)` (sample i does not depend on `num`). The window's 0.01 width is below
    the resolution of coarse grids; the viscous solution smooths it.

    **Arguments:**

    - `pde`: the PDE (its grid).
    - `num`: number of samples.
    - `key`: PRNG key (keyword-only).
    - `max_mode`, `num_modes`, `abs_probability`, `window_probability`: see above.

    **Returns:**

    float64 array `[num, nx]`.
    """
    x = jnp.asarray(pde.coordinates()[1])
    options = (num, max_mode, num_modes, float(abs_probability), float(window_probability))
    return _sample(key, x, *options)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5, 6))
def _sample(key, x, num, max_mode, num_modes, abs_probability, window_probability):
    def one(i):
        keys = jr.split(jr.fold_in(key, i), 8)
        k = jr.randint(keys[0], (num_modes,), 1, max_mode + 1)
        amp = jr.uniform(keys[1], (num_modes,), jnp.float64)
        phase = jr.uniform(keys[2], (num_modes,), jnp.float64, 0.0, 2 * jnp.pi)
        u = jnp.sum(amp[:, None] * jnp.sin(2 * jnp.pi * k[:, None] * x + phase[:, None]), 0)
        u = jnp.where(jr.bernoulli(keys[3], abs_probability), jnp.abs(u), u)
        u = jnp.where(jr.bernoulli(keys[4], 0.5), -u, u)
        left = jr.uniform(keys[5], (), jnp.float64, 0.1, 0.45)
        right = jr.uniform(keys[6], (), jnp.float64, 0.55, 0.9)
        window = 0.5 * (jnp.tanh((x - left) / 0.01) - jnp.tanh((x - right) / 0.01))
        return jnp.where(jr.bernoulli(keys[7], window_probability), u * window, u)

    return jax.vmap(one)(jnp.arange(num))


def _split_rhs(pde: Burgers, fraction: float):
    """(advection, diffusion) vector fields of the dealiased pseudo-spectral semi-discretisation."""
    grid = Grid(pde.grid.axes[1:])
    (k,) = wavenumbers(grid, nyquist=False)
    (k_full,) = wavenumbers(grid)
    mask = dealias_mask(grid, fraction)
    derivative = 1j * k * mask  # ∂_x of the dealiased product
    laplacian = -pde.diffusivity * k_full**2

    def advection(t, u, args):
        u_hat = jnp.fft.rfft(u)
        smooth = jnp.fft.irfft(jnp.asarray(mask, u.dtype) * u_hat, n=pde.nx)
        flux_hat = jnp.fft.rfft(0.5 * smooth**2)
        return -jnp.fft.irfft(jnp.asarray(derivative) * flux_hat, n=pde.nx)

    def diffusion(t, u, args):
        return jnp.fft.irfft(jnp.asarray(laplacian) * jnp.fft.rfft(u), n=pde.nx)

    return advection, diffusion


class ReferenceSolver(eqx.Module):
    """Fourier pseudo-spectral method of lines for `Burgers`, integrated with diffrax.

    The semi-discrete system is du/dt = A(u) + D u with the advection
    A(u) = −∂_x P(½ (P u)²) (P: the 2/3-rule projection, so the quadratic product is
    alias-free) and the diffusion D u = (ν/π) ∂_xx u, both by FFT. It is handed to
    `pdeopt.discretizations.solve_mol` as the split `(A, D)`: an IMEX solver
    (`diffrax.Sil3()`) treats the stiff diffusion implicitly, any other solver integrates the
    sum (`Tsit5` for ν ≤ 0.01 on coarse grids; `Kvaerno5` when ν/π·(π nx)² is large).
    Adaptive steps, float64, saving at the PDE's `nt` times; `solve` is single-sample, batch it
    with `jax.vmap`.

    Spectral accuracy needs the viscous shock width ~ (ν/π)/Δu to be resolved: on PDEBench's
    1024 cells that holds for ν ≥ 0.01 with O(1) data; ν = 0.001 fronts are under-resolved and
    show Gibbs oscillations (PDEBench uses a limited finite-volume scheme there).

    **Arguments:**

    - `solver`: a diffrax solver.
    - `rtol`, `atol`: step-size controller tolerances.
    - `max_steps`: cap on the number of steps.
    - `dealias_fraction`: the projection P's fraction (2/3).
    - `throw`: raise on a failed integration (True) or return non-finite values (False).
    """

    solver: dfx.AbstractSolver = dfx.Tsit5()
    rtol: float = 1.0e-7
    atol: float = 1.0e-9
    max_steps: int = eqx.field(static=True, default=100_000)
    dealias_fraction: float = eqx.field(static=True, default=2 / 3)
    throw: bool = eqx.field(static=True, default=True)

    def solve_with_result(
        self, pde: Burgers, u0: Float[Array, " nx"]
    ) -> tuple[Float[Array, "nt nx"], dfx.RESULTS]:
        """The solution on the `(t, x)` grid and diffrax's result."""
        u0 = jnp.asarray(u0, dtype=jnp.float64)
        sol = solve_mol(
            _split_rhs(pde, self.dealias_fraction),
            u0,
            jnp.asarray(pde.coordinates()[0]),
            solver=self.solver,
            stepsize_controller=dfx.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
            throw=self.throw,
        )
        return sol.ys, sol.result

    def solve(self, pde: Burgers, u0: Float[Array, " nx"]) -> Float[Array, "nt nx"]:
        """The solution on the `(t, x)` grid for one initial condition."""
        return self.solve_with_result(pde, u0)[0]


def cole_hopf(
    pde: Burgers, t: Float[np.ndarray, " times"], amplitude: float = 1.0, fine: int = 4096
) -> Float[np.ndarray, "times nx"]:
    """The exact solution for u0(x) = a sin(2π x), by the Cole–Hopf transform (NumPy float64).

    With ε = ν/π, u = −2ε ∂_x log φ where φ solves φ_t = ε φ_xx with
    φ0(x) = exp(−(a/(4π ε))(1 − cos 2π x)). φ0 is expanded in Fourier modes on a `fine` grid
    (it is analytic, so the expansion is exact to rounding once `fine` resolves it), each mode
    decays exactly, and φ, φ_x are summed at the PDE's points. Accurate while φ's dynamic range
    exp(−a/(2π ε)) stays well above rounding, i.e. a/ε ≲ 100 (ν = 0.1: a/ε ≈ 31).
    """
    eps = pde.diffusivity
    xf = np.arange(fine) / fine
    phi0 = np.exp(-(amplitude / (4 * np.pi * eps)) * (1 - np.cos(2 * np.pi * xf)))
    coeff = np.fft.fft(phi0) / fine
    m = np.fft.fftfreq(fine, 1 / fine)
    k = 2 * np.pi * m
    x = pde.coordinates()[1]
    waves = np.exp(1j * k[None, :] * x[:, None])  # (nx, fine)
    out = []
    for time in np.atleast_1d(t):
        c = coeff * np.exp(-eps * k**2 * time)
        phi = (waves @ c).real
        phi_x = (waves @ (1j * k * c)).real
        out.append(-2 * eps * phi_x / phi)
    return np.stack(out)
