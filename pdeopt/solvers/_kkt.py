"""The Newton (KKT) system of one outer iteration and the objects that solve it.

An [`pdeopt.solvers.AbstractKKTSolver`][] owns everything that depends on how the system is
solved: how a round of the inner loop runs, how the accuracy condition becomes the linear
solver's tolerance, how the remaining inner-step budget caps it, and what a round costs.
"""

import abc
import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import lineax.internal as lxi
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._sketching import AbstractRandomizedLinearSolver

_Scalar = Float[Array, ""]


class KKTSystem(eqx.Module):
    """K z = −∇L with K = [[B, Gᵀ], [G, −δ_c I]], B = ∇²ₓL + shift·I, ∇L = (∇ₓL, c).

    Built once per outer iteration from linearisations at the current iterate; δ_c > 0 only in
    a regularised re-solve of the practical safeguards.
    """

    hvp: Callable[[Array], Array]
    jvp_c: Callable[[Array], Array]
    vjp_c: Callable[[Array], Array]
    grad_x: Float[Array, " n"]
    c: Float[Array, " m"]
    shift: _Scalar
    dual: _Scalar

    @property
    def grad_l(self) -> Float[Array, " size"]:
        return jnp.concatenate([self.grad_x, self.c])

    def mv(self, z: Array) -> Array:
        n = self.grad_x.shape[0]
        dx, dlam = z[:n], z[n:]
        return jnp.concatenate(
            [
                self.hvp(dx) + self.shift * dx + self.vjp_c(dlam),
                self.jvp_c(dx) - self.dual * dlam,
            ]
        )

    def operator(self) -> lx.FunctionLinearOperator:
        struct = jax.ShapeDtypeStruct(self.grad_l.shape, self.grad_l.dtype)
        return lx.FunctionLinearOperator(self.mv, struct, tags=lx.symmetric_tag)


class AbstractKKTSolver(eqx.Module):
    """How the inner loop solves the KKT system: a direct or an iterative variant.

    The inner loop runs rounds until ‖r‖ ≤ τ (r = Kz + ∇L, τ from the safeguards). Each round
    calls `solve_round` with the current unknown, the residual the linear solver sees, τ
    scaled to that residual, the inner steps left and a fresh key.
    """

    linear_solver: eqx.AbstractVar[lx.AbstractLinearSolver]

    @abc.abstractmethod
    def init(self, system: lx.AbstractLinearOperator) -> Any:
        """Per-outer-iteration state (a factorisation, or nothing)."""

    @abc.abstractmethod
    def solve_round(
        self,
        system: lx.AbstractLinearOperator,
        rhs: Array,
        w: Array,
        residual: Array,
        tolerance: _Scalar,
        steps_left: Int[Array, ""],
        key: PRNGKeyArray,
        state: Any,
    ) -> tuple[Array, Int[Array, ""], Any]:
        """One round: returns the new unknown, the steps it took and a failure flag."""

    @abc.abstractmethod
    def flops(self, steps: Int[Array, ""], size: int, first: Any) -> _Scalar:
        """The modelled cost of a round of `steps` steps on the N×N system (N = `size`); `first`:
        the first round of the outer iteration."""


class DirectKKTSolver(AbstractKKTSolver):
    """A direct solver, factorised once per outer iteration: each round solves K dz = −r and
    sets z ← z + dz, so rounds after the first are iterative refinement.

    Cost model: (2/3)N³ for the factorisation plus 2N² per round (LU's).

    **Arguments:**

    - `linear_solver`: a direct `lx.AbstractLinearSolver` (default `lx.LU()`); the KKT matrix
        is materialised through `as_matrix()`.
    """

    linear_solver: lx.AbstractLinearSolver = lx.LU()

    def init(self, system):
        return self.linear_solver.init(system, {})

    def solve_round(self, system, rhs, w, residual, tolerance, steps_left, key, state):
        sol = lx.linear_solve(
            system,
            -residual,
            self.linear_solver,
            state=state,
            options={"key": key},
            throw=False,
        )
        return w + sol.value, jnp.array(1), sol.result != lx.RESULTS.successful

    def flops(self, steps, size, first):
        return 2.0 * size**2 + jnp.where(first, (2.0 / 3.0) * size**3, 0.0)


def _is_none(x) -> bool:
    return x is None


def _field_names(module) -> set[str]:
    return {f.name for f in dataclasses.fields(module)}


class IterativeKKTSolver(AbstractKKTSolver):
    """An iterative solver, warm-started from the current z and stopped by the accuracy
    condition itself.

    Each round solves K z = −∇L with `options = {"key": subkey, "y0": z}`, and
    `options["residual"]` = −(K z + ∇L) for a solver that declares `takes_initial_residual`
    ([`pdeopt.solvers.MINRES`][]: it saves a matvec per round). The solver's
    tolerance fields, where it declares them as lineax's iterative solvers do, are set: `rtol =
    0`, `atol = τ` and `norm` the 2-norm, so it stops exactly at ‖r‖₂ ≤ τ; `max_steps` (and a
    sketch solver's `stagnation_iters`) become the inner steps left.
    Running out of steps (or stagnating) is not a failure: the inner caps decide, and the
    next round resumes from the current z. A solver without those
    fields (e.g. `lx.Normal(...)`, whose tolerance bounds ‖Kᵀr‖, not ‖r‖) keeps its own, and
    further warm-started rounds make up the difference.

    Cost model: the solver's own `modelled_flops(num_steps, size)` for pdeopt's randomized
    solvers ([`pdeopt.solvers.AbstractRandomizedLinearSolver`][]), else `matvecs_per_step`
    dense matvecs (2N² each) per step.

    **Arguments:**

    - `linear_solver`: an iterative `lx.AbstractLinearSolver`, e.g.
        [`pdeopt.solvers.GaussianSketchProject`][], `lx.GMRES(rtol=0, atol=0, restart=20)`,
        `lx.Normal(NystromPCG(...))`.
    - `matvecs_per_step`: the matvecs per step of the fallback cost model (1 for GMRES, 2 for
        BiCGStab and `lx.Normal`).
    """

    linear_solver: lx.AbstractLinearSolver
    matvecs_per_step: int = eqx.field(static=True, default=1)

    def init(self, system):
        return None

    def _bounded(self, tolerance, steps_left) -> lx.AbstractLinearSolver:
        solver = self.linear_solver
        names = _field_names(solver)
        if {"rtol", "atol"} <= names:
            solver = eqx.tree_at(lambda s: (s.rtol, s.atol), solver, (0.0, tolerance))
        if "norm" in names:
            solver = eqx.tree_at(lambda s: s.norm, solver, lxi.two_norm)
        if "max_steps" in names:
            cap = solver.max_steps  # pyright: ignore[reportAttributeAccessIssue]
            cap = steps_left if cap is None else jnp.minimum(cap, steps_left)
            solver = eqx.tree_at(lambda s: s.max_steps, solver, cap, is_leaf=_is_none)
            if "stagnation_iters" in names:  # the inner caps decide, as for the step cap
                solver = eqx.tree_at(lambda s: s.stagnation_iters, solver, cap, is_leaf=_is_none)
        return solver

    def solve_round(self, system, rhs, w, residual, tolerance, steps_left, key, state):
        solver = self._bounded(tolerance, steps_left)
        options = {"key": key, "y0": w}
        if getattr(self.linear_solver, "takes_initial_residual", False):
            options["residual"] = -residual  # b − A w, already computed by the inner loop
        sol = lx.linear_solve(system, rhs, solver, options=options, throw=False)
        steps = jnp.asarray(sol.stats["num_steps"])
        # Out of steps or progress is not a failure: the inner caps decide what happens next.
        ok = (
            (sol.result == lx.RESULTS.successful)
            | (sol.result == lx.RESULTS.max_steps_reached)
            | (sol.result == lx.RESULTS.stagnation)
        )
        return sol.value, steps, ~ok

    def flops(self, steps, size, first):
        if isinstance(self.linear_solver, AbstractRandomizedLinearSolver):
            return self.linear_solver.modelled_flops(steps.astype(float), size)
        return 2.0 * self.matvecs_per_step * steps.astype(float) * size**2
