"""The porous medium equation: NaN-safe powers, reference solver vs the travelling wave."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_quantities_linear

from problems.porous_medium import PorousMedium, PorousMediumProblem, ReferenceSolver
from problems.porous_medium._pde import positive_power

EXPONENTS = (1.0, 2.0, 4.0)


@pytest.fixture(scope="module")
def solved():
    pde = PorousMedium(nx=64, nt=11)
    m = jnp.asarray(EXPONENTS)
    u, inflow = jax.jit(jax.vmap(lambda mi: ReferenceSolver().solve_with_flux(pde, mi)))(m)
    return pde, m, np.asarray(u), np.asarray(inflow)


def test_matches_travelling_wave(solved):
    """Cell averages vs the exact wave (m·(t − x))₊^(1/m) at the cell centres, 64 cells.

    Measured relative space–time L2 errors: 5.8e-4, 3.7e-3, 1.2e-2 for m = 1, 2, 4 (the
    front, where u_x is unbounded for m > 1, limits the accuracy).
    """
    pde, m, u, _ = solved
    t, x = pde.coordinates()
    exact = np.asarray(jax.vmap(lambda mi: pde.exact(t[:, None], x[None, :], mi))(m))
    rel = np.sqrt(np.sum((u - exact) ** 2, axis=(1, 2)) / np.sum(exact**2, axis=(1, 2)))
    np.testing.assert_array_less(rel, [1.0e-3, 6.0e-3, 2.0e-2])
    assert np.all(u[:, 0] == 0) and np.all(u[:, -1, 0] > 0.9)  # Starts empty, fills from x=0.


def test_mass_conservation(solved):
    """Σ c·dx changes by exactly the boundary inflow, and matches the exact wave's mass."""
    pde, m, u, inflow = solved
    t, _ = pde.coordinates()
    mass = u.sum(axis=-1) / pde.nx
    np.testing.assert_allclose(mass - mass[:, :1], inflow, rtol=0, atol=1e-12)
    m = np.asarray(m)[:, None]
    exact_mass = m ** (1 / m) * t ** (1 + 1 / m) / (1 + 1 / m)  # ∫₀^t (m(t − x))^(1/m) dx
    np.testing.assert_allclose(mass[:, 1:], exact_mass[:, 1:], rtol=2e-2)


@pytest.mark.parametrize("u", [-1.0, -1e-12, 0.0, 1e-12, 0.3])
@pytest.mark.parametrize("p", [0.25, 0.5, 1.0, 3.0])
def test_positive_power_nan_safe(u, p):
    value = positive_power(jnp.asarray(u), p)
    grad = jax.grad(positive_power)(jnp.asarray(u), p)
    assert jnp.isfinite(value) and jnp.isfinite(grad)
    np.testing.assert_allclose(value, max(u, 0.0) ** p if u > 0 else 0.0, rtol=1e-12)


def test_residual_of_exact_solution():
    """Finite where u = 0 (m − 1 < 1 included) and small behind the front, ahead of it zero."""
    pde = PorousMedium(nx=128, nt=41)
    t, x = pde.coordinates()
    for m in (1.5, 3.0):
        u = pde.exact(t[:, None], x[None, :], m)
        r = pde.residuals(u, jnp.asarray(m))
        assert all(bool(jnp.all(jnp.isfinite(v))) for v in r.values())
        gap = t[:, None] - x[None, :]  # distance behind the front (speed 1)
        behind, ahead = gap > 0.2, gap < -0.05
        assert float(jnp.max(jnp.abs(r["pde"][behind]))) < 2e-2
        assert float(jnp.max(jnp.abs(r["pde"][ahead]))) == 0.0
        np.testing.assert_allclose(r["ic"], 0.0)


def test_residual_quantities_are_linear():
    pde = PorousMedium(nx=16, nt=9)
    check_quantities_linear(pde)


def test_inputs_and_blocks():
    """The derived input (t/T, x, m); "ic" on t = 0, "bc" inflow/outflow rows after t = 0."""
    pde = PorousMedium(nx=16, nt=9, t_final=0.5)
    inputs = pde.inputs(jnp.asarray(2.0))
    t, x = pde.coordinates()
    assert inputs.shape == (9, 16, 3)
    np.testing.assert_allclose(inputs[:, 3, 0], t / 0.5)
    np.testing.assert_allclose(inputs[4, :, 1], x)
    np.testing.assert_allclose(inputs[..., 2], 2.0)
    assert pde.block_names() == ("pde", "ic", "bc")
    bc = [b for b in pde.blocks if b.name == "bc"]
    np.testing.assert_allclose(bc[0].coordinates(pde.grid), np.stack([t[1:], 0 * t[1:]], -1))
    np.testing.assert_allclose(bc[1].coordinates(pde.grid)[:, 1], 1.0)
    # u = u_in(t)·(1 − x) has the inflow value at x = 0 and 0 at x = 1 (the traces extrapolated
    # to the faces are exact for a linear profile), and u(x, 0) = 0: every ic and bc row vanishes.
    u = pde.inflow_value(jnp.asarray(t)[:, None], 2.0) * (1 - jnp.asarray(x))[None, :]
    m = jnp.asarray(2.0)
    r = pde.residuals(u, m)
    assert r["bc"].shape == (2 * 8,) and r["ic"].shape == (16,)
    np.testing.assert_allclose(r["bc"], 0.0, atol=1e-12)
    np.testing.assert_allclose(r["ic"], 0.0, atol=1e-14)
    assert float(jnp.max(jnp.abs(pde.residuals(u + 0.1, m)["bc"]))) > 0.05


def test_problem_generate_then_load(tmp_path):
    problem = PorousMediumProblem(nx=16, nt=6, n_train=2, n_test=1, data_dir=str(tmp_path))
    train, test = problem.load()
    assert train.solutions.shape == (2, 6, 16) and test.solutions.shape == (1, 6, 16)
    assert np.all((1.0 <= train.conditions) & (train.conditions <= 4.0))
    np.testing.assert_allclose(train.conditions, problem.sample_inputs(problem.pde, np.arange(2)))
    assert problem.cache_path.exists()


def test_bad_parameters():
    with pytest.raises(ValueError, match="problem.t_final"):
        PorousMedium(nx=16, nt=8, t_final=2.0)
    with pytest.raises(ValueError, match="problem.m_min"):
        PorousMediumProblem(m_min=0.5)
    with pytest.raises(ValueError, match="problem.nx"):
        PorousMedium(nx=2, nt=8)
