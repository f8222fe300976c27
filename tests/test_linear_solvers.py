"""pdeopt's randomized linear solvers against dense references (lineax's test idiom).

The catalogue of `helpers.py` (solvers × operator families × properties × dtypes) runs in
full with `-m slow`; the default run is the subset `FAST`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import pytest
from helpers import (
    OPERATORS,
    PROPERTIES,
    SOLVERS,
    N,
    catalogue,
    kkt_matrix,
    nonsymmetric_matrix,
    spd_matrix,
    tol,
)

from pdeopt.solvers import (
    MINRES,
    BlockSketchProject,
    CountSketch,
    GaussianSketch,
    GaussianSketchProject,
    NystromPCG,
    RandomizedKaczmarz,
    SparseSignSketch,
)

# ----------------------------------------------------------------------------- catalogue

F64, F32 = jnp.dtype(jnp.float64), jnp.dtype(jnp.float32)

# The default run (compilation dominates: ~1 s a case): the cases the hand-written tests
# covered, plus float32 and jit once each, and conj once per solver type. `-m slow` runs the
# whole catalogue.
FAST = {
    *((s, "kkt", "solve", F64) for s in SOLVERS if s != "nystrom"),
    ("gaussian", "kkt_pytree", "solve", F64),
    ("normal_nystrom", "kkt_pytree", "solve", F64),
    ("gaussian", "nonsymmetric", "solve", F32),
    ("gaussian", "kkt", "vmap", F64),
    ("kaczmarz_row_norm", "kkt", "vmap", F64),
    ("gaussian", "nonsymmetric", "jvp", F64),
    ("kaczmarz_row_norm", "nonsymmetric", "jvp", F64),
    ("kaczmarz_row_norm", "nonsymmetric", "grad", F64),
    ("normal_nystrom", "nonsymmetric", "grad", F64),
    ("gaussian", "nonsymmetric", "transpose", F64),
    ("kaczmarz_row_norm", "nonsymmetric", "transpose", F64),
    ("normal_nystrom", "nonsymmetric", "transpose", F64),
    ("gaussian", "nonsymmetric", "conj", F64),
    ("block_count", "kkt_pytree", "conj", F64),
    ("kaczmarz_row_norm", "nonsymmetric", "conj", F64),
    ("nystrom", "spd", "conj", F64),
    ("normal_nystrom", "tall", "conj", F64),
    ("kaczmarz_uniform", "kkt", "jit", F64),
    ("minres", "kkt_pytree", "solve", F64),
    ("minres", "spd", "solve", F32),
    ("minres", "kkt", "jvp", F64),
    ("minres", "kkt", "grad", F64),
    ("minres", "kkt", "transpose", F64),
    ("minres", "kkt", "vmap", F64),
}


def _cases():
    for solver, operator in catalogue():
        for prop in PROPERTIES:
            for dtype in (F64, F32):
                case = (solver, operator, prop, dtype)
                marks = () if case in FAST else (pytest.mark.slow,)
                yield pytest.param(*case, marks=marks, id=f"{solver}-{operator}-{prop}-{dtype}")


@pytest.mark.parametrize("solver, operator, prop, dtype", list(_cases()))
def test_catalogue(solver, operator, prop, dtype, getkey):
    linear_solver = SOLVERS[solver].make(tol(dtype).solver)
    PROPERTIES[prop](linear_solver, OPERATORS[operator], getkey, dtype)


def test_fast_cases_are_in_the_catalogue():
    ids = {(s, o, p, d) for s, o in catalogue() for p in PROPERTIES for d in (F64, F32)}
    assert FAST <= ids


# ----------------------------------------------------------------------------- solver-specific


def test_minres_solves_three_eigenvalues_in_three_steps(getkey):
    """An operator with three distinct eigenvalues (an exactly preconditioned saddle point
    system) is solved in three steps: MINRES spends no matvec beyond the Krylov steps."""
    q, _ = jnp.linalg.qr(jr.normal(getkey(), (30, 30)))
    eigenvalues = jnp.array([1.0, (1 + 5**0.5) / 2, (1 - 5**0.5) / 2])[jnp.arange(30) % 3]
    matrix = (q * eigenvalues) @ q.T
    b = jr.normal(getkey(), (30,))
    operator = lx.MatrixLinearOperator(matrix, lx.symmetric_tag)
    sol = lx.linear_solve(operator, b, MINRES(rtol=1e-10, atol=0.0))
    assert int(sol.stats["num_steps"]) == 3
    np.testing.assert_allclose(sol.value, jnp.linalg.solve(matrix, b), atol=1e-10)
    capped = lx.linear_solve(operator, b, MINRES(rtol=1e-10, atol=0.0, max_steps=2), throw=False)
    assert capped.result == lx.RESULTS.max_steps_reached


def test_minres_warm_start_with_a_known_residual(getkey):
    """A warm start from `y0` with its residual passed as `options["residual"]` takes the same
    steps to the same solution as one that recomputes it, and a zero `y0` equals no `y0`."""
    q, _ = jnp.linalg.qr(jr.normal(getkey(), (40, 40)))
    eigenvalues = jnp.concatenate([jnp.linspace(-3.0, -1.0, 20), jnp.linspace(1.0, 5.0, 20)])
    matrix = (q * eigenvalues) @ q.T
    operator = lx.MatrixLinearOperator(matrix, lx.symmetric_tag)
    b, y0 = jr.normal(getkey(), (40,)), jr.normal(getkey(), (40,))
    solver = MINRES(rtol=1e-9, atol=0.0, max_steps=200)
    plain = lx.linear_solve(operator, b, solver, options={"y0": y0})
    known = lx.linear_solve(operator, b, solver, options={"y0": y0, "residual": b - matrix @ y0})
    assert int(known.stats["num_steps"]) == int(plain.stats["num_steps"])
    np.testing.assert_allclose(known.value, plain.value, rtol=0, atol=1e-9)
    np.testing.assert_allclose(matrix @ known.value, b, rtol=0, atol=1e-7)
    cold = lx.linear_solve(operator, b, solver)
    zero = lx.linear_solve(operator, b, solver, options={"y0": jnp.zeros(40)})
    np.testing.assert_array_equal(zero.value, cold.value)
    assert MINRES.takes_initial_residual and not hasattr(lx.GMRES, "takes_initial_residual")


def test_minres_needs_a_symmetric_operator(getkey):
    operator = lx.MatrixLinearOperator(jr.normal(getkey(), (4, 4)))
    with pytest.raises(ValueError, match="symmetric_tag"):
        lx.linear_solve(operator, jnp.ones(4), MINRES(rtol=1e-8, atol=0.0))


def test_nystrom_pcg_spd(getkey):
    # Five large outlying eigenvalues: rank-6 Nyström preconditioning removes them.
    q, _ = jnp.linalg.qr(jr.normal(getkey(), (30, 30)))
    eigs = jnp.concatenate([jnp.array([1e4, 3e3, 1e3, 3e2, 1e2]), jnp.linspace(1.0, 2.0, 25)])
    matrix = (q * eigs) @ q.T
    operator = lx.MatrixLinearOperator(matrix, lx.positive_semidefinite_tag)
    b = jr.normal(getkey(), (30,))
    solver = NystromPCG(rtol=1e-10, atol=0.0, rank=6)
    sol = lx.linear_solve(operator, b, solver)
    np.testing.assert_allclose(sol.value, jnp.linalg.solve(matrix, b), rtol=1e-8)
    # Unpreconditioned `lx.CG` needs 44 steps on this system; with the preconditioner, 18.
    assert sol.stats["num_steps"] <= 25


@pytest.mark.parametrize("tags", [(), lx.symmetric_tag])
def test_nystrom_pcg_needs_psd_tag(tags, getkey):
    # Nonsymmetric, or symmetric indefinite (KKT): the error says what to write instead.
    matrix = nonsymmetric_matrix(getkey()) if tags == () else kkt_matrix(getkey())
    operator = lx.MatrixLinearOperator(matrix, tags)
    solver = NystromPCG(rtol=1e-8, atol=0.0)
    message = r"lx\.Normal\(NystromPCG\(\.\.\.\)\).*lx\.positive_semidefinite_tag"
    with pytest.raises(ValueError, match=message):
        lx.linear_solve(operator, jnp.ones(N), solver)


@pytest.mark.parametrize("name", ["gaussian", "kaczmarz_uniform"])
def test_keys(name, getkey):
    solver = SOLVERS[name].make(1e-6)
    operator = lx.MatrixLinearOperator(kkt_matrix(getkey()), lx.symmetric_tag)
    b = jr.normal(getkey(), (N,))
    key1, key2 = getkey(), getkey()

    def solve(key):
        sol = lx.linear_solve(operator, b, solver, options={"key": key})
        return sol.value, sol.stats["num_steps"]

    (x1, n1), (x1_again, n1_again), (x2, n2) = solve(key1), solve(key1), solve(key2)
    assert n1 == n1_again
    assert jnp.array_equal(x1, x1_again)
    assert n1 != n2 or not jnp.array_equal(x1, x2)
    if name == "gaussian":  # Without a key the solver falls back to its `seed` field.
        default = lx.linear_solve(operator, b, solver).value
        assert jnp.array_equal(default, solve(jr.key(solver.seed))[0])


def test_warm_start_and_vmap_over_keys(getkey):
    solver = GaussianSketchProject(rtol=1e-10, atol=0.0)
    matrix = kkt_matrix(getkey())
    operator = lx.MatrixLinearOperator(matrix, lx.symmetric_tag)
    b = jr.normal(getkey(), (N,))
    x = jnp.linalg.solve(matrix, b)
    assert lx.linear_solve(operator, b, solver, options={"y0": x}).stats["num_steps"] == 0
    keys = jr.split(getkey(), 3)
    sol = jax.vmap(lambda k: lx.linear_solve(operator, b, solver, options={"key": k}))(keys)
    np.testing.assert_allclose(sol.value, jnp.broadcast_to(x, (3, N)), rtol=0, atol=1e-8)
    assert len(set(sol.stats["num_steps"].tolist())) > 1


@pytest.mark.parametrize(
    "solver",
    [
        GaussianSketchProject(rtol=1e-10, atol=0.0, max_steps=3),
        RandomizedKaczmarz(rtol=1e-10, atol=0.0, max_steps=5),
        NystromPCG(rtol=1e-10, atol=0.0, rank=2, max_steps=2),
    ],
)
def test_max_steps_reached(solver, getkey):
    matrix = kkt_matrix(getkey())
    operator = lx.MatrixLinearOperator(matrix @ matrix.T, lx.positive_semidefinite_tag)
    sol = lx.linear_solve(operator, jr.normal(getkey(), (N,)), solver, throw=False)
    assert sol.result == lx.RESULTS.max_steps_reached
    assert sol.stats["num_steps"] == sol.stats["max_steps"] == solver.max_steps


@pytest.mark.parametrize(
    "solver, max_steps",
    [
        (GaussianSketchProject(rtol=1e-8, atol=0.0), 20_000 * N),
        (BlockSketchProject(rtol=1e-8, atol=0.0, block_size=5), 20_000 * 3),  # ⌈12/5⌉ = 3
        (BlockSketchProject(rtol=1e-8, atol=0.0, block_size=2 * N), 20_000),
        (RandomizedKaczmarz(rtol=1e-8, atol=0.0), 20_000 * N),
        (NystromPCG(rtol=1e-8, atol=0.0), 10 * N),
    ],
)
def test_default_max_steps(solver, max_steps, getkey):
    # `max_steps=None`: 20 000 epochs of sketch steps, or lineax.CG's 10·N for NystromPCG.
    operator = lx.MatrixLinearOperator(spd_matrix(getkey()), lx.positive_semidefinite_tag)
    sol = lx.linear_solve(operator, jr.normal(getkey(), (N,)), solver)
    assert sol.stats["max_steps"] == max_steps
    assert 0 < sol.stats["num_steps"] < max_steps


def _inconsistent_system(key):
    """A rank-deficient K and a b with a component (of norm 1) outside its range."""
    u, s, vt = jnp.linalg.svd(spd_matrix(key))
    return (u * s.at[-1].set(0.0)) @ vt, u[:, -1] + u[:, 0]


@pytest.mark.parametrize(
    "solver, epoch",
    [
        (GaussianSketchProject(rtol=1e-8, atol=0.0), N),
        (BlockSketchProject(rtol=1e-8, atol=0.0, block_size=4), N // 4),
        (RandomizedKaczmarz(rtol=1e-8, atol=0.0), N),
    ],
)
def test_stagnation(solver, epoch, getkey):
    # The residual levels off at the least-squares residual, b's component outside the range
    # of K: the solve fails with `stagnation` a few 40-epoch windows in, long before the
    # 20 000-epoch `max_steps`.
    matrix, b = _inconsistent_system(getkey())
    operator = lx.MatrixLinearOperator(matrix)
    sol = lx.linear_solve(operator, b, solver, options={"key": getkey()}, throw=False)
    assert sol.result == lx.RESULTS.stagnation
    assert sol.stats["num_steps"] <= 4 * 40 * epoch
    # `stagnation_iters >= max_steps` turns the test off.
    off = dataclasses.replace(solver, max_steps=1000, stagnation_iters=1000)
    sol = lx.linear_solve(operator, b, off, options={"key": getkey()}, throw=False)
    assert sol.result == lx.RESULTS.max_steps_reached
    assert sol.stats["num_steps"] == 1000


@pytest.mark.parametrize(
    "make", [lambda **kw: GaussianSketchProject(**kw), lambda **kw: RandomizedKaczmarz(**kw)]
)
def test_norm(make, getkey):
    # The stopping test is `norm(r) <= atol`: in the RMS norm, √N times looser than the 2-norm.
    operator = lx.MatrixLinearOperator(nonsymmetric_matrix(getkey()))
    b = jr.normal(getkey(), (N,))
    key = getkey()
    steps = {}
    for norm in (lx.internal.two_norm, lx.internal.rms_norm):
        solver = make(rtol=0.0, atol=1e-6, norm=norm)
        sol = lx.linear_solve(operator, b, solver, options={"key": key})
        assert norm(operator.mv(sol.value) - b) <= 1e-6
        steps[norm] = sol.stats["num_steps"]
    assert steps[lx.internal.rms_norm] < steps[lx.internal.two_norm]


def test_block_sketch_rank_deficient(getkey):
    # block_size > N: most CountSketch columns are empty or repeated; the pivoted QR copes.
    matrix = nonsymmetric_matrix(getkey())
    b = jr.normal(getkey(), (N,))
    solver = BlockSketchProject(rtol=1e-10, atol=0.0, block_size=2 * N, sketch=CountSketch())
    sol = lx.linear_solve(lx.MatrixLinearOperator(matrix), b, solver)
    np.testing.assert_allclose(sol.value, jnp.linalg.solve(matrix, b), rtol=0, atol=1e-8)
    # Full Gaussian sketch of a square system: one step is an exact solve.
    solver = BlockSketchProject(rtol=1e-10, atol=0.0, block_size=N, sketch=GaussianSketch())
    assert lx.linear_solve(lx.MatrixLinearOperator(matrix), b, solver).stats["num_steps"] == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianSketchProject(rtol=-1.0, atol=0.0),
        lambda: GaussianSketchProject(rtol=0.0, atol=0.0),
        lambda: GaussianSketchProject(rtol=1e-8, atol=0.0, max_steps=0),
        lambda: GaussianSketchProject(rtol=1e-8, atol=0.0, stagnation_iters=0),
        lambda: NystromPCG(rtol=1e-8, atol=0.0, max_steps=0),
        lambda: RandomizedKaczmarz(rtol=1e-8, atol=-1.0),
        lambda: RandomizedKaczmarz(rtol=1e-8, atol=0.0, check_every=0),
        lambda: BlockSketchProject(rtol=1e-8, atol=0.0, block_size=0),
        lambda: NystromPCG(rtol=1e-8, atol=0.0, rank=0),
        lambda: SparseSignSketch(nnz_per_column=0),
    ],
)
def test_bad_arguments(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomizedKaczmarz(rtol=1e-8, atol=0.0, sampling="weighted"),
        lambda: BlockSketchProject(rtol=1e-8, atol=0.0, sketch=lx.CG(rtol=1e-8, atol=0.0)),
    ],
)
def test_ill_typed_arguments(make):
    # `__check_init__` raises ValueError; under jaxtyping's runtime checks (the test run) the
    # annotation rejects the value first, with a `jaxtyping.TypeCheckError` (a TypeError).
    with pytest.raises((ValueError, TypeError)):
        make()


def test_sparse_sign_too_dense():
    solver = BlockSketchProject(rtol=1e-8, atol=0.0, block_size=2, sketch=SparseSignSketch(4))
    with pytest.raises(ValueError, match="nnz_per_column <= 2"):
        lx.linear_solve(lx.MatrixLinearOperator(jnp.eye(N)), jnp.ones(N), solver)


@pytest.mark.parametrize("sketch", [GaussianSketch(), CountSketch(), SparseSignSketch(3)])
def test_sketch_transpose_and_dense(sketch, getkey):
    @jax.jit
    def apply(key, r, y):
        s = sketch.draw(key, 7, 5, jnp.float64)
        return s.as_matrix(), s.mv(y), s.transpose().mv(r)

    r, y = jr.normal(getkey(), (7,)), jr.normal(getkey(), (5,))
    dense, s_y, s_t_r = apply(getkey(), r, y)
    np.testing.assert_allclose(s_y, dense @ y, rtol=1e-12)
    np.testing.assert_allclose(s_t_r, dense.T @ r, rtol=1e-12)
    if not isinstance(sketch, GaussianSketch):
        nnz = 1 if isinstance(sketch, CountSketch) else sketch.nnz_per_column
        assert jnp.all(jnp.sum(dense != 0, axis=1) == nnz)
