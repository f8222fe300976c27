"""The diffusion–sorption problem: retardation factor, reference solver, residuals, cache."""

import logging
import shutil

import diffrax as dfx
import h5py
import jax
import jax.flatten_util
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optimistix as optx
import pytest
from helpers import check_quantities_linear

from pdeopt.data import DataFileError
from pdeopt.discretizations import TridiagonalChord
from problems.diffusion_sorption import (
    DiffusionSorption,
    DiffusionSorptionProblem,
    ImplicitReferenceSolver,
    ReferenceSolver,
    sample_initial_conditions,
)
from problems.diffusion_sorption._solver import _banded_vector_field

solve = jax.jit(ReferenceSolver().solve_with_flux, static_argnums=0)
solve_implicit = jax.jit(
    ImplicitReferenceSolver(rtol=1.0e-9, atol=1.0e-11).solve_with_flux, static_argnums=0
)


@pytest.mark.parametrize("u", [-0.5, -1e-9, 0.0, 1e-12, 1e-6, 0.05, 1.0])
def test_retardation_nan_safe(u):
    pde = DiffusionSorption(nx=8, nt=8)
    value = pde.retardation(jnp.asarray(u))
    grad = jax.grad(pde.retardation)(jnp.asarray(u))
    hess = jax.grad(jax.grad(pde.retardation))(jnp.asarray(u))
    assert jnp.isfinite(value) and jnp.isfinite(grad) and jnp.isfinite(hess)
    assert value >= 1.0
    # s' = R - 1 on both sides of zero.
    ds = jax.grad(pde.sorbed)(jnp.asarray(u))
    np.testing.assert_allclose(ds, value - 1, rtol=1e-10)


def test_retardation_formula():
    pde = DiffusionSorption(nx=8, nt=8)
    u = 0.1
    expected = 1 + (1 - 0.29) / 0.29 * 2880 * 3.5e-4 * 0.874 * (u + 1e-6) ** (0.874 - 1)
    np.testing.assert_allclose(pde.retardation(jnp.asarray(u)), expected, rtol=1e-12)


@pytest.mark.parametrize("ic", ["constant", "smooth"])
def test_reference_solver_second_order(ic):
    """Cell averages at t = T converge at second order under grid refinement."""
    solutions = []
    for nx in (32, 64, 128):
        pde = DiffusionSorption(nx=nx, nt=6)
        if ic == "constant":
            u0 = jnp.full(nx, 0.1)
        else:
            u0 = 0.1 + 0.05 * jnp.sin(jnp.pi * jnp.asarray(pde.coordinates()[1]))
        solutions.append(np.asarray(solve(pde, u0)[0][-1]))
    errors = [
        np.max(np.abs(coarse - fine.reshape(-1, 2).mean(-1)))
        for coarse, fine in zip(solutions[:-1], solutions[1:])
    ]
    order = np.log2(errors[0] / errors[1])
    assert 1.8 < order < 2.3, (errors, order)


def test_reference_solver_mass_balance():
    """Σ (u + s(u)) dx changes exactly by the net boundary inflow (to ODE tolerance)."""
    pde = DiffusionSorption(nx=64, nt=11)
    u0 = sample_initial_conditions(pde, 1, "smooth", key=jr.key(3))[0]
    u, inflow = solve(pde, u0)
    mass = jnp.sum(u + pde.sorbed(u), axis=1) / pde.nx
    assert float(jnp.max(jnp.abs(inflow))) > 1e-3  # The balance is not trivially zero.
    np.testing.assert_allclose(mass - mass[0], inflow, atol=1e-8)


def test_implicit_solver_matches_tsit5_and_balances_mass():
    """Kvaerno5 with tridiagonal Newton systems agrees with Tsit5 and conserves mass."""
    pde = DiffusionSorption(nx=64, nt=11)
    u0 = sample_initial_conditions(pde, 1, "smooth", key=jr.key(3))[0]
    u, inflow = solve_implicit(pde, u0)
    u_ref, inflow_ref = solve(pde, u0)
    # Tsit5 at rtol 1e-8 is itself accurate to ~1e-7 here; the spatial error at 64 cells is
    # ~1e-3, so the convergence order of the scheme is unaffected.
    np.testing.assert_allclose(u, u_ref, rtol=0, atol=5e-7)
    np.testing.assert_allclose(inflow, inflow_ref, rtol=0, atol=5e-8)
    mass = jnp.sum(u + pde.sorbed(u), axis=1) / pde.nx
    np.testing.assert_allclose(mass - mass[0], inflow, atol=1e-8)


def test_implicit_solver_state_is_tridiagonal():
    """The (inflow, c, outflow) state has a tridiagonal Jacobian, as `TridiagonalChord` needs."""
    pde = DiffusionSorption(nx=12, nt=4)
    c = jnp.linspace(0.05, 0.2, pde.nx)
    y = (jnp.zeros(()), c, jnp.zeros(()))
    flat, unravel = jax.flatten_util.ravel_pytree(y)
    f = lambda v: jax.flatten_util.ravel_pytree(_banded_vector_field(0.0, unravel(v), pde))[0]
    jac = jax.jacfwd(f)(flat)
    band = jnp.triu(jnp.tril(jac, 1), -1)
    np.testing.assert_array_equal(jac, band)
    # Every cell couples to its neighbours, and each accumulator to its boundary cell.
    assert jnp.all(jnp.diagonal(jac, -1)[1:] != 0) and jnp.all(jnp.diagonal(jac, 1)[:-1] != 0)


def test_tridiagonal_chord_root_find():
    """`TridiagonalChord` takes the same chord steps as `VeryChord` with a dense Jacobian."""
    n = 50
    b = 0.5 * jnp.sin(jnp.linspace(0.0, 3.0, n))

    def fn(y, args):
        zero = jnp.zeros(1)
        lap = jnp.concatenate([y[1:], zero]) - 2 * y + jnp.concatenate([zero, y[:-1]])
        return 4 * y - lap + y**3 - b

    y0 = b / 4
    sol = optx.root_find(fn, TridiagonalChord(1e-10, 1e-10, optx.max_norm), y0)
    dense = optx.root_find(fn, dfx.VeryChord(1e-10, 1e-10, optx.max_norm), y0)
    assert sol.stats["num_steps"] == dense.stats["num_steps"]
    np.testing.assert_allclose(sol.value, dense.value, rtol=0, atol=1e-14)
    np.testing.assert_allclose(fn(sol.value, None), 0.0, atol=1e-10)


def test_implicit_solver_needs_tridiagonal_root_finder():
    with pytest.raises(ValueError, match="TridiagonalChord"):
        ImplicitReferenceSolver(solver=dfx.Kvaerno5())
    with pytest.raises(ValueError, match="ReferenceSolver"):
        ImplicitReferenceSolver(solver=dfx.Tsit5())


@pytest.mark.slow  # 35–55 s on a 2-core CPU; run with `pytest -m slow`
def test_reference_residual_small_and_decreasing():
    """The FD residual of the reference solution shrinks at second order under refinement."""
    norms = []
    for nx, nt in ((24, 11), (48, 21), (96, 41)):
        pde = DiffusionSorption(nx=nx, nt=nt)
        u0 = jnp.full(nx, 0.1)
        u = solve(pde, u0)[0]
        r = pde.residuals(u, u0)
        late = pde.coordinates()[0] >= 100.0  # The IC/BC corner at t = 0 is a discontinuity.
        norms.append(
            (float(jnp.sqrt(jnp.mean(r["pde"][late] ** 2))), float(jnp.max(jnp.abs(r["bc"]))))
        )
        np.testing.assert_allclose(r["ic"], 0.0)
    pde_norms, bc_norms = zip(*norms)
    assert pde_norms[-1] < 1e-3 and bc_norms[-1] < 5e-3
    for norm in (pde_norms, bc_norms):
        assert norm[0] > 2 * norm[1] > 4 * norm[2], norms


def test_residual_on_basis_is_linear():
    """The interior quantities and boundary traces are linear, as the hard constraints require."""
    pde = DiffusionSorption(nx=16, nt=9)
    check_quantities_linear(pde)


def test_inputs_and_blocks():
    """The derived input (t/T, x, u0); "ic", and "bc" (Dirichlet at x = 0, Robin at x = 1)."""
    pde = DiffusionSorption(nx=16, nt=9)
    u0 = jnp.linspace(0.0, 1.0, 16)
    inputs = pde.inputs(u0)
    t, x = pde.coordinates()
    assert inputs.shape == (9, 16, 3)
    np.testing.assert_allclose(inputs[:, 3, 0], t / pde.t_final)
    np.testing.assert_allclose(inputs[4, :, 1], x)
    np.testing.assert_allclose(inputs[..., 2], np.broadcast_to(u0, (9, 16)))
    assert pde.block_names() == ("pde", "ic", "bc")
    assert [(b.name, b.orders) for b in pde.blocks] == [("ic", (0,)), ("bc", (0,)), ("bc", (0, 1))]
    # u = 1 + s·x with s = −1/(1 − σD) satisfies u(0) = 1 and u(1) = σ D u_x(1); the traces
    # extrapolated to the faces of the cell-centred axis are exact for it.
    slope = -1.0 / (1.0 - pde.outflow_sign * pde.diffusivity)
    u = jnp.broadcast_to(1.0 + slope * jnp.asarray(x), pde.grid_shape)
    r = pde.residuals(u, u[0])
    assert r["bc"].shape == (2 * 8,)
    np.testing.assert_allclose(r["bc"], 0.0, atol=1e-12)
    np.testing.assert_allclose(r["ic"], 0.0, atol=1e-14)
    assert float(jnp.max(jnp.abs(pde.residuals(u + 0.1, u[0])["bc"]))) > 0.05


def test_bad_pde_parameters():
    with pytest.raises(ValueError, match="problem.nx"):
        DiffusionSorption(nx=-4, nt=10)
    with pytest.raises(ValueError, match="problem.porosity"):
        DiffusionSorption(nx=8, nt=8, porosity=1.5)
    with pytest.raises(ValueError, match="problem.ic"):
        DiffusionSorptionProblem(ic="gaussian")
    with pytest.raises(ValueError, match="problem.n_test"):
        DiffusionSorptionProblem(n_test=0)


def _small_problem(tmp_path, **kwargs):
    options = dict(nx=16, nt=6, n_train=3, n_test=2, data_dir=str(tmp_path))
    options.update(kwargs)
    return DiffusionSorptionProblem(**options)


@pytest.fixture(scope="module")
def cached_file(tmp_path_factory):
    """One generated cache file, copied into each test's folder (generation compiles once)."""
    problem = _small_problem(tmp_path_factory.mktemp("cache"))
    problem.load()
    return problem.cache_path


@pytest.fixture
def cached_problem(tmp_path, cached_file):
    problem = _small_problem(tmp_path)
    shutil.copy(cached_file, problem.cache_path)
    return problem


def test_cache_generate_then_reuse(tmp_path):
    problem = _small_problem(tmp_path)
    train, test = problem.load()
    assert train.solutions.shape == (3, 6, 16) and test.solutions.shape == (2, 6, 16)
    assert train.seeds == ("0000", "0001", "0002") and test.seeds == ("0003", "0004")
    np.testing.assert_allclose(train.conditions, train.solutions[:, 0])
    with h5py.File(problem.cache_path) as f:  # PDEBench per-seed layout.
        assert f["0000/data"].shape == (6, 16, 1)
        np.testing.assert_allclose(f["0000/grid/x"][()], problem.pde.coordinates()[1])
        np.testing.assert_allclose(f["0000/grid/t"][()], problem.pde.coordinates()[0])
    mtime = problem.cache_path.stat().st_mtime_ns
    train2, _ = problem.load()
    assert problem.cache_path.stat().st_mtime_ns == mtime  # Reused, not regenerated.
    np.testing.assert_array_equal(train.solutions, train2.solutions)


def _regenerated(problem, caplog, reason):
    """`problem.load()` regenerates its bad cache, warning with the file's name and `reason`."""
    with caplog.at_level(logging.WARNING, logger="pdeopt.data"):
        train, test = problem.load()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(problem.cache_path) in warning and reason in warning, warning
    return train, test


def test_cache_corrupt_is_regenerated(cached_problem, caplog):
    problem = cached_problem
    problem.cache_path.write_bytes(problem.cache_path.read_bytes()[:200])
    train, _ = _regenerated(problem, caplog, "corrupt")
    assert train.seeds == ("0000", "0001", "0002") and np.all(np.isfinite(train.solutions))


def test_cache_tampered_sample_fails_checksum(cached_problem, caplog):
    problem = cached_problem
    with h5py.File(problem.cache_path, "r+") as f:
        f["0001/data"][2, 3, 0] += 0.5
    _regenerated(problem, caplog, "checksum")


def test_cache_mismatch_is_regenerated(tmp_path, cached_problem, caplog):
    problem = cached_problem
    other = _small_problem(tmp_path, seed=7)
    other.cache_path.parent.mkdir(exist_ok=True)
    problem.cache_path.rename(other.cache_path)  # A file under the wrong name.
    _regenerated(other, caplog, "attribute 'seed'")


def test_user_file_with_wrong_grid(tmp_path, cached_problem):
    problem = cached_problem
    user = _small_problem(tmp_path, nx=32, data_path=str(problem.cache_path))
    with pytest.raises(DataFileError, match="problem.nx"):
        user.load()
    missing = _small_problem(tmp_path, data_path=str(tmp_path / "nope.hdf5"))
    with pytest.raises(DataFileError, match="does not exist"):
        missing.load()


def test_train_until_trains_on_the_early_times_and_tests_on_all(tmp_path):
    """Temporal extrapolation: the training grid stops at `train_until`, the test grid does
    not; a time has the same model coordinate and residual scaling on both; the test view
    `extrapolation` scores the later frames only; both splits hold the same physics."""
    problem = _small_problem(tmp_path, nt=6, train_until=300.0)  # times 0, 100, ..., 500
    pde, test_pde = problem.pde, problem.test_pde
    assert pde.grid_shape == (4, 16) and test_pde.grid_shape == (6, 16)
    condition = jnp.full(16, 0.1)
    np.testing.assert_allclose(test_pde.inputs(condition)[:4], pde.inputs(condition))
    assert pde.grid.axes[0].input_width == test_pde.grid.axes[0].input_width == 500.0
    (view,) = problem.test_views().values()
    assert view.pde == test_pde and view.stride == (1, 1)
    assert np.arange(6)[view.window[0]].tolist() == [4, 5]
    train, test = problem.load()
    assert train.solutions.shape == (3, 4, 16) and test.solutions.shape == (2, 6, 16)
    whole = _small_problem(tmp_path / "whole", nt=6)
    reference = whole.solve(test_pde, whole.sample_inputs(test_pde, np.arange(3)))
    np.testing.assert_allclose(train.solutions, reference[:, :4], rtol=1e-6, atol=1e-8)
    for bad in (250.0, 500.0, 100.0):  # not a saved time; the last one; too few frames
        with pytest.raises(ValueError, match="train_until"):
            _small_problem(tmp_path, nt=6, train_until=bad)
