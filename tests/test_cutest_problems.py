"""The CUTEst equality-constrained set and the application problems (spec §11)."""

import math
import pathlib
import tomllib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import kkt_residual

import problems.cutest
from problems.cutest import (
    LIBSVM_SHAPES,
    PROBLEMS,
    ConstrainedProblem,
    breast_cancer_logistic_regression,
    dataset_key,
    get_problem,
    logistic_regression,
    poisson_control,
    semilinear_control,
    semilinear_target,
    synthetic_logistic_regression,
)

# (n, m) of spec §11.1, in its order.
TABLE = {
    "HS6": (2, 1), "BT5": (3, 2), "BT9": (4, 2), "HS28": (3, 1), "BT10": (2, 2),
    "HIMMELBA": (2, 2), "BT12": (5, 3), "HS40": (4, 3), "BT3": (5, 3), "BT6": (5, 2),
    "BT11": (5, 3), "HS7": (2, 1), "GENHS28": (10, 8), "HS51": (5, 3), "SINVALNE": (2, 2),
    "BOOTH": (2, 2), "HS52": (5, 3), "HS47": (5, 3), "WAYSEA1NE": (2, 2), "HS48": (5, 2),
    "HS50": (5, 3), "RSNBRNE": (2, 2), "CUBENE": (2, 2), "HS77": (5, 2), "MWRIGHT": (5, 3),
    "ZANGWIL3": (3, 3), "TRIGON1NE": (10, 10), "BA-L1SP": (57, 12), "HS78": (5, 3),
    "HS56": (7, 4), "HELIXNE": (3, 3), "HS42": (4, 2), "HS79": (5, 3), "ORTHREGB": (27, 6),
    "HS100LNP": (7, 2), "GOTTFR": (2, 2), "HIMMELBE": (3, 3), "MOREBVNE": (10, 10),
    "WAYSEA2NE": (2, 2), "DENSCHNCNE": (2, 2), "DENSCHNFNE": (2, 2), "HIMMELBC": (2, 2),
    "PRICE4NE": (2, 2), "INTEQNE": (12, 12), "BA-L1": (57, 12), "MANCINONE": (100, 100),
    "BT2": (3, 1),
}  # fmt: skip

# CUTEst start points (SIF files, read through S2MPJ; HS book for the HS problems).
START_POINTS = {
    "HS6": [-1.2, 1.0], "BT5": [2.0] * 3, "BT9": [2.0] * 4, "HS28": [-4.0, 1.0, 1.0],
    "BT10": [2.0] * 2, "HIMMELBA": [8.0, 9.0], "BT12": [15.811, 1.5811, 0.0, 15.083, 3.7164],
    "HS40": [0.8] * 4, "BT3": [20.0] * 5, "BT6": [2.0] * 5, "BT11": [2.0] * 5,
    "HS7": [2.0, 2.0], "GENHS28": [-4.0] + [1.0] * 9, "HS51": [2.5, 0.5, 2.0, -1.0, 0.5],
    "SINVALNE": [4.712389, -1.0], "BOOTH": [0.0, 0.0], "HS52": [2.0] * 5,
    "HS47": [2.0, math.sqrt(2.0), -1.0, 2.0 - math.sqrt(2.0), 0.5], "WAYSEA1NE": [1.0, 5.0],
    "HS48": [3.0, 5.0, -3.0, 2.0, -2.0], "HS50": [35.0, -31.0, 11.0, 5.0, -5.0],
    "RSNBRNE": [-1.2, 1.0], "CUBENE": [-1.2, 1.0], "HS77": [2.0] * 5,
    "MWRIGHT": [-1.0, 2.0, 1.0, -2.0, -2.0], "ZANGWIL3": [100.0, -1.0, 2.5],
    "TRIGON1NE": [0.1] * 10, "HS78": [-2.0, 1.5, 2.0, -1.0, -1.0],
    "HS56": [1.0, 1.0, 1.0, 0.50973968, 0.50973968, 0.50973968, 0.98511078],
    "HELIXNE": [-1.0, 0.0, 0.0], "HS42": [1.0] * 4, "HS79": [2.0] * 5,
    "HS100LNP": [1.0, 2.0, 0.0, 4.0, 0.0, 1.0, 1.0], "GOTTFR": [0.5, 0.5],
    "HIMMELBE": [-1.2, 2.0, 0.0], "WAYSEA2NE": [1.0, 5.0], "DENSCHNCNE": [2.0, 3.0],
    "DENSCHNFNE": [2.0, 0.0], "HIMMELBC": [1.0, 1.0], "PRICE4NE": [1.0, 5.0],
    "BT2": [10.0] * 3, "BA-L1SP": [0.0] * 57,
    # t_i (t_i - 1), t_i = i / 11 (MGH problems 28 and 29, N = 10); INTEQNE adds x_0 = x_11 = 0.
    "MOREBVNE": [i / 11 * (i / 11 - 1.0) for i in range(1, 11)],
    "INTEQNE": [0.0] + [i / 11 * (i / 11 - 1.0) for i in range(1, 11)] + [0.0],
}  # fmt: skip

# f(x0) and c(x0) computed by hand from the published closed forms. "HS" = the f(x0) value
# printed in Hock & Schittkowski (1981) for that problem; the others from the SIF files'
# formulas as translated by S2MPJ (GrattonToint/S2MPJ, python_problems/<NAME>.py).
R2 = math.sqrt(2.0)
SPOT_VALUES = {
    "HS6": (4.84, [-4.4]),  # HS: f(x0) = 4.84
    "HS7": (math.log(5.0) - 2.0, [25.0]),  # HS: f(x0) = -0.3905620875
    "HS28": (13.0, [0.0]),  # HS: f(x0) = 13
    "HS40": (-0.4096, [0.152, -0.288, -0.16]),  # HS: f(x0) = -0.4096
    "HS42": (14.0, [-1.0, 0.0]),  # HS: f(x0) = 14
    "HS48": (84.0, [0.0, 0.0]),  # HS: f(x0) = 84
    "HS50": (7516.0, [0.0, 0.0, 0.0]),  # HS: f(x0) = 7516
    "HS51": (8.5, [0.0, 0.0, 0.0]),  # HS: f(x0) = 8.5
    "HS52": (42.0, [8.0, 0.0, 0.0]),  # HS: f(x0) = 42
    "HS77": (4.0, [8.0 - 2.0 * R2, 58.0 - R2]),  # HS: f(x0) = 4
    "HS78": (-6.0, [2.25, -2.0, -3.625]),  # HS: f(x0) = -6
    "HS79": (1.0, [12.0 - 3.0 * R2, 2.0 - 2.0 * R2, 2.0]),  # HS: f(x0) = 1
    "HS100LNP": (714.0, [127.0 - 2.0 - 48.0 - 64.0, -4.0 - 4.0 + 6.0 + 6.0]),  # HS100: 714
    "BT5": (976.0, [-13.0, 2.0]),  # S2MPJ BT5
    "BT9": (-2.0, [-10.0, -2.0]),  # S2MPJ BT9
    "BT2": (81.0, [10.0 * 101.0 + 1.0e4 - 8.2426407]),  # S2MPJ BT2
    "BT3": (2166.0, [80.0, 0.0, 0.0]),  # S2MPJ BT3
    "RSNBRNE": (0.0, [-4.4, -2.2]),  # S2MPJ RSNBRNE (scale 0.1 on G1)
    "CUBENE": (0.0, [-2.2, 10.0 * (1.0 + 1.728)]),  # S2MPJ CUBENE (scale 0.1 on SQ2)
    "HIMMELBA": (0.0, [12.0, 3.0]),  # S2MPJ HIMMELBA (scale 0.25 on G1)
    "HELIXNE": (0.0, [-100.0 * 0.15915494 * math.pi, 0.0, 0.0]),  # S2MPJ: (x3 - 10 theta) / 0.1
    "WAYSEA1NE": (0.0, [609.0, 3.0]),  # S2MPJ WAYSEA1NE
    "DENSCHNFNE": (0.0, [2.0 * 4.0 + 4.0 - 8.0, 20.0 + 9.0 - 9.0]),  # S2MPJ DENSCHNFNE
}

# Solutions stored to the HS book's 7 printed digits: checked after Newton refinement.
SEVEN_DIGIT_SOLUTIONS = {"BT5", "HS77", "HS78", "HS79", "HS100LNP"}

NAMES = list(PROBLEMS)
WITH_SOLUTION = [name for name in NAMES if PROBLEMS[name]().solution is not None]


@eqx.filter_jit
def _values(problem: ConstrainedProblem, y):
    return problem.fn(y, problem.args), problem.constraint_fn(y, problem.args)


@eqx.filter_jit
def _kkt(problem: ConstrainedProblem, x):
    """f, c, grad f, G and the least-squares multipliers at x (one compile per problem)."""
    f, c = _values(problem, x)
    g = jax.grad(problem.fn)(x, problem.args)
    jac = jax.jacfwd(problem.constraint_fn)(x, problem.args)
    lam = jnp.linalg.lstsq(jac.T, -g)[0]
    return f, c, g, jac, lam


@eqx.filter_jit
def _kkt_newton(problem: ConstrainedProblem, x, lam):
    """Six Newton steps on the KKT system (grad L, c) = 0 from (x, lam)."""

    def residual(z):
        y, multipliers = z[: problem.n], z[problem.n :]
        return kkt_residual(problem.fn, problem.constraint_fn, y, multipliers, problem.args)

    def newton_step(_, z):
        return z - jnp.linalg.solve(jax.jacfwd(residual)(z), residual(z))

    z = jax.lax.fori_loop(0, 6, newton_step, jnp.concatenate([x, lam]))
    return z[: problem.n], jnp.linalg.norm(residual(z))


@eqx.filter_jit
def _newton_on_constraints(problem: ConstrainedProblem, x):
    """Six Newton steps on c(x) = 0 (square systems)."""

    def newton_step(_, x):
        c = problem.constraint_fn(x, problem.args)
        return x - jnp.linalg.solve(jax.jacfwd(problem.constraint_fn)(x, problem.args), c)

    x = jax.lax.fori_loop(0, 6, newton_step, x)
    return x, jnp.linalg.norm(problem.constraint_fn(x, problem.args))


def test_registry_matches_the_table():
    # All 47 problems of the paper's table, in its order.
    assert list(PROBLEMS) == list(TABLE)
    assert len(PROBLEMS) == 47


def test_get_problem_errors():
    assert get_problem("bt9").name == "BT9"
    assert get_problem("ba-l1").name == "BA-L1"
    with pytest.raises(KeyError, match="HS6.*BT2"):
        get_problem("HS999")


@pytest.mark.parametrize("name", NAMES)
def test_sizes_start_point_and_values(name):
    problem = get_problem(name)
    assert (problem.n, problem.m) == TABLE[name]
    assert problem.y0.dtype == np.float64 and problem.lambda0.dtype == np.float64
    np.testing.assert_array_equal(problem.lambda0, np.zeros(problem.m))
    if name in START_POINTS:
        np.testing.assert_allclose(problem.y0, START_POINTS[name], rtol=1e-15, atol=1e-15)
    f0, c0, g0, jac0, _ = _kkt(problem, jnp.asarray(problem.y0))
    assert f0.shape == () and c0.shape == (problem.m,) and jac0.shape == (problem.m, problem.n)
    for value in (f0, c0, g0, jac0):
        assert bool(jnp.all(jnp.isfinite(value)))
    if name in SPOT_VALUES:
        f_ref, c_ref = SPOT_VALUES[name]
        np.testing.assert_allclose(f0, f_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c0, c_ref, rtol=1e-8, atol=1e-8)
    assert not math.isnan(problem.paper_iterations.gv10)


def test_hs47_start_value_against_hs_book():
    # HS book: f(x0) = 20.7381 (4 printed decimals) at x0 = (2, sqrt 2, -1, 2 - sqrt 2, 1/2).
    problem = get_problem("HS47")
    np.testing.assert_allclose(_kkt(problem, jnp.asarray(problem.y0))[0], 20.7381, atol=2e-4)


def test_mancinone_start_point():
    # SIF MANCINONE (N = 100): x0_i = A (H_i + (i - N/2)^3), H_i = sum_{j != i} sqrt(i/j)
    # (sin^5 + cos^5)(log sqrt(i/j)), A = -14 N / ((14 N)^2 - 36 (N - 1)^2); spot check i = 1.
    n = 100
    r = np.sqrt(1.0 / np.arange(2, n + 1))
    h1 = np.sum(r * (np.sin(np.log(r)) ** 5 + np.cos(np.log(r)) ** 5))
    a = -14.0 * n / ((14.0 * n) ** 2 - 36.0 * (n - 1) ** 2)
    np.testing.assert_allclose(get_problem("MANCINONE").y0[0], a * (h1 + (1 - 50) ** 3), rtol=1e-13)


@pytest.mark.parametrize("name", WITH_SOLUTION)
def test_known_solutions_are_kkt_points(name):
    problem = get_problem(name)
    x = jnp.asarray(problem.solution)
    f_star, c, g, jac, lam = _kkt(problem, x)
    scale = 1.0 + float(jnp.linalg.norm(g))
    if name in SEVEN_DIGIT_SOLUTIONS:
        # The printed x* is within its 7 digits of a KKT point of our formulas.
        assert float(jnp.linalg.norm(c)) < 1e-4 * scale
        x_ref, res = _kkt_newton(problem, x, lam)
        assert float(res) < 1e-9 * scale
        np.testing.assert_allclose(x_ref, x, rtol=2e-6, atol=2e-6)
        # f* is printed to 6-7 significant digits.
        f_ref, *_ = _kkt(problem, x_ref)
        np.testing.assert_allclose(f_ref, problem.reference_objective, rtol=1e-6)
    else:
        assert float(jnp.linalg.norm(c)) < 1e-10 * scale
        assert float(jnp.linalg.norm(g + jac.T @ lam)) < 1e-8 * scale
        np.testing.assert_allclose(f_star, problem.reference_objective, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["MOREBVNE", "INTEQNE", "TRIGON1NE", "MANCINONE"])
def test_ne_problems_without_closed_form_solve_by_newton(name):
    # Validates these formulas the other way: plain Newton on c from the CUTEst start point
    # (what KKT Newton does when f = 0 and lambda = 0) converges within 6 steps, as the paper's 2-4
    # outer iterations suggest.
    problem = get_problem(name)
    x, res = _newton_on_constraints(problem, jnp.asarray(problem.y0))
    assert float(res) < 1e-10
    assert float(jnp.linalg.norm(x - problem.y0)) > 1e-3


# ----------------------------------------------------------------------- bundle adjustment

# BA-L1.SIF's CONSTANTS: the observed (u, v) of the point in images 1, 2, 4, 27, 30, 37.
BA_OBSERVATIONS = [
    [-332.65, 262.09], [-199.76, 166.7], [-253.06, 202.27], [58.13, 271.89], [238.22, 237.37],
    [317.55, 221.15],
]  # fmt: skip


def _hat(v):
    """The matrix of v x (.)."""
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _ba_l1_reference(x, typo=True):
    """BA-L1's residuals with the rotation as a matrix, R = cos t I + sin t [e]x + (1 - cos t)
    e e^T (t = |w|, e = w / t), or I + [w]x for t^2 <= eps as in the SIF; `typo`: row 2 of
    e e^T is e1 e^T, as in the SIF's Fortran."""
    x = np.asarray(x)
    point, residuals = x[:3], []
    for cam, obs in zip(x[3:].reshape(6, 9), BA_OBSERVATIONS, strict=True):
        w = cam[:3]
        theta = np.linalg.norm(w)
        if theta**2 <= np.finfo(np.float64).eps:
            rot = np.eye(3) + _hat(w)
        else:
            e = w / theta
            outer = np.outer(e, e)
            if typo:
                outer[1] = e[0] * e
            rot = np.cos(theta) * np.eye(3) + np.sin(theta) * _hat(e) + (1 - np.cos(theta)) * outer
        c = rot @ point + cam[3:6]
        d = -c[:2] / c[2]
        s = d @ d
        residuals.extend(cam[8] * (1.0 + cam[6] * s + cam[7] * s**2) * d - obs)
    return np.array(residuals)


def _ba_l1sp_reference(x):
    """BA-L1SP's residuals as the SIF writes them: c_i = a_i . x + sum_{j <= k} W_ijk P_jk(x)
    - b_i, P_jj = x_j^2 / 2, P_jk = x_j x_k, with W_ijk = a_ij for j in S_i, any k >= j."""
    path = pathlib.Path(problems.cutest.__file__).with_name("bundle_adjustment.toml")
    data = tomllib.loads(path.read_text())["BA-L1SP"]
    x = np.asarray(x)
    elements = np.triu(np.outer(x, x)) - 0.5 * np.diag(x**2)
    residuals = []
    for i, (a_i, b_i) in enumerate(zip(data["a"], data["b"], strict=True)):
        q = i // 2  # S_i: the point (x1..x3) and camera q (x_{9q+4} .. x_{9q+12}), 1-based
        support = [0, 1, 2] + list(range(9 * q + 3, 9 * q + 12))
        weights = np.zeros((57, 57))
        for j, a_ij in zip(support, a_i, strict=True):
            weights[j, j:] = a_ij
        residuals.append(np.dot(a_i, x[support]) + np.sum(weights * elements) - b_i)
    return np.array(residuals)


@pytest.mark.parametrize("name, norm", [("BA-L1", 356.91422519), ("BA-L1SP", 356.91422515)])
def test_bundle_adjustment_start_residual(name, norm):
    # ||c(x0)|| of CUTEst's BA-L1 and of BA-L1SP (x0 = 0: ||b||), to the reported 11 digits.
    problem = get_problem(name)
    _, c0 = _values(problem, jnp.asarray(problem.y0))
    np.testing.assert_allclose(jnp.linalg.norm(c0), norm, rtol=0, atol=5e-9)


def test_ba_l1_against_rotation_matrix(getkey):
    problem = get_problem("BA-L1")
    x0 = problem.y0
    # With the typo (CUTEst) and without: ||c(x0)|| = 356.914 against 19.093.
    np.testing.assert_allclose(_values(problem, jnp.asarray(x0))[1], _ba_l1_reference(x0))
    np.testing.assert_allclose(
        np.linalg.norm(_ba_l1_reference(x0, typo=False)), 19.09262544, atol=5e-9
    )
    for _ in range(3):
        x = x0 + 0.01 * np.asarray(jax.random.normal(getkey(), (57,)))
        np.testing.assert_allclose(
            _values(problem, jnp.asarray(x))[1], _ba_l1_reference(x), rtol=1e-10
        )
    # Rotation vectors below sqrt(eps) take the first-order rotation; derivatives stay finite.
    x = x0.copy()
    x[3:6], x[12:15] = 0.0, 1e-9
    np.testing.assert_allclose(_values(problem, jnp.asarray(x))[1], _ba_l1_reference(x), rtol=1e-10)
    assert bool(jnp.all(jnp.isfinite(_kkt(problem, jnp.asarray(x))[3])))


def test_ba_l1sp_against_sif_elements(getkey):
    problem = get_problem("BA-L1SP")
    for scale in (0.0, 0.1, 1.0):
        x = scale * np.asarray(jax.random.normal(getkey(), (57,)))
        np.testing.assert_allclose(
            _values(problem, jnp.asarray(x))[1], _ba_l1sp_reference(x), rtol=1e-12, atol=1e-9
        )
    # BA-L1SP's data are BA-L1's Jacobian and residuals at x0 (SIF data to 8-11 digits).
    ba_l1 = get_problem("BA-L1")
    x0 = jnp.asarray(ba_l1.y0)
    jac_sp, jac = _kkt(problem, jnp.zeros(57))[3], _kkt(ba_l1, x0)[3]
    assert float(jnp.max(jnp.abs(jac - jac_sp)) / jnp.max(jnp.abs(jac))) < 1e-7
    np.testing.assert_allclose(_values(ba_l1, x0)[1], _values(problem, jnp.zeros(57))[1], atol=1e-5)


@eqx.filter_jit
def _gauss_newton(problem: ConstrainedProblem, x):
    """Ten minimum-norm Gauss-Newton steps x - J^+ c from x; ||c|| at x and after each."""

    def step(x, _):
        c = problem.constraint_fn(x, problem.args)
        jac = jax.jacfwd(problem.constraint_fn)(x, problem.args)
        return x - jnp.linalg.lstsq(jac, c)[0], jnp.linalg.norm(c)

    x, norms = jax.lax.scan(step, x, length=10)
    return x, jnp.append(norms, jnp.linalg.norm(problem.constraint_fn(x, problem.args)))


@pytest.mark.parametrize("name", ["BA-L1", "BA-L1SP"])
def test_bundle_adjustment_gauss_newton(name):
    # Underdetermined (n = 57, m = 12) with J(x0) of full row rank, so roots exist near x0:
    # plain Gauss-Newton reaches ||c|| < 1e-10 within 10 steps (in 5 for both, from 357).
    problem = get_problem(name)
    x0 = jnp.asarray(problem.y0)
    assert np.linalg.matrix_rank(np.asarray(_kkt(problem, x0)[3])) == 12
    x, norms = _gauss_newton(problem, x0)
    assert float(norms[-1]) < 1e-10
    assert float(norms[4]) > 1e-10 and float(norms[5]) < 1e-10
    assert 0.1 < float(jnp.linalg.norm(x - x0)) < 1.0


def test_reference_multipliers_hs6_bt9():
    # Spec §13 (IPOPT): HS6 x* = (1, 1), lambda* = 0; BT9 x* = (1, 1, 0, 0), lambda* = (-1, -1).
    for name, lam_ref in [("HS6", [0.0]), ("BT9", [-1.0, -1.0])]:
        problem = get_problem(name)
        *_, lam = _kkt(problem, jnp.asarray(problem.solution))
        np.testing.assert_allclose(lam, lam_ref, atol=1e-12)


def test_wrong_formula_is_detected():
    # The KKT check can fail: perturbing x* of HS40 breaks stationarity.
    problem = get_problem("HS40")
    x = jnp.asarray(problem.solution) + 1e-3
    _, _, g, jac, lam = _kkt(problem, x)
    assert float(jnp.linalg.norm(g + jac.T @ lam)) > 1e-6


def _dense_laplacian(n, h):
    t = np.diag(-2.0 * np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    eye = np.eye(n)
    return (np.kron(eye, t) + np.kron(t, eye)) / h**2


def test_poisson_control():
    problem = poisson_control(3)
    assert (problem.n, problem.m) == (18, 9)
    np.testing.assert_array_equal(problem.y0, np.ones(18))
    np.testing.assert_array_equal(problem.lambda0, np.ones(9))
    x0 = jnp.asarray(problem.y0)
    _, c0, g0, jac, _ = _kkt(problem, x0)
    lap = _dense_laplacian(3, 2.0 / 4.0)
    np.testing.assert_allclose(jac, np.hstack([lap, np.eye(9)]), atol=1e-12)
    # Column-major vec: w_true[i, j] = sin(4 + s(i - 2)) + cos(3 + s(j - 2)), s = 0.1/sqrt 15;
    # entry 1 is (i, j) = (2, 1).
    s = 0.1 / math.sqrt(15.0)
    np.testing.assert_allclose(problem.args[1], math.sin(4.0) + math.cos(3.0 - s), rtol=1e-14)
    # f is quadratic with Hessian diag(I, 0.1 I): check grad f(x0) = (x0_w - w_true, 0.1 x0_z).
    np.testing.assert_allclose(g0, np.concatenate([1.0 - problem.args, 0.1 * np.ones(9)]))
    hess = np.diag([1.0] * 9 + [0.1] * 9)
    # Convex QP: one exact KKT solve gives c = 0 and stationarity.
    kkt = np.block([[hess, jac.T], [jac, np.zeros((9, 9))]])
    step = np.linalg.solve(kkt, -np.concatenate([g0, c0]))
    _, c1, g1, jac1, lam1 = _kkt(problem, x0 + step[:18])
    np.testing.assert_allclose(c1, 0.0, atol=1e-10)
    np.testing.assert_allclose(g1 + jac1.T @ lam1, 0.0, atol=1e-10)
    # Larger grids build and evaluate matrix-free.
    big = poisson_control(16)
    assert (big.n, big.m) == (512, 256)
    assert bool(jnp.all(jnp.isfinite(_values(big, jnp.asarray(big.y0))[1])))


def test_semilinear_control():
    n = 4
    h = 2.0 / (n + 1)
    problem = semilinear_control(n)
    assert (problem.n, problem.m) == (32, 16)
    lap = _dense_laplacian(n, h)
    y_d = semilinear_target(n).T.ravel()  # column-major vec
    u_d = -lap @ y_d + y_d**3
    x = jnp.asarray(np.concatenate([y_d, u_d]))
    f, c, _, jac, _ = _kkt(problem, x)
    np.testing.assert_allclose(c, 0.0, atol=1e-12)
    np.testing.assert_allclose(jac, np.hstack([-lap + np.diag(3.0 * y_d**2), -np.eye(16)]))
    np.testing.assert_allclose(f, 0.5e-2 * np.sum(u_d**2))
    with pytest.raises(ValueError, match="alpha"):
        semilinear_control(3, alpha=-1.0)


def test_preconditioner_choice():
    problem = poisson_control(3)
    assert problem.preconditioner(False) is None
    assert problem.preconditioner(True) is problem.kkt_preconditioner is not None
    assert semilinear_control(3, alpha=0.0).preconditioner(False) is None
    with pytest.raises(ValueError, match="has no KKT preconditioner"):
        semilinear_control(3, alpha=0.0).preconditioner(True)


def test_logistic_regression():
    # The paper's seven LIBSVM shapes (spec §11.2).
    assert LIBSVM_SHAPES == {
        "ionosphere_scale": (351, 34), "mushrooms": (8124, 112), "phishing": (11055, 68),
        "sonar_scale": (208, 60), "splice_scale": (1000, 60), "a9a": (32561, 123),
        "w8a": (49749, 300),
    }  # fmt: skip
    p1 = synthetic_logistic_regression("sonar_scale")
    p2 = synthetic_logistic_regression("sonar_scale")
    features, labels, a, b = p1.args
    assert features.shape == (208, 60) and labels.shape == (208,)
    assert set(np.unique(labels)) == {-1.0, 1.0}
    assert a.shape == (10, 60) and b.shape == (10,)
    assert (p1.n, p1.m) == (60, 11)
    np.testing.assert_array_equal(p1.y0, np.ones(60))
    np.testing.assert_array_equal(p1.lambda0, np.ones(11))
    for x1, x2 in zip(p1.args, p2.args, strict=True):
        np.testing.assert_array_equal(x1, x2)
    # Another data set's key gives other constraints.
    other = logistic_regression(features, labels, key=dataset_key("ionosphere_scale"))
    assert not np.allclose(other.args[3], b)
    with pytest.raises(ValueError, match="labels"):
        logistic_regression(features, labels + 1.0, key=dataset_key("x"))
    with pytest.raises(ValueError, match="d > 10"):
        logistic_regression(features[:, :10], labels, key=dataset_key("x"))
    f0, c0 = _values(p1, jnp.asarray(p1.y0))
    margins = labels * (features @ jnp.ones(60))
    np.testing.assert_allclose(f0, np.mean(np.log1p(np.exp(-margins))), rtol=1e-12)
    np.testing.assert_allclose(c0[:10], a @ jnp.ones(60) - b, rtol=1e-12)
    np.testing.assert_allclose(c0[10], 59.0)
    with pytest.raises(KeyError, match="sonar_scale"):
        synthetic_logistic_regression("iris")


def test_breast_cancer_needs_sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install scikit-learn"):
            breast_cancer_logistic_regression()
    else:
        problem = breast_cancer_logistic_regression()
        assert (problem.n, problem.m) == (30, 11)
        # The first draw from dataset_key("breast_cancer") is infeasible (minimum-norm solution
        # of Ax = b with norm 1.012); the problem keeps the first feasible redraw.
        _, _, a, b = problem.args
        assert np.linalg.norm(np.linalg.lstsq(a, b, rcond=None)[0]) < 1.0
