"""Figures written by experiments."""

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def axis_names(grid: tuple[int, ...], condition: tuple[int, ...]) -> tuple[str, ...]:
    """Axis labels of a grid for figures (problems order their grids time first).

    `(t, x, y)` for a 3-D grid; `(x, y)` for a 2-D grid whose condition has the grid's shape
    (a coefficient or forcing field of a steady problem); `(t, x)` for other 2-D grids.
    """
    if len(grid) == 3:
        return ("t", "x", "y")
    return ("x", "y") if tuple(condition) == tuple(grid) else ("t", "x")


def image_slice(
    field: np.ndarray, coordinates: Sequence[np.ndarray]
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A 2-D image of a grid field: the field itself, or its last slice along axis 0.

    **Arguments:**

    - `field`: values on a 2-D grid (`(t, x)` or steady `(x, y)`) or a 3-D grid `(t, x, y)`.
    - `coordinates`: one coordinate vector per grid axis (`pde.coordinates()`).

    **Returns:**

    The image and its `imshow` extent (the image's first axis runs top to bottom).
    """
    if field.ndim != len(coordinates) or field.ndim not in (2, 3):
        raise ValueError(
            f"Can plot a 2-D or 3-D grid field with one coordinate vector per axis; got a "
            f"field of shape {field.shape} and {len(coordinates)} coordinate vectors."
        )
    if field.ndim == 3:
        field, coordinates = field[-1], coordinates[1:]
    rows, cols = coordinates
    return field, (cols[0], cols[-1], rows[-1], rows[0])


def plot_prediction(
    path: Path,
    prediction: np.ndarray,
    reference: np.ndarray,
    coordinates: Sequence[np.ndarray],
    names: Sequence[str],
) -> None:
    """Prediction, reference and absolute error of one grid field, side by side.

    A 2-D field is shown whole, a 3-D `(t, x, y)` field at its last time; `names` labels the
    grid axes (`axis_names`).
    """
    error = np.abs(prediction - reference)
    ref, extent = image_slice(reference, coordinates)
    note = f" at {names[0]} = {coordinates[0][-1]:.3g}" if reference.ndim == 3 else ""
    vmin, vmax = float(ref.min()), float(ref.max())
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    panels = (
        (prediction, "prediction", dict(vmin=vmin, vmax=vmax, cmap="viridis")),
        (reference, "reference", dict(vmin=vmin, vmax=vmax, cmap="viridis")),
        (error, "|error|", dict(cmap="magma")),
    )
    for ax, (field, title, style) in zip(axes, panels):
        image = ax.imshow(image_slice(field, coordinates)[0], aspect="auto", extent=extent, **style)
        ax.set(title=title + note, xlabel=names[-1], ylabel=names[-2])
        fig.colorbar(image, ax=ax)
    save_figure(fig, path, dpi=110)


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """Write `fig` to `path` atomically (a reader sees the old image or the new one) and
    close it."""
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    tmp.replace(path)
