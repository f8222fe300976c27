"""Helpers shared by the experiment entry points."""

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")


def instantiate(node: DictConfig, **kwargs):
    """Instantiate one config node: the single place configs become objects."""
    return hydra.utils.instantiate(node, _convert_="all", **kwargs)


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """The composed config, outside `@hydra.main` (tests, notebooks)."""
    from hydra import compose as _compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return _compose(config_name=config_name, overrides=overrides or [])


def save_config(cfg: DictConfig, path: Path) -> None:

    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
