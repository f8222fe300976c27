"""1-D linear advection on a periodic interval, with its exact solution."""

from ._problem import (
    Advection as Advection,
    AdvectionProblem as AdvectionProblem,
    ExactSolver as ExactSolver,
)
