"""The benchmark reference solvers of `experiments/_baselines.py`.

Skipped when the optional `bench` extra (casadi, scipy) is not installed.
"""

import time

import jax.numpy as jnp
import numpy as np
import pytest

from problems.cutest import get_problem

pytest.importorskip("casadi")
pytest.importorskip("scipy")

from experiments import _baselines  # noqa: E402

# The reference: IPOPT's solutions, sign convention L = f + λᵀc.
EXPECTED = {
    "HS6": (np.array([1.0, 1.0]), np.array([0.0])),
    "BT9": (np.array([1.0, 1.0, 0.0, 0.0]), np.array([-1.0, -1.0])),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("baseline", [_baselines.ipopt, _baselines.trust_constr])
def test_reference_solution(name, baseline):
    problem = get_problem(name)
    start = time.perf_counter()
    result = baseline(problem)
    elapsed = time.perf_counter() - start
    x_star, lam_star = EXPECTED[name]
    assert result.success, result.extra
    np.testing.assert_allclose(result.x, x_star, atol=1e-6)
    np.testing.assert_allclose(result.lam, lam_star, atol=1e-6)
    assert result.kkt < 1e-8
    # The known optimum: f(x) = f* to within the 1e-6 accuracy of x (f is smooth there).
    f = float(problem.fn(jnp.asarray(result.x), problem.args))
    np.testing.assert_allclose(f, problem.reference_objective, rtol=0, atol=1e-5)
    assert result.iterations >= 1
    # `time` is the solve's wall clock in seconds: inside the call that produced it.
    assert 0 < result.time <= elapsed


def test_ipopt_iterations_match_spec():
    # The reference: IPOPT solves HS6 in 5 iterations and BT9 in 13.
    assert _baselines.ipopt(get_problem("HS6")).iterations == 5
    assert _baselines.ipopt(get_problem("BT9")).iterations == 13


def test_kkt_residual_sign_convention():
    # At BT9's solution λ* = (-1, -1) gives a zero residual, λ = (+1, +1) does not.
    problem = get_problem("BT9")
    x_star, lam_star = EXPECTED["BT9"]
    assert _baselines.kkt_residual(problem, x_star, lam_star) < 1e-12
    assert _baselines.kkt_residual(problem, x_star, -lam_star) > 1.0


def test_agreement_with_ipopt_on_hs6():
    problem = get_problem("HS6")
    ours = _baselines.exact_newton(problem)
    reference = _baselines.ipopt(problem)
    assert ours.success and reference.success
    dx, dlam = _baselines.agreement(ours, reference)
    assert dx < 1e-6 and dlam < 1e-6
    # The check can fail: a perturbed solution is flagged.
    perturbed = _baselines.BaselineResult(**{**vars(ours), "x": ours.x + 1e-3})
    assert _baselines.agreement(perturbed, reference)[0] > 1e-4


def test_missing_dependency_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[bench\]\""):
        _baselines.require("a_module_that_does_not_exist")
