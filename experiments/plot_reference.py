"""Plot one reference solution of a problem: `python -m experiments.plot_reference problem=NAME`.

Takes Hydra-style overrides (e.g. `problem=darcy problem.n=64`) and writes
`docs/problems/NAME.png`, or the path given first (`... OUT.png problem=darcy`). The figure
shows test sample 0 of the problem's data (generated and cached on first use, as in training):

- a `(t, x)` solution as an image (t down) and profiles at six times;
- a steady 2-D solution beside its condition field (the coefficient or forcing);
- a `(t, x, y)` solution at its first, middle and last time.
"""

import sys
from pathlib import Path

import jax
import numpy as np

from experiments._common import compose, instantiate
from experiments._plots import axis_names, image_slice

DOCS = Path(__file__).resolve().parent.parent / "docs" / "problems"


def main(out: Path, overrides: list[str]) -> None:
    jax.config.update("jax_enable_x64", True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problem = instantiate(compose(overrides).problem)
    _, test = problem.load()
    u, condition = np.asarray(test.solutions[0]), np.asarray(test.conditions[0])
    coords = [np.asarray(c) for c in problem.pde.coordinates()]
    title = f"{type(problem.pde).__name__} {'×'.join(map(str, u.shape))}, test sample 0"
    if condition.size == 1:  # A parameter (the porous-medium exponent m).
        title += f", condition {float(condition):.3g}"

    names = axis_names(u.shape, condition.shape)
    if u.ndim == 3:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), constrained_layout=True)
        for ax, k in zip(axes, (0, len(coords[0]) // 2, len(coords[0]) - 1)):
            image, extent = image_slice(u[k], coords[1:])
            shown = ax.imshow(image, extent=extent, vmin=u.min(), vmax=u.max(), cmap="RdBu_r")
            ax.set(title=f"{names[0]} = {coords[0][k]:.3g}", xlabel=names[2], ylabel=names[1])
        fig.colorbar(shown, ax=axes)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
        image, extent = image_slice(u, coords)
        shown = axes[0].imshow(image, aspect="auto", extent=extent)
        axes[0].set(title="solution", xlabel=names[1], ylabel=names[0])
        fig.colorbar(shown, ax=axes[0])
        if condition.shape == u.shape:
            shown = axes[1].imshow(condition, aspect="auto", extent=extent, cmap="cividis")
            axes[1].set(title="condition", xlabel=names[1], ylabel=names[0])
            fig.colorbar(shown, ax=axes[1])
        else:
            rows = np.unique(np.linspace(0, len(coords[0]) - 1, 6).round().astype(int))
            for k in rows:
                axes[1].plot(coords[1], u[k], label=f"{names[0]} = {coords[0][k]:.3g}")
            axes[1].set(title="profiles", xlabel=names[1], ylabel="u")
            axes[1].legend(fontsize="small")
    fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    print(f"wrote {out}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0].endswith(".png"):
        out, args = Path(args[0]), args[1:]
    else:
        choices = [a.split("=", 1)[1] for a in args if a.startswith("problem=")]
        out = DOCS / f"{(choices or ['diffusion_sorption'])[-1]}.png"
    main(out, args)
