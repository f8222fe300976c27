"""PI-HC vs PI-HC-MoE timing as the number of collocation points grows (PI-HC-MoE Fig. 4), for
optimistix's Levenberg–Marquardt ("optx") and pdeopt's ("pdeopt"); and a basis-size sweep of
pdeopt's step solvers.

`python -m experiments.bench_hard_constraints [--points 100 1000 10000 100000] [--batch 2]
[--nx 1024 --nt 101] [--experts 4] [--per-expert] [--local-rows] [--sequential-experts]
[--sequential-samples] [--hc-ic-repeats R] [--solvers optx pdeopt] [--repeats 5]`

`python -m experiments.bench_hard_constraints --sweep-basis 16 64 256 1024 [--points 100000]
[--step-solvers cholesky qr sketched]`

For each point count and solver, in one process and after compilation, times with
`block_until_ready` (`measure_layers`; it, `random_basis` and `hard_constraint_layers` are what
`experiments._reproduce_timing` and `experiments.gpu_suite` import):

- inference: the constraint layer's forward solve for a batch of basis stacks;
- training: forward + implicit backward (gradient of a loss on u w.r.t. the basis);

for PI-HC (one solve over all points) and PI-HC-MoE (K spatial experts), with the mean final
residual norm ‖r‖, the converged fraction of all solves, XLA's peak-memory estimate and the mean
number of solver steps (Jacobian evaluations); then the ratios pdeopt / optx and MoE / PI-HC.
All layers of one point count and solver are timed in alternation, and every call draws fresh
collocation points.
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
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optimistix as optx

from experiments._report import (
    Timing,
    compiled_bytes,
    markdown_row,
    markdown_table,
    print_fingerprint,
    time_alternating,
)


def repeated_ic(pde, repeats: int):
    """`pde` with its IC block repeated `repeats` times (the original PI-HC's defect D2),
    each copy scaled by √repeats, so the IC share of the objective grows `repeats`-fold;
    `pde` itself for `repeats=1`. Diffusion–sorption only (the original code's case)."""
    from pdeopt.constraints import Boundary
    from problems.diffusion_sorption import DiffusionSorption

    if repeats == 1:
        return pde
    if not isinstance(pde, DiffusionSorption):
        raise ValueError(
            f"hc_ic_repeats={repeats} repeats diffusion–sorption's IC rows; the PDE here is "
            f"{type(pde).__name__}: leave hc_ic_repeats at 1."
        )

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


# ---- the measurement, importable (experiments._reproduce_timing, experiments.gpu_suite) ----


@eqx.filter_jit
def _apply(model, pde, conditions):
    return jax.vmap(lambda c: model(pde.inputs(c)))(conditions)


def random_basis(pde, conditions, num_basis: int, *, width=16, modes=8, depth=2, dtype, key):
    """The basis stacks of a randomly initialised FNO (GELU basis head) on `pde`'s inputs
    for a batch of `conditions`: shape `(batch, *grid, num_basis)`. `modes` is capped at half
    of each grid axis."""
    from pdeopt.models import FNO

    inputs = jax.eval_shape(pde.inputs, jax.tree.map(lambda c: c[0], conditions))
    model = FNO(
        inputs.shape[-1],
        num_basis,
        width=width,
        modes=tuple(min(modes, n // 2) for n in pde.grid_shape),
        depth=depth,
        final_activation=jax.nn.gelu,
        dtype=dtype,
        key=key,
    )
    return _apply(model, pde, conditions)


def hard_constraint_layers(
    points: int,
    *,
    parts,
    per_expert: bool = False,
    global_boundary_rows: bool = True,
    vectorize_experts: bool = True,
    **common,
) -> dict:
    """PI-HC (`"hc"`, one solve over `points` collocation points) and PI-HC-MoE (`"moe"`,
    `parts` experts, each with `points` / K points, or `points` with `per_expert`); `common`
    are the other `HardConstraint` arguments of both."""
    from pdeopt.constraints import HardConstraint, MoEHardConstraint

    parts = tuple(parts)
    return {
        "hc": HardConstraint(num_points=points, **common),
        "moe": MoEHardConstraint(
            parts=parts,
            num_points=points if per_expert else points // math.prod(parts),
            global_boundary_rows=global_boundary_rows,
            vectorize_experts=vectorize_experts,
            **common,
        ),
    }


def _solve(layer, pde, basis, conditions, keys):
    one = lambda b, c, k: layer(pde, b, c, key=k)
    if layer.vectorize_samples:
        return jax.vmap(one)(basis, conditions, keys)
    return jax.lax.map(lambda a: one(*a), (basis, conditions, keys))


def _loss_and_grad(layer, pde, basis, conditions, keys, weights):
    loss = lambda b: jnp.sum(weights * _solve(layer, pde, b, conditions, keys)[0] ** 2)
    return jax.value_and_grad(loss)(basis)


_JITTED = {
    "infer": jax.jit(_solve, static_argnums=(0, 1)),
    "train": jax.jit(_loss_and_grad, static_argnums=(0, 1)),
}
_COMPILED: dict = {}  # one executable per (kind, layer, pde, argument shapes, options)
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _compiled(kind: str, layer, pde, arrays, fast_compile: bool):
    """The executable of `_JITTED[kind]` and the seconds it took to trace and compile (0.0
    when an earlier call of this process compiled it)."""
    shapes = tuple((a.shape, a.dtype) for a in jax.tree.leaves(arrays))
    cache_key = (kind, layer, pde, shapes, fast_compile)
    if cache_key in _COMPILED:
        return _COMPILED[cache_key], 0.0
    start = time.perf_counter()
    lowered = _JITTED[kind].lower(layer, pde, *arrays)
    compiled = lowered.compile(FAST_COMPILE if fast_compile else None)
    _COMPILED[cache_key] = compiled
    return compiled, time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What `measure_layers` measured of one constraint layer.

    - `infer`, `train`: per-batch wall times of the forward solve, and of forward + implicit
        backward (`None` when not measured).
    - `compile_s`: seconds to trace and compile both (0.0: compiled earlier in the process).
    - `steps`, `converged`, `residual`: mean solver steps (Jacobian evaluations), converged
        fraction and final residual norm of every solve of the timed forward calls.
    - `peak_bytes`: XLA's estimate for the largest of the compiled functions.
    """

    infer: Timing
    train: Timing | None
    compile_s: float
    steps: float
    converged: float
    residual: float
    peak_bytes: int


def time_stats(timing: Timing | None, unit: float = 1e3) -> dict | None:
    """Mean, std, median and the samples of a `Timing`, in milliseconds by default."""
    if timing is None:
        return None
    samples = [unit * t for t in timing.samples]
    return {
        "mean": statistics.fmean(samples),
        "std": statistics.pstdev(samples),
        "median": statistics.median(samples),
        "samples": samples,
    }


def measure_layers(
    layers: dict,
    basis,
    conditions,
    weights,
    repeats: int,
    *,
    key,
    train: bool = True,
    warmup: int = 1,
    fast_compile: bool = False,
) -> dict[str, Measurement]:
    """Time constraint layers on one batch, after compilation, with `block_until_ready`.

    Every layer's forward solve (`vmap` over the batch, or `lax.map` where the layer has
    `vectorize_samples=False`) and, with `train`, its forward + implicit backward (the
    gradient of Σ weights·u² with respect to the basis) are compiled first, then called
    `warmup` untimed and `repeats` timed times, all of them in alternation (A B C … A B C …,
    `experiments._report.time_alternating`) so that a change of load hits every one alike.
    Each call draws fresh collocation points (call i uses the keys `split(fold_in(key, i))`).

    **Arguments:**

    - `layers`: `{name: (pde, layer)}`.
    - `basis`, `conditions`: the batch, `(batch, *grid, N)` and the PDE's conditions.
    - `weights`: the field weights of the training loss, on the grid.
    - `repeats`, `warmup`: timed and untimed calls of each function.
    - `key`: the collocation keys.
    - `fast_compile`: compile without XLA's backend optimisation (for pipeline checks).

    **Returns:**

    A `Measurement` per name.
    """
    batch = basis.shape[0]
    calls = warmup + repeats
    keys = [jr.split(jr.fold_in(key, i), batch) for i in range(calls)]
    fns, stats, compile_s, peak = {}, {}, {}, {}
    for name, (pde, layer) in layers.items():
        infer, seconds = _compiled("infer", layer, pde, (basis, conditions, keys[0]), fast_compile)
        compile_s[name], peak[name], stats[name] = seconds, compiled_bytes(infer), []
        infer_keys = iter(keys)

        def run_infer(infer=infer, infer_keys=infer_keys, stats=stats[name]):
            out = infer(basis, conditions, next(infer_keys))
            stats.append(out[1])
            return out

        fns[f"{name} infer"] = run_infer
        if train:
            arrays = (basis, conditions, keys[0], weights)
            grad, seconds = _compiled("train", layer, pde, arrays, fast_compile)
            compile_s[name] += seconds
            peak[name] = max(peak[name], compiled_bytes(grad))
            train_keys = iter(keys)
            fns[f"{name} train"] = lambda grad=grad, train_keys=train_keys: grad(
                basis, conditions, next(train_keys), weights
            )
    timings = time_alternating(fns, repeats, warmup)
    return {
        name: Measurement(
            infer=timings[f"{name} infer"],
            train=timings.get(f"{name} train"),
            compile_s=compile_s[name],
            steps=_mean(stats[name][warmup:], "num_steps"),
            converged=_mean(stats[name][warmup:], "converged"),
            residual=_mean(stats[name][warmup:], "residual_norm"),
            peak_bytes=peak[name],
        )
        for name in layers
    }


def _mean(stats, field: str) -> float:
    return float(np.mean([np.mean(getattr(s, field)) for s in stats]))


# ---- the command line -----------------------------------------------------------------------


def _layers(args, points, solver, pde, hc_pde):
    from pdeopt.solvers import LevenbergMarquardt

    layers = hard_constraint_layers(
        points,
        parts=(1, args.experts),
        per_expert=args.per_expert,
        global_boundary_rows=not args.local_rows,
        vectorize_experts=not args.sequential_experts,
        num_basis=args.basis,
        solver=solver,
        max_steps=args.max_steps,
        throw=False,
        vectorize_samples=not (args.sequential_samples and isinstance(solver, LevenbergMarquardt)),
    )
    return {"hc": (hc_pde, layers["hc"]), "moe": (pde, layers["moe"])}


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
    from problems.diffusion_sorption import DiffusionSorption

    pde = DiffusionSorption(nx=args.nx, nt=args.nt)
    hc_pde = repeated_ic(pde, args.hc_ic_repeats)
    levels = jnp.linspace(0.02, 0.18, args.batch)
    conditions = levels[:, None] * jnp.ones((1, args.nx))
    weights = jr.normal(jr.key(2), pde.grid_shape)
    measure = lambda layers, basis, train=True: measure_layers(
        layers, basis, conditions, weights, args.repeats, key=jr.key(1), train=train
    )
    fno_basis = lambda n: random_basis(pde, conditions, n, dtype=jnp.float64, key=jr.key(0))

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
            layers = {
                name: (
                    pde,
                    HardConstraint(
                        num_basis=n,
                        num_points=points,
                        solver=_solver("pdeopt", _step_solver(name)),
                        max_steps=args.max_steps,
                        throw=False,
                    ),
                )
                for name in args.step_solvers
            }
            row = measure(layers, basis, train=False)
            cells = [n] + [f"{row[s].infer.median:.3f}" for s in args.step_solvers]
            if "qr" in row:
                cells += [
                    f"{row[s].infer.median / row['qr'].infer.median:.3f}"
                    for s in args.step_solvers
                    if s != "qr"
                ]
            cells += [f"{row[s].steps:.1f}" for s in args.step_solvers]
            cells += [f"{row[s].residual:.6f}" for s in args.step_solvers]
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
            try:
                layers = _layers(args, points, _solver(solver_name), pde, hc_pde)
                rows[solver_name] = measure(layers, basis)
            except ValueError as e:  # e.g. more points than an expert's block holds.
                print(markdown_row([points, solver_name, f"skipped: {e}"]))
                continue
            hc, moe = rows[solver_name]["hc"], rows[solver_name]["moe"]
            cells = [points, solver_name]
            cells += [f"{hc.infer.median:.4f}", f"{moe.infer.median:.4f}"]
            cells += [f"{hc.train.median:.4f}", f"{moe.train.median:.4f}"]
            cells += [f"{moe.train.median / hc.train.median:.2f}"]
            cells += [f"{hc.residual:.6f}", f"{moe.residual:.6f}"]
            cells += [f"{hc.converged:.3f}", f"{moe.converged:.3f}"]
            cells += [f"{hc.peak_bytes / 2**20:.1f}", f"{moe.peak_bytes / 2**20:.1f}"]
            cells += [f"{hc.steps:.1f}", f"{moe.steps:.1f}"]
            print(markdown_row(cells), flush=True)
        if {"optx", "pdeopt"} <= rows.keys():
            new, old = rows["pdeopt"], rows["optx"]
            ratios.append(
                [points]
                + [
                    f"{getattr(new[m], k).median / getattr(old[m], k).median:.3f}"
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
