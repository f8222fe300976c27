"""`experiments.gpu_suite`: its paper-scale training configs are valid; `--smoke` runs every
part and writes one JSON with each part's status and numbers; a part that outlives its share
of the budget is stopped, and one left without a share is skipped."""

import json
import math

import pytest

from experiments import gpu_suite, reproduce
from experiments._common import compose
from experiments._validate import validate


def test_paper_training_configs_are_valid(tmp_path):
    overrides = gpu_suite.training_overrides(tmp_path, smoke=False, steps=250)
    assert list(overrides) == ["hard", "moe"]
    for constraint, options in overrides.items():
        cfg = compose(options)
        assert cfg.constraint.get("parts") == ([1, 4] if constraint == "moe" else None)
        validate(cfg)
        assert cfg.problem.nx == 1024 and cfg.problem.nt == 101 and cfg.train.steps == 250
        assert cfg.constraint.num_points == 20000 and cfg.train.batch_size == 6


def test_timing_order_names_every_method():
    methods = reproduce.load("pihcmoe_timing").reproduce.methods
    assert sorted(gpu_suite.TIMING_ORDER) == sorted(methods)


def test_part_over_its_share_is_stopped_and_the_next_skipped(tmp_path):
    out = tmp_path / "suite.json"
    argv = ["--smoke", "--parts", "timing", "fno", "--budget-s", "3", "--out", str(out)]
    assert gpu_suite.main(argv) == 1
    report = json.loads(out.read_text())
    timing, fno = report["parts"]["timing"], report["parts"]["fno"]
    assert timing["status"] == "stopped" and "share of the budget" in timing["error"]
    assert timing["wall_s"] < 10 and (tmp_path / "part_timing.log").exists()
    assert fno["status"] == "skipped"


@pytest.mark.slow  # about 2 min on a shared 2-core CPU: five processes, each compiling
def test_smoke_runs_every_part(tmp_path):
    out = tmp_path / "suite.json"
    assert gpu_suite.main(["--smoke", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    parts = report["parts"]
    assert list(parts) == ["env", "timing", "training", "scaling", "fno"]
    assert {p["status"] for p in parts.values()} == {"ok"}
    assert report["devices"][0]["platform"] and report["versions"]["jax"]
    assert report["date"] and report["budget_s"] == 480.0
    timing = parts["timing"]["results"]
    assert (
        timing["run_ds_1e2"]["status"] == "ok" and "| diffusion–sorption, 10^2 |" in timing["table"]
    )
    assert timing["run_ds_1e2"]["metrics"]["hc"]["train_ms"]["mean"] > 0
    moe = parts["training"]["results"]["moe"]
    assert moe["status"] == "ok" and math.isfinite(moe["test_rel_l2"]) and moe["steps"] == 3
    scaling = parts["scaling"]["results"]
    assert scaling["N16"]["pdeopt"]["status"] == "ok" and scaling["N16"]["pdeopt"]["time_s"] > 0
    assert parts["fno"]["results"]["tiny"]["step_ms"] > 0
