"""PI-HC with coordinate-model bases: quantities from the `Autodiff` source of a PDE."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optimistix as optx
import pytest

from pdeopt.constraints import (
    AbstractPDE,
    Autodiff,
    HardConstraint,
    SoftConstraint,
    initial_condition,
)
from pdeopt.discretizations import Axis, Grid
from pdeopt.models import MLP, AutodiffBasis, DeepONet, autodiff_basis
from problems.burgers import Burgers
from problems.diffusion_sorption import DiffusionSorption

TIGHT = optx.LevenbergMarquardt(rtol=1e-12, atol=1e-14)
ORDERS = ((0, 0), (1, 0), (0, 1), (0, 2))  # u, ∂t, ∂x, ∂xx on (t, x): `_known_derivatives`
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


class _AtCondition(eqx.Module):
    """A model of (t, x, c) evaluated at a fixed c: `Autodiff`'s input is the coordinates."""

    model: eqx.Module
    c: float = 1.0

    def __call__(self, z):
        c = jnp.full((*z.shape[:-1], 1), self.c, z.dtype)
        return self.model(jnp.concatenate([z, c], axis=-1))


class _Heat(AbstractPDE):
    """u_t = κ u_xx on [0, 1] × [0, 1) (x periodic), IC rows; `Autodiff` adds the periodic rows."""

    nt: int = eqx.field(static=True, default=9)
    nx: int = eqx.field(static=True, default=16)
    derivatives: Autodiff = Autodiff()

    quantities: ClassVar = {"u_t": (1, 0), "u_xx": (0, 2)}

    @property
    def grid(self) -> Grid:
        return Grid((Axis(self.nt, 0.0, 1.0), Axis(self.nx, 0.0, 1.0, periodic=True)))

    def interior_residual(self, q, condition):
        return q["u_t"] - KAPPA * q["u_xx"]

    @property
    def blocks(self):
        return (initial_condition(),)


def test_hard_constraint_recovers_exact_solution_in_autodiff_basis(getkey):
    """Output 0 of `_Known` is the exact heat solution for u0 = sin 2πx; PI-HC finds it."""
    pde = _Heat()
    assert pde.block_names() == ("pde", "ic", "periodic")
    condition = jnp.sin(2 * jnp.pi * jnp.arange(pde.nx) / pde.nx)
    model = AutodiffBasis(_AtCondition(_Known()), **pde.derivatives.model_options(pde))
    weights = {"pde": 1.0, "ic": 1.0, "periodic": 1.0}
    constraint = HardConstraint(
        num_basis=3,
        num_points=60,
        row_weights=weights,
        loss_weights=weights,
        ridge=1e-8,
        solver=TIGHT,
        max_steps=200,
    )
    output = eqx.filter_jit(model)(pde.inputs(condition))

    @eqx.filter_jit
    def run(output, keys):  # one compilation for the three entry points
        u, stats = constraint(pde, output, condition, key=keys[0])
        report = constraint.report(pde, output, condition, key=keys[1])
        return u, stats, report, constraint.loss_terms(pde, output, condition, key=keys[2])

    u, stats, report, (terms, ok, _) = run(output, jnp.stack([getkey() for _ in range(3)]))
    assert bool(jnp.all(stats.converged))
    t = np.linspace(0.0, 1.0, pde.nt)[:, None]
    exact = np.exp(-4 * np.pi**2 * KAPPA * t) * np.asarray(condition)[None]
    np.testing.assert_allclose(u, exact, rtol=0, atol=1e-8)
    assert report["pde_rms_heldout"] < 1e-8 and report["ic_rms"] < 1e-8
    assert report["periodic_rms"] < 1e-8
    assert bool(ok) and terms["pde"] < 1e-16 and terms["ic"] < 1e-16
    assert terms["periodic"] < 1e-16


def _burgers_setup(getkey):
    pde = Burgers(nx=8, nt=5, viscosity=0.1, t_final=0.5, derivatives=Autodiff())
    x = np.asarray(pde.coordinates()[1])
    condition = jnp.asarray(0.5 * np.sin(2 * np.pi * x))
    model = autodiff_basis(
        pde.inputs(condition).shape[-1],
        4,
        model=lambda **kw: DeepONet(
            coordinate_channels=2, basis=True, trunk_width=8, trunk_depth=2, dtype=jnp.float64, **kw
        ),
        **pde.derivatives.model_options(pde),
        key=getkey(),
    )
    constraint = HardConstraint(
        num_basis=4,
        num_points=30,
        row_weights={"pde": 1.0, "ic": 20.0, "periodic": 1.0},
        ridge=1e-3,
        # The rows cannot all vanish (|r| ≈ 5.6): Levenberg–Marquardt at these tolerances then
        # stalls at round-off for some perturbations of the model (every trial step rejected,
        # max_steps reached), which skips the sample; undamped Gauss–Newton converges (linearly,
        # ~23 steps) to the same ω and terminates reliably.
        solver=optx.GaussNewton(rtol=1e-12, atol=1e-14),
        max_steps=300,
    )
    return pde, condition, model, constraint


def test_burgers_autodiff_rows(getkey):
    """Input layout (grid, IC face, periodic faces), the quantities and traces read from the
    model's output, and the rows: `ic`, and the "periodic" value and slope jumps."""
    pde, condition, model, constraint = _burgers_setup(getkey)
    assert Burgers(nx=8, nt=5).block_names() == ("pde", "ic")  # on the grid: periodic built in
    assert pde.block_names() == ("pde", "ic", "periodic")
    nt, nx, size = 5, 8, 40
    inputs = pde.inputs(condition)
    # Normalised coordinates (t/T, x) only, no condition channel: the grid points; the IC face;
    # per periodic row block (value, then slope) the faces x = 0 and x = 1.
    assert inputs.shape == (size + nx + 2 * 2 * nt, 2)
    grid = pde.grid_inputs(condition)[..., :2].reshape(size, 2)
    np.testing.assert_allclose(inputs[:size], grid)
    t, x = pde.coordinates()
    tau = t / pde.t_final
    np.testing.assert_allclose(inputs[size : size + nx], np.stack([0 * x, x], -1))
    for start in (size + nx, size + nx + 2 * nt):
        np.testing.assert_allclose(inputs[start : start + nt], np.stack([tau, 0 * tau], -1))
        faces = inputs[start + nt : start + 2 * nt]
        np.testing.assert_allclose(faces, np.stack([tau, 0 * tau + 1], -1))

    output = eqx.filter_jit(model)(inputs)
    orders = pde.derivatives.orders(pde)
    assert sorted(orders) == sorted(ORDERS) and orders[0] == (0, 0)
    assert output.shape == (len(inputs), 4 * 4)
    jet = output.reshape(-1, 4, 4)
    column = {a: jet[:, k] for k, a in enumerate(orders)}
    basis = pde.derivatives.basis(pde, output, condition)
    assert basis.num_basis == 4
    on_grid = lambda a: column[a][:size].reshape(nt, nx, 4)
    np.testing.assert_array_equal(basis.fields[..., :4], on_grid((0, 0)))
    np.testing.assert_array_equal(basis.fields[..., 4], 0.0)  # the offset column (no ansatz)
    np.testing.assert_allclose(basis.interior["u_t"][..., :4], on_grid((1, 0)) / pde.t_final)
    np.testing.assert_allclose(basis.interior["u_x"][..., :4], on_grid((0, 1)))
    np.testing.assert_allclose(basis.interior["u_xx"][..., :4], on_grid((0, 2)))
    ic, value_jump, slope_jump = basis.traces
    assert ic.shape == (1, nx, 5) and value_jump.shape == slope_jump.shape == (1, nt, 5)
    np.testing.assert_array_equal(ic[0, :, :4], column[(0, 0)][size : size + nx])
    lo, hi = size + nx, size + nx + nt
    np.testing.assert_allclose(
        value_jump[0, :, :4], column[(0, 0)][lo : lo + nt] - column[(0, 0)][hi : hi + nt]
    )
    lo, hi = lo + 2 * nt, hi + 2 * nt
    np.testing.assert_allclose(
        slope_jump[0, :, :4], column[(0, 1)][lo : lo + nt] - column[(0, 1)][hi : hi + nt]
    )
    blocks = pde.residual_blocks()
    shapes = [(b.name, b.locations(pde.grid).shape[:-1]) for b in blocks]
    assert shapes == [("ic", (nx,)), ("periodic", (nt,)), ("periodic", (nt,))]
    w = jnp.array([0.5, -1.0, 2.0, 0.3, 1.0])
    rows = [
        b.residual(trace @ w, condition, jnp.asarray(b.coordinates(pde.grid)))
        for b, trace in zip(blocks, basis.traces)
    ]
    np.testing.assert_allclose(rows[0], ic[0] @ w - condition)
    np.testing.assert_allclose(rows[1], value_jump[0] @ w)
    np.testing.assert_allclose(rows[2], slope_jump[0] @ w)
    # A grid field carries no derivatives: the grid operations refuse, saying what to use.
    with pytest.raises(TypeError, match="hard or soft constraint layers"):
        pde.residuals(basis.fields[..., 0], condition)
    with pytest.raises(TypeError, match="grid field"):
        Autodiff().apply(pde.grid, basis.fields[..., 0], pde.quantities)
    with pytest.raises(ValueError, match="AutodiffBasis"):
        pde.derivatives.basis(pde, output[:size], condition)


def test_implicit_gradient_through_autodiff_basis_matches_finite_differences(getkey):
    pde, condition, model, constraint = _burgers_setup(getkey)
    key = getkey()
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(params):
        output = eqx.combine(params, static)(pde.inputs(condition))
        terms, ok, stats = constraint.loss_terms(pde, output, condition, key=key)
        return constraint.loss(terms), (ok, stats)

    (value, (ok, stats)), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    assert bool(ok) and bool(jnp.all(stats.converged))
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


# `_Waves`: output n is sin(A_n τ + B_n ξ + C_n) of the normalised coordinates τ = t/T, ξ = x.
WAVE_A, WAVE_B, WAVE_C = (
    np.array([1.3, -0.7, 2.1]),
    np.array([2.0, 3.5, -1.2]),
    np.array([0.5, 1.0, -2.0]),
)


class _Waves(eqx.Module):
    """A pointwise 'model' of closed form on inputs (τ, ξ): the first `n` waves."""

    n: int = eqx.field(static=True, default=3)

    def __call__(self, z):
        a, b, c = (jnp.asarray(v[: self.n]) for v in (WAVE_A, WAVE_B, WAVE_C))
        return jnp.sin(a * z[..., :1] + b * z[..., 1:2] + c)


def _waves(pde, t, x, n=3):
    """Analytic u, u_t, u_x, u_xx of `_Waves` at the physical (t, x), each (..., n)."""
    a, b, c = WAVE_A[:n], WAVE_B[:n], WAVE_C[:n]
    phase = a * (t / pde.t_final)[..., None] + b * x[..., None] + c
    s, co = np.sin(phase), np.cos(phase)
    return s, a * co / pde.t_final, b * co, -(b**2) * s


def test_autodiff_source_on_a_bounded_cell_centred_axis():
    """`Autodiff` is general: diffusion–sorption (Dirichlet at x = 0, Robin with orders (0, 1)
    at x = 1, a cell-centred x axis, no periodic rows). The quantities are exact derivatives
    of the model, rescaled from the normalised coordinates, and the traces are taken on the
    faces x = 0 and x = 1 themselves (not extrapolated from the cell centres)."""
    pde = DiffusionSorption(nx=8, nt=6, derivatives=Autodiff())
    nt, nx, size = 6, 8, 48
    assert pde.block_names() == ("pde", "ic", "bc")
    options = pde.derivatives.model_options(pde)
    assert options["coordinate_channels"] == 2 and sorted(options["orders"]) == sorted(ORDERS)
    u0 = jnp.linspace(0.05, 0.2, nx)
    inputs = pde.inputs(u0)
    # (t/T, x) at the grid, the IC face, then x = 0 and x = 1 for t > 0 (the bc rows).
    t, x = pde.coordinates()
    later = t[1:]
    tau = later / pde.t_final
    assert inputs.shape == (size + nx + 2 * (nt - 1), 2)
    np.testing.assert_allclose(inputs[size : size + nx], np.stack([0 * x, x], -1))
    np.testing.assert_allclose(inputs[size + nx : size + nx + nt - 1], np.stack([tau, 0 * tau], -1))
    np.testing.assert_allclose(inputs[size + nx + nt - 1 :], np.stack([tau, 0 * tau + 1], -1))
    evaluate = eqx.filter_jit(lambda model, inputs: model(inputs))
    basis = pde.derivatives.basis(pde, evaluate(AutodiffBasis(_Waves(), **options), inputs), u0)

    tt, xx = np.meshgrid(t, x, indexing="ij")
    u, u_t, _, u_xx = _waves(pde, tt, xx)
    np.testing.assert_allclose(basis.fields[..., :3], u, rtol=0, atol=1e-12)
    np.testing.assert_allclose(basis.interior["u"][..., :3], u, rtol=0, atol=1e-12)
    np.testing.assert_allclose(basis.interior["u_t"][..., :3], u_t, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(basis.interior["u_xx"][..., :3], u_xx, rtol=0, atol=1e-11)
    assert np.max(np.abs(u_t)) > 1e-3 and np.max(np.abs(u_xx)) > 1.0  # not trivially zero
    for v in (basis.fields, *basis.interior.values()):
        np.testing.assert_array_equal(v[..., 3], 0.0)  # the offset column

    ic, left, right = basis.traces
    u, *_ = _waves(pde, 0 * x, x)
    assert ic.shape == (1, nx, 4)
    np.testing.assert_allclose(ic[0, :, :3], u, rtol=0, atol=1e-12)
    u, *_ = _waves(pde, later, 0 * later)  # the boundary rows skip t = 0
    assert left.shape == (1, nt - 1, 4)
    np.testing.assert_allclose(left[0, :, :3], u, rtol=0, atol=1e-12)
    u, _, u_x, _ = _waves(pde, later, 0 * later + 1)
    assert right.shape == (2, nt - 1, 4)
    np.testing.assert_allclose(right[0, :, :3], u, rtol=0, atol=1e-12)
    np.testing.assert_allclose(right[1, :, :3], u_x, rtol=0, atol=1e-12)

    # The residual rows of one wave (soft constraint, N = 1) against the analytic ones.
    output = evaluate(AutodiffBasis(_Waves(1), **options), inputs)
    report = eqx.filter_jit(SoftConstraint().report)(pde, output, u0)
    u, u_t, _, u_xx = _waves(pde, tt, xx, n=1)
    r = pde.t_final * (u_t - pde.diffusivity / pde.retardation(jnp.asarray(u)) * u_xx)
    np.testing.assert_allclose(report["pde_rms_heldout"], np.sqrt(np.mean(r**2)), rtol=1e-10)
    u, *_ = _waves(pde, 0 * x, x, n=1)
    np.testing.assert_allclose(report["ic_rms"], np.sqrt(np.mean((u[:, 0] - u0) ** 2)), rtol=1e-10)
    left, *_ = _waves(pde, later, 0 * later, n=1)
    right, _, right_x, _ = _waves(pde, later, 0 * later + 1, n=1)
    robin = right[:, 0] - pde.outflow_sign * pde.diffusivity * right_x[:, 0]
    rows = np.concatenate([left[:, 0] - 1.0, robin])
    np.testing.assert_allclose(report["bc_rms"], np.sqrt(np.mean(rows**2)), rtol=1e-10)


def test_hard_constraint_on_an_mlp_autodiff_basis(getkey):
    """A small MLP basis built from the source's options: PI-HC runs on diffusion–sorption."""
    pde = DiffusionSorption(nx=8, nt=6, derivatives=Autodiff())
    options = pde.derivatives.model_options(pde)
    u0 = jnp.linspace(0.05, 0.2, 8)
    inputs = pde.inputs(u0)
    net = autodiff_basis(
        inputs.shape[-1],
        4,
        model=lambda **kw: MLP(width=8, depth=2, dtype=jnp.float64, **kw),
        **options,
        key=getkey(),
    )
    output = eqx.filter_jit(net)(inputs)
    assert output.shape == (len(inputs), 4 * len(options["orders"]))
    constraint = HardConstraint(num_basis=4, num_points=24, throw=False)
    terms, _, stats = eqx.filter_jit(constraint.loss_terms)(pde, output, u0, key=getkey())
    assert set(terms) == {"pde", "ic", "bc"}
    assert all(bool(jnp.isfinite(v)) for v in terms.values())
    assert bool(jnp.all(stats.finite)) and stats.collocation.shape == (1, 24)


def test_periodic_embedding_makes_the_basis_periodic(getkey):
    """`periodic_harmonics=K`: the periodic axis enters as cos/sin(2πk x), so the "periodic"
    rows vanish for any weights, the channels are the derivatives of the embedded model, and a
    DeepONet given by its partial is told its coordinate feature count (2K + 1 here)."""
    import functools

    from pdeopt.discretizations import derivatives

    pde = Burgers(nx=8, nt=5, viscosity=0.1, t_final=0.5, derivatives=Autodiff())
    options = pde.derivatives.model_options(pde)
    assert options["periods"] == (None, 1.0)
    condition = jnp.asarray(0.5 * np.sin(2 * np.pi * np.asarray(pde.coordinates()[1])))
    inputs = pde.inputs(condition)
    trunk = functools.partial(DeepONet, coordinate_channels=2, basis=True, trunk_width=8)
    net = autodiff_basis(
        inputs.shape[-1],
        4,
        model=functools.partial(trunk, dtype=jnp.float64),
        periodic_harmonics=3,
        **options,
        key=getkey(),
    )
    assert net.model.coordinate_channels == net.model.in_channels == 7
    output = eqx.filter_jit(net)(inputs)
    basis = pde.derivatives.basis(pde, output, condition)
    periodic = basis.traces[pde.block_names().index("periodic")]
    assert float(jnp.max(jnp.abs(periodic))) < 1e-12
    assert float(jnp.max(jnp.abs(basis.fields))) > 1e-3
    orders = {str(k): o for k, o in enumerate(net.orders)}
    fn = lambda y: net.model(net.embed(y)[None])[0]
    want = derivatives(fn, inputs[:6], orders)
    jet = output[:6].reshape(6, len(net.orders), 4)
    for k in range(len(net.orders)):
        np.testing.assert_allclose(jet[:, k], want[str(k)], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="periods"):
        AutodiffBasis(net.model, net.orders, 2, periods=(None,), harmonics=3)


def test_condition_input_gives_a_basis_per_sample(getkey):
    """`Autodiff(condition_input=True)`: every point's input is the coordinates then the whole
    flattened condition, so a DeepONet's branch reads u0 as its sensors. The basis changes
    with the sample, its channels are the coordinate derivatives with u0 held fixed, and the
    hard and soft layers train through it."""
    import functools

    from pdeopt.discretizations import derivatives
    from problems.burgers import BurgersProblem

    pde = Burgers(nx=8, nt=5, viscosity=0.1, t_final=0.5, derivatives=Autodiff(True))
    plain = Burgers(nx=8, nt=5, viscosity=0.1, t_final=0.5, derivatives=Autodiff())
    x = np.asarray(pde.coordinates()[1])
    u0, v0 = (jnp.asarray(a * np.sin(2 * np.pi * x + b)) for a, b in ((0.5, 0.0), (0.8, 1.0)))
    inputs = pde.inputs(u0)
    assert inputs.shape == (len(plain.inputs(u0)), 2 + 8)
    np.testing.assert_array_equal(inputs[:, :2], plain.inputs(u0))
    np.testing.assert_array_equal(inputs[:, 2:], np.broadcast_to(u0, (len(inputs), 8)))
    options = pde.derivatives.model_options(pde)
    onet = functools.partial(
        DeepONet, num_sensors=1, sensor_axes=0, latent=3, trunk_width=8, branch_width=8
    )
    net = autodiff_basis(
        inputs.shape[-1],
        4,
        model=functools.partial(onet, dtype=jnp.float64),
        periodic_harmonics=2,
        **options,
        key=getkey(),
    )
    assert net.model.coordinate_channels == 5 and net.model.branch.in_channels == 8
    output = eqx.filter_jit(net)(inputs)
    other = eqx.filter_jit(net)(pde.inputs(v0))
    assert float(jnp.max(jnp.abs(output - other))) > 1e-3
    orders = {str(k): o for k, o in enumerate(net.orders)}
    fn = lambda y: net.model(jnp.concatenate([net.embed(y), u0])[None])[0]
    want = derivatives(fn, inputs[:6, :2], orders)
    jet = output[:6].reshape(6, len(net.orders), 4)
    for k in range(len(net.orders)):
        np.testing.assert_allclose(jet[:, k], want[str(k)], rtol=1e-12, atol=1e-12)
    periodic = pde.derivatives.basis(pde, output, u0).traces[pde.block_names().index("periodic")]
    assert float(jnp.max(jnp.abs(periodic))) < 1e-12

    params, static = eqx.partition(net, eqx.is_inexact_array)
    hard = HardConstraint(num_basis=4, num_points=30, ridge=1e-3, solver=TIGHT, max_steps=300)
    soft = SoftConstraint()

    def loss(params, constraint):
        output = eqx.combine(params, static)(pde.inputs(u0))
        if isinstance(constraint, SoftConstraint):
            output = output.reshape(len(output), -1, 4)[..., :1].reshape(len(output), -1)
        terms, ok, _ = constraint.loss_terms(pde, output, u0, key=jr.key(0))
        return constraint.loss(terms), ok

    for constraint in (hard, soft):
        (value, ok), grad = eqx.filter_jit(
            lambda p, c=constraint: jax.value_and_grad(loss, has_aux=True)(p, c)
        )(params)
        assert bool(ok) and bool(jnp.isfinite(value))
        branch = jax.tree.leaves(grad.model.branch)
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in branch)
        assert max(float(jnp.max(jnp.abs(g))) for g in branch) > 0

    with pytest.raises(ValueError, match="autodiff=true"):
        BurgersProblem(nx=8, nt=5, autodiff_condition=True)
