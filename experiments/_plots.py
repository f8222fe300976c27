"""Figures written by experiments."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_prediction(
    path: Path, prediction: np.ndarray, reference: np.ndarray, t: np.ndarray, x: np.ndarray
) -> None:
    """Prediction, reference and absolute error of one (t, x) field, side by side."""
    error = np.abs(prediction - reference)
    extent = (x[0], x[-1], t[-1], t[0])
    vmin, vmax = float(reference.min()), float(reference.max())
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    panels = (
        (prediction, "prediction", dict(vmin=vmin, vmax=vmax, cmap="viridis")),
        (reference, "reference", dict(vmin=vmin, vmax=vmax, cmap="viridis")),
        (error, "|error|", dict(cmap="magma")),
    )
    for ax, (field, title, style) in zip(axes, panels):
        image = ax.imshow(field, aspect="auto", extent=extent, **style)
        ax.set_title(title)
        ax.set_xlabel("x")
        ax.set_ylabel("t [s]")
        fig.colorbar(image, ax=ax)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
