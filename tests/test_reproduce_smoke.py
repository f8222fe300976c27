"""`python -m experiments.reproduce <target> scale=smoke` for every training target but
pihcmoe_ds (tests/test_reproduce.py runs that one): a file of its own, so that it runs beside
the other test files."""

import os

import pytest

from experiments import reproduce as rp


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PDEOPT_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield os.environ["PDEOPT_DATA_DIR"]


TRAINING_TARGETS = [t for t in rp.targets() if rp.load(t).reproduce.runner == "train"]


@pytest.mark.parametrize("target", sorted(set(TRAINING_TARGETS) - {"pihcmoe_ds"}))
def test_smoke_scale_runs(target, tmp_path, data_dir):
    """Every training target at the smoke scale (pihcmoe_ds: tests/test_reproduce.py; the other
    runners' targets: their own test modules): every run ok, the metric read from every run
    and every column (test views included) from some."""
    results = rp.reproduce(target, ["scale=smoke", f"out={tmp_path}"])
    assert {r["status"] for r in results["runs"]} == {"ok"}
    assert all(row[results["metric"]["key"]] is not None for row in results["summary"])
    for column in results["columns"]:
        assert any(row[column["key"]] is not None for row in results["summary"]), column
