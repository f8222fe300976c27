"""Repeated-solve cost of `constrained_minimise` on small CUTEst problems, without a user `jit`.

    python -m experiments.bench_repeat_solve
    python -m experiments.bench_repeat_solve --problems HS6,BT9 --repeats 50

For each problem: the first call (tracing and compilation included), then the median of
`--repeats` further calls of the same un-jitted `constrained_minimise(fn, constraint_fn,
solver, y0)` (faithful mode, `lx.LU()`), which reuse the compiled solve. The reference,
timed in alternation in the same run, is `optimistix.minimise` with BFGS on the same problem's
quadratic-penalty objective f + (ρ/2)‖c‖² (ρ = 100), also called without a user `jit`: the
cost of an optimistix solve that is already compiled. The ratio is pdeopt's median over
optimistix's. The issue's target is a repeated call under 10 ms.
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import optimistix as optx  # noqa: E402

from experiments._report import (  # noqa: E402
    fmt,
    markdown_table,
    print_fingerprint,
    time_alternating,
    time_once,
)
from pdeopt.solvers import ExactAugmentedLagrangianNewton, constrained_minimise  # noqa: E402
from problems.cutest import get_problem  # noqa: E402

PENALTY = 100.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="HS6,HS7,HS28,BT9,HS40,BT11,MWRIGHT,HIMMELBC")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    print_fingerprint()
    solver = ExactAugmentedLagrangianNewton()
    bfgs = optx.BFGS(rtol=1e-8, atol=1e-8)
    rows = []
    for name in args.problems.split(","):
        problem = get_problem(name)
        f, c, y0 = problem.objective, problem.constraints, problem.y0

        def penalty(y, args, f=f, c=c):
            return f(y, args) + 0.5 * PENALTY * jnp.sum(c(y, args) ** 2)

        def ours(f=f, c=c, y0=y0):
            return constrained_minimise(f, c, solver, y0, throw=False).value

        def reference(penalty=penalty, y0=y0):
            return optx.minimise(penalty, bfgs, y0, throw=False, max_steps=1000).value

        first = time_once(ours)
        timings = time_alternating({"pdeopt": ours, "optimistix": reference}, args.repeats)
        sol = constrained_minimise(f, c, solver, y0, throw=False)
        ratio = timings["pdeopt"].median / timings["optimistix"].median
        rows.append(
            [
                name,
                f"{problem.n}/{problem.m}",
                int(sol.stats["num_steps"]),
                fmt(first.median, ".2f"),
                fmt(1e3 * timings["pdeopt"].median, ".2f"),
                fmt(1e3 * timings["optimistix"].median, ".2f"),
                fmt(ratio, ".2f"),
                "yes" if timings["pdeopt"].median < 0.010 else "no",
            ]
        )
    headers = [
        "problem",
        "n/m",
        "iterations",
        "first call (s)",
        "repeat, pdeopt (ms)",
        "repeat, optx BFGS (ms)",
        "ratio",
        "< 10 ms",
    ]
    print(markdown_table(headers, rows))


if __name__ == "__main__":
    main()
