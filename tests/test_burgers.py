"""1-D Burgers: reference solver against Cole–Hopf, residuals, initial conditions, cache."""

import logging

import diffrax as dfx
import h5py
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from problems.burgers import (
    Burgers,
    BurgersProblem,
    ReferenceSolver,
    cole_hopf,
    sample_initial_conditions,
)

solve = jax.jit(lambda solver, pde, u0: solver.solve_with_result(pde, u0), static_argnums=(0, 1))


def sine_run(nx, solver=dfx.Tsit5()):
    """u0 = sin(2πx), ν = 0.1 (ν/π ≈ 0.032): a front steepens by t ≈ 0.2, then decays."""
    pde = Burgers(nx=nx, nt=11, viscosity=0.1, t_final=0.5)
    u0 = np.sin(2 * np.pi * pde.coordinates()[1])
    u, result = solve(ReferenceSolver(solver=solver, rtol=1e-10, atol=1e-12), pde, u0)
    assert result == dfx.RESULTS.successful
    return pde, u0, np.asarray(u), cole_hopf(pde, pde.coordinates()[0])


@pytest.fixture(scope="module")
def run64():
    return sine_run(64)


def test_cole_hopf_reference(run64):
    pde, u0, _, exact = run64
    np.testing.assert_allclose(exact[0], u0, atol=1e-12)  # the transform reproduces u0
    # Steepening: the maximum slope grows beyond the initial 2π.
    slope = np.max(np.abs(np.diff(exact, axis=1)), axis=1) * pde.nx
    assert slope.max() > 1.5 * 2 * np.pi  # measured: 1.83×


def test_matches_cole_hopf(run64):
    _, _, u, exact = run64
    assert np.max(np.abs(u - exact)) < 1e-6, np.max(np.abs(u - exact))


@pytest.mark.slow
def test_spectral_convergence_and_solvers():
    """32 -> 64 points: the error drops by > 1e3; IMEX (Sil3) and implicit agree."""
    errors = [np.max(np.abs(u - exact)) for _, _, u, exact in (sine_run(32), sine_run(64))]
    assert errors[0] / errors[1] > 1e3, errors
    for solver in (dfx.Sil3(), dfx.Kvaerno5()):
        _, _, u, exact = sine_run(64, solver)
        assert np.max(np.abs(u - exact)) < 1e-6


def test_residual_of_reference_small(run64):
    """The FD-in-time residual of the reference solution falls at second order in 1/nt."""
    pde, u0, u, _ = run64
    norms = []
    for stride in (2, 1):
        coarse = Burgers(nx=64, nt=10 // stride + 1, viscosity=0.1, t_final=0.5)
        r = jax.jit(coarse.residuals)(jnp.asarray(u[::stride]), u0)
        np.testing.assert_allclose(r["ic"], 0.0, atol=1e-14)
        norms.append(float(jnp.sqrt(jnp.mean(r["pde"] ** 2))))
    assert 3.0 < norms[0] / norms[1] < 5.0, norms


def test_quantities_linear_and_residual_bilinear(getkey):
    pde = Burgers(nx=16, nt=5)
    a, b = jr.normal(getkey(), pde.grid_shape), jr.normal(getkey(), pde.grid_shape)
    quantities = jax.jit(pde.linear_quantities)
    qa, qb, qab = (quantities(f) for f in (a, b, 2 * a - 3 * b))
    assert set(qa) == {"u", "u_t", "u_x", "u_xx"} == set(pde.quantities)
    for name in qa:
        np.testing.assert_allclose(qab[name], 2 * qa[name] - 3 * qb[name], atol=1e-10)
    basis = jr.normal(getkey(), (*pde.grid_shape, 3))
    omega = jnp.array([0.5, -1.0, 2.0])
    u0 = jnp.zeros(16)

    @jax.jit
    def both(basis, omega):
        per_basis = jax.vmap(pde.linear_quantities, in_axes=-1, out_axes=-1)(basis)
        combined = {k: v @ omega for k, v in per_basis.items()}
        direct = pde.residuals(basis @ omega, u0)["pde"]
        # The layers' path: per-basis quantities from the PDE's derivatives (offset column 0).
        source = pde.derivatives.basis(pde, basis, u0)
        weights = jnp.append(omega, 1.0)
        via_source = {k: v @ weights for k, v in source.interior.items()}
        return (
            pde.interior_residual(combined, None),
            direct,
            pde.interior_residual(via_source, None),
        )

    split, direct, via_source = both(basis, omega)
    np.testing.assert_allclose(split, direct, atol=1e-9)
    np.testing.assert_allclose(via_source, direct, atol=1e-9)
    # PDEBench convention: the diffusion coefficient is ν/π.
    assert pde.diffusivity == pytest.approx(0.01 / np.pi)


def test_inputs_and_blocks():
    """The derived model input: (t/T, x, u0) on the grid; one block, the initial condition."""
    pde = Burgers(nx=8, nt=6, t_final=0.5)
    u0 = jnp.arange(8.0)
    inputs = pde.inputs(u0)
    assert inputs.shape == (6, 8, 3)
    t, x = pde.coordinates()
    np.testing.assert_allclose(inputs[..., 0], np.broadcast_to(t[:, None] / 0.5, (6, 8)))
    np.testing.assert_allclose(inputs[..., 1], np.broadcast_to(x, (6, 8)))
    np.testing.assert_allclose(inputs[..., 2], np.broadcast_to(u0, (6, 8)))
    assert pde.block_names() == ("pde", "ic")
    (ic,) = pde.blocks
    assert ic.locations(pde.grid).shape == (8, 2) and np.all(ic.locations(pde.grid)[:, 0] == 0)
    u = jnp.broadcast_to(u0, pde.grid_shape) + jnp.asarray(t)[:, None]
    np.testing.assert_allclose(pde.residuals(u, u0)["ic"], 0.0, atol=1e-14)
    np.testing.assert_allclose(pde.residuals(u, u0 + 1.0)["ic"], -1.0, atol=1e-14)


def test_initial_conditions():
    pde = Burgers(nx=64, nt=5)
    u0 = np.asarray(sample_initial_conditions(pde, 400, key=jr.key(0)))
    assert u0.shape == (400, 64) and np.all(np.isfinite(u0))
    # Sums of at most two unit-amplitude sines, only low modes 1..4.
    assert np.abs(u0).max() <= 2.0
    spectrum = np.abs(np.fft.rfft(u0, axis=1))
    assert spectrum[:, 5:].max() < 0.5 * spectrum[:, 1:5].max()
    # Windowed samples (about 10%) vanish near x = 0; |u0| samples (about 10%) have one sign.
    windowed = np.abs(u0[:, 0]) < 1e-6
    assert 10 < windowed.sum() < 80
    one_sign = (u0.min(axis=1) >= 0) | (u0.max(axis=1) <= 0)
    assert 10 < one_sign.sum() < 100
    # Random signs: both signs of the mean occur.
    assert (u0.mean(axis=1) > 0).sum() > 50 and (u0.mean(axis=1) < 0).sum() > 50
    again = sample_initial_conditions(pde, 3, key=jr.key(0))
    np.testing.assert_allclose(again, u0[:3], rtol=0, atol=1e-14)


def test_bad_parameters():
    with pytest.raises(ValueError, match="problem.viscosity"):
        Burgers(nx=16, nt=5, viscosity=-0.1)
    with pytest.raises(ValueError, match="problem.nt"):
        Burgers(nx=16, nt=2)
    with pytest.raises(ValueError, match="problem.n_train"):
        BurgersProblem(n_train=0)


def test_cache_generate_reuse_and_mismatch(tmp_path, caplog):
    options = dict(nx=16, nt=5, t_final=0.1, n_train=2, n_test=1, data_dir=str(tmp_path))
    problem = BurgersProblem(**options)
    assert not any(tmp_path.iterdir())  # construction generates nothing
    train, test = problem.load()
    assert train.solutions.shape == (2, 5, 16) and test.solutions.shape == (1, 5, 16)
    assert train.seeds == ("0000", "0001") and test.seeds == ("0002",)
    np.testing.assert_allclose(train.conditions, train.solutions[:, 0])
    with h5py.File(problem.cache_path) as f:
        assert f["0000/data"].shape == (5, 16, 1)
        np.testing.assert_allclose(f["0000/grid/x"][()], (np.arange(16) + 0.5) / 16)
    mtime = problem.cache_path.stat().st_mtime_ns
    problem.load()
    assert problem.cache_path.stat().st_mtime_ns == mtime
    # Another configuration's file under this one's name is regenerated, saying why.
    other = BurgersProblem(**{**options, "seed": 3})
    problem.cache_path.rename(other.cache_path)
    with caplog.at_level(logging.WARNING, logger="pdeopt.data"):
        _, retest = other.load()
    assert any("attribute 'seed'" in r.getMessage() for r in caplog.records)
    assert not np.array_equal(retest.conditions, test.conditions)
