"""Step time of `fit`'s train step on device meshes against one device, and the collectives
XLA compiles into it.

    python -m experiments.bench_mesh                      # 8 emulated CPU devices
    python -m experiments.bench_mesh --devices 4 --meshes 4x1,2x2,1x4 --repeats 5
    python -m experiments.bench_mesh --meshes 2x4 --shapes 2x4   # every collective's shape

Sets `XLA_FLAGS=--xla_force_host_platform_device_count=<devices>` before importing JAX (on
a machine with real accelerators pass `--devices 0` to keep them). The problem: Burgers
(spectral derivatives, FFTs in the model too) on a `--nt`×`--nx` grid, PI-HC-MoE with
`--experts` spatial experts, an FNO basis, a batch of `--batch` samples. For each mesh
(`DATAxEXPERTS`): the median time of `--repeats` train steps (timed in alternation with the
one-device reference, `fit(mesh=None)`'s step) and the ratio to it; then, per collective kind
in the compiled step, how many there are and the largest operand (bytes): the expert solves'
Jacobians (experts × points × basis per sample) never appear, only the gathered weights and
statistics and the model gradients. Emulated devices share the host's cores, so on a small
CPU machine the mesh is not faster: the table measures overhead, not speed-up.
"""

import argparse
import os
import re
import sys


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--meshes", default="8x1,4x2,2x4,1x8")
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--nx", type=int, default=64)
    parser.add_argument("--nt", type=int, default=11)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
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
from problems.burgers import Burgers  # noqa: E402

COLLECTIVE = re.compile(
    r"= (.*?) (all-gather|all-reduce|reduce-scatter|all-to-all|collective-permute)"
    r"(?:-start)?\("
)
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


def main():
    args = ARGS
    print_fingerprint()
    pde = Burgers(nx=args.nx, nt=args.nt)
    x = jnp.linspace(0, 2 * jnp.pi, args.nx, endpoint=False)
    batch = jnp.sin(x)[None] * jnp.linspace(0.5, 1.5, args.batch)[:, None]
    points = min(64, args.nt * args.nx // args.experts)
    constraint = MoEHardConstraint(
        parts=(1, args.experts), num_basis=8, num_points=points, throw=False
    )
    loss = PhysicsLoss(pde, constraint)
    model = FNO(3, 8, width=16, modes=(6, 12), depth=2, projection_channels=32, key=jr.key(0))
    optimizer = make_optimizer(learning_rate=1e-3)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    key = jr.key(1)
    jacobian = args.batch * args.experts * points * 8 * 8
    print(
        f"Burgers {args.nt}x{args.nx}, {args.experts} experts x {points} points x 8 basis, "
        f"batch {args.batch}; all experts' PDE-row Jacobians of a step: {jacobian} bytes\n"
    )

    def step(loss_fn, model, opt_state, batch):
        return lambda: train_step(model, opt_state, loss_fn, optimizer, batch, key)[2]

    fns = {"1 device": step(loss, model, opt_state, batch)}
    hlo = {}
    for spec in args.meshes.split(","):
        data, experts = (int(n) for n in spec.split("x"))
        mesh = make_mesh(data, experts)
        sharded = shard_loss(loss, mesh)
        placed_model, placed_state = replicate((model, opt_state), mesh)
        placed_batch = shard_batch(batch, mesh)
        fns[spec] = step(sharded, placed_model, placed_state, placed_batch)
        lowered = train_step.lower(
            placed_model, placed_state, sharded, optimizer, placed_batch, key
        )
        hlo[spec] = lowered.lowered.compile().as_text()  # equinox's Lowered wraps jax's
    if args.shapes:
        print(f"collectives of the {args.shapes} step (result type, kind):")
        for kind, arrays in collective_lines(hlo[args.shapes]):
            print(f"  {kind}: " + ", ".join(f"{d}[{s}]" for d, s in arrays))
        print()
    timings = time_alternating(fns, repeats=args.repeats)
    reference = timings["1 device"].median
    rows = []
    for name, timing in timings.items():
        found = collectives(hlo[name]) if name in hlo else {}
        text = ", ".join(f"{k} ×{c} (max {b} B)" for k, (c, b) in sorted(found.items()))
        rows.append(
            [name, fmt(timing.median, ".3f"), fmt(timing.median / reference, ".2f"), text or "-"]
        )
    print(markdown_table(["mesh (data×experts)", "step s (median)", "ratio", "collectives"], rows))


if __name__ == "__main__":
    main()
