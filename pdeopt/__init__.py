"""pdeopt: constrained PDE learning and PDE-constrained optimisation in JAX."""

from . import (
    constraints as constraints,
    data as data,
    discretizations as discretizations,
    models as models,
    solvers as solvers,
    training as training,
)
from ._results import RESULTS as RESULTS

__version__ = "0.1.0"
