"""The shared benchmark harness `experiments/_report.py`: correctness, not speed."""

import statistics

import jax
import jax.numpy as jnp
import pytest

from experiments._report import (
    Timing,
    fingerprint,
    fmt,
    format_fingerprint,
    markdown_row,
    markdown_table,
    time_alternating,
    time_once,
)


def _recorder(calls, label):
    def fn():
        calls.append(label)
        return len(calls)

    return fn


@pytest.mark.parametrize("warmup", [0, 1, 3])
def test_alternation_and_warmup(warmup):
    calls = []
    fns = {label: _recorder(calls, label) for label in "abc"}
    timings = time_alternating(fns, repeats=2, warmup=warmup)
    assert calls == list("abc") * (warmup + 2)
    assert list(timings) == list("abc")
    assert all(len(t.samples) == 2 for t in timings.values())
    # The output is the last timed call's: the calls are numbered from 1.
    assert [t.output for t in timings.values()] == [len(calls) - 2, len(calls) - 1, len(calls)]


def test_statistic_is_median_of_samples():
    # A fake clock read twice per timed call (start, stop), in the order a b a b a b: the
    # samples of "a" are 1, 5, 2 seconds and those of "b" 10, 30, 20.
    readings = []
    for duration in (1.0, 10.0, 5.0, 30.0, 2.0, 20.0):
        start = readings[-1] if readings else 0.0
        readings += [start, start + duration]
    clock = iter(readings).__next__
    timings = time_alternating({"a": lambda: None, "b": lambda: None}, repeats=3, clock=clock)
    assert timings["a"].samples == (1.0, 5.0, 2.0)
    assert timings["b"].samples == (10.0, 30.0, 20.0)
    assert timings["a"].median == 2.0 == statistics.median(timings["a"].samples)
    assert timings["b"].median == 20.0
    assert timings["a"].min == 1.0
    assert Timing((4.0, 1.0, 3.0, 2.0)).median == 2.5


def test_blocks_on_jax_outputs():
    x = jnp.arange(3.0)
    timing = time_once(lambda: {"y": jax.jit(lambda v: 2 * v)(x)})
    assert len(timing.samples) == 1 and timing.samples[0] >= 0
    assert timing.output["y"].is_ready()
    assert time_once(lambda: "not an array").output == "not an array"


@pytest.mark.parametrize("repeats, warmup", [(0, 1), (1, -1)])
def test_invalid_counts(repeats, warmup):
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_alternating({"a": lambda: None}, repeats=repeats, warmup=warmup)


def test_fingerprint():
    entries = fingerprint(solver="1.2.3")
    keys = ["cpu", "cores", "load", "platform", "jax", "jaxlib", "devices", "x64", "solver"]
    assert list(entries) == keys
    assert all(isinstance(v, str) and v for v in entries.values())
    assert entries["jax"] == jax.__version__
    assert entries["x64"] == "True"  # conftest enables x64
    assert entries["solver"] == "1.2.3"
    assert int(entries["cores"]) >= 1
    assert jax.devices()[0].device_kind in entries["devices"]
    line = format_fingerprint(entries)
    assert (
        line.startswith("machine: cpu: ") and "; jax: " in line and line.endswith("solver: 1.2.3")
    )


def test_markdown_table():
    table = markdown_table(["a", "b"], [[1, "x"], [2.5, None]])
    assert table == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"
    assert markdown_table(["a", "b"], []) == "| a | b |\n|---|---|"
    assert markdown_row(["c", 3]) == "| c | 3 |"


def test_fmt():
    assert fmt(1234.5) == "1.23e+03"
    assert fmt(0.5, ".2f") == "0.50"
    assert fmt(3, "g") == "3"
    assert fmt(None) == fmt(float("nan")) == fmt(float("inf")) == "—"
