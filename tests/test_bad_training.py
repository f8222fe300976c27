"""Bad inputs and failures during training: each is masked and counted, or stops the run with
a clear error, and a failed run never looks like a successful one.

One case per failure mode of the training path (the data-file and config catalogues are
`test_bad_data.py` and `test_bad_configs.py`)."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import pytest

from experiments._common import compose
from experiments.train import run
from pdeopt.constraints import HardConstraint, MoEHardConstraint
from pdeopt.models import FNO
from pdeopt.training import (
    NonFiniteError,
    PhysicsLoss,
    TrainingError,
    fit,
    make_optimizer,
    predict,
)
from problems.diffusion_sorption import DiffusionSorption
from tests.test_training import TINY

PDE = DiffusionSorption(nx=16, nt=8)
CONSTRAINTS = {
    "hard": HardConstraint(num_basis=4, num_points=40, throw=False),
    "moe": MoEHardConstraint(parts=(1, 2), num_basis=4, num_points=20, throw=False),
}


class _NaNForLargeInputs(eqx.Module):
    """A model whose output is NaN for a sample whose condition exceeds 0.9 somewhere (a model
    that overflows on some inputs)."""

    model: FNO

    def __call__(self, x):
        return jnp.where(jnp.any(x[..., -1] > 0.9), jnp.nan, self.model(x))


def _model(key=jr.key(0)):
    return FNO(3, 4, width=8, modes=(4, 4), depth=1, projection_channels=8, key=key)


@eqx.filter_jit
def _loss_and_grad(constraint, model, conditions):
    loss = PhysicsLoss(PDE, constraint)
    return eqx.filter_value_and_grad(loss, has_aux=True)(model, conditions, jr.key(1))


def _value_and_grad(constraint, model, conditions):
    (value, aux), grads = _loss_and_grad(constraint, model, conditions)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    return float(value), aux, all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)


@pytest.mark.parametrize("name", CONSTRAINTS)
@pytest.mark.parametrize("where", ["condition", "basis"])
def test_nonfinite_sample_is_masked_before_the_solve_and_counted(name, where):
    conditions = jnp.full((3, 16), 0.5)
    model = _model()
    if where == "condition":  # a NaN in the data
        conditions = conditions.at[1, 3].set(jnp.nan)
    else:  # a finite input on which the model emits NaN
        conditions = conditions.at[1, 3].set(0.95)
        model = _NaNForLargeInputs(model)
    value, aux, grads_finite = _value_and_grad(CONSTRAINTS[name], model, conditions)
    assert jnp.isfinite(value) and grads_finite
    assert float(aux["failed_fraction"]) == pytest.approx(1 / 3)
    if where == "condition":
        assert float(aux["nonfinite_samples"]) == 1
    # Masked: what the bad sample holds does not change the loss.
    other = conditions.at[1].set(jnp.inf) if where == "condition" else conditions.at[1].set(2.0)
    assert _value_and_grad(CONSTRAINTS[name], model, other)[0] == value


def test_samples_one_after_another_match_the_vmapped_batch():
    conditions = jnp.linspace(0.1, 0.6, 3)[:, None] * jnp.ones((1, 16))
    conditions = conditions.at[1, 3].set(jnp.nan)  # masked the same way
    sequential = HardConstraint(num_basis=4, num_points=40, throw=False, vectorize_samples=False)
    vmapped = _loss_and_grad(CONSTRAINTS["hard"], _model(), conditions)
    mapped = _loss_and_grad(sequential, _model(), conditions)
    for a, b in zip(jax.tree.leaves(vmapped), jax.tree.leaves(mapped), strict=True):
        assert jnp.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert float(mapped[0][1]["failed_fraction"]) == pytest.approx(1 / 3)
    loss = PhysicsLoss(PDE, sequential)
    u = [predict(loss.predict_one, _model(), conditions, jr.key(3), 2, v)[0] for v in (True, False)]
    assert jnp.allclose(*u, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_nonfinite_sample_raises_when_throw_is_set():
    constraint = HardConstraint(num_basis=4, num_points=40, throw=True)
    conditions = jnp.full((2, 16), 0.5).at[0, 0].set(jnp.inf)
    with pytest.raises(Exception, match="non-finite"):
        _value_and_grad(constraint, _model(), conditions)


def _fit(constraint, steps=12, **kwargs):
    conditions = jnp.linspace(0.1, 0.5, 4)[:, None] * jnp.ones((1, 16))
    options = dict(steps=steps, batch_size=2, key=jr.key(2), progress=False) | kwargs
    return fit(_model(), PhysicsLoss(PDE, constraint), make_optimizer(), conditions, **options)


def test_run_stops_when_every_solve_fails():
    constraint = HardConstraint(num_basis=4, num_points=40, max_steps=1, throw=False)
    with pytest.raises(TrainingError, match="train.max_failure_rate=0.5") as error:
        _fit(constraint, failure_patience=3)
    assert error.value.step == 3
    record = error.value.history[-1]
    assert record["step"] == 3 and record["failed_fraction"] == 1.0
    assert record["solve_max_steps_rate"] == 1.0


def test_failures_below_the_threshold_are_recorded_at_every_logged_step():
    constraint = HardConstraint(num_basis=4, num_points=40, max_steps=1, throw=False)
    _, history = _fit(constraint, steps=4, log_every=2, max_failure_rate=1.0)
    assert [r["step"] for r in history] == [2, 4]
    assert all(r["failed_fraction"] == 1.0 and "solve_failure_rate" in r for r in history)


def test_nonfinite_gradient_stops_the_run():
    constraint = HardConstraint(num_basis=4, num_points=40, throw=False)
    conditions = jnp.full((2, 16), 0.5)

    def loss(model, batch, key):  # finite loss, NaN gradient
        value, aux = PhysicsLoss(PDE, constraint)(model, batch, key)
        leaf = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))[0]
        return value + 0.0 * jnp.sqrt(0.0 * jnp.abs(leaf).sum()), aux

    with pytest.raises(NonFiniteError, match="gradient became non-finite at step 1"):
        fit(_model(), loss, make_optimizer(), conditions, steps=2, batch_size=2,
            key=jr.key(0), progress=False)  # fmt: skip


def test_batch_larger_than_the_data_is_refused():
    with pytest.raises(ValueError, match="train.batch_size=8 exceeds the 4 training samples"):
        _fit(CONSTRAINTS["hard"], batch_size=8)


def test_failed_run_is_recorded_as_failed(tmp_path):
    overrides = [*TINY, "train.steps=20", "constraint=hard", "constraint.num_basis=4"]
    overrides += ["constraint.num_points=40", "constraint.max_steps=1", "train.failure_patience=2"]
    cfg = compose([*overrides, f"problem.data_dir={tmp_path / 'data'}"])
    with pytest.raises(TrainingError):
        run(cfg, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["step"] == 2
    assert "max_failure_rate" in metrics["error"]
    assert not (tmp_path / "run" / "model.eqx").exists()


def test_last_line_reports_unconverged_solves(tmp_path, capsys):
    overrides = [*TINY, "train.steps=2", "constraint=hard", "constraint.num_basis=4"]
    overrides += ["constraint.num_points=40", "constraint.max_steps=2", "train.max_failure_rate=1"]
    cfg = compose([*overrides, f"problem.data_dir={tmp_path / 'data'}"])
    metrics = run(cfg, tmp_path / "run")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("test_rel_l2=") and "unconverged=2/2 (100.0%)" in last
    assert "test_rel_l2_converged=n/a" in last
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["status"] == "ok" and saved["test_unconverged_fraction"] == 1.0
    assert saved["test_rel_l2_converged"] is None and metrics["test_converged_per_sample"] == [
        False,
        False,
    ]
