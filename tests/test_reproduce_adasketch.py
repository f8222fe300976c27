"""The AdaSketch-Newton targets of `experiments.reproduce`: each runs at the smoke scale and
writes its table (with the per-problem details), results and figure; a rerun reuses its runs;
bad overrides are refused before any run; the paper's numbers in the target configs are those
of the benchmark scripts."""

import dataclasses
import json
import math

import numpy as np
import pytest

from experiments import _baselines as B, reproduce as rp
from experiments._reproduce_adasketch import _CONTROL
from experiments._schema import ConfigError
from experiments.bench_applications import PAPER_LOGREG, PAPER_POISSON
from experiments.bench_cutest import PAPER, PAPER_SENSITIVITY, SENSITIVITY_GRID
from experiments.bench_scaling import parser
from problems.cutest import PROBLEMS, get_problem

TARGETS = ["adasketch_cutest", "adasketch_sensitivity", "adasketch_logreg", "adasketch_control"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """`{target: (out, results)}`, each target run once at the smoke scale."""
    done = {}

    def run(target):
        if target not in done:
            out = tmp_path_factory.mktemp(target)
            done[target] = out, rp.reproduce(target, ["scale=smoke", f"out={out}"])
        return done[target]

    return run


@pytest.mark.parametrize("target", TARGETS)
def test_smoke_writes_table_results_and_figure(smoke, target):
    out, results = smoke(target)
    assert {p.name for p in out.iterdir()} >= {"table.md", "results.json", "figure.png"}
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    cfg = rp.load(target, ["scale=smoke"])
    assert [(r["method"], r["status"]) for r in results["runs"]] == [
        (method, "ok") for method in cfg.reproduce.methods
    ]
    key = results["metric"]["key"]
    for row in results["summary"]:
        assert row["failed"] == 0 and math.isfinite(row[key]["mean"])
    assert results["precision"]["model_dtype"] == dict.fromkeys(cfg.reproduce.methods, "float64")
    table = (out / "table.md").read_text()
    assert results["details"] and results["details"] in table


def test_cutest_details_are_the_per_problem_table(smoke):
    out, results = smoke("adasketch_cutest")
    table = (out / "table.md").read_text()
    header = "| problem | size | AdaSketch-GV | AdaSketch-RK | exact Newton (LU) | paper GV·10 |"
    assert header in table
    assert "| HS6 | 2 × 1 | 9 | 9 | 9 | 9 | 9 |" in table  # HS6 reproduces the paper's 9
    assert table.index("| HS6 |") < table.index("| HS28 |")  # the paper's order
    metrics = json.loads((out / "gv" / "seed0" / "metrics.json").read_text())
    assert [item["name"] for item in metrics["items"]] == ["HS6", "HS28"]
    assert metrics["iterations_mean"] == np.mean([i["iterations"] for i in metrics["items"]])


def test_control_records_the_sweep_and_says_why_ipopt_is_missing(smoke):
    out, results = smoke("adasketch_control")
    metrics = json.loads((out / "gv" / "seed0" / "metrics.json").read_text())
    [size] = metrics["scaling"]["sizes"]
    assert size["N"] == 3 and size["n"] == 18 and size["solver"]["converged"]
    assert metrics["scaling"]["largest_n"] == 3.0
    if not B.has("casadi"):  # no IPOPT: its columns stay empty, the details say why
        assert metrics["scaling"]["time_over_ipopt"] is None
        assert "casadi is not installed" in results["details"]
        assert all(row["scaling.time_over_ipopt"] is None for row in results["summary"])


def test_rerun_reuses_complete_runs_and_reruns_missing_ones(smoke, monkeypatch):
    out, first = smoke("adasketch_cutest")
    calls = []
    runner = rp.RUNNERS["cutest"]

    def run(cfg, run_dir):
        calls.append(run_dir.parent.name)
        return runner.run(cfg, run_dir)

    monkeypatch.setitem(rp.RUNNERS, "cutest", dataclasses.replace(runner, run=run))
    again = rp.reproduce("adasketch_cutest", ["scale=smoke", f"out={out}"])
    assert calls == [] and {r["status"] for r in again["runs"]} == {"reused"}
    assert [r["values"] for r in again["runs"]] == [r["values"] for r in first["runs"]]
    assert again["details"] == first["details"]
    (out / "rk" / "seed0" / "metrics.json").unlink()
    again = rp.reproduce("adasketch_cutest", ["scale=smoke", f"out={out}"])
    assert calls == ["rk"] and [r["status"] for r in again["runs"]] == ["reused", "ok", "reused"]


@pytest.mark.parametrize("target", TARGETS)
def test_unknown_key_is_refused_naming_the_keys(target, tmp_path):
    with pytest.raises(ConfigError, match=r"max_stepz.*the keys are: seed, dtype, solver, "):
        rp.reproduce(
            target, ["scale=smoke", f"out={tmp_path}", 'reproduce.overrides=["max_stepz=3"]']
        )
    assert not any(tmp_path.iterdir())  # refused before the first run


@pytest.mark.parametrize(
    "target, override, match",
    [
        ("adasketch_cutest", 'methods.gv.overrides=["solver=CG"]', "solver=CG is not one of LU"),
        (
            "adasketch_cutest",
            'scales.smoke.overrides=["problems=[HS999]"]',
            "HS999.*choose from HS6",
        ),
        ("adasketch_cutest", 'overrides=["dtype=float32"]', "runs in float64"),
        ("adasketch_logreg", 'scales.smoke.overrides=["shape=[64,8]"]', "d > 10"),
        ("adasketch_control", 'methods.lu.overrides=["scaling.solver=CG"]', "not one of LU, GMRES"),
    ],
)
def test_bad_values_are_refused_before_any_run(target, override, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        rp.reproduce(target, ["scale=smoke", f"out={tmp_path}", f"reproduce.{override}"])
    assert not any(tmp_path.iterdir())


def _paper(target: str) -> dict:
    methods = rp.load(target, ["scale=smoke"]).reproduce.methods
    return {method: methods[method].paper for method in methods}


def test_paper_numbers_are_the_benchmark_scripts():
    # CUTEst: the aggregates over the problems with all six paper columns.
    counted = [get_problem(n).paper_iterations for n in PROBLEMS]
    counted = [p for p in counted if all(math.isfinite(v) for v in p)]
    assert len(counted) == 44 and PAPER["mean"] == 6.42
    assert _paper("adasketch_cutest") == {
        "gv": round(float(np.mean([p.gv10 for p in counted])), 2),
        "rk": round(float(np.mean([p.rk10 for p in counted])), 2),
        "lu": None,
    }
    # The sensitivity grid, setting by setting.
    methods = rp.load("adasketch_sensitivity", ["scale=smoke"]).reproduce.methods
    assert [m.label for m in methods.values()] == [
        label.replace("δ0", "δ₀").replace("μ0", "μ₀").replace("ν0", "ν₀")
        for label, _ in SENSITIVITY_GRID
    ]
    for (label, hyper), method in zip(SENSITIVITY_GRID, methods.values(), strict=True):
        assert {k: float(v) for k, v in (o.split("=") for o in method.overrides)} == hyper
        assert method.paper == float(PAPER_SENSITIVITY[label].split(", ")[1])
    # Logistic regression: the mean over the seven sets; Poisson control at N = 3.
    gv, rk = np.mean(list(PAPER_LOGREG.values()), axis=0)
    assert _paper("adasketch_logreg") == pytest.approx({"gv": gv, "rk": rk, "lu": None}, abs=5e-3)
    control = _paper("adasketch_control")
    assert (control["gv"], control["rk"]) == (PAPER_POISSON["GV"][0], PAPER_POISSON["RK"][0])


def test_control_defaults_are_the_scaling_benchmark_defaults():
    cli = vars(parser().parse_args([]))
    sweep = {k: v for k, v in _CONTROL["scaling"].items() if k not in ("solver", "sizes", "ipopt")}
    assert {k: cli[k] for k in sweep if k != "problem"} == {
        k: v for k, v in sweep.items() if k != "problem"
    }
