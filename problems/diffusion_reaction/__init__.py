"""1-D diffusion–reaction u_t = ν u_xx + ρ u(1 − u), periodic (PDEBench)."""

from ._pde import DiffusionReaction as DiffusionReaction
from ._problem import DiffusionReactionProblem as DiffusionReactionProblem
from ._solver import (
    ReferenceSolver as ReferenceSolver,
    sample_initial_condition as sample_initial_condition,
)
