"""`experiments.train` trains a steady 2-D and a (t, x, y) problem with the soft constraint."""

import math

import pytest
from omegaconf import OmegaConf

from experiments._common import compose
from experiments.train import run

COMMON = [
    "constraint=soft",
    "model.width=8",
    "model.depth=1",
    "model.projection_channels=8",
    "train.steps=1",
    "train.batch_size=2",
    "train.eval_every=0",
    "train.progress=false",
    "problem.n_train=2",
    "problem.n_test=1",
]

CASES = {
    "darcy": ["problem=darcy", "problem.n=8", "model.modes=[4,4]"],
    "navier_stokes": [
        "problem=navier_stokes",
        "model=fno3d",
        "problem.nx=8",
        "problem.nx_test=8",
        "problem.nt=5",
        "problem.t_final=0.1",
        "model.modes=[4,4,4]",
    ],
}


BLOCKS = {"darcy": {"bc"}, "navier_stokes": {"ic"}}


@pytest.mark.parametrize("name", sorted(CASES))
def test_trains_one_step(name, tmp_path):
    cfg = compose([*CASES[name], *COMMON, f"problem.data_dir={tmp_path / 'data'}"])
    metrics = run(cfg, tmp_path / "run")
    assert math.isfinite(metrics["test_rel_l2"]) and len(metrics["test_rel_l2_per_sample"]) == 1
    assert (tmp_path / "run" / "prediction.png").is_file()
    # Darcy is steady (no `ic` block), Navier-Stokes periodic (no `bc` block): the default
    # weights follow the PDE's own blocks, and the report names exactly those.
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.constraint.weights is None
    report = metrics["constraint_report"]
    assert set(report) == {"pde_rms_heldout", *(f"{b}_rms" for b in BLOCKS[name])}


def test_evaluates_at_the_test_resolution(tmp_path):
    """Trained at 8², tested at 16² (the paper's 64²/256² split): the FNO and the constraint
    run on the test PDE's grid, and the error is against the 16² reference."""
    cfg = compose(
        [
            *CASES["navier_stokes"],
            *COMMON,
            "problem.nx_test=16",
            f"problem.data_dir={tmp_path / 'data'}",
        ]
    )
    metrics = run(cfg, tmp_path / "run")
    # The relative error is taken against the 16² solutions, so it exists only if the
    # prediction has their shape.
    assert math.isfinite(metrics["test_rel_l2"]) and metrics["test_rel_l2"] > 0
    assert all(math.isfinite(v) for v in metrics["constraint_report"].values())
