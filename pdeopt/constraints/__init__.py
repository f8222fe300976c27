"""Constraints: the PDE interface, soft penalties, and (to come) hard-constraint layers."""

from ._pde import AbstractPDE as AbstractPDE
from ._soft import SoftConstraint as SoftConstraint
