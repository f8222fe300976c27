"""Shared test helpers, in the style of lineax's `tests/helpers.py`.

- `tol(dtype)`: the tolerances a precision can promise, passed explicitly to every check.
- `OPERATORS`: random operator families, each a dense matrix plus how a solver sees it.
- `SOLVERS`: the catalogue of pdeopt's linear solvers, each with the operator families it
  claims to solve; `catalogue()` lists its (solver, operator) pairs.
- `check_*` (`PROPERTIES`): what every catalogue pair must do (dense solve, jvp against
  central finite differences and the dense derivative, grad, vmap over right-hand sides and
  over operators, transpose and conj (with the options they derive: the key kept, `y0`
  dropped), jit).
- `kkt_residual` / `kkt_norm`: (∇ₓL, c) for L = f + λᵀc, the one KKT measure of the tests.
- `check_quantities_linear`: a PDE's interior quantities and boundary traces are linear.
- `check_grad_entries`: a model's gradient against central differences, weight by weight.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np

from pdeopt.solvers import (
    MINRES,
    AbstractRandomizedLinearSolver,
    BlockSketchProject,
    CountSketch,
    GaussianSketchProject,
    NystromPCG,
    RandomizedKaczmarz,
    SparseSignSketch,
)

# ----------------------------------------------------------------------------- tolerances


@dataclasses.dataclass(frozen=True)
class Tolerances:
    """What one precision can promise on the well-conditioned (κ ≲ 10) operators below.

    - `solver`: the solvers' `rtol`: they stop at ‖Kz − b‖₂ ≤ solver·‖b‖₂.
    - `solution`: absolute error of a solution against the dense reference.
    - `derivative`: absolute error of a jvp or gradient against the dense derivative.
    - `fd_step`, `fd_rtol`, `fd_atol`: central finite differences and how close a jvp is to
      them (truncation error O(fd_step²), round-off O(solver/fd_step)); `fd_step=None` where
      no step makes both small (float32), and the jvp is checked against the dense one only.
    """

    solver: float
    solution: float
    derivative: float
    fd_step: float | None = None
    fd_rtol: float | None = None
    fd_atol: float | None = None


_TOLERANCES = {
    jnp.dtype(jnp.float64): Tolerances(
        solver=1e-12, solution=1e-10, derivative=1e-8, fd_step=1e-4, fd_rtol=1e-5, fd_atol=1e-7
    ),
    jnp.dtype(jnp.float32): Tolerances(solver=1e-5, solution=1e-4, derivative=1e-3),
}


def tol(dtype) -> Tolerances:
    return _TOLERANCES[jnp.dtype(dtype)]


# ----------------------------------------------------------------------------- operators

N_X, N_LAM = 9, 3
N = N_X + N_LAM
TALL = (16, 8)


def nonsymmetric_matrix(key, dtype=jnp.float64):
    """I + 0.3·G/√N: square, nonsymmetric, well conditioned."""
    return jnp.eye(N, dtype=dtype) + 0.3 * jr.normal(key, (N, N), dtype) / jnp.sqrt(N)


def kkt_matrix(key, dtype=jnp.float64):
    """Symmetric indefinite [[H, Gᵀ], [G, 0]], H SPD, G with orthonormal-ish rows."""
    hkey, gkey = jr.split(key)
    a = jr.normal(hkey, (N_X, N_X), dtype) / jnp.sqrt(N_X)
    h = jnp.eye(N_X, dtype=dtype) + 0.2 * (a + a.T)
    g, _ = jnp.linalg.qr(jr.normal(gkey, (N_X, N_LAM), dtype))
    g = g.T * jnp.array([1.0, 1.2, 0.8], dtype)[:, None]
    return jnp.block([[h, g.T], [g, jnp.zeros((N_LAM, N_LAM), dtype)]])


def _orthogonal(key, shape, dtype):
    q, _ = jnp.linalg.qr(jr.normal(key, shape, dtype))
    return q


def spd_matrix(key, dtype=jnp.float64):
    """Q diag(λ) Qᵀ with eigenvalues spread over [1, 10]."""
    q = _orthogonal(key, (N, N), dtype)
    return (q * jnp.linspace(1.0, 10.0, N, dtype=dtype)) @ q.T


def tall_matrix(key, dtype=jnp.float64):
    """U diag(σ) Vᵀ, 16 × 8 with singular values in [1, 3]: full column rank."""
    ukey, vkey = jr.split(key)
    u = _orthogonal(ukey, TALL, dtype)
    v = _orthogonal(vkey, (TALL[1], TALL[1]), dtype)
    return (u * jnp.linspace(1.0, 3.0, TALL[1], dtype=dtype)) @ v.T


def _split(flat):
    return flat[:N_X], flat[N_X:]


def _pytree_operator(matrix, tags):
    """`matrix` as a matrix-free operator on the pytree (x, λ)."""

    def mv(v):
        return _split(matrix @ jnp.concatenate(v))

    structure = (
        jax.ShapeDtypeStruct((N_X,), matrix.dtype),
        jax.ShapeDtypeStruct((N_LAM,), matrix.dtype),
    )
    return lx.FunctionLinearOperator(mv, structure, tags)


@dataclasses.dataclass(frozen=True)
class OperatorKind:
    """A family of random operators: a dense matrix, and how a solver is handed it.

    - `make_matrix`: `(key, dtype) -> matrix`.
    - `tags`: the lineax tags the operator carries (the matrix has those properties).
    - `pytree`: `True` for a matrix-free `lx.FunctionLinearOperator` on the pytree (x, λ),
        `False` for an `lx.MatrixLinearOperator`.
    """

    name: str
    make_matrix: Callable[..., jax.Array]
    tags: Any = ()
    pytree: bool = False

    @property
    def symmetric(self) -> bool:
        return lx.symmetric_tag in self.tags or lx.positive_semidefinite_tag in self.tags

    def operator(self, matrix) -> lx.AbstractLinearOperator:
        if self.pytree:
            return _pytree_operator(matrix, self.tags)
        return lx.MatrixLinearOperator(matrix, self.tags)

    def vector(self, flat):
        """A flat vector as the operator's (in or out) vector: a pytree where it takes one."""
        return _split(flat) if self.pytree else flat


def flatten(vector):
    return jnp.concatenate(vector) if isinstance(vector, tuple) else vector


OPERATORS = {
    kind.name: kind
    for kind in [
        OperatorKind("nonsymmetric", nonsymmetric_matrix),
        OperatorKind("kkt", kkt_matrix, frozenset({lx.symmetric_tag})),
        OperatorKind("kkt_pytree", kkt_matrix, frozenset({lx.symmetric_tag}), pytree=True),
        OperatorKind("spd", spd_matrix, frozenset({lx.positive_semidefinite_tag})),
        OperatorKind("tall", tall_matrix),
    ]
}


def dense_solve(matrix, b):
    """The reference: K⁻¹b, or the least-squares solution (KᵀK)⁻¹Kᵀb for a tall K."""
    if matrix.shape[0] == matrix.shape[1]:
        return jnp.linalg.solve(matrix, b)
    return jnp.linalg.solve(matrix.T @ matrix, matrix.T @ b)


def dense_solve_jvp(matrix, b, t_matrix, t_b):
    """The derivative of `dense_solve` along (K', b'): K⁻¹(b' − K'x) for a square K, and
    (KᵀK)⁻¹(K'ᵀ(b − Kx) + Kᵀ(b' − K'x)) for a tall one."""
    x = dense_solve(matrix, b)
    if matrix.shape[0] == matrix.shape[1]:
        return jnp.linalg.solve(matrix, t_b - t_matrix @ x)
    rhs = t_matrix.T @ (b - matrix @ x) + matrix.T @ (t_b - t_matrix @ x)
    return jnp.linalg.solve(matrix.T @ matrix, rhs)


def dense_solve_transpose(matrix, c):
    """The reference for Kᵀu = c: (Kᵀ)⁺c, the minimum-norm solution for a tall K."""
    if matrix.shape[0] == matrix.shape[1]:
        return jnp.linalg.solve(matrix.T, c)
    return matrix @ jnp.linalg.solve(matrix.T @ matrix, c)


# ----------------------------------------------------------------------------- solvers


@dataclasses.dataclass(frozen=True)
class SolverEntry:
    """A catalogue entry: `make(rtol)` builds the solver; `operators` are the operator
    families (keys of `OPERATORS`) it claims to solve."""

    name: str
    make: Callable[[float], lx.AbstractLinearSolver]
    operators: tuple[str, ...]


# Sketch-and-project solves consistent systems with a full-rank K; on a square K any b is
# consistent. Nyström-PCG needs a PSD K; `lx.Normal` of it takes any full-rank K (least
# squares when tall).
_SQUARE = ("nonsymmetric", "kkt", "kkt_pytree", "spd")

SOLVERS = {
    entry.name: entry
    for entry in [
        SolverEntry("gaussian", lambda rtol: GaussianSketchProject(rtol=rtol, atol=0.0), _SQUARE),
        SolverEntry(
            "block_gaussian",
            lambda rtol: BlockSketchProject(rtol=rtol, atol=0.0, block_size=4),
            _SQUARE,
        ),
        SolverEntry(
            "block_count",
            lambda rtol: BlockSketchProject(
                rtol=rtol, atol=0.0, block_size=4, sketch=CountSketch()
            ),
            _SQUARE,
        ),
        SolverEntry(
            "block_sparse_sign",
            lambda rtol: BlockSketchProject(
                rtol=rtol, atol=0.0, block_size=4, sketch=SparseSignSketch(nnz_per_column=2)
            ),
            _SQUARE,
        ),
        SolverEntry(
            "kaczmarz_row_norm", lambda rtol: RandomizedKaczmarz(rtol=rtol, atol=0.0), _SQUARE
        ),
        SolverEntry(
            "kaczmarz_uniform",
            lambda rtol: RandomizedKaczmarz(rtol=rtol, atol=0.0, sampling="uniform"),
            _SQUARE,
        ),
        SolverEntry("nystrom", lambda rtol: NystromPCG(rtol=rtol, atol=0.0, rank=4), ("spd",)),
        # MINRES: any symmetric operator, indefinite (KKT) or definite.
        SolverEntry(
            "minres", lambda rtol: MINRES(rtol=rtol, atol=0.0), ("kkt", "kkt_pytree", "spd")
        ),
        SolverEntry(
            "normal_nystrom",
            lambda rtol: lx.Normal(NystromPCG(rtol=rtol, atol=0.0, rank=4)),
            (*_SQUARE, "tall"),
        ),
    ]
}


def catalogue() -> list[tuple[str, str]]:
    """Every (solver, operator family) pair the catalogue claims."""
    return [(s.name, o) for s in SOLVERS.values() for o in s.operators]


# ----------------------------------------------------------------------------- properties


def _problem(kind: OperatorKind, getkey, dtype):
    matrix = kind.make_matrix(getkey(), dtype)
    b = jr.normal(getkey(), matrix.shape[:1], dtype)
    return matrix, b


def _solve_fn(solver, kind: OperatorKind, options):
    def solve(matrix, b):
        sol = lx.linear_solve(kind.operator(matrix), kind.vector(b), solver, options=options)
        return flatten(sol.value)

    return solve


def _tangent(kind: OperatorKind, key, shape, dtype):
    """A random matrix direction that keeps the operator's tags true."""
    t = jr.normal(key, shape, dtype)
    return (t + t.T) / 2 if kind.symmetric else t


def check_solve(solver, kind: OperatorKind, getkey, dtype):
    """Success, the residual test the solver stops on, and the dense solution."""
    t = tol(dtype)
    matrix, b = _problem(kind, getkey, dtype)
    sol = lx.linear_solve(kind.operator(matrix), kind.vector(b), solver, options={"key": getkey()})
    assert sol.result == lx.RESULTS.successful
    x = flatten(sol.value)
    assert x.dtype == dtype
    if matrix.shape[0] == matrix.shape[1]:
        # The stopping test is on the residual; the error is bounded by cond(K) times it.
        assert jnp.linalg.norm(matrix @ x - b) <= 1.01 * t.solver * jnp.linalg.norm(b)
    np.testing.assert_allclose(x, dense_solve(matrix, b), rtol=0, atol=t.solution)


def check_jvp(solver, kind: OperatorKind, getkey, dtype):
    """jvp in (K, b) against central finite differences and the dense derivative."""
    t = tol(dtype)
    solve = _solve_fn(solver, kind, {"key": getkey()})
    matrix, b = _problem(kind, getkey, dtype)
    t_matrix = _tangent(kind, getkey(), matrix.shape, dtype)
    t_b = jr.normal(getkey(), b.shape, dtype)
    _, t_out = jax.jvp(solve, (matrix, b), (t_matrix, t_b))
    if t.fd_step is not None:
        eps = t.fd_step
        fd = (
            solve(matrix + eps * t_matrix, b + eps * t_b)
            - solve(matrix - eps * t_matrix, b - eps * t_b)
        ) / (2 * eps)
        np.testing.assert_allclose(t_out, fd, rtol=t.fd_rtol, atol=t.fd_atol)
    np.testing.assert_allclose(
        t_out, dense_solve_jvp(matrix, b, t_matrix, t_b), rtol=0, atol=t.derivative
    )


def check_grad(solver, kind: OperatorKind, getkey, dtype):
    """Reverse mode in (K, b) (through `transpose`) against the dense gradient."""
    t = tol(dtype)
    solve = _solve_fn(solver, kind, {"key": getkey()})
    matrix, b = _problem(kind, getkey, dtype)

    def loss(matrix, b, linear_solve):
        return jnp.sum(jnp.sin(linear_solve(matrix, b)))

    grads = jax.grad(loss, argnums=(0, 1))(matrix, b, solve)
    expected = jax.grad(loss, argnums=(0, 1))(matrix, b, dense_solve)
    for g, e in zip(grads, expected, strict=True):
        assert jnp.all(jnp.isfinite(g))
        np.testing.assert_allclose(g, e, rtol=0, atol=t.derivative)


def check_vmap(solver, kind: OperatorKind, getkey, dtype):
    """vmap over right-hand sides, one operator."""
    t = tol(dtype)
    solve = _solve_fn(solver, kind, {"key": getkey()})
    matrix = kind.make_matrix(getkey(), dtype)
    bs = jr.normal(getkey(), (3, matrix.shape[0]), dtype)
    expected = jax.vmap(dense_solve, in_axes=(None, 0))(matrix, bs)
    actual = jax.vmap(solve, in_axes=(None, 0))(matrix, bs)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=t.solution)


def check_vmap_operator(solver, kind: OperatorKind, getkey, dtype):
    """vmap over operators and right-hand sides together."""
    t = tol(dtype)
    solve = _solve_fn(solver, kind, {"key": getkey()})
    matrices = jnp.stack([kind.make_matrix(getkey(), dtype) for _ in range(3)])
    bs = jr.normal(getkey(), matrices.shape[:2], dtype)
    expected = jax.vmap(dense_solve)(matrices, bs)
    np.testing.assert_allclose(jax.vmap(solve)(matrices, bs), expected, rtol=0, atol=t.solution)


def _derived_options_solve(solver, derive: str, operator, vector, y0, getkey):
    """Solve Kᵀu = `vector` (`derive="transpose"`) or conj(K)u = `vector` (`"conj"`) with the
    state and options that `solver.transpose` / `solver.conj` derive from K's, three times:
    from K's options with a warm start `y0` of K's system, without it, and with another key.
    The derived options keep the key and drop `y0`, so the first two solves must agree bit
    for bit and the third must differ (for a randomized solver). Returns the first solution."""
    system = operator.T if derive == "transpose" else lx.conj(operator)
    key = getkey()

    def solve(options):
        state, options = getattr(solver, derive)(solver.init(operator, options), options)
        return lx.linear_solve(system, vector, solver, state=state, options=options)

    # A warm start from K's solution: a solve that used it would stop at once (sketching) or
    # take a different path (CG).
    sol = solve({"key": key, "y0": y0})
    without_y0 = solve({"key": key})
    np.testing.assert_array_equal(flatten(sol.value), flatten(without_y0.value))
    np.testing.assert_array_equal(sol.stats["num_steps"], without_y0.stats["num_steps"])
    if isinstance(solver, AbstractRandomizedLinearSolver):  # MINRES, e.g., uses no key
        other_key = solve({"key": getkey()})
        assert not np.array_equal(flatten(sol.value), flatten(other_key.value))
    return sol


def check_transpose(solver, kind: OperatorKind, getkey, dtype):
    """Kᵀu = c, both by the transposed operator and by `solver.transpose` of K's state (which
    keeps the key of K's options and drops their `y0`)."""
    t = tol(dtype)
    matrix, b = _problem(kind, getkey, dtype)
    c = kind.vector(jr.normal(getkey(), matrix.shape[1:], dtype))
    expected = dense_solve_transpose(matrix, flatten(c))
    operator = kind.operator(matrix)
    via_operator = lx.linear_solve(operator.T, c, solver, options={"key": getkey()}).value
    np.testing.assert_allclose(flatten(via_operator), expected, rtol=0, atol=t.solution)
    y0 = kind.vector(dense_solve(matrix, b))
    via_solver = _derived_options_solve(solver, "transpose", operator, c, y0, getkey).value
    np.testing.assert_allclose(flatten(via_solver), expected, rtol=0, atol=t.solution)


def check_conj(solver, kind: OperatorKind, getkey, dtype):
    """`solver.conj` of K's state solves conj(K) (= K for these real operators), keeping the
    key of K's options and dropping their `y0`."""
    t = tol(dtype)
    matrix, b = _problem(kind, getkey, dtype)
    operator = kind.operator(matrix)
    y0 = kind.vector(dense_solve(matrix, b))
    sol = _derived_options_solve(solver, "conj", operator, kind.vector(b), y0, getkey)
    assert sol.result == lx.RESULTS.successful
    np.testing.assert_allclose(flatten(sol.value), dense_solve(matrix, b), rtol=0, atol=t.solution)


def check_jit(solver, kind: OperatorKind, getkey, dtype):
    """Under `eqx.filter_jit`, with the operator, vector and key traced, the same solve."""
    t = tol(dtype)
    matrix, b = _problem(kind, getkey, dtype)
    key = getkey()

    def solve(solver, matrix, b, key):
        operator = kind.operator(matrix)
        return lx.linear_solve(operator, kind.vector(b), solver, options={"key": key})

    eager = solve(solver, matrix, b, key)
    jitted = eqx.filter_jit(solve)(solver, matrix, b, key)
    assert jitted.result == lx.RESULTS.successful
    np.testing.assert_array_equal(jitted.stats["num_steps"], eager.stats["num_steps"])
    np.testing.assert_allclose(flatten(jitted.value), flatten(eager.value), rtol=0, atol=t.solver)


PROPERTIES = {
    "solve": check_solve,
    "jvp": check_jvp,
    "grad": check_grad,
    "vmap": check_vmap,
    "vmap_operator": check_vmap_operator,
    "transpose": check_transpose,
    "conj": check_conj,
    "jit": check_jit,
}

# ----------------------------------------------------------------------------- KKT


def kkt_residual(fn, constraint_fn, y, multipliers, args=None):
    """(∇_y L, c) at (y, λ) for the Lagrangian L = f + λᵀc (`fn(y, args)` convention)."""

    def lagrangian(y):
        return fn(y, args) + jnp.dot(multipliers, constraint_fn(y, args))

    return jnp.concatenate([jax.grad(lagrangian)(y), constraint_fn(y, args)])


def kkt_norm(fn, constraint_fn, y, multipliers, args=None) -> float:
    """‖(∇_y L, c)‖₂ at (y, λ): the KKT measure `constrained_minimise` records."""
    return float(jnp.linalg.norm(kkt_residual(fn, constraint_fn, y, multipliers, args)))


def check_grad_entries(loss, model, grads, wheres, *, eps=1e-5, rtol=1e-6) -> None:
    """`grads` (of the scalar `loss` at `model`) against central differences.

    For each accessor in `wheres`, the entry of largest gradient of that weight is perturbed by
    ±`eps`, so that the O(eps²) truncation and O(1e-16/eps) rounding errors stay far below
    `rtol`.
    """
    for where in wheres:
        weight = where(model)
        index = np.unravel_index(np.argmax(np.abs(where(grads))), weight.shape)

        def perturbed(delta, where=where, index=index, weight=weight):
            return loss(eqx.tree_at(where, model, weight.at[index].add(delta)))

        fd = (perturbed(eps) - perturbed(-eps)) / (2 * eps)
        np.testing.assert_allclose(where(grads)[index], fd, rtol=rtol, atol=0)


def check_quantities_linear(pde) -> None:
    """`pde`'s interior quantities and its ic/bc rows' traces are linear in the field, as the
    hard constraints require: q(2a − 3b) = 2 q(a) − 3 q(b) for random fields a, b."""
    a, b = jr.normal(jr.key(0), (2, *pde.grid_shape))
    traces = lambda u: dict(enumerate(pde.derivatives.traces(pde, u)))
    for quantities in (pde.linear_quantities, traces):
        qa, qb, qab = quantities(a), quantities(b), quantities(2 * a - 3 * b)
        for name in qa:
            np.testing.assert_allclose(qab[name], 2 * qa[name] - 3 * qb[name], atol=1e-10)
