"""`experiments.reproduce`: every target's runs are valid at every scale and run at the smoke
scale; a rerun reuses complete runs and reruns only missing ones; a failed run is reported as
failed; `report` writes the page."""

import dataclasses
import json
import os

import pytest
from hydra.errors import HydraException

from experiments import reproduce as rp
from experiments._schema import ConfigError

SMOKE = ["scale=smoke"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PDEOPT_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield os.environ["PDEOPT_DATA_DIR"]


@pytest.fixture(scope="module")
def ds(tmp_path_factory, data_dir):
    """The smoke scale of `pihcmoe_ds`, run once for the tests of this module."""
    out = tmp_path_factory.mktemp("reproduce") / "pihcmoe_ds"
    return out, rp.reproduce("pihcmoe_ds", [*SMOKE, f"out={out}"])


@pytest.fixture
def counted(monkeypatch):
    """The (method, seed) of every run the train runner actually trains."""
    calls = []
    runner = rp.RUNNERS["train"]

    def run(cfg, run_dir):
        calls.append((run_dir.parent.name, cfg.seed))
        return runner.run(cfg, run_dir)

    monkeypatch.setitem(rp.RUNNERS, "train", dataclasses.replace(runner, run=run))
    return calls


def test_smoke_writes_table_results_and_figure(ds):
    out, results = ds
    assert {p.name for p in out.iterdir()} >= {"table.md", "results.json", "figure.png"}
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    assert [(r["method"], r["seed"], r["status"]) for r in results["runs"]] == [
        ("soft", 0, "ok"),
        ("hard", 0, "ok"),
        ("moe", 0, "ok"),
        ("hard_ic_repeated", 0, "ok"),
    ]
    for run, row in zip(results["runs"], results["summary"], strict=True):
        stored = json.loads((out / run["method"] / "seed0" / "metrics.json").read_text())
        assert run["values"]["test_rel_l2"] == stored["test_rel_l2"]
        assert row[results["metric"]["key"]]["mean"] == pytest.approx(100 * stored["test_rel_l2"])
        assert row["failed"] == 0
    assert [row["paper"] for row in results["summary"]] == [85.93, 7.55, 3.60, None]
    assert results["precision"]["x64"] is True
    assert results["precision"]["model_dtype"] == dict.fromkeys(
        ["soft", "hard", "moe", "hard_ic_repeated"], "float32"
    )
    assert results["machine"]["jax"] and results["machine"]["jaxlib"]
    assert len(results["git"]["commit"]) == 40 and isinstance(results["git"]["dirty"], bool)
    assert results["wall_time_s"] > 0 and results["runs_reused"] == 0
    assert "per-sample" in results["metric"]["definition"]
    table = (out / "table.md").read_text()
    assert "| PI-HC-MoE |" in table and "| 3.6 |" in table and "ours / paper" in table


def test_rerun_reuses_complete_runs_and_reruns_missing_ones(ds, counted):
    out, first = ds
    again = rp.reproduce("pihcmoe_ds", [*SMOKE, f"out={out}"])
    assert counted == [] and {r["status"] for r in again["runs"]} == {"reused"}
    assert [r["values"] for r in again["runs"]] == [r["values"] for r in first["runs"]]
    # Every run reused: the table keeps the date, machine, commit and time of the call that
    # made the runs, and says when it was rewritten.
    for key in ("date", "machine", "git", "wall_time_s"):
        assert again[key] == first[key], key
    assert again["runs_reused"] == 4 and again["rewritten"] >= first["date"]
    (out / "hard" / "seed0" / "metrics.json").unlink()
    again = rp.reproduce("pihcmoe_ds", [*SMOKE, f"out={out}"])
    assert counted == [("hard", 0)]
    assert [r["status"] for r in again["runs"]] == ["reused", "ok", "reused", "reused"]
    assert again["runs_reused"] == 3 and "rewritten" not in again
    assert again["wall_time_s"] != first["wall_time_s"]


def test_run_of_another_config_is_refused(ds, counted):
    out, _ = ds
    stored = out / "soft" / "seed0" / "config.yaml"
    text = stored.read_text()
    stored.write_text(text.replace("steps: 3\n", "steps: 4\n"))
    try:
        with pytest.raises(ConfigError, match=r"holds a run of another config.*train\.steps"):
            rp.reproduce("pihcmoe_ds", [*SMOKE, f"out={out}"])
    finally:
        stored.write_text(text)
    assert counted == []


def test_failed_run_is_reported_as_failed(tmp_path, data_dir, capsys):
    bad = '["constraint=soft","optimizer.learning_rate=1.0e30"]'
    argv = ["pihcmoe_ds", *SMOKE, f"out={tmp_path}", "only=[soft]"]
    assert rp.main([*argv, f"reproduce.methods.soft.overrides={bad}"]) == 1
    results = json.loads((tmp_path / "results.json").read_text())
    [run] = results["runs"]
    assert run["status"] == "failed" and "non-finite" in run["error"]
    assert results["summary"][0]["failed"] == 1
    assert results["summary"][0]["test_rel_l2"] is None
    table = (tmp_path / "table.md").read_text()
    assert "0/1 (1 failed)" in table and "**Failed**: soft seed 0" in table
    assert "1 of 1 runs failed" in capsys.readouterr().err
    assert rp.completed(tmp_path / "soft" / "seed0") is None  # the next call retries it


def test_unknown_names_list_the_valid_ones(capsys):
    with pytest.raises(ConfigError, match="the targets are .*negiar_burgers, pihcmoe_ds"):
        rp.load("pihcmoe_dss")
    with pytest.raises(ConfigError, match="use one of smoke, small, paper"):
        rp.load("pihcmoe_ds", ["scale=huge"])
    with pytest.raises(ConfigError, match="its methods are soft, hard, moe"):
        rp.load("pihcmoe_ds", ["only=[sc]"])
    with pytest.raises(HydraException):
        rp.load("pihcmoe_ds", ["seedz=[0]"])
    assert rp.main(["nope"]) == 2
    assert "the targets are" in capsys.readouterr().err


@pytest.mark.parametrize("scale", ["smoke", "small", "paper"])
@pytest.mark.parametrize("target", rp.targets())
def test_every_run_config_is_valid(target, scale):
    out, runs = rp.plan(rp.load(target, [f"scale={scale}"]), target)
    cfg = rp.load(target, [f"scale={scale}"])
    assert len(runs) == len(cfg.reproduce.methods) * len(cfg.reproduce.scales[scale].seeds)
    assert out == rp.DEFAULT_OUT / target / scale
    assert len({r.directory for r in runs}) == len(runs)


def test_report_writes_the_page(ds, tmp_path):
    out, _ = ds
    results = json.loads((out / "results.json").read_text())  # the last call's
    page = tmp_path / "page.md"
    text = rp.report(out.parent, page)
    assert page.read_text() == text
    assert results["command"] in text and results["date"] in text
    assert results["git"]["commit"] in text and results["machine"]["cpu"] in text
    assert rp.format_table(results) in text
    reused = f"{results['runs_reused']} of 4 runs reused" if results["runs_reused"] else ""
    assert f"The command took {results['wall_time_s'] / 60:.1f} min" in text and reused in text
    with pytest.raises(FileNotFoundError, match="No results.json"):
        rp.report(tmp_path / "empty", page)


def test_comparison_flags_differences_and_checks_the_ordering():
    def row(method, mean, std, paper, n=3):
        return {"method": method, "label": method.upper(), "paper": paper,
                "m": {"mean": mean, "std": std, "n": n}}  # fmt: skip

    results = {
        "metric": {"key": "m"},
        "ordering": ["moe", "hard", "soft"],
        "notes": "Why.",
        "summary": [
            row("soft", 12.0, 1.0, 85.9),
            row("hard", 6.0, 1.0, 7.0),
            row("moe", 5.0, 2.0, 3.6),
        ],  # fmt: skip
    }
    differs, ordering, notes = rp.comparison(results)
    assert "SOFT 12 vs 85.9 (0.14×, 73.9 std of our seeds)" in differs
    assert "HARD" not in differs and "MOE" not in differs  # within 2 std of the paper
    results["summary"][1]["m"] |= {"mean": 7.5, "std": 0.0}  # no spread: 7 % off is no difference
    assert "HARD" not in rp.comparison(results)[0]
    results["summary"][1]["m"]["mean"] = 8.0  # 14 % off
    assert "HARD 8 vs 7 (1.14×, 3 seeds without spread)" in rp.comparison(results)[0]
    results["summary"][1]["m"]["mean"] = 6.0
    assert "MOE < HARD < SOFT holds here" in ordering
    assert "MOE < HARD by 0.8 standard errors" in ordering  # 1 / sqrt(4/3 + 1/3)
    assert notes == "Why."
    results["summary"][2]["m"]["mean"] = 7.0
    results["notes"] = None
    (_, ordering) = rp.comparison(results)
    assert "does **not** hold" in ordering and "MOE ≥ HARD" in ordering
