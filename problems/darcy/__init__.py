"""2-D Darcy flow −∇·(a∇u) = f with piecewise-constant permeability (PDEBench / FNO)."""

from ._pde import Darcy as Darcy
from ._problem import DarcyProblem as DarcyProblem
from ._solver import ReferenceSolver as ReferenceSolver, sample_coefficients as sample_coefficients
