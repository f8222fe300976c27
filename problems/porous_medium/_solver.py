"""Conservative finite-volume reference solver (Kirchhoff fluxes, implicit diffrax)."""

import diffrax as dfx
import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from pdeopt.discretizations import TridiagonalChord

from ._pde import PorousMedium, positive_power


def fluxes(
    pde: PorousMedium, c: Float[Array, " nx"], m: Scalar, t: Scalar
) -> Float[Array, " nx+1"]:
    """Fluxes u^m·u_x at the nx + 1 cell faces.

    With the Kirchhoff potential Φ(u) = u₊^(m+1)/(m+1), u^m·u_x = Φ(u)_x, so a face flux is a
    difference of Φ between the two neighbouring cell centres: monotone and well defined at
    the degenerate front. The boundary faces use the Dirichlet values u(0, t) (inflow) and
    u(1, t) = 0, half a cell from the nearest centre.
    """
    dx = 1.0 / pde.nx
    potential = lambda u: positive_power(u, m + 1) / (m + 1)
    phi = potential(c)
    interior = (phi[1:] - phi[:-1]) / dx
    left = (phi[0] - potential(pde.inflow_value(t, m))) / (dx / 2)
    right = (0.0 - phi[-1]) / (dx / 2)
    return jnp.concatenate([left[None], interior, right[None]])


def _vector_field(t, y, args):
    # State (∫ −F_left dt, c, ∫ F_right dt): each accumulator next to its boundary cell, so
    # the Jacobian of the flattened state is tridiagonal (what `TridiagonalChord` needs).
    pde, m = args
    _, c, _ = y
    flux = fluxes(pde, c, m, t)
    return -flux[0], (flux[1:] - flux[:-1]) * pde.nx, flux[-1]


class ReferenceSolver(eqx.Module):
    """Method-of-lines finite volumes for `PorousMedium`, one exponent m per solve.

    Cell averages evolve by dc_i/dt = (F_{i+½} − F_{i−½})/dx with the fluxes of `fluxes`; the
    semi-discrete mass Σ c_i·dx changes exactly by the boundary fluxes. The system is stiff
    (k(u)/dx² ~ 1e4 at 64 cells and grows with nx) and degenerate, so the default integrator is
    diffrax's L-stable `Kvaerno5` whose Newton systems use the tridiagonal Jacobian
    (`pdeopt.discretizations.TridiagonalChord`). Float64; batched over m by `jax.vmap`.

    **Arguments:**

    - `solver`: a diffrax solver (any; implicit ones need `root_finder=TridiagonalChord()`
        to stay O(nx) per step).
    - `rtol`, `atol`: step-size controller tolerances.
    - `max_steps`: cap on the number of time steps; exceeding it raises.
    """

    solver: dfx.AbstractSolver = dfx.Kvaerno5(root_finder=TridiagonalChord())
    rtol: float = 1.0e-6
    atol: float = 1.0e-8
    max_steps: int = eqx.field(static=True, default=100_000)

    def solve_with_flux(
        self, pde: PorousMedium, m: Float[Array, ""]
    ) -> tuple[Float[Array, "nt nx"], Float[Array, " nt"]]:
        """The solution at the problem's times, and the cumulative net boundary inflow."""
        t, _ = pde.coordinates()
        m = jnp.asarray(m, dtype=jnp.float64)
        zero = jnp.zeros((), jnp.float64)
        inflow, u, outflow = dfx.diffeqsolve(
            dfx.ODETerm(_vector_field),
            self.solver,
            t0=0.0,
            t1=pde.t_final,
            dt0=None,
            y0=(zero, jnp.zeros(pde.nx, jnp.float64), zero),
            args=(pde, m),
            saveat=dfx.SaveAt(ts=jnp.asarray(t)),
            stepsize_controller=dfx.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
        ).ys
        return u, inflow + outflow

    def solve(self, pde: PorousMedium, m: Float[Array, ""]) -> Float[Array, "nt nx"]:
        """The solution on the problem's (t, x) grid for exponent m."""
        return self.solve_with_flux(pde, m)[0]


def sample_exponent(*, key: PRNGKeyArray, low: float = 1.0, high: float = 4.0) -> Float[Array, ""]:
    """m ~ U(low, high), pdeopt's choice of range (larger m: steeper front)."""
    return jr.uniform(key, (), jnp.float64, minval=low, maxval=high)
