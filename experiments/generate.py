"""Generate a problem's data set: `python -m experiments.generate problem=<name> [overrides]`.

Works for every problem (`problems.AbstractProblem`). Writes the problem's cache files (one,
or one per split when the test grid differs; or `output=<path>`) in its PDEBench layout, with a
`.sha256` digest next to each. Interrupt it at any time: rerunning the same command keeps the
finished chunks (under `<file>.parts/`) and solves only the rest. The last line printed is
`wrote <path> sha256=<hex>`.
"""

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments._common import CONFIG_DIR, instantiate
from experiments._validate import check_config

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> list[Path]:
    """Generate the data of `cfg.problem` into its cache files (or `cfg.output`)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    check_config(cfg, ("problem",))
    from pdeopt.data import file_digest, generate_file

    problem = instantiate(cfg.problem)
    start = time.perf_counter()
    if cfg.output is None:
        paths = problem.generate(chunk_size=cfg.chunk_size, progress=cfg.progress)
    else:
        splits = problem.splits()
        if len(splits) > 1:
            raise ValueError(
                f"{type(problem).__name__} writes one file per split ({len(splits)}); leave "
                "output unset to write them to problem.data_dir."
            )
        paths = [
            generate_file(splits[0], cfg.output, chunk_size=cfg.chunk_size, progress=cfg.progress)
        ]
    wall = time.perf_counter() - start
    print(f"{problem.num_samples} samples in {wall:.1f}s ({problem.data_layout} layout)")
    for path in paths:
        print(f"wrote {path} sha256={file_digest(path)}")
    return paths


@hydra.main(config_path=CONFIG_DIR, config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
