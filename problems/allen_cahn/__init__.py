"""2-D Allen–Cahn on the periodic unit square, with a method-of-lines reference solver."""

from ._problem import (
    AllenCahn as AllenCahn,
    AllenCahnProblem as AllenCahnProblem,
    ReferenceSolver as ReferenceSolver,
)
