"""Helpers shared by the experiment entry points."""

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from experiments._schema import check_schema, register

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "configs")
register()  # The primary configs' schemas, for `@hydra.main` apps and `compose()` alike.


def instantiate(node: DictConfig, **kwargs):
    """Instantiate one config node: the single place configs become objects."""
    return hydra.utils.instantiate(node, _convert_="all", **kwargs)


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """The composed config, outside `@hydra.main` (tests, notebooks), checked against its
    schema (`experiments._schema.check_schema`)."""
    from hydra import compose as _compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = _compose(config_name=config_name, overrides=overrides or [])
    check_schema(cfg)
    return cfg


def save_config(cfg: DictConfig, path: Path) -> None:

    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
