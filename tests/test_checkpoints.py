"""Checkpoints: a continued run is bitwise the uninterrupted one; bad checkpoints are refused
or set aside with a warning, never loaded silently."""

import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import pytest
from hydra.errors import ConfigCompositionException

from experiments._common import compose
from experiments._schema import ConfigError
from experiments.train import run
from pdeopt.constraints import LearningRateAnnealing, SoftConstraint
from pdeopt.models import FNO
from pdeopt.training import (
    Checkpointer,
    CheckpointMismatchError,
    PhysicsLoss,
    TrainState,
    config_differences,
    fit,
    make_optimizer,
)
from problems.diffusion_sorption import DiffusionSorption
from tests.test_training import TINY as TRAINING_TINY

# orbax leaves the reads of the other arrays of a failed restore unawaited; they warn when
# garbage-collected, in whichever test that happens. The failure itself is the RuntimeWarning
# that test_truncated_checkpoint_falls_back_with_a_warning checks.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*_read_array_index_and_device_put"
    ":pytest.PytestUnraisableExceptionWarning"
)
ROOT = Path(__file__).resolve().parent.parent
TINY = [*TRAINING_TINY, "constraint=soft"]


class Tiny:
    """A small balanced soft-constraint problem: the state has a model, Adam's state (whose
    step count drives the learning-rate decay), loss weights and a key."""

    pde = DiffusionSorption(nx=16, nt=9)
    loss = PhysicsLoss(pde, SoftConstraint(balancing=LearningRateAnnealing(every=2)))
    model = FNO(3, 1, width=8, modes=(4, 4), depth=2, projection_channels=16, key=jr.key(0))
    data = jnp.linspace(0.02, 0.18, 6)[:, None] * jnp.ones((1, 16))
    optimizer = make_optimizer(learning_rate=3e-3, decay_every=2)
    key = jr.key(1)

    @classmethod
    def fit(cls, steps, checkpoints=None):
        return fit(
            cls.model,
            cls.loss,
            cls.optimizer,
            cls.data,
            steps=steps,
            batch_size=3,
            key=cls.key,
            log_every=1,
            progress=False,
            checkpoints=checkpoints,
        )

    @classmethod
    def like(cls):
        """A fresh state, as `fit` builds it."""
        weights = cls.loss.constraint.balancing.init(cls.loss.constraint.weights_for(cls.pde))
        opt_state = cls.optimizer.init(eqx.filter(cls.model, eqx.is_inexact_array))
        return TrainState(cls.model, opt_state, weights, cls.key)


def _params(model):
    return eqx.filter(model, eqx.is_array)


def _without_timing(history):
    return [{k: v for k, v in record.items() if k != "steps_per_s"} for record in history]


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """6 steps with a checkpoint every 2 (kept: steps 2, 4 and 6), and 3 without."""
    directory = tmp_path_factory.mktemp("fit") / "checkpoints"
    checkpoints = Checkpointer(directory, every=2, keep=3, config={"lr": 3e-3})
    model, history = Tiny.fit(6, checkpoints)
    checkpoints.close()
    return directory, model, history


def test_fit_resumes_bitwise(checkpointed, tmp_path):
    directory, model, history = checkpointed
    assert Checkpointer(directory, every=2).steps() == [2, 4, 6]
    # The run stopped after step 3 (its last step, checkpointed), continued to 6.
    copy = tmp_path / "checkpoints"
    checkpoints = Checkpointer(copy, every=2, config={"lr": 3e-3})
    Tiny.fit(3, checkpoints)
    assert checkpoints.steps() == [2, 3]
    resumed, resumed_history = Tiny.fit(6, checkpoints)
    checkpoints.close()
    assert bool(eqx.tree_equal(_params(resumed), _params(model)))
    assert [r["step"] for r in resumed_history] == [1, 2, 3, 4, 5, 6]
    assert _without_timing(resumed_history) == _without_timing(history)
    # The weights were updated at steps 1, 3, 5 in both runs.
    assert resumed_history[4]["weight_ic"] != resumed_history[3]["weight_ic"]


def test_restore_gives_the_saved_state(checkpointed):
    directory, model, history = checkpointed
    state, restored = Checkpointer(directory, every=2).restore(Tiny.like())
    assert state.step == 6 and restored == history
    assert bool(eqx.tree_equal(_params(state.model), _params(model)))
    assert int(state.opt_state[1][0].count) == 6  # optax's step count: the schedule's clock


def _truncate_largest_file(folder: Path) -> Path:
    largest = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    largest.write_bytes(largest.read_bytes()[: largest.stat().st_size // 2])
    return largest


def test_truncated_checkpoint_falls_back_with_a_warning(checkpointed, tmp_path):
    directory, *_ = checkpointed
    copy = tmp_path / "checkpoints"
    shutil.copytree(directory, copy)
    _truncate_largest_file(copy / "6" / "state")
    checkpoints = Checkpointer(copy, every=2)
    with pytest.warns(RuntimeWarning, match=r"checkpoints/6 cannot be read"):
        state, history = checkpoints.restore(Tiny.like())
    assert state.step == 4 and history[-1]["step"] == 4
    assert checkpoints.steps() == [2, 4]  # the bad one is set aside, not deleted
    assert [p.name[:2] for p in (tmp_path / "checkpoints.corrupt").iterdir()] == ["6-"]
    gc.collect()  # the unawaited reads warn here, inside the filter, not in a later test


def test_swapped_arrays_are_caught_by_the_checksum(checkpointed, tmp_path):
    directory, *_ = checkpointed
    copy = tmp_path / "checkpoints"
    shutil.copytree(directory, copy)
    # Step 6's folder with step 4's arrays: readable, but not what its metadata describes.
    shutil.rmtree(copy / "6" / "state")
    shutil.copytree(copy / "4" / "state", copy / "6" / "state")
    with pytest.warns(RuntimeWarning, match="do not match the checksum"):
        state, _ = Checkpointer(copy, every=2).restore(Tiny.like())
    assert state.step == 4


def test_other_config_or_model_is_refused(checkpointed):
    directory, *_ = checkpointed
    with pytest.raises(CheckpointMismatchError, match=r"lr \(checkpoint 0.003, now 0.001\)"):
        Checkpointer(directory, every=2, config={"lr": 1e-3}).restore(Tiny.like())
    # A key that may differ is not compared.
    free = Checkpointer(directory, every=2, config={"lr": 1e-3}, may_differ=("lr",))
    assert free.restore(Tiny.like())[0].step == 6
    wide = FNO(3, 1, width=12, modes=(4, 4), depth=2, projection_channels=16, key=jr.key(0))
    like = Tiny.like()
    like = TrainState(
        wide, Tiny.optimizer.init(eqx.filter(wide, eqx.is_array)), like.weights, like.key
    )
    with pytest.raises(
        CheckpointMismatchError,
        match=r"\.model\.lifting\[0\]\.bias: checkpoint float64\[8\], now float64\[12\]",
    ):
        Checkpointer(directory, every=2).restore(like)
    with pytest.raises(ValueError, match="another PRNG key"):
        Checkpointer(directory, every=2).restore(
            eqx.tree_at(lambda s: s.key, Tiny.like(), jr.key(2))
        )


def test_resume_modes(checkpointed, tmp_path):
    directory, *_ = checkpointed
    with pytest.raises(FileExistsError, match="not overwritten"):
        Checkpointer(directory, every=2, resume="never")
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        Checkpointer(tmp_path / "empty", every=2, resume="must")
    with pytest.raises(ValueError, match="beyond train.steps=5"):
        Tiny.fit(5, Checkpointer(directory, every=2))


def test_experiment_resume_settings(tmp_path):
    base = [*TINY, "train.steps=2", f"problem.data_dir={tmp_path / 'data'}"]
    with pytest.raises(ConfigError, match="train.resume=must.*holds no checkpoint"):
        run(compose([*base, "train.resume=must"]), tmp_path / "run")
    with pytest.raises(ConfigError, match="train.checkpoint_every=0 turns them off"):
        run(compose([*base, "train.resume=must", "train.checkpoint_every=0"]), tmp_path / "run")
    with pytest.raises(ConfigCompositionException) as error:
        compose([*base, "train.resume=maybe"])
    assert "expected one of [auto, must, never]" in str(error.value.__cause__)
    with pytest.raises(ConfigError, match="train.keep_checkpoints=0 is too small"):
        run(compose([*base, "train.keep_checkpoints=0"]), tmp_path / "run")


def _train_command(run_dir: Path, data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "experiments.train",
        *TINY,
        "train.steps=20",
        "train.checkpoint_every=2",
        f"hydra.run.dir={run_dir}",
        f"problem.data_dir={data_dir}",
        *extra,
    ]


def test_killed_run_continues_bitwise(tmp_path):
    """`kill -9` after the second checkpoint, then the same command again: the final model
    file is byte for byte that of an uninterrupted run; then a changed config is refused and
    `train.resume=never` refuses the run directory."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    data = tmp_path / "data"
    command = _train_command(tmp_path / "killed", data)
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    second = tmp_path / "killed" / "checkpoints" / "4"
    deadline = time.monotonic() + 120
    while not second.is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it was killed"
    assert not (tmp_path / "killed" / "model.eqx").exists()

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming from the checkpoint of step" in again.stderr + again.stdout
    # The uninterrupted run, in this process (the same computation: bitwise the same file).
    run(compose(command[command.index("experiments.train") + 1 :]), tmp_path / "whole")
    final = (tmp_path / "killed" / "model.eqx").read_bytes()
    assert final == (tmp_path / "whole" / "model.eqx").read_bytes()

    changed = [*TINY, "train.steps=20", "train.batch_size=3", f"problem.data_dir={data}"]
    with pytest.raises(ConfigError, match=r"train.batch_size \(checkpoint 2, now 3\)"):
        run(compose(changed), tmp_path / "killed")
    # Refused before anything was written: the run directory still records its own config.
    assert "batch_size: 2" in (tmp_path / "killed" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="train.resume=never.*not overwritten"):
        run(compose([*changed, "train.resume=never"]), tmp_path / "killed")


def test_weakly_typed_scalars_stay_weak(tmp_path):
    """orbax restores arrays strongly typed; a weak scalar (a Python float put in the state)
    must come back weak, or the continued steps would promote dtypes differently."""
    state = TrainState({"w": jnp.arange(3.0)}, {"lr": jnp.asarray(0.1)}, None, jr.key(0), 2)
    assert state.opt_state["lr"].weak_type
    checkpoints = Checkpointer(tmp_path, every=1)
    checkpoints.save(state, [])
    restored, _ = checkpoints.restore(state)
    checkpoints.close()
    assert restored.opt_state["lr"].weak_type and float(restored.opt_state["lr"]) == 0.1
    assert restored.step == 2 and bool(jnp.all(restored.model["w"] == jnp.arange(3.0)))


def test_config_differences_names_every_differing_key():
    stored = {"train": {"lr": 1e-3, "steps": 10}, "seed": 0, "old": 1}
    current = {"train": {"lr": 3e-3, "steps": 10}, "seed": 0, "new": {"a": 2}}
    assert config_differences(stored, current) == [
        "new.a (checkpoint '<absent>', now 2)",
        "old (checkpoint 1, now '<absent>')",
        "train.lr (checkpoint 0.001, now 0.003)",
    ]
    assert config_differences(stored, current, ("train", "new")) == [
        "old (checkpoint 1, now '<absent>')"
    ]
    assert config_differences(stored, stored) == []
