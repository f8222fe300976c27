"""Finite-difference operators: stencils, convergence orders, boundary closures, transforms."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from pdeopt.discretizations import (
    Axis,
    Dirichlet,
    Grid,
    Neumann,
    Robin,
    boundary_trace,
    derivative,
    fd_weights,
)

LO, HI = 0.2, 1.7
SIZES = (64, 128, 256, 512)


def f(x):
    return np.exp(np.sin(3 * x))


def df(x):
    return 3 * np.cos(3 * x) * f(x)


def d2f(x):
    return (9 * np.cos(3 * x) ** 2 - 9 * np.sin(3 * x)) * f(x)


EXACT = {0: f, 1: df, 2: d2f}
ALPHA, BETA = 1.5, 0.7


def make_bc(kind, side_x):
    if kind == "none":
        return None
    if kind == "dirichlet":
        return Dirichlet(f(side_x))
    if kind == "neumann":
        return Neumann(df(side_x))
    return Robin(ALPHA, BETA, ALPHA * f(side_x) + BETA * df(side_x))


def slope(hs, errs):
    return np.polyfit(np.log(hs), np.log(errs), 1)[0]


# ---------------------------------------------------------------- grid


def test_axis_points_and_grid():
    vertex = Axis(5, 0.0, 1.0)
    np.testing.assert_allclose(vertex.points, [0.0, 0.25, 0.5, 0.75, 1.0], rtol=0, atol=1e-15)
    assert vertex.spacing == 0.25
    cell = Axis(4, 0.0, 1.0, centering="cell")
    np.testing.assert_allclose(cell.points, [0.125, 0.375, 0.625, 0.875], rtol=0, atol=1e-15)
    periodic = Axis(4, 0.0, 1.0, periodic=True)
    np.testing.assert_allclose(periodic.points, [0.0, 0.25, 0.5, 0.75], rtol=0, atol=1e-15)
    assert periodic.boundaries == (0.0, 1.0)
    assert vertex.points.dtype == np.float64

    grid = Grid((vertex, cell))
    assert grid.shape == (5, 4)
    assert grid.ndim == 2
    mesh = grid.meshgrid()
    assert mesh.shape == (5, 4, 2)
    np.testing.assert_array_equal(mesh[:, 2, 0], vertex.points)
    np.testing.assert_array_equal(mesh[3, :, 1], cell.points)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=1, lo=0.0, hi=1.0), "n >= 2"),
        (dict(n=8, lo=1.0, hi=1.0), "greater than `lo`"),
        (dict(n=8, lo=0.0, hi=1.0, centering="face"), "centering='cell'"),
        # `n: int`: jaxtyping's runtime checks (the test run) reject 8.0 by its annotation first,
        # with a `jaxtyping.TypeCheckError` (a TypeError).
        (dict(n=8.0, lo=0.0, hi=1.0), "Python int|parameter 'n'"),
    ],
)
def test_axis_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Axis(**kwargs)


def test_grid_errors():
    with pytest.raises(ValueError, match="at least one"):
        Grid(())
    with pytest.raises(ValueError, match="not an `Axis`"):
        Grid((Axis(4, 0.0, 1.0), (4, 0.0, 1.0)))


# ---------------------------------------------------------------- fd_weights


@pytest.mark.parametrize(
    "x0, xs, order, expected",
    [
        (0.0, [-1, 0, 1], 1, [-0.5, 0.0, 0.5]),
        (0.0, [-1, 0, 1], 2, [1.0, -2.0, 1.0]),
        (0.0, [-2, -1, 0, 1, 2], 1, [1 / 12, -2 / 3, 0.0, 2 / 3, -1 / 12]),
        (0.0, [-2, -1, 0, 1, 2], 2, [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12]),
        (0.0, [0, 1, 2], 1, [-1.5, 2.0, -0.5]),
        (0.0, [0, 1, 2, 3], 2, [2.0, -5.0, 4.0, -1.0]),
        (0.5, [0, 1], 0, [0.5, 0.5]),
        (0.0, [0.0, 0.5, 1.5], 1, [-8 / 3, 3.0, -1 / 3]),  # face + two cell centres
    ],
)
def test_fd_weights_classic(x0, xs, order, expected):
    np.testing.assert_allclose(fd_weights(x0, xs, order), expected, rtol=1e-13, atol=1e-13)


def test_fd_weights_exact_on_polynomials():
    rng = np.random.default_rng(0)
    xs = np.sort(rng.uniform(-1.0, 1.0, size=6))
    x0 = 0.3
    poly = np.polynomial.Polynomial(rng.normal(size=6))  # degree 5 = len(xs) - 1
    for order in range(6):
        w = fd_weights(x0, xs, order)
        assert w.dtype == np.float64
        np.testing.assert_allclose(w @ poly(xs), poly.deriv(order)(x0), rtol=1e-9, atol=1e-9)
    # One degree too many is not exact: the test can fail.
    poly6 = np.polynomial.Polynomial(np.ones(7))
    assert abs(fd_weights(x0, xs, 1) @ poly6(xs) - poly6.deriv(1)(x0)) > 1e-6


def test_fd_weights_errors():
    with pytest.raises(ValueError, match="at least 3 points"):
        fd_weights(0.0, [0.0, 1.0], 2)
    with pytest.raises(ValueError, match="distinct"):
        fd_weights(0.0, [0.0, 1.0, 1.0], 1)
    with pytest.raises(ValueError, match="non-negative"):
        fd_weights(0.0, [0.0, 1.0, 2.0], -1)


# ---------------------------------------------------------------- convergence orders


@pytest.mark.parametrize("accuracy", [2, 4])
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("bc_kind", ["none", "dirichlet", "neumann", "robin"])
@pytest.mark.parametrize("centering", ["vertex", "cell"])
def test_derivative_convergence(centering, bc_kind, order, accuracy):
    bc = None if bc_kind == "none" else (make_bc(bc_kind, LO), make_bc(bc_kind, HI))
    hs, errs = [], []
    for n in SIZES:
        axis = Axis(n, LO, HI, centering=centering)
        x = axis.points
        out = derivative(jnp.asarray(f(x)), axis, order, accuracy=accuracy, bc=bc)
        errs.append(np.max(np.abs(np.asarray(out) - EXACT[order](x))))  # boundaries included
        hs.append(axis.spacing)
    s = slope(hs, errs)
    assert accuracy - 0.25 <= s <= accuracy + 0.5, (s, errs)
    assert errs[-1] < (1e-4 if accuracy == 2 else 1e-7) * 10**order, errs


@pytest.mark.parametrize("accuracy", [2, 4])
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("centering", ["vertex", "cell"])
def test_derivative_convergence_periodic(centering, order, accuracy):
    exact = {1: lambda x: 2 * np.pi * np.cos(2 * np.pi * x)}
    exact[2] = lambda x: -((2 * np.pi) ** 2) * np.sin(2 * np.pi * x)
    hs, errs = [], []
    for n in (32, 64, 128, 256):
        axis = Axis(n, 0.0, 1.0, centering=centering, periodic=True)
        x = axis.points
        out = derivative(jnp.sin(2 * np.pi * x), axis, order, accuracy=accuracy)
        errs.append(np.max(np.abs(np.asarray(out) - exact[order](x))))
        hs.append(axis.spacing)
    s = slope(hs, errs)
    assert abs(s - accuracy) < 0.2, (s, errs)


@pytest.mark.parametrize("accuracy", [2, 4])
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("side", ["lo", "hi"])
@pytest.mark.parametrize("centering", ["vertex", "cell"])
def test_boundary_trace_convergence(centering, side, order, accuracy):
    # exp(a x): no derivative vanishes, so the error at a single point converges cleanly (the
    # error constants of exp(sin(3x)) pass near zero at x = 1.7).
    g = lambda x: np.exp(1.3 * x)
    exact = {0: g, 1: lambda x: 1.3 * g(x)}
    xb = LO if side == "lo" else HI
    hs, errs = [], []
    for n in (32, 64, 128, 256):
        axis = Axis(n, LO, HI, centering=centering)
        out = boundary_trace(
            jnp.asarray(g(axis.points)), axis, side, order=order, accuracy=accuracy
        )
        assert out.shape == ()
        errs.append(abs(float(out) - exact[order](xb)))
        hs.append(axis.spacing)
    if centering == "vertex" and order == 0:
        assert max(errs) < 1e-14  # the end value itself
        return
    s = slope(hs, errs)
    assert abs(s - (accuracy + 1)) < 0.2, (s, errs)


# ---------------------------------------------------------------- stencil structure


@pytest.mark.parametrize("accuracy", [2, 4])
def test_second_derivative_is_compact(accuracy):
    axis = Axis(16, 0.0, 1.5)
    h = axis.spacing
    matrix = np.asarray(derivative(jnp.eye(16), axis, 2, dim=0, accuracy=accuracy))
    if accuracy == 2:
        expected = np.array([1.0, -2.0, 1.0]) / h**2
    else:
        expected = np.array([-1.0, 16.0, -30.0, 16.0, -1.0]) / (12 * h**2)
    half = accuracy // 2
    for i in range(half, 16 - half):
        row = np.zeros(16)
        row[i - half : i + half + 1] = expected
        np.testing.assert_allclose(matrix[i], row, rtol=1e-12, atol=1e-8)
    # Boundary rows use order + accuracy points.
    assert np.count_nonzero(np.abs(matrix[0]) > 1e-12) == 2 + accuracy


def test_linear_without_bc(getkey):
    axis = Axis(20, LO, HI, centering="cell")
    u, v = jr.normal(getkey(), (20,)), jr.normal(getkey(), (20,))
    for order in (1, 2):
        for accuracy in (2, 4):
            op = lambda w, o=order, a=accuracy: derivative(w, axis, o, accuracy=a)
            np.testing.assert_allclose(
                op(2.0 * u - 3.0 * v), 2.0 * op(u) - 3.0 * op(v), rtol=1e-12, atol=1e-9
            )
            assert np.max(np.abs(op(jnp.zeros(20)))) == 0.0
    # A basis stack (grid, n_basis) equals the dense operator times the stack.
    stack = jr.normal(getkey(), (20, 7))
    matrix = derivative(jnp.eye(20), axis, 2, dim=0, accuracy=4)
    np.testing.assert_allclose(
        derivative(stack, axis, 2, dim=0, accuracy=4), matrix @ stack, rtol=1e-12, atol=1e-8
    )


def test_vertex_bc_replaces_end_values(getkey):
    axis = Axis(24, LO, HI)
    u = jnp.asarray(f(axis.points))
    junk = u.at[0].set(100.0).at[-1].set(-7.0)
    bc = (Neumann(df(LO)), Dirichlet(f(HI)))
    np.testing.assert_allclose(
        derivative(junk, axis, 2, bc=bc), derivative(u, axis, 2, bc=bc), rtol=1e-13, atol=1e-10
    )
    # Without a condition the end value does matter.
    assert not np.allclose(derivative(junk, axis, 2), derivative(u, axis, 2))


def test_boundary_condition_residuals():
    for xb in (LO, HI):
        for cond in (make_bc("dirichlet", xb), make_bc("neumann", xb), make_bc("robin", xb)):
            assert abs(float(cond.residual(f(xb), df(xb)))) < 1e-13
            assert abs(float(cond.residual(f(xb) + 1.0, df(xb) + 1.0))) > 0.5


def test_mixed_sides_and_one_sided():
    # A condition on one side only; the other side falls back to one-sided stencils.
    for centering in ("vertex", "cell"):
        errs = []
        for n in (64, 128):
            axis = Axis(n, LO, HI, centering=centering)
            out = derivative(
                jnp.asarray(f(axis.points)), axis, 2, accuracy=4, bc=(None, make_bc("robin", HI))
            )
            errs.append(np.max(np.abs(np.asarray(out) - d2f(axis.points))))
        assert 3.7 < np.log2(errs[0] / errs[1]) < 4.6, errs


# ---------------------------------------------------------------- dims, vmap, jit, grad


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_batch_dims_match_vmap(dim, getkey):
    axis = Axis(18, LO, HI, centering="cell")
    other = 5
    shape = (18, other) if dim == 0 else (other, 18)
    u = jr.normal(getkey(), shape)
    g_lo, g_hi = jr.normal(getkey(), (other,)), jr.normal(getkey(), (other,))

    def single(col, a, b):
        return derivative(col, axis, 2, accuracy=4, bc=(Neumann(a), Robin(1.0, 0.5, b)))

    batched = derivative(u, axis, 2, dim=dim, accuracy=4, bc=(Neumann(g_lo), Robin(1.0, 0.5, g_hi)))
    expected = jax.vmap(
        single, in_axes=(1 if dim == 0 else 0, 0, 0), out_axes=1 if dim == 0 else 0
    )(u, g_lo, g_hi)
    assert batched.shape == u.shape
    np.testing.assert_allclose(batched, expected, rtol=1e-12, atol=1e-9)

    trace = boundary_trace(u, axis, "hi", dim=dim, order=1, accuracy=4)
    expected_trace = jax.vmap(
        lambda col: boundary_trace(col, axis, "hi", order=1, accuracy=4),
        in_axes=1 if dim == 0 else 0,
    )(u)
    assert trace.shape == (other,)
    np.testing.assert_allclose(trace, expected_trace, rtol=1e-12, atol=1e-9)


def test_three_dims_middle(getkey):
    axis = Axis(12, 0.0, 1.0, periodic=True)
    u = jr.normal(getkey(), (3, 12, 4))
    out = derivative(u, axis, 1, dim=1, accuracy=4)
    expected = jnp.stack([derivative(u[:, :, j], axis, 1, dim=1, accuracy=4) for j in range(4)], -1)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-10)


def test_jit_and_grad(getkey):
    axis = Axis(20, LO, HI)
    u = jr.normal(getkey(), (20,))

    def op(w, g):
        return derivative(w, axis, 2, accuracy=4, bc=(Dirichlet(1.0), Neumann(g)))

    np.testing.assert_allclose(jax.jit(op)(u, 0.3), op(u, 0.3), rtol=1e-12, atol=1e-9)

    # The operator is affine: grad of 0.5 |A u + b|² is Aᵀ (A u + b).
    loss = lambda w, g: 0.5 * jnp.sum(op(w, g) ** 2)
    matrix = jax.jacfwd(op)(u, 0.3)
    grad_u, grad_g = jax.grad(loss, argnums=(0, 1))(u, 0.3)
    np.testing.assert_allclose(grad_u, matrix.T @ op(u, 0.3), rtol=1e-10, atol=1e-8)
    eps = 1e-6
    fd = (loss(u, 0.3 + eps) - loss(u, 0.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(grad_g, fd, rtol=1e-6)
    assert abs(float(grad_g)) > 1e-3


# ---------------------------------------------------------------- bad inputs


def test_derivative_errors():
    axis = Axis(16, 0.0, 1.0)
    u = jnp.zeros(16)
    with pytest.raises(ValueError, match="use order=1 or order=2"):
        derivative(u, axis, 3)
    with pytest.raises(ValueError, match="use accuracy=2 or accuracy=4"):
        derivative(u, axis, 1, accuracy=3)
    with pytest.raises(ValueError, match=r"needs at least 6 points.*n>=6"):
        derivative(jnp.zeros(5), Axis(5, 0.0, 1.0), 2, accuracy=4)
    with pytest.raises(ValueError, match=r"needs at least 8 points.*or accuracy=2"):
        derivative(jnp.zeros(7), Axis(7, 0.0, 1.0), 1, accuracy=4, bc=(Neumann(), None))
    with pytest.raises(ValueError, match="needs at least 3 points"):
        derivative(jnp.zeros(2), Axis(2, 0.0, 1.0), 1)
    with pytest.raises(ValueError, match="periodic axis has no boundary"):
        derivative(u, Axis(16, 0.0, 1.0, periodic=True), 1, bc=(Dirichlet(), Dirichlet()))
    # `bc` is annotated as a pair: the runtime checks of the test run raise a TypeError first.
    with pytest.raises((ValueError, TypeError), match="pair|parameter 'bc'"):
        derivative(u, axis, 1, bc=Dirichlet())
    with pytest.raises(ValueError, match="pass the `dim`"):
        derivative(jnp.zeros((16, 4)), axis, 1)
    with pytest.raises(ValueError, match="out of range"):
        derivative(u, axis, 1, dim=1)


def test_boundary_trace_errors():
    axis = Axis(16, 0.0, 1.0)
    u = jnp.zeros(16)
    with pytest.raises(ValueError, match="side='lo' or side='hi'"):
        boundary_trace(u, axis, "left")
    with pytest.raises(ValueError, match="order=0 or order=1 or order=2"):
        boundary_trace(u, axis, "lo", order=3)
    with pytest.raises(ValueError, match="use accuracy=2 or accuracy=4"):
        boundary_trace(u, axis, "lo", accuracy=1)
    with pytest.raises(ValueError, match="no boundary"):
        boundary_trace(u, Axis(16, 0.0, 1.0, periodic=True), "lo")
    with pytest.raises(ValueError, match="needs at least 4 points"):
        boundary_trace(jnp.zeros(3), Axis(3, 0.0, 1.0), "hi", order=1)


def test_robin_errors():
    with pytest.raises(ValueError, match="use `Dirichlet"):
        Robin(0.0, 0)
    Robin(jnp.asarray(0.0), 0.0)  # traced / array coefficients are not checked
