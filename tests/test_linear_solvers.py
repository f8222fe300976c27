"""pdeopt's randomized linear solvers against dense references (lineax's test idiom)."""

import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import pytest

from pdeopt.solvers import (
    BlockSketchProject,
    CountSketch,
    GaussianSketch,
    GaussianSketchProject,
    NystromPCG,
    RandomizedKaczmarz,
    SparseSignSketch,
)

N_X, N_LAM = 9, 3
N = N_X + N_LAM
TOL = 1e-12  # solves this tight make finite differences of the solve meaningful


def _solvers(rtol=TOL):
    return {
        "gaussian": GaussianSketchProject(rtol=rtol, atol=0.0),
        "kaczmarz_row_norm": RandomizedKaczmarz(rtol=rtol, atol=0.0),
        "kaczmarz_uniform": RandomizedKaczmarz(rtol=rtol, atol=0.0, sampling="uniform"),
        "block_gaussian": BlockSketchProject(rtol=rtol, atol=0.0, block_size=4),
        "block_count": BlockSketchProject(rtol=rtol, atol=0.0, block_size=4, sketch=CountSketch()),
        "block_sparse_sign": BlockSketchProject(
            rtol=rtol, atol=0.0, block_size=4, sketch=SparseSignSketch(nnz_per_column=2)
        ),
        "normal_nystrom": lx.Normal(NystromPCG(rtol=rtol, atol=0.0, rank=4)),
    }


def _kkt(key):
    """Symmetric indefinite [[H, Gᵀ], [G, 0]], H SPD, G with orthonormal-ish rows."""
    hkey, gkey = jr.split(key)
    a = jr.normal(hkey, (N_X, N_X)) / jnp.sqrt(N_X)
    h = jnp.eye(N_X) + 0.2 * (a + a.T)
    g, _ = jnp.linalg.qr(jr.normal(gkey, (N_X, N_LAM)))
    g = g.T * jnp.array([1.0, 1.2, 0.8])[:, None]
    return jnp.block([[h, g.T], [g, jnp.zeros((N_LAM, N_LAM))]])


def _nonsymmetric(key):
    return jnp.eye(N) + 0.3 * jr.normal(key, (N, N)) / jnp.sqrt(N)


def _pytree_operator(matrix):
    """`matrix` as a matrix-free operator on the pytree (x, λ)."""

    def mv(v):
        out = matrix @ jnp.concatenate(v)
        return out[:N_X], out[N_X:]

    structure = (
        jax.ShapeDtypeStruct((N_X,), jnp.float64),
        jax.ShapeDtypeStruct((N_LAM,), jnp.float64),
    )
    return lx.FunctionLinearOperator(mv, structure)


def _assert_solves(operator, matrix, b, solver, key):
    sol = lx.linear_solve(operator, b, solver, options={"key": key})
    assert sol.result == lx.RESULTS.successful
    value = jnp.concatenate(sol.value) if isinstance(sol.value, tuple) else sol.value
    flat_b = jnp.concatenate(b) if isinstance(b, tuple) else b
    # The stopping test is on the residual; the error is bounded by cond(K) times it.
    assert jnp.linalg.norm(matrix @ value - flat_b) <= 1.01 * TOL * jnp.linalg.norm(flat_b)
    np.testing.assert_allclose(value, jnp.linalg.solve(matrix, flat_b), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", list(_solvers()))
def test_kkt_matrix(name, getkey):
    matrix = _kkt(getkey())
    operator = lx.MatrixLinearOperator(matrix, lx.symmetric_tag)
    _assert_solves(operator, matrix, jr.normal(getkey(), (N,)), _solvers()[name], getkey())


@pytest.mark.parametrize("name", ["gaussian", "normal_nystrom"])
def test_matrix_free_pytree(name, getkey):
    matrix = _kkt(getkey())
    b = jr.normal(getkey(), (N,))
    b = (b[:N_X], b[N_X:])
    _assert_solves(_pytree_operator(matrix), matrix, b, _solvers()[name], getkey())


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
    with pytest.raises(ValueError, match="lx.Normal"):
        lx.linear_solve(lx.MatrixLinearOperator(_kkt(getkey()), lx.symmetric_tag), b[:N], solver)


@pytest.mark.parametrize("name", ["gaussian", "kaczmarz_row_norm"])
def test_vmap_rhs(name, getkey):
    matrix = _kkt(getkey())
    operator = lx.MatrixLinearOperator(matrix, lx.symmetric_tag)
    bs = jr.normal(getkey(), (3, N))
    solver = _solvers()[name]
    sol = jax.vmap(lambda b: lx.linear_solve(operator, b, solver))(bs)
    expected = jnp.linalg.solve(matrix, bs.T).T
    np.testing.assert_allclose(sol.value, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["gaussian", "kaczmarz_row_norm"])
def test_jvp_finite_differences(name, getkey):
    solver = _solvers()[name]
    options = {"key": getkey()}

    def solve(matrix, b):
        return lx.linear_solve(lx.MatrixLinearOperator(matrix), b, solver, options=options).value

    matrix, b = _nonsymmetric(getkey()), jr.normal(getkey(), (N,))
    t_matrix, t_b = jr.normal(getkey(), (N, N)), jr.normal(getkey(), (N,))
    _, t_out = jax.jvp(solve, (matrix, b), (t_matrix, t_b))
    eps = 1e-4
    fd = (
        solve(matrix + eps * t_matrix, b + eps * t_b)
        - solve(matrix - eps * t_matrix, b - eps * t_b)
    ) / (2 * eps)
    np.testing.assert_allclose(t_out, fd, rtol=1e-5, atol=1e-7)
    # and against the dense derivative x' = K⁻¹(b' − K'x)
    x = jnp.linalg.solve(matrix, b)
    np.testing.assert_allclose(t_out, jnp.linalg.solve(matrix, t_b - t_matrix @ x), atol=1e-8)


@pytest.mark.parametrize("name", ["kaczmarz_row_norm", "normal_nystrom"])
def test_grad_matches_dense(name, getkey):
    solver = _solvers()[name]

    def loss(matrix, b, linear_solve):
        return jnp.sum(jnp.sin(linear_solve(matrix, b)))

    def sketched(matrix, b):
        return lx.linear_solve(lx.MatrixLinearOperator(matrix), b, solver).value

    matrix, b = _nonsymmetric(getkey()), jr.normal(getkey(), (N,))
    grads = jax.grad(loss, argnums=(0, 1))(matrix, b, sketched)
    expected = jax.grad(loss, argnums=(0, 1))(matrix, b, jnp.linalg.solve)
    for g, e in zip(grads, expected, strict=True):
        assert jnp.all(jnp.isfinite(g))
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", ["gaussian", "kaczmarz_row_norm", "normal_nystrom"])
def test_transpose(name, getkey):
    solver = _solvers()[name]
    matrix, b = _nonsymmetric(getkey()), jr.normal(getkey(), (N,))
    operator = lx.MatrixLinearOperator(matrix)
    expected = jnp.linalg.solve(matrix.T, b)
    options = {"key": getkey()}
    via_operator = lx.linear_solve(operator.T, b, solver, options=options).value
    np.testing.assert_allclose(via_operator, expected, rtol=0, atol=1e-10)
    state_t, options_t = solver.transpose(solver.init(operator, options), options)
    via_solver = lx.linear_solve(operator.T, b, solver, state=state_t, options=options_t).value
    np.testing.assert_allclose(via_solver, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["gaussian", "kaczmarz_uniform"])
def test_keys(name, getkey):
    solver = _solvers(rtol=1e-6)[name]
    operator = lx.MatrixLinearOperator(_kkt(getkey()), lx.symmetric_tag)
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
    matrix = _kkt(getkey())
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
    matrix = _kkt(getkey())
    operator = lx.MatrixLinearOperator(matrix @ matrix.T, lx.positive_semidefinite_tag)
    sol = lx.linear_solve(operator, jr.normal(getkey(), (N,)), solver, throw=False)
    assert sol.result == lx.RESULTS.max_steps_reached
    assert sol.stats["num_steps"] == solver.max_steps


def test_block_sketch_rank_deficient(getkey):
    # block_size > N: most CountSketch columns are empty or repeated; the pivoted QR copes.
    matrix = _nonsymmetric(getkey())
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
        lambda: RandomizedKaczmarz(rtol=1e-8, atol=-1.0),
        lambda: RandomizedKaczmarz(rtol=1e-8, atol=0.0, sampling="weighted"),
        lambda: RandomizedKaczmarz(rtol=1e-8, atol=0.0, check_every=0),
        lambda: BlockSketchProject(rtol=1e-8, atol=0.0, block_size=0),
        lambda: BlockSketchProject(rtol=1e-8, atol=0.0, sketch=lx.CG(rtol=1e-8, atol=0.0)),
        lambda: NystromPCG(rtol=1e-8, atol=0.0, rank=0),
        lambda: SparseSignSketch(nnz_per_column=0),
    ],
)
def test_bad_arguments(make):
    with pytest.raises(ValueError):
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
