"""MINRES: the minimum-residual Krylov method for symmetric (indefinite) systems, as a lineax
solver."""

from typing import Any, ClassVar, TypeAlias

import jax.lax as lax
import jax.numpy as jnp
import lineax as lx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree

_MINRESState: TypeAlias = lx.AbstractLinearOperator


class MINRES(lx.AbstractLinearSolver[_MINRESState]):
    """MINRES (Paige and Saunders, 1975) for a symmetric, possibly indefinite operator, such
    as a KKT matrix or its split-preconditioned form Rᵀ K R.

    Each step costs one matvec and a few vector operations (a three-term Lanczos recurrence,
    no stored basis), and minimises ‖b − A y‖₂ over the Krylov space, whose value the
    recurrence gives for free. The solve stops as soon as that residual norm is at most
    `atol + rtol · ‖b‖₂`: unlike `lx.GMRES`, it spends no matvec on a first pass or on a
    confirming restart cycle, so an operator with k distinct eigenvalues is solved in k steps.
    The stopping test uses the recurrence's residual, which in floating point can drift from
    the true one by a few ulps times the step count; `constrained_minimise` tests its
    accuracy condition on the true residual anyway.

    `options`: `y0`, the initial guess (default zero); `residual`, its residual b − A y0 when
    the caller already has it (it saves the matvec a nonzero `y0` costs; a zero `y0` costs none
    anyway). Only a caller that solves exactly this system may pass it, so MINRES declares
    `takes_initial_residual` for [`pdeopt.solvers.IterativeKKTSolver`][], and a wrapper such
    as `lx.Normal(MINRES(...))`, which changes the system, does not.

    **Arguments:**

    - `rtol`, `atol`: the tolerance on ‖b − A y‖₂ (relative to ‖b‖₂, and absolute).
    - `max_steps`: the step cap (default: the system size). Reaching it is
        `lx.RESULTS.max_steps_reached`.
    """

    rtol: float
    atol: float
    max_steps: int | None = None
    takes_initial_residual: ClassVar[bool] = True

    def __check_init__(self):
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if isinstance(value, int | float) and not value >= 0:
                raise ValueError(f"MINRES: {name} must be >= 0, got {value!r}.")

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        del options
        if not lx.is_symmetric(operator):
            raise ValueError(
                "MINRES needs a symmetric operator: tag it with `lineax.symmetric_tag` (e.g. "
                "`lx.TaggedLinearOperator(op, lx.symmetric_tag)`), or use `lx.GMRES` for a "
                "nonsymmetric one."
            )
        if operator.in_structure() != operator.out_structure():
            raise ValueError("MINRES needs a square operator.")
        return lx.linearise(operator)

    def compute(
        self, state: _MINRESState, vector: PyTree[Array], options: dict[str, Any]
    ) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
        operator = state
        b, unravel = ravel_pytree(vector)
        y0 = options.get("y0")
        y0 = jnp.zeros_like(b) if y0 is None else ravel_pytree(y0)[0].astype(b.dtype)
        matvec = lambda v: ravel_pytree(operator.mv(unravel(v)))[0]
        max_steps = b.size if self.max_steps is None else self.max_steps
        tolerance = self.atol + self.rtol * jnp.linalg.norm(b)

        r0 = options.get("residual")
        if r0 is None:  # a zero guess (the first round of an outer iteration) costs no matvec
            r = lax.cond(jnp.any(y0 != 0), lambda: b - matvec(y0), lambda: b)
        else:
            r = ravel_pytree(r0)[0].astype(b.dtype)
        beta = jnp.linalg.norm(r)
        safe = lambda x: jnp.where(x > 0, x, 1.0)
        zero = jnp.zeros_like(b)
        one = jnp.ones((), b.dtype)
        # Lanczos vectors v_{j-1}, v_j and their β; Givens rotations (c, s) of the last two
        # steps; search directions w_{j-1}, w_j; η, the residual norm up to its sign.
        init = dict(
            y=y0,
            v_prev=zero,
            v=r / safe(beta),
            beta=beta,
            c_prev=one,
            s_prev=0 * one,
            c=one,
            s=0 * one,
            w_prev=zero,
            w=zero,
            eta=beta,
            step=jnp.array(0),
        )

        def cond(s):
            return (jnp.abs(s["eta"]) > tolerance) & (s["step"] < max_steps) & (s["beta"] > 0)

        def body(s):
            av = matvec(s["v"])
            alpha = jnp.sum(av * s["v"])  # (a fused reduction: cheaper than jnp.dot on CPU)
            v_next = av - alpha * s["v"] - s["beta"] * s["v_prev"]
            beta_next = jnp.linalg.norm(v_next)
            # The new column of the tridiagonal matrix, rotated by the last two rotations.
            a0 = s["c"] * alpha - s["c_prev"] * s["s"] * s["beta"]
            a1 = jnp.hypot(a0, beta_next)
            a2 = s["s"] * alpha + s["c_prev"] * s["c"] * s["beta"]
            a3 = s["s_prev"] * s["beta"]
            c_next, s_next = a0 / safe(a1), beta_next / safe(a1)
            w_next = (s["v"] - a3 * s["w_prev"] - a2 * s["w"]) / safe(a1)
            return dict(
                y=s["y"] + c_next * s["eta"] * w_next,
                v_prev=s["v"],
                v=v_next / safe(beta_next),
                beta=beta_next,
                c_prev=s["c"],
                s_prev=s["s"],
                c=c_next,
                s=s_next,
                w_prev=s["w"],
                w=w_next,
                eta=-s_next * s["eta"],
                step=s["step"] + 1,
            )

        out = lax.while_loop(cond, body, init)
        converged = jnp.abs(out["eta"]) <= tolerance
        result = lx.RESULTS.where(
            converged | (out["beta"] <= 0),  # β = 0: the Krylov space holds the solution
            lx.RESULTS.successful,
            lx.RESULTS.max_steps_reached,
        )
        stats = {"num_steps": out["step"], "max_steps": max_steps}
        return unravel(out["y"]), result, stats

    def transpose(self, state: _MINRESState, options: dict[str, Any]):
        del options
        return state.transpose(), {}

    def conj(self, state: _MINRESState, options: dict[str, Any]):
        del options
        return lx.conj(state), {}

    def assume_full_rank(self):
        return True
