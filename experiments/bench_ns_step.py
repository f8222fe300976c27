"""Throughput of pdeopt's 2-D Navier–Stokes step against exponax's vorticity stepper.

    python -m experiments.bench_ns_step                       # 64² and 256², float64
    python -m experiments.bench_ns_step --sizes 64 --steps 500 --batch 8 --float32

Both solvers advance the same unforced vorticity equation w_t + v·∇w = ν Δw on the unit
torus, with the same resolution, time step (`--dt`, default 1e-3, the data recipe's), viscosity
and 2/3 dealiasing fraction, `--steps` steps inside one jitted `lax.scan`, timed after a
compilation run with `block_until_ready` (median of `--repeats` runs, taken in alternation so
that load changes hit both: `experiments._report.time_alternating`); both keep the state in
Fourier space between steps (exponax's `step_fourier`). The methods differ:

- pdeopt (`problems.navier_stokes.ReferenceSolver`): Crank–Nicolson diffusion + Heun
  advection, two nonlinear evaluations per step, each in Basdevant's four-FFT form (8 real
  FFTs of the grid per step); radial 2/3 mask (|k| < 2/3·k_max, the recipe's);
- exponax (`exponax.stepper.NavierStokesVorticity`, MIT): exponential time differencing
  Runge–Kutta (ETDRK, `order=2` by default here), two nonlinear evaluations per step;
  box 2/3 mask (exponax's own rule, max_d |m_d| ≤ 2/3·(n/2) − 1); each nonlinear
  evaluation in the advective form, five real FFTs (10 per step).

Sign convention: exponax's stream function is Δ⁻¹w and its velocity (∂_y, −∂_x) of it, the
negative of pdeopt's (v_x = ∂_y ψ, v_y = −∂_x ψ with Δψ = −w); so exponax advances −w.

Prints steps per second of both and the ratio (pdeopt / exponax; > 1 means pdeopt is faster),
and the relative difference of the two final states, pdeopt's from w0 and −(exponax's from
−w0), as a check that both solve the same problem (different methods and masks: small but
non-zero).

Needs exponax: `pip install -e ".[bench]"`.
"""

import argparse
from functools import partial
from importlib.metadata import version

import jax

from experiments._report import markdown_row, markdown_table, print_fingerprint, time_alternating


def _import_exponax():
    try:
        import exponax
    except ImportError as e:
        raise SystemExit(
            "experiments.bench_ns_step compares against exponax, which is not installed. "
            'Install the benchmark extras: pip install -e ".[bench]"'
        ) from e
    return exponax


def _pdeopt_run(n: int, steps: int, dt: float, viscosity: float, dtype):
    """`steps` pdeopt steps of a batch of fields, as one jitted function."""
    import jax.numpy as jnp

    from problems.navier_stokes import NavierStokes2D, ReferenceSolver

    grid = NavierStokes2D(nx=n, nt=6, viscosity=viscosity).space_grid  # nt: unused
    solver = ReferenceSolver(dt=dt)
    step = jax.vmap(solver.stepper(grid, viscosity, dt, dtype))
    mask = jnp.asarray(solver.mask(grid), dtype)

    def body(w_hat, _):
        return step(w_hat), None

    @jax.jit
    def advance(w):
        w_hat = mask * jnp.fft.rfft2(w)
        w_hat, _ = jax.lax.scan(body, w_hat, None, length=steps)
        return jnp.fft.irfft2(w_hat, s=(n, n))

    return advance


def _exponax_run(exponax, n: int, steps: int, dt: float, viscosity: float, order: int):
    """`steps` exponax steps of a batch of fields, as one jitted function."""
    import jax.numpy as jnp

    stepper = exponax.stepper.NavierStokesVorticity(
        2, 1.0, n, dt, diffusivity=viscosity, order=order, dealiasing_fraction=2 / 3
    )
    step = jax.vmap(stepper.step_fourier)

    def body(u_hat, _):
        return step(u_hat), None

    @jax.jit
    def advance(w):
        u_hat = jnp.fft.rfft2(w)[:, None]  # exponax's channel axis
        u_hat, _ = jax.lax.scan(body, u_hat, None, length=steps)
        return jnp.fft.irfft2(u_hat[:, 0], s=(n, n))

    return advance


def run(sizes, steps, batch, dt, viscosity, order, repeats, dtype):
    import jax.random as jr
    import numpy as np

    from problems.navier_stokes import sample_initial_conditions

    exponax = _import_exponax()
    print_fingerprint(exponax=version("exponax"))
    print(
        f"2-D Navier–Stokes vorticity step, nu={viscosity:g}, dt={dt:g}, {steps} steps per run, "
        f"batch {batch}, {np.dtype(dtype).name}, median of {repeats}\n"
    )
    header = ["n", "pdeopt steps/s", "exponax steps/s", "ratio", "rel diff"]
    print(markdown_table(header, []))
    for n in sizes:
        w0 = sample_initial_conditions(batch, n, key=jr.key(0)).astype(dtype)
        ours = _pdeopt_run(n, steps, dt, viscosity, dtype)
        theirs = _exponax_run(exponax, n, steps, dt, viscosity, order)
        timings = time_alternating(
            {"pdeopt": partial(ours, w0), "exponax": partial(theirs, w0)}, repeats
        )
        t_ours, t_theirs = timings["pdeopt"].median, timings["exponax"].median
        # exponax's velocity is ∇^⊥(Δ⁻¹w) = −(ours): its solution from −w0 is −(ours from w0).
        a, b = np.asarray(timings["pdeopt"].output), -np.asarray(theirs(-w0))
        diff = np.linalg.norm(a - b) / np.linalg.norm(b)
        ours_rate, theirs_rate = steps / t_ours, steps / t_theirs
        ratio = ours_rate / theirs_rate
        cells = [n, f"{ours_rate:.1f}", f"{theirs_rate:.1f}", f"{ratio:.2f}", f"{diff:.1e}"]
        print(markdown_row(cells), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,256", help="grid sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=200, help="steps per timed run")
    parser.add_argument("--batch", type=int, default=1, help="trajectories stepped together")
    parser.add_argument("--dt", type=float, default=1.0e-3)
    parser.add_argument("--viscosity", type=float, default=1.0e-4)
    parser.add_argument("--order", type=int, default=2, help="exponax ETDRK order")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float32", action="store_true", help="single precision (default f64)")
    args = parser.parse_args(argv)
    _import_exponax()  # fail fast, before any compilation
    if not args.float32:
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    sizes = [int(s) for s in args.sizes.split(",")]
    dtype = jnp.float32 if args.float32 else jnp.float64
    run(sizes, args.steps, args.batch, args.dt, args.viscosity, args.order, args.repeats, dtype)


if __name__ == "__main__":
    main()
