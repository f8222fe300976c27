"""Structured-config schemas of the experiment configs, checked when Hydra composes them.

The plain settings (`train`, `seed`, the options of `generate.yaml` and `optimize.yaml`)
have typed schemas: a value of the wrong type, or a key the schema lacks, fails composition
with its full key. The values themselves live in the YAML files (the schemas hold `???`),
so each default is written once. The groups of `_target_` nodes (`problem`, `model`, ...)
are typed `Any` here: their keys are the constructors' arguments, which
`experiments._validate` checks against the signatures.

`register()` stores the schemas in Hydra's `ConfigStore` (`experiments._common` calls it on
import, so that `@hydra.main` apps and `compose()` both see them); the primary configs
name them first in their defaults lists.
"""

import dataclasses
import difflib
import enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf


class ConfigError(ValueError):
    """A config value that cannot work; the message names its full key and the fix."""


class Resume(enum.Enum):
    """`train.resume`: what a run does with the checkpoints in its run directory."""

    auto = "auto"  # continue from the newest valid checkpoint, else start afresh
    must = "must"  # continue; fail if there is no checkpoint
    never = "never"  # start afresh; fail if the run directory holds checkpoints


@dataclasses.dataclass
class MeshConfig:
    """`train.mesh`: devices along the mesh axes `data` and `experts` (-1: the rest)."""

    data: int = MISSING
    experts: int = MISSING


@dataclasses.dataclass
class DistributedConfig:
    """`train.distributed`: the multi-process settings (`jax.distributed.initialize`)."""

    enabled: bool = MISSING
    coordinator_address: str | None = MISSING
    num_processes: int | None = MISSING
    process_id: int | None = MISSING


@dataclasses.dataclass
class TrainConfig:
    """`train`: the training loop's settings (`configs/train/*.yaml`)."""

    steps: int = MISSING
    lr_decay_every: int = MISSING
    batch_size: int = MISSING
    eval_every: int = MISSING
    eval_batch_size: int = MISSING
    progress: bool = MISSING
    log_every: int = MISSING
    max_failure_rate: float = MISSING
    failure_patience: int = MISSING
    checkpoint_every: int = MISSING
    keep_checkpoints: int = MISSING
    resume: Resume = MISSING
    mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)


@dataclasses.dataclass
class TrainExperiment:
    """`config.yaml`: `python -m experiments.train`."""

    problem: Any = MISSING
    model: Any = MISSING
    constraint: Any = MISSING
    optimizer: Any = MISSING
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    seed: int = MISSING


@dataclasses.dataclass
class GenerateExperiment:
    """`generate.yaml`: `python -m experiments.generate`."""

    problem: Any = MISSING
    output: str | None = MISSING
    chunk_size: int = MISSING
    progress: bool = MISSING


@dataclasses.dataclass
class BasisFloorExperiment:
    """`basis_floor.yaml`: `python -m experiments.basis_floor`."""

    problem: Any = MISSING
    num_basis: list[int] = MISSING


@dataclasses.dataclass
class OptimizeExperiment:
    """`optimize.yaml`: `python -m experiments.optimize`."""

    constrained_solver: Any = MISSING
    linear_solver: Any = MISSING
    problem_name: str = MISSING
    size: int = MISSING
    dataset: str = MISSING
    max_steps: int = MISSING
    max_inner_steps: int | None = MISSING
    preconditioned: bool = MISSING
    seed: int = MISSING


@dataclasses.dataclass
class ReproduceMethod:
    """`reproduce.methods.<id>`: one row of a reproduced table."""

    label: str = MISSING
    overrides: list[str] = MISSING  # the runner's overrides, e.g. [constraint=soft]
    paper: float | None = MISSING  # the paper's number, in the metric's unit; null: none


@dataclasses.dataclass
class ReproduceMetric:
    """`reproduce.metric` and `reproduce.columns[i]`: a number read from each run's metrics."""

    key: str = MISSING  # dotted path into the run's metrics, e.g. constraint_report.seam_rms
    label: str = MISSING
    unit: str = MISSING
    scale: float = MISSING  # shown value = scale * stored value (100: a fraction as %)
    definition: str = MISSING


@dataclasses.dataclass
class ReproduceScale:
    """`reproduce.scales.<scale>`: the sizes of one scale (smoke, small, paper)."""

    seeds: list[int] = MISSING
    overrides: list[str] = MISSING  # for every method
    methods: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # per method id
    # null: the target's columns; a list: this scale's instead (e.g. its test resolutions)
    columns: list[ReproduceMetric] | None = None


@dataclasses.dataclass
class ReproduceTarget:
    """`configs/reproduce/<target>.yaml`: one table of a paper."""

    title: str = MISSING
    source: str = MISSING  # the paper and where in it the numbers are
    runner: str = MISSING  # experiments.reproduce.RUNNERS key
    metric: ReproduceMetric = dataclasses.field(default_factory=ReproduceMetric)
    paper_metric: str | None = MISSING  # what the paper's numbers measure; null: no numbers
    columns: list[ReproduceMetric] = dataclasses.field(default_factory=list)
    overrides: list[str] = MISSING  # for every method and scale
    methods: dict[str, ReproduceMethod] = dataclasses.field(default_factory=dict)
    scales: dict[str, ReproduceScale] = dataclasses.field(default_factory=dict)
    ordering: list[str] | None = None  # the paper's ranking of methods, best (lowest) first
    notes: str | None = None  # markdown: known causes of differences from the paper


@dataclasses.dataclass
class ReproduceExperiment:
    """`reproduce.yaml`: `python -m experiments.reproduce <target>`."""

    reproduce: ReproduceTarget = dataclasses.field(default_factory=ReproduceTarget)
    scale: str = MISSING
    seeds: list[int] | None = MISSING  # null: the scale's seeds
    out: str | None = MISSING  # null: outputs/reproduce/<target>/<scale>
    only: list[str] | None = MISSING  # null: every method of the target


SCHEMAS = {
    "train_schema": TrainExperiment,
    "reproduce_schema": ReproduceExperiment,
    "generate_schema": GenerateExperiment,
    "basis_floor_schema": BasisFloorExperiment,
    "optimize_schema": OptimizeExperiment,
}


def register() -> None:
    """Store the schemas in Hydra's `ConfigStore` under the names of `SCHEMAS`."""
    store = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        store.store(name=name, node=schema)


def check_schema(cfg: DictConfig) -> None:
    """Raise `ConfigError` for a value left `???` or a key that a schema does not have.

    Hydra's `+key=value` adds a key even to a structured node, which OmegaConf then keeps;
    this check refuses it (`+train.stepz=50`, the fix Hydra suggests for a misspelt
    `train.stepz=50`).
    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"{missing[0]} has no value; set it in its config file or on the command line "
            f"({missing[0]}=...)."
        )
    _check_keys(cfg, "")


def _check_keys(node: DictConfig, where: str) -> None:
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return
    fields = [f.name for f in dataclasses.fields(schema)]
    for key in node:
        name = f"{where}{key}"
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" Did you mean {where}{close[0]}?" if close else ""
            raise ConfigError(
                f"{name} is not a setting of {where.rstrip('.') or 'the config'} "
                f"({schema.__name__}: {', '.join(fields)}).{hint} Remove the +{name} override."
            )
        if isinstance(node[key], DictConfig):
            _check_keys(node[key], f"{name}.")
