"""MLP, modified MLP and Fourier features: forward passes against hand computations, shapes,
dtypes, and gradients against finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_grad_entries

from pdeopt.models import MLP, FourierFeatures, ModifiedMLP, parameter_count

_apply = eqx.filter_jit(lambda model, x: model(x))


def _set(model, **arrays):
    """Replace leaves named by dotted paths, e.g. `layers.0.weight`."""

    def where(path):
        def get(m):
            for part in path.split("."):
                m = m[int(part)] if part.isdigit() else getattr(m, part)
            return m

        return get

    for path, value in arrays.items():
        model = eqx.tree_at(where(path.replace("__", ".")), model, jnp.asarray(value))
    return model


def test_fourier_features_hand_computed(getkey):
    ff = FourierFeatures(2, 2, scale=3.0, key=getkey())
    ff = eqx.tree_at(lambda f: f.matrix, ff, jnp.array([[1.0, 0.0], [0.5, 2.0]]))
    x = jnp.array([0.25, 0.1])
    # B x = (0.25, 0.325): cos(2π 0.25) = 0, sin(2π 0.25) = 1.
    c, s = np.cos(2 * np.pi * 0.325), np.sin(2 * np.pi * 0.325)
    np.testing.assert_allclose(ff(x), [0.0, c, 1.0, s], atol=1e-15)
    # B is fixed: zero gradient; the input gradient is not zero.
    grads = jax.grad(lambda f, x: jnp.sum(f(x) * jnp.arange(1.0, 5.0)), argnums=(0, 1))(ff, x)
    assert jnp.all(grads[0].matrix == 0) and jnp.max(jnp.abs(grads[1])) > 1
    # Scale: entries drawn from N(0, scale²).
    big = FourierFeatures(4, 500, scale=3.0, key=getkey())
    assert big.matrix.shape == (500, 4)
    assert 2.8 < float(jnp.std(big.matrix)) < 3.2


@pytest.mark.parametrize("activation", [jnp.tanh, jax.nn.gelu, jax.nn.silu, jnp.sin])
def test_mlp_hand_set_weights(activation, getkey):
    # in 2 -> 4 Fourier features -> width 2 -> width 2 -> out 1, with a final activation.
    model = MLP(
        2,
        1,
        width=2,
        depth=2,
        activation=activation,
        final_activation=jnp.tanh,
        num_fourier_features=2,
        key=getkey(),
    )
    b = np.array([[0.5, -1.0], [0.25, 0.75]])
    w1, b1 = np.arange(8.0).reshape(4, 2) / 10 - 0.3, np.array([0.1, -0.2])
    w2, b2 = np.array([[1.0, -0.5], [0.3, 0.8]]), np.array([0.05, 0.0])
    w3, b3 = np.array([[0.7], [-1.1]]), np.array([0.2])
    model = _set(
        model,
        embedding__matrix=b,
        layers__0__weight=w1,
        layers__0__bias=b1,
        layers__1__weight=w2,
        layers__1__bias=b2,
        output__weight=w3,
        output__bias=b3,
    )
    x = np.array([0.3, -0.6])
    phi = lambda v: np.asarray(activation(v))
    e = np.concatenate([np.cos(2 * np.pi * b @ x), np.sin(2 * np.pi * b @ x)])
    expected = np.tanh(phi(phi(e @ w1 + b1) @ w2 + b2) @ w3 + b3)
    np.testing.assert_allclose(_apply(model, x), expected, rtol=1e-13)


def test_modified_mlp_hand_set_weights(getkey):
    # in 1, width 2, depth 3 (two gated layers), out 1: the paper's equations by hand.
    model = ModifiedMLP(1, 1, width=2, depth=3, key=getkey())
    w_u, b_u = np.array([[0.5, -0.4]]), np.array([0.1, 0.2])
    w_v, b_v = np.array([[-0.3, 0.9]]), np.array([0.0, -0.1])
    w_z1, b_z1 = np.array([[1.2, 0.7]]), np.array([-0.2, 0.3])
    w_z2, b_z2 = np.array([[0.4, -0.6], [0.8, 0.1]]), np.array([0.05, -0.05])
    w_z3, b_z3 = np.array([[-0.5, 0.2], [0.3, 0.9]]), np.array([0.0, 0.1])
    w, b = np.array([[1.5], [-0.7]]), np.array([0.25])
    model = _set(
        model,
        encoder_u__weight=w_u,
        encoder_u__bias=b_u,
        encoder_v__weight=w_v,
        encoder_v__bias=b_v,
        layers__0__weight=w_z1,
        layers__0__bias=b_z1,
        layers__1__weight=w_z2,
        layers__1__bias=b_z2,
        layers__2__weight=w_z3,
        layers__2__bias=b_z3,
        output__weight=w,
        output__bias=b,
    )
    x = np.array([0.7])
    u, v = np.tanh(x @ w_u + b_u), np.tanh(x @ w_v + b_v)
    h = np.tanh(x @ w_z1 + b_z1)
    z = np.tanh(h @ w_z2 + b_z2)
    h = (1 - z) * u + z * v
    z = np.tanh(h @ w_z3 + b_z3)
    h = (1 - z) * u + z * v
    np.testing.assert_allclose(_apply(model, x), h @ w + b, rtol=1e-13)


@pytest.mark.parametrize("cls,features", [(MLP, 3), (ModifiedMLP, 0)])
def test_shapes_dtypes_pointwise(cls, features, getkey):
    model = cls(
        3, 2, width=8, depth=2, num_fourier_features=features, dtype="float32", key=getkey()
    )
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    assert all(leaf.dtype == jnp.float32 for leaf in leaves)
    x = np.random.default_rng(0).standard_normal((5, 4, 3))  # a (t, x) grid of 3 channels
    out = _apply(model, x)
    assert out.shape == (5, 4, 2) and out.dtype == jnp.float32
    # Pointwise: the same as the model on each point, and on a flat point set.
    np.testing.assert_allclose(out[2, 1], _apply(model, x[2, 1]), rtol=1e-6)
    np.testing.assert_allclose(out.reshape(20, 2), _apply(model, x.reshape(20, 3)), rtol=1e-6)
    # Batched samples with vmap: a separately compiled float32 program (other fusion, FMA), so
    # float32 round-off, ~1e-7 of the O(1) outputs, not a relative 1e-6 of small entries.
    batched = eqx.filter_jit(jax.vmap(model))(np.stack([x, 2 * x]))
    np.testing.assert_allclose(batched[0], out, rtol=1e-5, atol=1e-6)
    default = cls(3, 2, width=8, depth=2, num_fourier_features=features, key=getkey())
    assert _apply(default, x).dtype == jnp.float64  # x64 is on in conftest


@pytest.mark.parametrize("cls", [MLP, ModifiedMLP])
def test_grad_matches_finite_differences(cls, getkey):
    model = cls(
        2, 3, width=6, depth=3, activation=jax.nn.gelu, num_fourier_features=2, key=getkey()
    )
    x = np.random.default_rng(1).uniform(0, 1, (7, 2))

    @eqx.filter_jit
    def loss(model):
        return jnp.sum(jnp.sin(model(x)))

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model)
    wheres = [
        lambda m: m.layers[1].weight,
        lambda m: m.layers[0].bias,
        lambda m: m.output.weight,
    ]
    check_grad_entries(loss, model, grads, wheres)
    assert jnp.all(grads.embedding.matrix == 0)


def test_parameter_count(getkey):
    i, o, w, d, m = 3, 2, 8, 2, 3  # the architectures of the test above
    plain = (i * w + w) + (d - 1) * (w * w + w) + (w * o + o)
    assert parameter_count(MLP(i, o, w, d, key=getkey())) == plain
    # The fixed Fourier matrix is an array leaf and is counted (m x i entries).
    with_ff = plain - i * w + 2 * m * w + m * i
    assert parameter_count(MLP(i, o, w, d, num_fourier_features=m, key=getkey())) == with_ff
    assert parameter_count(ModifiedMLP(i, o, w, d, key=getkey())) == plain + 2 * (i * w + w)


def test_initialisation(getkey):
    model = MLP(200, 1, width=300, depth=1, key=getkey())
    assert jnp.all(model.layers[0].bias == 0)
    std = float(jnp.std(model.layers[0].weight))
    assert abs(std - np.sqrt(2 / 500)) < 0.05 * np.sqrt(2 / 500)  # Glorot normal


def test_bad_arguments_and_inputs(getkey):
    with pytest.raises(ValueError, match="width"):
        MLP(2, 1, width=0, key=getkey())
    with pytest.raises(ValueError, match="depth"):
        ModifiedMLP(2, 1, depth=0, key=getkey())
    with pytest.raises(ValueError, match="num_fourier_features"):
        MLP(2, 1, num_fourier_features=-1, key=getkey())
    with pytest.raises(ValueError, match="scale > 0"):
        MLP(2, 1, num_fourier_features=2, fourier_scale=0.0, key=getkey())
    with pytest.raises(ValueError, match="dtype"):
        MLP(2, 1, dtype=jnp.int32, key=getkey())
    model = MLP(3, 1, width=4, depth=1, key=getkey())
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\) \(channels last\); got shape \(4, 2\)"):
        model(jnp.ones((4, 2)))
