"""Checks of a composed config before an experiment does any work.

`check_config` is what every entry point runs first; `validate` is the whole check of a
training config, run by `experiments.train.run` before any data are generated. Every
failure is an `experiments._schema.ConfigError` whose message names the full key.
"""

import difflib
import inspect
import math
import re
import typing
from collections.abc import Iterable
from pathlib import Path

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from experiments._common import instantiate
from experiments._schema import ConfigError, Resume, check_schema

TRAIN_GROUPS = ("problem", "model", "constraint", "optimizer", "train")

# Hydra's own keys of a `_target_` node.
_HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})

# train.<name>: the least value it may take, and what it counts.
_TRAIN_MINIMA = {
    "steps": (1, "training steps"),
    "lr_decay_every": (1, "steps between learning-rate decays"),
    "batch_size": (1, "training samples per step"),
    "eval_every": (0, "steps between evaluations; 0: only at the end"),
    "eval_batch_size": (1, "test samples per evaluation batch"),
    "log_every": (1, "steps between history records"),
    "failure_patience": (1, "consecutive steps over train.max_failure_rate before stopping"),
    "checkpoint_every": (0, "steps between checkpoints; 0: none"),
    "keep_checkpoints": (1, "checkpoints kept"),
}


def check_config(cfg: DictConfig, groups: Iterable[str]) -> None:
    """The checks every entry point shares: the schema (`check_schema`), then in each of
    `groups` no NaN or inf anywhere, and the keys of every `_target_` node (nested ones
    included) against the target's signature.

    **Arguments:**

    - `cfg`: a composed config.
    - `groups`: the top-level keys to check, e.g. `("problem",)`.

    **Returns:** nothing; raises `ConfigError`.
    """
    check_schema(cfg)
    for group in groups:
        _check_values(OmegaConf.to_container(cfg[group], resolve=True), group)


def validate(cfg: DictConfig) -> tuple:
    """Check a training config (`config.yaml`) before any data are generated.

    Beyond `check_config` on the groups of `TRAIN_GROUPS`: the ranges of the `train`
    settings and `train.batch_size <= problem.n_train`; then the problem, constraint and
    optimizer are instantiated, the model is built abstractly (`equinox.filter_eval_shape`,
    nothing allocated) for the problem's input channels and the constraint's outputs, and
    the constraint checks itself against the training and the test PDE (`check(pde)`).

    **Arguments:**

    - `cfg`: a composed training config.

    **Returns:** the problem, constraint and optimizer it built, `(problem, constraint,
    optimizer)`, for the run to use; raises `ConfigError`.
    """
    check_config(cfg, TRAIN_GROUPS)
    for name, (least, what) in _TRAIN_MINIMA.items():
        if cfg.train[name] < least:
            raise ConfigError(
                f"train.{name}={cfg.train[name]} is too small; set it to an integer >= {least} "
                f"({what})."
            )
    if not 0 <= cfg.train.max_failure_rate <= 1:
        raise ConfigError(
            f"train.max_failure_rate={cfg.train.max_failure_rate} is not a fraction; set it "
            "in [0, 1] (1: never stop for failed constraint solves)."
        )
    if cfg.train.checkpoint_every == 0 and Resume(cfg.train.resume) is Resume.must:
        raise ConfigError(
            "train.resume=must needs checkpoints, but train.checkpoint_every=0 turns them off; "
            "set train.checkpoint_every to the interrupted run's value (e.g. 100)."
        )
    problem = _build(cfg, "problem")
    if problem.data_path is not None and not Path(problem.data_path).is_file():
        raise ConfigError(
            f"problem.data_path={problem.data_path} is not a file; point it at your data file "
            "(a PDEBench .h5/.hdf5), or set problem.data_path=null to generate the data."
        )
    if cfg.train.batch_size > problem.n_train:
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size} exceeds problem.n_train="
            f"{problem.n_train}, the training set: lower train.batch_size to at most "
            f"{problem.n_train} or raise problem.n_train."
        )
    constraint = _build(cfg, "constraint")
    optimizer = _build(cfg, "optimizer")
    _check_mesh(cfg, problem, constraint)
    _check_model(cfg, problem, constraint)
    for split, pde in (("training", problem.pde), ("test", problem.test_pde)):
        try:
            constraint.check(pde)
        except ValueError as error:
            raise ConfigError(
                f"{error} (constraint {cfg.constraint._target_} on the {split} grid "
                f"{pde.grid_shape} of {type(pde).__name__})"
            ) from None
    return problem, constraint, optimizer


def build_mesh(cfg: DictConfig):
    """The training mesh of `train.mesh` over every device, or `None` on one device (the
    single-device run needs none); raises `ConfigError`."""
    from pdeopt.training import make_mesh

    if (
        jax.device_count() == 1
        and cfg.train.mesh.data in (1, -1)
        and cfg.train.mesh.experts in (1, -1)
    ):
        return None
    try:
        return make_mesh(cfg.train.mesh.data, cfg.train.mesh.experts)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_mesh(cfg: DictConfig, problem, constraint) -> None:
    """`train.mesh` against the device count, `train.batch_size` and the expert count."""
    from pdeopt.training import PhysicsLoss, check_mesh

    mesh = build_mesh(cfg)
    if mesh is None:
        return
    try:
        check_mesh(mesh, cfg.train.batch_size, PhysicsLoss(problem.pde, constraint))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _check_values(value, key: str) -> None:
    """NaN/inf, and the keys of `_target_` nodes, in a resolved config container."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}={value} is not a finite number; set {key} to a finite value.")
    if isinstance(value, dict):
        if "_target_" in value:
            _check_arguments(value, key)
        for name, item in value.items():
            _check_values(item, f"{key}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_values(item, f"{key}[{i}]")


def _check_arguments(node: dict, key: str) -> None:
    path = node["_target_"]
    try:
        target = hydra.utils.get_object(path)
    except Exception as error:
        raise ConfigError(f"{key}._target_={path} cannot be imported: {error}") from None
    accepted = _arguments(target)
    if accepted is None:  # **kwargs: the instantiation reports an unknown key.
        return
    for name in node:
        if name not in _HYDRA_KEYS and name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            hint = f" Did you mean {key}.{close[0]}?" if close else ""
            takes = f"takes the arguments {', '.join(accepted)}" if accepted else "takes none"
            raise ConfigError(f"{key}.{name} is not an argument of {path}, which {takes}.{hint}")


def _arguments(target) -> list[str] | None:
    """The keyword arguments `target` accepts; `None` if it takes `**kwargs` other than
    those of the class it returns (`MoEHardConstraint(parts, **kwargs) -> HardConstraint`)."""
    try:
        parameters = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [p.name for p in parameters if p.kind in kinds]
    if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters):
        return names
    try:
        returns = None if isinstance(target, type) else typing.get_type_hints(target)["return"]
    except (KeyError, NameError, TypeError):
        return None
    forwarded = _arguments(returns) if isinstance(returns, type) else None
    return None if forwarded is None else names + [n for n in forwarded if n not in names]


def _build(cfg: DictConfig, group: str):
    """`instantiate(cfg[group])`, its failure a `ConfigError` naming the failing node."""
    try:
        return instantiate(cfg[group])
    except InstantiationException as error:
        raise _instantiation_error(cfg, group, error) from error.__cause__


def _instantiation_error(cfg: DictConfig, group: str, error: InstantiationException):
    found = re.search(r"full_key: (\S+)", str(error))
    cause = error.__cause__ if error.__cause__ is not None else error
    return ConfigError(
        f"{found.group(1) if found else group} ({cfg[group]._target_}) cannot be built: {cause}"
    )


def _find_key(value, name: str, key: str) -> str | None:
    """The first key under `key` whose last part is `name`, in a config container."""
    if isinstance(value, dict):
        if name in value:
            return f"{key}.{name}"
        for k, v in value.items():
            found = _find_key(v, name, f"{key}.{k}")
            if found is not None:
                return found
    return None


def _check_model(cfg: DictConfig, problem, constraint) -> None:
    """Build the model as `experiments.train.run` does, abstractly: shapes and dtypes only."""
    from experiments.train import build_model  # experiments.train imports this module

    pde = problem.pde
    # The condition of one sample, as `problem.load()` gives it: the initial slice of the
    # solution, or the stored per-sample input (drawn for one sample, without solving).
    if problem.condition_input is None:
        condition = jax.ShapeDtypeStruct(pde.grid_shape[1:], jnp.float64)
    else:
        stored = problem.stored_condition(pde, problem.sample_inputs(pde, np.arange(1)))
        condition = jax.ShapeDtypeStruct(np.shape(stored)[1:], jnp.float64)
    in_channels = jax.eval_shape(pde.inputs, condition).shape[-1]
    try:
        eqx.filter_eval_shape(build_model, cfg.model, pde, in_channels, constraint, jr.key(0))
    except InstantiationException as error:
        raise _instantiation_error(cfg, "model", error) from error.__cause__
    except (TypeError, ValueError) as error:
        # Models name an argument `name` or `name=value`; jaxtyping "parameter 'name'".
        names = re.findall(r"`(\w+)[=`]|parameter '(\w+)'", str(error))
        names = [a or b for a, b in names]
        model = OmegaConf.to_container(cfg.model, resolve=True)
        keys = [k for k in (_find_key(model, n, "model") for n in names) if k is not None]
        raise ConfigError(
            f"{keys[0] if keys else 'model'}: {error} (model {cfg.model._target_} with "
            f"in_channels={in_channels}, out_channels={constraint.num_outputs})"
        ) from error
