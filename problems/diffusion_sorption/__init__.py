"""1-D diffusion–sorption (PDEBench), the PI-HC-MoE paper's first benchmark."""

from ._pde import DiffusionSorption as DiffusionSorption
from ._problem import DiffusionSorptionProblem as DiffusionSorptionProblem
from ._solver import (
    ImplicitReferenceSolver as ImplicitReferenceSolver,
    ReferenceSolver as ReferenceSolver,
    fluxes as fluxes,
    sample_initial_conditions as sample_initial_conditions,
)
