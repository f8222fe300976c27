"""Scaling benchmark: PDE-constrained control on growing grids, beyond the N = 3 of the
AdaSketch-Newton paper (Hong et al., ICML 2023).

    python -m experiments.bench_scaling                                   # N = 16 … 1024
    python -m experiments.bench_scaling --sizes 256,512,1024 --solvers GMRES+P,IPOPT
    python -m experiments.bench_scaling --sizes 16,32 --solvers LU,GMRES,NYSTROM,IPOPT
    python -m experiments.bench_scaling --sizes 256,512,1024 --profile    # R, K, Rᵀ K R

Problems: discrete Poisson control (`poisson_control(N)`, convex QP, n = 2N², m = N²) and the
semilinear control extension (`semilinear_control(N)`, −Δ_h y + y³ = u). For every size and
inner solver pdeopt runs `ExactAugmentedLagrangianNewton` in **practical** mode
(`PracticalSafeguards`: matrix-free, inner solves to ‖r‖ ≤ δ‖∇L‖ with δ = δ₀ = `--delta0`) until
‖∇L‖ ≤ `--tol` (1e-6), and reports wall time (the median of `--repeats` solves after a compile of
the same size; IPOPT's likewise), outer
iterations, inner steps and pdeopt's flop estimate (a dense-K cost model: a matvec counts
2N² although the stencil matvec costs O(N), so it overstates the work of iterative solvers on
these sparse problems). Inner solvers:

- `LU`: `lx.LU()` on the materialised KKT matrix (exact Newton); skipped above
  `--lu-max-kkt` unknowns (dense N² memory, (2/3)N³ flops);
- `GMRES`: `lx.GMRES(restart=50)`;
- `MINRES`: pdeopt's `MINRES` (K and Rᵀ K R are symmetric; one matvec per step, stops on the
  residual alone);
- `GV`: one-column Gaussian sketch-and-project (`GaussianSketchProject`);
- `BLOCK`: block Gaussian sketch-and-project (`BlockSketchProject`, q = `--block-size`);
- `NYSTROM`: CG on the normal equations KᵀK with a rank-`--rank` Nyström preconditioner
  (`lx.Normal(NystromPCG(...))`);
- `GMRES+P`, `MINRES+P`, `NYSTROM+P`, `GV+P`, `BLOCK+P`: the same inner solvers on the split-
  preconditioned system Rᵀ K R (`constrained_minimise(..., preconditioner=
  problem.kkt_preconditioner)`, R = Q D with R Rᵀ = P⁻¹ for the block-diagonal
  Schur-complement preconditioner P, Q the sine transform by FFT: O(n log n) per
  application); GMRES+P restarts every `PRECONDITIONED_RESTART` = 5 steps (lineax runs every
  cycle to its end, and Rᵀ K R needs about three);
- `IPOPT`: IPOPT (casadi 3.8, MUMPS) on a casadi-native sparse model of the same problem
  (checked against the JAX functions), `tol = --ipopt-tol`; time includes only the solve,
  not building the model. IPOPT stops at `--ipopt-time-cap` seconds of wall time (its
  `max_wall_time`); a run that hits the cap, runs out of memory (`MemoryError`) or fails
  inside casadi (`RuntimeError`) is a row of the table, not the end of the run, and where it
  hit the cap the ratios are upper bounds (`< r`).

Every inner solve is capped at `--max-inner-steps` steps per outer iteration and the outer
loop at `--max-steps`; a randomized solver that fails at one size, and IPOPT where it hit the
time cap or failed, are not run at larger sizes (the table says so), which keeps the run
bounded. Ratios are times relative to IPOPT measured in the same run; `growth / n log n` is a
solver's time over its time at the previous size, divided by the same ratio of n log n (≤ 1:
the time grows no faster than n log n). The default solver list leaves out the
unpreconditioned iterative solvers (name them with `--solvers`): without the preconditioner
GMRES took over 25 minutes at N = 32. `--profile` solves nothing: it times one application
of the preconditioner S, of the KKT matvec K and of S K S at the start point, per problem and
size (a GMRES+P solve applies S twice per Krylov step).
"""

import argparse
import functools as ft
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402

from experiments import _baselines as B  # noqa: E402
from experiments._report import (  # noqa: E402
    fmt,
    markdown_table,
    print_fingerprint,
    time_alternating,
)
from pdeopt.solvers import (  # noqa: E402
    MINRES,
    AbstractKKTSolver,
    BlockSketchProject,
    ExactAugmentedLagrangianNewton,
    GaussianSketchProject,
    NystromPCG,
    PracticalSafeguards,
)
from problems.cutest import (  # noqa: E402
    poisson_control,
    poisson_w_true,
    semilinear_control,
    semilinear_target,
)

ITERATIVE = ("GMRES", "MINRES", "GV", "BLOCK", "NYSTROM")
ALL_SOLVERS = ("LU", *ITERATIVE, *(f"{label}+P" for label in ITERATIVE), "IPOPT")
DEFAULT_SOLVERS = ("LU", "GMRES+P", "NYSTROM+P", "GV+P", "BLOCK+P", "IPOPT")
PRECONDITIONED_RESTART = 5
IPOPT_TIME_CAP = "Maximum_WallTime_Exceeded"  # IPOPT's return status at `max_wall_time`


def laplacian_matrix(n: int):
    """The 5-point Laplacian with zero Dirichlet values on the N×N grid, h = 2/(N+1), as a
    scipy CSC matrix (symmetric, so the row/column-major ordering of the grid does not matter)."""
    sparse = B.require("scipy.sparse")
    h = 2.0 / (n + 1)
    t = sparse.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n))
    eye = sparse.identity(n)
    return ((sparse.kron(eye, t) + sparse.kron(t, eye)) / h**2).tocsc()


def casadi_sparse(matrix):
    ca = B.require("casadi")
    matrix = matrix.tocsc()
    matrix.sort_indices()
    sp = ca.Sparsity(
        matrix.shape[0], matrix.shape[1], matrix.indptr.tolist(), matrix.indices.tolist()
    )
    return ca.DM(sp, matrix.data)


def casadi_model(kind: str, n: int):
    """`x -> (f, c)` in casadi for the Poisson / semilinear control problem on the N×N grid."""
    ca = B.require("casadi")
    lap = casadi_sparse(laplacian_matrix(n))
    nn = n * n
    if kind == "poisson":
        target = ca.DM(poisson_w_true(n).reshape(-1, order="F"))

        def build(x):
            w, z = x[:nn], x[nn:]
            return 0.5 * ca.sumsqr(w - target) + 0.05 * ca.sumsqr(z), ca.mtimes(lap, w) + z

    else:
        target = ca.DM(semilinear_target(n).reshape(-1, order="F"))
        alpha = 1e-2

        def build(x):
            y, u = x[:nn], x[nn:]
            f = 0.5 * ca.sumsqr(y - target) + 0.5 * alpha * ca.sumsqr(u)
            return f, -ca.mtimes(lap, y) + y**3 - u

    return build


def kkt_solver(label: str, args) -> AbstractKKTSolver:
    matvecs = 2 if label.startswith("NYSTROM") else 1
    return B.kkt_solver(linear_solver(label, args), matvecs_per_step=matvecs)


def linear_solver(label: str, args) -> lx.AbstractLinearSolver:
    # Tolerances are placeholders: the outer solver sets them from its accuracy condition.
    steps = args.max_inner_steps
    if label == "LU":
        return lx.LU()
    if label == "GMRES":
        return lx.GMRES(rtol=0.1, atol=0.0, restart=50, max_steps=steps)
    if label == "GMRES+P":
        return lx.GMRES(rtol=0.1, atol=0.0, restart=PRECONDITIONED_RESTART, max_steps=steps)
    if label == "MINRES":
        return MINRES(rtol=0.1, atol=0.0, max_steps=steps)
    if label == "GV":
        return GaussianSketchProject(rtol=0.1, atol=0.0, max_steps=steps)
    if label == "BLOCK":
        return BlockSketchProject(rtol=0.1, atol=0.0, block_size=args.block_size, max_steps=steps)
    if label == "NYSTROM":
        return lx.Normal(NystromPCG(rtol=0.1, atol=0.0, rank=args.rank, max_steps=steps))
    if label.endswith("+P") and label[:-2] in ITERATIVE:
        return linear_solver(label[:-2], args)
    raise ValueError(f"Unknown solver {label!r}; choose from {', '.join(ALL_SOLVERS)}.")


def make_problem(kind: str, n: int):
    return poisson_control(n) if kind == "poisson" else semilinear_control(n)


def run_ipopt(kind: str, n: int, problem, args) -> B.BaselineResult | str:
    """IPOPT under the time cap, or what stopped it (out of memory, a casadi error)."""
    try:
        return B.ipopt_sparse(
            problem,
            casadi_model(kind, n),
            tol=args.ipopt_tol,
            options={"max_wall_time": args.ipopt_time_cap},
            repeats=args.repeats,
        )
    except MemoryError:
        return "failed (out of memory)"
    except RuntimeError as e:  # casadi reports its own and IPOPT's failures as RuntimeError
        return f"failed (casadi: {str(e).splitlines()[0][:80]})"


def run_pdeopt(label: str, problem, args) -> B.BaselineResult:
    """pdeopt's practical-mode solve of `problem` with the inner solver `label`."""
    solver = ExactAugmentedLagrangianNewton(
        atol=args.tol,
        delta0=args.delta0,
        safeguards=PracticalSafeguards(),
        kkt_solver=kkt_solver(label, args),
        max_inner_steps=args.max_inner_steps,
    )
    return B.pdeopt_solve(
        problem,
        solver,
        label=label,
        seed=args.seed,
        max_steps=args.max_steps,
        repeats=args.repeats,
        preconditioned=label.endswith("+P"),
    )


def ipopt_reference(result) -> tuple[float, str]:
    """IPOPT's time to divide by and the prefix of the ratios: `""` for a solve, `"< "` when
    IPOPT stopped at the time cap (its time is a lower bound), no time when it failed."""
    if not isinstance(result, B.BaselineResult):
        return math.nan, ""
    if result.success:
        return result.time, ""
    if result.extra.get("return_status") == IPOPT_TIME_CAP:
        return result.time, "< "
    return math.nan, ""


def n_log_n(n: int) -> float:
    return n * math.log(n)


def profile(kind: str, n: int, repeats: int = 7) -> list:
    """One table row: the median milliseconds of one application of the preconditioner R, of
    the KKT matvec K and of Rᵀ K R, at the start point (where an inner solve spends its
    time)."""
    problem = make_problem(kind, n)
    x, lam, args = problem.y0, problem.lambda0, problem.args

    def operators():
        def lagrangian(y):
            return problem.fn(y, args) + jnp.dot(lam, problem.constraint_fn(y, args))

        _, hvp = jax.linearize(jax.grad(lagrangian), x)
        _, jvp_c = jax.linearize(lambda y: problem.constraint_fn(y, args), x)
        vjp_c = jax.linear_transpose(jvp_c, x)

        def kkt(z):
            dx, dlam = z[: x.size], z[x.size :]
            return jnp.concatenate([hvp(dx) + vjp_c(dlam)[0], jvp_c(dx)])

        r = problem.kkt_preconditioner(x, lam, args)
        return kkt, r.mv, r.transpose().mv

    z = jnp.linspace(0.0, 1.0, problem.n + problem.m)
    fns = {
        "R": jax.jit(lambda z: operators()[1](z)),
        "K": jax.jit(lambda z: operators()[0](z)),
        "RtKR": jax.jit(lambda z: (lambda k, r, rt: rt(k(r(z))))(*operators())),
    }
    timings = time_alternating({label: ft.partial(f, z) for label, f in fns.items()}, repeats)
    return [kind, n, problem.n, *(f"{t.median * 1e3:.1f}" for t in timings.values())]


def build_parser() -> argparse.ArgumentParser:
    """The command line; `build_parser().parse_args([])` gives every default."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="poisson,semilinear")
    parser.add_argument("--sizes", default="16,32,64,128,256,512,1024", help="grid sizes N")
    parser.add_argument(
        "--delta0",
        type=float,
        default=0.1,
        help="δ₀: the inner solves stop at ‖r‖ ≤ δ‖∇L‖ (practical mode)",
    )
    parser.add_argument("--solvers", default=",".join(DEFAULT_SOLVERS), help=", ".join(ALL_SOLVERS))
    parser.add_argument("--tol", type=float, default=1e-6, help="target ‖∇L‖")
    parser.add_argument("--lu-max-kkt", type=int, default=4000, help="largest KKT size for LU")
    parser.add_argument("--max-inner-steps", type=int, default=1000)
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--block-size", type=int, default=8)
    parser.add_argument("--rank", type=int, default=3, help="Nyström rank")
    parser.add_argument("--ipopt-tol", type=float, default=1e-10)
    parser.add_argument(
        "--ipopt-time-cap", type=float, default=1800.0, help="IPOPT's max_wall_time (s)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="timed solves per solver and size, pdeopt and IPOPT alike (the median is reported)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="time one application of S, K and S K S per problem and size instead of solving",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    sizes = [int(s) for s in args.sizes.split(",")]
    labels = args.solvers.split(",")
    print("# Scaling benchmark: PDE-constrained control\n")
    print_fingerprint()
    if args.profile:
        headers = ["problem", "N", "n = 2N²", "R (ms)", "K (ms)", "Rᵀ K R (ms)"]
        rows = [profile(kind, n) for kind in args.problems.split(",") for n in sizes]
        print(markdown_table(headers, rows))
        return
    print(
        f"target ‖∇L‖ ≤ {args.tol:g}; pdeopt in practical mode (δ₀ = {args.delta0:g}), inner cap "
        f"{args.max_inner_steps} steps per outer iteration, outer cap {args.max_steps}; "
        f"LU up to {args.lu_max_kkt} KKT unknowns; Nyström rank {args.rank}; "
        f"IPOPT tol {args.ipopt_tol:g}, time cap {args.ipopt_time_cap:g} s; times are the "
        f"median of {args.repeats} solve(s).\n"
    )
    if "IPOPT" in labels and not B.has("casadi"):
        print(f"IPOPT skipped: casadi is not installed ({B.INSTALL_HINT}).\n")
        labels.remove("IPOPT")

    for kind in args.problems.split(","):
        rows = []
        failed_at = {}
        previous = {}  # label -> (n, time) of its last solve, for the growth column
        for n in sizes:
            problem = make_problem(kind, n)
            big_n = problem.n + problem.m
            results = {}
            for label in labels:
                t0 = time.perf_counter()
                if label == "LU" and big_n > args.lu_max_kkt:
                    results[label] = f"skipped (KKT size {big_n} > {args.lu_max_kkt})"
                    continue
                if label in failed_at:
                    results[label] = f"skipped (failed at N = {failed_at[label]})"
                    continue
                if label == "IPOPT":
                    r = run_ipopt(kind, n, problem, args)
                    if isinstance(r, str) or r.extra["return_status"] == IPOPT_TIME_CAP:
                        failed_at[label] = n  # larger sizes would fail the same way
                    if isinstance(r, str):
                        results[label] = r
                        print(f"  {kind} N={n} IPOPT: {r}", flush=True)
                        continue
                else:
                    r = run_pdeopt(label, problem, args)
                ok = r.success and r.kkt <= args.tol * (1 + 1e-6)
                if not ok and label != "IPOPT":
                    failed_at[label] = n
                results[label] = r
                print(
                    f"  {kind} N={n} {label}: {'ok' if ok else 'FAIL'} it={r.iterations} "
                    f"KKT={r.kkt:.1e} time={r.time:.2f}s "
                    f"inner={r.extra.get('num_inner_steps', '-')} "
                    f"flops={float(r.extra.get('flops', math.nan)):.2e} "
                    f"(wall incl. compile {time.perf_counter() - t0:.0f}s)",
                    flush=True,
                )
            ipopt_time, bound = ipopt_reference(results.get("IPOPT"))
            for label in labels:
                r = results[label]
                if isinstance(r, str):
                    rows.append([n, problem.n, label, r, "", "", "", "", "", "", ""])
                    continue
                ok = r.success and r.kkt <= args.tol * (1 + 1e-6)
                status = (
                    "yes"
                    if ok
                    else (
                        "no ("
                        + (
                            B.result_name(r.extra["result"])
                            if "result" in r.extra
                            else r.extra.get("return_status", "")
                        )
                        + ")"
                    )
                )
                inner = r.extra.get("num_inner_steps")
                flops = r.extra.get("flops")
                growth = "—"
                if ok and label in previous:
                    n_prev, t_prev = previous[label]
                    growth = fmt((r.time / t_prev) / (n_log_n(problem.n) / n_log_n(n_prev)), ".2f")
                if ok:
                    previous[label] = (problem.n, r.time)
                rows.append(
                    [
                        n,
                        problem.n,
                        label,
                        status,
                        f"{r.time:.3f}",
                        ("1" if ok else "—")
                        if label == "IPOPT"
                        else bound + fmt(r.time / ipopt_time, ".3f"),
                        growth,
                        r.iterations,
                        fmt(r.kkt),
                        "—" if inner is None or label == "LU" else f"{int(inner)}",
                        "—" if flops is None else f"{float(flops):.2e}",
                    ]
                )
        print(f"\n## {kind} control\n")
        print(
            markdown_table(
                [
                    "N",
                    "n = 2N²",
                    "solver",
                    f"KKT ≤ {args.tol:g}",
                    "time (s)",
                    "time / IPOPT",
                    "growth / n log n",
                    "outer iters",
                    "final KKT",
                    "inner steps",
                    "flops (dense cost model)",
                ],
                rows,
            )
        )
        print()


if __name__ == "__main__":
    main()
