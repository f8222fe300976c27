"""Finite-volume method-of-lines reference solvers, integrated with diffrax in float64."""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from pdeopt.discretizations import TridiagonalChord

from ._pde import DiffusionSorption


def fluxes(pde: DiffusionSorption, c: Float[Array, " nx"]) -> Float[Array, " nx+1"]:
    """Diffusive fluxes D·u_x at the nx + 1 cell faces.

    Interior faces use the two neighbouring cell averages. The left face imposes u = 1 at
    x = 0, half a cell from the first centre. The right face imposes the Robin condition
    u_f = σ·D·(u_f − c_last)/(dx/2), solved for the face value u_f.
    """
    dx = 1.0 / pde.nx
    d = pde.diffusivity
    interior = d * (c[1:] - c[:-1]) / dx
    left = d * (c[0] - 1.0) / (dx / 2)
    ratio = pde.outflow_sign * 2 * d / dx
    face = c[-1] * ratio / (ratio - 1.0)
    right = d * (face - c[-1]) / (dx / 2)
    return jnp.concatenate([left[None], interior, right[None]])


def _dc_dt(pde: DiffusionSorption, c: Float[Array, " nx"]):
    """The semi-discrete right-hand side, and the boundary fluxes."""
    flux = fluxes(pde, c)
    dx = 1.0 / pde.nx
    return (flux[1:] - flux[:-1]) / dx / pde.retardation(c), flux[0], flux[-1]


def _vector_field(t, y, pde: DiffusionSorption):
    c, _ = y
    dc, left, right = _dc_dt(pde, c)
    # Net mass inflow through the boundaries, ∫ (flux_in − flux_out) dt, for mass balances.
    return dc, right - left


def _banded_vector_field(t, y, pde: DiffusionSorption):
    # State (∫ −F_left dt, c, ∫ F_right dt): each accumulator sits next to the one cell its
    # flux depends on, so the Jacobian of the flattened state is tridiagonal.
    _, c, _ = y
    dc, left, right = _dc_dt(pde, c)
    return -left, dc, right


def _diffeqsolve(vector_field, solver, y0, pde, rtol, atol, max_steps):
    t, _ = pde.coordinates()
    return dfx.diffeqsolve(
        dfx.ODETerm(vector_field),
        solver,
        t0=0.0,
        t1=pde.t_final,
        dt0=None,
        y0=y0,
        args=pde,
        saveat=dfx.SaveAt(ts=jnp.asarray(t)),
        stepsize_controller=dfx.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    ).ys


class ReferenceSolver(eqx.Module):
    """Method-of-lines finite-volume solver for `DiffusionSorption`.

    Cell averages c_i evolve by R(c_i)·dc_i/dt = (F_{i+½} − F_{i−½})/dx with the fluxes of
    `fluxes`; the semi-discrete scheme conserves Σ (c_i + s(c_i))·dx up to the boundary fluxes
    exactly. Time integration is adaptive (diffrax) in float64, saving at the problem's `nt`
    times; `solve` is single-sample and is batched over initial conditions with `jax.vmap`.

    **Arguments:**

    - `solver`: a diffrax solver; the default `Tsit5` suits coarse grids. For fine grids
        (stiffness grows like D/dx²) use `ImplicitReferenceSolver`, whose Newton systems
        are tridiagonal (a `diffrax.Kvaerno5()` here works too, with dense Jacobians).
    - `rtol`, `atol`: step-size controller tolerances.
    - `max_steps`: cap on the number of time steps; exceeding it raises.
    """

    solver: dfx.AbstractSolver = dfx.Tsit5()
    rtol: float = 1.0e-8
    atol: float = 1.0e-10
    max_steps: int = eqx.field(static=True, default=100_000)

    def solve_with_flux(
        self, pde: DiffusionSorption, u0: Float[Array, " nx"]
    ) -> tuple[Float[Array, "nt nx"], Float[Array, " nt"]]:
        """The solution at the problem's times, and the cumulative net boundary inflow."""
        u0 = jnp.asarray(u0, dtype=jnp.float64)
        y0 = (u0, jnp.zeros((), u0.dtype))
        return _diffeqsolve(
            _vector_field, self.solver, y0, pde, self.rtol, self.atol, self.max_steps
        )

    def solve(self, pde: DiffusionSorption, u0: Float[Array, " nx"]) -> Float[Array, "nt nx"]:
        """The solution on the problem's (t, x) grid for one initial condition."""
        return self.solve_with_flux(pde, u0)[0]


class ImplicitReferenceSolver(eqx.Module):
    """The finite-volume scheme of `ReferenceSolver`, integrated by an implicit (ESDIRK)
    diffrax solver whose Newton systems are tridiagonal: for fine grids.

    The semi-discrete system has stiffness ~4D/(R·dx²), so explicit solvers need ~1e5 steps
    at 1024 cells; an L-stable ESDIRK method takes steps set by accuracy alone (about 100 at
    rtol 1e-6). Its Jacobian in the cell averages is tridiagonal, and the state is ordered
    (∫ −F_left dt, c, ∫ F_right dt) so that the boundary-flux accumulators keep it
    tridiagonal; each step then costs a few right-hand sides and O(nx) linear algebra
    (`TridiagonalChord`). Same interface as `ReferenceSolver`.

    **Arguments:**

    - `solver`: an implicit diffrax solver with `root_finder=TridiagonalChord()` (default:
        `diffrax.Kvaerno5`).
    - `rtol`, `atol`: step-size controller (and Newton) tolerances.
    - `max_steps`: cap on the number of time steps; exceeding it raises.

    ??? cite "References"

        Kværnø, *Singly diagonally implicit Runge–Kutta methods with an explicit first
        stage*, BIT Numerical Mathematics 44 (2004), the `diffrax.Kvaerno3/4/5` tableaux.
        Hairer & Wanner, *Solving Ordinary Differential Equations II* (1996), §IV.8 for
        simplified (chord) Newton iterations.
    """

    solver: dfx.AbstractImplicitSolver = dfx.Kvaerno5(root_finder=TridiagonalChord())
    rtol: float = 1.0e-6
    atol: float = 1.0e-8
    max_steps: int = eqx.field(static=True, default=100_000)

    def __check_init__(self):
        if not isinstance(self.solver, dfx.AbstractImplicitSolver) or not isinstance(
            self.solver.root_finder, TridiagonalChord
        ):
            raise ValueError(
                f"ImplicitReferenceSolver(solver={type(self.solver).__name__}(...)) needs an "
                "implicit diffrax solver with a tridiagonal root finder, e.g. "
                "`diffrax.Kvaerno5(root_finder=TridiagonalChord())`; for explicit solvers "
                "use `ReferenceSolver`."
            )

    def solve_with_flux(
        self, pde: DiffusionSorption, u0: Float[Array, " nx"]
    ) -> tuple[Float[Array, "nt nx"], Float[Array, " nt"]]:
        """The solution at the problem's times, and the cumulative net boundary inflow."""
        u0 = jnp.asarray(u0, dtype=jnp.float64)
        zero = jnp.zeros((), u0.dtype)
        inflow_left, u, outflow_right = _diffeqsolve(
            _banded_vector_field,
            self.solver,
            (zero, u0, zero),
            pde,
            self.rtol,
            self.atol,
            self.max_steps,
        )
        return u, inflow_left + outflow_right

    def solve(self, pde: DiffusionSorption, u0: Float[Array, " nx"]) -> Float[Array, "nt nx"]:
        """The solution on the problem's (t, x) grid for one initial condition."""
        return self.solve_with_flux(pde, u0)[0]


def sample_initial_conditions(
    pde: DiffusionSorption, num: int, kind: str = "constant", *, key: PRNGKeyArray
) -> Float[Array, "num nx"]:
    """Random initial conditions.

    - `"constant"`: u0 ≡ a with a ~ U(0, 0.2), PDEBench's convention.
    - `"smooth"`: a smooth non-constant field in (0, 0.2): 0.2·sigmoid of a random
        sine series with coefficients decaying like 1/k² (k = 1..8).
    """
    if kind == "constant":
        levels = jr.uniform(key, (num, 1), minval=0.0, maxval=0.2, dtype=jnp.float64)
        return jnp.broadcast_to(levels, (num, pde.nx))
    if kind == "smooth":
        _, x = pde.coordinates()
        k = jnp.arange(1, 9, dtype=jnp.float64)
        coeffs = jr.normal(key, (num, k.size), dtype=jnp.float64) * 2.0 / k**2
        field = coeffs @ jnp.sin(jnp.pi * k[:, None] * jnp.asarray(x)[None, :])
        return 0.2 * jax.nn.sigmoid(field)
    raise ValueError(f"problem.ic must be 'constant' or 'smooth', got {kind!r}.")
