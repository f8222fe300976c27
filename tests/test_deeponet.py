"""DeepONet: the operator formula, Cartesian evaluation, the grid adapter, basis mode,
gradients, and a fit of the antiderivative operator."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import check_grad_entries

from pdeopt.models import DeepONet, parameter_count

_apply = eqx.filter_jit(lambda model, x: model(x))


def _small(getkey, **kwargs):
    kwargs = (
        dict(
            coordinate_channels=2,
            num_sensors=6,
            latent=4,
            branch_width=8,
            branch_depth=2,
            trunk_width=8,
            trunk_depth=2,
        )
        | kwargs
    )
    return DeepONet(3, 2, key=getkey(), **kwargs)


def _grid_input(nt, nx, u0):
    t, x = np.meshgrid(np.linspace(0, 1, nt), np.linspace(0, 1, nx), indexing="ij")
    return np.stack([t, x, np.broadcast_to(u0, (nt, nx))], axis=-1)


def test_operator_formula_and_grid_adapter(getkey):
    model = _small(getkey)
    model = eqx.tree_at(lambda m: m.bias, model, jnp.array([0.3, -0.2]))
    u0 = np.random.default_rng(0).standard_normal(6)
    x = _grid_input(5, 6, u0)
    out = _apply(model, x)
    assert out.shape == (5, 6, 2) and out.dtype == jnp.float64
    # G(u)(y)_n = Σ_k b_kn(u) t_kn(y) + β_n with the branch on u0 and the trunk on (t, x).
    b = np.asarray(model.branch(u0)).reshape(4, 2)
    t = np.asarray(model.trunk(x[..., :2])).reshape(5, 6, 4, 2)
    np.testing.assert_allclose(out, np.einsum("kn,tskn->tsn", b, t) + [0.3, -0.2], rtol=1e-12)
    np.testing.assert_allclose(out, model.operator(u0, x[..., :2]), rtol=1e-12)


def test_cartesian_matches_per_input(getkey):
    model = _small(getkey, dtype=jnp.float32)
    rng = np.random.default_rng(1)
    us, ys = rng.standard_normal((3, 6)), rng.uniform(0, 1, (10, 2))
    out = eqx.filter_jit(lambda m: m.cartesian(us, ys))(model)
    assert out.shape == (3, 10, 2) and out.dtype == jnp.float32
    per_input = eqx.filter_jit(lambda m: jax.vmap(m.operator, in_axes=(0, None))(us, ys))(model)
    np.testing.assert_allclose(out, per_input, rtol=1e-5, atol=1e-6)
    # A batch of grid samples with vmap.
    grids = np.stack([_grid_input(4, 6, u) for u in us])
    batched = eqx.filter_jit(jax.vmap(model))(grids)
    assert batched.shape == (3, 4, 6, 2)
    np.testing.assert_allclose(batched[1], _apply(model, grids[1]), rtol=1e-5, atol=1e-6)


def test_basis_mode(getkey):
    model = _small(getkey, basis=True, num_sensors=None, trunk_final_activation=jax.nn.gelu)
    assert model.branch is None
    x = _grid_input(5, 6, np.ones(6))
    basis = _apply(model, x)
    assert basis.shape == (5, 6, 2)
    # The final activation is applied to the trunk's outputs.
    linear = eqx.tree_at(lambda m: m.trunk.final_activation, model, lambda v: v)
    np.testing.assert_allclose(basis, jax.nn.gelu(_apply(linear, x)), rtol=1e-12)
    np.testing.assert_allclose(basis, model.trunk_basis(x[..., :2]), rtol=1e-12)
    # The basis does not depend on the condition channel.
    np.testing.assert_allclose(basis, _apply(model, _grid_input(5, 6, -3 * np.ones(6))), rtol=0)
    assert model.trunk_basis(np.zeros(2)).shape == (2,)
    assert _small(getkey).trunk_basis(np.zeros((7, 2))).shape == (7, 4, 2)


def test_grad_matches_finite_differences(getkey):
    model = _small(getkey)
    x = _grid_input(4, 6, np.random.default_rng(2).standard_normal(6))

    @eqx.filter_jit
    def loss(model):
        return jnp.sum(jnp.sin(model(x)))

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model)
    wheres = [lambda m: m.branch.layers[0].weight, lambda m: m.trunk.output.weight]
    check_grad_entries(loss, model, grads, wheres)


def test_parameter_count(getkey):
    def mlp(i, w, d, o):
        return (i * w + w) + (d - 1) * (w * w + w) + (w * o + o)

    assert parameter_count(_small(getkey)) == mlp(6, 8, 2, 8) + mlp(2, 8, 2, 8) + 2
    basis = _small(getkey, basis=True)
    assert parameter_count(basis) == mlp(2, 8, 2, 2) + 2


def test_bad_arguments_and_inputs(getkey):
    with pytest.raises(ValueError, match="num_sensors"):
        _small(getkey, num_sensors=None)
    with pytest.raises(ValueError, match="coordinate_channels < in_channels"):
        _small(getkey, coordinate_channels=3)
    with pytest.raises(ValueError, match="latent"):
        _small(getkey, latent=0)
    model = _small(getkey)
    with pytest.raises(ValueError, match=r"set `num_sensors=7`"):
        model(_grid_input(4, 7, np.ones(7)))
    with pytest.raises(ValueError, match="single grid sample"):
        model(np.ones((4, 6, 2)))
    with pytest.raises(ValueError, match="sensor values"):
        model.branch_coefficients(np.ones(5))


def _antiderivative_data(rng, n, y):
    """u = c + Σ_k a_k sin(kπy) + b_k cos(kπy), k = 1..4, amplitudes ~ 1/k, and its exact
    antiderivative G(u)(y) = ∫_0^y u."""
    k = np.arange(1, 5)[:, None]
    a, b = rng.standard_normal((n, 4, 1)) / k, rng.standard_normal((n, 4, 1)) / k
    c = rng.standard_normal((n, 1))
    u = c + (a * np.sin(np.pi * k * y)).sum(1) + (b * np.cos(np.pi * k * y)).sum(1)
    g = c * y + (a * (1 - np.cos(np.pi * k * y)) / (np.pi * k)).sum(1)
    g = g + (b * np.sin(np.pi * k * y) / (np.pi * k)).sum(1)
    return u.astype(np.float32), g[..., None].astype(np.float32)


def test_fits_antiderivative_operator(getkey):
    # 200 training functions at 32 sensors = 32 query points on [0, 1]; full-batch Adam,
    # 1000 steps in one lax.scan; relative L2 error on 50 held-out functions below 12 %
    # (0.082 measured). About 10 s on a 2-core CPU.
    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, 32)
    u_train, g_train = _antiderivative_data(rng, 200, y)
    u_test, g_test = _antiderivative_data(rng, 50, y)
    model = DeepONet(
        2,
        1,
        coordinate_channels=1,
        num_sensors=32,
        latent=32,
        branch_width=40,
        branch_depth=2,
        trunk_width=40,
        trunk_depth=2,
        dtype=jnp.float32,
        key=getkey(),
    )
    optimizer = optax.adam(1e-3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    points = y[:, None].astype(np.float32)

    def error(params, u, g):
        pred = eqx.combine(params, static).cartesian(u, points)
        return jnp.linalg.norm(pred - g) / jnp.linalg.norm(g)

    @jax.jit
    def train(params):
        def step(carry, _):
            params, state = carry
            loss = lambda p: jnp.mean(
                (eqx.combine(p, static).cartesian(u_train, points) - g_train) ** 2
            )
            grads = jax.grad(loss)(params)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=1000)
        return params

    assert float(error(params, u_test, g_test)) > 0.5
    trained = train(params)
    assert float(error(trained, u_test, g_test)) < 0.12
