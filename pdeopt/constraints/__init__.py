"""Constraints: the PDE interface, soft penalties, and the hard-constraint layer."""

from ._base import (
    AbstractConstraint as AbstractConstraint,
    SolveStats as SolveStats,
    all_finite as all_finite,
)
from ._blocks import Boundary as Boundary, initial_condition as initial_condition
from ._derivatives import (
    AbstractDerivatives as AbstractDerivatives,
    AbstractGridDerivatives as AbstractGridDerivatives,
    Autodiff as Autodiff,
    BasisQuantities as BasisQuantities,
    FiniteDifference as FiniteDifference,
    Spectral as Spectral,
)
from ._hard import (
    EXPERT_AXIS as EXPERT_AXIS,
    ExpertProblem as ExpertProblem,
    HardConstraint as HardConstraint,
    Interface as Interface,
    MoEHardConstraint as MoEHardConstraint,
    expert_devices as expert_devices,
    split_experts as split_experts,
)
from ._partition import Partition as Partition, partition as partition
from ._pde import AbstractPDE as AbstractPDE, check_parameters as check_parameters
from ._soft import (
    LearningRateAnnealing as LearningRateAnnealing,
    SoftConstraint as SoftConstraint,
)
