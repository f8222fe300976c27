"""1-D diffusion–sorption: parameters, retardation factor, residuals on grid fields."""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from pdeopt.constraints import (
    AbstractDerivatives,
    AbstractPDE,
    Boundary,
    FiniteDifference,
    check_parameters,
    initial_condition,
)
from pdeopt.discretizations import Axis, Dirichlet, Grid, Robin

# PDEBench constants (pdebench/data_gen/configs/diff-sorp.yaml).
DIFFUSIVITY = 5.0e-4
POROSITY = 0.29
BULK_DENSITY = 2880.0
FREUNDLICH_K = 3.5e-4
FREUNDLICH_N = 0.874
T_FINAL = 500.0
_EPS = 1.0e-6


class DiffusionSorption(AbstractPDE):
    """1-D diffusion–sorption, u_t = D / R(u) · u_xx on x ∈ (0, 1), t ∈ (0, T].

    The retardation factor of the Freundlich isotherm is
    R(u) = 1 + (1 − φ)/φ · ρ_s · k_f · n_f · (u + ε)^(n_f − 1), with ε = 1e-6 and the power
    term frozen at ε^(n_f − 1) for u ≤ 0 (value and derivatives stay finite there).

    Boundary conditions: u(0, t) = 1 (Dirichlet) and, at x = 1, the Robin condition
    u(1, t) = σ · D · u_x(1, t). The PDEBench paper writes σ = +1, but PDEBench's
    finite-volume generator sets the right ghost cell to D·(c[-2] − c[-1])/dx, which is σ = −1
    (an outflow condition). With σ = +1 the problem has boundary modes exp((x − 1)/D) growing
    like exp(t / (R·D)), i.e. within hundredths of a second, once the grid resolves D
    (dx < 2D, reached at the paper's 1024 cells); pdeopt therefore defaults to σ = −1, the
    condition PDEBench's data actually satisfy, and keeps σ configurable.

    The grid follows PDEBench: `nx` cell centres in x and `nt` equally spaced times including
    t = 0 and t = T. Residuals use time rescaled to τ = t/T (the PDE row is T·(u_t − D/R·u_xx))
    so that all blocks are O(1); the boundary rows skip t = 0, where the initial condition
    and the left boundary value disagree.

    **Arguments:**

    - `nx`, `nt`: grid sizes (paper: 1024 × 101).
    - `t_final`, `diffusivity`, `porosity`, `bulk_density`, `freundlich_k`, `freundlich_n`:
        physical constants (PDEBench defaults).
    - `outflow_sign`: σ in the right boundary condition.
    - `t_extent`: the horizon that the model's time coordinate and the residual's time
        scaling refer to (default `t_final`): a grid that stops early (training on t ≤ 400 to
        extrapolate to 500) sets it to the whole horizon.
    - `derivatives`: the source of the quantities (default second-order finite differences,
        `FiniteDifference(accuracy=2)`; `Autodiff()` for a coordinate model).
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    t_final: float = eqx.field(static=True, default=T_FINAL)
    diffusivity: float = eqx.field(static=True, default=DIFFUSIVITY)
    porosity: float = eqx.field(static=True, default=POROSITY)
    bulk_density: float = eqx.field(static=True, default=BULK_DENSITY)
    freundlich_k: float = eqx.field(static=True, default=FREUNDLICH_K)
    freundlich_n: float = eqx.field(static=True, default=FREUNDLICH_N)
    outflow_sign: float = eqx.field(static=True, default=-1.0)
    t_extent: float | None = eqx.field(static=True, default=None)
    derivatives: AbstractDerivatives = FiniteDifference()

    quantities: ClassVar = {"u": (0, 0), "u_t": (1, 0), "u_xx": (0, 2)}

    def __check_init__(self):
        positive = ("t_final", "diffusivity", "porosity", "bulk_density", "freundlich_k")
        check_parameters(self, sizes={"nx": 4, "nt": 4}, positive=positive)
        if not 0 < self.porosity < 1:
            raise ValueError(f"problem.porosity must lie in (0, 1), got {self.porosity!r}.")
        if self.outflow_sign not in (-1.0, 1.0):
            raise ValueError(f"problem.outflow_sign must be -1 or 1, got {self.outflow_sign!r}.")

    @property
    def grid(self) -> Grid:
        x = Axis(self.nx, 0.0, 1.0, centering="cell")
        t = Axis(self.nt, 0.0, self.t_final, centering="vertex", input_extent=self.t_extent)
        return Grid((t, x))

    @property
    def left_bc(self) -> Dirichlet:
        return Dirichlet(1.0)

    @property
    def right_bc(self) -> Robin:
        return Robin(1.0, -self.outflow_sign * self.diffusivity, 0.0)

    @property
    def sorption_coefficient(self) -> float:
        """(1 − φ)/φ · ρ_s · k_f: the Freundlich isotherm is s(u) = coefficient · u^n_f."""
        return (1 - self.porosity) / self.porosity * self.bulk_density * self.freundlich_k

    def retardation(self, u: Array) -> Array:
        """R(u), finite with finite derivatives for every u (double `where`)."""
        positive = u > 0
        safe = jnp.where(positive, u, 0.0) + _EPS
        exponent = self.freundlich_n - 1
        power = jnp.where(positive, safe**exponent, _EPS**exponent)
        return 1 + self.sorption_coefficient * self.freundlich_n * power

    def sorbed(self, u: Array) -> Array:
        """The sorbed concentration s(u), with s' = R − 1, for mass balances.

        s(u) = coefficient · ((u + ε)^n_f − ε^n_f) for u > 0, continued linearly for u ≤ 0.
        """
        positive = u > 0
        safe = jnp.where(positive, u, 0.0) + _EPS
        n, coefficient = self.freundlich_n, self.sorption_coefficient
        power = safe**n - _EPS**n
        linear = n * _EPS ** (n - 1) * u
        return coefficient * jnp.where(positive, power, linear)

    def interior_residual(self, q, condition):
        r = q["u_t"] - self.diffusivity / self.retardation(q["u"]) * q["u_xx"]
        return self.grid.axes[0].input_width * r

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        later = (slice(1, None),)  # The boundary rows skip t = 0.
        left = lambda u, c, x: self.left_bc.residual(u[0], None)
        right = lambda u, c, x: self.right_bc.residual(u[0], u[1])
        return (
            initial_condition(),
            Boundary("bc", 1, "lo", left, rows=later),
            Boundary("bc", 1, "hi", right, orders=(0, 1), rows=later),
        )
