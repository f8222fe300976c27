"""Time to failure of pdeopt's sketch-and-project solvers on hopeless systems.

    python -m experiments.bench_sketch_failure                   # N = 64, 256
    python -m experiments.bench_sketch_failure --sizes 64,128,256 --solvers GV,RK

Two hopeless N×N systems (float64, rtol = 1e-8), K = U diag(σ) Vᵀ with random orthogonal U, V:

- `inconsistent`: σ = linspace(1, 2) with σ_N = 0 and a random b, which is not in the range of
  K: the residual levels off at the least-squares residual;
- `ill-conditioned`: σ geometric from 1 to 1e-6, b = K x for a random x: consistent, but
  sketch-and-project would need about κ_F(K)²·ln(1/ε) ≈ N·10¹²·18 steps.

Each solver runs with the old defaults (`max_steps=100_000` and no stagnation test:
`stagnation_iters=100_000`) and with the new ones (`max_steps=None`, `stagnation_iters=None`:
4000 and 10 epochs, a 10 % cut of the best residual per window; see
`pdeopt.solvers.AbstractSketchSolver`). Each solve is compiled ahead of time and timed once
(`time_once`; the old solves take seconds). Prints the steps, the result and the seconds of
both, and the ratio old / new (> 1: the new defaults fail sooner).
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import lineax as lx  # noqa: E402

from experiments._report import (  # noqa: E402
    markdown_row,
    markdown_table,
    print_fingerprint,
    time_once,
)
from pdeopt.solvers import (  # noqa: E402
    BlockSketchProject,
    GaussianSketchProject,
    RandomizedKaczmarz,
)

RTOL = 1e-8
OLD = {"max_steps": 100_000, "stagnation_iters": 100_000}
SOLVERS = {
    "GV": lambda **kw: GaussianSketchProject(rtol=RTOL, atol=0.0, **kw),
    "BLOCK": lambda **kw: BlockSketchProject(rtol=RTOL, atol=0.0, block_size=8, **kw),
    "RK": lambda **kw: RandomizedKaczmarz(rtol=RTOL, atol=0.0, **kw),
}


def hopeless_system(kind: str, n: int, key):
    ukey, vkey, bkey = jr.split(key, 3)
    u, _ = jnp.linalg.qr(jr.normal(ukey, (n, n)))
    v, _ = jnp.linalg.qr(jr.normal(vkey, (n, n)))
    if kind == "inconsistent":
        sigma = jnp.linspace(1.0, 2.0, n).at[-1].set(0.0)
        b = jr.normal(bkey, (n,))
    else:
        sigma = jnp.geomspace(1.0, 1e-6, n)
        b = (u * sigma) @ (v.T @ jr.normal(bkey, (n,)))
    return (u * sigma) @ v.T, b


def timed_solve(solver, matrix, b, key):
    """One ahead-of-time-compiled solve: its `Timing` and (num_steps, result name)."""

    def solve(matrix, b, key):
        operator = lx.MatrixLinearOperator(matrix)
        sol = lx.linear_solve(operator, b, solver, options={"key": key}, throw=False)
        return sol.stats["num_steps"], sol.result

    compiled = eqx.filter_jit(solve).lower(matrix, b, key).compile()
    timing = time_once(lambda: compiled(matrix, b, key))
    steps, result = timing.output
    names = ("successful", "max_steps_reached", "stagnation")
    name = next(name for name in names if result == getattr(lx.RESULTS, name))
    return timing, (int(steps), name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,256")
    parser.add_argument("--solvers", default=",".join(SOLVERS), help=", ".join(SOLVERS))
    parser.add_argument("--problems", default="inconsistent,ill-conditioned")
    args = parser.parse_args(argv)
    print_fingerprint()
    print(f"Hopeless float64 solves at rtol={RTOL:g}; old = {OLD}, new = the defaults\n")
    headers = ["system", "N", "solver", "old steps", "old s", "new steps", "new result"]
    print(markdown_table([*headers, "new s", "old / new"], []), flush=True)
    for kind in args.problems.split(","):
        for n in map(int, args.sizes.split(",")):
            matrix, b = hopeless_system(kind, n, jr.key(n))
            for label in args.solvers.split(","):
                make = SOLVERS[label]
                old, (old_steps, _) = timed_solve(make(**OLD), matrix, b, jr.key(1))
                new, (new_steps, new_result) = timed_solve(make(), matrix, b, jr.key(1))
                cells = [kind, n, label, old_steps, f"{old.median:.2f}", new_steps, new_result]
                ratio = old.median / new.median
                print(markdown_row([*cells, f"{new.median:.3f}", f"{ratio:.1f}"]), flush=True)


if __name__ == "__main__":
    main()
