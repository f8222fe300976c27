"""Learning-rate annealing (Wang, Teng & Perdikaris 2021): weights follow Algorithm 1."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest

from experiments._common import compose, instantiate
from pdeopt.constraints import LearningRateAnnealing, SoftConstraint
from pdeopt.models import MLP
from pdeopt.training import PhysicsLoss, balanced_train_step, fit
from problems.diffusion_sorption import DiffusionSorption

_C = np.array([0.5, 3.0, -2.0])


def _toy_loss(model, batch, key):
    """Two terms of a parameter vector a: L_r = Σ (a - batch)², L_1 = Σ c a²."""
    del key
    a = model["a"]
    terms = {"pde": jnp.sum((a - batch) ** 2), "ic": jnp.sum(_C * a**2)}
    return jnp.nan, terms  # the balanced step must not use the returned loss


def _expected_weight(a, batch, w_ref, w, alpha):
    grad_ref = 2 * (a - batch)
    grad_1 = 2 * _C * a
    estimate = np.max(np.abs(w_ref * grad_ref)) / np.mean(np.abs(w * grad_1))
    return (1 - alpha) * w + alpha * estimate


def test_weights_match_formula():
    a0 = np.array([0.3, -1.2, 2.0])
    batch = np.array([1.0, 0.5, -0.25])
    balancing = LearningRateAnnealing(alpha=0.9, every=3)
    weights = balancing.init({"pde": 2.0, "ic": 0.7})
    lr = 0.01
    optimizer = optax.sgd(lr)
    model = {"a": jnp.asarray(a0)}
    opt_state = optimizer.init(model)

    # An update step: new weight by the formula, and the gradient step uses the new weight.
    model, opt_state, weights, loss, aux = balanced_train_step(
        model, opt_state, weights, _toy_loss, optimizer, batch, jr.key(0), balancing, True
    )
    expected = _expected_weight(a0, batch, 2.0, 0.7, 0.9)
    np.testing.assert_allclose(weights["ic"], expected, rtol=1e-12)
    assert float(weights["pde"]) == 2.0
    assert abs(expected - 0.7) > 1.0  # the update is not trivial
    grad = 2.0 * 2 * (a0 - batch) + expected * 2 * _C * a0
    a1 = a0 - lr * grad
    np.testing.assert_allclose(model["a"], a1, rtol=1e-12)
    terms0 = np.sum((a0 - batch) ** 2), np.sum(_C * a0**2)
    np.testing.assert_allclose(loss, 2.0 * terms0[0] + expected * terms0[1], rtol=1e-12)
    np.testing.assert_allclose(aux["weight_ic"], expected, rtol=1e-12)

    # A step without update keeps the weights and steps with them.
    model, opt_state, weights2, _, _ = balanced_train_step(
        model, opt_state, weights, _toy_loss, optimizer, batch, jr.key(0), balancing, False
    )
    np.testing.assert_allclose(weights2["ic"], expected, rtol=0)
    grad = 2.0 * 2 * (a1 - batch) + expected * 2 * _C * a1
    np.testing.assert_allclose(model["a"], a1 - lr * grad, rtol=1e-12)

    # The second update follows the formula from the current weight.
    _, _, weights3, _, _ = balanced_train_step(
        model, opt_state, weights2, _toy_loss, optimizer, batch, jr.key(0), balancing, True
    )
    a2 = np.asarray(model["a"])
    np.testing.assert_allclose(
        weights3["ic"], _expected_weight(a2, batch, 2.0, expected, 0.9), rtol=1e-12
    )


def test_zero_gradient_term_keeps_weight():
    balancing = LearningRateAnnealing()
    weights = balancing.init({"pde": 1.0, "bc": 5.0})
    grads = {"pde": {"w": jnp.array([1.0, -3.0])}, "bc": {"w": jnp.zeros(2)}}
    assert float(balancing.update(weights, grads)["bc"]) == 5.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        LearningRateAnnealing(alpha=0.0)
    with pytest.raises(ValueError, match="every"):
        LearningRateAnnealing(every=0)
    with pytest.raises(ValueError, match="reference='pde'"):
        LearningRateAnnealing().init({"ic": 1.0})


def test_config_selects_balancing():
    assert instantiate(compose(["constraint=soft"]).constraint).balancing is None  # off: default
    constraint = instantiate(compose(["constraint=soft_annealed"]).constraint)
    assert constraint.balancing == LearningRateAnnealing(alpha=0.9, every=10, reference="pde")
    override = "constraint.balancing={_target_:pdeopt.constraints.LearningRateAnnealing,every:5}"
    assert instantiate(compose(["constraint=soft", override]).constraint).balancing.every == 5


def test_fit_threads_weights(getkey):
    # A PINN-style MLP on a tiny diffusion-sorption grid: fit picks up the constraint's
    # balancing, updates the IC/BC weights and logs them; the PDE weight stays fixed.
    pde = DiffusionSorption(nx=8, nt=5)
    constraint = SoftConstraint(balancing=LearningRateAnnealing(every=2))
    model = MLP(3, 1, width=8, depth=2, key=getkey())
    conditions = jnp.linspace(0.02, 0.18, 4)[:, None] * jnp.ones((1, 8))
    _, history = fit(
        model,
        PhysicsLoss(pde, constraint),
        optax.adam(1e-3),
        conditions,
        steps=3,
        batch_size=2,
        key=getkey(),
        progress=False,
    )
    record = history[-1]
    assert constraint.loss_weights is None  # weight 1 on every block of the PDE to start
    assert pde.block_names() == ("pde", "ic", "bc")
    assert record["weight_pde"] == 1.0
    for name in ("ic", "bc"):
        assert np.isfinite(record[f"weight_{name}"]) and record[f"weight_{name}"] != 1.0
    assert np.isclose(
        record["loss"], sum(record[f"weight_{k}"] * record[k] for k in pde.block_names())
    )
