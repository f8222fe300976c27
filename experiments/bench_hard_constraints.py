"""PI-HC vs PI-HC-MoE timing as the number of collocation points grows (PI-HC-MoE Fig. 4).

`python -m experiments.bench_hard_constraints [--points 100 1000 10000 100000] [--batch 2]
[--nx 1024 --nt 101] [--experts 4] [--per-expert] [--local-rows] [--hc-ic-repeats R]
[--repeats 5]`

For each point count, in one process and after compilation, times with `block_until_ready`:

- inference: the constraint layer's forward solve for a batch of basis stacks;
- training: forward + implicit backward (gradient of a loss on u w.r.t. the basis);

for PI-HC (one solve over all points) and PI-HC-MoE (K spatial experts). By default the
point count is the *total* over experts (each MoE expert gets points / K, so both methods fit
the same number of rows); `--per-expert` gives every expert the full count instead (the
paper's PI-HC-MoE runs used 20k points per expert). Every MoE expert fits all initial/boundary
rows (the paper's choice, `global_boundary_rows=True`), so each expert's problem has the
1224 IC/BC rows of the 101 × 1024 grid on top of its points; `--local-rows` gives each
expert only the rows inside its block. `--hc-ic-repeats R` reproduces the original code's
defect D2 for PI-HC only: its IC rows repeated R times (the original used R = 101, one copy
per time row), each copy scaled by √R so that, after pdeopt's per-block 1/√rows
normalisation, the IC share of PI-HC's objective grows R-fold as it did there. The basis is
the output of a randomly initialised FNO (N = 16 channels, GELU basis head) on
diffusion–sorption inputs, so both methods solve the same problems; the FNO itself is not
timed (its cost is identical for both). Peak memory is XLA's compile-time estimate (argument
+ output + temporary bytes of the compiled function), which is what a CPU backend can report.
"""

import argparse
import dataclasses
import math
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optimistix as optx


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}; {jax.device_count()} × {jax.devices()[0].device_kind}; jax {jax.__version__}"


def repeated_ic(pde, repeats: int):
    """`pde` with its IC rows repeated `repeats` times (the original PI-HC's defect D2)."""
    from problems.diffusion_sorption import DiffusionSorption

    class RepeatedIC(DiffusionSorption):
        repeats: int = eqx.field(static=True, default=1)

        def boundary_locations(self):
            locations = super().boundary_locations()
            return {**locations, "ic": np.tile(locations["ic"], (self.repeats, 1))}

        def boundary_residuals(self, qb, condition):
            rows = super().boundary_residuals(qb, condition)
            return {**rows, "ic": math.sqrt(self.repeats) * jnp.tile(rows["ic"], self.repeats)}

    fields = {f.name: getattr(pde, f.name) for f in dataclasses.fields(pde)}
    return RepeatedIC(**fields, repeats=repeats)


def _timed(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # Warm-up after compilation.
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _peak_bytes(fn, *args) -> int:
    analysis = fn.lower(*args).compile().memory_analysis()
    if analysis is None:
        return -1
    return int(
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[100, 1000, 10000, 100000])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--nx", type=int, default=1024)
    parser.add_argument("--nt", type=int, default=101)
    parser.add_argument("--experts", type=int, default=4)
    parser.add_argument("--basis", type=int, default=16)
    parser.add_argument("--max-steps", type=int, default=50)
    parser.add_argument("--per-expert", action="store_true")
    parser.add_argument("--local-rows", action="store_true")
    parser.add_argument("--hc-ic-repeats", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)

    from pdeopt.constraints import HardConstraint, MoEHardConstraint
    from pdeopt.models import FNO
    from problems.diffusion_sorption import DiffusionSorption

    pde = DiffusionSorption(nx=args.nx, nt=args.nt)
    hc_pde = pde if args.hc_ic_repeats == 1 else repeated_ic(pde, args.hc_ic_repeats)
    model = FNO(
        3, args.basis, width=16, modes=(8, 8), depth=2, final_activation=jax.nn.gelu, key=jr.key(0)
    )
    levels = jnp.linspace(0.02, 0.18, args.batch)
    conditions = levels[:, None] * jnp.ones((1, args.nx))
    basis = jax.jit(jax.vmap(lambda c: model(pde.inputs(c))))(conditions)
    keys = jr.split(jr.key(1), args.batch)
    weights = jr.normal(jr.key(2), pde.grid_shape)
    solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-8)
    common = dict(num_basis=args.basis, solver=solver, max_steps=args.max_steps, throw=False)

    print(f"machine: {_machine()}")
    print(
        f"grid {args.nt}×{args.nx}, batch {args.batch}, N={args.basis}, K={args.experts}, "
        f"points {'per expert' if args.per_expert else 'in total'}, MoE IC/BC rows "
        f"{'local' if args.local_rows else 'global'}, PI-HC IC rows ×{args.hc_ic_repeats}, "
        f"LM max_steps {args.max_steps}, median of {args.repeats}"
    )
    header = (
        f"{'points':>8} | {'HC infer s':>10} {'MoE infer s':>11} {'speedup':>7} | "
        f"{'HC train s':>10} {'MoE train s':>11} {'speedup':>7} | {'HC MB':>8} {'MoE MB':>8} | "
        f"{'HC steps':>8} {'MoE steps':>9}"
    )
    print(header)
    print("-" * len(header))
    for points in args.points:
        per_expert = points if args.per_expert else points // args.experts
        layers = {
            "hc": (hc_pde, HardConstraint(num_points=points, **common)),
            "moe": (
                pde,
                MoEHardConstraint(
                    parts=(1, args.experts),
                    num_points=per_expert,
                    global_boundary_rows=not args.local_rows,
                    **common,
                ),
            ),
        }
        row = {}
        for name, (layer_pde, layer) in layers.items():

            def forward(basis, layer=layer, p=layer_pde):
                return jax.vmap(lambda b, c, k: layer(p, b, c, key=k))(basis, conditions, keys)

            def loss(basis, layer=layer, p=layer_pde):
                u, _ = forward(basis, layer, p)
                return jnp.sum(weights * u**2)

            infer = jax.jit(forward)
            train = jax.jit(jax.value_and_grad(loss))
            try:
                row[name] = {
                    "infer": _timed(infer, basis, repeats=args.repeats),
                    "train": _timed(train, basis, repeats=args.repeats),
                    "mb": _peak_bytes(train, basis) / 2**20,
                    "steps": float(jnp.mean(infer(basis)[1]["num_steps"])),
                }
            except ValueError as e:  # e.g. more points than an expert's block holds.
                print(f"{points:>8} | skipped: {e}")
                break
        else:
            hc, moe = row["hc"], row["moe"]
            print(
                f"{points:>8} | {hc['infer']:10.4f} {moe['infer']:11.4f} "
                f"{hc['infer'] / moe['infer']:6.2f}× | {hc['train']:10.4f} {moe['train']:11.4f} "
                f"{hc['train'] / moe['train']:6.2f}× | {hc['mb']:8.1f} {moe['mb']:8.1f} | "
                f"{hc['steps']:8.1f} {moe['steps']:9.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
