"""Every option of every config group instantiates; bad configs fail with a clear message."""

import functools
import inspect
from pathlib import Path

import hydra
import pytest
from beartype.door import is_bearable
from hydra.errors import ConfigCompositionException, InstantiationException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from experiments._common import CONFIG_DIR, compose, instantiate

GROUPS = sorted(p.name for p in Path(CONFIG_DIR).iterdir() if p.is_dir())

# The primary config whose defaults list each group belongs to (`config.yaml` otherwise).
PRIMARY = {
    "constrained_solver": "optimize",
    "linear_solver": "optimize",
    "reproduce": "reproduce",
}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def test_groups_exist():
    assert {"problem", "model", "constraint", "optimizer", "train"} <= set(GROUPS)
    assert {"constrained_solver", "linear_solver"} <= set(GROUPS)


# What a PDE's derivative source may ask of a model factory on top of the YAML
# (`AbstractDerivatives.model_options`, e.g. the orders of an autodiff basis), for a (t, x) grid.
MODEL_OPTIONS = {"orders": ((0, 0), (1, 0), (0, 1), (0, 2)), "coordinate_channels": 2}


def _check_instance(obj, target):
    """`obj` is what calling `target` returns: an instance of the class, or of the factory's
    annotated return type."""
    if isinstance(target, type):
        assert isinstance(obj, target), (type(obj), target)
    else:
        hint = inspect.signature(target).return_annotation
        assert hint is not inspect.Signature.empty, f"annotate the return type of {target}"
        assert is_bearable(obj, hint), (type(obj), hint)


def _check_value(actual, expected, where, called):
    if isinstance(expected, dict) and "_target_" in expected:
        _check_node(actual, expected, where, called)
    elif isinstance(expected, dict):
        assert set(actual) == set(expected), where
        for key, value in expected.items():
            _check_value(actual[key], value, f"{where}.{key}", called)
    elif isinstance(expected, list):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _check_value(a, e, f"{where}[{i}]", called)
    else:
        assert actual == expected, (where, actual, expected)


def _check_fields(attributes, node, where, called):
    """Every field of `node` that `attributes` has under its name equals the YAML value; a
    YAML `null` asks for the constructor's default, which the object may resolve."""
    for key, value in node.items():
        if not key.startswith("_") and key in attributes and value is not None:
            _check_value(attributes[key], value, f"{where}.{key}", called)


def _attributes(obj, node):
    return {k: getattr(obj, k) for k in node if not k.startswith("_") and hasattr(obj, k)}


def _check_node(obj, node, where, called=False):
    """`obj` was instantiated from the resolved YAML mapping `node`: its `_target_` resolves,
    `obj` is an instance of it (or a partial of it holding exactly the YAML fields; `called`:
    partials have been called, as inside a built model), and the fields it keeps under their
    own names equal the YAML values, recursively."""
    target = hydra.utils.get_object(node["_target_"])
    if node.get("_partial_", False) and not called:
        assert isinstance(obj, functools.partial) and obj.func is target, (where, obj)
        assert set(obj.keywords) == {k for k in node if not k.startswith("_")}, where
        _check_fields(obj.keywords, node, where, called)
    else:
        _check_instance(obj, target)
        _check_fields(_attributes(obj, node), node, where, called)


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in _options(g)], ids=lambda x: str(x)
)
def test_every_option_instantiates(group, option, getkey):
    cfg = compose([f"{group}={option}"], config_name=PRIMARY.get(group, "config"))
    node = OmegaConf.to_container(cfg[group], resolve=True)
    if group == "reproduce":  # Targets of experiments.reproduce; their runs: test_reproduce.py.
        assert "_target_" not in node and node["methods"] and node["scales"]
        return
    if group == "train":  # Plain settings read by `experiments.train`, no `_target_`.
        assert "_target_" not in node
        assert cfg[group].steps > 0 and cfg[group].batch_size > 0
        return
    obj = instantiate(cfg[group])
    _check_node(obj, node, group)
    if group == "model":  # Partial: the experiment supplies channels, key and model options.
        accepted = inspect.signature(obj.func).parameters
        options = {k: v for k, v in MODEL_OPTIONS.items() if k in accepted}
        model = obj(in_channels=3, out_channels=2, key=getkey(), **options)
        _check_node(model, node, group, called=True)


@pytest.mark.parametrize("linear_solver", _options("linear_solver"))
@pytest.mark.parametrize("constrained_solver", _options("constrained_solver"))
def test_constrained_solver_uses_linear_solver_group(constrained_solver, linear_solver):
    import lineax as lx

    from pdeopt.solvers import AbstractKKTSolver, ExactAugmentedLagrangianNewton

    cfg = compose(
        [f"constrained_solver={constrained_solver}", f"linear_solver={linear_solver}"],
        config_name="optimize",
    )
    solver = instantiate(cfg.constrained_solver)
    assert isinstance(solver, ExactAugmentedLagrangianNewton)
    kkt = instantiate(cfg.linear_solver)
    assert isinstance(solver.kkt_solver, AbstractKKTSolver)
    assert isinstance(solver.kkt_solver.linear_solver, lx.AbstractLinearSolver)
    assert type(solver.kkt_solver) is type(kkt)
    assert type(solver.kkt_solver.linear_solver) is type(kkt.linear_solver)


def test_optimize_defaults():
    cfg = compose(config_name="optimize")
    assert cfg.problem_name == "HS6"
    solver = instantiate(cfg.constrained_solver)
    assert type(solver.safeguards).__name__ == "FaithfulSafeguards"
    assert type(solver.kkt_solver.linear_solver).__name__ == "LU"


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
    with pytest.raises(ConfigCompositionException) as e:
        compose(["linear_solver=cholesky"], config_name="optimize")
    assert "cholesky" in str(e.value)


@pytest.mark.parametrize(
    "override,match",
    [
        ("problem.nx=-64", "problem.nx"),
        ("problem.nt=0", "problem.nt"),
        ("problem.ic=gaussian", "problem.ic"),
        ("optimizer.learning_rate=0", "optimizer.learning_rate"),
        ("constraint.loss_weights={pde:-1.0}", "weight 'pde'"),
    ],
)
def test_impossible_values(override, match):
    cfg = compose([override])
    group = override.split(".")[0]
    with pytest.raises(InstantiationException, match=match):
        instantiate(cfg[group])


def test_impossible_solver_values():
    cfg = compose(["constrained_solver.beta=0.7"], config_name="optimize")
    with pytest.raises(InstantiationException, match="beta"):
        instantiate(cfg.constrained_solver)


def test_optimize_runs_hs6(capsys):
    """`experiments.optimize` end to end on HS6: the faithful LU history of the paper."""
    from experiments.optimize import run

    summary = run(compose(["problem_name=HS6"], config_name="optimize"))
    out = capsys.readouterr().out
    assert summary["success"] and summary["num_steps"] == 9 and summary["kkt"] < 1e-4
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["iter", "KKT"])
    history = [line.split() for line in lines[header + 2 : header + 11]]
    assert [int(row[0]) for row in history] == list(range(1, 10))
    assert [float(row[2]) for row in history] == [0.125] * 4 + [0.25] * 2 + [0.5, 1.0, 1.0]
    assert all(int(row[3]) == 1 for row in history)  # LU: one inner step per iteration
    assert "result: successful" in out
    assert "outer iterations: ours 9, paper GV 9, RK 9" in out


def test_optimize_help():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "experiments.optimize", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(CONFIG_DIR).parent,
    ).stdout
    assert "constrained_solver: faithful, practical" in out
    assert "gaussian_sketch" in out and "problem_name: HS6" in out


@pytest.mark.parametrize(
    "launcher,plugin,target",
    [
        ("local_joblib", "hydra_joblib_launcher", "JoblibLauncher"),
        ("slurm", "hydra_submitit_launcher", "SlurmLauncher"),
    ],
)
def test_launcher_configs_compose(launcher, plugin, target):
    """`configs/hydra/launcher/*.yaml` compose over their plugin's defaults (the plugins are
    the optional `launchers` extra)."""
    pytest.importorskip(f"hydra_plugins.{plugin}")
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = hydra_compose(
            "config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True
        )
    assert cfg.hydra.launcher._target_.endswith(target)
    if launcher == "slurm":  # requeued after a timeout; the run resumes from its checkpoints
        assert cfg.hydra.launcher.max_num_timeout > 0 and cfg.hydra.launcher.gpus_per_node == 1
        assert cfg.train.resume.value == "auto"


@pytest.mark.slow  # two tiny MoE runs in two worker processes: about 2 minutes on a 2-core CPU
def test_joblib_multirun(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    import os
    import subprocess
    import sys

    root = Path(CONFIG_DIR).parent
    overrides = [
        "problem.nx=16", "problem.nt=9", "problem.n_train=4", "problem.n_test=2",
        "model.width=8", "model.modes=[4,4]", "model.depth=2", "model.projection_channels=16",
        "train.batch_size=2", "train.steps=2", "train.eval_every=0", "train.progress=false",
        "constraint.num_basis=4", "constraint.num_points=12",
    ]  # fmt: skip
    command = [sys.executable, "-m", "experiments.train", "-m", "seed=0,1", "constraint=moe"]
    command += ["hydra/launcher=local_joblib", *overrides]
    command += [f"problem.data_dir={tmp_path / 'data'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "model.eqx").is_file()
