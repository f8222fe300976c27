"""The `pihcmoe_timing` target: its smoke scale writes the table, results and figure; every
run's times are positive and its speedups are the ratios of the stored per-batch means."""

import json

import pytest

from experiments import reproduce as rp
from experiments._runner import load_metrics
from experiments._schema import ConfigError


def _check(results, out, methods):
    assert {p.name for p in out.iterdir()} >= {"table.md", "results.json", "figure.png"}
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert [(r["method"], r["status"]) for r in results["runs"]] == [(m, "ok") for m in methods]
    for run in results["runs"]:
        metrics = load_metrics(rp.Path(run["run_dir"]))
        assert metrics["status"] == "ok" and metrics["device"]
        for name in ("hc", "moe"):
            for kind in ("train_ms", "infer_ms"):
                stats = metrics[name][kind]
                assert len(stats["samples"]) == 2 and min(stats["samples"]) > 0
                assert stats["mean"] == pytest.approx(sum(stats["samples"]) / 2)
        for kind in ("train", "infer"):
            ratio = metrics["hc"][f"{kind}_ms"]["mean"] / metrics["moe"][f"{kind}_ms"]["mean"]
            assert metrics[f"{kind}_speedup"] == pytest.approx(ratio)
        assert run["values"]["train_speedup"] == metrics["train_speedup"]
        assert metrics["points_per_expert"] * metrics["experts"] == metrics["points"]
    table = (out / "table.md").read_text()
    assert "training speedup" in table and "PI-HC-MoE train (ms)" in table
    assert "HC train ms" in table  # the per-run details


def test_smoke_scale(tmp_path):
    """`python -m experiments.reproduce pihcmoe_timing scale=smoke`: every run, both problems
    (each compiled once: at smoke all its methods measure the same tiny size)."""
    results = rp.reproduce("pihcmoe_timing", ["scale=smoke", f"out={tmp_path}"])
    _check(results, tmp_path, list(results["methods"]))
    paper = {row["method"]: row["paper"] for row in results["summary"]}
    assert paper["ds_1e2"] == 1.613 and paper["ds_1e5"] == 3.189 and paper["ns_1e4"] == 12.838
    repeats = {
        r["method"]: load_metrics(rp.Path(r["run_dir"]))["hc_ic_repeats"] for r in results["runs"]
    }
    assert repeats.pop("ds_1e2_ic_repeated") == repeats.pop("ds_1e5_ic_repeated") == 9
    assert set(repeats.values()) == {1}


def test_repeated_ic_rows_only_on_diffusion_sorption(tmp_path):
    from experiments._reproduce_timing import RUNNERS, measure

    ns = "problem._target_=problems.navier_stokes.NavierStokesProblem"
    cfg = RUNNERS["timing"].prepare([ns, "problem.nx=8", "problem.nt=8", "hc_ic_repeats=2"])
    with pytest.raises(ValueError, match="leave hc_ic_repeats at 1"):
        measure(cfg, tmp_path)


def test_unknown_key_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"pointz.*the keys are: seed, dtype, problem\._target_"):
        rp.plan(rp.load("pihcmoe_timing", ['reproduce.overrides=["pointz=3"]']), "pihcmoe_timing")
