"""1-D porous medium equation u_t = (u^m u_x)_x (ProbConserv's degenerate GPME case)."""

from ._pde import PorousMedium as PorousMedium
from ._problem import PorousMediumProblem as PorousMediumProblem
from ._solver import (
    ReferenceSolver as ReferenceSolver,
    fluxes as fluxes,
    sample_exponent as sample_exponent,
)
