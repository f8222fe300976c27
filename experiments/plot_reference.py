"""Plot one reference solution of a problem: `python -m experiments.plot_reference OUT.png`.

Takes Hydra-style overrides after the output path, e.g. `problem.ic=smooth`.
"""

import sys
from pathlib import Path

import jax
import jax.random as jr
import numpy as np

from experiments._common import compose, instantiate


def main(out: str, overrides: list[str]) -> None:
    jax.config.update("jax_enable_x64", True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from problems.diffusion_sorption import sample_initial_conditions

    problem = instantiate(compose(overrides).problem)
    pde = problem.pde
    u0 = sample_initial_conditions(pde, 3, problem.ic, key=jr.key(problem.seed))
    solutions = np.asarray(jax.vmap(lambda u: problem.solver.solve(pde, u))(u0))
    t, x = pde.coordinates()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    image = axes[0].imshow(solutions[0], aspect="auto", extent=(x[0], x[-1], t[-1], t[0]))
    axes[0].set(title=f"u(t, x), u0 = {float(u0[0, 0]):.3f}", xlabel="x", ylabel="t [s]")
    fig.colorbar(image, ax=axes[0])
    for k in range(0, len(t), max(1, len(t) // 5)):
        axes[1].plot(x, solutions[0, k], label=f"t = {t[k]:.0f} s")
    axes[1].set(title="profiles", xlabel="x", ylabel="u")
    axes[1].legend()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m experiments.plot_reference OUT.png [overrides...]")
    main(sys.argv[1], sys.argv[2:])
