"""Hard-constraint layers: solve accuracy, implicit gradients, experts, status, bad input."""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optimistix as optx
import pytest

from pdeopt.constraints import (
    AbstractDerivatives,
    AbstractPDE,
    Boundary,
    FiniteDifference,
    HardConstraint,
    MoEHardConstraint,
    initial_condition,
)
from pdeopt.discretizations import Axis, Dirichlet, Grid
from problems.burgers import Burgers
from problems.darcy import Darcy
from problems.diffusion_sorption import DiffusionSorption

TIGHT = optx.LevenbergMarquardt(rtol=1e-12, atol=1e-12)


class Heat(AbstractPDE):
    """u_t = κ u_xx on (0, 0.1) × (0, 1), u = 0 at both ends: a linear test PDE, written as
    a user would (physics only)."""

    nt: int = eqx.field(static=True)
    nx: int = eqx.field(static=True)
    kappa: float = 0.5
    derivatives: AbstractDerivatives = FiniteDifference()

    quantities: ClassVar = {"u_t": (1, 0), "u_xx": (0, 2)}

    @property
    def grid(self):
        return Grid((Axis(self.nt, 0.0, 0.1), Axis(self.nx, 0.0, 1.0)))

    def interior_residual(self, q, condition):
        return q["u_t"] - self.kappa * q["u_xx"]

    @property
    def blocks(self):
        zero = lambda u, c, x: Dirichlet(0.0).residual(u[0], None)
        later = (slice(1, None),)
        return (
            initial_condition(),
            Boundary("bc", 1, "lo", zero, rows=later),
            Boundary("bc", 1, "hi", zero, rows=later),
        )


def _heat_case(key, num_basis=6):
    pde = Heat(nt=9, nx=16)
    t, x = jnp.meshgrid(jnp.linspace(0, 0.1, 9), jnp.linspace(0, 1, 16), indexing="ij")
    condition = jnp.sin(jnp.pi * x[0])
    decay = jnp.exp(-0.5 * jnp.pi**2 * t)
    smooth = jnp.stack(
        [
            decay * jnp.sin(jnp.pi * x),
            jnp.sin(2 * jnp.pi * x),
            x * (1 - x),
            t * jnp.sin(jnp.pi * x),
            jnp.cos(jnp.pi * x),
            jnp.ones_like(x),
            t,
            x,
        ],
        axis=-1,
    )
    basis = smooth @ jr.normal(key, (smooth.shape[-1], num_basis))
    return pde, basis, condition


def _ds_case(key, num_basis=5):
    pde = DiffusionSorption(nx=16, nt=9)
    k1, k2 = jr.split(key)
    grid = pde.inputs(jnp.full(16, 0.1))
    basis = jnp.tanh(grid @ jr.normal(k1, (3, num_basis)) + 0.1 * jr.normal(k2, (9, 16, num_basis)))
    return pde, 0.5 + 0.5 * basis, jnp.full(16, 0.1)


def _solve_one(case, num_basis, max_steps, key):
    """One sample solved tightly, and the rows of its objective as a function of the weights."""
    pde, basis, condition = case
    constraint = HardConstraint(
        num_basis=num_basis, num_points=60, solver=TIGHT, max_steps=max_steps
    )
    _, omega, stats = constraint.solve(pde, basis, condition, key=key)
    rows = constraint.objective(pde, basis, condition, key=key)
    return constraint, omega[0], stats, lambda w: rows(w[None])[0]


def test_linear_pde_matches_least_squares(getkey):
    """For a linear PDE the solve is linear least squares: compare with lstsq."""
    _, omega, stats, rows = _solve_one(_heat_case(getkey()), 6, 100, getkey())
    a = jax.jacfwd(rows)(jnp.zeros(6))
    expected, *_ = np.linalg.lstsq(np.asarray(a), -np.asarray(rows(jnp.zeros(6))), rcond=None)
    np.testing.assert_allclose(omega, expected, rtol=1e-7, atol=1e-9)
    assert bool(stats.converged[0])


def test_nonlinear_pde_reaches_stationarity(getkey):
    constraint, omega, stats, rows = _solve_one(_ds_case(getkey()), 5, 200, getkey())
    gradient = lambda w: jax.jacfwd(rows)(w).T @ rows(w)
    initial = jnp.full(5, constraint.init_weight)
    assert bool(stats.converged[0]) and int(stats.num_steps[0]) > 1
    assert jnp.linalg.norm(gradient(omega)) < 1e-9 * jnp.linalg.norm(gradient(initial))


def test_repeated_ic_rows_equal_an_ic_weight(getkey):
    """The benchmark's reproduction of the original PI-HC's defect D2 (IC rows repeated R
    times) solves the same problem as pdeopt's row weight √R on the IC block."""
    from experiments.bench_hard_constraints import repeated_ic

    pde, basis, condition = _ds_case(getkey())
    key, repeats = getkey(), 9
    common = dict(num_basis=5, num_points=60, solver=TIGHT, max_steps=200)
    weighted = HardConstraint(row_weights={"pde": 1.0, "ic": 3.0, "bc": 1.0}, **common)
    _, omega, _ = HardConstraint(**common).solve(
        repeated_ic(pde, repeats), basis, condition, key=key
    )
    _, expected, _ = weighted.solve(pde, basis, condition, key=key)
    np.testing.assert_allclose(omega, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("case", [_heat_case, _ds_case])
def test_implicit_gradient_matches_finite_differences(case, getkey):
    pde, basis, condition = case(getkey())
    num_basis = basis.shape[-1]
    constraint = HardConstraint(
        num_basis=num_basis, num_points=60, solver=TIGHT, max_steps=200, ridge=1e-3
    )
    key, weights = getkey(), jr.normal(getkey(), pde.grid_shape)

    @jax.jit
    def loss(b):
        u, _ = constraint(pde, b, condition, key=key)
        return jnp.sum(weights * u**2)

    direction = case(getkey())[1]  # A smooth direction: noise would excite huge u_xx terms.
    eps = 1e-5
    fd = (loss(basis + eps * direction) - loss(basis - eps * direction)) / (2 * eps)
    ad = jnp.vdot(jax.grad(loss)(basis), direction)
    np.testing.assert_allclose(ad, fd, rtol=1e-5)


@pytest.mark.slow  # 35–55 s on a 2-core CPU; run with `pytest -m slow`
def test_implicit_gradient_through_a_model(getkey):
    pde, _, condition = _ds_case(getkey())
    constraint = HardConstraint(num_basis=4, num_points=60, solver=TIGHT, max_steps=200)
    model = eqx.nn.MLP(3, 4, width_size=8, depth=1, activation=jnp.tanh, key=getkey())
    key = getkey()
    inputs = pde.inputs(condition)

    def loss(model):
        basis = jax.vmap(jax.vmap(model))(inputs)
        u, _ = constraint(pde, basis, condition, key=key)
        return jnp.mean((u - 0.3) ** 2)

    grads = eqx.filter_grad(loss)(model)
    leaf = grads.layers[0].weight
    # A step large enough that the solver's termination noise (~1e-11 in the loss: the solve
    # stops at 1e-12 relative changes) is negligible next to the difference; the central
    # difference's own error is O(eps²).
    eps = 1e-4
    bump = lambda s: eqx.tree_at(
        lambda m: m.layers[0].weight, model, model.layers[0].weight.at[1, 2].add(s)
    )
    fd = (loss(bump(eps)) - loss(bump(-eps))) / (2 * eps)
    np.testing.assert_allclose(leaf[1, 2], fd, rtol=1e-5)


def test_one_expert_equals_hard_constraint(getkey):
    pde, basis, condition = _ds_case(getkey())
    key = getkey()
    options = dict(num_basis=5, num_points=50, solver=TIGHT, max_steps=100)
    u_hc, _ = HardConstraint(**options)(pde, basis, condition, key=key)
    u_moe, stats = MoEHardConstraint(parts=(1, 1), **options)(pde, basis, condition, key=key)
    np.testing.assert_allclose(u_moe, u_hc, rtol=1e-12, atol=1e-12)
    assert float(stats.seam_rms) == 0.0


def test_vmapped_experts_equal_loop(getkey):
    pde, basis, condition = _ds_case(getkey())
    key = getkey()
    options = dict(parts=(1, 4), num_basis=5, num_points=20, solver=TIGHT, interface_sweeps=1)
    batched = MoEHardConstraint(**options, vectorize_experts=True)
    looped = MoEHardConstraint(**options, vectorize_experts=False)
    solve = eqx.filter_jit(lambda c: c.solve(pde, basis, condition, key=key)[1:])
    omega_b, stats_b = solve(batched)
    omega_l, stats_l = solve(looped)
    np.testing.assert_allclose(omega_b, omega_l, rtol=1e-6, atol=1e-9)  # Rounding order only.
    # Step counts at the 1e-12 tolerance depend on rounding order; convergence does not.
    assert bool(jnp.all(stats_b.converged)) and bool(jnp.all(stats_l.converged))
    # Each expert is an independent solve on its own block.
    assert omega_b.shape == (4, 5) and not np.allclose(omega_b[0], omega_b[1])
    index = np.asarray(stats_b.collocation)
    owner = batched.partition(pde).owner
    for k in range(4):
        assert np.all(owner[index[k]] == k) and len(set(index[k])) == 20


def test_moe_solution_is_piecewise(getkey):
    pde, basis, condition = _ds_case(getkey())
    constraint = MoEHardConstraint(parts=(1, 4), num_basis=5, num_points=20, solver=TIGHT)
    key = getkey()
    _, omega, _ = constraint.solve(pde, basis, condition, key=key)
    u, _ = constraint(pde, basis, condition, key=key)
    for k in range(4):
        block = slice(4 * k, 4 * k + 4)
        np.testing.assert_allclose(u[:, block], basis[:, block] @ omega[k], rtol=1e-12)


def test_interface_rows_reduce_seam(getkey):
    pde, basis, condition = _ds_case(getkey(), num_basis=6)
    key = getkey()
    options = dict(parts=(1, 4), num_basis=6, num_points=30, throw=False, interface_weight=10.0)
    seams = []
    for sweeps in (0, 2):
        _, _, stats = MoEHardConstraint(**options, interface_sweeps=sweeps).solve(
            pde, basis, condition, key=key
        )
        seams.append(float(stats.seam_rms))
    assert seams[0] > 0 and seams[1] < 0.5 * seams[0], seams


def test_unconverged_solve_is_reported(getkey):
    pde, basis, condition = _ds_case(getkey())
    key = getkey()
    constraint = HardConstraint(num_basis=5, num_points=60, max_steps=2, solver=TIGHT, throw=False)
    _, _, stats = constraint.solve(pde, basis, condition, key=key)
    assert not bool(stats.converged[0]) and bool(stats.max_steps_reached[0])
    assert int(stats.num_steps[0]) == 2
    throwing = HardConstraint(num_basis=5, num_points=60, max_steps=2, solver=TIGHT)
    with pytest.raises(Exception, match="did not converge"):
        jax.block_until_ready(throwing.solve(pde, basis, condition, key=key))


def test_nonfinite_basis(getkey):
    pde, basis, condition = _ds_case(getkey())
    basis = basis.at[3, 4, 1].set(jnp.nan)
    quiet = HardConstraint(num_basis=5, num_points=60, throw=False)
    _, _, stats = quiet.solve(pde, basis, condition, key=getkey())
    assert not bool(stats.converged[0])
    with pytest.raises(Exception, match="non-finite basis"):
        jax.block_until_ready(
            HardConstraint(num_basis=5, num_points=60).solve(pde, basis, condition, key=getkey())
        )


def test_bad_inputs(getkey):
    pde, basis, condition = _ds_case(getkey())
    with pytest.raises(ValueError, match="does not divide the 16-point axis 1"):
        MoEHardConstraint(parts=(1, 3), num_basis=5, num_points=4).solve(
            pde, basis, condition, key=getkey()
        )
    with pytest.raises(ValueError, match="residual rows for 40 basis"):
        big = jnp.ones((*pde.grid_shape, 40))
        MoEHardConstraint(parts=(1, 4), num_basis=40, num_points=2).solve(
            pde, big, condition, key=getkey()
        )
    with pytest.raises(ValueError, match="out_channels"):
        HardConstraint(num_basis=4, num_points=10).solve(pde, basis, condition, key=getkey())
    with pytest.raises(ValueError, match="num_points=500 exceeds"):
        HardConstraint(num_basis=5, num_points=500).solve(pde, basis, condition, key=getkey())
    with pytest.raises(ValueError, match="constraint.num_points"):
        HardConstraint(num_points=0)

    class WrongShape(DiffusionSorption):
        def interior_residual(self, q, condition):
            return jnp.zeros(3)

    wrong = WrongShape(nx=16, nt=9)
    with pytest.raises(ValueError, match="one value per collocation point"):
        HardConstraint(num_basis=5, num_points=10).solve(wrong, basis, condition, key=getkey())


def test_report_hard_vs_raw(getkey):
    pde, basis, condition = _ds_case(getkey())
    constraint = MoEHardConstraint(parts=(1, 2), num_basis=5, num_points=40, throw=False)
    report = constraint.report(pde, basis, condition, key=getkey())
    expected = {"pde_rms_collocation", "pde_rms_heldout", "ic_rms", "bc_rms", "seam_rms"}
    assert expected <= set(report) and {f"raw_{k}" for k in ("ic_rms", "bc_rms")} <= set(report)
    assert float(report["ic_rms"]) < float(report["raw_ic_rms"])


def test_expert_loss_terms(getkey):
    """Equal weights: the expert loss is the FD loss of u; a jump shows only in `seam`."""
    pde, basis, condition = _ds_case(getkey())
    moe = MoEHardConstraint(parts=(1, 4), num_basis=5, num_points=20, expert_loss=True)
    assert set(moe.weights_for(pde)) == {"pde", "ic", "bc", "seam"}
    quantities, _, _ = moe.solve(pde, basis, condition, key=getkey())
    omega = jnp.tile(jr.normal(getkey(), (1, 5)), (4, 1))
    terms = moe.terms(pde, quantities, omega, condition)
    mean_squares = lambda u: {k: jnp.mean(r**2) for k, r in pde.residuals(u, condition).items()}
    reference = mean_squares(moe.assemble(pde, quantities, omega))
    for name in ("pde", "ic", "bc"):
        np.testing.assert_allclose(terms[name], reference[name], rtol=1e-12)
    assert float(terms["seam"]) == 0.0

    jump = omega.at[2].add(0.3)
    jumped = moe.terms(pde, quantities, jump, condition)
    assert float(jumped["seam"]) > 0.0
    # The PDE term sees each expert's own smooth field: no s/h² spike at the seams.
    own = lambda k: pde.interior_residual(
        {q: v @ jump[k] for q, v in jax.vmap(pde.linear_quantities, -1, -1)(basis).items()},
        condition,
    )
    owner = moe.partition(pde).owner.reshape(pde.grid_shape)
    expected = jnp.where(owner == 2, own(2), own(0))
    np.testing.assert_allclose(jumped["pde"], jnp.mean(expected**2), rtol=1e-12)
    assert float(jumped["pde"]) < float(mean_squares(moe.assemble(pde, quantities, jump))["pde"])


@pytest.mark.slow  # 35–55 s on a 2-core CPU; run with `pytest -m slow`
def test_expert_loss_trains(getkey):
    """Training terms and gradients are finite; an unconverged sample does not count."""
    pde, basis, condition = _ds_case(getkey())
    key = getkey()
    moe = MoEHardConstraint(parts=(1, 2), num_basis=5, num_points=30, expert_loss=True, throw=False)

    def loss(basis):
        terms, ok, _ = moe.loss_terms(pde, basis, condition, key=key)
        return moe.loss(terms), ok

    (value, ok), grad = jax.value_and_grad(loss, has_aux=True)(basis)
    assert bool(ok) and np.isfinite(float(value)) and bool(jnp.all(jnp.isfinite(grad)))
    stuck = MoEHardConstraint(
        parts=(1, 2),
        num_basis=5,
        num_points=30,
        expert_loss=True,
        throw=False,
        max_steps=1,
        solver=TIGHT,
    )
    terms, ok, _ = stuck.loss_terms(pde, basis, condition, key=key)
    assert not bool(ok) and all(np.isfinite(float(v)) for v in terms.values())
    with pytest.raises(ValueError, match="missing \\['seam'\\]"):
        MoEHardConstraint(
            parts=(1, 2),
            num_basis=5,
            num_points=30,
            expert_loss=True,
            throw=False,
            loss_weights={"pde": 1.0, "ic": 1.0, "bc": 1.0},
        ).loss_terms(pde, basis, condition, key=key)


def test_default_weights_follow_the_blocks(getkey):
    """A PDE without an initial condition (steady Darcy) needs no weight configuration."""
    pde = Darcy(n=8)
    condition = 1.0 + 0.5 * jr.uniform(getkey(), (8, 8))
    basis = jnp.tanh(pde.inputs(condition) @ jr.normal(getkey(), (3, 4)))
    constraint = HardConstraint(num_basis=4, num_points=30, solver=TIGHT, max_steps=100)
    assert pde.block_names() == ("pde", "bc")
    assert constraint.weights_for(pde) == {"pde": 1.0, "bc": 1.0}
    _, omega, stats = constraint.solve(pde, basis, condition, key=getkey())
    assert omega.shape == (1, 4) and bool(stats.converged[0])
    with pytest.raises(ValueError, match="missing \\['bc'\\], unknown \\['ic'\\]"):
        HardConstraint(num_basis=4, num_points=30, row_weights={"pde": 1.0, "ic": 1.0}).solve(
            pde, basis, condition, key=getkey()
        )


def test_periodic_axis_has_a_wraparound_seam(getkey):
    """On a periodic axis the first and last experts share the wrap-around face."""
    pde = Burgers(nx=16, nt=9)
    part = MoEHardConstraint(parts=(1, 2), num_basis=4, num_points=10).partition(pde)
    (faces,) = part.faces
    assert faces.exists.all() and (faces.neighbour == [[1, 1], [0, 0]]).all()
    # Expert 0's lower face lies between the last and the first grid column.
    owner = part.owner.reshape(pde.grid_shape)
    assert set(faces.lower[0, 0] % 16) == {15} and set(faces.upper[0, 0] % 16) == {0}
    assert (owner.ravel()[faces.lower[0, 0]] == 1).all()
    # Weights that differ between the experts jump on both faces, the wrap-around included:
    # the seam term is the mean square of the value and (scaled) normal jumps on both.
    condition = jnp.sin(2 * jnp.pi * jnp.asarray(pde.coordinates()[1]))
    basis = jnp.tanh(pde.inputs(condition) @ jr.normal(getkey(), (3, 4)))
    moe = MoEHardConstraint(parts=(1, 2), num_basis=4, num_points=10)
    quantities, _, _ = moe.solve(pde, basis, condition, key=getkey())
    omega = jnp.stack([jnp.ones(4), jnp.zeros(4)])
    f = quantities.fields[..., :4] @ (omega[0] - omega[1])
    squares = 0.0
    for low, high in ((7, 8), (15, 0)):
        value, normal = 0.5 * (f[:, low] + f[:, high]), 16 * (f[:, high] - f[:, low])
        squares += 2 * jnp.sum(value**2 + normal**2)  # Seen from both experts.
    expected = squares / (2 * 2 * 2 * pde.nt)  # 2 experts × 2 sides × (value, normal) rows.
    np.testing.assert_allclose(moe.terms(pde, quantities, omega, condition)["seam"], expected)


def test_nonlinear_quantities_are_refused(getkey):
    class Squared(DiffusionSorption):
        def linear_quantities(self, u):
            return {"u": u**2, "u_t": u, "u_xx": u}

    _, basis, condition = _ds_case(getkey())
    with pytest.raises(ValueError, match="linear_quantities is not linear"):
        HardConstraint(num_basis=5, num_points=10).solve(
            Squared(nx=16, nt=9), basis, condition, key=getkey()
        )
