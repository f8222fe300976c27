"""Error metrics: pdeopt's relative L2 and PDEBench's metric family (both conventions)."""

import dataclasses

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float


def relative_l2(
    prediction: Float[Array, "*field"], reference: Float[Array, "*field"]
) -> Float[Array, ""]:
    """Relative L2 error ‖prediction − reference‖₂ / ‖reference‖₂ over one whole field.

    This is the per-sample relative L2 over space–time used by the PI-HC-MoE paper; batch it
    with `jax.vmap` and report mean ± std over samples. It is not PDEBench's nRMSE, which
    normalises frame by frame.

    **Arguments:**

    - `prediction`, `reference`: arrays of the same shape (one sample).

    **Returns:** a scalar.
    """
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} does not match reference shape {reference.shape}."
        )
    return jnp.linalg.norm((prediction - reference).ravel()) / jnp.linalg.norm(reference.ravel())


@dataclasses.dataclass(frozen=True)
class MetricConvention:
    """Which frames PDEBench's metrics score; its `label` goes into every results table.

    - `PDEBENCH_LEGACY` (`"pdebench-legacy"`): every frame is scored, including the
        `initial_step` frames an autoregressive evaluation copies from the ground truth; the
        definition behind every published PDEBench table.
    - `PDEBENCH_268BA5E` (`"pdebench-268ba5e"`): the first `initial_step` frames are dropped
        before anything is computed (PDEBench commit `268ba5e`, issue #41).
    """

    label: str
    skip_initial: bool


PDEBENCH_LEGACY = MetricConvention("pdebench-legacy", skip_initial=False)
PDEBENCH_268BA5E = MetricConvention("pdebench-268ba5e", skip_initial=True)

METRIC_NAMES = (
    "rmse",
    "nrmse",
    "crmse",
    "brmse",
    "max_error",
    "frmse_low",
    "frmse_mid",
    "frmse_high",
)


def _fourier_bins(delta, space: tuple[int, ...], lengths: tuple[float, ...], nb: int):
    """E_k = sqrt(mean_b S_k) · Π L / Π n, for each radial wavenumber bin k: [T, K, C]."""
    sizes = [delta.shape[a] for a in space]
    scale = float(np.prod(lengths)) / float(np.prod(sizes))
    if len(space) == 1:
        power = jnp.abs(jnp.fft.rfft(delta, axis=space[0])) ** 2  # [B, T, K, C]
        return jnp.sqrt(jnp.mean(power, axis=0)) * scale
    power = jnp.abs(jnp.fft.fftn(delta, axes=space)) ** 2
    # The non-negative-frequency quadrant/octant, binned by k = floor(|(i, j(, l))|).
    power = power[(slice(None), slice(None), *(slice(0, n // 2) for n in sizes))]
    index = np.meshgrid(*(np.arange(n // 2) for n in sizes), indexing="ij")
    radius = np.floor(np.sqrt(sum(i.astype(np.float64) ** 2 for i in index))).astype(int)
    n_bins = min(sizes) // 2
    onehot = (radius.ravel()[:, None] == np.arange(n_bins)[None, :]).astype(np.float64)
    flat = power.reshape(*power.shape[:2], -1, power.shape[-1])  # [B, T, points, C]
    binned = jnp.einsum("btpc,pk->btkc", flat, onehot)
    return jnp.sqrt(jnp.mean(binned, axis=0)) * scale


def batch_metrics(
    prediction: Float[ArrayLike, "batch time *space channels"],
    reference: Float[ArrayLike, "batch time *space channels"],
    *,
    convention: MetricConvention,
    initial_step: int = 1,
    lengths: tuple[float, ...] | None = None,
    i_low: int = 4,
    i_high: int = 12,
) -> dict[str, Float[Array, ""]]:
    """PDEBench's error metrics of one batch, each averaged over time frames and channels.

    Reimplemented from the definitions of PDEBench's `metric_func` (Takamoto et al., 2022), not
    from its code. With Δ = prediction − reference and, per sample b, frame t and channel c,
    e = sqrt(mean_x Δ²) and n = sqrt(mean_x reference²):

    - `rmse` = mean_b e; `nrmse` = mean_b e/n (PDEBench's headline number);
    - `crmse` = sqrt(mean_b (Σ_x Δ)²) / N_x, the error of the conserved spatial sum;
    - `max_error` = max_b max_x |Δ|;
    - `brmse` = mean_b sqrt(Σ_faces Δ² / #face points), over the 2·d boundary faces
        (corners counted once per face);
    - `frmse_low/mid/high` = the mean of E_k over k < `i_low`, `i_low` ≤ k < `i_high` and
        k ≥ `i_high`, where E_k = sqrt(mean_b |ΔF_k|²)·ΠL/Πn; F is the `rfft` over x in 1-D,
        and in 2-D/3-D the full FFT restricted to the non-negative-frequency quadrant/octant
        and summed into radial bins k = ⌊|(i, j(, l))|⌋ < min(n)/2. An empty band is NaN.

    Each is then averaged over frames and channels (PDEBench's `if_mean=True`).

    Layout note: pdeopt's arrays are `[batch, time, *space, channels]` (the layout of
    `read_data_file`); PDEBench's `metric_func` takes `[batch, *space, time, channels]`.

    **Arguments:**

    - `prediction`, `reference`: one batch, 1 to 3 space dimensions.
    - `convention`: `PDEBENCH_LEGACY` or `PDEBENCH_268BA5E`.
    - `initial_step`: frames dropped under `PDEBENCH_268BA5E` (ignored by the legacy metric).
    - `lengths`: domain length along each space axis (default 1.0 each), for `frmse_*`.
    - `i_low`, `i_high`: the band edges (PDEBench's `iLow=4`, `iHigh=12`).

    **Returns:** a dict of scalars keyed by `METRIC_NAMES`.
    """
    if prediction.shape != reference.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} does not match reference shape {reference.shape}."
        )
    n_space = prediction.ndim - 3
    if not 1 <= n_space <= 3:
        raise ValueError(
            "PDEBench metrics take [batch, time, *space, channels] with 1 to 3 space dimensions; "
            f"got shape {prediction.shape}. Add singleton time/channel axes if needed."
        )
    lengths = (1.0,) * n_space if lengths is None else tuple(lengths)
    if len(lengths) != n_space:
        raise ValueError(f"`lengths` needs {n_space} entries (one per space axis), got {lengths}.")
    if convention.skip_initial:
        if not 0 <= initial_step < prediction.shape[1]:
            raise ValueError(
                f"initial_step={initial_step} leaves no frame of {prediction.shape[1]} to score."
            )
        prediction, reference = prediction[:, initial_step:], reference[:, initial_step:]
    space = tuple(range(2, 2 + n_space))
    delta = prediction - reference
    err = jnp.sqrt(jnp.mean(delta**2, axis=space))  # [B, T, C]
    norm = jnp.sqrt(jnp.mean(reference**2, axis=space))
    num_points = int(np.prod([delta.shape[a] for a in space]))
    faces, count = 0.0, 0
    for a in space:
        for end in (0, -1):
            face = jnp.take(delta, end, axis=a) ** 2
            faces = faces + jnp.sum(face, axis=tuple(range(2, 1 + n_space)))
            count += num_points // delta.shape[a]
    spectrum = _fourier_bins(delta, space, lengths, delta.shape[0])  # [T, K, C]
    k = np.arange(spectrum.shape[1])
    bands = {"low": k < i_low, "mid": (k >= i_low) & (k < i_high), "high": k >= i_high}
    per_frame = {
        "rmse": jnp.mean(err, axis=0),
        "nrmse": jnp.mean(err / norm, axis=0),
        "crmse": jnp.sqrt(jnp.mean(jnp.sum(delta, axis=space) ** 2, axis=0)) / num_points,
        "brmse": jnp.mean(jnp.sqrt(faces / count), axis=0),
        "max_error": jnp.max(jnp.abs(delta), axis=(0, *space)),
        **{
            f"frmse_{band}": jnp.mean(spectrum[:, mask], axis=1)
            if mask.any()
            else jnp.full(spectrum[:, 0].shape, jnp.nan)
            for band, mask in bands.items()
        },
    }
    return {name: jnp.mean(value) for name, value in per_frame.items()}


def pdebench_metrics(
    prediction: Float[ArrayLike, "samples time *space channels"],
    reference: Float[ArrayLike, "samples time *space channels"],
    *,
    convention: MetricConvention,
    initial_step: int = 1,
    batch_size: int | None = None,
    per_sample: bool = False,
    lengths: tuple[float, ...] | None = None,
) -> dict[str, float | str | int]:
    """PDEBench's metrics over a test set, with the labels a results table needs.

    Batch aggregation (PDEBench's `metrics()`): `batch_metrics` of consecutive batches of
    `batch_size` samples, summed and divided by the number of batches, so a mean of per-batch
    means. pdeopt divides by the true batch count (PDEBench's code divides by one fewer since
    its commit `dcc4d3d`). Per-sample aggregation (`per_sample=True`) is the same with
    batches of one sample, i.e. a plain mean over samples.

    **Arguments:**

    - `prediction`, `reference`: `[samples, time, *space, channels]`.
    - `convention`, `initial_step`, `lengths`: see `batch_metrics`.
    - `batch_size`: samples per batch (default: all in one batch); ignored if `per_sample`.
    - `per_sample`: aggregate over samples instead of batches.

    **Returns:** `{name: float for name in METRIC_NAMES}` plus the labels `"convention"`,
    `"initial_step"` (the frames dropped: 0 under the legacy metric) and `"aggregation"`.
    """
    prediction, reference = jnp.asarray(prediction), jnp.asarray(reference)
    num = prediction.shape[0]
    size = 1 if per_sample else (num if batch_size is None else batch_size)
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    totals = dict.fromkeys(METRIC_NAMES, 0.0)
    starts = range(0, num, size)
    for start in starts:
        values = batch_metrics(
            prediction[start : start + size],
            reference[start : start + size],
            convention=convention,
            initial_step=initial_step,
            lengths=lengths,
        )
        for name in METRIC_NAMES:
            totals[name] += float(values[name])
    out: dict[str, float | str | int] = {k: v / len(starts) for k, v in totals.items()}
    out["convention"] = convention.label
    out["initial_step"] = initial_step if convention.skip_initial else 0
    out["aggregation"] = "per-sample" if per_sample else f"batch (batch_size={size})"
    return out
