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
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optimistix as optx

from experiments._report import markdown_row, markdown_table, print_fingerprint, time_alternating


def repeated_ic(pde, repeats: int):
    """`pde` with its IC block repeated `repeats` times (the original PI-HC's defect D2),
    each copy scaled by √repeats, so the IC share of the objective grows `repeats`-fold."""
    from pdeopt.constraints import Boundary
    from problems.diffusion_sorption import DiffusionSorption

    class RepeatedIC(DiffusionSorption):
        repeats: int = eqx.field(static=True, default=1)

        @property
        def blocks(self):
            ic, *rest = super().blocks
            scale = math.sqrt(self.repeats)
            scaled = lambda u, c, x: scale * ic.residual(u, c, x)
            return (Boundary(ic.name, ic.axis, ic.side, scaled),) * self.repeats + tuple(rest)

    fields = {f.name: getattr(pde, f.name) for f in dataclasses.fields(pde)}
    return RepeatedIC(**fields, repeats=repeats)


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

    print_fingerprint()
    print(
        f"grid {args.nt}×{args.nx}, batch {args.batch}, N={args.basis}, K={args.experts}, "
        f"points {'per expert' if args.per_expert else 'in total'}, MoE IC/BC rows "
        f"{'local' if args.local_rows else 'global'}, PI-HC IC rows ×{args.hc_ic_repeats}, "
        f"LM max_steps {args.max_steps}, median of {args.repeats}\n"
    )
    header = ["points", "HC infer s", "MoE infer s", "speedup", "HC train s", "MoE train s"]
    header += ["speedup", "HC MB", "MoE MB", "HC steps", "MoE steps"]
    print(markdown_table(header, []))
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
                timings = time_alternating(
                    {"infer": partial(infer, basis), "train": partial(train, basis)}, args.repeats
                )
                row[name] = {
                    "infer": timings["infer"].median,
                    "train": timings["train"].median,
                    "mb": _peak_bytes(train, basis) / 2**20,
                    "steps": float(jnp.mean(infer(basis)[1].num_steps)),
                }
            except ValueError as e:  # e.g. more points than an expert's block holds.
                print(markdown_row([points, f"skipped: {e}"]))
                break
        else:
            hc, moe = row["hc"], row["moe"]
            cells = [points]
            for key in ("infer", "train"):
                cells += [f"{hc[key]:.4f}", f"{moe[key]:.4f}", f"{hc[key] / moe[key]:.2f}×"]
            for key in ("mb", "steps"):
                cells += [f"{hc[key]:.1f}", f"{moe[key]:.1f}"]
            print(markdown_row(cells), flush=True)


if __name__ == "__main__":
    main()
