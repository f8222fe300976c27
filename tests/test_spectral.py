"""Fourier pseudo-spectral operators: exactness, spectral convergence, identities, transforms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdeopt.discretizations import (
    Axis,
    Grid,
    dealias_mask,
    inverse_laplacian,
    spectral_derivative,
    spectral_gradient,
    spectral_laplacian,
    spectral_resample,
    velocity_from_vorticity,
    wavenumbers,
)

# Periods are deliberately not 1 or 2π.
LENGTHS = (1.7, 0.8, 2.5)


def periodic_grid(shape, centering="vertex"):
    return Grid(
        tuple(
            Axis(n, 0.3, 0.3 + length, periodic=True, centering=centering)
            for n, length in zip(shape, LENGTHS)
        )
    )


def trig(grid, modes):
    """A band-limited field Π_d cos/sin(k_d x_d + phase_d) and its analytic derivatives."""
    x = np.moveaxis(grid.meshgrid(), -1, 0)
    ks = [2 * np.pi * m / (a.hi - a.lo) for m, a in zip(modes, grid.axes)]
    phases = (0.4, -1.1, 0.7)
    factors = [np.cos(k * xd + p) for k, xd, p in zip(ks, x, phases)]
    dfactors = [-k * np.sin(k * xd + p) for k, xd, p in zip(ks, x, phases)]
    u = np.prod(factors, axis=0)
    grads = []
    for d in range(grid.ndim):
        grads.append(np.prod([dfactors[i] if i == d else factors[i] for i in range(grid.ndim)], 0))
    lap = -sum(k**2 for k in ks) * u
    return u, grads, lap


SHAPES = [(16,), (12, 10), (8, 10, 6)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("centering", ["vertex", "cell"])
def test_band_limited_exact(shape, centering):
    grid = periodic_grid(shape, centering)
    modes = (3, 2, 1)[: grid.ndim]
    u, grads, lap = trig(grid, modes)
    for got, want in zip(spectral_gradient(u, grid), grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    np.testing.assert_allclose(spectral_laplacian(u, grid), lap, rtol=0, atol=1e-11)
    for d, axis in enumerate(grid.axes):
        first = spectral_derivative(u, axis, 1, dim=d)
        np.testing.assert_allclose(first, grads[d], rtol=0, atol=1e-11)
        k = 2 * np.pi * modes[d] / (axis.hi - axis.lo)
        third = spectral_derivative(u, axis, 3, dim=d)
        np.testing.assert_allclose(third, -(k**2) * grads[d], rtol=0, atol=1e-9)


def test_batch_dimensions_and_dim():
    """Leading dimensions are batch dimensions; `dim` picks the axis of a 1-D derivative."""
    grid = periodic_grid((12, 10))
    u, grads, lap = trig(grid, (2, 3))
    stack = np.stack([u, 2 * u, -u])
    np.testing.assert_allclose(spectral_laplacian(stack, grid)[1], 2 * lap, atol=1e-11)
    gx, gy = spectral_gradient(stack, grid)
    np.testing.assert_allclose(gy[2], -grads[1], atol=1e-11)
    moved = np.moveaxis(stack, 0, -1)  # (12, 10, 3): differentiate dimension 1 of 3
    np.testing.assert_allclose(
        spectral_derivative(moved, grid.axes[1], 1, dim=1)[..., 2], -grads[1], atol=1e-11
    )


def _error_exp_sin(n, order):
    axis = Axis(n, 0.0, 2 * np.pi, periodic=True)
    x = axis.points
    u = np.exp(np.sin(x))
    exact = {1: np.cos(x) * u, 2: (np.cos(x) ** 2 - np.sin(x)) * u}[order]
    return float(np.max(np.abs(spectral_derivative(u, axis, order) - exact)))


@pytest.mark.parametrize("order", [1, 2])
def test_spectral_convergence(order):
    """exp(sin x) is analytic but not band-limited: the error falls faster than any power."""
    errors = [_error_exp_sin(n, order) for n in (8, 16, 32)]
    assert errors[0] > 1e-4  # not trivially exact
    assert errors[0] / errors[1] > 1e3, errors
    assert errors[2] < 1e-12, errors
    # Faster than any fixed algebraic order: the ratio itself grows under refinement.
    assert errors[1] / max(errors[2], 1e-16) > errors[0] / errors[1]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_inverse_laplacian_round_trip(shape, getkey):
    grid = periodic_grid(shape)
    u = np.asarray(jax.random.normal(getkey(), shape))
    u = u - u.mean()
    psi = inverse_laplacian(u, grid)
    assert abs(float(psi.mean())) < 1e-14
    # Δ(Δ⁻¹ u) = u holds for every mode of u (including even-n Nyquist modes).
    np.testing.assert_allclose(spectral_laplacian(psi, grid), u, atol=1e-11)
    np.testing.assert_allclose(inverse_laplacian(spectral_laplacian(u, grid), grid), u, atol=1e-11)
    # The mean is projected out.
    np.testing.assert_allclose(inverse_laplacian(u + 3.0, grid), psi, atol=1e-12)


def _without_nyquist(u, grid):
    """Drop the Nyquist modes of even axes (first derivatives cannot see them)."""
    u_hat = np.fft.rfftn(u)
    for d, axis in enumerate(grid.axes):
        if axis.n % 2 == 0:
            index = [slice(None)] * grid.ndim
            index[d] = axis.n // 2
            u_hat[tuple(index)] = 0.0
    return np.fft.irfftn(u_hat, s=grid.shape, axes=range(grid.ndim))


def test_velocity_divergence_free_and_curl(getkey):
    grid = periodic_grid((16, 12))
    w = _without_nyquist(np.asarray(jax.random.normal(getkey(), grid.shape)), grid)
    w = w - w.mean()
    vx, vy = velocity_from_vorticity(w, grid)
    dx, dy = grid.axes
    divergence = spectral_derivative(vx, dx, dim=0) + spectral_derivative(vy, dy, dim=1)
    curl = spectral_derivative(vy, dx, dim=0) - spectral_derivative(vx, dy, dim=1)
    assert float(jnp.max(jnp.abs(vx))) > 1e-2
    np.testing.assert_allclose(divergence, 0.0, atol=1e-12)
    np.testing.assert_allclose(curl, w, atol=1e-12)
    # Same as the stream-function route: Δψ = -w, v = (∂_y ψ, -∂_x ψ).
    psi = -inverse_laplacian(w, grid)
    np.testing.assert_allclose(vx, spectral_derivative(psi, dy, dim=1), atol=1e-12)
    np.testing.assert_allclose(vy, -spectral_derivative(psi, dx, dim=0), atol=1e-12)


def test_velocity_of_a_shear_mode():
    """The shear flow v = (sin(k y), 0) has vorticity ∂_x v_y − ∂_y v_x = −k cos(k y)."""
    grid = Grid((Axis(8, 0.0, 1.0, periodic=True), Axis(8, 0.0, 1.0, periodic=True)))
    y = grid.meshgrid()[..., 1]
    k = 2 * np.pi
    vx, vy = velocity_from_vorticity(-k * np.cos(k * y), grid)
    np.testing.assert_allclose(vx, np.sin(k * y), atol=1e-13)
    np.testing.assert_allclose(vy, 0.0, atol=1e-13)


def test_dealias_mask_counts():
    # n = 6: modes 0..3 in rfft layout; |m| < 2 keeps 0 and 1.
    one = dealias_mask(Grid((Axis(6, 0.0, 1.0, periodic=True),)))
    np.testing.assert_array_equal(one, [True, True, False, False])
    # n = 64: |m| < 64/3 keeps |m| <= 21: 43 modes per axis; 22 in the rfft half.
    grid = periodic_grid((64, 64))
    box = dealias_mask(grid)
    assert box.shape == (64, 33)
    assert box.sum() == 43 * 22
    radial = dealias_mask(grid, radial=True)
    m = np.fft.fftfreq(64, 1 / 64)
    m_r = np.fft.rfftfreq(64, 1 / 64)
    want = (m[:, None] ** 2 + m_r[None, :] ** 2) < (64 / 3) ** 2
    np.testing.assert_array_equal(radial, want)
    assert radial.sum() < box.sum() and not radial[21, 21] and box[21, 21]
    # 3-D and a non-default fraction; 1/2 keeps |m| < n/4.
    half = dealias_mask(periodic_grid((8, 8, 8)), 0.5)
    assert half.shape == (8, 8, 5) and half.sum() == 3 * 3 * 2
    with pytest.raises(ValueError, match="fraction"):
        dealias_mask(grid, 1.5)


def test_wavenumbers_layout():
    grid = Grid((Axis(4, 0.0, 2.0, periodic=True), Axis(6, 0.0, 0.5, periodic=True)))
    kx, ky = wavenumbers(grid)
    np.testing.assert_allclose(kx.ravel(), np.pi * np.array([0, 1, -2, -1]))
    np.testing.assert_allclose(ky.ravel(), 4 * np.pi * np.array([0, 1, 2, 3]))
    kx0, ky0 = wavenumbers(grid, nyquist=False)
    np.testing.assert_allclose(kx0.ravel(), np.pi * np.array([0, 1, 0, -1]))
    np.testing.assert_allclose(ky0.ravel(), 4 * np.pi * np.array([0, 1, 2, 0]))


@pytest.mark.parametrize("centering", ["vertex", "cell"])
@pytest.mark.parametrize("shape,new", [((8,), (20,)), ((6, 9), (16, 12)), ((8, 6, 6), (8, 9, 12))])
def test_resample_band_limited_exact(shape, new, centering):
    grid = periodic_grid(shape, centering)
    fine = periodic_grid(new, centering)
    modes = (2, 1, 2)[: grid.ndim]
    u, _, _ = trig(grid, modes)
    want, _, _ = trig(fine, modes)
    np.testing.assert_allclose(spectral_resample(u, grid, new), want, atol=1e-13)
    # Down again: a band-limited field survives the round trip.
    np.testing.assert_allclose(spectral_resample(want, fine, shape), u, atol=1e-13)


def test_resample_nyquist_symmetric():
    """The even-n Nyquist mode (-1)^i interpolates to cos(π n x / L), not to a complex wave."""
    axis = Axis(4, 0.0, 1.0, periodic=True)
    u = np.array([1.0, -1.0, 1.0, -1.0])
    fine = Axis(8, 0.0, 1.0, periodic=True)
    np.testing.assert_allclose(
        spectral_resample(u, Grid((axis,)), (8,)), np.cos(4 * np.pi * fine.points), atol=1e-14
    )


def test_resample_converges_for_smooth_field():
    coarse = Axis(16, 0.0, 1.0, periodic=True)
    fine = Axis(64, 0.0, 1.0, periodic=True)
    f = lambda x: np.exp(np.sin(2 * np.pi * x))
    up = spectral_resample(f(coarse.points), Grid((coarse,)), (64,))
    assert float(np.max(np.abs(up - f(fine.points)))) < 1e-6


def test_transforms_jit_vmap_grad(getkey):
    grid = periodic_grid((8, 6))
    u = jax.random.normal(getkey(), (3, 8, 6))
    lap = jax.jit(spectral_laplacian, static_argnums=1)
    np.testing.assert_allclose(
        jax.vmap(lambda v: lap(v, grid))(u), spectral_laplacian(u, grid), atol=1e-12
    )
    # The operators are linear: the gradient of <a, L u> is L^T a = L a (L symmetric).
    a = jax.random.normal(getkey(), (8, 6))
    g = jax.grad(lambda v: jnp.sum(a * spectral_laplacian(v, grid)))(u[0])
    np.testing.assert_allclose(g, spectral_laplacian(a, grid), atol=1e-11)
    # First derivatives are antisymmetric.
    axis = grid.axes[0]
    g = jax.grad(lambda v: jnp.sum(a * spectral_derivative(v, axis, dim=0)))(u[0])
    np.testing.assert_allclose(g, -spectral_derivative(a, axis, dim=0), atol=1e-11)


def test_float32_stays_float32():
    grid = periodic_grid((8, 8))
    u = jnp.ones((8, 8), jnp.float32)
    assert spectral_laplacian(u, grid).dtype == jnp.float32
    assert velocity_from_vorticity(u, grid)[0].dtype == jnp.float32


def test_misuse_messages():
    grid = Grid((Axis(8, 0.0, 1.0), Axis(8, 0.0, 1.0, periodic=True)))
    with pytest.raises(ValueError, match="periodic=True"):
        spectral_laplacian(np.zeros((8, 8)), grid)
    periodic = periodic_grid((8, 8))
    with pytest.raises(ValueError, match="grid shape"):
        spectral_laplacian(np.zeros((8, 7)), periodic)
    # `w` is annotated 2-D: the runtime checks of the test run raise a TypeError first.
    with pytest.raises((ValueError, TypeError), match="2-D grid|parameter 'w'"):
        velocity_from_vorticity(np.zeros(8), periodic_grid((8,)))
    with pytest.raises(ValueError, match="positive int"):
        spectral_derivative(np.zeros(8), periodic.axes[0], 0)
