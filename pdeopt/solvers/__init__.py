"""Numerical linear algebra and equality-constrained optimisation (no models, no PDEs)."""

from ._constrained import (
    AbstractSafeguards as AbstractSafeguards,
    ConstrainedSolution as ConstrainedSolution,
    ExactAugmentedLagrangianNewton as ExactAugmentedLagrangianNewton,
    FaithfulSafeguards as FaithfulSafeguards,
    PracticalSafeguards as PracticalSafeguards,
    constrained_minimise as constrained_minimise,
)
from ._merit import (
    AbstractMeritHessian as AbstractMeritHessian,
    LagrangianHessian as LagrangianHessian,
    ObjectiveHessian as ObjectiveHessian,
)
from ._nystrom import NystromPCG as NystromPCG
from ._sketches import (
    AbstractSketch as AbstractSketch,
    CountSketch as CountSketch,
    GaussianSketch as GaussianSketch,
    SparseSignSketch as SparseSignSketch,
)
from ._sketching import (
    AbstractSketchSolver as AbstractSketchSolver,
    BlockSketchProject as BlockSketchProject,
    GaussianSketchProject as GaussianSketchProject,
    RandomizedKaczmarz as RandomizedKaczmarz,
)
