"""2-D Navier–Stokes: reference solver, initial conditions, residuals, mollifier, cache."""

import logging

import h5py
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from pdeopt.discretizations import spectral_gradient, spectral_resample, velocity_from_vorticity
from problems.navier_stokes import (
    NavierStokes2D,
    NavierStokesProblem,
    ReferenceSolver,
    grf_covariance,
    grf_spectrum,
    mollify,
    sample_initial_conditions,
)

solve = jax.jit(lambda solver, pde, w0: solver.solve(pde, w0), static_argnums=(0, 1))


def taylor_green(pde, k=2):
    """w = 2κ sin(κx) sin(κy), κ = 2πk: v·∇w = 0, so w decays like exp(−2νκ² t)."""
    t, x, y = pde.coordinates()
    kappa = 2 * np.pi * k
    xx, yy = np.meshgrid(x, y, indexing="ij")
    w0 = 2 * kappa * np.sin(kappa * xx) * np.sin(kappa * yy)
    return w0, w0[None] * np.exp(-2 * pde.viscosity * kappa**2 * t)[:, None, None]


def test_taylor_green_decay():
    pde = NavierStokes2D(nx=16, nt=6, viscosity=0.01, t_final=0.5)
    w0, exact = taylor_green(pde)
    w = solve(ReferenceSolver(), pde, w0)
    assert exact[-1].max() < 0.3 * exact[0].max()  # a real decay (factor e^{-1.6})
    # Crank–Nicolson's decay factor per step is exp(−hνκ²) + O((hνκ²)³).
    np.testing.assert_allclose(w, exact, rtol=0, atol=1e-5 * np.abs(w0).max())


def test_initial_conditions_zero_mean_and_reproducible():
    w0 = sample_initial_conditions(6, 32, key=jr.key(1))
    assert w0.shape == (6, 32, 32) and w0.dtype == jnp.float64
    np.testing.assert_allclose(w0.mean(axis=(1, 2)), 0.0, atol=1e-14)
    assert float(w0.std()) > 0.1
    # Upsampling the 64² sample is exact interpolation: every other point of the 128² sample
    # is the 64² sample.
    coarse = sample_initial_conditions(2, 64, key=jr.key(1))
    fine = sample_initial_conditions(2, 128, key=jr.key(1))
    np.testing.assert_allclose(fine[:, ::2, ::2], coarse, atol=1e-13)
    # Downsampling is the low-pass projection of the same 64² sample, and sample i depends on
    # (key, i) only, not on how many samples are drawn (6 here, 2 above).
    grid = NavierStokes2D(nx=64, nt=4).space_grid
    np.testing.assert_allclose(spectral_resample(coarse, grid, (32, 32)), w0[:2], atol=1e-13)


def test_initial_condition_covariance():
    """The empirical covariance on an 8² grid matches the kernel's, after mean removal."""
    n, num = 8, 4000
    w = np.asarray(sample_initial_conditions(num, n, key=jr.key(0), ic_resolution=n))
    w = w.reshape(num, -1)
    cov = grf_covariance(n)
    centre = np.eye(n * n) - 1.0 / (n * n)
    want = centre @ cov @ centre
    have = w.T @ w / num
    scale = np.sqrt(2.0 / num) * want.diagonal().max()
    assert np.max(np.abs(have - want)) < 6 * scale, (np.max(np.abs(have - want)), scale)
    # And the structure is not trivial: correlations at distance 1 and 4 differ clearly.
    assert want[0, 1] - want[0, 4] > 20 * scale
    # The spectrum is the exact eigendecomposition of the dense covariance.
    np.testing.assert_allclose(
        np.sort(grf_spectrum(n).ravel()), np.linalg.eigvalsh(cov), atol=1e-12
    )


@pytest.fixture(scope="module")
def grf_run():
    pde = NavierStokes2D(nx=32, nt=17, viscosity=1e-3, t_final=1.0)
    w0 = sample_initial_conditions(1, 32, key=jr.key(2))[0]
    return pde, w0, solve(ReferenceSolver(), pde, w0)


def test_enstrophy_decays_and_mean_stays_zero(grf_run):
    pde, w0, w = grf_run
    np.testing.assert_array_equal(w[0], w0)
    enstrophy = np.asarray(pde.enstrophy(w))
    assert np.all(np.diff(enstrophy) < 0), enstrophy
    np.testing.assert_allclose(w.mean(axis=(1, 2)), 0.0, atol=1e-13)
    assert float(jnp.abs(w[-1] - w[0]).max()) > 0.05 * float(jnp.abs(w0).max())  # it moved


def test_residual_of_reference_converges_in_time(grf_run):
    """The FD-in-time residual of the reference solution falls at second order in 1/nt: the
    PDE class's spectral velocity/advection and the solver's agree. (At 32² the dealiasing
    floor, the part of v·∇w the 2/3 mask removes, is about 2e-4 of |w_t|; at 16² it is 2%.)"""
    pde, w0, w = grf_run
    norms = []
    for stride in (4, 2, 1):
        coarse = NavierStokes2D(nx=32, nt=16 // stride + 1, viscosity=1e-3, t_final=1.0)
        r = jax.jit(coarse.residuals)(w[::stride], w0)
        norms.append(float(jnp.sqrt(jnp.mean(r["pde"] ** 2))))
        np.testing.assert_allclose(r["ic"], 0.0, atol=1e-14)
    rates = np.log2(np.array(norms[:-1]) / np.array(norms[1:]))
    assert np.all(rates > 1.7), (norms, rates)


def test_time_stepping_second_order():
    """Heun–Crank–Nicolson converges at second order in the time step (nonlinear flow)."""
    pde = NavierStokes2D(nx=16, nt=4, viscosity=1e-3, t_final=0.48)  # 4, 8, 16, 32 steps
    w0 = 4 * sample_initial_conditions(1, 16, key=jr.key(3))[0]
    finals = [solve(ReferenceSolver(dt=dt), pde, w0)[-1] for dt in (0.04, 0.02, 0.01, 0.005)]
    errors = [float(jnp.abs(a - b).max()) for a, b in zip(finals[:-1], finals[1:])]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((1.8 < rates) & (rates < 2.3)), (errors, rates)


@pytest.mark.parametrize("radial", [True, False])
def test_advection_matches_advective_form(radial):
    """The four-FFT (Basdevant) advection equals mask · FFT(v_x ∂_x w + v_y ∂_y w) on a
    masked field: with the 2/3 mask the quadratic products are alias-free on kept modes."""
    grid = NavierStokes2D(nx=24, nt=4).space_grid
    solver = ReferenceSolver(radial_dealias=radial)
    mask = solver.mask(grid)
    w = jnp.fft.irfft2(mask * jnp.fft.rfft2(4 * sample_initial_conditions(1, 24, key=jr.key(5))[0]))
    vx, vy = velocity_from_vorticity(w, grid)
    wx, wy = spectral_gradient(w, grid)
    want = mask * jnp.fft.rfft2(vx * wx + vy * wy)
    have = solver.advection(grid)(jnp.fft.rfft2(w))
    assert float(jnp.abs(want).max()) > 1.0  # a real nonlinear term
    np.testing.assert_allclose(have, want, rtol=0, atol=1e-12 * float(jnp.abs(want).max()))


def test_quantities_linear_and_residual_bilinear(getkey):
    pde = NavierStokes2D(nx=8, nt=5)
    a, b = jr.normal(getkey(), pde.grid_shape), jr.normal(getkey(), pde.grid_shape)
    quantities = jax.jit(pde.linear_quantities)
    qa, qb, qab = (quantities(f) for f in (a, b, 2 * a - 3 * b))
    assert set(qa) == {"w", "w_t", "w_x", "w_y", "w_xx", "w_yy", "v_x", "v_y"}
    for name in qa:
        np.testing.assert_allclose(qab[name], 2 * qa[name] - 3 * qb[name], atol=1e-10)
    # Residual of Σ ω_k b_k from per-basis quantities (as the hard-constraint layer does).
    basis = jr.normal(getkey(), (*pde.grid_shape, 3))
    omega = jnp.array([0.5, -1.0, 2.0])

    @jax.jit
    def both(basis, omega):
        per_basis = jax.vmap(pde.linear_quantities, in_axes=-1, out_axes=-1)(basis)
        combined = {k: v @ omega for k, v in per_basis.items()}
        direct = pde.residuals(basis @ omega, jnp.zeros((8, 8)))["pde"]
        return pde.interior_residual(combined, None), direct

    np.testing.assert_allclose(*both(basis, omega), atol=1e-9)


def test_mollifier(getkey):
    pde = NavierStokes2D(nx=8, nt=5)
    _, x, y = pde.coordinates()
    w0 = jnp.asarray(np.sin(2 * np.pi * x)[:, None] * np.cos(4 * np.pi * y)[None, :])
    basis = jr.normal(getkey(), (*pde.grid_shape, 4))
    omega = jr.normal(getkey(), (4,))
    u = mollify(pde, basis @ omega, w0)
    np.testing.assert_allclose(u[0], w0, atol=1e-14)  # the initial condition is exact
    np.testing.assert_allclose(u.mean(axis=(1, 2)), 0.0, atol=1e-14)
    t = pde.coordinates()[0]
    np.testing.assert_allclose(u[-1] - w0, 0.005 * (basis[-1] @ omega - (basis[-1] @ omega).mean()))
    assert float(jnp.abs(u[2] - w0).max()) > 1e-4 * (t[2] / t[-1])

    # Quantities of u = quantities of w0 (constant offsets) + Σ ω_k quantities of the
    # mollified basis: the residual is bilinear in ω.
    @jax.jit
    def both(basis, omega, w0):
        offsets = pde.linear_quantities(jnp.broadcast_to(w0, pde.grid_shape))
        lin = jax.vmap(lambda b: pde.linear_quantities(mollify(pde, b)), -1, -1)(basis)
        q = {k: offsets[k] + lin[k] @ omega for k in offsets}
        residuals = pde.residuals(mollify(pde, basis @ omega, w0), w0)
        # The layers' path: the ansatz's per-basis quantities, offset column last (weight 1).
        source = pde.derivatives.basis(pde, basis, w0)
        weights = jnp.append(omega, 1.0)
        via_source = {k: v @ weights for k, v in source.interior.items()}
        ic_source = source.traces[0] @ weights
        return (
            offsets["w_t"],
            pde.interior_residual(q, w0),
            residuals["pde"],
            residuals["ic"],
            pde.interior_residual(via_source, w0),
            ic_source[0] - w0,
        )

    offset_t, split, direct, ic, via_source, ic_source = both(basis, omega, w0)
    np.testing.assert_allclose(offset_t, 0.0, atol=1e-12)
    np.testing.assert_allclose(split, direct, atol=1e-10)
    np.testing.assert_allclose(ic, 0.0, atol=1e-14)
    np.testing.assert_allclose(via_source, direct, atol=1e-10)
    np.testing.assert_allclose(ic_source, 0.0, atol=1e-14)


def test_inputs_and_locations():
    pde = NavierStokes2D(nx=8, nt=5)
    w0 = jnp.arange(64.0).reshape(8, 8)
    inputs = pde.inputs(w0)
    assert inputs.shape == (5, 8, 8, 4)
    np.testing.assert_allclose(inputs[-1, 0, 0, 0], 1.0)
    np.testing.assert_allclose(inputs[3, :, :, 3], w0)
    np.testing.assert_allclose(inputs[0, 2, 5, 1:3], [2 / 8, 5 / 8])
    assert pde.block_names() == ("pde", "ic")
    (ic,) = pde.blocks
    loc = ic.locations(pde.grid)
    assert loc.shape == (8, 8, 3) and np.all(loc[..., 0] == 0)
    assert tuple(loc[3, 5]) == (0, 3, 5)


def test_bad_parameters():
    with pytest.raises(ValueError, match="problem.nx"):
        NavierStokes2D(nx=2, nt=8)
    with pytest.raises(ValueError, match="problem.viscosity"):
        NavierStokes2D(nx=8, nt=8, viscosity=0.0)
    with pytest.raises(ValueError, match="problem.n_test"):
        NavierStokesProblem(n_test=0)
    with pytest.raises(ValueError, match="problem.solver.dt"):
        ReferenceSolver(dt=-1.0)


def _small(tmp_path, **kwargs):
    options = dict(
        nx=8, nx_test=16, nt=4, t_final=0.03, n_train=2, n_test=1, ic_resolution=8,
        data_dir=str(tmp_path),
    )  # fmt: skip
    options.update(kwargs)
    return NavierStokesProblem(**options)


def test_cache_generate_reuse_and_mismatch(tmp_path, caplog):
    problem = _small(tmp_path)
    assert not any(tmp_path.iterdir())  # construction generates nothing
    train, test = problem.load()
    assert train.solutions.shape == (2, 4, 8, 8) and test.solutions.shape == (1, 4, 16, 16)
    assert train.seeds == ("0000", "0001") and test.seeds == ("0002",)
    np.testing.assert_allclose(train.conditions, train.solutions[:, 0])
    np.testing.assert_allclose(train.conditions, problem.sample_inputs(problem.pde, np.arange(2)))
    with h5py.File(problem.splits()[1].path) as f:  # PDEBench per-seed layout, 2-D.
        assert list(f.keys()) == ["0002"]
        assert f["0002/data"].shape == (4, 16, 16, 1)
        np.testing.assert_allclose(f["0002/grid/y"][()], np.arange(16) / 16)
        np.testing.assert_allclose(f["0002/grid/t"][()], [0.0, 0.01, 0.02, 0.03])
    mtime = problem.splits()[0].path.stat().st_mtime_ns
    train2, _ = problem.load()
    assert problem.splits()[0].path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(train.solutions, train2.solutions)
    # A cache made with another viscosity, under this config's name, is regenerated.
    other = _small(tmp_path, viscosity=1e-3)
    problem.splits()[0].path.rename(other.splits()[0].path)
    with caplog.at_level(logging.WARNING, logger="pdeopt.data"):
        other.load()
    assert any("attribute 'viscosity'" in r.getMessage() for r in caplog.records)
    with h5py.File(other.splits()[0].path) as f:
        assert f.attrs["viscosity"] == 1e-3


@pytest.mark.slow  # 35–55 s on a 2-core CPU; run with `pytest -m slow`
def test_constraints_with_mollifier_ansatz(getkey):
    """The mollifier is the solution ansatz: u(0) = w0 exactly under soft, PI-HC and MoE."""
    from pdeopt.constraints import HardConstraint, MoEHardConstraint, SoftConstraint

    pde = NavierStokes2D(nx=8, nt=5, viscosity=1e-2)
    w0 = jr.normal(getkey(), (8, 8))
    w0 = w0 - w0.mean()
    basis = jr.normal(getkey(), (5, 8, 8, 4))
    weights = {"pde": 1.0, "ic": 1.0}
    options = dict(num_basis=4, num_points=24, row_weights=weights, loss_weights=weights)
    u_soft, _ = SoftConstraint(weights)(pde, basis[..., :1], w0)
    np.testing.assert_allclose(u_soft[0], w0, atol=1e-12)
    for layer in (
        HardConstraint(**options),
        MoEHardConstraint(parts=(1, 2, 2), **(options | {"loss_weights": weights | {"seam": 1.0}})),
    ):
        u, stats = layer(pde, basis, w0, key=getkey())
        assert bool(jnp.all(stats.converged))
        np.testing.assert_allclose(u[0], w0, atol=1e-12)
        if layer.parts is None:  # Piecewise MoE fields need not be zero-mean.
            np.testing.assert_allclose(jnp.mean(u, axis=(1, 2)), 0.0, atol=1e-12)
        report = layer.report(pde, basis, w0, key=getkey())
        assert float(report["ic_rms"]) < 1e-12
        assert float(report["pde_rms_collocation"]) < float(report["raw_pde_rms_collocation"])


def test_eval_nx_views_subsample_the_test_grid(tmp_path):
    problem = _small(tmp_path, eval_nx=[8, 4])
    views = problem.test_views()
    assert list(views) == ["8x8", "4x4"]
    assert views["8x8"].stride == (1, 2, 2) and views["4x4"].stride == (1, 4, 4)
    assert views["4x4"].pde.grid_shape == (4, 4, 4)
    _, test = problem.load()
    # The subsampled test data lie on the view's grid.
    coarse = test.solutions[:, :, ::4, ::4]
    np.testing.assert_allclose(
        views["4x4"].pde.coordinates()[1], problem.test_pde.coordinates()[1][::4]
    )
    assert coarse.shape[1:] == views["4x4"].pde.grid_shape
    with pytest.raises(ValueError, match="does not divide problem.nx_test=16"):
        _small(tmp_path, eval_nx=[6])
