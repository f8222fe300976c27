"""PI-HC vs PI-HC-MoE timing as the number of collocation points grows (PI-HC-MoE Fig. 4), for
optimistix's Levenberg–Marquardt ("optx") and pdeopt's ("pdeopt"); and a basis-size sweep of
pdeopt's step solvers.

`python -m experiments.bench_hard_constraints [--points 100 1000 10000 100000] [--batch 2]
[--nx 1024 --nt 101] [--experts 4] [--per-expert] [--local-rows] [--sequential-experts]
[--sequential-samples] [--hc-ic-repeats R] [--solvers optx pdeopt] [--repeats 5]`

`python -m experiments.bench_hard_constraints --sweep-basis 16 64 256 1024 [--points 100000]
[--step-solvers cholesky qr sketched]`

For each point count and solver, in one process and after compilation, times with
`block_until_ready`:

- inference: the constraint layer's forward solve for a batch of basis stacks;
- training: forward + implicit backward (gradient of a loss on u w.r.t. the basis);

for PI-HC (one solve over all points) and PI-HC-MoE (K spatial experts), with the mean final
residual norm ‖r‖, the converged fraction of all solves, XLA's peak-memory estimate and the mean
number of solver steps (Jacobian evaluations); then the ratios pdeopt / optx and MoE / PI-HC.
`--sequential-experts` solves the experts one after another (`vectorize_experts=False`), so an
expert that converges early does not wait for the slowest in a batched `while_loop`;
`--sequential-samples` does the same for the batch's samples (`vectorize_samples=False`: the
layer is `lax.map`ped over the batch instead of `vmap`ped), for the pdeopt solver. By default the
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

from experiments._report import (
    compiled_bytes,
    markdown_row,
    markdown_table,
    print_fingerprint,
    time_alternating,
)


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


STEP_SOLVERS = ("cholesky", "qr", "sketched")


def _peak_bytes(fn, *args) -> int:
    return compiled_bytes(fn.lower(*args).compile())


def _layers(args, points, solver, pde, hc_pde):
    from pdeopt.constraints import HardConstraint, MoEHardConstraint
    from pdeopt.solvers import LevenbergMarquardt

    common = dict(
        num_basis=args.basis,
        solver=solver,
        max_steps=args.max_steps,
        throw=False,
        vectorize_samples=not (args.sequential_samples and isinstance(solver, LevenbergMarquardt)),
    )
    per_expert = points if args.per_expert else points // args.experts
    return {
        "hc": (hc_pde, HardConstraint(num_points=points, **common)),
        "moe": (
            pde,
            MoEHardConstraint(
                parts=(1, args.experts),
                num_points=per_expert,
                global_boundary_rows=not args.local_rows,
                vectorize_experts=not args.sequential_experts,
                **common,
            ),
        ),
    }


def _measure(layer, pde, basis, conditions, keys, weights, repeats, train=True) -> dict:
    def forward(basis):
        one = lambda b, c, k: layer(pde, b, c, key=k)
        if layer.vectorize_samples:
            return jax.vmap(one)(basis, conditions, keys)
        return jax.lax.map(lambda a: one(*a), (basis, conditions, keys))

    def loss(basis):
        u, _ = forward(basis)
        return jnp.sum(weights * u**2)

    infer = jax.jit(forward)
    fns = {"infer": partial(infer, basis)}
    if train:
        grad = jax.jit(jax.value_and_grad(loss))
        fns["train"] = partial(grad, basis)
    timings = time_alternating(fns, repeats)
    stats = infer(basis)[1]
    return {
        "infer": timings["infer"].median,
        "train": timings["train"].median if train else float("nan"),
        "mb": _peak_bytes(grad if train else infer, basis) / 2**20,
        "steps": float(jnp.mean(stats.num_steps)),
        "residual": float(jnp.mean(stats.residual_norm)),
        "converged": float(jnp.mean(stats.converged)),
    }


def _solver(name: str, step_solver=None):
    from pdeopt.solvers import AutoStep, LevenbergMarquardt

    if name == "optx":
        return optx.LevenbergMarquardt(rtol=1e-6, atol=1e-8)
    return LevenbergMarquardt(rtol=1e-6, atol=1e-8, step_solver=step_solver or AutoStep())


def _step_solver(name: str):
    from pdeopt.solvers import CholeskyStep, QRStep, SketchedStep

    return {"cholesky": CholeskyStep(), "qr": QRStep(), "sketched": SketchedStep()}[name]


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
    parser.add_argument("--sequential-experts", action="store_true")
    parser.add_argument("--sequential-samples", action="store_true")
    parser.add_argument("--hc-ic-repeats", type=int, default=1)
    parser.add_argument(
        "--solvers", nargs="+", choices=["optx", "pdeopt"], default=["optx", "pdeopt"]
    )
    parser.add_argument("--sweep-basis", type=int, nargs="+", default=None)
    parser.add_argument(
        "--step-solvers", nargs="+", choices=STEP_SOLVERS, default=list(STEP_SOLVERS)
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)

    from pdeopt.constraints import HardConstraint
    from pdeopt.models import FNO
    from problems.diffusion_sorption import DiffusionSorption

    pde = DiffusionSorption(nx=args.nx, nt=args.nt)
    hc_pde = pde if args.hc_ic_repeats == 1 else repeated_ic(pde, args.hc_ic_repeats)
    levels = jnp.linspace(0.02, 0.18, args.batch)
    conditions = levels[:, None] * jnp.ones((1, args.nx))
    keys = jr.split(jr.key(1), args.batch)
    weights = jr.normal(jr.key(2), pde.grid_shape)

    def fno_basis(n):
        model = FNO(
            3, n, width=16, modes=(8, 8), depth=2, final_activation=jax.nn.gelu, key=jr.key(0)
        )
        return jax.jit(jax.vmap(lambda c: model(pde.inputs(c))))(conditions)

    print_fingerprint()
    if args.sweep_basis:
        points = args.points[0]
        print(
            f"basis-size sweep: PI-HC, grid {args.nt}×{args.nx}, {points} points, batch "
            f"{args.batch}, pdeopt LM max_steps {args.max_steps}, forward solve, median of "
            f"{args.repeats}; ratios against the dense QR step\n"
        )
        header = ["N"] + [f"{s} s" for s in args.step_solvers]
        header += [f"{s} / qr" for s in args.step_solvers if s != "qr"]
        header += [f"{s} steps" for s in args.step_solvers] + [
            f"{s} ‖r‖" for s in args.step_solvers
        ]
        print(markdown_table(header, []))
        for n in args.sweep_basis:
            basis = fno_basis(n)
            row = {}
            for name in args.step_solvers:
                solver = _solver("pdeopt", _step_solver(name))
                layer = HardConstraint(
                    num_basis=n,
                    num_points=points,
                    solver=solver,
                    max_steps=args.max_steps,
                    throw=False,
                )
                row[name] = _measure(
                    layer, pde, basis, conditions, keys, weights, args.repeats, train=False
                )
            cells = [n] + [f"{row[s]['infer']:.3f}" for s in args.step_solvers]
            if "qr" in row:
                cells += [
                    f"{row[s]['infer'] / row['qr']['infer']:.3f}"
                    for s in args.step_solvers
                    if s != "qr"
                ]
            cells += [f"{row[s]['steps']:.1f}" for s in args.step_solvers]
            cells += [f"{row[s]['residual']:.6f}" for s in args.step_solvers]
            print(markdown_row(cells), flush=True)
        return

    basis = fno_basis(args.basis)
    print(
        f"grid {args.nt}×{args.nx}, batch {args.batch}, N={args.basis}, K={args.experts}, "
        f"points {'per expert' if args.per_expert else 'in total'}, MoE IC/BC rows "
        f"{'local' if args.local_rows else 'global'}, experts "
        f"{'one after another' if args.sequential_experts else 'vmapped'}, pdeopt samples "
        f"{'one after another' if args.sequential_samples else 'vmapped'}, PI-HC IC rows "
        f"×{args.hc_ic_repeats}, max_steps {args.max_steps}, median of {args.repeats}\n"
    )
    header = ["points", "solver", "HC infer s", "MoE infer s", "HC train s", "MoE train s"]
    header += ["MoE/HC train", "HC ‖r‖", "MoE ‖r‖", "HC conv", "MoE conv", "HC MB", "MoE MB"]
    header += ["HC steps", "MoE steps"]
    print(markdown_table(header, []))
    ratios = []
    for points in args.points:
        rows = {}
        for solver_name in args.solvers:
            layers = _layers(args, points, _solver(solver_name), pde, hc_pde)
            try:
                rows[solver_name] = {
                    name: _measure(layer, p, basis, conditions, keys, weights, args.repeats)
                    for name, (p, layer) in layers.items()
                }
            except ValueError as e:  # e.g. more points than an expert's block holds.
                print(markdown_row([points, solver_name, f"skipped: {e}"]))
                continue
            hc, moe = rows[solver_name]["hc"], rows[solver_name]["moe"]
            cells = [points, solver_name]
            cells += [f"{hc['infer']:.4f}", f"{moe['infer']:.4f}"]
            cells += [f"{hc['train']:.4f}", f"{moe['train']:.4f}"]
            cells += [f"{moe['train'] / hc['train']:.2f}"]
            cells += [f"{hc['residual']:.6f}", f"{moe['residual']:.6f}"]
            cells += [f"{hc['converged']:.3f}", f"{moe['converged']:.3f}"]
            cells += [f"{hc['mb']:.1f}", f"{moe['mb']:.1f}", f"{hc['steps']:.1f}"]
            cells += [f"{moe['steps']:.1f}"]
            print(markdown_row(cells), flush=True)
        if {"optx", "pdeopt"} <= rows.keys():
            new, old = rows["pdeopt"], rows["optx"]
            ratios.append(
                [points]
                + [
                    f"{new[m][k] / old[m][k]:.3f}"
                    for m in ("hc", "moe")
                    for k in ("infer", "train")
                ]
            )
    if ratios:
        print("\npdeopt / optx time (same run)\n")
        header = ["points", "HC infer", "HC train", "MoE infer", "MoE train"]
        print(markdown_table(header, ratios))


if __name__ == "__main__":
    main()
