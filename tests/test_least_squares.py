"""pdeopt's Levenberg–Marquardt and its step solvers: minimisers against optimistix and dense
references, the layer's structured Jacobian, implicit gradients, failures and bad input."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optimistix as optx
import pytest

from pdeopt.constraints import HardConstraint
from pdeopt.solvers import (
    AutoStep,
    CholeskyStep,
    GaussianSketch,
    LevenbergMarquardt,
    QRStep,
    SketchedStep,
)
from problems.burgers import Burgers
from tests.test_hard_constraints import _ds_case, _heat_case

STEPS = {
    "cholesky": CholeskyStep(),
    "qr": QRStep(),
    "sketched": SketchedStep(),
    "sketched-gaussian": SketchedStep(sketch=GaussianSketch(), oversampling=3),
}


def _tight(step):
    return LevenbergMarquardt(rtol=1e-12, atol=1e-12, step_solver=step)


def _rosenbrock(y, args):
    return jnp.stack([10 * (y[1] - y[0] ** 2), 1 - y[0]])


def _exponentials(y, t):
    """A separable nonlinear fit with a nonzero residual at the minimiser."""
    model = y[0] * jnp.exp(-y[1] * t) + y[2] * jnp.exp(-y[3] * t)
    data = 2 * jnp.exp(-1.3 * t) + 0.5 * jnp.exp(-0.2 * t) + 0.01 * jnp.sin(40 * t)
    return model - data


@pytest.mark.parametrize("step", STEPS.values(), ids=STEPS.keys())
def test_rosenbrock_from_far(step):
    """Needs rejected trials and damping: the Gauss–Newton step alone overshoots."""
    sol = optx.least_squares(
        _rosenbrock, _tight(step), jnp.array([-1.2, 1.0]), max_steps=200, throw=False
    )
    assert sol.result == optx.RESULTS.successful
    np.testing.assert_allclose(sol.value, [1.0, 1.0], atol=1e-10)


@pytest.mark.parametrize("step", STEPS.values(), ids=STEPS.keys())
def test_same_minimiser_as_optimistix(step):
    t = jnp.linspace(0, 4, 200)
    y0 = jnp.array([1.0, 1.0, 1.0, 0.1])
    ours = optx.least_squares(_exponentials, _tight(step), y0, t, max_steps=200)
    reference = optx.least_squares(
        _exponentials, optx.LevenbergMarquardt(rtol=1e-12, atol=1e-12), y0, t, max_steps=400
    )
    np.testing.assert_allclose(ours.value, reference.value, rtol=1e-7, atol=1e-9)
    assert ours.stats["num_steps"] < reference.stats["num_steps"]


@pytest.mark.parametrize("case", [_heat_case, _ds_case])
@pytest.mark.parametrize("step", STEPS.values(), ids=STEPS.keys())
def test_layer_solves_agree_with_optimistix(case, step, getkey):
    pde, basis, condition = case(getkey())
    key = getkey()
    common = dict(num_basis=basis.shape[-1], num_points=60, max_steps=300)
    ours = HardConstraint(solver=_tight(step), **common)
    reference = HardConstraint(solver=optx.LevenbergMarquardt(rtol=1e-13, atol=1e-13), **common)
    _, omega, stats = ours.solve(pde, basis, condition, key=key)
    _, expected, _ = reference.solve(pde, basis, condition, key=key)
    assert bool(stats.converged.all())
    np.testing.assert_allclose(omega, expected, rtol=1e-7, atol=1e-9)


def test_sketched_matches_dense_for_a_large_basis(getkey):
    """300 unknowns, 6000 rows: `AutoStep` takes the sketched path; the same minimiser as the
    dense Cholesky and QR steps."""
    m, n = 6000, 300
    a = jr.normal(getkey(), (m, n)) @ jnp.diag(jnp.logspace(0, -4, n))  # condition 1e4
    b = jr.normal(getkey(), (m,))
    fn = lambda y, args: a @ y + 0.1 * jnp.tanh(y[0]) - b
    assert isinstance(AutoStep().choose(m, n), SketchedStep)
    y0 = jnp.zeros(n)
    values = {}
    for name, step in [("auto", AutoStep()), ("cholesky", CholeskyStep()), ("qr", QRStep())]:
        solver = LevenbergMarquardt(rtol=1e-10, atol=1e-12, step_solver=step)
        sol = optx.least_squares(fn, solver, y0, max_steps=50)
        values[name] = sol.value
    np.testing.assert_allclose(values["auto"], values["qr"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(values["cholesky"], values["qr"], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "case",
    [_heat_case, _ds_case, lambda key: (Burgers(nx=16, nt=9), *_burgers_inputs(key))],
    ids=["heat", "diffusion-sorption", "burgers"],
)
@pytest.mark.parametrize("parts", [None, (1, 2)])
def test_structured_jacobian_matches_autodiff(case, parts, getkey):
    """The layer's pointwise Jacobian (passed as `options['jacobian']`) equals `jax.jacfwd` of
    its residual rows, for one expert and with several."""
    pde, basis, condition = case(getkey())
    n = basis.shape[-1]
    layer = HardConstraint(num_basis=n, num_points=40, parts=parts)
    part = layer.partition(pde)
    quantities, condition64, _ = layer._basis(pde, basis, condition)
    problem, _ = layer._problems(pde, part, quantities, condition64, getkey())
    from pdeopt.constraints._hard import _Shared

    shared = _Shared(quantities.traces, condition64)
    weights = layer._row_weights(pde)
    omega = jr.normal(getkey(), (n,))
    for k in range(part.num_experts):
        args = (jax.tree.map(lambda a, k=k: a[k], problem), shared)
        f, jac = layer._jacobian(pde, weights, omega, args)
        np.testing.assert_allclose(f, layer._residual(pde, weights, omega, args), rtol=1e-13)
        expected = jax.jacfwd(lambda w, args=args: layer._residual(pde, weights, w, args))(omega)
        np.testing.assert_allclose(jac, expected, rtol=1e-10, atol=1e-12)


def _burgers_inputs(key):
    x = jnp.linspace(0, 1, 16, endpoint=False)
    condition = jnp.sin(2 * jnp.pi * x)
    basis = jnp.tanh(jr.normal(key, (9, 16, 4)))
    return basis, condition


@pytest.mark.parametrize(
    "step", [CholeskyStep(), SketchedStep(damping_floor=0.0)], ids=["dense", "sketched"]
)
@pytest.mark.parametrize("case", [_heat_case, _ds_case])
def test_implicit_gradient_matches_finite_differences(case, step, getkey):
    """d(loss of u)/d(basis) through the layer with pdeopt's solver, against extrapolated
    central differences in float64 along a random direction. (The sketched step solves
    undamped here: its default floor λ ≥ 1e-5 slows the last steps, and these solves must
    reach rtol 1e-12 for the differences to be accurate.)"""
    pde, basis, condition = case(getkey())
    key = getkey()
    direction = case(getkey())[1]  # A smooth direction: noise would excite huge u_xx terms.
    weights = jr.normal(getkey(), pde.grid_shape)
    layer = HardConstraint(
        num_basis=basis.shape[-1],
        num_points=60,
        solver=_tight(step),
        max_steps=300,
        ridge=1e-3,
    )
    loss = lambda b: jnp.sum(weights * layer(pde, b, condition, key=key)[0] ** 2)
    grad = jax.grad(loss)(basis)
    central = lambda h: (loss(basis + h * direction) - loss(basis - h * direction)) / (2 * h)
    fd = (4 * central(1e-5) - central(2e-5)) / 3  # Richardson: O(h⁴) truncation error.
    # Diffusion–sorption's retardation factor has an unbounded derivative at u = 0, which
    # limits what differences can resolve there.
    rtol = 1e-6 if case is _heat_case else 3e-5
    np.testing.assert_allclose(jnp.vdot(grad, direction), fd, rtol=rtol)


def test_nonfinite_residual_is_reported():
    fn = lambda y, args: jnp.stack([jnp.log(y[0]), y[1]])  # NaN once y[0] < 0
    sol = optx.least_squares(fn, _tight(CholeskyStep()), jnp.array([-1.0, 1.0]), throw=False)
    assert sol.result == optx.RESULTS.nonfinite


def test_no_acceptable_step_is_a_failure_not_a_success():
    """A residual that is NaN away from the start: every trial is rejected, the solve stops
    with `nonlinear_divergence` after `max_trials` rejections."""
    fn = lambda y, args: jnp.where(jnp.all(y == 1.0), 1.0, jnp.nan) * jnp.stack([y[0], y[1], 1.0])
    solver = LevenbergMarquardt(rtol=1e-8, atol=1e-8, max_trials=3)
    sol = optx.least_squares(fn, solver, jnp.ones(2), max_steps=10, throw=False)
    assert sol.result == optx.RESULTS.nonlinear_divergence


def test_max_steps_is_reported():
    solver = LevenbergMarquardt(rtol=1e-14, atol=1e-14)
    sol = optx.least_squares(_rosenbrock, solver, jnp.array([-1.2, 1.0]), max_steps=2, throw=False)
    assert sol.result == optx.RESULTS.nonlinear_max_steps_reached


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="at least as many rows"):
        optx.least_squares(lambda y, a: y[:2], _tight(CholeskyStep()), jnp.ones(3))
    with pytest.raises(ValueError, match="initial_damping"):
        LevenbergMarquardt(rtol=1e-6, atol=1e-8, initial_damping=0.0)
    with pytest.raises(ValueError, match="rtol"):
        LevenbergMarquardt(rtol=-1.0, atol=1e-8)
    with pytest.raises(ValueError, match="oversampling"):
        SketchedStep(oversampling=1)
    with pytest.raises(ValueError, match="max_trials"):
        LevenbergMarquardt(rtol=1e-6, atol=1e-8, max_trials=0)


def test_jit_and_vmap(getkey):
    t = jnp.linspace(0, 4, 200)
    solver = _tight(CholeskyStep())
    starts = jnp.array([[1.0, 1.0, 1.0, 0.1], [2.0, 1.5, 0.4, 0.3]])
    solve = jax.jit(jax.vmap(lambda y0: optx.least_squares(_exponentials, solver, y0, t).value))
    values = solve(starts)
    for y0, value in zip(starts, values):
        np.testing.assert_allclose(
            value, optx.least_squares(_exponentials, solver, y0, t).value, rtol=1e-8
        )


def _exact_layer(num_basis, parts=None):
    return HardConstraint(
        num_basis=num_basis,
        num_points=30,
        parts=parts,
        exact_rows={"ic": 2, "bc": 2},
        ridge=1e-3,
        max_steps=100,
    )


@pytest.mark.parametrize(
    "parts", [None, pytest.param((1, 2), marks=pytest.mark.slow)], ids=["one", "two-experts"]
)  # 40–50 s each on a 2-core CPU
def test_exact_rows_hold_and_differentiate(parts, getkey):
    """IC/BC rows held exactly by `constrained_minimise`: their residual at round-off, and
    the implicit gradient through the KKT conditions against extrapolated differences."""
    from pdeopt.constraints._hard import _Shared

    pde, basis, condition = _heat_case(getkey())
    layer, key = _exact_layer(basis.shape[-1], parts), getkey()
    _, omega, stats = layer.solve(pde, basis, condition, key=key)
    assert bool(stats.converged.all())
    part, indices = layer.partition(pde), layer._exact_indices(pde)
    quantities, condition64, _ = layer._basis(pde, basis, condition)
    problem, _ = layer._problems(pde, part, quantities, condition64, key)
    shared = _Shared(quantities.traces, condition64)
    for k in range(part.num_experts):
        args = (jax.tree.map(lambda a, k=k: a[k], problem), shared)
        assert float(jnp.max(jnp.abs(layer._exact(pde, indices, omega[k], args)))) < 1e-10

    weights, direction = jr.normal(getkey(), pde.grid_shape), _heat_case(getkey())[1]
    loss = lambda b: jnp.sum(weights * layer(pde, b, condition, key=key)[0] ** 2)
    grad = jnp.vdot(jax.grad(loss)(basis), direction)
    central = lambda h: (loss(basis + h * direction) - loss(basis - h * direction)) / (2 * h)
    np.testing.assert_allclose(grad, (4 * central(1e-5) - central(2e-5)) / 3, rtol=1e-6)


def test_exact_rows_bad_input():
    pde, basis, _ = _heat_case(jr.key(0))
    with pytest.raises(ValueError, match="at most 6 rows can"):
        HardConstraint(num_basis=6, num_points=30, exact_rows={"ic": 4, "bc": 3}).check(pde)
    with pytest.raises(ValueError, match="not blocks of"):
        HardConstraint(num_basis=6, num_points=30, exact_rows={"mass": 1}).check(pde)
    with pytest.raises(ValueError, match="exceeds the 16 rows"):
        HardConstraint(num_basis=40, num_points=60, exact_rows={"ic": 17}).check(pde)
    with pytest.raises(ValueError, match="positive number of rows"):
        HardConstraint(num_basis=6, num_points=30, exact_rows={"ic": 0})
    with pytest.raises(ValueError, match="global_boundary_rows"):
        HardConstraint(
            num_basis=6,
            num_points=20,
            parts=(1, 2),
            exact_rows={"ic": 2},
            global_boundary_rows=False,
        ).check(pde)
