"""Every option of every config group instantiates; bad configs fail with a clear message."""

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, InstantiationException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from experiments._common import CONFIG_DIR, compose, instantiate

GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir())


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def test_groups_exist():
    assert {"problem", "model", "constraint", "optimizer", "train"} <= set(GROUPS)


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in _options(g)], ids=lambda x: str(x)
)
def test_every_option_instantiates(group, option, getkey):
    cfg = compose([f"{group}={option}"])
    node = cfg[group]
    if group == "train":
        assert node.steps > 0 and node.batch_size > 0
        return
    obj = instantiate(node)
    if group == "model":  # Partial: the experiment supplies channels and key.
        model = obj(in_channels=3, out_channels=2, key=getkey())
        assert model is not None
    assert obj is not None


def test_overrides_apply():
    cfg = compose(["model.width=16", "train.steps=50", "problem.nx=128"])
    assert cfg.model.width == 16 and cfg.train.steps == 50 and cfg.problem.nx == 128
    assert instantiate(cfg.problem).pde.nx == 128


def test_unknown_key_names_it():
    with pytest.raises((ConfigCompositionException, ConfigKeyError, ConfigAttributeError)) as e:
        compose(["model.widht=16"])
    assert "widht" in str(e.value) or "widht" in str(e.value.__cause__)


def test_unknown_option_names_it():
    with pytest.raises(ConfigCompositionException) as e:
        compose(["model=transformer"])
    assert "transformer" in str(e.value)


@pytest.mark.parametrize(
    "override,match",
    [
        ("problem.nx=-64", "problem.nx"),
        ("problem.nt=0", "problem.nt"),
        ("problem.ic=gaussian", "problem.ic"),
        ("optimizer.learning_rate=0", "optimizer.learning_rate"),
        ("constraint.weights.pde=-1.0", "weight 'pde'"),
    ],
)
def test_impossible_values(override, match):
    cfg = compose([override])
    group = override.split(".")[0]
    with pytest.raises(InstantiationException, match=match):
        instantiate(cfg[group])
