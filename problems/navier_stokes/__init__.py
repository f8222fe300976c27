"""2-D incompressible Navier–Stokes (vorticity form, periodic), the PI-HC-MoE paper's second
benchmark."""

from ._pde import NavierStokes2D as NavierStokes2D, mollify as mollify
from ._problem import NavierStokesProblem as NavierStokesProblem
from ._solver import (
    ReferenceSolver as ReferenceSolver,
    grf_covariance as grf_covariance,
    grf_spectrum as grf_spectrum,
    periodic_kernel as periodic_kernel,
    sample_initial_conditions as sample_initial_conditions,
)
