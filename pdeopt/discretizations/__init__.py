"""pdeopt.discretizations: grids and finite-difference operators with boundary conditions."""

from ._autodiff import derivatives as derivatives
from ._boundary import (
    AbstractBoundaryCondition as AbstractBoundaryCondition,
    Dirichlet as Dirichlet,
    Neumann as Neumann,
    Robin as Robin,
)
from ._finite_difference import (
    boundary_trace as boundary_trace,
    derivative as derivative,
    fd_weights as fd_weights,
)
from ._grid import Axis as Axis, Grid as Grid
from ._mol import TridiagonalChord as TridiagonalChord, solve_mol as solve_mol
from ._spectral import (
    dealias_mask as dealias_mask,
    inverse_laplacian as inverse_laplacian,
    spectral_derivative as spectral_derivative,
    spectral_gradient as spectral_gradient,
    spectral_laplacian as spectral_laplacian,
    spectral_resample as spectral_resample,
    velocity_from_vorticity as velocity_from_vorticity,
    wavenumbers as wavenumbers,
)
