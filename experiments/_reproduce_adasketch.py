"""The `experiments.reproduce` runners of the AdaSketch-Newton paper's experiments.

- `cutest`: one inner solver (LU, GV, RK) on a list of the paper's 47 CUTEst problems, one seed;
    its details are the per-problem outer iterations beside the paper's 10-run means.
- `cutest_sensitivity`: the same with one setting of (μ₀, ν₀, δ₀, β), every setting of a grid
    sharing one compilation per problem.
- `logreg`: constrained logistic regression on synthetic data with the (N, d) of the paper's
    LIBSVM data sets (generated, never downloaded).
- `control`: discrete Poisson control at the paper's N = 3, then a sweep over N in practical
    mode against IPOPT (casadi) when it is installed.

Each run is a function of a flat config (`benchmark_runner`) built from the functions of
`bench_cutest`, `bench_applications` and `bench_scaling`; its `metrics.json` keeps every solve
(`items` or `scaling.sizes`), from which the details table and the figure are drawn.

??? cite "References"

    I. Hong, S. Na, M. W. Mahoney, M. Kolar, "Constrained Optimization via Exact Augmented
    Lagrangian and Randomized Iterative Sketching", ICML 2023.
"""

import argparse
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments._report import fmt, markdown_table
from experiments._runner import Runner, benchmark_runner, load_metrics
from experiments._schema import ConfigError
from pdeopt.solvers import FaithfulSafeguards, PracticalSafeguards
from problems.cutest import LIBSVM_SHAPES, PROBLEMS

# The benchmark scripts switch on `jax_enable_x64` when imported, so they are imported where a
# run starts or its config is checked (`experiments.reproduce` switches it on then too), not
# when this module is.

INNER_SOLVERS = ("LU", "GV", "RK")
MODES = ("faithful", "practical")
# The paper column each inner solver is plotted against (LU: exact Newton, which GV tracks).
_PAPER_COLUMN = {"GV": "GV·10", "RK": "RK·10", "LU": "GV·10"}

_CUTEST = {
    "seed": 0,
    "dtype": "float64",
    "solver": "GV",  # LU | GV | RK
    "problems": list(PROBLEMS),
    "mode": "faithful",  # faithful | practical (safeguards)
    "max_inner_steps": 100_000,
    "max_steps": 256,
}
_SENSITIVITY = {**_CUTEST, "mu0": 1.0, "nu0": 0.1, "delta0": 0.1, "beta": 0.1}
_LOGREG = {
    "seed": 0,
    "dtype": "float64",
    "solver": "GV",
    "datasets": list(LIBSVM_SHAPES),
    "shape": None,  # [N, d]: every data set scaled down to N samples of d > 10 features
    "mode": "faithful",
    "max_inner_steps": 1_000_000,
    "max_steps": 50,
}
_CONTROL = {
    "seed": 0,
    "dtype": "float64",
    "solver": "GV",  # the inner solver on the paper's problem
    "size": 3,  # N of the paper's problem (n = 2N², m = N²)
    "mode": "faithful",
    "max_inner_steps": 1_000_000,
    "max_steps": 50,
    "scaling": {  # the sweep over N: `experiments.bench_scaling`'s options and defaults
        "solver": "GV+P",
        "problem": "poisson",  # poisson | semilinear
        "sizes": [3, 16, 32, 64, 128, 256],
        "ipopt": True,  # also IPOPT at every N, when casadi is installed
        "tol": 1e-6,
        "delta0": 0.1,
        "max_inner_steps": 1000,
        "max_steps": 20,
        "lu_max_kkt": 4000,
        "block_size": 8,
        "rank": 3,
        "ipopt_tol": 1e-10,
        "ipopt_time_cap": 1800.0,
        "repeats": 1,
    },
}


def _with_check(runner: Runner, check: Callable[[DictConfig], None]) -> Runner:
    """`runner` whose `prepare` also runs `check` (raising `ConfigError`), so that a bad value
    stops the reproduction before its first run."""

    def prepare(overrides: list[str]) -> DictConfig:
        cfg = runner.prepare(overrides)
        check(cfg)
        return cfg

    return dataclasses.replace(runner, prepare=prepare)


def _one_of(cfg: DictConfig, key: str, allowed) -> None:
    value = OmegaConf.select(cfg, key)
    if value not in allowed:
        raise ConfigError(f"{key}={value} is not one of {', '.join(map(str, allowed))}.")


def _all_of(cfg: DictConfig, key: str, allowed) -> None:
    unknown = [v for v in cfg[key] if v not in allowed]
    if unknown or not cfg[key]:
        raise ConfigError(
            f"{key}={list(cfg[key])}: {unknown or 'empty'}; choose from {', '.join(allowed)}."
        )


def _check_common(cfg: DictConfig) -> None:
    if cfg.dtype != "float64":
        raise ConfigError(
            f"dtype={cfg.dtype}: the faithful accuracy test is unreachable in float32; "
            "AdaSketch-Newton runs in float64 (dtype=float64)."
        )
    _one_of(cfg, "solver", INNER_SOLVERS)
    _one_of(cfg, "mode", MODES)


def _safeguards(cfg: DictConfig, faithful):
    """`faithful` (the reference code's safeguards for the problem) or `PracticalSafeguards()`,
    by `cfg.mode`."""
    return faithful if cfg.mode == "faithful" else PracticalSafeguards()


def _check_cutest(cfg: DictConfig) -> None:
    _check_common(cfg)
    _all_of(cfg, "problems", list(PROBLEMS))


def _check_logreg(cfg: DictConfig) -> None:
    _check_common(cfg)
    _all_of(cfg, "datasets", list(LIBSVM_SHAPES))
    if cfg.shape is not None and (len(cfg.shape) != 2 or cfg.shape[1] <= 10):
        raise ConfigError(f"shape={list(cfg.shape)}: use [N, d] with d > 10, or null.")


def _check_control(cfg: DictConfig) -> None:
    from experiments.bench_scaling import ALL_SOLVERS

    _check_common(cfg)
    if cfg.size < 2:
        raise ConfigError(f"size={cfg.size}: the paper's problem needs N >= 2 (the paper: 3).")
    _one_of(cfg, "scaling.solver", [s for s in ALL_SOLVERS if s != "IPOPT"])
    _one_of(cfg, "scaling.problem", ("poisson", "semilinear"))
    if not cfg.scaling.sizes or min(cfg.scaling.sizes) < 2:
        raise ConfigError(f"scaling.sizes={list(cfg.scaling.sizes)}: grid sizes N >= 2.")


# ------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------


def _number(value) -> float | None:
    """A finite float, or `None` (so that metrics.json is plain JSON)."""
    value = math.nan if value is None else float(value)
    return value if math.isfinite(value) else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _item(result, size: str, paper: dict) -> dict:
    """The record of one solve (a `BaselineResult`) in a run's `items`."""
    from experiments import _baselines as B

    return {
        "size": size,
        "success": bool(result.success),
        "status": B.result_name(result.extra["result"]),
        "iterations": int(result.iterations),
        "kkt": _number(result.kkt),
        "time_s": _number(result.time),
        "inner_steps": _number(result.extra.get("num_inner_steps", math.nan)),
        "paper": {key: _number(value) for key, value in paper.items()},
    }


def _summary(items: dict[str, dict], counted: Callable[[dict], bool] = lambda item: True) -> dict:
    """The run's aggregates over its items: the mean outer iterations over the solved items
    that `counted` accepts (the metric), over all solved items, the solved count and fraction,
    and the summed solve time."""
    solved = [item for item in items.values() if item["success"]]
    return {
        "iterations_mean": _mean([item["iterations"] for item in solved if counted(item)]),
        "iterations_mean_all": _mean([item["iterations"] for item in solved]),
        "solved": float(len(solved)),
        "solved_fraction": len(solved) / len(items),
        "time_s": float(sum(item["time_s"] or 0.0 for item in items.values())),
        "items": [{"name": name, **item} for name, item in items.items()],  # in the run's order
    }


def _in_paper_aggregate(item: dict) -> bool:
    """Whether the paper's aggregates count this problem: all six of its columns report a
    number (44 of the 47 problems: not CUBENE, GOTTFR, PRICE4NE)."""
    return all(value is not None for value in item["paper_all"])


def _cutest_items(cfg: DictConfig, solve, columns=("GV·10", "RK·10")) -> dict[str, dict]:
    """Solve every problem of `cfg.problems`; each item shows the paper's `columns`."""
    from problems.cutest import get_problem

    items = {}
    for name in cfg.problems:
        problem = get_problem(name)
        paper = problem.paper_iterations
        paper_columns = {"GV·10": paper.gv10, "RK·10": paper.rk10}
        item = _item(
            solve(problem), f"{problem.n} × {problem.m}", {c: paper_columns[c] for c in columns}
        )
        items[name] = item | {"paper_all": [_number(v) for v in paper]}
        print(f"  {name}: {item['iterations']} ({item['status']})", flush=True)
    return items


def measure_cutest(cfg: DictConfig, run_dir: Path) -> dict:
    """One seed of one inner solver on `cfg.problems`; the metric `iterations_mean` is the
    mean outer iterations over the solved problems that the paper's aggregate counts."""
    from experiments import bench_cutest as BC

    linear_solver = BC.inner_solvers(cfg.max_inner_steps)[cfg.solver]

    def solve(problem):
        return BC.solve(
            problem,
            cfg.solver,
            linear_solver,
            mode=cfg.mode,
            max_inner_steps=cfg.max_inner_steps,
            max_steps=cfg.max_steps,
            seed=cfg.seed,
        )

    return {"solver": cfg.solver} | _summary(_cutest_items(cfg, solve), _in_paper_aggregate)


def measure_sensitivity(cfg: DictConfig, run_dir: Path) -> dict:
    """One seed of one (μ₀, ν₀, δ₀, β) setting on `cfg.problems`; the metric is the mean outer
    iterations over all solved problems (the paper's sensitivity means count all 47)."""
    from experiments import bench_cutest as BC

    linear_solver = BC.inner_solvers(cfg.max_inner_steps)[cfg.solver]
    hyper = {key: float(cfg[key]) for key in ("mu0", "nu0", "delta0", "beta")}

    def solve(problem):
        return BC.sensitivity_solve(
            problem,
            cfg.solver,
            linear_solver,
            hyper,
            mode=cfg.mode,
            max_inner_steps=cfg.max_inner_steps,
            max_steps=cfg.max_steps,
            seed=cfg.seed,
        )

    return _summary(_cutest_items(cfg, solve, columns=("GV·10",)))  # the paper's defaults


def measure_logreg(cfg: DictConfig, run_dir: Path) -> dict:
    """One seed of one inner solver on the synthetic stand-ins of `cfg.datasets`; the metric is
    the mean outer iterations over the solved data sets."""
    from experiments import bench_applications as BA, bench_cutest as BC
    from problems.cutest import synthetic_logistic_regression

    linear_solver = BC.inner_solvers(cfg.max_inner_steps)[cfg.solver]
    items = {}
    shape = None if cfg.shape is None else tuple(cfg.shape)
    for name in cfg.datasets:
        problem = synthetic_logistic_regression(name, shape)
        result = BA.logreg_solve(
            problem,
            cfg.solver,
            linear_solver,
            cfg.max_inner_steps,
            seed=cfg.seed,
            max_steps=cfg.max_steps,
            safeguards=_safeguards(cfg, BA.LOGREG_SAFEGUARDS),
        )
        rows, d = shape or LIBSVM_SHAPES[name]
        gv10, rk10 = BA.PAPER_LOGREG[name]
        items[name] = _item(result, f"{rows} × {d}", {"GV·10": gv10, "RK·10": rk10})
        print(f"  {name}: {result.iterations} ({items[name]['status']})", flush=True)
    return _summary(items)


def _scaling_record(result, tol: float) -> dict:
    from experiments import bench_scaling as BS

    if isinstance(result, str):
        return {"status": result, "converged": False}
    converged = BS.converged(result, tol)
    return {
        "status": "converged" if converged else f"not converged ({BS.status(result)})",
        "converged": converged,
        "iterations": int(result.iterations),
        "kkt": _number(result.kkt),
        "time_s": _number(result.time),
        "inner_steps": _number(result.extra.get("num_inner_steps", math.nan)),
        "flops": _number(result.extra.get("flops", math.nan)),
    }


def ipopt_unavailable(cfg: DictConfig) -> str | None:
    """Why IPOPT is not run beside the sweep (`scaling.ipopt=false`, casadi missing), or None."""
    from experiments import _baselines as B

    if not cfg.scaling.ipopt:
        return "not run (scaling.ipopt=false)"
    if not B.has("casadi"):
        return f"not run: casadi is not installed ({B.INSTALL_HINT})"
    return None


def measure_control(cfg: DictConfig, run_dir: Path) -> dict:
    """The paper's Poisson control (N = `cfg.size`, the paper's 3) with one inner solver (the
    metric: its outer iterations when it converges), then `bench_scaling`'s sweep over
    `scaling.sizes` with `scaling.solver`, beside IPOPT where it runs."""
    from experiments import bench_applications as BA, bench_cutest as BC, bench_scaling as BS
    from problems.cutest import poisson_control

    linear_solver = BC.inner_solvers(cfg.max_inner_steps)[cfg.solver]
    problem = poisson_control(cfg.size)
    result = BA.poisson_solve(
        problem,
        cfg.solver,
        linear_solver,
        cfg.max_inner_steps,
        seed=cfg.seed,
        max_steps=cfg.max_steps,
        safeguards=_safeguards(cfg, FaithfulSafeguards()),
    )
    paper = BA.PAPER_POISSON.get(cfg.solver, (None, None))
    item = _item(result, f"{problem.n} × {problem.m}", {"iterations": paper[0], "kkt": paper[1]})
    print(f"  N = {cfg.size}: {item['iterations']} ({item['status']})", flush=True)

    scaling = OmegaConf.to_container(cfg.scaling, resolve=True)
    why_not_ipopt = ipopt_unavailable(cfg)
    labels = [scaling["solver"]] + ([] if why_not_ipopt else ["IPOPT"])
    options = {k: v for k, v in scaling.items() if k not in ("solver", "problem", "sizes", "ipopt")}
    args = argparse.Namespace(**options, seed=cfg.seed)
    sizes = []
    for n, problem, results in BS.sweep(scaling["problem"], scaling["sizes"], labels, args):
        ours = _scaling_record(results[labels[0]], args.tol)
        ipopt = (
            {"status": why_not_ipopt, "converged": False}
            if why_not_ipopt
            else _scaling_record(results["IPOPT"], math.inf)  # IPOPT stops on its own test
        )
        if ours["converged"] and ipopt["converged"]:
            ours["time_over_ipopt"] = ours["time_s"] / ipopt["time_s"]
        sizes.append({"N": n, "n": problem.n, "solver": ours, "ipopt": ipopt})
    solved = [size for size in sizes if size["solver"]["converged"]]
    largest = solved[-1] if solved else None
    return {
        "iterations": item["iterations"] if item["success"] else None,
        "kkt": item["kkt"],
        "time_s": item["time_s"],
        "paper_problem": item,
        "scaling": {
            "solver": scaling["solver"],
            "problem": scaling["problem"],
            "ipopt": why_not_ipopt or "run",
            "largest_n": float(largest["N"]) if largest else None,
            "time_s": largest["solver"]["time_s"] if largest else None,
            "time_over_ipopt": largest["solver"].get("time_over_ipopt") if largest else None,
            "sizes": sizes,
        },
    }


# ------------------------------------------------------------------------------------------
# Details and figures (from results.json and the runs' metrics.json)
# ------------------------------------------------------------------------------------------


def _completed(results: dict) -> list[tuple[str, dict]]:
    """(method, metrics) of every run of `results` that did not fail."""
    return [
        (run["method"], load_metrics(Path(run["run_dir"])))
        for run in results["runs"]
        if run["status"] != "failed"
    ]


def _label(results: dict, method: str) -> str:
    return results["methods"][method]["label"]


def _iterations_cell(items: list[dict]) -> str:
    """Outer iterations of one item over the seeds: `mean ± std (solved/runs)`, or the status of
    the failed runs."""
    its = [item["iterations"] for item in items if item["success"]]
    if not its:
        return "fail (" + ", ".join(sorted({item["status"] for item in items})) + ")"
    cell = f"{np.mean(its):.3g}" if np.ptp(its) == 0 else f"{np.mean(its):.3g} ± {np.std(its):.2g}"
    return cell if len(its) == len(items) else f"{cell} ({len(its)}/{len(items)})"


def _per_item(results: dict) -> tuple[dict, dict]:
    """`{method: {item: [records over seeds]}}` and `{item: a record}` of a run's `items`."""
    per_method, first = {}, {}
    for method, metrics in _completed(results):
        for item in metrics["items"]:
            per_method.setdefault(method, {}).setdefault(item["name"], []).append(item)
            first.setdefault(item["name"], item)
    return per_method, first


def items_details(results: dict, what: str = "problem") -> str:
    """The per-item table: our outer iterations per method (over seeds) beside the paper's, and
    a last row of means over the items that every method solved in every run and the paper
    reports, so that ours and the paper's average the same items."""
    per_method, first = _per_item(results)
    if not first:
        return ""
    methods = list(per_method)
    columns = list(next(iter(first.values()))["paper"])
    headers = [what, "size", *(_label(results, m) for m in methods)]
    headers += [f"paper {c}" for c in columns]
    rows = []
    for name, item in first.items():
        row = [name, item["size"]]
        row += [_iterations_cell(per_method[m].get(name, [])) for m in methods]
        row += [fmt(item["paper"][c], "g") for c in columns]
        rows.append(row)
    common = [
        name
        for name, item in first.items()
        if all(item["paper"][c] is not None for c in columns)
        and all(
            per_method[m].get(name) and all(r["success"] for r in per_method[m][name])
            for m in methods
        )
    ]
    if common:
        means = [
            np.mean([r["iterations"] for n in common for r in per_method[m][n]]) for m in methods
        ]
        paper = [np.mean([first[n]["paper"][c] for n in common]) for c in columns]
        rows.append(
            [f"**mean over these {len(common)}**", ""]
            + [f"**{v:.3g}**" for v in means]
            + [f"**{v:.3g}**" for v in paper]
        )
    note = (
        f"Outer iterations per {what}: mean ± std over the seeds that solved it (solved/runs "
        "when some did not). The last row averages, for ours and the paper's columns alike, the "
        f"{what}s that every run solved and the paper reports."
    )
    return note + "\n\n" + markdown_table(headers, rows)


def cutest_plot(results: dict, path: Path) -> None:
    """Our outer iterations (mean over seeds) against the paper's 10-run means, per problem and
    method (GV against GV·10, RK and LU against their paper column), on log axes."""
    from experiments._plots import plt, save_figure

    per_method, first = _per_item(results)
    solvers = {method: metrics["solver"] for method, metrics in _completed(results)}
    fig, ax = plt.subplots(figsize=(5, 5))
    for method, items in per_method.items():
        column = _PAPER_COLUMN[solvers[method]]
        points = [
            (first[n]["paper"][column], np.mean([r["iterations"] for r in records]))
            for n, records in items.items()
            if first[n]["paper"][column] is not None and all(r["success"] for r in records)
        ]
        if points:
            x, y = np.asarray(points).T
            ax.scatter(x, y, label=f"{_label(results, method)} vs paper {column}", alpha=0.7)
    ax.plot([1, 50], [1, 50], "k:", linewidth=1, label="ours = paper")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("paper: outer iterations (10-run mean)")
    ax.set_ylabel("ours: outer iterations (mean over seeds)")
    ax.set_title(f"{results['target']} ({results['scale']})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _sweep(results: dict) -> dict[str, list[dict]]:
    """`{method: [metrics["scaling"] of each seed]}`."""
    sweeps = {}
    for method, metrics in _completed(results):
        sweeps.setdefault(method, []).append(metrics["scaling"])
    return sweeps


def _mean_cell(values, spec: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1 or np.ptp(values) == 0:
        return format(float(np.mean(values)), spec)
    return f"{format(float(np.mean(values)), spec)} ± {format(float(np.std(values)), spec)}"


def control_details(results: dict) -> str:
    """The sweep: per N and method, the scaling solver's outcome, iterations, KKT, inner steps
    and time beside IPOPT's, means over seeds."""
    sweeps = _sweep(results)
    if not sweeps:
        return ""
    headers = ["N", "n = 2N²", "method", "solver", "converged", "outer iters", "final KKT"]
    headers += ["inner steps", "time (s)", "IPOPT time (s)", "time / IPOPT"]
    rows = []
    first = next(iter(sweeps.values()))[0]
    for i, size in enumerate(first["sizes"]):
        for method, seeds in sweeps.items():
            records = [s["sizes"][i]["solver"] for s in seeds]
            ipopt = [s["sizes"][i]["ipopt"] for s in seeds]
            ok = sum(r["converged"] for r in records)
            statuses = sorted({r["status"] for r in records if not r["converged"]})
            rows.append(
                [
                    size["N"],
                    size["n"],
                    _label(results, method),
                    seeds[0]["solver"],
                    f"{ok}/{len(records)}" + (f" ({', '.join(statuses)})" if statuses else ""),
                    _mean_cell([r.get("iterations") for r in records], ".3g"),
                    _mean_cell([r.get("kkt") for r in records], ".1e"),
                    _mean_cell([r.get("inner_steps") for r in records], ".3g"),
                    _mean_cell([r.get("time_s") for r in records], ".3g"),
                    _mean_cell([r.get("time_s") for r in ipopt], ".3g")
                    if any(r["converged"] for r in ipopt)
                    else ipopt[0]["status"].split(":")[0],
                    _mean_cell([r.get("time_over_ipopt") for r in records], ".3g"),
                ]
            )
    note = (
        f"Sweep over N ({first['problem']} control, practical safeguards, the scaling solver of "
        "each method); a solver that failed at one N is skipped at the larger ones. Means over "
        f"seeds. IPOPT: {first['ipopt']}."
    )
    return note + "\n\n" + markdown_table(headers, rows)


def control_plot(results: dict, path: Path) -> None:
    """Solve time against n = 2N² per method's scaling solver (mean over seeds), and IPOPT's."""
    from experiments._plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    ipopt = {}
    for method, seeds in _sweep(results).items():
        points = []
        for i, size in enumerate(seeds[0]["sizes"]):
            times = [s["sizes"][i]["solver"] for s in seeds]
            if all(r["converged"] for r in times):
                points.append((size["n"], np.mean([r["time_s"] for r in times])))
            refs = [s["sizes"][i]["ipopt"] for s in seeds]
            if all(r["converged"] for r in refs):
                ipopt.setdefault(size["n"], []).extend(r["time_s"] for r in refs)
        if points:
            x, y = np.asarray(points).T
            label = f"{_label(results, method)}: {seeds[0]['solver']}"
            ax.plot(x, y, "o-", label=label)
    if ipopt:
        x = sorted(ipopt)
        ax.plot(x, [np.mean(ipopt[n]) for n in x], "ks--", label="IPOPT (casadi)")
    else:
        ax.text(0.02, 0.95, "IPOPT: not run", transform=ax.transAxes, va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n = 2N² (variables)")
    ax.set_ylabel("solve time (s)")
    ax.set_title(f"{results['target']} ({results['scale']})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


RUNNERS = {
    "cutest": _with_check(
        benchmark_runner(_CUTEST, measure_cutest, details=items_details, plot=cutest_plot),
        _check_cutest,
    ),
    "cutest_sensitivity": _with_check(
        benchmark_runner(_SENSITIVITY, measure_sensitivity, details=items_details),
        _check_cutest,
    ),
    "logreg": _with_check(
        benchmark_runner(
            _LOGREG, measure_logreg, details=lambda results: items_details(results, "data set")
        ),
        _check_logreg,
    ),
    "control": _with_check(
        benchmark_runner(_CONTROL, measure_control, details=control_details, plot=control_plot),
        _check_control,
    ),
}
