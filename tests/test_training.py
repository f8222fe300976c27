"""Training: the loop lowers the loss, the experiment writes its artefacts, bad input fails."""

import json

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from experiments._common import compose
from experiments.train import run
from pdeopt.constraints import SoftConstraint
from pdeopt.models import FNO
from pdeopt.training import PhysicsLoss, fit, load_checkpoint, make_optimizer
from problems.diffusion_sorption import DiffusionSorption

TINY = [
    "problem.nx=16",
    "problem.nt=9",
    "problem.n_train=4",
    "problem.n_test=2",
    "model.width=8",
    "model.modes=[4,4]",
    "model.depth=2",
    "model.projection_channels=16",
    "train.batch_size=2",
    "train.eval_every=0",
    "train.progress=false",
]


def _tiny_fit(steps, getkey, learning_rate=3e-3):
    pde = DiffusionSorption(nx=16, nt=9)
    loss = PhysicsLoss(pde, SoftConstraint())
    model = FNO(3, 1, width=8, modes=(4, 4), depth=2, projection_channels=16, key=getkey())
    conditions = jnp.linspace(0.02, 0.18, 6)[:, None] * jnp.ones((1, 16))
    optimizer = make_optimizer(learning_rate=learning_rate)
    initial = float(loss(model, conditions, jr.key(0))[0])
    model, history = fit(
        model,
        loss,
        optimizer,
        conditions,
        steps=steps,
        batch_size=3,
        key=getkey(),
        progress=False,
    )
    return initial, float(loss(model, conditions, jr.key(0))[0]), history


@pytest.mark.slow  # 35–55 s on a 2-core CPU; run with `pytest -m slow`
def test_fit_lowers_loss(getkey):
    initial, final, history = _tiny_fit(60, getkey)
    assert final < 0.5 * initial, (initial, final)
    assert history[-1]["step"] == 60 and set(history[-1]) >= {"loss", "pde", "ic", "bc"}


def test_fit_reports_nonfinite_loss(getkey):
    with pytest.raises(FloatingPointError, match="at step"):
        _tiny_fit(5, getkey, learning_rate=1e30)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"steps": 0}, "train.steps"), ({"batch_size": 0}, "train.batch_size")],
)
def test_fit_bad_arguments(kwargs, match, getkey):
    options = dict(steps=1, batch_size=1, key=getkey(), progress=False)
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fit(eqx.nn.Identity(), lambda *_: 0.0, make_optimizer(), jnp.zeros((2, 3)), **options)


def test_experiment_end_to_end(tmp_path, capsys):
    cfg = compose(
        [*TINY, "constraint=soft", "train.steps=3", f"problem.data_dir={tmp_path / 'data'}"]
    )
    metrics = run(cfg, tmp_path / "run")
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("test_rel_l2=")
    for name in ("config.yaml", "metrics.json", "prediction.png", "model.eqx"):
        assert (tmp_path / "run" / name).is_file()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert np.isclose(saved["test_rel_l2"], metrics["test_rel_l2"])
    assert len(saved["test_rel_l2_per_sample"]) == 2 and saved["test_seeds"] == ["0004", "0005"]
    like = FNO(
        3,
        1,
        width=8,
        modes=(4, 4),
        depth=2,
        projection_channels=16,
        dtype="float32",
        key=jr.key(0),
    )
    model = load_checkpoint(tmp_path / "run" / "model.eqx", like)
    leaves = eqx.filter(model, eqx.is_array)
    assert not eqx.tree_equal(leaves, eqx.filter(like, eqx.is_array))


def test_checkpoint_mismatch(tmp_path, getkey):
    from pdeopt.training import save_checkpoint

    small = FNO(3, 1, width=8, modes=(4, 4), depth=2, key=getkey())
    save_checkpoint(tmp_path / "m.eqx", small)
    big = FNO(3, 1, width=16, modes=(4, 4), depth=2, key=getkey())
    with pytest.raises(ValueError, match="does not match"):
        load_checkpoint(tmp_path / "m.eqx", big)


def test_experiment_moe_prints_report(tmp_path, capsys):
    cfg = compose(
        [
            *TINY,
            "train.steps=2",
            "constraint=moe",
            "constraint.num_basis=4",
            "constraint.num_points=12",
            f"problem.data_dir={tmp_path / 'data'}",
        ]
    )
    metrics = run(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[-1].startswith("test_rel_l2=")
    assert "constraint report" in out and "seam" in out
    report = metrics["constraint_report"]
    assert {"pde_rms_collocation", "raw_pde_rms_collocation", "seam_rms"} <= set(report)
    assert {"solve_failure_rate", "solve_steps_max"} <= set(metrics["history"][-1])
