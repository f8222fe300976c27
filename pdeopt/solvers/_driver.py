"""`constrained_minimise`: the entry point of the constrained solver, in the shape of
`optimistix.minimise` (pytrees, closure conversion, one compilation, an adjoint)."""

import warnings
from collections.abc import Callable
from typing import Any, no_type_check

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import optimistix as optx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, PRNGKeyArray, PyTree

from .._results import RESULTS
from ._al_newton import ExactAugmentedLagrangianNewton
from ._merit import lagrangian_and_constraints


class ConstrainedSolution(eqx.Module):
    """The result of [`pdeopt.solvers.constrained_minimise`][].

    **Attributes:**

    - `value`: the minimiser x, a pytree of the structure of `y0`.
    - `multipliers`: the Lagrange multipliers λ (L = f + λᵀc), a pytree of the structure of
      `constraint_fn`'s output.
    - `result`: a [`pdeopt.RESULTS`][] item.
    - `stats`: arrays only (so a solution passes through `jax.jit`): `num_steps` (outer
      iterations), `max_steps`, `num_inner_steps`, `num_fn_evals` (evaluations of f, ∇f, c
      and Gᵀλ: one per outer iteration plus one per line-search trial), `flops` (the KKT
      solver's cost model plus the faithful safeguards' dense work),
      `num_penalty_updates`, `num_hessian_shifts`, `num_regularizations` (regularised
      re-solves of a singular KKT system), `num_inner_cap_hits`, `constraint_norm` (‖c‖ at
      the returned x), and the histories `kkt_history` (‖∇L‖ at x₀…x_T, shape
      `(max_steps + 1,)`), `alpha_history` and `inner_steps_history` (shape `(max_steps,)`),
      padded with NaN (−1 for step counts).
    - `state`: the solver's final state (flat x and λ, penalties, counters).
    """

    value: PyTree[Array]
    multipliers: PyTree[Array]
    result: RESULTS
    stats: dict[str, Array]
    state: Any


class _Flat(eqx.Module):
    """`fn(unravel(x), args)` on the flat vector x, its output flattened when `ravel`."""

    fn: Callable
    unravel: Callable = eqx.field(static=True)
    ravel: bool = eqx.field(static=True)

    def __call__(self, x, args):
        out = self.fn(self.unravel(x), args)
        return ravel_pytree(out)[0] if self.ravel else out


# `optx.ImplicitAdjoint.apply` needs global functions without a closure, which a runtime
# type-checking wrapper (jaxtyping's import hook in the tests) would add.
@no_type_check
def _primal(inputs):
    fn, constraint_fn, solver, y0, lambda0, args, key, max_steps, preconditioner, while_loop = (
        inputs
    )
    init = solver.init(fn, constraint_fn, y0, lambda0, args, key, max_steps)
    final = while_loop(
        lambda st: ~solver.terminate(st, max_steps),
        lambda st: solver.step(fn, constraint_fn, args, preconditioner, st),
        init,
        max_steps=max_steps,
    )
    result, stats = solver.postprocess(final, max_steps)
    return (final.x, final.lam), (result, stats, final)


@no_type_check
def _rewrite(root, residual, inputs):
    """The KKT conditions F(x, λ; args) = (∇f + Gᵀλ, c) = 0 that define the solution."""
    fn, constraint_fn, _, _, _, args, _, _, _, _ = inputs
    x, lam = root
    return jax.grad(lagrangian_and_constraints, argnums=2, has_aux=True)(
        fn, constraint_fn, x, lam, args
    )


def _as_float64(name: str, tree: PyTree[ArrayLike]) -> PyTree[Array]:
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError(f"`constrained_minimise` got an empty `{name}`.")
    for leaf in leaves:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(
                f"`constrained_minimise` needs floating-point `{name}`; got dtype {dtype}."
            )
        if dtype == jnp.float64:
            continue
        if not jax.config.read("jax_enable_x64"):
            raise ValueError(
                f"`constrained_minimise` runs in float64 (its accuracy condition is unreachable "
                f"in float32), but `{name}` has dtype {dtype} and x64 is disabled; call "
                '`jax.config.update("jax_enable_x64", True)` at start-up.'
            )
        warnings.warn(
            f"`constrained_minimise` promotes `{name}` from {dtype} to float64 "
            "(its accuracy condition is unreachable in float32).",
            stacklevel=3,
        )
        break
    return jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), tree)


_DEFAULT_ADJOINT = optx.ImplicitAdjoint(linear_solver=lx.LU())


def constrained_minimise(
    fn: Callable[[PyTree[Array], PyTree], ArrayLike],
    constraint_fn: Callable[[PyTree[Array], PyTree], PyTree[Array]],
    solver: ExactAugmentedLagrangianNewton,
    y0: PyTree[ArrayLike],
    args: PyTree = None,
    *,
    lambda0: PyTree[ArrayLike] | None = None,
    max_steps: int = 256,
    key: PRNGKeyArray | None = None,
    throw: bool = True,
    adjoint: optx.AbstractAdjoint = _DEFAULT_ADJOINT,
    preconditioner: Callable[[Array, Array, PyTree], lx.AbstractLinearOperator] | None = None,
) -> ConstrainedSolution:
    """Solve min_y f(y) subject to c(y) = 0 (equality constraints only).

    Shaped like `optimistix.minimise`: `y0` and the constraints may be pytrees; `fn` and
    `constraint_fn` may close over JAX arrays, traced ones included (they are
    closure-converted, so gradients reach what they close over); the call is compiled once
    per shapes and configuration and reused on later calls with the same functions and
    solver, without a user `jax.jit`; and it runs under an outer `jit`, `vmap` or `grad`.

    The solve is one `lax.while_loop` over the solver's `step`. Gradients of the solution with
    respect to `args` (and closed-over arrays) come from the `adjoint`: by default the implicit
    function theorem on the KKT conditions F(x, λ; args) = (∇f + Gᵀλ, c) = 0, so the solver
    iterations are never differentiated.

    **Arguments:**

    - `fn`: the objective, `fn(y, args) -> scalar`.
    - `constraint_fn`: the constraints, `constraint_fn(y, args) -> pytree of arrays` (m ≥ 1
      entries in all).
    - `solver`: an [`pdeopt.solvers.ExactAugmentedLagrangianNewton`][].
    - `y0`: the starting point, a pytree of float64 arrays (float32 is promoted with a
      warning).
    - `args`: passed to `fn` and `constraint_fn`.
    - `lambda0`: initial multipliers, of the structure of `constraint_fn`'s output (default
      zeros).
    - `max_steps`: outer iteration cap (static; sizes the history arrays).
    - `key`: PRNG key for randomized inner solvers (default `jax.random.key(0)`). It is split
      every outer iteration and every inner round; the same key reproduces the same iterates.
    - `throw`: if `True`, raise on any result other than `RESULTS.successful`; otherwise return
      the failure in `solution.result`.
    - `adjoint`: an `optx.AbstractAdjoint`; `optx.ImplicitAdjoint(linear_solver=lx.LU())` by
      default. Its linear solver sees the symmetric indefinite KKT Jacobian.
    - `preconditioner`: `preconditioner(x, λ, args) -> R` on the flattened (x, λ) ∈ R^{n+m}, a
      nonsingular `lx.AbstractLinearOperator` with R Rᵀ ≈ |K|⁻¹, built once per outer
      iteration: a symmetric positive definite S = P^(-1/2) for a block-diagonal KKT
      preconditioner P = diag(B̂, Ĝ B̂⁻¹ Ĝᵀ), or a factor R = Q D (Q orthogonal, D diagonal)
      of P⁻¹ = Q D² Qᵀ, which costs one application of Q each way per product. The KKT solver
      then solves (Rᵀ K R) w = −Rᵀ∇L and z = R w; the accuracy condition is still tested on
      K z + ∇L. The PDE-control problems provide one as `problem.kkt_preconditioner`.
      `stats["flops"]` does not count the applications of R.

    **Returns:**

    A [`pdeopt.solvers.ConstrainedSolution`][].
    """
    if not isinstance(solver, ExactAugmentedLagrangianNewton):
        raise TypeError(
            "`constrained_minimise(..., solver=...)` takes an `ExactAugmentedLagrangianNewton`, "
            f"e.g. `ExactAugmentedLagrangianNewton()`; got {type(solver).__name__}."
        )
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
        raise ValueError(f"`max_steps` must be a positive Python int; got {max_steps!r}.")
    y0 = _as_float64("y0", y0)
    lambda0 = None if lambda0 is None else _as_float64("lambda0", lambda0)
    if key is None:
        key = jr.key(0)
    return _solve(
        fn, constraint_fn, solver, y0, args, lambda0, key, max_steps, throw, adjoint, preconditioner
    )


@eqx.filter_jit
def _solve(
    fn, constraint_fn, solver, y0, args, lambda0, key, max_steps, throw, adjoint, preconditioner
) -> ConstrainedSolution:
    fn = eqx.filter_closure_convert(fn, y0, args)
    constraint_fn = eqx.filter_closure_convert(constraint_fn, y0, args)
    if jax.tree.structure(fn.out_struct) != jax.tree.structure(0.0) or fn.out_struct.shape:
        raise ValueError(
            f"`fn(y, args)` must return a scalar; got {fn.out_struct}. For vector-valued "
            "targets use a least-squares objective, e.g. `0.5 * jnp.sum(r ** 2)`."
        )
    c_struct = constraint_fn.out_struct
    c_leaves = jax.tree.leaves(c_struct)
    if not c_leaves or sum(leaf.size for leaf in c_leaves) == 0:
        raise ValueError(
            "`constraint_fn(y, args)` must return a non-empty array or pytree of arrays; got "
            f"{c_struct}. For unconstrained problems use `optimistix.minimise`."
        )
    x0, unravel_y = ravel_pytree(y0)
    c_zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float64), c_struct)
    if lambda0 is None:
        lambda0 = c_zeros
    elif jax.tree.structure(lambda0) != jax.tree.structure(c_zeros) or any(
        jnp.shape(a) != jnp.shape(b)
        for a, b in zip(jax.tree.leaves(lambda0), jax.tree.leaves(c_zeros))
    ):
        raise ValueError(
            "`lambda0` must have the structure and shapes of `constraint_fn`'s output, "
            f"{c_struct}; got {jax.tree.map(jnp.shape, lambda0)}."
        )
    lam0, unravel_c = ravel_pytree(lambda0)
    flat_fn = _Flat(fn, unravel_y, ravel=False)
    flat_c = _Flat(constraint_fn, unravel_y, ravel=True)
    if preconditioner is not None:
        _check_preconditioner(preconditioner, x0, lam0, args)
    inputs = (flat_fn, flat_c, solver, x0, lam0, args, key, max_steps, preconditioner)
    (x, lam), (result, stats, state) = adjoint.apply(
        _primal, _rewrite, inputs, frozenset({lx.symmetric_tag})
    )
    sol = ConstrainedSolution(unravel_y(x), unravel_c(lam), result, stats, state)
    if throw:  # (`error_if` cannot carry the PRNG key in the state)
        keys, checked = eqx.partition(sol, _is_key)
        checked = result.error_if(checked, result != RESULTS.successful)
        sol = eqx.combine(keys, checked)
    return sol


def _check_preconditioner(preconditioner, x0, lam0, args) -> None:
    size = x0.shape[0] + lam0.shape[0]
    if not callable(preconditioner):
        raise TypeError(
            "`preconditioner` must be a function `(x, lambda, args) -> lx.AbstractLinearOperator`"
            f", got {type(preconditioner).__name__}."
        )
    struct = eqx.filter_eval_shape(preconditioner, x0, lam0, args)
    if not isinstance(struct, lx.AbstractLinearOperator):
        raise TypeError(
            "`preconditioner(x, lambda, args)` must return an `lx.AbstractLinearOperator` (e.g. "
            f"`lx.FunctionLinearOperator`), got {type(struct).__name__}."
        )
    if struct.in_size() != size or struct.out_size() != size:
        raise ValueError(
            f"`preconditioner(x, lambda, args)` must act on R^(n+m) = R^{size} (x then lambda), "
            f"got an operator from R^{struct.in_size()} to R^{struct.out_size()}."
        )


def _is_key(x) -> bool:
    return eqx.is_array(x) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
