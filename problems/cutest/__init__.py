"""Equality-constrained test problems of the AdaSketch-Newton paper's experiments.

- `PROBLEMS` / `get_problem`: the paper's 47 CUTEst problems.
- `logistic_regression`, `synthetic_logistic_regression`,
  `breast_cancer_logistic_regression`: the paper's constrained logistic regression.
- `poisson_control`: the paper's PDE-control problem; `semilinear_control`: its nonlinear
  extension; both carry a block-diagonal KKT preconditioner (`control_kkt_preconditioner`).
"""

from ._applications import (
    LIBSVM_SHAPES as LIBSVM_SHAPES,
    breast_cancer_logistic_regression as breast_cancer_logistic_regression,
    control_kkt_preconditioner as control_kkt_preconditioner,
    dataset_key as dataset_key,
    laplacian_5pt as laplacian_5pt,
    logistic_regression as logistic_regression,
    poisson_control as poisson_control,
    poisson_w_true as poisson_w_true,
    semilinear_control as semilinear_control,
    semilinear_target as semilinear_target,
    synthetic_logistic_regression as synthetic_logistic_regression,
)
from ._problem import ConstrainedProblem as ConstrainedProblem, PaperIterations as PaperIterations
from ._problems import PROBLEMS as PROBLEMS, get_problem as get_problem
