"""Reference solvers for the AdaSketch-Newton benchmarks (Hong et al., ICML 2023).

Benchmark-only: IPOPT (through casadi) and SciPy are optional dependencies, imported lazily;
install them with `pip install -e ".[bench]"`.

- [`exact_newton`][]: `constrained_minimise` with `lx.LU()` on the KKT system and the same
  merit, line search and penalty logic (pdeopt's own reference side).
- [`ipopt`][]: IPOPT with MUMPS through `casadi.nlpsol`. The NLP is built from the problem's JAX
  functions through `casadi.Callback`s whose gradient, constraint Jacobian and (upper-triangular)
  Hessian of the Lagrangian are exact, `jax.jit`-compiled JAX derivatives, passed to IPOPT with
  the `grad_f` / `jac_g` / `hess_lag` options (dense; CUTEst sizes). [`ipopt_sparse`][] solves a
  casadi-native model (sparse matrices, casadi's own AD) for the large PDE problems.
- [`trust_constr`][]: `scipy.optimize.minimize(method="trust-constr")` with exact `jac` and
  `hess` (objective Hessian, plus the constraint Hessian through
  `NonlinearConstraint(hess=...)`), all from JAX.

Every solver returns a [`BaselineResult`][]; KKT residuals are always recomputed here, in
pdeopt's sign convention L = f + λᵀc (the same as IPOPT's and SciPy's), by [`kkt_residual`][].
"""

import dataclasses
import importlib
from collections.abc import Callable
from functools import partial
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from experiments._report import time_alternating, time_once
from pdeopt import RESULTS
from pdeopt.solvers import (
    AbstractKKTSolver,
    DirectKKTSolver,
    ExactAugmentedLagrangianNewton,
    IterativeKKTSolver,
    constrained_minimise,
)
from problems.cutest import ConstrainedProblem

INSTALL_HINT = 'pip install -e ".[bench]"'


def require(module: str):
    """Import an optional benchmark dependency, or fail naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"This benchmark baseline needs `{module}`, which is not a pdeopt dependency; "
            f"install the benchmark extra with `{INSTALL_HINT}`."
        ) from e


def has(module: str) -> bool:
    """Whether an optional benchmark dependency is importable."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


@dataclasses.dataclass
class BaselineResult:
    """The uniform record of one solve.

    - `solver`: a label, e.g. `"ipopt"`.
    - `x`, `lam`: the final iterate and multipliers (L = f + λᵀc).
    - `kkt`: ‖(∇f + Gᵀλ, c)‖₂ at `(x, lam)`, recomputed by [`kkt_residual`][].
    - `iterations`: the solver's own iteration count (outer iterations for pdeopt).
    - `time`: wall-clock seconds of the solve, compilation excluded where the solver compiles.
    - `success`: the solver's own success flag.
    - `extra`: solver-specific statistics (pdeopt's `stats`, IPOPT's return status, …).
    """

    solver: str
    x: np.ndarray
    lam: np.ndarray
    kkt: float
    iterations: int
    time: float
    success: bool
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------------------
# JAX derivatives of a problem, as jitted numpy-in/numpy-out callables
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Derivatives:
    f: Callable
    grad_f: Callable
    hess_f: Callable
    c: Callable
    jac_c: Callable
    hess_c: Callable  # (x, v) -> Σ v_i ∇²c_i
    hess_lag: Callable  # (x, σ, λ) -> σ∇²f + Σ λ_i ∇²c_i
    kkt: Callable


def _derivatives(problem: ConstrainedProblem) -> _Derivatives:
    fn, cfn, args = problem.objective, problem.constraints, problem.args

    def lag(x, sigma, lam):
        return sigma * fn(x, args) + jnp.dot(lam, cfn(x, args))

    def kkt(x, lam):
        grad_x = jax.grad(lag)(x, 1.0, lam)
        return jnp.sqrt(jnp.sum(grad_x**2) + jnp.sum(cfn(x, args) ** 2))

    def np_fn(f):
        jitted = jax.jit(f)
        return lambda *a: np.asarray(jitted(*(jnp.asarray(v, jnp.float64) for v in a)))

    return _Derivatives(
        f=np_fn(lambda x: fn(x, args)),
        grad_f=np_fn(jax.grad(lambda x: fn(x, args))),
        hess_f=np_fn(jax.hessian(lambda x: fn(x, args))),
        c=np_fn(lambda x: cfn(x, args)),
        jac_c=np_fn(jax.jacfwd(lambda x: cfn(x, args))),
        hess_c=np_fn(jax.hessian(lambda x, v: lag(x, 0.0, v))),
        hess_lag=np_fn(jax.hessian(lag)),
        kkt=np_fn(kkt),
    )


def kkt_residual(problem: ConstrainedProblem, x, lam) -> float:
    """‖(∇f(x) + G(x)ᵀλ, c(x))‖₂, pdeopt's KKT residual (sign convention L = f + λᵀc)."""
    fn, cfn, args = problem.objective, problem.constraints, problem.args
    x = jnp.asarray(x, jnp.float64)
    lam = jnp.asarray(lam, jnp.float64)
    c, vjp = jax.vjp(lambda y: cfn(y, args), x)
    grad_x = jax.grad(fn)(x, args) + vjp(lam)[0]
    return float(jnp.sqrt(jnp.sum(grad_x**2) + jnp.sum(c**2)))


def agreement(a: BaselineResult, b: BaselineResult) -> tuple[float, float]:
    """Relative ∞-norm differences (x, λ) between two solutions, ‖a − b‖∞ / max(1, ‖b‖∞)."""

    def rel(u, v):
        return float(np.max(np.abs(u - v)) / max(1.0, float(np.max(np.abs(v)))))

    return rel(a.x, b.x), rel(a.lam, b.lam)


# --------------------------------------------------------------------------------------
# (a) exact Newton: pdeopt with a direct KKT solve
# --------------------------------------------------------------------------------------


@eqx.filter_jit
def _constrained_run(
    objective, constraints, solver, y0, lambda0, args, key, max_steps, preconditioner
):
    return constrained_minimise(
        objective,
        constraints,
        solver,
        y0,
        args,
        lambda0=lambda0,
        max_steps=max_steps,
        throw=False,
        key=key,
        preconditioner=preconditioner,
    )


_COMPILED: dict = {}


def _compiled(inputs):
    """`_constrained_run` compiled ahead of time for `inputs`, cached on everything but the
    values of its arrays (so seeds and array-valued hyperparameters reuse one compile)."""
    dynamic, static = eqx.partition(inputs, eqx.is_array)
    leaves, treedef = jax.tree.flatten(static)
    shapes = tuple((x.shape, x.dtype) for x in jax.tree.leaves(dynamic))
    cache_key = (treedef, tuple(leaves), shapes)
    if cache_key not in _COMPILED:
        _COMPILED[cache_key] = _constrained_run.lower(*inputs).compile()
    return _COMPILED[cache_key]


def dynamic_hyperparameters(
    solver: ExactAugmentedLagrangianNewton,
) -> ExactAugmentedLagrangianNewton:
    """`solver` with (μ₀, ν₀, δ₀, β) as float64 arrays, so that a grid over them compiles once."""
    return eqx.tree_at(
        lambda s: (s.mu0, s.nu0, s.delta0, s.beta),
        solver,
        tuple(
            jnp.asarray(v, jnp.float64)
            for v in (solver.mu0, solver.nu0, solver.delta0, solver.beta)
        ),
    )


def kkt_solver(
    linear_solver: lx.AbstractLinearSolver, matvecs_per_step: int = 1
) -> AbstractKKTSolver:
    """The benchmarks' KKT solver for `linear_solver`: `DirectKKTSolver` for `lx.LU()` (their
    only direct solver), else `IterativeKKTSolver`."""
    if isinstance(linear_solver, lx.LU):
        return DirectKKTSolver(linear_solver)
    return IterativeKKTSolver(linear_solver, matvecs_per_step=matvecs_per_step)


def pdeopt_solve(
    problem: ConstrainedProblem,
    solver: ExactAugmentedLagrangianNewton,
    *,
    label: str,
    seed: int = 0,
    max_steps: int = 256,
    repeats: int = 1,
    preconditioned: bool = False,
) -> BaselineResult:
    """Run `constrained_minimise` on `problem`: compile ahead of time, then time `repeats`
    solves (at least one, no warm-up; the median is reported). Randomness:
    `key=jax.random.key(seed)`.
    `preconditioned=True` passes `problem.kkt_preconditioner` (which must exist).
    `extra` holds pdeopt's `stats` (as numpy), the result message and the compile time.
    """
    preconditioner = problem.preconditioner(preconditioned)
    y0, lambda0 = jnp.asarray(problem.y0), jnp.asarray(problem.lambda0)
    inputs = (problem.objective, problem.constraints, solver, y0, lambda0, problem.args)
    inputs = (*inputs, jax.random.key(seed), max_steps, preconditioner)
    compilation = time_once(partial(_compiled, inputs))
    solve = partial(compilation.output, *inputs)
    timing = time_alternating({label: solve}, repeats=max(repeats, 1), warmup=0)[label]
    sol = timing.output
    stats = {k: np.asarray(v) if isinstance(v, jax.Array) else v for k, v in sol.stats.items()}
    x, lam = np.asarray(sol.value), np.asarray(sol.multipliers)
    return BaselineResult(
        solver=label,
        x=x,
        lam=lam,
        kkt=kkt_residual(problem, x, lam),
        iterations=int(stats["num_steps"]),
        time=timing.median,
        success=bool(sol.result == RESULTS.successful),
        extra={**stats, "result": sol.result, "compile_time": compilation.median},
    )


def exact_newton(
    problem: ConstrainedProblem,
    *,
    solver: ExactAugmentedLagrangianNewton | None = None,
    max_steps: int = 256,
    repeats: int = 1,
) -> BaselineResult:
    """pdeopt's exact-Newton reference: the same merit and safeguards, `lx.LU()` on K.

    **Arguments:**

    - `problem`: the problem.
    - `solver`: a configuration whose `kkt_solver` is replaced by `DirectKKTSolver(lx.LU())`
        (default: the faithful defaults, the constants of the paper's reference code).
    - `max_steps`: outer iteration cap.
    - `repeats`: timed solves after compilation (the median is reported).
    """
    solver = ExactAugmentedLagrangianNewton() if solver is None else solver
    solver = eqx.tree_at(lambda s: s.kkt_solver, solver, DirectKKTSolver(lx.LU()))
    return pdeopt_solve(
        problem, solver, label="exact-newton-LU", max_steps=max_steps, repeats=repeats
    )


# --------------------------------------------------------------------------------------
# (b) IPOPT through casadi
# --------------------------------------------------------------------------------------


def _callback_class():
    ca = require("casadi")

    class JaxCallback(ca.Callback):
        """A casadi function evaluated by a numpy callable (here: jitted JAX)."""

        def __init__(self, name, fn, in_sizes, out_sparsities, transforms, vjp=None):
            ca.Callback.__init__(self)
            self._fn = fn
            self._in = in_sizes
            self._out = out_sparsities
            self._transforms = transforms
            self._vjp = vjp  # (x, p, y, ȳ) -> x̄, for casadi's multiplier post-processing
            self._reverse = None
            self.construct(name, {})

        def get_n_in(self):
            return len(self._in)

        def get_n_out(self):
            return len(self._out)

        def get_sparsity_in(self, i):
            return ca.Sparsity.dense(self._in[i], 1)

        def get_sparsity_out(self, i):
            return self._out[i]

        def has_reverse(self, nadj):
            return self._vjp is not None and nadj == 1

        def get_reverse(self, nadj, name, inames, onames, opts):
            n_x, n_p = self._in
            n_y = self._out[0].numel()
            vjp = self._vjp
            self._reverse = JaxCallback(  # kept alive by this callback
                name,
                lambda x, p, y, y_bar: (vjp(x, y_bar), np.zeros(n_p)),
                [n_x, n_p, n_y, n_y],
                [ca.Sparsity.dense(n_x, 1), ca.Sparsity.dense(n_p, 1)],
                [_flat, _flat],
            )
            return self._reverse

        def eval(self, arg):
            values = self._fn(*(np.asarray(a, dtype=np.float64).reshape(-1) for a in arg))
            return [
                ca.DM(sp, t(np.asarray(v))) for sp, t, v in zip(self._out, self._transforms, values)
            ]

    return JaxCallback


def _flat(v):
    return np.asarray(v, np.float64).reshape(-1, order="F")


def _triu_nonzeros(h):
    # casadi stores nonzeros column by column; the upper triangle of column j is H[0..j, j],
    # i.e. row j of Hᵀ up to the diagonal, which is `Hᵀ[tril_indices]` in row-major order.
    h = np.asarray(h)
    return h.T[np.tril_indices(h.shape[0])]


def ipopt(
    problem: ConstrainedProblem,
    *,
    tol: float = 1e-8,
    max_iter: int = 3000,
    options: dict | None = None,
) -> BaselineResult:
    """IPOPT (casadi's build, MUMPS) on `problem` with exact JAX derivatives, dense.

    IPOPT stops on its own scaled criterion (`tol`); the reported `kkt` is recomputed in pdeopt's
    convention. The JAX callables are compiled by one evaluation at `y0` before the clock starts;
    the reported time includes the Python/JAX callback overhead of every evaluation.

    **Arguments:**

    - `problem`: the problem (dense derivatives: meant for n up to a few thousand).
    - `tol`: IPOPT's `tol`.
    - `max_iter`: IPOPT's `max_iter`.
    - `options`: further IPOPT options (without the `ipopt.` prefix).
    """
    ca = require("casadi")
    callback = _callback_class()
    n, m = problem.n, problem.m
    d = _derivatives(problem)
    dense = ca.Sparsity.dense
    upper = ca.Sparsity.upper(n)
    ident = _flat

    def f_and_grad(x, p):
        return d.f(x), d.grad_f(x)

    def c_and_jac(x, p):
        return d.c(x), d.jac_c(x)

    def hess(x, p, sigma, lam):
        return (d.hess_lag(x, sigma[0], lam),)

    callbacks = [
        callback(
            "f",
            lambda x, p: (d.f(x),),
            [n, 0],
            [dense(1, 1)],
            [ident],
            lambda x, w: w * d.grad_f(x),
        ),
        callback(
            "g", lambda x, p: (d.c(x),), [n, 0], [dense(m, 1)], [ident], lambda x, w: w @ d.jac_c(x)
        ),
        callback("grad_f", f_and_grad, [n, 0], [dense(1, 1), dense(n, 1)], [ident, ident]),
        callback("jac_g", c_and_jac, [n, 0], [dense(m, 1), dense(m, n)], [ident, ident]),
        callback("hess_lag", hess, [n, 0, 1, m], [upper], [_triu_nonzeros]),
    ]
    f_cb, g_cb, grad_cb, jac_cb, hess_cb = callbacks
    x_sym = ca.MX.sym("x", n)
    p_sym = ca.MX.sym("p", 0)
    nlp = {"x": x_sym, "p": p_sym, "f": f_cb(x_sym, p_sym), "g": g_cb(x_sym, p_sym)}
    opts = {
        "grad_f": grad_cb,
        "jac_g": jac_cb,
        "hess_lag": hess_cb,
        "print_time": False,
        "ipopt": {"tol": tol, "max_iter": max_iter, "print_level": 0, "sb": "yes"},
    }
    opts["ipopt"].update(options or {})
    y0 = np.asarray(problem.y0)
    lam0 = np.asarray(problem.lambda0)
    # Compile every JAX callable before timing.
    d.f(y0), d.grad_f(y0), d.c(y0), d.jac_c(y0), d.hess_lag(y0, 1.0, lam0), d.kkt(y0, lam0)
    return _run_casadi(problem, ca.nlpsol("ipopt", "ipopt", nlp, opts), y0, lam0, "ipopt")


def _run_casadi(problem, nlp_solver, y0, lam0, label, kkt=None, repeats=1):
    solve = lambda: nlp_solver(x0=y0, lam_g0=lam0, lbg=0.0, ubg=0.0)
    timing = time_alternating({label: solve}, repeats=max(repeats, 1), warmup=0)[label]
    out = timing.output
    stats = nlp_solver.stats()
    x = np.asarray(out["x"]).reshape(-1)
    lam = np.asarray(out["lam_g"]).reshape(-1)
    return BaselineResult(
        solver=label,
        x=x,
        lam=lam,
        kkt=kkt_residual(problem, x, lam) if kkt is None else kkt(x, lam),
        iterations=int(stats["iter_count"]),
        time=timing.median,
        success=bool(stats["success"]),
        extra={"return_status": stats["return_status"]},
    )


def ipopt_sparse(
    problem: ConstrainedProblem,
    build: Callable[[Any], tuple[Any, Any]],
    *,
    tol: float = 1e-8,
    max_iter: int = 3000,
    options: dict | None = None,
    repeats: int = 1,
) -> BaselineResult:
    """IPOPT on a casadi-native model of `problem` (sparse derivatives from casadi's AD).

    For problems too large for dense callbacks (the PDE-control problems). `build(x)` maps a
    casadi `MX` symbol of size n to the casadi expressions `(f, c)`, which must be the same
    functions as `problem.objective` / `problem.constraints` (checked at a random point).

    **Arguments:**

    - `problem`: the problem (only `y0`, `lambda0` and the JAX functions, for the check).
    - `build`: `x -> (f, c)` in casadi.
    - `tol`, `max_iter`, `options`: as for [`ipopt`][].
    - `repeats`: timed solves (the median is reported; every solve starts from `y0`).
    """
    ca = require("casadi")
    n = problem.n
    x_sym = ca.MX.sym("x", n)
    f_expr, c_expr = build(x_sym)
    check = ca.Function("check", [x_sym], [f_expr, c_expr])
    probe = np.random.default_rng(0).standard_normal(n)
    f_ca, c_ca = check(probe)
    f_jax = float(problem.fn(jnp.asarray(probe), problem.args))
    c_jax = np.asarray(problem.constraint_fn(jnp.asarray(probe), problem.args))
    c_ca = np.asarray(c_ca).reshape(-1)
    if not (
        np.isclose(float(f_ca), f_jax, rtol=1e-10, atol=1e-10)
        and np.allclose(c_ca, c_jax, rtol=1e-10, atol=1e-8 * np.max(np.abs(c_jax)))
    ):
        raise ValueError(f"The casadi model of {problem.name} does not match its JAX functions.")
    opts = {
        "print_time": False,
        "ipopt": {"tol": tol, "max_iter": max_iter, "print_level": 0, "sb": "yes"},
    }
    opts["ipopt"].update(options or {})
    setup = time_once(
        lambda: ca.nlpsol("ipopt", "ipopt", {"x": x_sym, "f": f_expr, "g": c_expr}, opts)
    )
    y0, lam0 = np.asarray(problem.y0), np.asarray(problem.lambda0)
    result = _run_casadi(problem, setup.output, y0, lam0, "ipopt-sparse", repeats=repeats)
    result.extra["setup_time"] = setup.median
    return result


# --------------------------------------------------------------------------------------
# (c) SciPy trust-constr
# --------------------------------------------------------------------------------------


def trust_constr(
    problem: ConstrainedProblem,
    *,
    gtol: float = 1e-10,
    xtol: float = 1e-14,
    max_iter: int = 3000,
) -> BaselineResult:
    """SciPy's `trust-constr` (equality-constrained SQP, Byrd–Omojokun) with exact derivatives.

    **Arguments:**

    - `problem`: the problem.
    - `gtol`, `xtol`: SciPy's stopping tolerances.
    - `max_iter`: SciPy's `maxiter`.
    """
    optimize = require("scipy.optimize")
    d = _derivatives(problem)
    y0 = np.asarray(problem.y0)
    lam0 = np.asarray(problem.lambda0)
    d.f(y0), d.grad_f(y0), d.hess_f(y0), d.c(y0), d.jac_c(y0), d.hess_c(y0, lam0)
    constraint = optimize.NonlinearConstraint(
        d.c, 0.0, 0.0, jac=d.jac_c, hess=lambda x, v: d.hess_c(x, v)
    )
    timing = time_once(
        lambda: optimize.minimize(
            lambda x: float(d.f(x)),
            y0,
            jac=d.grad_f,
            hess=d.hess_f,
            constraints=[constraint],
            method="trust-constr",
            options={"gtol": gtol, "xtol": xtol, "maxiter": max_iter},
        )
    )
    res = timing.output
    x = np.asarray(res.x)
    lam = np.asarray(res.v[0])
    return BaselineResult(
        solver="trust-constr",
        x=x,
        lam=lam,
        kkt=kkt_residual(problem, x, lam),
        iterations=int(res.nit),
        time=timing.median,
        success=bool(res.status in (1, 2)),
        extra={"status": int(res.status), "message": str(res.message)},
    )


def result_name(result) -> str:
    """The short name of a `RESULTS` item, e.g. `"singular_jacobian"`."""
    for name, item in RESULTS._name_to_item.items():
        if bool(result == item):
            return name
    return str(result)
