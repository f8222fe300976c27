"""Heat and Poisson problems with exact (sine-series) solutions, for verification."""

from ._pde import Heat as Heat, Poisson as Poisson
from ._problem import HeatProblem as HeatProblem, PoissonProblem as PoissonProblem
