"""Diffusion–sorption data-generation throughput: pdeopt vs the PDEBench recipe.

`python -m experiments.bench_ds_generation [--scipy N] [--tsit5 N] [--pdeopt N] [--nx 1024]
[--rtol R ...] [--dense N]`

- **PDEBench recipe** (reimplemented from PDEBench's data-generation settings, not its code):
  finite volumes, SciPy `solve_ivp` RK45 at rtol = 1e-6 (atol SciPy's default 1e-6), one
  trajectory at a time, 1024 cells, 101 saved frames to t = 500 s. The right-hand side is
  pdeopt's finite-volume operator (`problems.diffusion_sorption.fluxes`, written in NumPy), so
  all methods integrate the same ODE and their errors measure time integration only.
- **pdeopt**, `jax.vmap`ped over the batch and compiled ahead of time (compile time reported
  separately):
  - `ImplicitReferenceSolver` (Kvaerno5 with tridiagonal Newton systems) at each `--rtol`
    (atol = rtol/100, as `configs/problem/diffusion_sorption_paper.yaml`), `--pdeopt` ICs;
  - `ReferenceSolver` with Tsit5 at rtol = atol = 1e-8, `--tsit5` ICs (0 skips it);
  - `ReferenceSolver` with `diffrax.Kvaerno5()` and its dense Jacobian at rtol 1e-6,
    `--dense` ICs (default 0: skipped).
- **Accuracy**: the max-abs state error over all frames against a fine reference (the same
  operator, Tsit5 at rtol = 1e-10, atol = 1e-12) on the first `--scipy` ICs, which every
  method solves (the counts are raised to at least `--scipy`). A second fine reference,
  `ImplicitReferenceSolver` at rtol 1e-10, is compared with the first and the difference
  printed. pdeopt's `max_steps` is raised to 5e6 for Tsit5 (stability-limited at 1024 cells).

Every method is timed once ([`experiments._report.time_once`][]: no warm-up; pdeopt is compiled
ahead of time). Prints the machine fingerprint and one table: trajectories/s of each and the
ratio against SciPy.
"""

import argparse

import jax
import jax.random as jr
import numpy as np

from experiments._report import markdown_table, print_fingerprint, time_once


def scipy_rhs(pde):
    """The finite-volume right-hand side of `problems.diffusion_sorption`, in NumPy."""
    dx, d, n = 1.0 / pde.nx, pde.diffusivity, pde.freundlich_n
    coefficient, eps = pde.sorption_coefficient, 1.0e-6
    ratio = pde.outflow_sign * 2 * d / dx

    def rhs(t, c):
        flux = np.empty(c.size + 1)
        flux[1:-1] = d * (c[1:] - c[:-1]) / dx
        flux[0] = d * (c[0] - 1.0) / (dx / 2)
        face = c[-1] * ratio / (ratio - 1.0)
        flux[-1] = d * (face - c[-1]) / (dx / 2)
        power = np.where(c > 0, (np.maximum(c, 0.0) + eps) ** (n - 1), eps ** (n - 1))
        return (flux[1:] - flux[:-1]) / dx / (1 + coefficient * n * power)

    return rhs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scipy", type=int, default=2, help="trajectories for SciPy")
    parser.add_argument("--tsit5", type=int, default=2, help="trajectories for Tsit5")
    parser.add_argument("--pdeopt", type=int, default=16, help="trajectories, implicit")
    parser.add_argument("--dense", type=int, default=0, help="trajectories, dense Kvaerno5")
    parser.add_argument("--nx", type=int, default=1024)
    parser.add_argument("--rtol", type=float, nargs="+", default=[1.0e-6, 1.0e-7])
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    import diffrax as dfx
    from scipy.integrate import solve_ivp

    from problems.diffusion_sorption import (
        DiffusionSorption,
        ImplicitReferenceSolver,
        ReferenceSolver,
        sample_initial_conditions,
    )

    print_fingerprint()
    pde = DiffusionSorption(nx=args.nx, nt=101)
    t, _ = pde.coordinates()
    shared = args.scipy
    num = max(shared, args.tsit5, args.pdeopt, args.dense)
    u0 = sample_initial_conditions(pde, num, "constant", key=jr.key(0))

    def batched(solver, num):
        run = jax.jit(jax.vmap(lambda u: solver.solve(pde, u)))
        compilation = time_once(lambda: run.lower(u0[:num]).compile())
        solve = time_once(lambda: compilation.output(u0[:num]))
        return np.asarray(solve.output), solve.median, compilation.median

    steps = 5_000_000
    fine, fine_s, _ = batched(ReferenceSolver(rtol=1.0e-10, atol=1.0e-12, max_steps=steps), shared)
    fine2, _, _ = batched(ImplicitReferenceSolver(rtol=1.0e-10, atol=1.0e-12), shared)
    rows = []
    rhs = scipy_rhs(pde)

    def scipy_solves():
        solutions = []
        for u in np.asarray(u0[:shared]):
            sol = solve_ivp(rhs, (0.0, pde.t_final), u, method="RK45", t_eval=t, rtol=1.0e-6)
            assert sol.success, sol.message
            solutions.append(sol)
        return solutions

    scipy_timing = time_once(scipy_solves)
    scipy_s = scipy_timing.median
    scipy_out = [sol.y.T for sol in scipy_timing.output]
    nfev = sum(sol.nfev for sol in scipy_timing.output)
    scipy_err = float(np.max(np.abs(np.stack(scipy_out) - fine)))
    scipy_rate = shared / scipy_s
    rows.append(("SciPy RK45 rtol=1e-6, one at a time", shared, scipy_s, "-", scipy_err))

    def row(label, solver, n):
        n = max(n, shared)
        out, wall, compile_s = batched(solver, n)
        err = float(np.max(np.abs(out[:shared] - fine)))
        rows.append((label, n, wall, f"{compile_s:.1f}", err))

    for rtol in args.rtol:
        solver = ImplicitReferenceSolver(rtol=rtol, atol=rtol / 100)
        row(f"pdeopt Kvaerno5+tridiag rtol={rtol:.0e}", solver, args.pdeopt)
    if args.tsit5:
        solver = ReferenceSolver(rtol=1.0e-8, atol=1.0e-8, max_steps=steps)
        row("pdeopt Tsit5 rtol=atol=1e-8", solver, args.tsit5)
    if args.dense:
        solver = ReferenceSolver(solver=dfx.Kvaerno5(), rtol=1.0e-6, atol=1.0e-8)
        row("pdeopt Kvaerno5 dense rtol=1e-6", solver, args.dense)

    print(
        f"diffusion–sorption, {args.nx} cells, 101 frames to t=500 s; float64; "
        f"fine reference: Tsit5 rtol=1e-10 ({fine_s:.1f}s), which differs from Kvaerno5+tridiag "
        f"rtol=1e-10 by {np.max(np.abs(fine - fine2)):.1e}; SciPy RHS evaluations per "
        f"trajectory: {nfev / shared:.0f}\n"
    )
    header = ["method", "traj", "wall s", "compile s", "traj/s", "max err", "ratio"]
    table = []
    for label, n, wall, compile_s, err in rows:
        rate = n / wall
        cells = [label, n, f"{wall:.1f}", compile_s, f"{rate:.3f}", f"{err:.1e}"]
        table.append([*cells, f"{rate / scipy_rate:.1f}×"])
    print(markdown_table(header, table))


if __name__ == "__main__":
    main()
