"""1-D diffusion–reaction: logistic solution, second-order MOL convergence, data layout."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np

from problems.diffusion_reaction import (
    DiffusionReaction,
    DiffusionReactionProblem,
    ReferenceSolver,
)

solve = jax.jit(ReferenceSolver().solve, static_argnums=0)


def test_constant_initial_condition_is_logistic():
    """u0 ≡ c gives u(t) = c e^{ρt} / (1 − c + c e^{ρt}) exactly (u_xx = 0)."""
    pde = DiffusionReaction(nx=16, nt=11, rho=2.0)
    u = solve(pde, jnp.full(16, 0.1))
    t, _ = pde.coordinates()
    logistic = 0.1 * np.exp(2 * t) / (0.9 + 0.1 * np.exp(2 * t))
    np.testing.assert_allclose(u, np.broadcast_to(logistic[:, None], u.shape), rtol=1e-7)


def test_second_order_in_space_and_small_residual():
    """Refining nx 32 → 64 → 128 (nested periodic points): second order in space."""
    problem = DiffusionReactionProblem(nx=128, nt=6)
    u0 = problem.sample_inputs(problem.pde, np.array([3]))[0]
    finals = {}
    for nx in (32, 64, 128):
        pde = DiffusionReaction(nx=nx, nt=6)
        finals[nx] = np.asarray(solve(pde, jnp.asarray(u0[:: 128 // nx])))
    errors = [np.max(np.abs(finals[n][-1] - finals[128][-1][:: 128 // n])) for n in (32, 64)]
    # Second order measured against nx = 128: e32/e64 = (1/32² − 1/128²)/(1/64² − 1/128²) = 5.
    ratio = errors[0] / errors[1]
    assert 4.0 < ratio < 6.0, (errors, ratio)
    pde = DiffusionReaction(nx=128, nt=6)
    r = pde.residuals(jnp.asarray(finals[128]), jnp.asarray(u0))
    np.testing.assert_allclose(r["ic"], 0.0, atol=1e-12)


def test_load_writes_pdebench_layout(tmp_path):
    problem = DiffusionReactionProblem(nx=16, nt=6, n_train=2, n_test=1, data_dir=str(tmp_path))
    train, test = problem.load()
    assert train.solutions.shape == (2, 6, 16) and test.seeds == ("0002",)
    np.testing.assert_array_equal(train.conditions, train.solutions[:, 0])
    assert np.all((train.solutions > 0) & (train.solutions < 1))
    with h5py.File(problem.cache_path) as f:
        assert f["tensor"].shape == (3, 6, 16) and f["x-coordinate"].shape == (16,)
