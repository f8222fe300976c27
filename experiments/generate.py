"""Generate a problem's data set: `python -m experiments.generate problem=<name> [overrides]`.

Works for every problem node that implements `pdeopt.data.SampleGenerator`. Writes the
problem's cache file (or `output=<path>`) in its PDEBench layout, with a `.sha256` digest next
to it. Interrupt it at any time: rerunning the same command keeps the finished chunks (under
`<file>.parts/`) and solves only the rest. The last line printed is `wrote <path> sha256=<hex>`.
"""

import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from experiments._common import CONFIG_DIR, instantiate

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Path:
    """Generate the data of `cfg.problem` into `cfg.output` (default: its cache file)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from pdeopt.data import file_digest, generate_file

    problem = instantiate(cfg.problem)
    path = Path(cfg.output) if cfg.output is not None else Path(problem.cache_path)
    start = time.perf_counter()
    generate_file(problem, path, chunk_size=cfg.chunk_size, progress=cfg.progress)
    wall = time.perf_counter() - start
    print(f"{problem.num_samples} samples in {wall:.1f}s ({problem.data_layout} layout)")
    print(f"wrote {path} sha256={file_digest(path)}")
    return path


@hydra.main(config_path=CONFIG_DIR, config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
