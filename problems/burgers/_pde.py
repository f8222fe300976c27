"""1-D viscous Burgers (PDEBench convention): one residual for grid fields and autodiff bases."""

from typing import ClassVar

import equinox as eqx
import numpy as np

from pdeopt.constraints import (
    AbstractDerivatives,
    AbstractPDE,
    Boundary,
    Spectral,
    check_parameters,
    initial_condition,
)
from pdeopt.discretizations import Axis, Grid

VISCOSITIES = (0.001, 0.01, 0.1, 1.0)
T_FINAL = 2.0


class Burgers(AbstractPDE):
    """Viscous Burgers, u_t + (u²/2)_x = (ν/π) u_xx, on x ∈ (0, 1) periodic, t ∈ (0, T].

    PDEBench's convention: the configured viscosity ν is divided by π (PDEBench's data sets
    use ν ∈ {0.001, 0.01, 0.1, 1.0}, T = 2, 1024 cells, 201 saved times). The grid is PDEBench's:
    `nx` periodic cell centres `(i + 1/2)/nx` and `nt` equally spaced times including t = 0 and
    t = T.

    **Quantities** `u`, `u_t`, `u_x`, `u_xx`; the residual `u_t + u u_x − (ν/π) u_xx` is
    bilinear in the basis weights. **Initial condition**: the rows `ic = u(0) − u0`. On the
    grid (default `Spectral()`: Fourier in x, finite differences in t) periodicity is built
    in; with `Autodiff()` (a coordinate-model basis, as in Négiar et al.) the quantities are
    the model's own derivatives and the periodic rows `u(t, 0) − u(t, 1)`,
    `u_x(t, 0) − u_x(t, 1)` are added as the block `periodic`.

    **Arguments:**

    - `nx`, `nt`: grid sizes.
    - `viscosity`: PDEBench's ν (the diffusion coefficient is ν/π).
    - `t_final`: T.
    - `derivatives`: `Spectral(accuracy=2)` (default), `FiniteDifference(...)` or `Autodiff()`.

    ??? cite "References"

        G. Négiar, M. W. Mahoney, A. Krishnapriyan, "Learning differentiable solvers for
        systems with hard constraints", ICLR 2023.
    """

    nx: int = eqx.field(static=True)
    nt: int = eqx.field(static=True)
    viscosity: float = eqx.field(static=True, default=0.01)
    t_final: float = eqx.field(static=True, default=T_FINAL)
    derivatives: AbstractDerivatives = Spectral()

    quantities: ClassVar = {"u": (0, 0), "u_t": (1, 0), "u_x": (0, 1), "u_xx": (0, 2)}

    def __check_init__(self):
        check_parameters(self, sizes={"nx": 4, "nt": 4}, positive=("viscosity", "t_final"))

    @property
    def diffusivity(self) -> float:
        """The coefficient ν/π of u_xx."""
        return self.viscosity / np.pi

    @property
    def grid(self) -> Grid:
        x = Axis(self.nx, 0.0, 1.0, centering="cell", periodic=True)
        return Grid((Axis(self.nt, 0.0, self.t_final), x))

    def interior_residual(self, q, condition):
        return q["u_t"] + q["u"] * q["u_x"] - self.diffusivity * q["u_xx"]

    @property
    def blocks(self) -> tuple[Boundary, ...]:
        return (initial_condition(),)
