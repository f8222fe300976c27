"""PDEBench metrics on hand-computed cases, both initial-step conventions, aggregation."""

import numpy as np
import pytest

from pdeopt.data import PDEBENCH_268BA5E, PDEBENCH_LEGACY, batch_metrics, pdebench_metrics


def _frame(values):
    """One sample, one frame, one channel: [1, 1, X, 1]."""
    return np.asarray(values, dtype=np.float64)[None, None, :, None]


def test_1d_hand_computed():
    true = _frame([1.0, 2.0, 3.0, 4.0])
    pred = true + _frame([1.0, 0.0, 0.0, 1.0])
    m = batch_metrics(pred, true, convention=PDEBENCH_LEGACY, lengths=(2.0,))
    np.testing.assert_allclose(m["rmse"], np.sqrt(2 / 4))
    np.testing.assert_allclose(m["nrmse"], np.sqrt(2 / 4) / np.sqrt(30 / 4))
    np.testing.assert_allclose(m["crmse"], 2 / 4)  # (Σ Δ) / N_x
    np.testing.assert_allclose(m["max_error"], 1.0)
    np.testing.assert_allclose(m["brmse"], 1.0)  # sqrt((1² + 1²)/2)
    # rfft(Δ) = [2, 1 + i, 0]; E_k = |F_k|·L/n with L = 2, n = 4; all three bins are "low".
    np.testing.assert_allclose(m["frmse_low"], (2 + np.sqrt(2) + 0) / 3 * 2 / 4)
    assert np.isnan(m["frmse_mid"]) and np.isnan(m["frmse_high"])  # empty bands


def test_1d_bands_and_batch_mean():
    """A pure mode k = 5 lands in the mid band; E_k takes sqrt(mean_b |ΔF|²)."""
    x = np.arange(32) / 32
    true = np.zeros((2, 1, 32, 1))
    pred = true.copy()
    pred[0, 0, :, 0] = np.cos(2 * np.pi * 5 * x)
    pred[1, 0, :, 0] = 3 * np.cos(2 * np.pi * 5 * x)
    m = batch_metrics(pred, true, convention=PDEBENCH_LEGACY)
    e5 = np.sqrt((16**2 + 48**2) / 2) / 32  # |F_5| = n/2 · amplitude
    np.testing.assert_allclose(m["frmse_mid"], e5 / 8, rtol=1e-12)  # 8 bins k = 4..11
    np.testing.assert_allclose(m["frmse_low"], 0.0, atol=1e-14)
    np.testing.assert_allclose(m["frmse_high"], 0.0, atol=1e-14)
    np.testing.assert_allclose(m["rmse"], (np.sqrt(0.5) + 3 * np.sqrt(0.5)) / 2)
    np.testing.assert_allclose(m["max_error"], 3.0)  # max over the batch, not a mean
    np.testing.assert_allclose(m["crmse"], 0.0, atol=1e-14)  # a cosine has zero mean


def test_2d_boundary_corners_and_radial_bins():
    true = np.zeros((1, 1, 3, 3, 1))
    pred = true.copy()
    pred[0, 0, 0, 0, 0] = 1.0  # a corner: on the x = 0 face and on the y = 0 face
    m = batch_metrics(pred, true, convention=PDEBENCH_LEGACY)
    np.testing.assert_allclose(m["brmse"], np.sqrt(2 / (2 * 3 + 2 * 3)))
    pred[0, 0, 0, 0, 0] = 0.0
    pred[0, 0, 1, 1, 0] = 1.0  # the centre is on no face
    np.testing.assert_allclose(batch_metrics(pred, true, convention=PDEBENCH_LEGACY)["brmse"], 0)

    x = np.arange(8) / 8
    wave = np.cos(2 * np.pi * x)[:, None] * np.ones(8)[None, :]  # mode (1, 0)
    m = batch_metrics(
        wave[None, None, ..., None], np.zeros((1, 1, 8, 8, 1)), convention=PDEBENCH_LEGACY
    )
    # |F(1,0)| = 64/2; the quadrant 0 ≤ i, j < 4 has bins k = 0..3; E_1 = 32·1/64.
    np.testing.assert_allclose(m["frmse_low"], 0.5 / 4, rtol=1e-12)
    assert np.isnan(m["frmse_mid"])


def test_3d_boundary():
    true = np.zeros((1, 1, 2, 3, 4, 1))
    pred = true + 1.0  # every point is on a face; each face contributes its own points
    m = batch_metrics(pred, true, convention=PDEBENCH_LEGACY)
    np.testing.assert_allclose(m["brmse"], 1.0)
    np.testing.assert_allclose(m["crmse"], 1.0)


def test_initial_step_conventions():
    """Copied ground-truth frames score zero error under the legacy metric only."""
    true = np.ones((2, 4, 6, 1))
    pred = true.copy()
    pred[:, 2:] += 0.5  # frames 0, 1 copied from the ground truth
    legacy = pdebench_metrics(pred, true, convention=PDEBENCH_LEGACY, initial_step=2)
    fixed = pdebench_metrics(pred, true, convention=PDEBENCH_268BA5E, initial_step=2)
    np.testing.assert_allclose(legacy["rmse"], 0.5 * 2 / 4)
    np.testing.assert_allclose(fixed["rmse"], 0.5)
    np.testing.assert_allclose(fixed["nrmse"], 0.5)
    np.testing.assert_allclose(legacy["max_error"], 0.25)  # mean over frames of per-frame max
    assert legacy["convention"] == "pdebench-legacy" and legacy["initial_step"] == 0
    assert fixed["convention"] == "pdebench-268ba5e" and fixed["initial_step"] == 2
    with pytest.raises(ValueError, match="leaves no frame"):
        pdebench_metrics(pred, true, convention=PDEBENCH_268BA5E, initial_step=4)


def test_batch_versus_per_sample_aggregation():
    """A mean of per-batch means differs from the per-sample mean for unequal batches."""
    true = np.ones((3, 1, 4, 1))
    pred = true + np.array([1.0, 2.0, 6.0])[:, None, None, None]
    batch = pdebench_metrics(pred, true, convention=PDEBENCH_LEGACY, batch_size=2)
    sample = pdebench_metrics(pred, true, convention=PDEBENCH_LEGACY, per_sample=True)
    np.testing.assert_allclose(batch["rmse"], ((1 + 2) / 2 + 6) / 2)  # true batch count: 2
    np.testing.assert_allclose(sample["rmse"], (1 + 2 + 6) / 3)
    np.testing.assert_allclose(batch["max_error"], (2 + 6) / 2)
    assert sample["aggregation"] == "per-sample" and "batch_size=2" in batch["aggregation"]


def test_shape_errors():
    # The annotations share `*space`: jaxtyping's runtime checks (the test run) reject the
    # mismatch first, with a `jaxtyping.TypeCheckError` (a TypeError).
    with pytest.raises((ValueError, TypeError), match="does not match|parameter 'reference'"):
        batch_metrics(np.zeros((1, 1, 4, 1)), np.zeros((1, 1, 5, 1)), convention=PDEBENCH_LEGACY)
    with pytest.raises(ValueError, match="1 to 3 space dimensions"):
        batch_metrics(np.zeros((1, 4, 1)), np.zeros((1, 4, 1)), convention=PDEBENCH_LEGACY)
