"""Heat and Poisson: exact solutions, second-order residual slopes, data layout."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_quantities_linear

from problems.manufactured import Heat, HeatProblem, Poisson, PoissonProblem


def _slopes(norms):
    return np.log2(np.asarray(norms[:-1]) / np.asarray(norms[1:]))


def test_heat_exact_solution_and_second_order_residual():
    c = jnp.array([1.0, -0.5, 0.25])
    norms = []
    for nx, nt in ((17, 9), (33, 17), (65, 33)):
        pde = Heat(nx=nx, nt=nt)
        u = pde.exact(c)
        t, x = pde.coordinates()
        u0 = sum(ck * np.sin((k + 1) * np.pi * x) for k, ck in enumerate(np.asarray(c)))
        r = pde.residuals(u, jnp.asarray(u0))
        np.testing.assert_allclose(r["ic"], 0.0, atol=1e-12)
        np.testing.assert_allclose(r["bc"], 0.0, atol=1e-12)
        norms.append(float(jnp.sqrt(jnp.mean(r["pde"] ** 2))))
    slopes = _slopes(norms)
    assert np.all((slopes > 1.8) & (slopes < 2.2)), (norms, slopes)
    # The exact solution is exact: mode k decays like exp(−κk²π²t).
    decay = np.exp(-((np.arange(1, 4) * np.pi) ** 2) * t[-1])
    expected = sum(a * d * np.sin((k + 1) * np.pi * x) for k, (a, d) in enumerate(zip(c, decay)))
    np.testing.assert_allclose(u[-1], expected, atol=1e-12)


def test_poisson_exact_solution_and_second_order_residual():
    c = jnp.array([[1.0, 0.3], [-0.2, 0.5]])
    norms = []
    for n in (17, 33, 65):
        pde = Poisson(n=n)
        r = pde.residuals(pde.exact(c), pde.forcing(c))
        np.testing.assert_allclose(r["bc"], 0.0, atol=1e-12)
        norms.append(float(jnp.sqrt(jnp.mean(r["pde"][1:-1, 1:-1] ** 2))))  # interior nodes
    slopes = _slopes(norms)
    assert np.all((slopes > 1.8) & (slopes < 2.2)), (norms, slopes)
    # Pointwise: f reaches gathered points through `interior_coefficients`.
    q = pde.linear_quantities(pde.exact(c)) | pde.interior_coefficients(pde.forcing(c))
    points = np.array([5, 100, 2000])
    gathered = pde.interior_residual({k: v.ravel()[points] for k, v in q.items()}, None)
    np.testing.assert_allclose(gathered, r["pde"].ravel()[points], rtol=1e-12)


@pytest.mark.parametrize("pde", [Heat(nx=9, nt=7), Poisson(n=9)], ids=["heat", "poisson"])
def test_quantities_linear(pde):
    check_quantities_linear(pde)


def test_blocks():
    """Heat: "ic" on t = 0, "bc" on x = 0 and x = 1 after t = 0; Poisson: "bc" on the four
    sides, each boundary node once (corners on the x-faces)."""
    heat = Heat(nx=9, nt=7)
    assert heat.block_names() == ("pde", "ic", "bc")
    rows = np.concatenate([b.locations(heat.grid) for b in heat.blocks if b.name == "bc"])
    assert rows.shape == (12, 2) and set(map(tuple, rows)) == {
        (i, j) for i in range(1, 7) for j in (0, 8)
    }
    poisson = Poisson(n=9)
    assert poisson.block_names() == ("pde", "bc")
    rows = np.concatenate([b.locations(poisson.grid) for b in poisson.blocks])
    boundary = {(i, j) for i in range(9) for j in range(9) if {i, j} & {0, 8}}
    assert len(rows) == len(boundary) == 32 and set(map(tuple, rows)) == boundary


def test_problems_write_pdebench_layouts(tmp_path):
    heat = HeatProblem(nx=9, nt=5, n_train=3, n_test=2, data_dir=str(tmp_path))
    train, test = heat.load()
    assert train.solutions.shape == (3, 5, 9) and test.seeds == ("0003", "0004")
    np.testing.assert_array_equal(train.conditions, train.solutions[:, 0])
    with h5py.File(heat.cache_path) as f:
        assert f["tensor"].shape == (5, 5, 9) and f["t-coordinate"].shape == (5,)
    poisson = PoissonProblem(n=9, n_train=2, n_test=1, data_dir=str(tmp_path))
    train, _ = poisson.load()
    r = jax.vmap(poisson.pde.residuals)(jnp.asarray(train.solutions), jnp.asarray(train.conditions))
    assert float(jnp.max(jnp.abs(r["pde"]))) < 1.0  # second-order FD of the exact solution
    with h5py.File(poisson.cache_path) as f:
        assert f["tensor"].shape == (3, 1, 9, 9) and f["f"].shape == (3, 9, 9)
    with pytest.raises(ValueError, match="problem.nx"):
        HeatProblem(nx=3)
