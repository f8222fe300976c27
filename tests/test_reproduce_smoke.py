"""`python -m experiments.reproduce <target> scale=smoke` for the training targets of
`SMOKE_TARGETS` (pihcmoe_ds: tests/test_reproduce.py; the rest: tests/test_reproduce_smoke_ns.py;
the other runners' targets: their own modules). Three files, so that they run in parallel."""

import os

import pytest

from experiments import reproduce as rp

SMOKE_TARGETS = ["pihcmoe_ds_extrapolation", "pihcmoe_experts"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PDEOPT_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield os.environ["PDEOPT_DATA_DIR"]


def check_smoke(target, out):
    """The smoke scale of `target` into `out`: every run ok, the metric read from every run
    and every column (test views included) from some."""
    results = rp.reproduce(target, ["scale=smoke", f"out={out}"])
    assert {r["status"] for r in results["runs"]} == {"ok"}
    assert all(row[results["metric"]["key"]] is not None for row in results["summary"])
    for column in results["columns"]:
        assert any(row[column["key"]] is not None for row in results["summary"]), column


@pytest.mark.parametrize("target", SMOKE_TARGETS)
def test_smoke_scale_runs(target, tmp_path, data_dir):
    check_smoke(target, tmp_path)


def test_every_training_target_has_a_smoke_test():
    from test_reproduce_smoke_ns import SMOKE_TARGETS as OTHERS

    training = {t for t in rp.targets() if rp.load(t).reproduce.runner == "train"}
    assert training == {"pihcmoe_ds", *SMOKE_TARGETS, *OTHERS}
