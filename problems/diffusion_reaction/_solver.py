"""Method-of-lines reference solver (diffrax) and the random initial condition."""

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from ._pde import DiffusionReaction


def _vector_field(t, u, pde: DiffusionReaction):
    return pde.nu * pde.derivatives.derivative(u, pde.grid.axes[1], 2, -1) + pde.reaction(u)


class ReferenceSolver(eqx.Module):
    """Method of lines: the PDE's own periodic x-differences, adaptive diffrax in time.

    **Arguments:**

    - `solver`: a diffrax solver. `Tsit5` (default) is stability-limited by 4ν/dx²; for fine
        grids use an implicit solver such as `diffrax.Kvaerno5()`.
    - `rtol`, `atol`, `max_steps`: step-size control.
    """

    solver: dfx.AbstractSolver = dfx.Tsit5()
    rtol: float = 1.0e-8
    atol: float = 1.0e-10
    max_steps: int = eqx.field(static=True, default=100_000)

    def solve(self, pde: DiffusionReaction, u0: Float[Array, " nx"]) -> Float[Array, "nt nx"]:
        """The solution on the problem's (t, x) grid for one initial condition."""
        t, _ = pde.coordinates()
        sol = dfx.diffeqsolve(
            dfx.ODETerm(_vector_field),
            self.solver,
            t0=0.0,
            t1=pde.t_final,
            dt0=None,
            y0=jnp.asarray(u0, jnp.float64),
            args=pde,
            saveat=dfx.SaveAt(ts=jnp.asarray(t)),
            stepsize_controller=dfx.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
        )
        return sol.ys


def sample_initial_condition(
    pde: DiffusionReaction, *, key: PRNGKeyArray, modes: int = 4
) -> Float[Array, " nx"]:
    """u0 = sigmoid(Σ_{k ≤ modes} a_k sin(2πkx + φ_k)) ∈ (0, 1), a_k ~ N(0, 1), φ_k ~ U(0, 2π).

    pdeopt's choice: a smooth periodic field in (0, 1), where the logistic reaction is
    meaningful (PDEBench's own generator is not reproduced).
    """
    ka, kp = jr.split(key)
    k = jnp.arange(1, modes + 1, dtype=jnp.float64)
    amplitude = jr.normal(ka, (modes,), dtype=jnp.float64)
    phase = jr.uniform(kp, (modes,), dtype=jnp.float64, maxval=2 * jnp.pi)
    _, x = pde.coordinates()
    field = amplitude @ jnp.sin(2 * jnp.pi * k[:, None] * jnp.asarray(x) + phase[:, None])
    return jax.nn.sigmoid(field)
