"""Forward-mode coordinate derivatives against analytic derivatives."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdeopt.discretizations import derivatives
from pdeopt.models import MLP, DeepONet

_ORDERS = {
    "u": (0, 0),
    "u_t": (1, 0),
    "u_x": (0, 1),
    "u_xx": (0, 2),
    "u_tx": (1, 1),
    "u_ttx": (2, 1),
    "u_xxx": (0, 3),
}


def _fn(y):
    """Three outputs of (t, x) with known derivatives."""
    t, x = y
    return jnp.stack([jnp.sin(2 * t) * jnp.cos(3 * x), jnp.exp(t) * x**3, t**2 * x])


def _analytic(t, x):
    s2, c2, s3, c3, e = np.sin(2 * t), np.cos(2 * t), np.sin(3 * x), np.cos(3 * x), np.exp(t)
    zero = np.zeros_like(t)
    return {
        "u": [s2 * c3, e * x**3, t**2 * x],
        "u_t": [2 * c2 * c3, e * x**3, 2 * t * x],
        "u_x": [-3 * s2 * s3, 3 * e * x**2, t**2],
        "u_xx": [-9 * s2 * c3, 6 * e * x, zero],
        "u_tx": [-6 * c2 * s3, 3 * e * x**2, 2 * t],
        "u_ttx": [12 * s2 * s3, 3 * e * x**2, 2 + zero],
        "u_xxx": [27 * s2 * s3, 6 * e + zero, zero],
    }


def test_matches_analytic_on_point_grid():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (4, 5, 2))
    out = eqx.filter_jit(derivatives)(_fn, points, _ORDERS)
    expected = _analytic(points[..., 0], points[..., 1])
    assert set(out) == set(_ORDERS)
    for name, value in out.items():
        assert value.shape == (4, 5, 3) and value.dtype == jnp.float64
        np.testing.assert_allclose(value, np.stack(expected[name], -1), rtol=1e-12, atol=1e-12)


def test_single_hidden_layer_network():
    # u(y) = v · tanh(W y + b): u_x = v · (s W_x), u_xx = v · (-2 tanh s W_x²) with s = sech².
    rng = np.random.default_rng(1)
    w, b, v = rng.standard_normal((6, 2)), rng.standard_normal(6), rng.standard_normal(6)
    points = rng.uniform(-1, 1, (7, 2))
    fn = lambda y: jnp.dot(v, jnp.tanh(w @ y + b))
    out = eqx.filter_jit(derivatives)(fn, points, {"u_x": (0, 1), "u_xx": (0, 2), "u_t": (1, 0)})
    h = np.tanh(points @ w.T + b)
    s = 1 - h**2
    np.testing.assert_allclose(out["u_x"], (s * w[:, 1]) @ v, rtol=1e-12)
    np.testing.assert_allclose(out["u_t"], (s * w[:, 0]) @ v, rtol=1e-12)
    np.testing.assert_allclose(out["u_xx"], (-2 * h * s * w[:, 1] ** 2) @ v, rtol=1e-12)


def test_basis_outputs_of_models(getkey):
    # Every basis output of a DeepONet trunk (matrix-valued) and an MLP at once, against
    # dense Jacobians and Hessians computed per output.
    rng = np.random.default_rng(2)
    points = rng.uniform(0, 1, (9, 2))
    onet = DeepONet(3, 4, coordinate_channels=2, num_sensors=5, latent=3, key=getkey())
    mlp = MLP(2, 4, width=8, depth=2, activation=jax.nn.gelu, key=getkey())

    @eqx.filter_jit
    def compute(fn):
        out = derivatives(fn, points, {"u": (0, 0), "u_t": (1, 0), "u_xx": (0, 2)})
        return out, jax.vmap(jax.jacfwd(fn))(points), jax.vmap(jax.hessian(fn))(points)

    for fn, shape in [(onet.trunk_basis, (3, 4)), (mlp, (4,))]:
        out, jac, hess = compute(fn)
        assert out["u"].shape == (9, *shape)
        np.testing.assert_allclose(out["u"], jax.vmap(fn)(points), rtol=1e-12)
        np.testing.assert_allclose(out["u_t"], jac[..., 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["u_xx"], hess[..., 1, 1], rtol=1e-10, atol=1e-12)


def test_bad_orders():
    with pytest.raises(ValueError, match="one derivative order per input coordinate"):
        derivatives(_fn, jnp.zeros((3, 2)), {"u_x": (1,)})
    with pytest.raises(ValueError, match="non-negative"):
        derivatives(_fn, jnp.zeros((3, 2)), {"u_x": (0, -1)})
    # The annotation `x: Float[Array, "*points dim"]` rejects it first under jaxtyping's runtime
    # checks (the test run), with a `jaxtyping.TypeCheckError` (a TypeError).
    with pytest.raises((ValueError, TypeError), match="coordinates last|parameter 'x'"):
        derivatives(_fn, jnp.float64(1.0), {"u": (0, 0)})
