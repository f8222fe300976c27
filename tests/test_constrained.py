"""Tests for `pdeopt.solvers.constrained_minimise`.

Each problem/configuration is compiled once (compile time dominates this file).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from helpers import kkt_norm

import pdeopt
from pdeopt.solvers import (
    MINRES,
    BacktrackingArmijo,
    ExactAugmentedLagrangianNewton,
    FaithfulSafeguards,
    IterativeKKTSolver,
    ObjectiveHessian,
    PracticalSafeguards,
    constrained_minimise,
)
from problems.cutest import semilinear_control

FAITHFUL = ExactAugmentedLagrangianNewton()
PRACTICAL = ExactAugmentedLagrangianNewton(atol=1e-8, safeguards=PracticalSafeguards())


def _solve(fn, constraint_fn, solver, *, max_steps=50, throw=True):
    """One jitted solve per (problem, configuration): `(y0, args) -> solution`."""

    @eqx.filter_jit
    def run(y0, args=None):
        return constrained_minimise(
            fn, constraint_fn, solver, y0, args, max_steps=max_steps, throw=throw
        )

    return run


# ----------------------------------------------------------------------------- problems


def hs6_f(x, args):
    return (1.0 - x[0]) ** 2


def hs6_c(x, args):
    return jnp.stack([10.0 * (x[1] - x[0] ** 2)])


def hs7_f(x, args):
    return jnp.log1p(x[0] ** 2) - x[1]


def hs7_c(x, args):
    return jnp.stack([(1.0 + x[0] ** 2) ** 2 + x[1] ** 2 - 4.0])


def hs28_f(x, args):
    return (x[0] + x[1]) ** 2 + (x[1] + x[2]) ** 2


def hs28_c(x, args):
    return jnp.stack([x[0] + 2.0 * x[1] + 3.0 * x[2] - 1.0])


def bt9_f(x, args):
    return -x[0]


def bt9_c(x, args):
    return jnp.stack([x[1] - x[0] ** 3 - x[2] ** 2, x[0] ** 2 - x[1] - x[3] ** 2])


HS6_Y0 = jnp.array([-1.2, 1.0])


# ----------------------------------------------------------------------------- HS6 anchor

_hs6_faithful = _solve(hs6_f, hs6_c, FAITHFUL)


def test_hs6_anchor_trajectory():
    """The paper's HS6 run: 9 iterations, α = 1/8 ×4, 1/4 ×2, 1/2, 1, 1; KKT 6.22 … 1.32, ~0."""
    sol = _hs6_faithful(HS6_Y0)
    assert sol.result == pdeopt.RESULTS.successful
    stats = sol.stats
    assert int(stats["num_steps"]) == 9
    np.testing.assert_array_equal(
        stats["alpha_history"][:9], [0.125, 0.125, 0.125, 0.125, 0.25, 0.25, 0.5, 1.0, 1.0]
    )
    assert np.all(np.isnan(stats["alpha_history"][9:]))
    kkt = np.asarray(stats["kkt_history"])
    np.testing.assert_allclose(kkt[0], 6.2225, atol=5e-5)  # ‖(∇ₓL, c)‖ at x₀ = √(4.84² + 3.6²+…)
    np.testing.assert_allclose(kkt[8], 1.3155, atol=5e-4)  # the paper: 1.32
    assert kkt[9] < 1e-4
    assert np.all(np.diff(kkt[:10]) < 0)
    assert np.all(np.isnan(kkt[10:]))
    np.testing.assert_allclose(sol.value, [1.0, 1.0], atol=1e-8)
    np.testing.assert_allclose(sol.multipliers, [0.0], atol=1e-8)
    # LU is exact: one inner step per outer iteration, no penalty updates or Hessian shifts.
    assert int(stats["num_inner_steps"]) == 9
    # x₀, then per iteration one evaluation at x_t plus the Armijo trials (4,4,4,4,3,3,2,1,1).
    assert int(stats["num_fn_evals"]) == 1 + 9 + (4 + 4 + 4 + 4 + 3 + 3 + 2 + 1 + 1)
    assert float(stats["flops"]) > 9 * (2 / 3) * 3**3


def test_hs6_reproducible():
    a = _hs6_faithful(HS6_Y0)
    b = _hs6_faithful(HS6_Y0)
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if eqx.is_array(leaf_a) and jnp.issubdtype(leaf_a.dtype, jax.dtypes.prng_key):
            leaf_a, leaf_b = jax.random.key_data(leaf_a), jax.random.key_data(leaf_b)
        np.testing.assert_array_equal(leaf_a, leaf_b)


def test_hs6_objective_hessian_variant():
    """On HS6 the ∇²f merit-gradient variant gives the same outer trajectory."""
    solver = ExactAugmentedLagrangianNewton(merit_hessian=ObjectiveHessian())
    sol = _solve(hs6_f, hs6_c, solver)(HS6_Y0)
    ref = _hs6_faithful(HS6_Y0)
    assert int(sol.stats["num_steps"]) == 9
    np.testing.assert_array_equal(sol.stats["alpha_history"], ref.stats["alpha_history"])


def test_hs6_iterative_inner_solver():
    """A loose Krylov solver: its tolerance is replaced by the faithful accuracy condition,
    which stops the inner loop, so the outer trajectory equals the LU one."""
    gmres = IterativeKKTSolver(lx.GMRES(rtol=1e-3, atol=1e-14, restart=2, max_steps=50))
    sol = _solve(hs6_f, hs6_c, ExactAugmentedLagrangianNewton(kkt_solver=gmres))(HS6_Y0)
    ref = _hs6_faithful(HS6_Y0)
    assert int(sol.stats["num_steps"]) == 9
    np.testing.assert_array_equal(sol.stats["alpha_history"], ref.stats["alpha_history"])
    np.testing.assert_allclose(sol.stats["kkt_history"][:9], ref.stats["kkt_history"][:9])
    inner = np.asarray(sol.stats["inner_steps_history"][:9])
    assert np.all(inner >= 3)  # N = 3: GMRES needs 3 steps to reach ~1e-11
    assert int(sol.stats["num_inner_cap_hits"]) == 0


def test_max_steps_reached():
    run = _solve(hs6_f, hs6_c, FAITHFUL, max_steps=3, throw=False)
    sol = run(HS6_Y0)
    assert sol.result == pdeopt.RESULTS.nonlinear_max_steps_reached
    assert int(sol.stats["num_steps"]) == 3
    np.testing.assert_array_equal(sol.stats["alpha_history"], [0.125, 0.125, 0.125])


# ----------------------------------------------------------------------------- small problems


@pytest.mark.parametrize(
    "fn, constraint_fn, y0, x_star, solver, tol, steps",
    [
        # HS7: x* = (0, √3); reference code: 10 iterations (the paper's table).
        (hs7_f, hs7_c, [2.0, 2.0], [0.0, 3**0.5], FAITHFUL, 1e-4, 10),
        (hs7_f, hs7_c, [2.0, 2.0], [0.0, 3**0.5], PRACTICAL, 1e-8, None),
        # HS28: linear constraint, convex quadratic: one step (the paper's table).
        (hs28_f, hs28_c, [-4.0, 1.0, 1.0], [0.5, -0.5, 0.5], FAITHFUL, 1e-4, 1),
        # BT9: x* = (1, 1, 0, 0), λ* = (−1, −1). H = 0 at x₀: needs the shift.
        (bt9_f, bt9_c, [2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 0.0, 0.0], PRACTICAL, 1e-8, None),
    ],
    ids=["hs7-faithful", "hs7-practical", "hs28-faithful", "bt9-practical"],
)
def test_small_problems(fn, constraint_fn, y0, x_star, solver, tol, steps):
    sol = _solve(fn, constraint_fn, solver)(jnp.array(y0))
    assert sol.result == pdeopt.RESULTS.successful
    num_steps = int(sol.stats["num_steps"])
    final_kkt = float(sol.stats["kkt_history"][num_steps])
    assert final_kkt <= tol
    np.testing.assert_allclose(
        final_kkt, kkt_norm(fn, constraint_fn, sol.value, sol.multipliers), rtol=1e-6, atol=1e-12
    )
    np.testing.assert_allclose(sol.value, x_star, atol=10 * tol**0.5 if tol > 1e-6 else 1e-7)
    assert float(sol.stats["alpha_history"][num_steps - 1]) == 1.0  # unit step at the end
    if steps is not None:
        assert num_steps == steps


# ----------------------------------------------------------------------------- convex QP


def test_equality_qp_closed_form(getkey):
    n, m = 6, 2
    a = jax.random.normal(getkey(), (n, n))
    q = a @ a.T + n * jnp.eye(n)
    g = jax.random.normal(getkey(), (n,))
    jac = jax.random.normal(getkey(), (m, n))
    b = jax.random.normal(getkey(), (m,))

    def f(x, args):
        q, g, _, _ = args
        return 0.5 * x @ q @ x + g @ x

    def c(x, args):
        _, _, jac, b = args
        return jac @ x - b

    sol = _solve(f, c, PRACTICAL)(jnp.zeros(n), (q, g, jac, b))
    kkt = jnp.block([[q, jac.T], [jac, jnp.zeros((m, m))]])
    ref = jnp.linalg.solve(kkt, jnp.concatenate([-g, b]))
    np.testing.assert_allclose(sol.value, ref[:n], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sol.multipliers, ref[n:], rtol=1e-10, atol=1e-10)
    assert int(sol.stats["num_steps"]) == 1


# ----------------------------------------------------------------------------- implicit AD


def _proj_f(x, p):
    return jnp.sum((x - p) ** 2)


def _proj_c(x, p):
    return jnp.stack([jnp.sum(x**2) - 1.0])


def test_implicit_gradient_matches_finite_differences():
    """x*(p) = p/‖p‖, λ*(p) = ‖p‖ − 1 for min ‖x − p‖² s.t. ‖x‖² = 1."""
    solver = ExactAugmentedLagrangianNewton(atol=1e-12, safeguards=PracticalSafeguards())
    w = jnp.array([0.3, -1.1, 0.7])
    y0 = jnp.array([1.0, 0.0, 0.0])

    @eqx.filter_jit
    def loss(p):
        sol = constrained_minimise(_proj_f, _proj_c, solver, y0, p, max_steps=30)
        return jnp.dot(w, sol.value) + 2.0 * sol.multipliers[0]

    def exact(p):
        r = jnp.linalg.norm(p)
        return jnp.dot(w, p / r) + 2.0 * (r - 1.0)

    p = jnp.array([1.5, 0.4, -0.8])
    np.testing.assert_allclose(loss(p), exact(p), rtol=1e-10)
    grad = jax.jit(jax.grad(loss))(p)
    eps = 1e-5
    fd = jnp.stack([(loss(p + eps * e) - loss(p - eps * e)) / (2 * eps) for e in jnp.eye(3)])
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grad, jax.grad(exact)(p), rtol=1e-8)


# ----------------------------------------------------------------------------- failures


def _sing_f(x, args):
    return x[0] + x[1]


def _sing_c(x, args):
    return jnp.stack([x[0] ** 2 + x[1] ** 2 - 1.0])  # G = 2xᵀ vanishes at x = 0


def test_singular_jacobian_reported():
    sol = _solve(_sing_f, _sing_c, FAITHFUL, max_steps=5, throw=False)(jnp.zeros(2))
    assert sol.result == pdeopt.RESULTS.singular_jacobian
    assert int(sol.stats["num_steps"]) == 0
    np.testing.assert_array_equal(sol.value, jnp.zeros(2))


def test_singular_jacobian_raises():
    run = _solve(_sing_f, _sing_c, FAITHFUL, max_steps=5, throw=True)
    with pytest.raises(Exception, match="rank deficient"):
        jax.block_until_ready(run(jnp.zeros(2)))


# ----------------------------------------------------------------------------- inputs


def test_float32_promoted_with_warning():
    y32 = HS6_Y0.astype(jnp.float32)
    with pytest.warns(UserWarning, match="float64"):
        out = eqx.filter_eval_shape(constrained_minimise, hs6_f, hs6_c, FAITHFUL, y32)
    assert out.value.dtype == jnp.float64
    assert out.multipliers.dtype == jnp.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.7}, "beta"),
        ({"rho": 1.0}, "rho"),
        ({"mu0": -1.0}, "mu0"),
    ],
)
def test_invalid_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExactAugmentedLagrangianNewton(**kwargs)


def test_invalid_inputs():
    with pytest.raises(ValueError, match="scalar"):
        constrained_minimise(lambda x, a: x, hs6_c, FAITHFUL, HS6_Y0)
    with pytest.raises(ValueError, match="non-empty"):
        constrained_minimise(hs6_f, lambda x, a: jnp.zeros(0), FAITHFUL, HS6_Y0)
    with pytest.raises(ValueError, match="structure and shapes"):
        constrained_minimise(hs6_f, hs6_c, FAITHFUL, HS6_Y0, lambda0=jnp.zeros(2))
    with pytest.raises(ValueError, match="floating-point"):
        constrained_minimise(hs6_f, hs6_c, FAITHFUL, jnp.array([1, 2]))
    with pytest.raises(TypeError, match="ExactAugmentedLagrangianNewton"):
        constrained_minimise(hs6_f, hs6_c, lx.LU(), HS6_Y0)
    # (jaxtyping's runtime check rejects it first in the tests; the message names it too.)
    with pytest.raises((ValueError, TypeError), match="kkt_solver"):
        ExactAugmentedLagrangianNewton(kkt_solver=lx.LU())
    with pytest.raises(ValueError, match="non-negative"):
        FaithfulSafeguards(singular_threshold=-1.0)
    with pytest.raises(ValueError, match="target_fraction"):
        PracticalSafeguards(target_fraction=1.0)


def test_practical_inner_tolerance_stops_at_a_fraction_of_the_target():
    """Practical mode never asks an inner solve for a residual below `target_fraction` of the
    outer tolerance ε (solving further cannot matter: a residual that far below ε ends the
    run); above it, the accuracy condition θδ‖∇L‖ holds as before, unless the last contraction
    predicts that this step ends the run."""
    safeguards = PracticalSafeguards(target_fraction=0.1)
    a = safeguards.assess(None, None, jnp.zeros(2), 1, 0.1)
    one = jnp.array(1.0)
    target = jnp.array(1e-6)
    nan = jnp.array(jnp.nan)
    tolerance = safeguards.residual_tolerance
    assert float(tolerance(1.0, 1e-3 * one, 1.0 * one, a, target, nan)) == pytest.approx(1e-3)
    assert float(tolerance(1.0, 1e-3 * one, 2e-6 * one, a, target, nan)) == pytest.approx(1e-7)
    exact = PracticalSafeguards(target_fraction=0.0)
    assert float(exact.residual_tolerance(1.0, 1e-3 * one, 2e-6 * one, a, target, nan)) == (
        pytest.approx(2e-9)
    )
    # A contraction 10 -> 2e-3 predicts 2e-3 · 2e-4 = 4e-7 ≤ ε for the next step: it is solved
    # to target_fraction·ε instead of δ‖∇L‖ = 2e-6; after 1 -> 2e-3 (4e-6 > ε) it is not.
    kkt = 2e-3 * one
    assert float(tolerance(1.0, 1e-3 * one, kkt, a, target, 1.0 * one)) == pytest.approx(2e-6)
    assert float(tolerance(1.0, 1e-3 * one, kkt, a, target, 10.0 * one)) == pytest.approx(1e-7)
    # End to end it only trims the last solves: same solution, no more inner steps.
    problem = semilinear_control(12)

    def solve(fraction):
        solver = ExactAugmentedLagrangianNewton(
            atol=1e-8,
            delta0=1e-3,
            safeguards=PracticalSafeguards(target_fraction=fraction),
            kkt_solver=IterativeKKTSolver(MINRES(rtol=0.1, atol=0.0, max_steps=200)),
        )
        return problem.minimise(solver, max_steps=30, preconditioner=problem.kkt_preconditioner)

    trimmed, full = solve(0.1), solve(0.0)
    assert int(trimmed.stats["num_inner_steps"]) <= int(full.stats["num_inner_steps"])
    np.testing.assert_allclose(trimmed.value, full.value, atol=1e-8)


# ----------------------------------------------------------------------------- the API


def test_pytree_inputs_and_constraints():
    """y0, the constraints and λ may be pytrees; the solution has their structures and equals
    the flat solve."""

    def f(y, args):
        return (1.0 - y["a"]) ** 2

    def c(y, args):
        return [10.0 * (y["b"][0] - y["a"] ** 2), {"zero": y["b"][1] - 2.0}]

    y0 = {"a": jnp.array(-1.2), "b": jnp.array([1.0, 0.0])}
    sol = constrained_minimise(f, c, FAITHFUL, y0)
    assert sol.result == pdeopt.RESULTS.successful
    assert jax.tree.structure(sol.value) == jax.tree.structure(y0)
    assert jax.tree.structure(sol.multipliers) == jax.tree.structure(c(y0, None))
    np.testing.assert_allclose(sol.value["a"], 1.0, atol=1e-8)
    np.testing.assert_allclose(sol.value["b"], [1.0, 2.0], atol=1e-8)
    lambda0 = [jnp.array(0.5), {"zero": jnp.array(-0.5)}]
    again = constrained_minimise(f, c, FAITHFUL, y0, lambda0=lambda0)
    np.testing.assert_allclose(again.value["a"], 1.0, atol=1e-8)


def test_closure_over_traced_values_and_grad():
    """A parameter closed over in a lambda is closure-converted: `grad` through the solve is the
    implicit derivative. min (x₀ − p)² + x₁² s.t. x₀ + x₁ = 1 gives x₀ = (1 + p)/2."""

    def solve(p):
        f = lambda x, a: (x[0] - p) ** 2 + x[1] ** 2
        c = lambda x, a: jnp.stack([x[0] + x[1] - 1.0])
        return constrained_minimise(f, c, PRACTICAL, jnp.zeros(2)).value[0]

    np.testing.assert_allclose(solve(3.0), 2.0, atol=1e-8)
    np.testing.assert_allclose(jax.grad(solve)(3.0), 0.5, atol=1e-8)
    np.testing.assert_allclose(jax.jit(jax.grad(solve))(3.0), 0.5, atol=1e-8)
    np.testing.assert_allclose(jax.vmap(solve)(jnp.array([1.0, 3.0])), [1.0, 2.0], atol=1e-8)


def test_solution_is_jittable_and_compiled_once():
    """Stats hold arrays only, so a solution leaves `jax.jit`; a second call with the same
    functions and solver reuses the compiled solve (no retrace)."""
    traces = []

    def f(x, args):
        traces.append(None)
        return hs6_f(x, args)

    out = jax.jit(lambda y: constrained_minimise(f, hs6_c, FAITHFUL, y))(HS6_Y0)
    assert all(isinstance(v, jax.Array) for v in out.stats.values())
    assert int(out.stats["max_steps"]) == 256
    first = constrained_minimise(f, hs6_c, FAITHFUL, HS6_Y0)
    count = len(traces)
    second = constrained_minimise(f, hs6_c, FAITHFUL, HS6_Y0 + 0.1)
    assert count > 0 and len(traces) == count
    assert first.result == second.result == pdeopt.RESULTS.successful


# ----------------------------------------------------------------------------- robustness


def hs61_f(x, args):
    return 4 * x[0] ** 2 + 2 * x[1] ** 2 + 2 * x[2] ** 2 - 33 * x[0] + 16 * x[1] - 24 * x[2]


def hs61_c(x, args):
    return jnp.stack([3 * x[0] - 2 * x[1] ** 2 - 7, 4 * x[0] - x[2] ** 2 - 11])


def test_rank_deficient_start():
    """HS61 from x₀ = 0: G = [[3, 0, 0], [4, 0, 0]] has rank 1. Faithful mode stops as the
    paper does; practical mode re-solves with a regularised KKT system and converges."""
    y0 = jnp.zeros(3)
    faithful = constrained_minimise(hs61_f, hs61_c, FAITHFUL, y0, throw=False)
    assert faithful.result == pdeopt.RESULTS.singular_jacobian
    sol = constrained_minimise(hs61_f, hs61_c, PRACTICAL, y0, throw=False)
    assert sol.result == pdeopt.RESULTS.successful
    assert int(sol.stats["num_regularizations"]) >= 1
    np.testing.assert_allclose(hs61_f(sol.value, None), -143.6461422, atol=1e-6)
    assert float(sol.stats["constraint_norm"]) < 1e-8


def test_infeasible_constraints_are_reported():
    """c(x) = x₀² + 1 has no root: the solve ends as locally infeasible at a stationary point
    of ‖c‖², with ‖c‖ = 1 reported, instead of a linear-solver failure."""
    f = lambda x, a: jnp.sum((x - 1.0) ** 2)
    c = lambda x, a: jnp.stack([x[0] ** 2 + 1.0])
    sol = constrained_minimise(f, c, PRACTICAL, jnp.array([0.7, 0.3]), throw=False)
    assert sol.result == pdeopt.RESULTS.locally_infeasible
    np.testing.assert_allclose(sol.stats["constraint_norm"], 1.0, atol=1e-6)
    with pytest.raises(Exception, match="infeasible"):
        constrained_minimise(f, c, PRACTICAL, jnp.array([0.7, 0.3]))


def test_armijo_tolerates_the_merits_roundoff_only_with_progress():
    """A trial that misses the Armijo bound by less than `roundoff` is accepted when the
    caller's second measure says it makes progress, and only then; without `roundoff` the test
    is the exact one (faithful mode's)."""
    search = BacktrackingArmijo()
    merit0, slope = jnp.array(5.0e5), jnp.array(-1e-10)

    def merit(alpha):  # rounding noise of 2e-9 swamps the decrease α·s asked for
        return merit0 + 2e-9, (1e-9 * alpha,)

    def search_with(roundoff, progress):
        return search.search(merit, merit0, slope, (1.0,), roundoff=roundoff, progress=progress)

    alpha, accepted, _, trials = search_with(1e-12 * merit0, lambda a, aux: aux[0] < 1.0)
    assert bool(accepted) and float(alpha) == 1.0 and int(trials) == 1
    for roundoff, progress in [(0.0, lambda a, aux: True), (1e-12 * merit0, lambda a, aux: False)]:
        _, accepted, _, trials = search_with(roundoff, progress)
        assert not bool(accepted) and int(trials) == search.max_steps
    with pytest.raises(ValueError, match="merit_roundoff"):
        PracticalSafeguards(merit_roundoff=1e-3)
