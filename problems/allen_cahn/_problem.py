"""2-D Allen–Cahn u_t = ε² Δu + u − u³ on the periodic unit square: PDE, solver, problem."""

import dataclasses
from typing import ClassVar

import diffrax as dfx
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
from pdeopt.discretizations import Axis, Grid, solve_mol, spectral_laplacian

from .._base import AbstractProblem


class AllenCahn(AbstractPDE):
    """u_t = ε² (u_xx + u_yy) + u − u³ on (0, 1)² periodic, t ∈ (0, T]: phase separation.

    **Arguments:** `nx` (points per space axis), `nt`, `epsilon` (ε, the interface width),
    `t_final` (T), `derivatives` (default `Spectral()`).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    epsilon: float = eqx.field(static=True, default=0.05)
    t_final: float = eqx.field(static=True, default=1.0)
    derivatives: AbstractDerivatives = Spectral()

    quantities: ClassVar = {"u": (0, 0, 0), "u_t": (1, 0, 0), "u_xx": (0, 2, 0), "u_yy": (0, 0, 2)}

    def __check_init__(self):
        check_parameters(self, sizes={"nx": 4, "nt": 4}, positive=("epsilon", "t_final"))

    @property
    def grid(self) -> Grid:
        x = Axis(self.nx, 0.0, 1.0, periodic=True)
        return Grid((Axis(self.nt, 0.0, self.t_final), x, x))

    def interior_residual(self, q, condition):
        u = q["u"]
        diffusion = self.epsilon**2 * (q["u_xx"] + q["u_yy"])
        return self.t_final * (q["u_t"] - diffusion - u + u**3)

    @property
    def blocks(self):
        return (initial_condition(),)


class ReferenceSolver(eqx.Module):
    """Method of lines: Fourier Laplacian, adaptive `diffrax` in time (`Tsit5` by default;
    its step is limited by ε²·(πn)², so use `diffrax.Kvaerno5()` for fine grids)."""

    solver: dfx.AbstractSolver = dfx.Tsit5()
    rtol: float = 1.0e-7
    atol: float = 1.0e-9

    def solve(self, pde: AllenCahn, u0):
        space = Grid(pde.grid.axes[1:])
        rhs = lambda t, u, args: pde.epsilon**2 * spectral_laplacian(u, space) + u - u**3
        controller = dfx.PIDController(rtol=self.rtol, atol=self.atol)
        ts = jnp.asarray(pde.coordinates()[0])
        return solve_mol(rhs, u0, ts, solver=self.solver, stepsize_controller=controller).ys


@dataclasses.dataclass(frozen=True, kw_only=True)
class AllenCahnProblem(AbstractProblem):
    """2-D Allen–Cahn as a learning problem: u0 ↦ u on a (t, x, y) grid.

    Sample i's u0 is a random field of the lowest Fourier modes (|k|, |l| ≤ modes, normal
    coefficients decaying like 1/(1 + k² + l²)), scaled to max |u0| = 0.9, drawn with
    `jr.fold_in(jr.key(seed), i)`.

    **Arguments:** `nx`, `nt`, `epsilon`, `t_final` (see `AllenCahn`), `modes`, `solver`, and
    the common ones of `problems.AbstractProblem`.
    """

    nx: int = 32
    nt: int = 11
    epsilon: float = 0.05
    t_final: float = 1.0
    modes: int = 3
    solver: ReferenceSolver = dataclasses.field(default_factory=ReferenceSolver)

    name: ClassVar[str] = "allen_cahn"

    @property
    def pde(self) -> AllenCahn:
        return AllenCahn(nx=self.nx, nt=self.nt, epsilon=self.epsilon, t_final=self.t_final)

    def sample_inputs(self, pde, seeds):
        _, x, y = (jnp.asarray(c) for c in pde.coordinates())
        k = jnp.arange(-self.modes, self.modes + 1)
        phase = 2 * jnp.pi * (k[:, None, None, None] * x[:, None] + k[None, :, None, None] * y)
        decay = 1.0 / (1.0 + k[:, None] ** 2 + k[None, :] ** 2)

        def one(key):
            ka, kb = jr.split(key)
            a, b = (decay * jr.normal(key, decay.shape) for key in (ka, kb))
            u = jnp.einsum("kl,klxy->xy", a, jnp.cos(phase)) + jnp.einsum(
                "kl,klxy->xy", b, jnp.sin(phase)
            )
            return 0.9 * u / jnp.max(jnp.abs(u))

        return np.asarray(jax.vmap(one)(self.sample_keys(seeds)))
