"""PI-HC with coordinate-model bases: autodiff quantities read from the model's output."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optimistix as optx
import pytest

from pdeopt.constraints import AbstractPDE, HardConstraint
from pdeopt.models import AutodiffBasis, DeepONet, autodiff_basis
from problems.burgers import BurgersAutodiff

TIGHT = optx.LevenbergMarquardt(rtol=1e-12, atol=1e-14)
ORDERS = BurgersAutodiff.ORDERS  # u, ∂t, ∂x, ∂xx on (t, x)
KAPPA = 0.05


class _Known(eqx.Module):
    """A pointwise 'model' of known closed form on inputs (t, x, c): N = 3 outputs."""

    def __call__(self, z):
        t, x, c = z[..., 0], z[..., 1], z[..., 2]
        s = jnp.sin(2 * jnp.pi * x)
        decay = jnp.exp(-4 * jnp.pi**2 * KAPPA * t)
        return jnp.stack([decay * s, c * t**2 * x**3, t * jnp.cos(2 * jnp.pi * x)], axis=-1)


def _known_derivatives(t, x, c):
    """Analytic u, u_t, u_x, u_xx of the three outputs of `_Known`, each (3,)."""
    k, w = 4 * np.pi**2 * KAPPA, 2 * np.pi
    d, s, co = np.exp(-k * t), np.sin(w * x), np.cos(w * x)
    return [
        np.array([d * s, c * t**2 * x**3, t * co]),
        np.array([-k * d * s, 2 * c * t * x**3, co]),
        np.array([w * d * co, 3 * c * t**2 * x**2, -w * t * s]),
        np.array([-(w**2) * d * s, 6 * c * t**2 * x, -(w**2) * t * co]),
    ]


def test_autodiff_basis_matches_analytic_derivatives(getkey):
    points = jr.uniform(getkey(), (3, 4, 3), jnp.float64)
    out = eqx.filter_jit(AutodiffBasis(_Known(), ORDERS, coordinate_channels=2))(points)
    assert out.shape == (3, 4, 4 * 3)
    jet = np.asarray(out).reshape(3, 4, 4, 3)
    for i in range(3):
        for j in range(4):
            want = _known_derivatives(*np.asarray(points[i, j]))
            np.testing.assert_allclose(jet[i, j], np.stack(want), rtol=1e-12, atol=1e-12)


def test_autodiff_basis_of_deeponet_trunk(getkey):
    """The wrapper's channels are `derivatives` of the DeepONet trunk, stacked order by order."""
    from pdeopt.discretizations import derivatives

    net = autodiff_basis(
        3,
        5,
        model=lambda **kw: DeepONet(coordinate_channels=2, basis=True, dtype=jnp.float64, **kw),
        orders=ORDERS,
        coordinate_channels=2,
        key=getkey(),
    )
    points = jr.uniform(getkey(), (4, 6, 3), jnp.float64)
    out = eqx.filter_jit(net)(points).reshape(4, 6, 4, 5)
    orders = {str(k): o for k, o in enumerate(ORDERS)}
    want = derivatives(net.model.trunk_basis, points[..., :2], orders)
    for k in range(4):
        np.testing.assert_allclose(out[..., k, :], want[str(k)], rtol=1e-12, atol=1e-12)


class _Heat(AbstractPDE):
    """u_t = κ u_xx on a (t, x) grid, IC rows only, quantities from an AutodiffBasis output."""

    nt: int = eqx.field(static=True, default=9)
    nx: int = eqx.field(static=True, default=16)

    @property
    def grid_shape(self):
        return (self.nt, self.nx)

    def inputs(self, condition):
        t, x = np.linspace(0.0, 1.0, self.nt), np.arange(self.nx) / self.nx
        tt, xx = jnp.meshgrid(t, x, indexing="ij")
        return jnp.stack([tt, xx, jnp.broadcast_to(condition, tt.shape)], axis=-1)

    def quantities_from_output(self, output):
        jet = output.reshape(*self.grid_shape, len(ORDERS), -1)
        q = dict(zip(("u", "u_t", "u_x", "u_xx"), (jet[..., k, :] for k in range(4))))
        return q["u"], q, {"initial": q["u"][0]}

    def interior_quantities(self, u):
        raise TypeError

    def boundary_quantities(self, u):
        raise TypeError

    def interior_residual(self, q, condition):
        return q["u_t"] - KAPPA * q["u_xx"]

    def boundary_residuals(self, qb, condition):
        return {"ic": qb["initial"] - condition}

    def boundary_locations(self):
        x = np.arange(self.nx)
        return {"ic": np.stack([np.zeros_like(x), x], axis=-1)}


def test_hard_constraint_recovers_exact_solution_in_autodiff_basis(getkey):
    """Output 0 of `_Known` is the exact heat solution for u0 = sin 2πx; PI-HC finds it."""
    pde = _Heat()
    condition = jnp.sin(2 * jnp.pi * jnp.arange(pde.nx) / pde.nx)
    model = AutodiffBasis(_Known(), ORDERS, coordinate_channels=2)
    constraint = HardConstraint(
        num_basis=3,
        num_points=60,
        row_weights={"pde": 1.0, "ic": 1.0},
        loss_weights={"pde": 1.0, "ic": 1.0},
        ridge=1e-8,
        solver=TIGHT,
        max_steps=200,
    )
    output = model(pde.inputs(condition))
    u, stats = constraint(pde, output, condition, key=getkey())
    assert bool(jnp.all(stats["converged"]))
    t = np.linspace(0.0, 1.0, pde.nt)[:, None]
    exact = np.exp(-4 * np.pi**2 * KAPPA * t) * np.asarray(condition)[None]
    np.testing.assert_allclose(u, exact, rtol=0, atol=1e-8)
    report = constraint.report(pde, output, condition, key=getkey())
    assert report["pde_rms_heldout"] < 1e-8 and report["ic_rms"] < 1e-8
    terms, ok, _ = constraint.loss_terms(pde, output, condition, key=getkey())
    assert bool(ok) and terms["pde"] < 1e-16 and terms["ic"] < 1e-16


def _burgers_setup(getkey):
    pde = BurgersAutodiff(nx=8, nt=5, viscosity=0.1, t_final=0.5)
    x = np.asarray(pde.coordinates()[1])
    condition = jnp.asarray(0.5 * np.sin(2 * np.pi * x))
    model = autodiff_basis(
        3,
        4,
        model=lambda **kw: DeepONet(
            coordinate_channels=2, basis=True, trunk_width=8, trunk_depth=2, dtype=jnp.float64, **kw
        ),
        orders=ORDERS,
        coordinate_channels=2,
        key=getkey(),
    )
    constraint = HardConstraint(
        num_basis=4,
        num_points=30,
        row_weights={"pde": 1.0, "ic": 20.0, "bc": 1.0},
        ridge=1e-3,
        solver=TIGHT,
        max_steps=300,
    )
    return pde, condition, model, constraint


def test_burgers_autodiff_rows(getkey):
    pde, condition, model, constraint = _burgers_setup(getkey)
    output = model(pde.inputs(condition))
    assert output.shape == (5, 10, 16)
    fields, interior, boundary = pde.quantities_from_output(output)
    jet = output.reshape(5, 10, 4, 4)
    np.testing.assert_array_equal(fields, jet[:, :8, 0])
    np.testing.assert_allclose(interior["u_t"], jet[:, :8, 1] / pde.t_final)
    residuals = pde.boundary_residuals({k: v[..., 0] for k, v in boundary.items()}, condition)
    assert residuals["ic"].shape == (8,) and residuals["bc"].shape == (2, 5)
    assert {k: v.shape[:-1] for k, v in pde.boundary_locations().items()} == {
        "ic": (8,),
        "bc": (2, 5),
    }
    with pytest.raises(TypeError, match="HardConstraint"):
        pde.interior_quantities(fields[..., 0])
    with pytest.raises(ValueError, match="AutodiffBasis"):
        pde.quantities_from_output(output[:, :8])


def test_implicit_gradient_through_autodiff_basis_matches_finite_differences(getkey):
    pde, condition, model, constraint = _burgers_setup(getkey)
    key = getkey()
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(params):
        output = eqx.combine(params, static)(pde.inputs(condition))
        terms, ok, stats = constraint.loss_terms(pde, output, condition, key=key)
        return constraint.loss(terms), (ok, stats)

    (value, (ok, stats)), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    assert bool(ok) and bool(jnp.all(stats["converged"]))
    leaves = jax.tree.leaves(grad)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    direction = jax.tree.map(
        lambda p, k: jr.normal(k, p.shape, p.dtype),
        params,
        jax.tree.unflatten(jax.tree.structure(params), list(jr.split(getkey(), len(leaves)))),
    )
    h = 1e-6  # The solve makes the loss strongly curved: FD truncation ~h², at 1e-5 ~5e-5.
    shift = lambda s: jax.tree.map(lambda p, d: p + s * h * d, params, direction)
    value_of = jax.jit(lambda p: loss(p)[0])
    fd = (value_of(shift(1.0)) - value_of(shift(-1.0))) / (2 * h)
    ad = sum(jnp.vdot(g, d) for g, d in zip(leaves, jax.tree.leaves(direction)))
    assert jnp.abs(ad) > 1e-6
    np.testing.assert_allclose(ad, fd, rtol=1e-5)
