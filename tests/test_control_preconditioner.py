"""The control problems' Schur-complement KKT preconditioner, applied by FFT.

- The orthonormal DST-I by FFT (`_dst1`) against the dense sine matrix, along one axis and
  along both axes of the grid, where it diagonalises the 5-point Laplacian.
- `R = control_kkt_preconditioner(...)` against a dense reference `R = Q D` built from the
  dense sine matrix: `R R^T = P^-1` (the former symmetric `S = P^(-1/2)` squared) and
  `R^T P R = I` for `P` assembled from the 5-point Laplacian itself (no sine transform);
  `jit`, `vmap`, `transpose` and `grad` through `R` against the dense reference.
- A preconditioned GMRES solve of the semilinear problem with `R` follows the solve with the
  dense symmetric `S` step for step (the two systems are orthogonally similar) and ends at the
  exact-Newton (LU) solution.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import pytest

import pdeopt
from pdeopt.solvers import (
    MINRES,
    DirectKKTSolver,
    ExactAugmentedLagrangianNewton,
    IterativeKKTSolver,
    PracticalSafeguards,
)
from problems.cutest import (
    control_kkt_preconditioner,
    laplacian_5pt,
    poisson_control,
    semilinear_control,
)
from problems.cutest._applications import _dst1

SIZES = (1, 3, 8, 17)
RTOL = 1e-12  # float64 round-off of an O(N log N) transform at these N


def _sine_matrix(n):
    """The dense orthonormal DST-I matrix `V[j, k] = sqrt(2/(N+1)) sin(pi j k/(N+1))`."""
    k = np.arange(1, n + 1)
    return math.sqrt(2.0 / (n + 1)) * np.sin(np.pi * np.outer(k, k) / (n + 1))


def _laplacian_matrix(n):
    """`-Delta_h` on the N x N grid as a dense N^2 x N^2 matrix, from the stencil itself."""
    h = 2.0 / (n + 1)
    eye = jnp.eye(n * n).reshape(n * n, n, n)
    return -np.asarray(jax.vmap(lambda e: laplacian_5pt(e, h).reshape(-1))(eye)).T


def _dense_preconditioner(n, state_weight, control_weight, shift, *, symmetric):
    """Dense references built with the N x N sine matrix `V` (and the same eigenvalues
    `e_i + e_j` of `-Delta_h`), as jnp functions of the weights: the factor `R = Q D` of
    `control_kkt_preconditioner`, or the former symmetric `S = P^(-1/2) = Q D Q`. `Q` maps the
    multipliers' grid `L` to `(V L V)^T`."""
    v = jnp.asarray(_sine_matrix(n))
    k = jnp.arange(1, n + 1, dtype=jnp.float64)
    e = (n + 1) ** 2 * jnp.sin(jnp.pi * k / (2 * (n + 1))) ** 2
    a_y = jnp.mean(jnp.asarray(state_weight))  # the Schur block takes the mean
    schur = (e[:, None] + e[None, :] + shift) ** 2 / a_y + 1.0 / control_weight
    inv_sqrt = jax.lax.rsqrt(schur).reshape(-1)
    nn = n * n

    def sine(lam):
        return (v @ lam.reshape(n, n) @ v).T.reshape(-1)

    def mv(z):
        y, u, lam = z[:nn], z[nn:-nn], z[-nn:]
        lam = sine(sine(lam) * inv_sqrt) if symmetric else sine(lam * inv_sqrt)
        return jnp.concatenate(
            [y * jax.lax.rsqrt(state_weight), u * jax.lax.rsqrt(control_weight), lam]
        )

    return mv


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


WEIGHTS = [(1.0, 0.1, 0.0), (2.7, 1.0e-2, 3.4)]  # Poisson control; a semilinear-like shift


# ----------------------------------------------------------------------------- the transform


def _dst2(u):
    """`V u V`: the DST along the rows, then along the columns."""
    return _dst1(_dst1(u).T).T


@pytest.mark.parametrize("n", SIZES)
def test_dst_matches_the_dense_sine_matrix(n, getkey):
    v = _sine_matrix(n)
    u = jr.normal(getkey(), (5, n, n), dtype=jnp.float64)
    assert _dst1(u).dtype == jnp.float64
    # Along the last axis, for any leading axes.
    assert _rel(_dst1(u), np.asarray(u) @ v) < RTOL
    # Along both axes of the grid: V u V, an involution.
    grid = u[0]
    assert _rel(_dst2(grid), v @ np.asarray(grid) @ v) < RTOL
    assert _rel(_dst2(_dst2(grid)), grid) < RTOL
    # It diagonalises the 5-point Laplacian: -Delta_h (V (x) V) = (V (x) V) diag(e_i + e_j).
    h = 2.0 / (n + 1)
    e = (4.0 / h**2) * np.sin(np.pi * np.arange(1, n + 1) / (2 * (n + 1))) ** 2
    lhs = -laplacian_5pt(_dst2(grid), h)
    assert _rel(lhs, _dst2((e[:, None] + e[None, :]) * np.asarray(grid))) < 1e-11


# ----------------------------------------------------------------------------- the operator


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("n", SIZES)
def test_preconditioner_matches_the_dense_one(n, weights):
    a_y, a_u, shift = weights
    r = control_kkt_preconditioner(n, a_y, a_u, shift, jnp.float64)
    matrix = np.asarray(r.as_matrix())
    zeros = jnp.zeros(3 * n * n)
    dense, dense_s = (
        np.asarray(jax.jacfwd(_dense_preconditioner(n, a_y, a_u, shift, symmetric=sym))(zeros))
        for sym in (False, True)
    )
    assert matrix.dtype == np.float64
    assert _rel(matrix, dense) < RTOL
    # R R^T = S^2 = P^-1, and R^T P R = I for P = diag(a_y I, a_u I, A^2 / a_y + I / a_u),
    # A = -Delta_h + shift I assembled from the stencil.
    assert _rel(matrix @ matrix.T, dense_s @ dense_s) < RTOL
    a = _laplacian_matrix(n) + shift * np.eye(n * n)
    p = np.zeros((3 * n * n,) * 2)
    nn = n * n
    p[:nn, :nn] = a_y * np.eye(nn)
    p[nn : 2 * nn, nn : 2 * nn] = a_u * np.eye(nn)
    p[2 * nn :, 2 * nn :] = a @ a / a_y + np.eye(nn) / a_u
    np.testing.assert_allclose(matrix.T @ p @ matrix, np.eye(3 * nn), atol=1e-11)
    # R = Q D: Q symmetric and its own inverse, D positive diagonal.
    q = np.asarray(r.operator1.as_matrix())
    d = np.asarray(r.operator2.as_matrix())
    np.testing.assert_allclose(q, q.T, atol=1e-14)
    np.testing.assert_allclose(q @ q, np.eye(3 * nn), atol=1e-13)
    np.testing.assert_array_equal(d, np.diag(np.diag(d)))
    assert np.diag(d).min() > 0


def test_preconditioner_takes_a_diagonal_state_weight(getkey):
    """A vector of state weights scales the state block entry by entry; the Schur block uses
    their mean."""
    n = 5
    weights = jr.uniform(getkey(), (n * n,), minval=0.5, maxval=2.0, dtype=jnp.float64)
    r = control_kkt_preconditioner(n, weights, 0.1, 1.0, jnp.float64)
    mean = control_kkt_preconditioner(n, jnp.mean(weights), 0.1, 1.0, jnp.float64)
    z = jr.normal(getkey(), (3 * n * n,), dtype=jnp.float64)
    nn = n * n
    np.testing.assert_allclose(r.mv(z)[:nn], z[:nn] / jnp.sqrt(weights), rtol=1e-14)
    np.testing.assert_allclose(r.mv(z)[nn:], mean.mv(z)[nn:], rtol=1e-14)


def test_preconditioner_jit_vmap_transpose(getkey):
    n = 8
    a_y, a_u, shift = WEIGHTS[1]
    r = control_kkt_preconditioner(n, a_y, a_u, shift, jnp.float64)
    dense = _dense_preconditioner(n, a_y, a_u, shift, symmetric=False)
    dense_t = jax.linear_transpose(dense, jnp.zeros(3 * n * n))
    zs = jr.normal(getkey(), (4, 3 * n * n), dtype=jnp.float64)
    expected = jax.vmap(dense)(zs)
    assert _rel(eqx.filter_jit(lambda op, z: op.mv(z))(r, zs[0]), expected[0]) < RTOL
    assert _rel(jax.vmap(r.mv)(zs), expected) < RTOL
    assert _rel(jax.linear_transpose(r.mv, zs[0])(zs[1])[0], dense_t(zs[1])[0]) < RTOL
    assert _rel(r.transpose().mv(zs[1]), dense_t(zs[1])[0]) < RTOL


def test_preconditioner_grad_matches_the_dense_one(getkey):
    """The semilinear problem builds `R` from traced means of the iterate; gradients through
    the FFT construction match the dense ones (and central differences)."""
    n = 8
    z = jr.normal(getkey(), (3 * n * n,), dtype=jnp.float64)

    def loss(weights, make):
        return jnp.sum(make(*weights)(z) ** 2)

    def fft(a_y, a_u, shift):
        return control_kkt_preconditioner(n, a_y, a_u, shift, jnp.float64).mv

    def dense(a_y, a_u, shift):
        return _dense_preconditioner(n, a_y, a_u, shift, symmetric=False)

    weights = jnp.asarray(WEIGHTS[1])
    grad = jax.jit(jax.grad(lambda w: loss(w, fft)))(weights)
    assert _rel(grad, jax.grad(lambda w: loss(w, dense))(weights)) < 1e-11
    for i in range(3):
        step = 1e-4 * weights[i]
        e = step * jnp.eye(3)[i]
        fd = (loss(weights + e, fft) - loss(weights - e, fft)) / (2 * step)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-5)


# ----------------------------------------------------------------------------- end to end


@eqx.filter_jit
def _solve(problem, kkt_solver, preconditioner):
    solver = ExactAugmentedLagrangianNewton(
        atol=1e-9, safeguards=PracticalSafeguards(), kkt_solver=kkt_solver
    )
    return problem.minimise(
        solver,
        max_steps=30,
        key=jr.key(0),
        throw=False,
        preconditioner=preconditioner,
    )


def test_preconditioned_solve_matches_the_dense_preconditioner():
    """Semilinear control, N = 8: GMRES on R^T K R with the FFT-applied R takes the same outer
    and inner steps as on S K S with the former dense, symmetric S (an orthogonally similar
    system), and both end at the LU solution."""
    n = 8
    problem = semilinear_control(n)
    y_d, alpha = problem.args

    def dense_preconditioner(x, lam, args):
        y = x[: n * n]
        state_weight = jnp.abs(1.0 + 6.0 * y * lam)
        mv = _dense_preconditioner(n, state_weight, alpha, 3.0 * jnp.mean(y**2), symmetric=True)
        return lx.FunctionLinearOperator(
            mv,
            jax.ShapeDtypeStruct((3 * n * n,), x.dtype),
            tags=(lx.symmetric_tag, lx.positive_semidefinite_tag),
        )

    gmres = IterativeKKTSolver(lx.GMRES(rtol=0.1, atol=0.0, restart=5, max_steps=100))
    fft = _solve(problem, gmres, problem.kkt_preconditioner)
    dense = _solve(problem, gmres, dense_preconditioner)
    exact = _solve(problem, DirectKKTSolver(lx.LU()), None)
    for sol in (fft, dense, exact):
        assert sol.result == pdeopt.RESULTS.successful
    assert int(fft.stats["num_steps"]) == int(dense.stats["num_steps"])
    assert int(fft.stats["num_inner_steps"]) == int(dense.stats["num_inner_steps"])
    np.testing.assert_allclose(fft.value, dense.value, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fft.multipliers, dense.multipliers, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fft.value, exact.value, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fft.multipliers, exact.multipliers, rtol=0, atol=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("make", [poisson_control, semilinear_control])
def test_minres_solves_both_control_problems_at_two_million_unknowns(make):
    """N = 1024 (n = 2·10⁶, the size of the scaling benchmark): MINRES on Rᵀ K R reaches
    ‖∇L‖ ≤ 1e-6 on both problems. Near the solution the merit's rounding error exceeds the
    decrease Armijo asks for; without the round-off-aware search the Poisson solve stalled at
    ‖∇L‖ ≈ 3e-5."""
    problem = make(1024)
    solver = ExactAugmentedLagrangianNewton(
        atol=1e-6,
        delta0=1e-3,
        safeguards=PracticalSafeguards(),
        kkt_solver=IterativeKKTSolver(MINRES(rtol=0.0, atol=0.0, max_steps=1000)),
        max_inner_steps=1000,
    )
    sol = problem.minimise(
        solver, max_steps=20, throw=False, preconditioner=problem.kkt_preconditioner
    )
    assert sol.result == pdeopt.RESULTS.successful
    assert int(sol.stats["num_steps"]) <= 5
