"""2-D Darcy flow: manufactured solution (second order), lineax solvers, data layout."""

import h5py
import jax
import jax.numpy as jnp
import jax.random as jr
import lineax as lx
import numpy as np
import pytest

from pdeopt.data import DataFileError
from problems.darcy import Darcy, DarcyProblem, ReferenceSolver

PI = np.pi


def _manufactured(n):
    """u = sin(πx) sin(2πy), a = 1 + xy + sin(πx)/2 (smooth, not constant on the boundary)."""
    pde = Darcy(n=n)
    x, _ = pde.coordinates()
    X, Y = np.meshgrid(x, x, indexing="ij")
    a = 1 + X * Y + 0.5 * np.sin(PI * X)
    a_x, a_y = Y + 0.5 * PI * np.cos(PI * X), X
    u = np.sin(PI * X) * np.sin(2 * PI * Y)
    u_x = PI * np.cos(PI * X) * np.sin(2 * PI * Y)
    u_y = 2 * PI * np.sin(PI * X) * np.cos(2 * PI * Y)
    f = -(a * (-5 * PI**2 * u) + a_x * u_x + a_y * u_y)
    return pde, a, f, u


@pytest.mark.parametrize(
    "sizes", [(8, 16, 32), pytest.param((32, 64, 128), marks=pytest.mark.slow)], ids=str
)
def test_manufactured_second_order(sizes):
    errors = []
    for n in sizes:
        pde, a, f, u = _manufactured(n)
        solver = ReferenceSolver(linear_solver=lx.LU())  # CG agrees: test_cg_matches_dense_lu
        errors.append(float(jnp.max(jnp.abs(solver.solve(pde, a, f) - u))))
    slopes = np.log2(np.asarray(errors[:-1]) / np.asarray(errors[1:]))
    assert np.all((slopes > 1.9) & (slopes < 2.1)), (errors, slopes)


def test_cg_matches_dense_lu():
    pde, a, f, _ = _manufactured(12)
    cg = ReferenceSolver(precondition=False).solve(pde, a, f)
    lu = ReferenceSolver(linear_solver=lx.LU()).solve(pde, a, f)
    np.testing.assert_allclose(cg, lu, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("d"))
    solver = ReferenceSolver(linear_solver=lx.LU())  # compiles faster than CG at this size
    return DarcyProblem(n=12, n_train=3, n_test=2, data_dir=folder, solver=solver)


def test_quantities_linear():
    pde = Darcy(n=8)
    a, b = jr.normal(jr.key(0), (2, 8, 8))
    traces = lambda u: dict(enumerate(pde.derivatives.traces(pde, u)))  # the bc rows' traces
    for quantities in (pde.linear_quantities, traces):
        qa, qb, qab = quantities(a), quantities(b), quantities(2 * a - 3 * b)
        for k in qa:
            np.testing.assert_allclose(qab[k], 2 * qa[k] - 3 * qb[k], atol=1e-10)
    # Pointwise: the residual at gathered points equals the grid residual at those points.
    q = pde.linear_quantities(a) | pde.interior_coefficients(b + 3.0)
    points = np.array([0, 9, 27, 63])
    gathered = pde.interior_residual({k: v.ravel()[points] for k, v in q.items()}, None)
    np.testing.assert_allclose(gathered, pde.interior_residual(q, None).ravel()[points])
    np.testing.assert_allclose(pde.residuals(a, b + 3.0)["pde"], pde.interior_residual(q, None))


def test_inputs_and_blocks():
    """The derived input (x, y, a) on the cell centres; the four faces form one block "bc"."""
    pde = Darcy(n=8)
    a = jnp.arange(64.0).reshape(8, 8)
    inputs = pde.inputs(a)
    assert inputs.shape == (8, 8, 3)
    np.testing.assert_allclose(inputs[2, 5, :2], [2.5 / 8, 5.5 / 8])
    np.testing.assert_allclose(inputs[..., 2], a)
    assert pde.block_names() == ("pde", "bc")
    assert [b.locations(pde.grid).shape for b in pde.blocks] == [(8, 2)] * 4
    assert pde.residuals(a, a)["bc"].shape == (32,)


def test_load_writes_pdebench_darcy_layout(small):
    train, test = small.load()
    assert train.solutions.shape == (3, 12, 12) and test.conditions.shape == (2, 12, 12)
    assert test.seeds == ("0003", "0004")
    with h5py.File(small.cache_path) as f:
        assert f["tensor"].shape == (5, 1, 12, 12) and f["nu"].shape == (5, 12, 12)
        assert "x-coordinate" in f and "y-coordinate" in f
    a, u = train.conditions, train.solutions
    assert set(np.unique(a)) == {3.0, 12.0}
    np.testing.assert_array_equal(
        small.sample_inputs(small.pde, np.array([2]))[0], a[2]
    )  # seed-wise, any batch
    r = jax.vmap(small.pde.residuals)(jnp.asarray(u), jnp.asarray(a))
    assert float(jnp.max(jnp.abs(r["pde"]))) < 1e-8  # the solver solves the residual's scheme
    assert float(jnp.max(jnp.abs(r["bc"]))) < 0.1 * float(np.max(u))  # u ≈ 0 on the faces
    assert float(np.min(u)) > 0  # maximum principle for f > 0
    wrong = DarcyProblem(n=16, n_train=3, n_test=2, data_path=str(small.cache_path))
    with pytest.raises(DataFileError, match="problem.n"):
        wrong.load()
    with pytest.raises(ValueError, match="problem.n"):
        DarcyProblem(n=2)


def test_hard_constraint_on_darcy():
    """Pointwise coefficients reach the hard-constraint layer: PI-HC recovers the solution."""
    from pdeopt.constraints import HardConstraint

    pde = Darcy(n=8)
    a = jnp.where(jr.uniform(jr.key(1), (8, 8)) > 0.5, 12.0, 3.0)
    u = ReferenceSolver(linear_solver=lx.LU()).solve(pde, a)
    noise = jr.normal(jr.key(2), (8, 8, 2))
    basis = jnp.concatenate([u[..., None], noise], axis=-1)
    # The discrete solution has u = 0 built into its boundary differences, so its extrapolated
    # boundary values are O(h²), not 0: fit the PDE rows alone, which determine ω here.
    weights = {"pde": 1.0, "bc": 0.0}
    layer = HardConstraint(
        num_basis=3, num_points=30, ridge=1e-8, row_weights=weights, loss_weights=weights
    )
    u_hc, stats = layer(pde, basis, a, key=jr.key(3))
    assert bool(stats.converged[0])
    np.testing.assert_allclose(u_hc, u, atol=1e-6 * float(jnp.max(jnp.abs(u))))
