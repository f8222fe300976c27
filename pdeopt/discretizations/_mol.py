"""Method of lines: integrate a semi-discrete system du/dt = f(t, u, args) with diffrax."""

import typing
from collections.abc import Callable
from typing import Any

import diffrax as dfx
import jax
import lineax as lx
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float, PyTree, Scalar

from .._custom_types import ScalarLike

_VectorField = Callable[[Float[Array, ""], PyTree[Array], PyTree], PyTree[Array]]


def _is_imex(solver: dfx.AbstractSolver) -> bool:
    """Whether the solver integrates a `MultiTerm` of (explicit, implicit) terms."""
    return typing.get_origin(solver.term_structure) is dfx.MultiTerm


def _add(a, b):
    return jax.tree.map(lambda x, y: x + y, a, b)


def solve_mol(
    rhs: _VectorField | tuple[_VectorField, _VectorField],
    y0: PyTree[ArrayLike],
    ts: Float[ArrayLike, " times"],
    *,
    args: PyTree = None,
    solver: dfx.AbstractSolver = dfx.Tsit5(),
    stepsize_controller: dfx.AbstractStepSizeController = dfx.PIDController(
        rtol=1.0e-6, atol=1.0e-8
    ),
    dt0: ScalarLike | None = None,
    max_steps: int | None = 16_384,
    adjoint: dfx.AbstractAdjoint = dfx.RecursiveCheckpointAdjoint(),
    throw: bool = True,
) -> dfx.Solution:
    """Integrate a method-of-lines system from `ts[0]` to `ts[-1]`, saving at every `ts`.

    The spatial discretisation is the user's vector field; this helper only wires it to
    diffrax. Three families of time integrators fit:

    - **explicit** (`solver=diffrax.Tsit5()`, the default): `rhs` is one function;
    - **implicit** (`solver=diffrax.Kvaerno5()`): `rhs` is one function; each step solves
      a nonlinear system with the solver's root finder (a dense Jacobian: fine for
      1-D grids of a few thousand points);
    - **IMEX** (`solver=diffrax.Sil3()`; any solver whose `term_structure` is a `MultiTerm`):
      `rhs` is a pair `(explicit, implicit)`, e.g. advection and diffusion; only the second
      is solved implicitly. (diffrax 0.7.2's `KenCarp3/4/5` fail even on scalar linear
      problems with jax 0.10, see `tests/test_mol.py::test_kencarp_scalar`; `Sil3` works.)

    Step sizes are adaptive with `stepsize_controller=diffrax.PIDController(rtol, atol)` (the
    default; `dt0=None` lets diffrax pick the first step) or fixed with
    `stepsize_controller=diffrax.ConstantStepSize()` and a given `dt0`. Implicit and IMEX
    solvers with fixed steps need root-finder tolerances, e.g.
    `diffrax.Kvaerno5(root_finder=diffrax.VeryChord(rtol=1e-10, atol=1e-10))`.

    **Arguments:**

    - `rhs`: `f(t, y, args)`, or a split `(f_explicit, f_implicit)`. An IMEX solver uses the
        split; any other solver integrates the sum, so a problem can state its split once and
        leave the choice of integrator to configuration.
    - `y0`: the initial state (a PyTree of arrays).
    - `ts`: increasing save times; the integration runs from `ts[0]` to `ts[-1]` and the
        solution includes `ts[0]`.
    - `args`: passed to `rhs`.
    - `solver`, `stepsize_controller`, `dt0`, `max_steps`, `adjoint`: as in
        `diffrax.diffeqsolve`.
    - `throw`: raise if the integration fails (True), or return the failure in
        `Solution.result` (False; the unreached `ys` are then `inf`).

    **Returns:**

    The `diffrax.Solution`: `ys` holds the state at every `ts` (leading axis), `result` the
    `diffrax.RESULTS` item, `stats` the step counts.
    """
    imex = _is_imex(solver)
    if isinstance(rhs, tuple | list):
        if len(rhs) != 2 or not all(callable(f) for f in rhs):
            raise ValueError(
                "`solve_mol(rhs=...)`: pass one vector field `f(t, y, args)` or a pair "
                "`(f_explicit, f_implicit)`."
            )
        explicit, implicit = rhs
        if imex:
            terms = dfx.MultiTerm(dfx.ODETerm(explicit), dfx.ODETerm(implicit))
        else:
            terms = dfx.ODETerm(lambda t, y, args: _add(explicit(t, y, args), implicit(t, y, args)))
    else:
        if imex:
            raise ValueError(
                f"`solve_mol`: {type(solver).__name__} is an IMEX solver and needs "
                "`rhs=(f_explicit, f_implicit)`; split the vector field into its non-stiff "
                "and stiff parts, or use `diffrax.Tsit5()` / `diffrax.Kvaerno5()`."
            )
        terms = dfx.ODETerm(rhs)
    if isinstance(stepsize_controller, dfx.ConstantStepSize) and dt0 is None:
        raise ValueError(
            "`solve_mol(stepsize_controller=ConstantStepSize())` needs a step: pass `dt0`."
        )
    return dfx.diffeqsolve(
        terms,
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=dt0,
        y0=y0,
        args=args,
        saveat=dfx.SaveAt(ts=ts),
        stepsize_controller=stepsize_controller,
        max_steps=max_steps,
        adjoint=adjoint,
        throw=throw,
    )


# diffrax replaces a root finder's `rtol`/`atol`/`norm` that hold this marker by the step-size
# controller's (as for its own default, `with_stepsize_controller_tols(VeryChord)()`).
_STEPSIZE_TOL = dfx.with_stepsize_controller_tols(dfx.VeryChord)().rtol


class TridiagonalChord(optx.AbstractRootFinder):
    """`diffrax.VeryChord` with a tridiagonal Newton matrix.

    The chord method of diffrax's implicit Runge–Kutta solvers (Jacobian recomputed once per
    step, not per stage), with the Jacobian tagged `lineax.tridiagonal_tag`: it is extracted
    from three Jacobian-vector products (columns coloured by index mod 3) and factorised by
    `lineax.Tridiagonal()` (LAPACK `gtsv`), O(n) instead of the n products and O(n³)
    factorisation of a dense Jacobian. Correct only for systems whose Jacobian *is*
    tridiagonal in the flattened state, such as a 1-D finite-volume state ordered along
    the line (`problems.diffusion_sorption.ImplicitReferenceSolver`, `problems.porous_medium`).

    **Arguments:**

    - `rtol`, `atol`, `norm`: termination tolerances and norm, as in `diffrax.VeryChord`. By
        default taken from the step-size controller of `diffrax.diffeqsolve`.
    - `kappa`: the early-convergence tolerance of `diffrax.VeryChord`.
    """

    rtol: float = _STEPSIZE_TOL
    atol: float = _STEPSIZE_TOL
    norm: Callable[[PyTree], Scalar] = _STEPSIZE_TOL
    kappa: float = 1.0e-2

    def _chord(self) -> dfx.VeryChord:
        return dfx.VeryChord(self.rtol, self.atol, self.norm, self.kappa, lx.Tridiagonal())

    def init(self, fn, y, args, options: dict[str, Any], f_struct, aux_struct, tags):
        tags = frozenset(tags) | {lx.tridiagonal_tag}
        return self._chord().init(fn, y, args, options, f_struct, aux_struct, tags)

    def step(self, fn, y, args, options: dict[str, Any], state, tags):
        return self._chord().step(fn, y, args, options, state, tags)

    def terminate(self, fn, y, args, options: dict[str, Any], state, tags):
        return self._chord().terminate(fn, y, args, options, state, tags)

    def postprocess(self, fn, y, aux, args, options: dict[str, Any], state, tags, result):
        return self._chord().postprocess(fn, y, aux, args, options, state, tags, result)
