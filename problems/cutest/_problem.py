"""The `ConstrainedProblem` container shared by the CUTEst set and the application problems."""

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from pdeopt.solvers import ConstrainedSolution, ExactAugmentedLagrangianNewton, constrained_minimise

_nan = math.nan


class PaperIterations(NamedTuple):
    """Outer-iteration counts reported for one problem in the AdaSketch-Newton results.

    Columns of the paper's CUTEst table: `gv10`/`rk10` are the January
    10-run means, `gv`/`rk` the single May runs, then the two GMRES baselines. `nan` marks
    "fail" or "not reported".
    """

    gv10: float = _nan
    rk10: float = _nan
    gv: float = _nan
    rk: float = _nan
    l1_gmres: float = _nan
    adap_l1_gmres: float = _nan


class ConstrainedProblem(eqx.Module):
    """An equality-constrained problem `min f(y) s.t. c(y) = 0`, with its start point.

    `fn(y, args)` and `constraint_fn(y, args)` follow the optimistix convention; pass
    `problem.args` (the problem's data, `None` for closed-form problems) as `args`. Jit with
    `eqx.filter_jit` (the problem is a pytree), or `jax.jit` the plain functions
    `problem.objective` / `problem.constraints`; `jax.jit(problem.fn)` fails because a bound
    method hashes its (array-holding) problem.

    **Arguments:**

    - `name`: the problem's name (CUTEst spelling for the CUTEst set).
    - `sif_class`: CUTEst classification string (or a short description for the
        application problems).
    - `y0`: start point, float64, shape `(n,)`.
    - `lambda0`: start multipliers, float64, shape `(m,)`.
    - `objective`: `(y, args) -> scalar`; identically zero for nonlinear-equation problems.
    - `constraints`: `(y, args) -> (m,)`.
    - `args`: data the two functions need (a PyTree of arrays), or `None`.
    - `solution`: a known solution `x*` (closed form or literature values), or `None`.
    - `reference_objective`: `f*` from the literature / the SIF file's comments, or `None`.
    - `paper_iterations`: the paper's iteration counts, for side-by-side reports.
    - `notes`: provenance and caveats (e.g. which formula could not be cross-checked).
    - `kkt_preconditioner`: `(y, lambda, args) -> R`, a nonsingular `lineax` operator with
        `R R^T ~ |K|^-1` for the KKT matrix K, to pass as
        `constrained_minimise(..., preconditioner=problem.kkt_preconditioner)`; `None` when
        the problem has none (all but the PDE-control problems).
    """

    name: str = eqx.field(static=True)
    sif_class: str = eqx.field(static=True)
    y0: Float[Array, " n"]
    lambda0: Float[Array, " m"]
    objective: Callable[[Any, Any], Any] = eqx.field(static=True)
    constraints: Callable[[Any, Any], Any] = eqx.field(static=True)
    args: PyTree = None
    solution: Float[Array, " n"] | None = None
    reference_objective: float | None = eqx.field(static=True, default=None)
    paper_iterations: PaperIterations = eqx.field(static=True, default=PaperIterations())
    notes: str = eqx.field(static=True, default="")
    kkt_preconditioner: Callable[[Any, Any, Any], Any] | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        if np.ndim(self.y0) != 1 or np.ndim(self.lambda0) != 1:
            raise ValueError(
                f"`{self.name}`: y0 and lambda0 must be vectors, got shapes "
                f"{np.shape(self.y0)} and {np.shape(self.lambda0)}."
            )

    @property
    def n(self) -> int:
        """Number of variables."""
        return int(np.shape(self.y0)[0])

    @property
    def m(self) -> int:
        """Number of equality constraints."""
        return int(np.shape(self.lambda0)[0])

    def preconditioner(self, preconditioned: bool) -> Callable[[Any, Any, Any], Any] | None:
        """`kkt_preconditioner` when `preconditioned` (an error if the problem has none), else
        `None`: the `preconditioner` argument of `constrained_minimise`."""
        if not preconditioned:
            return None
        if self.kkt_preconditioner is None:
            raise ValueError(
                f"{self.name} has no KKT preconditioner (only poisson_control and "
                "semilinear_control have one); solve it without preconditioning."
            )
        return self.kkt_preconditioner

    def minimise(self, solver: ExactAugmentedLagrangianNewton, **kwargs) -> ConstrainedSolution:
        """`constrained_minimise` of this problem from its start point (`y0`, `lambda0`,
        `args`); `kwargs` go on to it (`max_steps`, `key`, `throw`, `preconditioner`, …)."""
        return constrained_minimise(
            self.objective,
            self.constraints,
            solver,
            self.y0,
            self.args,
            lambda0=self.lambda0,
            **kwargs,
        )

    def fn(self, y: Float[ArrayLike, " n"], args: PyTree) -> Float[Array, ""]:
        """Objective value `f(y)`."""
        return self.objective(y, args)

    def constraint_fn(self, y: Float[ArrayLike, " n"], args: PyTree) -> Float[Array, " m"]:
        """Constraint residuals `c(y)`."""
        return self.constraints(y, args)


def as_f64(x: ArrayLike) -> np.ndarray:
    """A read-only float64 numpy copy (exact start points, whatever `jax_enable_x64` says)."""
    out = np.array(x, dtype=np.float64)
    out.setflags(write=False)
    return out
