"""The harness every benchmark script shares: timing, the machine fingerprint, the table.

- [`time_alternating`][]: warm up, then time several callables in alternation (A B A B …) so
  that a change of machine load hits all of them; the statistic is the **median** of the timed
  calls ([`Timing`][]; the minimum is kept for information only). [`time_once`][] is the
  one-call case, for what is too slow to repeat or must not be warmed up (a compilation).
- [`fingerprint`][] / [`print_fingerprint`][]: CPU model, usable cores, load, platform, jax and
  jaxlib versions, the devices and the x64 flag, printed once at the top of every report.
- [`markdown_table`][] / [`markdown_row`][] / [`fmt`][]: GitHub-flavoured markdown tables.
"""

import collections
import dataclasses
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jaxlib


@dataclasses.dataclass(frozen=True)
class Timing:
    """The wall-clock samples of one callable.

    - `samples`: the seconds of each timed call, in order (warm-up calls excluded).
    - `output`: what the last timed call returned.
    """

    samples: tuple[float, ...]
    output: Any = None

    @property
    def median(self) -> float:
        """The median of `samples`: the statistic every benchmark reports."""
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        """The fastest sample, for information only (benchmarks compare medians)."""
        return min(self.samples)


def time_alternating(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Time callables in alternation, after warming each one up.

    Every round calls each callable once, in the order of `fns`: first `warmup` untimed rounds
    (compilation, caches), then `repeats` timed rounds, so that the calls alternate
    (A B A B …) and a change of machine load affects all of them alike. Each call's output is
    passed to `jax.block_until_ready` before the clock stops (non-JAX outputs pass through).
    Report [`Timing.median`][]; callables that carry state between calls (a training step)
    keep it in their closure.

    **Arguments:**

    - `fns`: the zero-argument callables, by label.
    - `repeats`: timed calls of each callable (at least 1).
    - `warmup`: untimed calls of each callable before the timed ones (at least 0).
    - `clock`: the clock, in seconds.

    **Returns:**

    A [`Timing`][] per label, in the order of `fns`.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"time_alternating(repeats={repeats}, warmup={warmup}) needs repeats >= 1 and "
            "warmup >= 0; use repeats=1, warmup=0 (or `time_once`) for a single call."
        )
    for _ in range(warmup):
        for fn in fns.values():
            jax.block_until_ready(fn())
    samples = {label: [] for label in fns}
    outputs = {}
    for _ in range(repeats):
        for label, fn in fns.items():
            start = clock()
            outputs[label] = jax.block_until_ready(fn())
            samples[label].append(clock() - start)
    return {label: Timing(tuple(samples[label]), outputs[label]) for label in fns}


def time_once(fn: Callable[[], Any]) -> Timing:
    """One timed call of `fn` without warm-up: `time_alternating({...: fn}, 1, warmup=0)`.

    For a measurement that is too slow to repeat or is itself the first call (a compilation, a
    one-shot reference solve).

    **Arguments:**

    - `fn`: the zero-argument callable.

    **Returns:**

    A [`Timing`][] with one sample and `fn`'s output.
    """
    return time_alternating({"": fn}, repeats=1, warmup=0)[""]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def fingerprint(**extra: Any) -> dict[str, str]:
    """The machine and device a benchmark ran on.

    Call it after the script has set `jax_enable_x64`.

    **Arguments:**

    - `**extra`: further entries, e.g. the version of a compared library.

    **Returns:**

    A dict with the keys `cpu` (model), `cores` (usable by this process), `load` (1/5/15-min
    load averages), `platform`, `jax`, `jaxlib` (versions), `devices` (count × kind (platform)
    of `jax.devices()`), `x64`, then the entries of `extra`; all values are strings.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    kinds = collections.Counter((d.device_kind, d.platform) for d in jax.devices())
    return {
        "cpu": _cpu_model(),
        "cores": str(cores),
        "load": ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "devices": ", ".join(f"{n} × {kind} ({p})" for (kind, p), n in kinds.items()),
        "x64": str(jax.config.read("jax_enable_x64")),
        **{key: str(value) for key, value in extra.items()},
    }


def format_fingerprint(entries: dict[str, str]) -> str:
    """A [`fingerprint`][] as one line, `machine: cpu: …; cores: …; …`."""
    return "machine: " + "; ".join(f"{key}: {value}" for key, value in entries.items())


def print_fingerprint(**extra: Any) -> str:
    """Print the [`fingerprint`][] line once, at the top of a report, and return it.

    **Arguments:**

    - `**extra`: as for [`fingerprint`][].

    **Returns:**

    The printed line (to store beside saved results).
    """
    line = format_fingerprint(fingerprint(**extra))
    print(line + "\n", flush=True)
    return line


def markdown_row(cells: Sequence[Any]) -> str:
    """One row of a markdown table, `| a | b |`; for printing rows as they are measured."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table.

    **Arguments:**

    - `headers`: the column names.
    - `rows`: the rows, each a sequence of cells (formatted with `str`). With no rows, the
        result is the header and separator lines, to print rows after it one
        [`markdown_row`][] at a time.

    **Returns:**

    The table, lines joined by newlines, without a trailing newline.
    """
    lines = [markdown_row(headers), "|" + "---|" * len(headers)]
    return "\n".join(lines + [markdown_row(row) for row in rows])


def fmt(value: float | None, spec: str = ".2e") -> str:
    """`value` formatted with `spec`, or `—` for None or a non-finite float."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return format(value, spec)


def compiled_bytes(compiled) -> int:
    """XLA's memory estimate of a compiled executable, argument + output + temporary bytes
    (per device for an SPMD-partitioned one), or -1 where XLA gives no analysis."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return -1
    return int(
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
    )
