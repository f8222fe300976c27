"""1-D viscous Burgers (PDEBench convention: diffusion ν/π, periodic on (0, 1))."""

from ._pde import Burgers as Burgers
from ._problem import BurgersProblem as BurgersProblem
from ._solver import (
    ReferenceSolver as ReferenceSolver,
    cole_hopf as cole_hopf,
    sample_initial_conditions as sample_initial_conditions,
)
