"""1-D linear advection u_t + c u_x = 0 on a periodic interval: PDE, exact solver, problem."""

import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from pdeopt.constraints import (
    AbstractDerivatives,
    AbstractPDE,
    Spectral,
    check_parameters,
    initial_condition,
)
from pdeopt.discretizations import Axis, Grid

from .._base import AbstractProblem


class Advection(AbstractPDE):
    """u_t + c u_x = 0 on x ∈ [0, 1) periodic, t ∈ (0, T]; the initial field moves at speed c.

    **Arguments:** `nx`, `nt` (grid sizes), `speed` (c), `t_final` (T), `derivatives`
    (default `Spectral()`: Fourier in x, finite differences in t).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    speed: float = eqx.field(static=True, default=1.0)
    t_final: float = eqx.field(static=True, default=1.0)
    derivatives: AbstractDerivatives = Spectral()

    quantities: ClassVar = {"u_t": (1, 0), "u_x": (0, 1)}

    def __check_init__(self):
        check_parameters(self, sizes={"nx": 4, "nt": 4}, positive=("t_final",))

    @property
    def grid(self) -> Grid:
        t = Axis(self.nt, 0.0, self.t_final)
        return Grid((t, Axis(self.nx, 0.0, 1.0, periodic=True)))

    def interior_residual(self, q, condition):
        return self.t_final * (q["u_t"] + self.speed * q["u_x"])

    @property
    def blocks(self):
        return (initial_condition(),)


class ExactSolver(eqx.Module):
    """The exact solution u(t, x) = u0(x − c t), by a phase shift of u0's Fourier series
    (exact for a band-limited u0 such as the problem's samples)."""

    def solve(self, pde: Advection, u0):
        t, _ = pde.coordinates()
        k = 2 * jnp.pi * jnp.fft.rfftfreq(pde.nx, 1.0 / pde.nx)
        shift = jnp.exp(-1j * k[None, :] * pde.speed * jnp.asarray(t)[:, None])
        return jnp.fft.irfft(jnp.fft.rfft(u0)[None, :] * shift, n=pde.nx)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdvectionProblem(AbstractProblem):
    """Linear advection as a learning problem: u0 ↦ u, with exact reference data.

    Sample i's u0 is Σ_{k ≤ modes} a_k sin(2πkx + φ_k), a_k ~ N(0, 1)/k, φ_k ~ U(0, 2π),
    drawn with `jr.fold_in(jr.key(seed), i)`.

    **Arguments:** `nx`, `nt`, `speed`, `t_final` (see `Advection`), `modes`, and the common
    ones of `problems.AbstractProblem`.
    """

    nx: int = 64
    nt: int = 21
    speed: float = 1.0
    t_final: float = 1.0
    modes: int = 4
    solver: ExactSolver = dataclasses.field(default_factory=ExactSolver)

    name: ClassVar[str] = "advection"

    @property
    def pde(self) -> Advection:
        return Advection(nx=self.nx, nt=self.nt, speed=self.speed, t_final=self.t_final)

    def sample_inputs(self, pde, seeds):
        _, x = pde.coordinates()
        k = jnp.arange(1, self.modes + 1)

        def one(key):
            ka, kp = jr.split(key)
            a = jr.normal(ka, (self.modes,)) / k
            phase = jr.uniform(kp, (self.modes,), maxval=2 * jnp.pi)
            return a @ jnp.sin(2 * jnp.pi * k[:, None] * jnp.asarray(x) + phase[:, None])

        return np.asarray(jax.vmap(one)(self.sample_keys(seeds)))
