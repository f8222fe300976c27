"""Constraints: the PDE interface, soft penalties, and the hard-constraint layers."""

from ._base import AbstractConstraint as AbstractConstraint
from ._hard import HardConstraint as HardConstraint, MoEHardConstraint as MoEHardConstraint
from ._partition import Partition as Partition, partition as partition
from ._pde import AbstractPDE as AbstractPDE
from ._soft import (
    LearningRateAnnealing as LearningRateAnnealing,
    SoftConstraint as SoftConstraint,
)
