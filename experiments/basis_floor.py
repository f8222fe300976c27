"""How well can a basis shared by all samples represent a problem's solutions?

`python -m experiments.basis_floor problem=<name> [num_basis=[8,16,32,50]]` takes the problem's
training solutions, finds their principal directions (the SVD of the flattened fields), and
prints, for each N of `num_basis`, the test relative L2 error of the best approximation of
every test solution in the span of the first N directions (mean and max over the test
samples), one line per N.

That span is the best N-dimensional linear space for the training data in the L2 sense, so
the error estimates the floor of any method whose basis is the same for every sample (a
coordinate network with `Autodiff` quantities, whose weights alone carry the sample): it
cannot beat the best fit to the reference itself. It says nothing about a basis generated
per sample (an FNO that reads the condition).
"""

import hydra
import numpy as np
from omegaconf import DictConfig

from experiments._common import CONFIG_DIR, instantiate
from experiments._schema import ConfigError
from experiments._validate import check_config


def floor(train: np.ndarray, test: np.ndarray, num_basis: list[int]) -> dict[int, tuple]:
    """Per N: (mean, max) over the test samples of the relative L2 error of the projection
    onto the first N principal directions of `train` (both `[n, ...]`, flattened per
    sample)."""
    train = train.reshape(len(train), -1)
    test = test.reshape(len(test), -1)
    if train.shape[1] != test.shape[1]:
        raise ConfigError(
            f"The train and test solutions lie on different grids ({train.shape[1]} and "
            f"{test.shape[1]} values); a shared basis needs one grid: set the test grid to the "
            "training grid."
        )
    too_many = [n for n in num_basis if not 0 < n <= min(train.shape)]
    if too_many:
        raise ConfigError(
            f"num_basis {too_many} must lie in 1..{min(train.shape)} (the training samples "
            "and grid values); raise problem.n_train or lower num_basis."
        )
    directions = np.linalg.svd(train, full_matrices=False)[2]
    norms = np.linalg.norm(test, axis=1)
    result = {}
    for n in num_basis:
        v = directions[:n]
        errors = np.linalg.norm(test - (test @ v.T) @ v, axis=1) / norms
        result[n] = (float(errors.mean()), float(errors.max()))
    return result


def run(cfg: DictConfig) -> dict[int, tuple]:
    import jax

    jax.config.update("jax_enable_x64", True)
    check_config(cfg, ("problem",))
    problem = instantiate(cfg.problem)
    train, test = problem.load()
    result = floor(np.asarray(train.solutions), np.asarray(test.solutions), list(cfg.num_basis))
    print(f"{type(problem).__name__}: {len(train)} training, {len(test)} test solutions")
    for n, (mean, worst) in result.items():
        print(f"N={n} best shared-basis test_rel_l2: mean={mean:.4e} max={worst:.4e}")
    return result


@hydra.main(config_path=CONFIG_DIR, config_name="basis_floor", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
