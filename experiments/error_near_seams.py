"""Where does a trained model's test error sit? Its share within `--width` cells of the seams.

`python -m experiments.error_near_seams RUN_DIR [RUN_DIR ...] [--width 1]`

For each run directory written by `experiments.train` (its `config.yaml` and `model.eqx`),
predicts the test split and prints the per-sample relative L2 and the share of the squared
test error Σ(u − u_ref)² that lies in the grid columns within `--width` cells of an interface
between the spatial experts of a (1, K) partition (K from the run's constraint, or 4 for runs
without experts, so that PI-HC can be compared on the same columns).
"""

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from omegaconf import OmegaConf

from experiments._common import instantiate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--width", type=int, default=1)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    from pdeopt.data import relative_l2
    from pdeopt.training import PhysicsLoss, load_checkpoint, predict

    for run in args.runs:
        cfg = OmegaConf.load(run / "config.yaml")
        problem, constraint = instantiate(cfg.problem), instantiate(cfg.constraint)
        _, test = problem.load()
        model = instantiate(cfg.model)(
            in_channels=problem.in_channels, out_channels=constraint.num_outputs, key=jr.key(0)
        )
        model = load_checkpoint(run / "model.eqx", model)
        loss = PhysicsLoss(problem.pde, constraint)
        conditions = jnp.asarray(test.conditions)
        pred, _ = predict(loss.predict_one, model, conditions, jr.fold_in(jr.key(cfg.seed), 1))
        pred = np.asarray(pred, np.float64)
        errors = np.asarray(jax.vmap(relative_l2)(jnp.asarray(pred), jnp.asarray(test.solutions)))
        column = np.sum((pred - test.solutions) ** 2, axis=(0, 1))
        parts = int(cfg.constraint.get("parts", [1, 4])[-1])
        nx = column.size
        seams = np.arange(1, parts) * (nx // parts)
        cells = np.arange(nx)
        distance = np.min(
            [np.minimum(np.abs(cells - s), np.abs(cells - (s - 1))) for s in seams], axis=0
        )
        near = distance < args.width
        print(
            f"{run}: test rel. L2 {errors.mean():.4f} ± {errors.std():.4f}; "
            f"{column[near].sum() / column.sum():.1%} of the squared error in the "
            f"{near.mean():.0%} of columns within {args.width} cell(s) of the {parts - 1} seams"
        )


if __name__ == "__main__":
    main()
