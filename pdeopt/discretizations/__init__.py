"""pdeopt.discretizations: grids and finite-difference operators with boundary conditions."""

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
