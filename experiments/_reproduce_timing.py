"""The runner of `pihcmoe_timing`: per-batch time of PI-HC and PI-HC-MoE against the number
of collocation points (the PI-HC-MoE paper's scalability figures).

One run is one problem at one point count: a batch of inputs, the basis stacks of a randomly
initialised FNO on them, and the two constraint layers (`experiments.bench_hard_constraints`:
`random_basis`, `hard_constraint_layers`, `measure_layers`). Both layers' forward solve
(inference) and forward + implicit backward (training) are compiled first, then timed in
alternation with `block_until_ready`, `repeats` batches each, every batch with fresh
collocation points. The FNO is not timed: its cost is the same for both methods. The speedup
is PI-HC's mean per-batch time over PI-HC-MoE's; its spread is the standard deviation of the
ratios of the batches timed side by side.
"""

import math
import statistics
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from experiments._report import fmt, markdown_table
from experiments._runner import benchmark_runner, load_metrics

DEFAULTS = {
    "seed": 0,
    "dtype": "float64",  # the basis network's (the paper trains it in float64); solves: float64
    "problem": {
        "_target_": "problems.diffusion_sorption.DiffusionSorptionProblem",
        "nx": 1024,
        "nt": 101,
    },
    "points": 100,  # collocation points per sample, in total over the experts
    "per_expert": False,  # true: `points` for every expert
    "parts": [1, 4],  # experts per grid axis, time first
    "num_basis": 16,
    "global_boundary_rows": True,  # every expert fits every IC/BC row
    "vectorize_experts": True,  # experts vmapped (the paper); false: one after another
    # > 1: PI-HC fits the initial-condition rows this many times (the original code's IC
    # weighting, once per time row: experiments.bench_hard_constraints.repeated_ic);
    # diffusion–sorption only
    "hc_ic_repeats": 1,
    "max_steps": 50,
    "batch": 2,
    "repeats": 64,  # timed batches of each function
    "warmup": 1,
    "fast_compile": False,  # XLA without backend optimisation: for pipeline checks only
    "model": {"width": 16, "modes": 8, "depth": 2},  # the basis generator
}

# The paper's inference speedups at its smallest and largest point counts (from its text; the
# training speedups are the `paper` numbers of configs/reproduce/pihcmoe_timing.yaml).
PAPER_INFERENCE = {("diffusion_sorption", 100): 2.030, ("diffusion_sorption", 100000): 3.048}
PAPER_INFERENCE |= {("navier_stokes", 100): 2.538, ("navier_stokes", 10000): 12.864}
TITLES = {"diffusion_sorption": "diffusion–sorption", "navier_stokes": "Navier–Stokes"}


def measure(cfg: DictConfig, run_dir: Path) -> dict:
    """Time PI-HC and PI-HC-MoE on one batch (see the module docstring); the metrics."""
    del run_dir
    import jax
    import jax.numpy as jnp
    import jax.random as jr

    from experiments._common import instantiate
    from experiments.bench_hard_constraints import (
        hard_constraint_layers,
        measure_layers,
        random_basis,
        repeated_ic,
        time_stats,
    )

    jax.config.update("jax_enable_x64", True)
    problem = instantiate(cfg.problem)
    pde = problem.pde
    hc_pde = repeated_ic(pde, cfg.hc_ic_repeats)
    conditions = jnp.asarray(problem.sample_inputs(pde, np.arange(cfg.batch)))
    model_key, weights_key, points_key = jr.split(jr.key(cfg.seed), 3)
    basis = random_basis(
        pde, conditions, cfg.num_basis, **cfg.model, dtype=jnp.dtype(cfg.dtype), key=model_key
    )
    layers = hard_constraint_layers(
        cfg.points,
        parts=cfg.parts,
        per_expert=cfg.per_expert,
        global_boundary_rows=cfg.global_boundary_rows,
        vectorize_experts=cfg.vectorize_experts,
        num_basis=cfg.num_basis,
        max_steps=cfg.max_steps,
        throw=False,
    )
    measured = measure_layers(
        {"hc": (hc_pde, layers["hc"]), "moe": (pde, layers["moe"])},
        basis,
        conditions,
        jr.normal(weights_key, pde.grid_shape),
        cfg.repeats,
        key=points_key,
        warmup=cfg.warmup,
        fast_compile=cfg.fast_compile,
    )
    hc, moe = measured["hc"], measured["moe"]
    device = jax.devices()[0]
    metrics = {
        "problem": problem.name,
        "grid": list(pde.grid_shape),
        "points": cfg.points,
        "points_per_expert": layers["moe"].num_points,
        "experts": math.prod(cfg.parts),
        "hc_ic_repeats": cfg.hc_ic_repeats,
        "device": f"{device.device_kind} ({device.platform})",
    }
    for kind in ("train", "infer"):
        hc_t, moe_t = getattr(hc, kind), getattr(moe, kind)
        ratios = [a / b for a, b in zip(hc_t.samples, moe_t.samples)]
        metrics[f"{kind}_speedup"] = statistics.fmean(hc_t.samples) / statistics.fmean(
            moe_t.samples
        )
        metrics[f"{kind}_speedup_std"] = statistics.pstdev(ratios)
    for name, m in measured.items():
        metrics[name] = {
            "train_ms": time_stats(m.train),
            "infer_ms": time_stats(m.infer),
            "compile_s": m.compile_s,
            "steps": m.steps,
            "converged": m.converged,
            "residual": m.residual,
            "peak_mb": m.peak_bytes / 2**20,
        }
    return metrics


def _runs(results: dict) -> list[tuple[dict, dict]]:
    """(record, metrics) of every run that did not fail, in the target's order."""
    return [
        (r, load_metrics(Path(r["run_dir"]))) for r in results["runs"] if r["status"] != "failed"
    ]


def _ms(stats: dict | None) -> str:
    return "—" if stats is None else f"{stats['mean']:.3g} ± {stats['std']:.2g}"


def details(results: dict) -> str:
    """Per run: grid, points, every per-batch time (mean ± std over the timed batches), the
    speedups (± the std of the per-batch ratios), solver steps, converged fractions and the
    compile time."""
    headers = ["method", "seed", "grid", "points (per expert)", "HC train ms", "MoE train ms"]
    headers += ["train speedup", "HC infer ms", "MoE infer ms", "infer speedup"]
    headers += ["steps HC / MoE", "converged HC / MoE", "compile s HC / MoE", "device"]
    rows = []
    for record, m in _runs(results):
        hc, moe = m["hc"], m["moe"]
        rows.append(
            [
                record["method"],
                record["seed"],
                "×".join(map(str, m["grid"])),
                f"{m['points']} ({m['points_per_expert']})",
                _ms(hc["train_ms"]),
                _ms(moe["train_ms"]),
                f"{m['train_speedup']:.3g} ± {m['train_speedup_std']:.2g}",
                _ms(hc["infer_ms"]),
                _ms(moe["infer_ms"]),
                f"{m['infer_speedup']:.3g} ± {m['infer_speedup_std']:.2g}",
                f"{hc['steps']:.1f} / {moe['steps']:.1f}",
                f"{hc['converged']:.2f} / {moe['converged']:.2f}",
                f"{fmt(hc['compile_s'], '.1f')} / {fmt(moe['compile_s'], '.1f')}",
                m["device"],
            ]
        )
    note = (
        "Per-batch times: mean ± std over the timed batches of one run, after compilation "
        "(compile s 0.0: the executable was compiled by an earlier run of the same process). "
        "The FNO that makes the basis is not timed (its cost is the same for both methods)."
    )
    return markdown_table(headers, rows) + "\n\n" + note


def plot(results: dict, path: Path) -> None:
    """Per problem, and per PI-HC IC-row count (rows): training and inference time per batch
    against the number of points for PI-HC and PI-HC-MoE (log–log, error bars: std over the
    batches), and both speedups with the paper's numbers as markers."""
    from experiments._plots import plt, save_figure

    by_problem: dict[tuple[str, int], list] = {}
    for record, m in _runs(results):
        by_problem.setdefault((m["problem"], m["hc_ic_repeats"]), []).append((record, m))
    fig, axes = plt.subplots(
        max(len(by_problem), 1), 3, figsize=(13, 3.6 * max(len(by_problem), 1)), squeeze=False
    )
    paper_train = {r["method"]: r["paper"] for r in results["summary"]}
    for row, ((problem, repeats), runs) in zip(axes, by_problem.items()):
        title = TITLES.get(problem, problem)
        title += "" if repeats == 1 else f", PI-HC IC rows ×{repeats}"
        runs.sort(key=lambda run: run[1]["points"])
        points = np.array([m["points"] for _, m in runs])
        for ax, kind, label in ((row[0], "train", "training"), (row[1], "infer", "inference")):
            for name, style in (("hc", "o-"), ("moe", "s-")):
                mean = [m[name][f"{kind}_ms"]["mean"] for _, m in runs]
                std = [m[name][f"{kind}_ms"]["std"] for _, m in runs]
                ax.errorbar(points, mean, yerr=std, fmt=style, capsize=3, label=_LABEL[name])
            ax.set(xscale="log", yscale="log", xlabel="sampled points", ylabel="ms per batch")
            ax.set_title(f"{title}: {label}")
            ax.legend()
        ax = row[2]
        for kind, style in (("train", "o-"), ("infer", "s-")):
            ratio = [m[f"{kind}_speedup"] for _, m in runs]
            spread = [m[f"{kind}_speedup_std"] for _, m in runs]
            ax.errorbar(points, ratio, yerr=spread, fmt=style, capsize=3, label=f"ours, {kind}")
        # The paper's numbers, where a run has one of its point counts (not at `smoke`).
        paper = [
            (m["points"], paper_train.get(r["method"]), PAPER_INFERENCE[problem, m["points"]])
            for r, m in runs
            if (problem, m["points"]) in PAPER_INFERENCE
        ]
        for index, marker, kind in ((1, "kx", "train"), (2, "k+", "infer")):
            shown = [(p[0], p[index]) for p in paper if p[index] is not None]
            if shown:
                ax.plot(*zip(*shown), marker, markersize=10, label=f"paper, {kind}")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set(xscale="log", xlabel="sampled points", ylabel="PI-HC time / PI-HC-MoE time")
        ax.set_title(f"{title}: speedup of PI-HC-MoE")
        ax.legend()
    device = results["machine"]["devices"]
    fig.suptitle(f"{results['target']} ({results['scale']}), {device}")
    fig.tight_layout()
    save_figure(fig, path)


_LABEL = {"hc": "PI-HC", "moe": "PI-HC-MoE"}

RUNNERS = {"timing": benchmark_runner(DEFAULTS, measure, details=details, plot=plot)}
