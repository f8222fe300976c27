"""Numerical linear algebra and equality-constrained optimisation (no models, no PDEs)."""

from ._al_newton import ExactAugmentedLagrangianNewton as ExactAugmentedLagrangianNewton
from ._driver import (
    ConstrainedSolution as ConstrainedSolution,
    constrained_minimise as constrained_minimise,
)
from ._kkt import (
    AbstractKKTSolver as AbstractKKTSolver,
    DirectKKTSolver as DirectKKTSolver,
    IterativeKKTSolver as IterativeKKTSolver,
    KKTSystem as KKTSystem,
)
from ._least_squares import (
    AbstractStepSolver as AbstractStepSolver,
    AutoStep as AutoStep,
    CholeskyStep as CholeskyStep,
    LevenbergMarquardt as LevenbergMarquardt,
    LinearisedPoint as LinearisedPoint,
    QRStep as QRStep,
    SketchedStep as SketchedStep,
)
from ._merit import (
    AbstractMeritHessian as AbstractMeritHessian,
    LagrangianHessian as LagrangianHessian,
    ObjectiveHessian as ObjectiveHessian,
)
from ._minres import MINRES as MINRES
from ._nystrom import NystromPCG as NystromPCG
from ._safeguards import (
    AbstractSafeguards as AbstractSafeguards,
    FaithfulSafeguards as FaithfulSafeguards,
    PracticalSafeguards as PracticalSafeguards,
)
from ._search import BacktrackingArmijo as BacktrackingArmijo
from ._sketches import (
    AbstractSketch as AbstractSketch,
    CountSketch as CountSketch,
    GaussianSketch as GaussianSketch,
    SparseSignSketch as SparseSignSketch,
)
from ._sketching import (
    AbstractRandomizedLinearSolver as AbstractRandomizedLinearSolver,
    AbstractSketchSolver as AbstractSketchSolver,
    BlockSketchProject as BlockSketchProject,
    GaussianSketchProject as GaussianSketchProject,
    RandomizedKaczmarz as RandomizedKaczmarz,
)
