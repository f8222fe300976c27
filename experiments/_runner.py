"""How `experiments.reproduce` makes the runs of a target (`Runner`), and the runner of a
benchmark that is a Python function of a flat config (`benchmark_runner`)."""

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from experiments._schema import ConfigError
from pdeopt._files import atomic_write
from pdeopt.training import config_differences, save_json


@dataclasses.dataclass(frozen=True)
class Runner:
    """How a target's runs are made.

    - `prepare(overrides)`: compose and check one run's config (raising `ConfigError`).
    - `run(cfg, run_dir)`: run it and return its metrics, also written to
        `run_dir/metrics.json` with `status: ok` when complete.
    - `differences(cfg, run_dir)`: the keys at which the run stored in `run_dir` (if any) was
        made with another config: such a directory is never reused.
    - `model_dtype(cfg)`: the dtype of the run's computation, for `results.json`.
    - `details(results)`: markdown shown under the target's table (e.g. per-problem rows),
        from the contents of `results.json`; `None`: nothing.
    - `plot(results, path)`: the target's figure, when the bar chart of the metric per
        method is not the paper's figure; `None`: the bar chart.
    """

    prepare: Callable[[list[str]], DictConfig]
    run: Callable[[DictConfig, Path], dict]
    differences: Callable[[DictConfig, Path], list[str]]
    model_dtype: Callable[[DictConfig], str | None]
    details: Callable[[dict], str] | None = None
    plot: Callable[[dict, Path], None] | None = None


def stored_differences(cfg: DictConfig, run_dir: Path, cosmetic=()) -> list[str]:
    """The keys (not under `cosmetic`) at which `run_dir/config.yaml`, if any, differs from
    `cfg`."""
    stored = run_dir / "config.yaml"
    if not stored.is_file():
        return []
    current = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return config_differences(OmegaConf.to_container(OmegaConf.load(stored)), current, cosmetic)


def benchmark_runner(
    defaults: Mapping,
    measure: Callable[[DictConfig, Path], dict],
    *,
    details: Callable[[dict], str] | None = None,
    plot: Callable[[dict, Path], None] | None = None,
) -> Runner:
    """A runner whose run is `measure(cfg, run_dir) -> metrics` on a config of `defaults`
    (a nested dict, with `seed` and `dtype`) overridden by `key=value` overrides.

    Unknown keys are refused with the list of known ones. The config is saved as
    `run_dir/config.yaml` before `measure` starts, and `metrics.json` (with `status: ok`)
    atomically after it returns, so a killed run is never taken for a complete one.
    """
    if "seed" not in defaults or "dtype" not in defaults:
        raise ValueError("A benchmark's defaults need `seed` and `dtype` keys.")

    def prepare(overrides: list[str]) -> DictConfig:
        cfg = OmegaConf.create(dict(defaults))
        OmegaConf.set_struct(cfg, True)
        try:
            return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        except OmegaConfBaseException as error:
            known = ", ".join(_keys(defaults))
            raise ConfigError(f"{error.msg.splitlines()[0]}; the keys are: {known}.") from None

    def run(cfg: DictConfig, run_dir: Path) -> dict:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / "config.yaml") as tmp:
            tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        metrics = {**measure(cfg, run_dir), "status": "ok"}
        save_json(run_dir / "metrics.json", metrics)
        return metrics

    return Runner(
        prepare,
        run,
        lambda cfg, run_dir: stored_differences(cfg, run_dir),
        lambda cfg: str(cfg.dtype),
        details,
        plot,
    )


def _keys(tree: Mapping, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            keys += _keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def load_metrics(run_dir: Path) -> dict:
    """The `metrics.json` of a run directory."""
    return json.loads((run_dir / "metrics.json").read_text())
