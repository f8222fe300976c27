import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import check_grad_entries

from pdeopt.models import FNO, SpectralConv, _fno, parameter_count

_GRIDS = {1: (16,), 2: (8, 10), 3: (6, 7, 8)}
_MODES = {1: (5,), 2: (3, 4), 3: (2, 3, 2)}


# Eager JAX compiles every op for every new shape, which dominates the run time of tests this
# small: call models through one jit, and draw test inputs with NumPy.
_apply = eqx.filter_jit(lambda model, x: model(x))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _small_fno(d, key, **kwargs):
    kwargs = dict(depth=2, projection_channels=8) | kwargs
    return FNO(3, 2, 4, _MODES[d], key=key, **kwargs)


def _reference_spectral_conv(conv, x):
    """The reference FNO's corner-by-corner spectral convolution: full rfftn, one complex
    einsum per corner of the retained region, full irfftn. Valid when n >= 2 m on every
    axis."""
    d = len(conv.modes)
    spatial = x.shape[1:]
    weight = np.asarray(conv.weight_real) + 1j * np.asarray(conv.weight_imag)
    x_ft = np.fft.rfftn(np.asarray(x), axes=tuple(range(1, d + 1)))
    out_ft = np.zeros((conv.out_channels,) + x_ft.shape[1:], complex)
    for corner in itertools.product((False, True), repeat=d - 1):
        index, windex = [], []
        for negative, m in zip(corner, conv.modes[:-1], strict=True):
            index.append(slice(-m, None) if negative else slice(0, m))
            windex.append(slice(m, 2 * m) if negative else slice(0, m))
        index.append(slice(0, conv.modes[-1]))
        windex.append(slice(0, conv.modes[-1]))
        block = x_ft[(slice(None), *index)]
        w = weight[(*windex, slice(None), slice(None))]
        out_ft[(slice(None), *index)] = np.einsum("i...,...oi->o...", block, w)
    return np.fft.irfftn(out_ft, s=spatial, axes=tuple(range(1, d + 1)))


@pytest.fixture(params=["fft", "dense"])
def transform(request, monkeypatch):
    """Runs a test with the last axis's truncated DFT as an FFT and as a matmul. Call models
    through a fresh `jit` there: the path is chosen at trace time."""
    monkeypatch.setattr(_fno, "_DENSE_DFT_FACTOR", 0.0 if request.param == "fft" else 1e9)
    return request.param


@pytest.mark.parametrize("d", [1, 2, 3])
def test_spectral_conv_matches_reference(d, transform, getkey, rng):
    conv = SpectralConv(3, 2, _MODES[d], key=getkey())
    x = rng.standard_normal((3, *_GRIDS[d]))
    out = eqx.filter_jit(lambda conv, x: conv(x))(conv, x)
    assert out.shape == (2, *_GRIDS[d])
    np.testing.assert_allclose(out, _reference_spectral_conv(conv, x), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n, m", [(8, 5), (7, 4), (9, 6), (16, 5), (2, 3), (1, 2)])
def test_dense_transform_equals_fft(n, m, monkeypatch, getkey, rng):
    """The matmul DFT of the last axis equals the FFT path, also where the retained modes
    reach the Nyquist mode (even n), on odd n, and where the grid has fewer modes than `m`."""
    conv = SpectralConv(3, 2, (3, m), key=getkey())
    x = rng.standard_normal((3, 6, n))
    outs = []
    for factor in (0.0, 1e9):
        monkeypatch.setattr(_fno, "_DENSE_DFT_FACTOR", factor)
        outs.append(eqx.filter_jit(lambda conv, x: conv(x))(conv, x))
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=1e-12)
    assert float(jnp.abs(outs[0]).max()) > 1e-3


@pytest.mark.parametrize(
    "modes, coarse",
    [
        ((4,), (10,)),
        ((3, 4), (8, 10)),
        # Fewer frequencies on the coarse grid than `modes`: the weights are clipped.
        ((6, 6), (8, 8)),
        ((5, 4), (7, 8)),  # odd length: three negative and four non-negative frequencies
        ((2, 3, 2), (6, 6, 4)),
    ],
)
def test_spectral_conv_discretisation_invariance(modes, coarse, transform, getkey, rng):
    # A real periodic input whose frequencies are all retained and below every Nyquist
    # frequency of the coarse grid, sampled at n and 2n.
    d = len(modes)
    conv = SpectralConv(2, 3, modes, key=getkey())
    kmax = tuple(
        min(3, m - 1, (n - 1) // 2) for m, n in zip(modes[:-1], coarse[:-1], strict=True)
    ) + (min(2, modes[-1] - 1, (coarse[-1] - 1) // 2),)
    freqs = list(itertools.product(*(range(-k, k + 1) for k in kmax)))
    amplitude = rng.standard_normal((2, len(freqs)))
    phase = rng.uniform(0, 2 * np.pi, (2, len(freqs)))

    def sample(shape):
        grid = np.meshgrid(*(np.arange(n) / n for n in shape), indexing="ij")
        arg = sum(k[:, None] * g.reshape(-1) for k, g in zip(np.array(freqs).T, grid, strict=True))
        u = amplitude[..., None] * np.cos(2 * np.pi * arg[None] + phase[..., None])
        return u.sum(1).reshape(2, *shape)

    fine = tuple(2 * n for n in coarse)
    apply = eqx.filter_jit(lambda conv, x: conv(x))
    out_coarse = apply(conv, sample(coarse))
    out_fine = apply(conv, sample(fine))
    assert out_fine.shape == (3, *fine)
    np.testing.assert_allclose(
        out_fine[(slice(None),) + (slice(None, None, 2),) * d], out_coarse, rtol=0, atol=1e-10
    )
    # Not trivially zero.
    assert jnp.max(jnp.abs(out_coarse)) > 1e-2


@pytest.mark.parametrize("d", [1, 2, 3])
def test_fno_shapes_and_dtypes(d, getkey, rng):
    # float32 parameters (x64 is on, so not the default); float64 input is cast to float32.
    model = _small_fno(d, getkey(), dtype=jnp.float32)
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    assert all(leaf.dtype == jnp.float32 for leaf in leaves)
    x = rng.standard_normal((*_GRIDS[d], 3))
    out = _apply(model, x)
    assert out.shape == (*_GRIDS[d], 2)
    assert out.dtype == jnp.float32
    assert jnp.all(jnp.isfinite(out))
    # A 2x finer grid with the same weights.
    fine = _apply(model, rng.standard_normal((*(2 * n for n in _GRIDS[d]), 3)))
    assert fine.shape == (*(2 * n for n in _GRIDS[d]), 2)
    assert jnp.all(jnp.isfinite(fine))


def test_fno_default_dtype(getkey, rng):
    model = _small_fno(2, getkey())
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
    assert all(leaf.dtype == jnp.float64 for leaf in leaves)  # x64 is on in conftest
    assert _apply(model, rng.standard_normal((*_GRIDS[2], 3))).dtype == jnp.float64


def test_fno_jit_vmap(getkey, rng):
    model = _small_fno(2, getkey(), lifting_channels=5)
    xs = rng.standard_normal((3, *_GRIDS[2], 3))
    batched = eqx.filter_jit(jax.vmap(model))(xs)
    assert batched.shape == (3, *_GRIDS[2], 2)
    for x, out in zip(xs, batched, strict=True):
        np.testing.assert_allclose(out, _apply(model, x), rtol=1e-12, atol=1e-12)


def test_fno_batching_and_differentiation_rules(getkey, rng):
    """The pointwise layers' custom batching rule: gradients of a batched loss are the sums of
    per-sample gradients, per-sample gradients and JVPs work, a vmapped ensemble (batched
    weights) and nested vmaps equal loops."""
    model = _small_fno(1, getkey())
    xs = rng.standard_normal((3, *_GRIDS[1], 3))

    def loss(model, x):
        return jnp.sum(jnp.sin(model(x)))

    batched = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(jax.vmap(lambda x: loss(m, x))(xs))))
    per_sample = eqx.filter_jit(eqx.filter_vmap(eqx.filter_grad(loss), in_axes=(None, 0)))(
        model, xs
    )
    total = jax.tree_util.tree_map(lambda g: g.sum(0), per_sample)
    for a, b in zip(jax.tree_util.tree_leaves(batched(model)), jax.tree_util.tree_leaves(total)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    # Forward mode on the unbatched model, against central differences.
    dx = rng.standard_normal(xs.shape[1:])
    _, tangent = eqx.filter_jit(lambda m, x, dx: jax.jvp(m, (x,), (dx,)))(model, xs[0], dx)
    eps = 1e-6
    fd = (_apply(model, xs[0] + eps * dx) - _apply(model, xs[0] - eps * dx)) / (2 * eps)
    np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-8)

    # An ensemble of models vmapped over their weights, and a vmap over a vmap.
    keys = jax.random.split(getkey(), 2)
    ensemble = eqx.filter_vmap(lambda k: _small_fno(1, k))(keys)
    stacked = eqx.filter_jit(eqx.filter_vmap(lambda m, x: m(x)))(ensemble, xs[:2])
    for i, key in enumerate(keys):
        np.testing.assert_allclose(stacked[i], _apply(_small_fno(1, key), xs[i]), atol=1e-12)
    nested = eqx.filter_jit(jax.vmap(jax.vmap(model)))(xs.reshape(3, 1, *xs.shape[1:]))
    for x, out in zip(xs, nested[:, 0], strict=True):
        np.testing.assert_allclose(out, _apply(model, x), rtol=1e-12, atol=1e-12)


def test_fno_grad_and_finite_differences(getkey, rng):
    model = _small_fno(2, getkey(), padding=2)
    x = rng.standard_normal((*_GRIDS[2], 3))

    @eqx.filter_jit
    def loss(model):
        return jnp.sum(jnp.sin(model(x)))

    grads = eqx.filter_jit(eqx.filter_grad(loss))(model)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_array))
    assert len(leaves) == len(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
    for leaf in leaves:
        assert jnp.all(jnp.isfinite(leaf))
        assert jnp.max(jnp.abs(leaf)) > 0

    wheres = [lambda m: m.spectral[0].weight_imag, lambda m: m.skips[1].weight]
    check_grad_entries(loss, model, grads, wheres)


def test_fno_matches_reference(getkey, rng):
    # The whole forward pass in NumPy from the model's weights: two-layer lift, padding, Fourier
    # layers with no activation after the last, unpadding, projection, final activation.
    model = _small_fno(
        2, getkey(), depth=3, lifting_channels=5, padding=(2, 0), final_activation=jnp.tanh
    )
    x = rng.standard_normal((*_GRIDS[2], 3))

    def pointwise(layer, v):
        return np.einsum("oi,i...->o...", layer.weight, v) + layer.bias[:, None, None]

    act = lambda v: np.asarray(model.activation(v))
    v = np.moveaxis(x, -1, 0)
    v = pointwise(model.lifting[1], act(pointwise(model.lifting[0], v)))
    v = np.pad(v, [(0, 0), (0, 2), (0, 0)])
    for i, (conv, skip) in enumerate(zip(model.spectral, model.skips, strict=True)):
        v = _reference_spectral_conv(conv, v) + pointwise(skip, v)
        v = act(v) if i < 2 else v
    v = v[:, : _GRIDS[2][0]]
    v = np.tanh(pointwise(model.projection[1], act(pointwise(model.projection[0], v))))
    np.testing.assert_allclose(_apply(model, x), np.moveaxis(v, 0, -1), rtol=1e-10, atol=1e-12)


def test_fno_final_activation(getkey, rng):
    key = getkey()
    x = rng.standard_normal((*_GRIDS[2], 3))
    plain = _apply(_small_fno(2, key), x)
    gelu = _apply(_small_fno(2, key, final_activation=jax.nn.gelu), x)
    np.testing.assert_allclose(gelu, jax.nn.gelu(plain), rtol=1e-12, atol=1e-12)
    assert jnp.max(jnp.abs(gelu - plain)) > 1e-3


def test_fno_padding(getkey, rng):
    key = getkey()
    x = rng.standard_normal((*_GRIDS[2], 3))
    out = _apply(_small_fno(2, key), x)
    out_int = _apply(_small_fno(2, key, padding=3), x)
    out_axis = _apply(_small_fno(2, key, padding=(0, 3)), x)
    for padded in (out_int, out_axis):
        assert padded.shape == out.shape
        assert jnp.max(jnp.abs(padded - out)) > 1e-6
    assert jnp.max(jnp.abs(out_int - out_axis)) > 1e-6


def test_parameter_count(getkey):
    in_channels, out_channels, width, modes, depth, proj = 3, 2, 4, (3, 5), 2, 8
    model = FNO(
        in_channels, out_channels, width, modes, depth, projection_channels=proj, key=getkey()
    )
    spectral = depth * 2 * width * width * (2 * modes[0]) * modes[1]
    pointwise = ((in_channels + 1) * width + depth * (width + 1) * width + (width + 1) * proj) + (
        proj + 1
    ) * out_channels
    assert parameter_count(model) == spectral + pointwise
    assert (
        parameter_count({"a": jnp.ones(3, complex), "b": jnp.ones(2), "c": jnp.ones(4, int)}) == 8
    )


def test_bad_arguments(getkey):
    with pytest.raises(ValueError, match="length 4"):
        FNO(3, 2, 4, (2, 2, 2, 2), key=getkey())
    with pytest.raises(ValueError, match="length 0"):
        FNO(3, 2, 4, (), key=getkey())
    with pytest.raises(ValueError, match="modes"):
        FNO(3, 2, 4, (2, 0), key=getkey())
    with pytest.raises(ValueError, match="width"):
        FNO(3, 2, 0, (2, 2), key=getkey())
    with pytest.raises(ValueError, match="depth"):
        FNO(3, 2, 4, (2, 2), depth=0, key=getkey())
    with pytest.raises(ValueError, match="padding"):
        FNO(3, 2, 4, (2, 2), padding=(1, 2, 3), key=getkey())
    with pytest.raises(ValueError, match="padding"):
        FNO(3, 2, 4, (2, 2), padding=-1, key=getkey())
    with pytest.raises(ValueError, match="dtype"):
        FNO(3, 2, 4, (2, 2), dtype=jnp.complex64, key=getkey())
    with pytest.raises(ValueError, match="in_channels"):
        SpectralConv(0, 2, (2,), key=getkey())


def test_bad_inputs(getkey):
    model = _small_fno(2, getkey())
    with pytest.raises(ValueError, match=r"\(n, n, 3\); got shape \(8, 10, 4\)"):
        model(jnp.ones((8, 10, 4)))
    with pytest.raises(ValueError, match="jax.vmap"):
        model(jnp.ones((2, 8, 10, 3)))  # a batch
    with pytest.raises(ValueError, match="expects"):
        eqx.filter_jit(model)(jnp.ones((10, 3)))
    conv = SpectralConv(3, 2, (2, 2), key=getkey())
    with pytest.raises(ValueError, match=r"\(3, n, n\)"):
        conv(jnp.ones((8, 10, 3)))
