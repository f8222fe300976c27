"""Steps per second and peak memory per device of `fit`'s train step on device meshes
against one device, and the collectives XLA compiles into it.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m experiments.bench_devices
    python -m experiments.bench_devices --workload default --repeats 5
    python -m experiments.bench_devices --workload ds_paper --batch 4 --meshes 2x4
    python -m experiments.bench_devices --workload default --shapes 2x4  # every collective

Sets `XLA_FLAGS=--xla_force_host_platform_device_count=<devices>` before importing JAX (on
a machine with real accelerators pass `--devices 0` to keep them). Two workloads
(`--workload`, default both):

- `default`: the default experiment, the configs of `python -m experiments.train`
  (`experiments._common.compose()`: PI-HC-MoE with 4 spatial experts on diffusion–sorption
  26×64, the FNO of `model: fno`, Adam, batch `train.batch_size` = 8), on synthetic constant
  initial conditions (no data are generated).
- `ds_paper`: the paper-size diffusion–sorption layer, grid 101×1024, 4 experts × 20 000
  collocation points × 16 basis functions (`MoEHardConstraint(parts=(1, 4),
  num_points=20000, num_basis=16, throw=False, vectorize_experts=False)`), an FNO basis
  (width 16, modes (8, 8), depth 2, 16 outputs), batch `--batch` (8; every mesh's `data`
  size must divide it).

For each mesh of `--meshes` (`DATAxEXPERTS`; data × experts = the device count, experts
dividing 4) and one device (`fit(mesh=None)`'s step; for `default` also one device with the
parameter gradient summed by XLA, the reference that shows what the per-sample gradients
summed in sample order cost): steps per second (the median of
`--repeats` timed steps after one warm-up step that compiles; `default` times all meshes in
alternation, `ds_paper` one mesh after another, skipping the timing of a mesh whose
compilation and warm-up step took over `--budget` seconds and not running one whose
devices together would need over 80% of the host's available memory), the peak memory per
device and the ratios of both to one device, then per collective kind in the compiled step
how many there are and the largest result (bytes).

Peak memory is XLA's compile-time estimate, `memory_analysis()` of the compiled train step:
argument + output + temporary bytes. For an SPMD-partitioned executable these are the
numbers of one device's program (the per-partition module: a batch split over 8 devices
counts 1/8 of its bytes, a replicated model all of them), so they are per device; the
script checks this on a sharded array before measuring. It is an estimate, not a measured
high-water mark. Emulated CPU devices share the host's cores (2 on the development
machine): the table shows that the mesh runs and what it costs, not a speed-up.
"""

import argparse
import os
import re
import sys
import time


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--workload", choices=["default", "ds_paper", "both"], default="both")
    parser.add_argument("--meshes", default="8x1,4x2,2x4")
    parser.add_argument("--batch", type=int, default=8, help="ds_paper's batch")
    parser.add_argument("--repeats", type=int, default=3, help="default's timed steps")
    parser.add_argument("--paper-repeats", type=int, default=1, help="ds_paper's timed steps")
    parser.add_argument(
        "--budget", type=float, default=180.0, help="ds_paper: seconds per mesh before skipping"
    )
    parser.add_argument(
        "--shapes", default="", help="a mesh (e.g. 2x4) whose every collective to list"
    )
    return parser.parse_args(argv)


ARGS = _parse(sys.argv[1:] if __name__ == "__main__" else [])
if ARGS.devices and "jax" not in sys.modules:
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={ARGS.devices}"
    )

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402

from experiments._report import (  # noqa: E402
    compiled_bytes,
    fmt,
    markdown_table,
    print_fingerprint,
    time_alternating,
)
from pdeopt.constraints import MoEHardConstraint  # noqa: E402
from pdeopt.models import FNO  # noqa: E402
from pdeopt.training import (  # noqa: E402
    PhysicsLoss,
    make_mesh,
    make_optimizer,
    replicate,
    shard_batch,
    train_step,
)
from pdeopt.training._mesh import shard_loss  # noqa: E402

COLLECTIVE = re.compile(
    r"= (.*?) (all-gather|all-reduce|reduce-scatter|all-to-all|collective-permute)"
    r"(?:-start)?\("
)
SUMMED = "1 device, gradient summed by XLA"  # the reference row of the default workload
ARRAY = re.compile(r"(\w+)\[([\d,]*)\]")
BYTES = {"f64": 8, "s64": 8, "c128": 16, "f32": 4, "s32": 4, "pred": 1, "u32": 4, "s8": 1}


def _bytes(dtype: str, shape: str) -> int:
    size = BYTES.get(dtype, 8)
    for n in filter(None, shape.split(",")):
        size *= int(n)
    return size


def collective_lines(hlo: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every collective of an HLO text: its kind and its result arrays (dtype, shape); a
    combined collective has several."""
    return [(kind, ARRAY.findall(result)) for result, kind in COLLECTIVE.findall(hlo)]


def collectives(hlo: str) -> dict[str, tuple[int, int]]:
    """Per collective kind in an HLO text: how many, and the largest result array in bytes."""
    found: dict[str, tuple[int, int]] = {}
    for kind, arrays in collective_lines(hlo):
        count, largest = found.get(kind, (0, 0))
        size = max((_bytes(*a) for a in arrays), default=0)
        found[kind] = (count + 1, max(largest, size))
    return found


def _available_bytes() -> int:
    """The host's available memory (`MemAvailable` of /proc/meminfo; emulated devices all
    live in it), or a very large number where it is unknown."""
    try:
        with open("/proc/meminfo") as lines:
            for line in lines:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2**62


def check_per_device(mesh) -> str:
    """Whether `memory_analysis` counts one device's bytes on `mesh`: the argument bytes of
    a function of a batch split over the `data` axis, against the whole batch's."""
    data = mesh.shape["data"]
    whole = jnp.zeros((8 * data, 1024))
    compiled = jax.jit(lambda a: 2 * a).lower(shard_batch(whole, mesh)).compile()
    counted = compiled.memory_analysis().argument_size_in_bytes
    per = "per device" if counted * data == whole.nbytes else "NOT per device"
    return (
        f"memory_analysis on a {data}-way data split: argument {counted} B of a "
        f"{whole.nbytes} B batch -> {per}"
    )


def default_workload():
    """The default experiment's loss, model, optimizer and a batch of `train.batch_size`."""
    from experiments._common import compose
    from experiments._validate import validate
    from experiments.train import build_model

    cfg = compose()
    problem, constraint, optimizer = validate(cfg)
    pde = problem.pde
    nt, nx = pde.grid_shape
    batch = jnp.linspace(0.02, 0.18, cfg.train.batch_size)[:, None] * jnp.ones((1, nx))
    in_channels = pde.inputs(batch[0]).shape[-1]
    model = build_model(cfg.model, pde, in_channels, constraint, jr.key(0))
    title = (
        f"default experiment (experiments.train's configs): diffusion–sorption {nt}×{nx}, "
        f"PI-HC-MoE {constraint.parts} × {constraint.num_points} points × "
        f"{constraint.num_basis} basis, {type(model).__name__}, batch {len(batch)}"
    )
    return title, PhysicsLoss(pde, constraint), model, optimizer, batch


def ds_paper_workload(batch_size: int):
    """The paper-size diffusion–sorption layer with an FNO basis."""
    from problems.diffusion_sorption import DiffusionSorption

    pde = DiffusionSorption(nx=1024, nt=101)
    constraint = MoEHardConstraint(
        parts=(1, 4), num_points=20000, num_basis=16, throw=False, vectorize_experts=False
    )
    model = FNO(3, 16, width=16, modes=(8, 8), depth=2, final_activation=jax.nn.gelu, key=jr.key(0))
    batch = jnp.linspace(0.02, 0.18, batch_size)[:, None] * jnp.ones((1, 1024))
    title = (
        "paper-size diffusion–sorption 101×1024, MoEHardConstraint (1, 4) × 20000 points × 16 "
        f"basis, FNO width 16 modes (8, 8) depth 2, batch {batch_size}"
    )
    return title, PhysicsLoss(pde, constraint), model, make_optimizer(learning_rate=1e-3), batch


class SummedGradientLoss(PhysicsLoss):
    """The reference: `PhysicsLoss` with one copy of the parameters for the whole batch, so
    XLA sums their gradient over the samples as it likes, instead of per-sample gradients
    summed in sample order (what makes a mesh's gradient bitwise that of one device)."""

    def sample_terms(self, model, conditions, keys):
        params, static = eqx.partition(model, eqx.is_inexact_array)
        return self.stacked_terms(params, static, conditions, keys, per_sample=False)


def compile_step(loss, model, optimizer, batch, key, spec):
    """The compiled train step on one device (`spec=None`) or on the mesh `DATAxEXPERTS`:
    a zero-argument step, its HLO text and its memory estimate (bytes)."""
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    if spec is not None:
        data, experts = (int(n) for n in spec.split("x"))
        mesh = make_mesh(data, experts)
        loss = shard_loss(loss, mesh)
        model, opt_state = replicate((model, opt_state), mesh)
        batch = shard_batch(batch, mesh)
    args = (model, opt_state, loss, optimizer, batch, key)
    compiled = train_step.lower(*args).compile()  # equinox's Compiled wraps jax's
    return (
        lambda: compiled(*args)[2],
        compiled.compiled.as_text(),
        compiled_bytes(compiled.compiled),
    )


def report(title, specs, timings, hlo, memory, notes=()):
    """The markdown table of one workload: steps/s, memory per device, ratios, collectives."""
    print(f"### {title}\n")
    base_rate = 1 / timings["1 device"]
    base_memory = memory["1 device"]
    rows = []
    for name in ["1 device", *specs]:
        seconds = timings.get(name)
        rate = 1 / seconds if seconds else float("nan")
        found = collectives(hlo[name]) if "device" not in name else {}
        text = ", ".join(f"{k} ×{c} (max {b} B)" for k, (c, b) in sorted(found.items()))
        rows.append(
            [
                name,
                fmt(rate, ".3f") if seconds else "skipped",
                fmt(rate / base_rate, ".2f") if seconds else "-",
                fmt(memory[name] / 2**20, ".1f"),
                fmt(memory[name] / base_memory, ".2f"),
                text or "-",
            ]
        )
    header = [
        "mesh (data×experts)",
        "steps/s",
        "steps/s ÷ 1 device",
        "peak MiB per device",
        "memory ÷ 1 device",
        "collectives",
    ]
    print(markdown_table(header, rows))
    for note in notes:
        print(f"\n{note}")
    print()


def run_default(args, key):
    title, loss, model, optimizer, batch = default_workload()
    specs = args.meshes.split(",")
    fns, hlo, memory = {}, {}, {}
    for name, spec in [("1 device", None)] + [(s, s) for s in specs]:
        fns[name], hlo[name], memory[name] = compile_step(loss, model, optimizer, batch, key, spec)
    summed = SummedGradientLoss(loss.pde, loss.constraint)
    fns[SUMMED], hlo[SUMMED], memory[SUMMED] = compile_step(
        summed, model, optimizer, batch, key, None
    )
    specs = [SUMMED, *specs]
    if args.shapes:
        print(f"collectives of the {args.shapes} step (result type, kind):")
        for kind, arrays in collective_lines(hlo[args.shapes]):
            print(f"  {kind}: " + ", ".join(f"{d}[{s}]" for d, s in arrays))
        print()
    timings = time_alternating(fns, repeats=args.repeats)
    medians = {name: t.median for name, t in timings.items()}
    title += f"; median of {args.repeats} steps, timed in alternation"
    report(title, specs, medians, hlo, memory)


def run_ds_paper(args, key):
    title, loss, model, optimizer, batch = ds_paper_workload(args.batch)
    specs = args.meshes.split(",")
    timings, hlo, memory, notes = {}, {}, {}, []
    for name, spec in [("1 device", None)] + [(s, s) for s in specs]:
        start = time.perf_counter()
        step, hlo[name], memory[name] = compile_step(loss, model, optimizer, batch, key, spec)
        compiled = time.perf_counter() - start
        devices = 1 if spec is None else jax.device_count()
        need, free = memory[name] * devices, _available_bytes()
        print(
            f"{name}: compiled in {compiled:.0f} s, {memory[name] / 2**20:.0f} MiB per device "
            f"× {devices} = {need / 2**30:.1f} GiB of host memory, {free / 2**30:.1f} GiB free",
            flush=True,
        )
        if need > 0.8 * free:
            notes.append(
                f"{name}: not run, its devices need {need / 2**30:.1f} GiB of the host's "
                f"{free / 2**30:.1f} GiB available (the memory column is the compiled estimate)."
            )
            continue
        jax.block_until_ready(step())
        warm = time.perf_counter() - start
        print(f"{name}: compilation + warm-up step {warm:.0f} s", flush=True)
        if warm > args.budget:
            notes.append(
                f"{name}: timing skipped, compilation + warm-up step took {warm:.0f} s > "
                f"{args.budget:.0f} s (its memory estimate is from the compiled step)."
            )
            continue
        timings[name] = time_alternating({name: step}, repeats=args.paper_repeats, warmup=0)[
            name
        ].median
        print(f"{name}: {1 / timings[name]:.4f} steps/s", flush=True)
    title += f"; median of {args.paper_repeats} step(s), one mesh after another"
    if "1 device" not in timings:
        timings["1 device"] = float("nan")
    report(title, specs, timings, hlo, memory, notes)


def main():
    args = ARGS
    print_fingerprint()
    print(
        f"{jax.device_count()} {jax.devices()[0].platform} devices; emulated CPU devices share "
        f"the host's {os.cpu_count()} cores: the tables show correctness and overhead, not "
        "speed-up.\n"
    )
    if len(jax.devices()) > 1:
        print(check_per_device(make_mesh(jax.device_count(), 1)) + "\n")
    key = jr.key(1)
    start = time.perf_counter()
    if args.workload in ("default", "both"):
        run_default(args, key)
    if args.workload in ("ds_paper", "both"):
        run_ds_paper(args, key)
    print(f"wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
